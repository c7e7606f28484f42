package proxy_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// Every method and path reaches the upstream byte-exact: no cleaning, no
// re-encoding of the request id, query strings kept, other API families too.
func TestForwardsEveryMethodAndPathByteExact(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	addr := startLrap(t, up.addr())
	targets := []struct{ method, uri string }{
		{"GET", "/2018-06-01/runtime/invocation/next"},
		{"POST", "/2018-06-01/runtime/invocation/8476a536-e9f4-11e8-9739-2dfe598c3fcd/response"},
		{"POST", "/2018-06-01/runtime/invocation/a%20b%7E~/error?x=1&y=%2a&z"},
		{"GET", "/2018-06-01/ping?"},
		{"PUT", "/2022-07-01/telemetry"},
		{"PUT", "/2020-08-15/logs"},
		{"GET", "/2021-04-23/credentials"},
		{"POST", "/2020-01-01/extension/register"},
		{"DELETE", "/some/unknown/path;matrix=1"},
		{"PATCH", "/"},
		{"HEAD", "/2018-06-01/ping"},
		{"OPTIONS", "/2018-06-01/ping"},
	}
	for _, tc := range targets {
		resp, _ := rawExchange(t, addr, tc.method+" "+tc.uri+" HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		if resp.StatusCode != 204 {
			t.Errorf("%s %s: status %d, want the upstream's 204", tc.method, tc.uri, resp.StatusCode)
		}
	}
	seen := up.requests()
	if len(seen) != len(targets) {
		t.Fatalf("upstream saw %d requests, want %d", len(seen), len(targets))
	}
	for i, tc := range targets {
		if seen[i].Method != tc.method || seen[i].RequestURI != tc.uri {
			t.Errorf("upstream saw %s %s, want %s %s", seen[i].Method, seen[i].RequestURI, tc.method, tc.uri)
		}
		if seen[i].Host != up.addr() {
			t.Errorf("upstream Host %q, want the upstream address %q", seen[i].Host, up.addr())
		}
	}
}

// All end-to-end headers cross in both directions, unknown ones and empty
// values included; hop-by-hop headers do not; nothing is added.
func TestHeadersCrossBothWaysUnchanged(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Lambda-Runtime-Aws-Request-Id"] = []string{"req-1"}
		h["Lambda-Runtime-Deadline-Ms"] = []string{"1700000000000"}
		h["Lambda-Runtime-Trace-Id"] = []string{""}
		h["Lambda-Runtime-Invocation-Id"] = []string{"inv-9"}
		h["X-Unknown-Multi"] = []string{"a", "b"}
		h["Connection"] = []string{"X-Hop"}
		h["X-Hop"] = []string{"must not cross"}
		h["Keep-Alive"] = []string{"timeout=5"}
		h["Content-Type"] = []string{"application/json"}
		w.WriteHeader(200)
		_, _ = io.WriteString(w, `{"k":"v"}`)
	})
	addr := startLrap(t, up.addr())
	req := "POST /2018-06-01/runtime/invocation/req-1/error HTTP/1.1\r\n" +
		"Host: 127.0.0.1:9009\r\n" +
		"User-Agent: aws-lambda-java/17\r\n" +
		"Lambda-Runtime-Function-Error-Type: Runtime.Crash\r\n" +
		"Lambda-Runtime-Function-XRay-Error-Cause: {\"message\":\"m\"}\r\n" +
		"lambda-runtime-lower-case: yes\r\n" +
		"X-Empty:\r\n" +
		"X-Multi: 1\r\nX-Multi: 2\r\n" +
		"Connection: keep-alive, X-Drop-Me\r\n" +
		"X-Drop-Me: hop\r\n" +
		"Proxy-Authorization: secret\r\n" +
		"Te: trailers\r\n" +
		"Content-Type: application/json\r\n" +
		"Content-Length: 2\r\n\r\n{}"
	resp, raw := rawExchange(t, addr, req)

	got := up.requests()[0].Header
	for k, want := range map[string][]string{
		"User-Agent":                               {"aws-lambda-java/17"},
		"Lambda-Runtime-Function-Error-Type":       {"Runtime.Crash"},
		"Lambda-Runtime-Function-Xray-Error-Cause": {`{"message":"m"}`},
		"Lambda-Runtime-Lower-Case":                {"yes"},
		"X-Empty":                                  {""},
		"X-Multi":                                  {"1", "2"},
		"Content-Type":                             {"application/json"},
		"Content-Length":                           {"2"},
	} {
		if fmt.Sprint(got[k]) != fmt.Sprint(want) {
			t.Errorf("upstream header %s = %q, want %q", k, got[k], want)
		}
	}
	for _, k := range []string{"Connection", "X-Drop-Me", "Proxy-Authorization", "Te", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Via", "Accept-Encoding"} {
		if v, ok := got[k]; ok {
			t.Errorf("upstream got header %s: %q; it must not cross lrap", k, v)
		}
	}

	for k, want := range map[string][]string{
		"Lambda-Runtime-Aws-Request-Id": {"req-1"},
		"Lambda-Runtime-Deadline-Ms":    {"1700000000000"},
		"Lambda-Runtime-Trace-Id":       {""},
		"Lambda-Runtime-Invocation-Id":  {"inv-9"},
		"X-Unknown-Multi":               {"a", "b"},
		"Content-Type":                  {"application/json"},
	} {
		if fmt.Sprint(resp.Header[k]) != fmt.Sprint(want) {
			t.Errorf("runtime got header %s = %q, want %q", k, resp.Header[k], want)
		}
	}
	for _, k := range []string{"X-Hop", "Keep-Alive", "Via"} {
		if _, ok := resp.Header[k]; ok {
			t.Errorf("runtime got hop-by-hop or added header %s", k)
		}
	}
	if n := strings.Count(strings.ToLower(raw), "\r\ncontent-length:"); n != 1 {
		t.Errorf("runtime got %d Content-Length headers, want exactly 1:\n%s", n, raw)
	}
}

// A runtime request without User-Agent stays without one (Go's transport
// would add its own), and an upstream answer without Content-Type or Date
// gets none added (Go's server would sniff or stamp them).
func TestAddsNoHeadersOfItsOwn(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = nil
		w.Header()["Date"] = nil
		w.WriteHeader(200)
		_, _ = io.WriteString(w, `{"eventType":"SHUTDOWN","deadlineMs":1,"shutdownReason":"spindown"}`)
	})
	addr := startLrap(t, up.addr())
	resp, raw := rawExchange(t, addr, "GET /2020-01-01/extension/event/next HTTP/1.1\r\nHost: x\r\nLambda-Extension-Identifier: id\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if _, ok := up.requests()[0].Header["User-Agent"]; ok {
		t.Errorf("upstream got a User-Agent the runtime never sent: %q", up.requests()[0].Header["User-Agent"])
	}
	for _, k := range []string{"content-type:", "date:"} {
		if strings.Contains(strings.ToLower(raw), "\r\n"+k) {
			t.Errorf("runtime got %s which the upstream never sent:\n%s", k, raw)
		}
	}
}

// Status codes and bodies are relayed verbatim, and lrap never answers 202
// or any success of its own.
func TestRelaysStatusesAndBodiesVerbatim(t *testing.T) {
	cases := []struct {
		status int
		body   string
	}{
		{202, `{"status":"OK"}` + "\n"},
		{400, `{"errorMessage":"Invalid request ID","errorType":"InvalidRequestID"}` + "\n"},
		{403, `{"errorMessage":"State transition from RuntimeResponseSentState to InvocationResponse failed for runtime. Error: State transition is not allowed","errorType":"InvalidStateTransition"}` + "\n"},
		{410, `{"errorMessage":"Invoke timeout","errorType":"InvokeTimeout"}` + "\n"},
		{413, `{"errorMessage":"Exceeded maximum allowed payload size (6291556 bytes).","errorType":"RequestEntityTooLarge"}` + "\n"},
		{500, `{"errorMessage":"Internal Server Error","errorType":"InternalServerError"}` + "\n"},
		{404, "404 page not found\n"},
		{405, ""},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				if tc.body != "" && tc.status != 404 {
					w.Header().Set("Content-Type", "application/json")
				}
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			})
			addr := startLrap(t, up.addr())
			resp, err := runtimeClient().Post("http://"+addr+"/2018-06-01/runtime/invocation/id/response", "text/plain", strings.NewReader("result"))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || string(body) != tc.body {
				t.Errorf("runtime got %d %q, want %d %q", resp.StatusCode, body, tc.status, tc.body)
			}
		})
	}
}

// Request trailers (the runtime's mid-stream error report) reach the upstream
// with their values, declared or not; ReverseProxy would send them empty.
func TestRequestTrailersArriveWithValues(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {})
	up.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		up.mu.Lock()
		up.seen = append(up.seen, &seenRequest{RequestURI: r.RequestURI, Header: r.Header.Clone(), TransferEncoding: r.TransferEncoding})
		up.mu.Unlock()
		up.record(r)
		w.WriteHeader(202)
	})
	addr := startLrap(t, up.addr())

	// Declared, as aws-lambda-go sends them.
	declared := "POST /2018-06-01/runtime/invocation/id/response HTTP/1.1\r\nHost: x\r\n" +
		"Transfer-Encoding: chunked\r\nTrailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body\r\n\r\n" +
		"5\r\nhello\r\n0\r\nLambda-Runtime-Function-Error-Type: Runtime.StreamError\r\nLambda-Runtime-Function-Error-Body: eyJlIjoxfQ==\r\n\r\n"
	// Not declared up front.
	undeclared := "POST /2018-06-01/runtime/invocation/id2/response HTTP/1.1\r\nHost: x\r\n" +
		"Transfer-Encoding: chunked\r\n\r\n" +
		"5\r\nhello\r\n0\r\nLambda-Runtime-Function-Error-Type: Runtime.Late\r\n\r\n"
	for i, req := range []string{declared, undeclared} {
		if resp, _ := rawExchange(t, addr, req); resp.StatusCode != 202 {
			t.Fatalf("request %d: status %d", i, resp.StatusCode)
		}
	}
	seen := up.requests()
	if got := seen[0].Trailer.Get("Lambda-Runtime-Function-Error-Type"); got != "Runtime.StreamError" {
		t.Errorf("declared trailer Error-Type = %q, want Runtime.StreamError", got)
	}
	if got := seen[0].Trailer.Get("Lambda-Runtime-Function-Error-Body"); got != "eyJlIjoxfQ==" {
		t.Errorf("declared trailer Error-Body = %q", got)
	}
	if got := seen[1].Trailer.Get("Lambda-Runtime-Function-Error-Type"); got != "Runtime.Late" {
		t.Errorf("undeclared trailer Error-Type = %q, want Runtime.Late", got)
	}
	for i, s := range seen {
		if string(s.Body) != "hello" || fmt.Sprint(s.TransferEncoding) != "[chunked]" {
			t.Errorf("request %d: upstream body %q framing %v, want hello chunked", i, s.Body, s.TransferEncoding)
		}
	}
}

// Framing is preserved: a Content-Length body stays Content-Length, a chunked
// one stays chunked, in both directions, whatever its size.
func TestFramingIsPreserved(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {})
	up.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		up.mu.Lock()
		up.seen = append(up.seen, &seenRequest{RequestURI: r.RequestURI, TransferEncoding: r.TransferEncoding, ContentLength: r.ContentLength})
		up.mu.Unlock()
		up.record(r)
		if strings.HasSuffix(r.RequestURI, "chunked") {
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
		} else {
			w.Header().Set("Content-Length", "2")
		}
		_, _ = io.WriteString(w, "ok")
	})
	addr := startLrap(t, up.addr())
	resp, raw := rawExchange(t, addr, "POST /cl HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
	if resp.ContentLength != 2 || len(resp.TransferEncoding) != 0 {
		t.Errorf("Content-Length answer arrived as %v / %d:\n%s", resp.TransferEncoding, resp.ContentLength, raw)
	}
	resp, raw = rawExchange(t, addr, "POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
	if fmt.Sprint(resp.TransferEncoding) != "[chunked]" {
		t.Errorf("chunked answer arrived as %v / %d:\n%s", resp.TransferEncoding, resp.ContentLength, raw)
	}
	seen := up.requests()
	if seen[0].ContentLength != 3 || len(seen[0].TransferEncoding) != 0 {
		t.Errorf("Content-Length request went upstream as %v / %d", seen[0].TransferEncoding, seen[0].ContentLength)
	}
	if fmt.Sprint(seen[1].TransferEncoding) != "[chunked]" || string(seen[1].Body) != "abc" {
		t.Errorf("chunked request went upstream as %v %q", seen[1].TransferEncoding, seen[1].Body)
	}
}

// A large body crosses intact in both directions (6 MB, the buffered limit).
func TestLargeBodiesCrossIntact(t *testing.T) {
	payload := bytes.Repeat([]byte("0123456789abcdef"), 6<<20/16)
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {})
	up.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if !bytes.Equal(b, payload) {
			w.WriteHeader(500)
			return
		}
		_, _ = w.Write(b)
	})
	addr := startLrap(t, up.addr())
	resp, err := runtimeClient().Post("http://"+addr+"/x", "application/octet-stream", bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(got, payload) {
		t.Fatalf("status %d, %d bytes back, want 200 and the %d bytes sent", resp.StatusCode, len(got), len(payload))
	}
}
