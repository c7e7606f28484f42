//go:build linux

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lrap/lrap/internal/sandbox"
)

// invokeTimeout bounds one invoke; the slowest (1 MB through the curl
// runtime, or a Managed Instances init) takes well under a second here.
const invokeTimeout = 60 * time.Second

// artifacts are the binaries every test runs, built once per test process.
type artifacts struct {
	root        string
	rie         string
	lrap        string
	wrapper     string
	function    string
	curlRuntime string
}

var (
	buildOnce sync.Once
	built     artifacts
	buildErr  error
	buildDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// needArtifacts skips in -short mode and otherwise builds lrap and the test
// function and finds or installs the pinned emulator.
func needArtifacts(t *testing.T) artifacts {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: runs the Lambda Runtime Interface Emulator with the lrap and function binaries; skipped with -short")
	}
	buildOnce.Do(func() { built, buildErr = build() })
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return built
}

func build() (artifacts, error) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		return artifacts{}, err
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return artifacts{}, fmt.Errorf("e2e: repository root not found at %s: %w", root, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	a := artifacts{
		root:        root,
		wrapper:     filepath.Join(root, "layer", "lrap-wrapper"),
		curlRuntime: filepath.Join(root, "test", "e2e", "curl-runtime", "bootstrap"),
	}
	// LRAP_E2E_RIE_DIR lets CI keep the emulator in its own cache.
	rieDir := os.Getenv("LRAP_E2E_RIE_DIR")
	if rieDir == "" {
		rieDir = filepath.Join(root, ".cache", "bin")
	}
	if a.rie, err = sandbox.EnsureRIE(ctx, rieDir); err != nil {
		return a, err
	}
	if buildDir, err = os.MkdirTemp("", "lrap-e2e-"); err != nil {
		return a, err
	}
	// LRAP_E2E_LRAP runs the suite against a given lrap binary (a release
	// build, say) instead of one built from this checkout.
	if a.lrap = os.Getenv("LRAP_E2E_LRAP"); a.lrap == "" {
		a.lrap = filepath.Join(buildDir, "lrap")
		if err := goBuild(ctx, root, "./cmd/lrap", a.lrap); err != nil {
			return a, err
		}
	}
	// The function is its own module so that aws-lambda-go stays out of the
	// root module's dependencies.
	a.function = filepath.Join(buildDir, "function")
	if err := goBuild(ctx, filepath.Join(root, "test", "e2e", "function"), ".", a.function); err != nil {
		return a, err
	}
	return a, nil
}

func goBuild(ctx context.Context, dir, pkg, out string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("e2e: the go command is needed to build %s: %w", pkg, err)
	}
	cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-o", out, pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.WaitDelay = 5 * time.Second
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("e2e: go build %s (in %s): %w\n%s", pkg, dir, err, b)
	}
	return nil
}

// pair is the same function under two emulators: one talking to the Runtime
// API directly, one through lrap. Everything the caller sees must be equal.
type pair struct {
	direct  *sandbox.Sandbox
	proxied *sandbox.Sandbox
}

func startPair(t *testing.T, a artifacts, function string, maxConcurrency int) pair {
	t.Helper()
	base := sandbox.Config{RIE: a.rie, Function: function, MaxConcurrency: maxConcurrency}
	withLrap := base
	withLrap.Lrap = a.lrap
	withLrap.Wrapper = a.wrapper
	withLrap.Env = map[string]string{"LRAP_LOG_LEVEL": "debug"}
	return pair{
		direct:  startSandbox(t, base, "direct"),
		proxied: startSandbox(t, withLrap, "lrap"),
	}
}

func startSandbox(t *testing.T, cfg sandbox.Config, name string) *sandbox.Sandbox {
	t.Helper()
	if os.Getenv("LRAP_E2E_VERBOSE") != "" {
		cfg.Output = &prefixWriter{w: os.Stderr, prefix: "[" + name + "] "}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := sandbox.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start %s sandbox: %v", name, err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stop %s sandbox: %v", name, err)
		}
		if t.Failed() {
			t.Logf("output of the %s sandbox (emulator, runtime, extensions):\n%s", name, tail(s.Output(), 48<<10))
		}
	})
	return s
}

// do performs one invoke. Managed Instances turns an invoke away with 400
// Runtime.Unavailable when no runtime worker is parked in /next at that
// instant (backpressure; Lambda would route it to another environment), which
// happens between a response and the worker's next poll. The invoke is then
// repeated, within the same bound; a proxy that stopped re-polling would
// still fail.
func do(s *sandbox.Sandbox, req sandbox.Request) (*sandbox.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), invokeTimeout)
	defer cancel()
	for {
		r, err := s.Do(ctx, req)
		if err != nil || !unavailable(r) {
			return r, err
		}
		select {
		case <-ctx.Done():
			return r, nil
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func unavailable(r *sandbox.Response) bool {
	return r.Status == http.StatusBadRequest && r.Header.Get("Error-Type") == "Runtime.Unavailable"
}

// invokeBoth sends req to both sandboxes and fails the test unless the
// caller-visible results are identical.
func invokeBoth(t *testing.T, p pair, req sandbox.Request) (direct, proxied *sandbox.Response) {
	t.Helper()
	direct, err := do(p.direct, req)
	if err != nil {
		t.Fatalf("direct invoke %s: %v", describe(req), err)
	}
	proxied, err = do(p.proxied, req)
	if err != nil {
		t.Fatalf("invoke through lrap %s: %v", describe(req), err)
	}
	compareResponses(t, req, direct, proxied)
	return direct, proxied
}

// ignoredHeaders differ between any two invokes, proxy or not.
var ignoredHeaders = map[string]bool{"Date": true}

func compareResponses(t *testing.T, req sandbox.Request, want, got *sandbox.Response) {
	t.Helper()
	if want.Status != got.Status {
		t.Errorf("%s: status: direct %d, through lrap %d", describe(req), want.Status, got.Status)
	}
	if w, g := headerLines(want.Header), headerLines(got.Header); w != g {
		t.Errorf("%s: headers differ\ndirect:\n%s\nthrough lrap:\n%s", describe(req), w, g)
	}
	if d := bodyDiff(want.Body, got.Body); d != "" {
		t.Errorf("%s: body differs: %s", describe(req), d)
	}
}

func headerLines(h http.Header) string {
	var lines []string
	for k, vs := range h {
		if ignoredHeaders[k] {
			continue
		}
		for _, v := range vs {
			lines = append(lines, "  "+k+": "+v)
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// bodyDiff describes the first difference between two bodies, or returns ""
// when they are byte-for-byte equal.
func bodyDiff(want, got []byte) string {
	if bytes.Equal(want, got) {
		return ""
	}
	i := 0
	for i < len(want) && i < len(got) && want[i] == got[i] {
		i++
	}
	return fmt.Sprintf("direct %d bytes, through lrap %d bytes, first difference at offset %d: direct %q, through lrap %q",
		len(want), len(got), i, snippet(want, i), snippet(got, i))
}

func snippet(b []byte, at int) string {
	from := max(0, at-40)
	to := min(len(b), at+80)
	return string(b[from:to])
}

func describe(req sandbox.Request) string {
	p := req.Payload
	if len(p) > 120 {
		p = append(append([]byte{}, p[:120]...), fmt.Sprintf("...(%d bytes)", len(req.Payload))...)
	}
	if req.RequestID != "" {
		return fmt.Sprintf("invoke %s %s", req.RequestID, p)
	}
	return fmt.Sprintf("invoke %s", p)
}

// forwarded is one of lrap's debug lines, comparable.
type forwarded struct {
	Method string
	Path   string
	Status int
}

func (f forwarded) String() string { return fmt.Sprintf("%s %s %d", f.Method, f.Path, f.Status) }

// forwardedLines returns lrap's debug lines in out.
func forwardedLines(out string) []forwarded {
	var lines []forwarded
	for _, r := range sandbox.LrapRequests(out) {
		lines = append(lines, forwarded{Method: r.Method, Path: r.Path, Status: r.Status})
	}
	return lines
}

// expectForwarded waits (bounded) until lrap has logged every wanted line
// after mark. lrap logs a request once it has relayed the answer, which in
// Managed Instances can be after the caller already has its response.
func expectForwarded(t *testing.T, s *sandbox.Sandbox, mark int, want ...forwarded) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	var missing []forwarded
	for {
		seen := map[forwarded]int{}
		for _, f := range forwardedLines(s.OutputSince(mark)) {
			seen[f]++
		}
		missing = missing[:0]
		for _, w := range want {
			if seen[w] == 0 {
				missing = append(missing, w)
			} else {
				seen[w]--
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("lrap did not log forwarding %v (LRAP_LOG_LEVEL=debug); it logged:\n%s", missing, describeForwarded(forwardedLines(s.OutputSince(mark))))
}

func describeForwarded(fs []forwarded) string {
	if len(fs) == 0 {
		return "  (nothing)"
	}
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&b, "  %s\n", f)
	}
	return b.String()
}

func nextLine() forwarded {
	return forwarded{Method: http.MethodGet, Path: "/2018-06-01/runtime/invocation/next", Status: http.StatusOK}
}

// outcomeLine is the runtime's /response or /error for a request id, which
// the API accepts with 202.
func outcomeLine(requestID, outcome string) forwarded {
	return forwarded{Method: http.MethodPost, Path: "/2018-06-01/runtime/invocation/" + requestID + "/" + outcome, Status: http.StatusAccepted}
}

// runConcurrently sends reqs to s with at most parallel invokes in flight.
func runConcurrently(s *sandbox.Sandbox, reqs []sandbox.Request, parallel int) ([]*sandbox.Response, error) {
	res := make([]*sandbox.Response, len(reqs))
	errs := make([]error, len(reqs))
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			res[i], errs[i] = do(s, reqs[i])
			if errs[i] != nil {
				errs[i] = fmt.Errorf("%s: %w", describe(reqs[i]), errs[i])
			}
		}()
	}
	wg.Wait()
	return res, errors.Join(errs...)
}

// waitExit waits (bounded) for an emulator that is expected to end by itself.
func waitExit(t *testing.T, s *sandbox.Sandbox, name string) {
	t.Helper()
	select {
	case <-s.Exited():
	case <-time.After(10 * time.Second):
		t.Errorf("%s emulator still running 10s after its runtime exited", name)
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "...\n" + s[len(s)-n:]
}

// prefixWriter labels each line of a sandbox's live output, so that the two
// sandboxes of a pair can be told apart in LRAP_E2E_VERBOSE mode.
type prefixWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
	part   []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.part = append(p.part, b...)
	for {
		i := bytes.IndexByte(p.part, '\n')
		if i < 0 {
			break
		}
		if _, err := fmt.Fprintf(p.w, "%s%s\n", p.prefix, p.part[:i]); err != nil {
			return len(b), err
		}
		p.part = p.part[i+1:]
	}
	return len(b), nil
}
