package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/lrap/lrap/internal/fakeapi"
)

// target is one way the runtime reaches the Runtime API.
type target struct {
	// name is direct, lrap or reference.
	name string
	// bin is the proxy executable; empty for direct.
	bin string
	// args0 is the argv[0] it is started with, the path Lambda would use.
	args0 string
	// env is added to the environment Lambda would give the extension.
	env []string
	// profileDir, for the profiling variant, is where it writes profiles.
	profileDir string
	// wrap, if set, is a command the proxy runs under (strace -c -f -o …).
	wrap []string
}

func (t *target) isProxy() bool { return t.bin != "" }

// env is one execution environment: a fake Runtime + Extensions API and, for
// a proxy target, the proxy running as an external extension in front of it.
type env struct {
	tgt    *target
	mode   fakeapi.Mode
	fake   *fakeapi.Server
	addr   string // what the runtime's AWS_LAMBDA_RUNTIME_API would say
	client *http.Client

	cycles int // runtime cycles run through this environment

	cmd     *exec.Cmd
	pid     int
	logPath string
	exited  chan struct{}
	waitErr error

	// chunks receives the fake's OnResponseChunk calls while set.
	chunks atomic.Pointer[chunkRecorder]
}

// fakeOptions are the fake's settings for benchmarks: nothing recorded or
// kept, no response size limit (the 64 MiB stream), and chunk timing for the
// streaming measurements.
func fakeOptions(mode fakeapi.Mode, e *env) fakeapi.Options {
	return fakeapi.Options{
		Mode:             mode,
		DisableRecording: true,
		DiscardBodies:    true,
		MaxResponseSize:  -1,
		OnResponseChunk: func(id string, chunk []byte) {
			if r := e.chunks.Load(); r != nil {
				r.add(id, len(chunk))
			}
		},
	}
}

// startEnv starts a fake and, for a proxy target, the proxy process, and
// waits until the proxy is listening and its extension init is complete.
func startEnv(t *target, mode fakeapi.Mode, tmp string) (*env, error) {
	e := &env{tgt: t, mode: mode}
	fake, err := fakeapi.Start(fakeOptions(mode, e))
	if err != nil {
		return nil, err
	}
	e.fake = fake
	e.addr = fake.Addr()
	e.client = newRuntimeHTTPClient()
	if !t.isProxy() {
		return e, nil
	}
	if _, err := e.startProcess(tmp); err != nil {
		e.stop()
		return nil, err
	}
	if _, err := waitListening(e, 10*time.Second); err != nil {
		e.stop()
		return nil, err
	}
	if err := waitInitDone(e, 10*time.Second); err != nil {
		e.stop()
		return nil, err
	}
	return e, nil
}

// startProcess starts the proxy the way Lambda starts an external extension:
// a fresh process with the extension environment. It returns the time just
// before the exec.
func (e *env) startProcess(tmp string) (time.Time, error) {
	port, err := freePort()
	if err != nil {
		return time.Time{}, err
	}
	e.addr = "127.0.0.1:" + strconv.Itoa(port)
	cmd := &exec.Cmd{Path: e.tgt.bin, Args: []string{e.tgt.args0}}
	if len(e.tgt.wrap) > 0 {
		path, err := exec.LookPath(e.tgt.wrap[0])
		if err != nil {
			return time.Time{}, err
		}
		cmd = &exec.Cmd{Path: path, Args: append(slices.Clone(e.tgt.wrap), e.tgt.bin)}
	}
	cmd.Env = []string{
		"AWS_LAMBDA_RUNTIME_API=" + e.fake.Addr(),
		"LRAP_LISTENER_PORT=" + strconv.Itoa(port),
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"TZ=:UTC",
	}
	if e.mode == fakeapi.ManagedInstances {
		cmd.Env = append(cmd.Env, "AWS_LAMBDA_INITIALIZATION_TYPE=lambda-managed-instances")
	}
	cmd.Env = append(cmd.Env, e.tgt.env...)
	if e.tgt.profileDir != "" {
		cmd.Env = append(cmd.Env, profilePrefix+"="+filepath.Join(e.tgt.profileDir, e.tgt.name+"-"+e.mode.String()+"-"))
	}
	logf, err := os.CreateTemp(tmp, e.tgt.name+"-*.log")
	if err != nil {
		return time.Time{}, err
	}
	defer logf.Close()
	e.logPath = logf.Name()
	cmd.Stdout, cmd.Stderr = logf, logf
	e.cmd = cmd
	e.exited = make(chan struct{})
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return start, err
	}
	e.pid = cmd.Process.Pid
	go func() {
		e.waitErr = cmd.Wait()
		close(e.exited)
	}()
	return start, nil
}

// waitListening polls the proxy's port until a connection succeeds and
// returns when. The poll interval is 50µs (a refused loopback connect costs
// about 10µs), so the time is at most about 60µs late.
func waitListening(e *env, limit time.Duration) (time.Time, error) {
	deadline := time.Now().Add(limit)
	for {
		c, err := net.Dial("tcp", e.addr)
		if err == nil {
			t := time.Now()
			c.Close()
			return t, nil
		}
		select {
		case <-e.exited:
			return time.Time{}, e.diedErr()
		default:
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("%s did not listen on %s within %v: %v", e.tgt.name, e.addr, limit, err)
		}
		shortSleep(50 * time.Microsecond)
	}
}

// waitInitDone waits until the extension has registered and called
// /extension/event/next (init complete: invocations may flow).
func waitInitDone(e *env, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	go func() {
		select {
		case <-e.exited:
			cancel()
		case <-ctx.Done():
		}
	}()
	err := e.fake.WaitUntil(ctx, func() bool {
		regs := e.fake.Registrations()
		return len(regs) == 1 && regs[0].State == "Ready"
	})
	if err != nil {
		select {
		case <-e.exited:
			return e.diedErr()
		default:
		}
		return fmt.Errorf("%s did not complete extension init: %w", e.tgt.name, err)
	}
	return nil
}

func (e *env) diedErr() error {
	log, _ := os.ReadFile(e.logPath)
	return fmt.Errorf("%s exited early (%v); its output:\n%s", e.tgt.name, e.waitErr, tail(log, 2000))
}

// alive reports an error if the proxy process has exited.
func (e *env) alive() error {
	if e.exited == nil {
		return nil
	}
	select {
	case <-e.exited:
		return e.diedErr()
	default:
		return nil
	}
}

// shutdown sends SHUTDOWN and returns how long the process took to exit.
func (e *env) shutdown(limit time.Duration) (time.Duration, error) {
	if e.cmd == nil {
		return 0, nil
	}
	select {
	case <-e.exited:
		return 0, e.diedErr()
	default:
	}
	start := time.Now()
	e.fake.Shutdown("spindown", start.Add(2*time.Second))
	select {
	case <-e.exited:
		d := time.Since(start)
		if e.waitErr != nil {
			return d, fmt.Errorf("%s exited with %v after SHUTDOWN", e.tgt.name, e.waitErr)
		}
		return d, nil
	case <-time.After(limit):
		_ = e.cmd.Process.Kill()
		<-e.exited
		return 0, fmt.Errorf("%s did not exit within %v of SHUTDOWN", e.tgt.name, limit)
	}
}

// stop ends the environment: SHUTDOWN for the proxy (killed if it does not
// exit), then the fake.
func (e *env) stop() {
	e.client.CloseIdleConnections()
	if e.cmd != nil && e.pid != 0 {
		select {
		case <-e.exited:
		default:
			_, _ = e.shutdown(5 * time.Second)
		}
	}
	e.fake.Close()
}

// newRuntimeHTTPClient is the runtime's HTTP client: keep-alive with a pool
// larger than any concurrency used, no proxy, no compression, 64 KiB buffers
// so that the load generator spends few syscalls. The timeout only keeps a
// broken proxy from hanging the benchmark.
func newRuntimeHTTPClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{KeepAlive: -1}).DialContext,
			DisableCompression:  true,
			MaxIdleConnsPerHost: 64,
			ReadBufferSize:      64 << 10,
			WriteBufferSize:     64 << 10,
		},
		Timeout: 60 * time.Second,
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// findRoot returns the directory of the lrap module's go.mod, searching up
// from the working directory.
func findRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil {
			if len(b) > 0 && containsModule(string(b)) {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run lrap-bench inside the lrap module (no go.mod for github.com/lrap/lrap found)")
		}
		dir = parent
	}
}

func containsModule(gomod string) bool {
	for line := range strings.Lines(gomod) {
		if strings.TrimSpace(line) == "module github.com/lrap/lrap" {
			return true
		}
	}
	return false
}
