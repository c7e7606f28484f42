//go:build linux

package sandbox

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Paths inside the sandbox, as a Lambda layer would lay them out.
const (
	OptFunction  = "/opt/function"
	OptBootstrap = "/opt/bootstrap"
	OptWrapper   = "/opt/lrap-wrapper"
	OptExtension = "/opt/extensions/lrap"
)

// InvokePath is the emulator's invoke route (not part of the Lambda service
// API; the emulator's stand-in for the Invoke API).
const InvokePath = "/2015-03-31/functions/function/invocations"

const (
	defaultStartTimeout = 15 * time.Second
	// stopGrace covers the emulator's own shutdown budget: the runtime gets
	// SIGTERM, then extensions subscribed to SHUTDOWN get up to 2 s.
	stopGrace = 6 * time.Second
	killWait  = 5 * time.Second
)

// Config describes one sandbox.
type Config struct {
	// RIE is the path of the aws-lambda-rie binary (see EnsureRIE).
	RIE string
	// Function is the runtime executable: a binary built with aws-lambda-go,
	// or a custom runtime's bootstrap script. It is copied to /opt/function.
	Function string
	// Lrap is the lrap binary. Empty runs the function without lrap, talking
	// to the emulator's Runtime API directly.
	Lrap string
	// Wrapper is the lrap wrapper script; required when Lrap is set. The
	// emulator ignores AWS_LAMBDA_EXEC_WRAPPER, so the sandbox starts the
	// runtime through the wrapper itself, as a layer-aware bootstrap would.
	Wrapper string
	// MaxConcurrency > 0 selects the Lambda Managed Instances data plane with
	// AWS_LAMBDA_MAX_CONCURRENCY set to it; 0 selects the classic one.
	MaxConcurrency int
	// Env is added to the emulator's environment, which it passes on to the
	// runtime and to extensions (LRAP_LOG_LEVEL, AWS_LAMBDA_FUNCTION_TIMEOUT,
	// ...). LRAP_LISTENER_PORT is chosen by the sandbox unless set here.
	Env map[string]string
	// Output, if set, receives a live copy of everything the emulator, the
	// runtime and the extensions print.
	Output io.Writer
	// StartTimeout bounds the wait for the invoke endpoint. Zero means 15 s.
	StartTimeout time.Duration
}

// Sandbox is a running emulator. Stop it when done.
type Sandbox struct {
	cfg        Config
	dir        string
	cmd        *exec.Cmd
	invokeAddr string
	apiAddr    string
	lrapAddr   string
	client     *http.Client
	out        *logBuffer

	done    chan struct{}
	waitErr error

	stopOnce sync.Once
	stopErr  error
}

// Response is what the invoke endpoint answered.
type Response struct {
	Status  int
	Header  http.Header
	Body    []byte
	Latency time.Duration
}

// Request is one invoke. Only Payload is required.
type Request struct {
	Payload []byte
	// RequestID is sent as X-Amzn-RequestId, which the pinned emulator
	// uses as the invocation id (both modes); empty lets it pick a UUID.
	RequestID string
	// ClientContext is the client context JSON; the emulator expects it
	// base64-encoded (standard alphabet) in X-Amz-Client-Context.
	ClientContext string
	// CognitoIdentity is JSON {"cognitoIdentityId","cognitoIdentityPoolId"},
	// sent as X-Amz-Cognito-Identity.
	CognitoIdentity string
	// TraceID is sent as X-Amzn-Trace-Id.
	TraceID string
	// Header holds any further request headers.
	Header http.Header
}

// Start prepares the /opt tree, starts the emulator and waits until its
// invoke endpoint accepts connections. The classic emulator initialises the
// runtime (and extensions) lazily on the first invoke; Managed Instances
// initialises at start-up and holds the first invoke until init is done.
func Start(ctx context.Context, cfg Config) (*Sandbox, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = defaultStartTimeout
	}
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	s := &Sandbox{
		cfg:        cfg,
		invokeAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])),
		apiAddr:    net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1])),
		out:        &logBuffer{tee: cfg.Output},
		done:       make(chan struct{}),
	}
	lrapPort := strconv.Itoa(ports[2])
	if p, ok := cfg.Env["LRAP_LISTENER_PORT"]; ok {
		lrapPort = p
	}
	if cfg.Lrap != "" {
		s.lrapAddr = net.JoinHostPort("127.0.0.1", lrapPort)
	}
	if s.dir, err = os.MkdirTemp("", "lrap-sandbox-"); err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	if err := s.prepareOpt(); err != nil {
		os.RemoveAll(s.dir)
		return nil, err
	}

	s.cmd = s.command(lrapPort)
	if err := s.cmd.Start(); err != nil {
		os.RemoveAll(s.dir)
		return nil, namespaceError(err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.done)
	}()
	s.client = &http.Client{Transport: &http.Transport{
		// Loopback only; an HTTP_PROXY in the caller's environment must not
		// capture the invokes.
		Proxy:               nil,
		MaxIdleConnsPerHost: 64,
		DisableCompression:  true,
	}}
	if err := s.waitReady(ctx); err != nil {
		stopErr := s.Stop()
		return nil, errors.Join(err, stopErr)
	}
	return s, nil
}

func (c *Config) validate() error {
	if c.RIE == "" || c.Function == "" {
		return errors.New("sandbox: Config.RIE and Config.Function are required")
	}
	// The emulator is started from / inside the namespace.
	abs, err := filepath.Abs(c.RIE)
	if err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	c.RIE = abs
	if (c.Lrap == "") != (c.Wrapper == "") {
		return errors.New("sandbox: Config.Lrap and Config.Wrapper go together")
	}
	if c.MaxConcurrency < 0 {
		return errors.New("sandbox: Config.MaxConcurrency must not be negative")
	}
	if c.MaxConcurrency > 0 && os.Geteuid() != 0 {
		// The Managed Instances supervisor starts every process as uid 993
		// (setuid), which a user namespace mapping only root cannot do.
		return errors.New("sandbox: Managed Instances mode needs root: the emulator runs the runtime and extensions as uid 993")
	}
	for _, p := range []string{c.RIE, c.Function, c.Lrap, c.Wrapper} {
		if p == "" {
			continue
		}
		if st, err := os.Stat(p); err != nil {
			return fmt.Errorf("sandbox: %w", err)
		} else if st.IsDir() {
			return fmt.Errorf("sandbox: %s is a directory", p)
		}
	}
	if st, err := os.Stat("/opt"); err != nil || !st.IsDir() {
		return errors.New("sandbox: /opt must exist as a mount point for the sandbox's private /opt")
	}
	return nil
}

// prepareOpt builds the tree that becomes /opt. Everything is world-readable
// and executable because Managed Instances runs the runtime and extensions as
// uid 993, not as the owner of these files.
func (s *Sandbox) prepareOpt() error {
	opt := filepath.Join(s.dir, "opt")
	for _, d := range []string{s.dir, opt, filepath.Join(s.dir, "hostvar"), filepath.Join(s.dir, "tmp")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("sandbox: %w", err)
		}
		// MkdirTemp creates 0700 and the umask may strip bits from MkdirAll.
		if err := os.Chmod(d, 0o755); err != nil {
			return fmt.Errorf("sandbox: %w", err)
		}
	}
	// Sticky and world-writable like /tmp, for runtimes running as uid 993.
	if err := os.Chmod(filepath.Join(s.dir, "tmp"), 0o777|os.ModeSticky); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	if err := copyExec(s.cfg.Function, filepath.Join(opt, "function")); err != nil {
		return err
	}
	runtime := OptFunction
	if s.cfg.Lrap != "" {
		if err := os.Mkdir(filepath.Join(opt, "extensions"), 0o755); err != nil {
			return fmt.Errorf("sandbox: %w", err)
		}
		if err := os.Chmod(filepath.Join(opt, "extensions"), 0o755); err != nil {
			return fmt.Errorf("sandbox: %w", err)
		}
		if err := copyExec(s.cfg.Lrap, filepath.Join(opt, "extensions", "lrap")); err != nil {
			return err
		}
		if err := copyExec(s.cfg.Wrapper, filepath.Join(opt, "lrap-wrapper")); err != nil {
			return err
		}
		runtime = OptWrapper + " " + OptFunction
	}
	// Managed Instances ignores the emulator's command line for a ZIP-style
	// function and runs /opt/bootstrap; classic gets the command line (see
	// command) but the same script is harmless there.
	script := "#!/bin/sh\nexec " + runtime + "\n"
	if err := os.WriteFile(filepath.Join(opt, "bootstrap"), []byte(script), 0o755); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	return os.Chmod(filepath.Join(opt, "bootstrap"), 0o755)
}

func copyExec(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("sandbox: copy %s: %w", src, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	return os.Chmod(dst, 0o755)
}

// setupScript runs as PID 1 of the new namespaces, arranges the mounts and
// execs the emulator, which thereby becomes PID 1: when it exits, however it
// exits, the kernel kills everything else in the namespace.
//
// Managed Instances needs /var/task to exist (it is the runtime's working
// directory) and would prefer a /var/task/bootstrap or /var/runtime/bootstrap
// of the machine over /opt/bootstrap; so in that mode /var is rebuilt on a
// tmpfs from bind mounts of the real entries, minus task and runtime.
const setupScript = `set -eu
opt=$1 hostvar=$2 lmi=$3 cwd=$4
shift 4
mount --make-rprivate /
mount -t proc proc /proc 2>/dev/null || true
mount --bind "$opt" /opt
if [ "$lmi" = 1 ]; then
	mount --rbind /var "$hostvar"
	mount -t tmpfs -o mode=0755 sandbox-var /var
	for e in "$hostvar"/* "$hostvar"/.[!.]* "$hostvar"/..?*; do
		[ -e "$e" ] || [ -L "$e" ] || continue
		n=${e##*/}
		case $n in task|runtime) continue ;; esac
		if [ -L "$e" ]; then ln -s "$(readlink "$e")" "/var/$n"
		elif [ -d "$e" ]; then mkdir "/var/$n"; mount --rbind "$e" "/var/$n"
		else : >"/var/$n"; mount --bind "$e" "/var/$n"
		fi
	done
	mkdir -m 0755 /var/task
fi
cd "$cwd"
exec "$@"
`

func (s *Sandbox) command(lrapPort string) *exec.Cmd {
	lmi, cwd := "0", "/opt"
	if s.cfg.MaxConcurrency > 0 {
		lmi, cwd = "1", "/"
	}
	args := []string{"-c", setupScript, "lrap-sandbox",
		filepath.Join(s.dir, "opt"), filepath.Join(s.dir, "hostvar"), lmi, cwd,
		s.cfg.RIE,
		"--runtime-interface-emulator-address", s.invokeAddr,
		"--runtime-api-address", s.apiAddr,
	}
	if s.cfg.MaxConcurrency == 0 {
		// Classic runs what its command line names and, given one, never
		// looks at /var/task or /var/runtime.
		if s.cfg.Lrap != "" {
			args = append(args, OptWrapper)
		}
		args = append(args, OptFunction)
	}
	cmd := exec.Command("/bin/sh", args...)
	cmd.Dir = "/"
	cmd.Env = s.environ(lrapPort)
	cmd.Stdout = s.out
	cmd.Stderr = s.out
	// Output pipes are held open by every process in the namespace; they all
	// die with the emulator, but bound the wait anyway.
	cmd.WaitDelay = killWait
	attr := &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWPID,
		// If the test binary dies, the namespace goes with it.
		Pdeathsig: syscall.SIGKILL,
		Setpgid:   true,
	}
	if os.Geteuid() != 0 {
		attr.Cloneflags |= syscall.CLONE_NEWUSER
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}}
		attr.GidMappingsEnableSetgroups = false
	}
	cmd.SysProcAttr = attr
	return cmd
}

// environ is deliberately small: the classic emulator hands its whole
// environment to the runtime and the extensions, and the direct and proxied
// runs must see the same one apart from lrap's own settings.
func (s *Sandbox) environ(lrapPort string) []string {
	env := map[string]string{
		"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		// Runtimes are SIGKILLed at shutdown and cannot clean up; their
		// temporary files go where Stop removes them.
		"TMPDIR": filepath.Join(s.dir, "tmp"),
	}
	if s.cfg.MaxConcurrency > 0 {
		env["AWS_LAMBDA_MAX_CONCURRENCY"] = strconv.Itoa(s.cfg.MaxConcurrency)
	}
	if s.cfg.Lrap != "" {
		env["LRAP_LISTENER_PORT"] = lrapPort
	}
	for k, v := range s.cfg.Env {
		env[k] = v
	}
	list := make([]string, 0, len(env))
	for k, v := range env {
		list = append(list, k+"="+v)
	}
	sort.Strings(list)
	return list
}

func namespaceError(err error) error {
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOSPC) {
		return fmt.Errorf("sandbox: cannot create private mount and PID namespaces (%w); "+
			"as root this needs CAP_SYS_ADMIN, as in `unshare --mount --propagation private`; "+
			"as another user it needs unprivileged user namespaces, as in `unshare --user --map-root-user --mount`; "+
			"neither worked here", err)
	}
	return fmt.Errorf("sandbox: start emulator: %w", err)
}

// waitReady polls the invoke port: the emulator binds it before it is able
// to initialise anything, so a successful connect is the earliest reliable
// signal, and the first invoke then waits for init inside the emulator.
func (s *Sandbox) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.StartTimeout)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var d net.Dialer
	for {
		c, err := d.DialContext(ctx, "tcp", s.invokeAddr)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("sandbox: emulator exited before listening (%v); output:\n%s", s.waitErr, s.out.String())
		case <-ctx.Done():
			return fmt.Errorf("sandbox: emulator not listening on %s after %s; output:\n%s", s.invokeAddr, s.cfg.StartTimeout, s.out.String())
		case <-tick.C:
		}
	}
}

// Invoke posts payload to the function with the given client context (JSON,
// may be empty).
func (s *Sandbox) Invoke(ctx context.Context, payload []byte, clientContext string) (*Response, error) {
	return s.Do(ctx, Request{Payload: payload, ClientContext: clientContext})
}

// Do performs one invoke. The emulator answers only after the runtime has
// finished the invocation (classic: after the runtime's next /next).
func (s *Sandbox) Do(ctx context.Context, r Request) (*Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+s.invokeAddr+InvokePath, bytes.NewReader(r.Payload))
	if err != nil {
		return nil, err
	}
	for k, vs := range r.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if r.RequestID != "" {
		req.Header.Set("X-Amzn-RequestId", r.RequestID)
	}
	if r.ClientContext != "" {
		req.Header.Set("X-Amz-Client-Context", base64.StdEncoding.EncodeToString([]byte(r.ClientContext)))
	}
	if r.CognitoIdentity != "" {
		req.Header.Set("X-Amz-Cognito-Identity", r.CognitoIdentity)
	}
	if r.TraceID != "" {
		req.Header.Set("X-Amzn-Trace-Id", r.TraceID)
	}
	start := time.Now()
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("sandbox: invoke: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("sandbox: invoke: read response: %w", err)
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: body, Latency: time.Since(start)}, nil
}

// InvokeAddr is the emulator's invoke endpoint (host:port, loopback).
func (s *Sandbox) InvokeAddr() string { return s.invokeAddr }

// RuntimeAPIAddr is the emulator's Runtime API address (host:port).
func (s *Sandbox) RuntimeAPIAddr() string { return s.apiAddr }

// LrapAddr is where lrap listens and the runtime is pointed at; empty
// without lrap.
func (s *Sandbox) LrapAddr() string { return s.lrapAddr }

// Output returns everything printed so far by the emulator, the runtime and
// the extensions.
func (s *Sandbox) Output() string { return s.out.String() }

// OutputLen is a mark for OutputSince.
func (s *Sandbox) OutputLen() int { return s.out.Len() }

// OutputSince returns what was printed after mark (from OutputLen).
func (s *Sandbox) OutputSince(mark int) string { return s.out.Since(mark) }

// WaitOutput waits until the output contains substr, the emulator exits,
// or ctx ends.
func (s *Sandbox) WaitOutput(ctx context.Context, substr string) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if strings.Contains(s.out.String(), substr) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("sandbox: %q not in output: %w", substr, ctx.Err())
		case <-s.done:
			if strings.Contains(s.out.String(), substr) {
				return nil
			}
			return fmt.Errorf("sandbox: emulator exited (%v) without printing %q", s.waitErr, substr)
		case <-tick.C:
		}
	}
}

// Exited is closed when the emulator's process has ended.
func (s *Sandbox) Exited() <-chan struct{} { return s.done }

// Stop ends the emulator: SIGTERM first, so it shuts the runtime down and
// sends SHUTDOWN to extensions as Lambda would, then SIGKILL to its process
// group if that takes too long. Either way the PID namespace ends with it,
// which takes every runtime and extension process along. Safe to call more
// than once.
func (s *Sandbox) Stop() error {
	s.stopOnce.Do(func() {
		defer os.RemoveAll(s.dir)
		if s.client != nil {
			defer s.client.CloseIdleConnections()
		}
		pid := s.cmd.Process.Pid
		select {
		case <-s.done:
			return
		default:
		}
		_ = syscall.Kill(pid, syscall.SIGTERM)
		select {
		case <-s.done:
			return
		case <-time.After(stopGrace):
		}
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		_ = syscall.Kill(pid, syscall.SIGKILL)
		select {
		case <-s.done:
			s.stopErr = fmt.Errorf("sandbox: emulator ignored SIGTERM for %s and was killed", stopGrace)
		case <-time.After(killWait):
			s.stopErr = fmt.Errorf("sandbox: emulator (pid %d) still running %s after SIGKILL", pid, killWait)
		}
	})
	return s.stopErr
}

// issued remembers every port handed out in this process. lrap binds its
// port only when the emulator starts it (classic: on the first invoke), so
// until then the kernel could offer the same port to the next sandbox.
var (
	issuedMu sync.Mutex
	issued   = map[int]bool{}
)

func freePorts(n int) ([]int, error) {
	issuedMu.Lock()
	defer issuedMu.Unlock()
	ports := make([]int, 0, n)
	// All listeners stay open until every port is chosen so the kernel
	// cannot hand out the same port twice within one call.
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for attempts := 0; len(ports) < n; attempts++ {
		if attempts == 100*n {
			return nil, errors.New("sandbox: no unused loopback port found")
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("sandbox: free port: %w", err)
		}
		ls = append(ls, l)
		p := l.Addr().(*net.TCPAddr).Port
		if issued[p] {
			continue
		}
		issued[p] = true
		ports = append(ports, p)
	}
	return ports, nil
}

// logBuffer collects the emulator's combined output; the output pipe's copy
// goroutine writes while tests read.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	tee io.Writer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if b.tee != nil {
		// A failing live copy must not stall or fail the emulator.
		_, _ = b.tee.Write(p)
	}
	return len(p), nil
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}

func (b *logBuffer) Since(mark int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if mark > b.buf.Len() {
		return ""
	}
	return string(b.buf.Bytes()[mark:])
}
