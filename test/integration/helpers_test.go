// Package integration runs lrap the way Lambda runs it, as a separate
// process started from an extensions directory, against the strict in-process
// fake of the Runtime and Extensions APIs (internal/fakeapi), and checks the
// lifecycle and forwarding rules of shared/runtime-api-notes.md end to end.
// The conformance tests run the forwarding core in-process against the same
// fake and compare every answer with the one the fake gives directly.
//
// Everything listens on loopback; every wait is bounded by waitBound.
package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lrap/lrap/internal/fakeapi"
	"github.com/lrap/lrap/runtimeapi"
)

// waitBound bounds every wait of these tests.
const waitBound = 5 * time.Second

// accepted is the API's 202 body (notes §2.2, §2.7).
const accepted = "{\"status\":\"OK\"}\n"

// lrapBin is the lrap binary built once by TestMain; moduleRoot the
// repository root it was built from.
var lrapBin, moduleRoot string

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "lrap-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	root, err := findModuleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bin := filepath.Join(dir, "lrap")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/lrap")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "integration: go build ./cmd/lrap: %v\n%s", err, out)
		return 1
	}
	lrapBin, moduleRoot = bin, root
	return m.Run()
}

// findModuleRoot asks the go command for the module's go.mod (go test runs
// the test binary in the package directory, with the toolchain on PATH).
func findModuleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside a module (go env GOMOD = %q)", gomod)
	}
	return filepath.Dir(gomod), nil
}

func bounded(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitBound)
	t.Cleanup(cancel)
	return ctx
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func hostPort(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// startFake starts a fake Runtime + Extensions API, closed at cleanup.
func startFake(t *testing.T, opts fakeapi.Options) *fakeapi.Server {
	t.Helper()
	s, err := fakeapi.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// waitExtension waits until the extension registered as name is in state
// (Registered, Ready = parked in /event/next, Running, InitError, ExitError).
func waitExtension(t *testing.T, s *fakeapi.Server, name, state string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitBound)
	defer cancel()
	err := s.WaitUntil(ctx, func() bool {
		for _, r := range s.Registrations() {
			if r.Name == name && r.State == state {
				return true
			}
		}
		return false
	})
	if err != nil {
		t.Fatalf("extension %q never reached state %s: %v (registrations %+v)", name, state, err, s.Registrations())
	}
}

// logBuffer collects a process's stderr.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lines returns the complete lines written so far.
func (b *logBuffer) lines() []string {
	s := b.String()
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	} else {
		return nil
	}
	return strings.Split(s, "\n")
}

// lrapOpts describes one lrap process.
type lrapOpts struct {
	// name is the executable's file name, which lrap registers under
	// (notes T2). Default "lrap".
	name string
	// api is AWS_LAMBDA_RUNTIME_API.
	api string
	// port is LRAP_LISTENER_PORT; 0 picks a free one.
	port int
	// env holds further KEY=VALUE pairs; they override the above.
	env []string
}

// proc is a running lrap process.
type proc struct {
	name   string
	port   int
	cmd    *exec.Cmd
	stderr *logBuffer
	done   chan struct{}
	code   int       // exit code, valid after done; -1 when killed
	exited time.Time // valid after done
}

// startLrap starts the lrap binary the way Lambda starts an extension: the
// executable at <dir>/<name>, no arguments, only the given environment. The
// process is killed (by PID) and reaped at cleanup if it is still running.
func startLrap(t *testing.T, o lrapOpts) *proc {
	t.Helper()
	if o.name == "" {
		o.name = "lrap"
	}
	if o.port == 0 {
		o.port = freePort(t)
	}
	path := filepath.Join(t.TempDir(), o.name)
	if err := os.Link(lrapBin, path); err != nil {
		copyFile(t, lrapBin, path, 0o755)
	}
	env := []string{
		"AWS_LAMBDA_RUNTIME_API=" + o.api,
		"LRAP_LISTENER_PORT=" + strconv.Itoa(o.port),
	}
	cmd := exec.Command(path)
	cmd.Env = append(env, o.env...)
	p := &proc{name: o.name, port: o.port, cmd: cmd, stderr: &logBuffer{}, done: make(chan struct{})}
	cmd.Stderr = p.stderr
	dieWithTest(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := cmd.Wait()
		p.exited = time.Now()
		p.code = cmd.ProcessState.ExitCode()
		if err != nil && p.code == 0 {
			p.code = -1
		}
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.hasExited() {
			_ = cmd.Process.Kill()
			select {
			case <-p.done:
			case <-time.After(waitBound):
				t.Errorf("%s (pid %d) still running after SIGKILL", p.name, cmd.Process.Pid)
			}
		}
		if t.Failed() {
			t.Logf("%s stderr:\n%s", p.name, p.stderr.String())
		}
	})
	return p
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, mode); err != nil {
		t.Fatal(err)
	}
}

func (p *proc) addr() string { return hostPort(p.port) }

func (p *proc) hasExited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitExit waits (bounded by within) for the process to exit and returns its
// exit code.
func (p *proc) waitExit(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(within):
		t.Fatalf("%s did not exit within %v", p.name, within)
		return 0
	}
}

// logLines parses every stderr line as a JSON object; a line that is not
// one fails the test.
func (p *proc) logLines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range p.stderr.lines() {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Errorf("%s: stderr line is not a JSON object: %q", p.name, l)
			continue
		}
		out = append(out, m)
	}
	return out
}

// waitLog waits until a stderr line satisfies match.
func (p *proc) waitLog(t *testing.T, what string, match func(map[string]any) bool) {
	t.Helper()
	deadline := time.Now().Add(waitBound)
	for {
		for _, l := range p.stderr.lines() {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil && match(m) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never logged %s", p.name, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func msgIs(msg string) func(map[string]any) bool {
	return func(m map[string]any) bool { return m["msg"] == msg }
}

// startReady starts lrap against fake and waits until it is parked in
// /extension/event/next, i.e. registered, serving and done with init.
func startReady(t *testing.T, fake *fakeapi.Server, o lrapOpts) *proc {
	t.Helper()
	if o.api == "" {
		o.api = fake.Addr()
	}
	p := startLrap(t, o)
	waitExtension(t, fake, p.name, "Ready")
	return p
}

// shutdownAndExpectExit delivers SHUTDOWN with a deadline `budget` away and
// checks that every process exits 0 before that deadline (notes §6.5, T11).
func shutdownAndExpectExit(t *testing.T, fake *fakeapi.Server, budget time.Duration, procs ...*proc) {
	t.Helper()
	deadline := time.Now().Add(budget)
	fake.Shutdown("spindown", deadline)
	for _, p := range procs {
		if code := p.waitExit(t, budget+waitBound); code != 0 {
			t.Errorf("%s exited %d after SHUTDOWN, want 0", p.name, code)
		}
		if p.exited.After(deadline) {
			t.Errorf("%s exited %v after the SHUTDOWN deadline", p.name, p.exited.Sub(deadline))
		}
	}
}

// reply is one answer as the runtime saw it.
type reply struct {
	status  int
	header  http.Header
	body    []byte
	chunked bool
	cl      int64
	trailer http.Header
	err     error
}

// runtimeClient plays the function's runtime: no HTTP proxy, no transparent
// compression (so it sends no Accept-Encoding), keep-alive like aws-lambda-go.
type runtimeClient struct {
	base string
	c    *http.Client
}

func newRuntime(t *testing.T, addr string) *runtimeClient {
	tr := &http.Transport{Proxy: nil, DisableCompression: true, MaxIdleConnsPerHost: 64}
	t.Cleanup(tr.CloseIdleConnections)
	return &runtimeClient{base: "http://" + addr, c: &http.Client{Transport: tr}}
}

// do sends one request; hdr holds header name/value pairs.
func (c *runtimeClient) do(ctx context.Context, method, path string, body io.Reader, hdr ...string) reply {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return reply{err: err}
	}
	req.Header.Set("User-Agent", "lrap-integration-runtime/1")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header[hdr[i]] = append(req.Header[hdr[i]], hdr[i+1])
	}
	return c.send(req)
}

func (c *runtimeClient) send(req *http.Request) reply {
	resp, err := c.c.Do(req)
	if err != nil {
		return reply{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return reply{
		status:  resp.StatusCode,
		header:  resp.Header,
		body:    b,
		chunked: slices.Contains(resp.TransferEncoding, "chunked"),
		cl:      resp.ContentLength,
		trailer: resp.Trailer,
		err:     err,
	}
}

func (c *runtimeClient) async(ctx context.Context, method, path string, body io.Reader, hdr ...string) <-chan reply {
	ch := make(chan reply, 1)
	go func() { ch <- c.do(ctx, method, path, body, hdr...) }()
	return ch
}

// must checks status and exact body.
func must(t *testing.T, what string, r reply, status int, body string) reply {
	t.Helper()
	if r.err != nil {
		t.Fatalf("%s: %v", what, r.err)
	}
	if r.status != status || string(r.body) != body {
		t.Fatalf("%s: got %d %q, want %d %q", what, r.status, r.body, status, body)
	}
	return r
}

func recv[T any](t *testing.T, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitBound):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// respPath and errPath are the invocation result paths for id.
func respPath(id string) string {
	return runtimeapi.PathInvocation + id + runtimeapi.InvocationResponse
}

func errPath(id string) string {
	return runtimeapi.PathInvocation + id + runtimeapi.InvocationError
}

func errJSON(errorType, message string) string {
	return string(runtimeapi.ErrorDocument{ErrorMessage: message, ErrorType: errorType}.Marshal())
}

// decodeErrorDoc parses an {"errorMessage","errorType"} body.
func decodeErrorDoc(t *testing.T, b []byte) runtimeapi.ErrorDocument {
	t.Helper()
	var d runtimeapi.ErrorDocument
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("body %q is not an error document: %v", b, err)
	}
	return d
}

// headerExact checks that got has exactly the headers of want; a want entry
// with a nil value only has to be present (Date).
func headerExact(t *testing.T, what string, got, want http.Header) {
	t.Helper()
	for k, v := range want {
		gv, ok := got[k]
		if !ok {
			t.Errorf("%s: header %s missing", what, k)
			continue
		}
		if v != nil && !slices.Equal(gv, v) {
			t.Errorf("%s: header %s = %q, want %q", what, k, gv, v)
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: unexpected header %s: %q", what, k, v)
		}
	}
}
