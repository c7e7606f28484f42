package proxy_test

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lrap/lrap/internal/proxy"
)

// testTimeout bounds every wait in these tests.
const testTimeout = 5 * time.Second

// upstream is a scripted stand-in for the Runtime API that records what
// reached it exactly as it arrived.
type upstream struct {
	*httptest.Server
	mu   sync.Mutex
	seen []*seenRequest
}

type seenRequest struct {
	Method, RequestURI, Host string
	Header, Trailer          http.Header
	TransferEncoding         []string
	ContentLength            int64
	Body                     []byte
}

func newUpstream(t *testing.T, h http.HandlerFunc) *upstream {
	t.Helper()
	u := &upstream{}
	u.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &seenRequest{Method: r.Method, RequestURI: r.RequestURI, Host: r.Host, Header: r.Header.Clone(),
			TransferEncoding: r.TransferEncoding, ContentLength: r.ContentLength}
		u.mu.Lock()
		u.seen = append(u.seen, rec)
		u.mu.Unlock()
		h(w, r)
	}))
	u.Start()
	t.Cleanup(u.Close)
	return u
}

// record reads the whole body and the trailers into the last seen request.
// Handlers that stream call it themselves at the point they want.
func (u *upstream) record(r *http.Request) []byte {
	b, _ := io.ReadAll(r.Body)
	u.mu.Lock()
	defer u.mu.Unlock()
	for i := len(u.seen) - 1; i >= 0; i-- {
		if u.seen[i].RequestURI == r.RequestURI && u.seen[i].Body == nil {
			u.seen[i].Body = b
			u.seen[i].Trailer = r.Trailer.Clone()
			break
		}
	}
	return b
}

func (u *upstream) requests() []*seenRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]*seenRequest(nil), u.seen...)
}

func (u *upstream) addr() string { return strings.TrimPrefix(u.URL, "http://") }

// startLrap serves a Proxy for upstreamAddr on a loopback port, the way Run
// does, and returns its host:port.
func startLrap(t *testing.T, upstreamAddr string, cfg ...func(*proxy.Config)) string {
	t.Helper()
	addr, _ := startLrapProxy(t, upstreamAddr, cfg...)
	return addr
}

// startLrapProxy is startLrap that also returns the Proxy it serves.
func startLrapProxy(t *testing.T, upstreamAddr string, cfg ...func(*proxy.Config)) (string, *proxy.Proxy) {
	t.Helper()
	c := proxy.Config{Upstream: upstreamAddr, Logger: testLogger(t)}
	for _, f := range cfg {
		f(&c)
	}
	px, err := proxy.New(c)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := proxy.NewServer(px, c.Logger)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		px.Close()
		srv.Close()
	})
	return ln.Addr().String(), px
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("LRAP_TEST_LOG") != "" {
		return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// runtimeClient plays the runtime: no proxy, and a timeout only so that a
// broken proxy fails the test instead of hanging it.
func runtimeClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{Proxy: nil, DisableCompression: true, MaxIdleConnsPerHost: 64},
		Timeout:   2 * testTimeout,
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// rawExchange writes req verbatim to addr and returns the raw answer up to
// the end of the response (bounded by testTimeout).
func rawExchange(t *testing.T, addr, req string) (*http.Response, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(testTimeout))
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	var raw strings.Builder
	br := bufio.NewReader(io.TeeReader(conn, &raw))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading raw response: %v (got %q)", err, raw.String())
	}
	_, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, raw.String()
}
