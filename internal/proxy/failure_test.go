package proxy_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lrap/lrap/internal/proxy"
)

func fastRedial(c *proxy.Config) {
	c.DialAttempts = 3
	c.DialBackoff = time.Millisecond
}

// With nothing listening upstream, lrap redials a bounded number of times,
// answers 502 with an LRAP error document, and stays up.
func TestUpstreamDownAnswers502AndStaysUp(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := ln.Addr().String()
	ln.Close()
	addr := startLrap(t, deadAddr, fastRedial)
	for _, path := range []string{nextPath, "/2018-06-01/runtime/invocation/id/response"} {
		resp, raw := rawExchange(t, addr, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp.StatusCode != 502 {
			t.Fatalf("%s: status %d, want 502:\n%s", path, resp.StatusCode, raw)
		}
		var doc struct{ ErrorType, ErrorMessage string }
		body := raw[strings.Index(raw, "\r\n\r\n")+4:]
		if err := json.Unmarshal([]byte(body), &doc); err != nil || doc.ErrorType != "LRAP.UpstreamUnavailable" || !strings.Contains(doc.ErrorMessage, deadAddr) {
			t.Errorf("%s: body %q, want LRAP.UpstreamUnavailable naming %s", path, body, deadAddr)
		}
	}
}

// An upstream that is briefly unreachable (restarting) is redialed with
// backoff, and the request succeeds once it is back.
func TestUpstreamRestartingIsRedialed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	upAddr := ln.Addr().String()
	ln.Close()
	// Default policy: 6 attempts over about 310ms; the upstream is back after 30ms.
	addr := startLrap(t, upAddr)
	back := make(chan struct{})
	go func() {
		defer close(back)
		time.Sleep(30 * time.Millisecond)
		ln, err := net.Listen("tcp", upAddr)
		if err != nil {
			t.Error(err)
			return
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })}
		t.Cleanup(func() { srv.Close() })
		go func() { _ = srv.Serve(ln) }()
	}()
	resp, _ := rawExchange(t, addr, "GET /2018-06-01/ping HTTP/1.1\r\nHost: x\r\n\r\n")
	<-back
	if resp.StatusCode != 200 {
		t.Fatalf("status %d, want 200 from the upstream once it was back", resp.StatusCode)
	}
}

// deadConnUpstream answers the first request on each connection and then
// drops the connection silently when the next request arrives on it, like a
// pooled connection that died across a SnapStart restore.
type deadConnUpstream struct {
	ln       net.Listener
	requests atomic.Int32
	bodies   sync.Map // body -> count
	wg       sync.WaitGroup
}

func newDeadConnUpstream(t *testing.T) *deadConnUpstream {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &deadConnUpstream{ln: ln}
	u.wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			u.wg.Go(func() { u.serve(conn) })
		}
	})
	t.Cleanup(func() { ln.Close(); u.wg.Wait() })
	return u
}

func (u *deadConnUpstream) serve(conn net.Conn) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(testTimeout))
	br := bufio.NewReader(conn)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	b, _ := io.ReadAll(req.Body)
	u.requests.Add(1)
	n, _ := u.bodies.LoadOrStore(string(b), new(atomic.Int32))
	n.(*atomic.Int32).Add(1)
	_, _ = io.WriteString(conn, "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n{\"status\":\"OK\"}\n")
	// The connection looks idle and alive to the client. When the next
	// request arrives, read it and drop the connection without an answer.
	if _, err := http.ReadRequest(br); err == nil {
		if tcp, ok := conn.(*net.TCPConn); ok {
			_ = tcp.SetLinger(0)
		}
	}
}

// A dead pooled connection is redialed transparently for a request whose
// body was not consumed (a long poll), and a request whose body was consumed
// is never replayed: the upstream receives it exactly once.
func TestDeadPooledConnectionRedialedButConsumedBodyNeverReplayed(t *testing.T) {
	u := newDeadConnUpstream(t)
	addr := startLrap(t, u.ln.Addr().String(), fastRedial)
	client := runtimeClient()

	get := func() int {
		resp, err := client.Get("http://" + addr + "/2018-06-01/ping")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := get(); s != 202 {
		t.Fatalf("first GET %d", s)
	}
	if s := get(); s != 202 {
		t.Fatalf("GET on a dead pooled connection answered %d; it must be redialed transparently", s)
	}

	resp, err := client.Post("http://"+addr+"/2018-06-01/runtime/invocation/id/response", "application/json", strings.NewReader(`{"once":true}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// The POST went out on the connection the last GET left pooled, which
	// the upstream drops after reading it. Whatever lrap answers, the body
	// must not reach the upstream a second time.
	time.Sleep(50 * time.Millisecond)
	if n, ok := u.bodies.Load(`{"once":true}`); ok && n.(*atomic.Int32).Load() > 1 {
		t.Errorf("a consumed /response body was replayed: upstream got it %d times", n.(*atomic.Int32).Load())
	}
	if resp.StatusCode != 202 && resp.StatusCode != 502 {
		t.Errorf("POST answered %d, want the upstream's 202 or lrap's 502", resp.StatusCode)
	}
}

// Request targets that could address anything but the plain path are refused
// with 400 and an LRAP error document, and never forwarded.
func TestBadRequestTargetsRefused(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })
	addr := startLrap(t, up.addr())
	for _, line := range []string{
		"GET http://169.254.169.254/latest/meta-data HTTP/1.1",
		"GET http://" + up.addr() + "/2018-06-01/ping HTTP/1.1",
		"CONNECT 10.0.0.1:443 HTTP/1.1",
		"OPTIONS * HTTP/1.1",
		"GET //evil.example/2018-06-01/ping HTTP/1.1",
		"GET /2018-06-01/../2020-01-01/extension/register HTTP/1.1",
		"GET /2018-06-01/./ping HTTP/1.1",
		"GET /2018-06-01/%2e%2E/x HTTP/1.1",
		"GET /2018-06-01/.%2e HTTP/1.1",
		"GET /2018-06-01/%2E HTTP/1.1",
		"GET /.. HTTP/1.1",
		"GET /2018-06-01/a%2Fb HTTP/1.1",
		"GET /2018-06-01/a%5cb HTTP/1.1",
		"GET /2018-06-01/a\\..\\b HTTP/1.1",
	} {
		resp, raw := rawExchange(t, addr, line+"\r\nHost: x\r\nConnection: close\r\n\r\n")
		if resp.StatusCode != 400 || !strings.Contains(raw, `"errorType":"LRAP.InvalidRequestTarget"`) {
			t.Errorf("%q: got %d, want 400 LRAP.InvalidRequestTarget:\n%s", line, resp.StatusCode, raw)
		}
	}
	if n := len(up.requests()); n != 0 {
		t.Errorf("%d refused requests reached the upstream", n)
	}
	// Dots inside a segment are ordinary characters.
	resp, _ := rawExchange(t, addr, "GET /2018-06-01/runtime/invocation/a..b.c/response HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Errorf("a path with dots inside a segment got %d", resp.StatusCode)
	}
}
