package proxy_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A streamed /response reaches the upstream piece by piece: the first chunk
// is there before the runtime has sent the last one.
func TestStreamingRequestFirstChunkArrivesBeforeLast(t *testing.T) {
	firstArrived := make(chan string, 1)
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 64)
		n, _ := r.Body.Read(buf)
		firstArrived <- string(buf[:n])
		rest, _ := io.ReadAll(r.Body)
		w.WriteHeader(202)
		_, _ = w.Write(rest)
	})
	addr := startLrap(t, up.addr())

	pr, pw := io.Pipe()
	req, _ := http.NewRequestWithContext(ctxT(t), "POST", "http://"+addr+"/2018-06-01/runtime/invocation/id/response", pr)
	req.Header.Set("Lambda-Runtime-Function-Response-Mode", "streaming")
	done := make(chan *http.Response, 1)
	go func() {
		resp, err := runtimeClient().Do(req)
		if err != nil {
			t.Error(err)
			close(done)
			return
		}
		done <- resp
	}()
	if _, err := io.WriteString(pw, "first"); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-firstArrived:
		if got != "first" {
			t.Fatalf("upstream's first read was %q", got)
		}
	case <-time.After(testTimeout):
		t.Fatal("the first chunk did not reach the upstream while the runtime held back the rest")
	}
	_, _ = io.WriteString(pw, "last")
	pw.Close()
	resp := <-done
	if resp == nil {
		return
	}
	rest, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 202 || string(rest) != "last" {
		t.Errorf("got %d %q", resp.StatusCode, rest)
	}
	if got := up.requests()[0].Header.Get("Lambda-Runtime-Function-Response-Mode"); got != "streaming" {
		t.Errorf("response mode header %q, want exactly streaming", got)
	}
}

// A streamed answer reaches the runtime piece by piece too.
func TestStreamingResponseChunksForwardedAsTheyCome(t *testing.T) {
	next := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		_, _ = io.WriteString(w, "one")
		w.(http.Flusher).Flush()
		select {
		case <-next:
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(w, "two")
	})
	addr := startLrap(t, up.addr())
	resp, err := runtimeClient().Get("http://" + addr + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first := make(chan string, 1)
	go func() {
		buf := make([]byte, 3)
		_, _ = io.ReadFull(resp.Body, buf)
		first <- string(buf)
	}()
	select {
	case got := <-first:
		if got != "one" {
			t.Fatalf("first piece %q", got)
		}
	case <-time.After(testTimeout):
		close(next)
		t.Fatal("the first piece did not reach the runtime before the upstream sent the second")
	}
	close(next)
	rest, _ := io.ReadAll(resp.Body)
	if string(rest) != "two" {
		t.Errorf("second piece %q", rest)
	}
}

// Expect: 100-continue is answered by lrap and not forwarded, so the
// upstream leg never waits for a 100 that a Go server would not send before
// it reads the body.
func TestExpectContinueAddsNoStall(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.WriteHeader(202)
		_, _ = w.Write(b)
	})
	addr := startLrap(t, up.addr())
	conn, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(testTimeout))
	_, _ = io.WriteString(conn, "POST /2018-06-01/runtime/invocation/id/response HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
	br := bufio.NewReader(conn)
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100") {
		t.Fatalf("wanted 100 Continue before sending the body, got %q %v", line, err)
	}
	_, _ = br.ReadString('\n') // blank line after the 100
	_, _ = io.WriteString(conn, "body")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 202 || string(b) != "body" {
		t.Errorf("got %d %q", resp.StatusCode, b)
	}
	if v, ok := up.requests()[0].Header["Expect"]; ok {
		t.Errorf("Expect %q was forwarded upstream", v)
	}
}
