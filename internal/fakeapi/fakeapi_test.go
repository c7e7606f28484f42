package fakeapi

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lrap/lrap/runtimeapi"
)

// waitBound bounds every wait in these tests.
const waitBound = 5 * time.Second

type reply struct {
	status  int
	header  http.Header
	body    string
	chunked bool
	cl      int64
	err     error
}

// tclient plays the runtime or an extension against one Server.
type tclient struct {
	t    *testing.T
	base string
	c    *http.Client
}

func start(t *testing.T, opts Options) (*Server, *tclient) {
	t.Helper()
	s, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64}
	t.Cleanup(func() {
		s.Close()
		tr.CloseIdleConnections()
	})
	return s, &tclient{t: t, base: "http://" + s.Addr(), c: &http.Client{Transport: tr}}
}

func bounded(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitBound)
	t.Cleanup(cancel)
	return ctx
}

// do sends one request; hdr holds header name/value pairs.
func (c *tclient) do(ctx context.Context, method, path string, body io.Reader, hdr ...string) reply {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return reply{err: err}
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.c.Do(req)
	if err != nil {
		return reply{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return reply{
		status:  resp.StatusCode,
		header:  resp.Header,
		body:    string(b),
		chunked: len(resp.TransferEncoding) > 0 && resp.TransferEncoding[0] == "chunked",
		cl:      resp.ContentLength,
		err:     err,
	}
}

// async runs do in a goroutine.
func (c *tclient) async(ctx context.Context, method, path string, body io.Reader, hdr ...string) <-chan reply {
	ch := make(chan reply, 1)
	go func() { ch <- c.do(ctx, method, path, body, hdr...) }()
	return ch
}

func (c *tclient) must(r reply, status int, body string) reply {
	c.t.Helper()
	if r.err != nil {
		c.t.Fatalf("request failed: %v", r.err)
	}
	if r.status != status || r.body != body {
		c.t.Fatalf("got %d %q, want %d %q", r.status, r.body, status, body)
	}
	return r
}

func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitBound):
		t.Fatal("timed out")
		panic("unreachable")
	}
}

func respPath(id string) string  { return runtimeapi.PathInvocation + id + "/response" }
func errorPath(id string) string { return runtimeapi.PathInvocation + id + "/error" }

func errJSON(errorType, message string) string {
	return string(runtimeapi.ErrorDocument{ErrorMessage: message, ErrorType: errorType}.Marshal())
}

const accepted = "{\"status\":\"OK\"}\n"

func TestRoutes(t *testing.T) {
	const unknownID = "6f1c2a4e-8d3b-4c5a-9e7f-0a1b2c3d4e5f"
	type tc struct {
		name, method, path, body string
		hdr                      []string
		status                   int
		want                     string
		ctype                    string // "-" means absent
		allow                    string
	}
	notFound := "404 page not found\n"
	common := []tc{
		{name: "ping", method: "GET", path: "/2018-06-01/ping", status: 200, want: "pong", ctype: "text/plain; charset=utf-8"},
		{name: "ping query ignored", method: "GET", path: "/2018-06-01/ping?x=1", status: 200, want: "pong"},
		{name: "unknown path", method: "GET", path: "/nope", status: 404, want: notFound, ctype: "text/plain; charset=utf-8"},
		{name: "trailing slash not cleaned", method: "GET", path: "/2018-06-01/ping/", status: 404, want: notFound},
		{name: "double slash not cleaned", method: "GET", path: "/2018-06-01//ping", status: 404, want: notFound},
		{name: "credentials not mounted", method: "GET", path: "/2021-04-23/credentials", status: 404, want: notFound},
		{name: "response unknown id", method: "POST", path: respPath("nope"), body: "x", status: 400,
			want: errJSON("InvalidRequestID", "Invalid request ID"), ctype: "application/json"},
		{name: "error unknown id", method: "POST", path: errorPath("nope"), status: 400,
			want: errJSON("InvalidRequestID", "Invalid request ID")},
		{name: "bad invocation suffix", method: "POST", path: runtimeapi.PathInvocation + "x/other", status: 404, want: notFound},
		{name: "telemetry stub", method: "PUT", path: "/2022-07-01/telemetry", body: "{}", status: 202,
			want: errJSON("Telemetry.NotSupported", "Telemetry API is not supported"), ctype: "application/json"},
		{name: "register no name", method: "POST", path: runtimeapi.PathRegister, body: `{"events":[]}`, status: 403,
			want: errJSON("Extension.InvalidExtensionName", "Empty extension name")},
		{name: "register empty body", method: "POST", path: runtimeapi.PathRegister, hdr: []string{"Lambda-Extension-Name", "x"},
			status: 403, want: errJSON("InvalidRequestFormat", "unexpected end of JSON input")},
		{name: "register configurationKeys", method: "POST", path: runtimeapi.PathRegister,
			body: `{"configurationKeys":["a"]}`, hdr: []string{"Lambda-Extension-Name", "x"}, status: 403,
			want: errJSON("InvalidRequestFormat", "configurationKeys are deprecated; use environment variables instead")},
		{name: "register bad event", method: "POST", path: runtimeapi.PathRegister, body: `{"events":["FOO"]}`,
			hdr: []string{"Lambda-Extension-Name", "x"}, status: 403,
			want: errJSON("Extension.InvalidEventType", "FOO: ErrorInvalidEventType")},
		{name: "event next no id", method: "GET", path: runtimeapi.PathEventNext, status: 403,
			want: errJSON("Extension.MissingExtensionIdentifier", "Missing Lambda-Extension-Identifier header")},
		{name: "event next bad id", method: "GET", path: runtimeapi.PathEventNext, hdr: []string{"Lambda-Extension-Identifier", "xyz"},
			status: 403, want: errJSON("Extension.InvalidExtensionIdentifier", "Invalid Lambda-Extension-Identifier")},
		{name: "event next unknown id", method: "GET", path: runtimeapi.PathEventNext,
			hdr: []string{"Lambda-Extension-Identifier", strings.ToUpper(unknownID)}, status: 403,
			want: errJSON("Extension.UnknownExtensionIdentifier", "Unknown extension "+unknownID)},
		{name: "ext init error missing type", method: "POST", path: runtimeapi.PathExtInitError,
			hdr: []string{"Lambda-Extension-Identifier", unknownID}, status: 403,
			want: errJSON("Extension.MissingHeader", "Lambda-Extension-Function-Error-Type not found")},
		{name: "ext exit error unknown id", method: "POST", path: runtimeapi.PathExtExitError,
			hdr: []string{"Lambda-Extension-Identifier", unknownID, "Lambda-Extension-Function-Error-Type", "E.x"}, status: 403,
			want: errJSON("Extension.UnknownExtensionIdentifier", "Unknown Lambda-Extension-Identifier")},
	}
	classic := append(cloneCases(common),
		tc{name: "next wrong method", method: "POST", path: runtimeapi.PathNext, status: 405, want: "", ctype: "-", allow: "GET"},
		tc{name: "response wrong method", method: "GET", path: respPath("abc"), status: 405, want: "", allow: "POST"},
		tc{name: "logs stub", method: "PUT", path: "/2020-08-15/logs", body: "{}", status: 202,
			want: errJSON("Logs.NotSupported", "Logs API is not supported")},
		tc{name: "restore not mounted", method: "GET", path: runtimeapi.PathRestoreNext, status: 404, want: notFound},
		tc{name: "register invoke ok in classic", method: "POST", path: runtimeapi.PathRegister, body: `{"events":["INVOKE"]}`,
			hdr: []string{"Lambda-Extension-Name", "inv"}, status: 200,
			want: "{\"functionName\":\"test_function\",\"functionVersion\":\"$LATEST\",\"handler\":\"handler\"}\n"},
	)
	mi := append(cloneCases(common),
		tc{name: "next wrong method no Allow", method: "POST", path: runtimeapi.PathNext, status: 405, want: "", allow: "-"},
		tc{name: "logs not mounted", method: "PUT", path: "/2020-08-15/logs", status: 404, want: notFound},
		tc{name: "restore never mounted", method: "GET", path: runtimeapi.PathRestoreNext, status: 404, want: notFound},
		tc{name: "register invoke refused", method: "POST", path: runtimeapi.PathRegister, body: `{"events":["SHUTDOWN","INVOKE"]}`,
			hdr: []string{"Lambda-Extension-Name", "inv"}, status: 403,
			want: errJSON("Extension.InvalidEventType", "INVOKE: ErrorInvalidEventType")},
	)
	for _, mode := range []struct {
		opts  Options
		cases []tc
	}{{Options{}, classic}, {Options{Mode: ManagedInstances, InitCaching: true}, mi}} {
		t.Run(mode.opts.Mode.String(), func(t *testing.T) {
			_, c := start(t, mode.opts)
			for _, tc := range mode.cases {
				t.Run(tc.name, func(t *testing.T) {
					r := c.do(bounded(t), tc.method, tc.path, strings.NewReader(tc.body), tc.hdr...)
					c.t = t
					c.must(r, tc.status, tc.want)
					checkHeader(t, r.header, "Content-Type", tc.ctype)
					checkHeader(t, r.header, "Allow", tc.allow)
				})
			}
		})
	}
}

func cloneCases[T any](s []T) []T { return append([]T(nil), s...) }

// checkHeader: want "" skips, "-" requires absence.
func checkHeader(t *testing.T, h http.Header, name, want string) {
	t.Helper()
	switch got, present := h[name]; {
	case want == "":
	case want == "-" && present:
		t.Errorf("%s: got %q, want absent", name, got)
	case want != "-" && (len(got) != 1 || got[0] != want):
		t.Errorf("%s: got %q, want %q", name, got, want)
	}
}

func TestClassicInvokeCycle(t *testing.T) {
	s, c := start(t, Options{FunctionName: "fn"})
	ctx := bounded(t)
	next := c.async(ctx, "GET", runtimeapi.PathNext, nil)
	if err := s.WaitParkedNext(ctx, 1); err != nil {
		t.Fatal(err)
	}
	deadline := time.UnixMilli(1893456000123)
	p := s.Enqueue(Invocation{
		Payload:         []byte(`{"k":1}`),
		RequestID:       "req-1",
		ClientContext:   `{"custom":{}}`,
		CognitoIdentity: `{"cognitoIdentityId":"a","cognitoIdentityPoolId":"b"}`,
		TenantID:        "tenant-7",
		Deadline:        deadline,
		ExtraHeaders:    http.Header{"Lambda-Runtime-Invocation-Id": {"inv-9"}},
	})
	ev := c.must(recv(t, next), 200, `{"k":1}`)
	for name, want := range map[string]string{
		"Lambda-Runtime-Aws-Request-Id":       "req-1",
		"Lambda-Runtime-Deadline-Ms":          "1893456000123",
		"Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:us-east-1:012345678912:function:fn",
		"Lambda-Runtime-Trace-Id":             "-",
		"Lambda-Runtime-Client-Context":       `{"custom":{}}`,
		"Lambda-Runtime-Cognito-Identity":     `{"cognitoIdentityId":"a","cognitoIdentityPoolId":"b"}`,
		"Lambda-Runtime-Aws-Tenant-Id":        "tenant-7",
		"Lambda-Runtime-Invocation-Id":        "inv-9",
		"Content-Type":                        "application/json",
	} {
		checkHeader(t, ev.header, name, want)
	}
	if got := s.RuntimeState(); got != "Running" {
		t.Fatalf("state %s", got)
	}
	c.must(c.do(ctx, "POST", respPath("req-2"), strings.NewReader("x")), 400, errJSON("InvalidRequestID", "Invalid request ID"))
	c.must(c.do(ctx, "POST", respPath("req-1"), strings.NewReader("out"), "Content-Type", "text/plain"), 202, accepted)
	res, err := p.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Kind != KindResponse || string(res.Body) != "out" || res.Status != 202 || res.Failure != "" ||
		res.Header.Get("Content-Type") != "text/plain" || res.Chunked || res.ContentLength != 3 || res.Size != 3 {
		t.Fatalf("result %+v", res)
	}
	// Until the runtime's next /next the invoke is not over (notes §2.1).
	c.must(c.do(ctx, "POST", respPath("req-1"), strings.NewReader("again")), 403, errJSON("InvalidStateTransition",
		"State transition from RuntimeResponseSentState to InvocationResponse failed for runtime. Error: State transition is not allowed"))
	c.must(c.do(ctx, "POST", errorPath("req-1"), strings.NewReader("{}")), 403, errJSON("InvalidStateTransition",
		"State transition from RuntimeResponseSentState to InvocationErrorResponse failed for runtime. Error: State transition is not allowed"))
	c.must(c.do(ctx, "POST", runtimeapi.PathInitError, nil), 403, errJSON("InvalidStateTransition",
		"State transition from RuntimeResponseSentState to InitError failed for runtime. Error: State transition is not allowed"))

	next = c.async(ctx, "GET", runtimeapi.PathNext, nil)
	if err := s.WaitParkedNext(ctx, 1); err != nil {
		t.Fatal(err)
	}
	// Completed: the old id is no longer current.
	c.must(c.do(ctx, "POST", respPath("req-1"), strings.NewReader("late")), 400, errJSON("InvalidRequestID", "Invalid request ID"))

	p2 := s.Enqueue(Invocation{Payload: []byte("second"), ContentType: "application/octet-stream", TraceID: "Root=1-abc"})
	ev = c.must(recv(t, next), 200, "second")
	checkHeader(t, ev.header, "Content-Type", "application/octet-stream")
	checkHeader(t, ev.header, "Lambda-Runtime-Trace-Id", "Root=1-abc")
	id := ev.header.Get(runtimeapi.HeaderRequestID)
	if id != p2.RequestID || len(id) != 36 {
		t.Fatalf("generated id %q, pending %q", id, p2.RequestID)
	}
	if ms, _ := strconv.ParseInt(ev.header.Get(runtimeapi.HeaderDeadlineMs), 10, 64); time.Until(time.UnixMilli(ms)) < 299*time.Second {
		t.Fatalf("default deadline %d too close", ms)
	}
	c.must(c.do(ctx, "POST", errorPath(id), strings.NewReader(`{"errorType":"E"}`), "Lambda-Runtime-Function-Error-Type", "Function.E"), 202, accepted)
	res, err = p2.Wait(ctx)
	if err != nil || res.Kind != KindError || res.Header.Get(runtimeapi.HeaderErrorType) != "Function.E" || string(res.Body) != `{"errorType":"E"}` {
		t.Fatalf("error result %+v %v", res, err)
	}
}

func TestClassicRedeliveryWhileRunning(t *testing.T) {
	s, c := start(t, Options{})
	ctx := bounded(t)
	p := s.Enqueue(Invocation{Payload: []byte("same")})
	first := c.must(c.do(ctx, "GET", runtimeapi.PathNext, nil), 200, "same")
	// /next during Running re-renders the same event at once (notes §2.1).
	second := c.must(c.do(ctx, "GET", runtimeapi.PathNext, nil), 200, "same")
	for _, h := range []string{runtimeapi.HeaderRequestID, runtimeapi.HeaderDeadlineMs} {
		if first.header.Get(h) != second.header.Get(h) {
			t.Fatalf("%s differs: %q vs %q", h, first.header.Get(h), second.header.Get(h))
		}
	}
	if first.header.Get(runtimeapi.HeaderRequestID) != p.RequestID {
		t.Fatal("wrong id")
	}
	if s.ParkedNext() != 0 {
		t.Fatal("re-delivery parked")
	}
}

// TestClassicAbandonedNextSwallowsEvent proves trap T3: the classic /next
// ignores its client going away and, being the oldest waiter, takes the next
// event into the dead connection while a live /next stays parked.
func TestClassicAbandonedNextSwallowsEvent(t *testing.T) {
	s, c := start(t, Options{})
	ctx := bounded(t)

	ctxA, cancelA := context.WithCancel(ctx)
	a := c.async(ctxA, "GET", runtimeapi.PathNext, nil)
	if err := s.WaitParkedNext(ctx, 1); err != nil {
		t.Fatal(err)
	}
	cancelA()
	if r := recv(t, a); !errors.Is(r.err, context.Canceled) {
		t.Fatalf("abandoned /next: %+v", r)
	}
	b := c.async(ctx, "GET", runtimeapi.PathNext, nil) // the live runtime
	if err := s.WaitParkedNext(ctx, 2); err != nil {
		t.Fatal(err)
	}

	p1 := s.Enqueue(Invocation{Payload: []byte("one")})
	if err := s.WaitUntil(ctx, func() bool { return s.ParkedNext() == 1 && s.RuntimeState() == "Running" }); err != nil {
		t.Fatal(err)
	}
	// Only a fresh /next reaches the event, by re-delivery.
	r := c.must(c.do(ctx, "GET", runtimeapi.PathNext, nil), 200, "one")
	if r.header.Get(runtimeapi.HeaderRequestID) != p1.RequestID {
		t.Fatal("re-delivered the wrong event")
	}
	c.must(c.do(ctx, "POST", respPath(p1.RequestID), strings.NewReader("r1")), 202, accepted)
	if res, err := p1.Wait(ctx); err != nil || string(res.Body) != "r1" {
		t.Fatalf("%+v %v", res, err)
	}
	c2 := c.async(ctx, "GET", runtimeapi.PathNext, nil) // completes p1, parks behind b
	if err := s.WaitParkedNext(ctx, 2); err != nil {
		t.Fatal(err)
	}
	p2 := s.Enqueue(Invocation{Payload: []byte("two")})
	// b was parked all along: it is the oldest waiter now and gets event two.
	rb := c.must(recv(t, b), 200, "two")
	if rb.header.Get(runtimeapi.HeaderRequestID) != p2.RequestID {
		t.Fatal("live /next got the wrong event")
	}
	select {
	case r := <-c2:
		t.Fatalf("newest /next answered: %+v", r)
	default:
	}
	if s.ParkedNext() != 1 {
		t.Fatalf("parked %d", s.ParkedNext())
	}
}

func TestClassicRuntimeInitError(t *testing.T) {
	s, c := start(t, Options{})
	ctx := bounded(t)
	c.must(c.do(ctx, "POST", runtimeapi.PathInitError, strings.NewReader(`{"errorType":"X"}`),
		"Lambda-Runtime-Function-Error-Type", "Runtime.X"), 202, accepted)
	c.must(c.do(ctx, "POST", runtimeapi.PathInitError, nil), 403, errJSON("InvalidStateTransition",
		"State transition from InitError to InitError failed for runtime. Error: State transition is not allowed"))
	c.must(c.do(ctx, "GET", runtimeapi.PathNext, nil), 403, errJSON("InvalidStateTransition",
		"State transition from InitError to Ready failed for runtime. Error: State transition is not allowed"))
	errs := s.RuntimeErrors()
	if len(errs) != 1 || errs[0].ErrorType != "Runtime.X" || string(errs[0].Body) != `{"errorType":"X"}` || errs[0].Path != runtimeapi.PathInitError {
		t.Fatalf("%+v", errs)
	}

	// After the first /next, /init/error is refused.
	s2, c2 := start(t, Options{})
	next := c2.async(ctx, "GET", runtimeapi.PathNext, nil)
	if err := s2.WaitParkedNext(ctx, 1); err != nil {
		t.Fatal(err)
	}
	c2.must(c2.do(ctx, "POST", runtimeapi.PathInitError, nil), 403, errJSON("InvalidStateTransition",
		"State transition from Ready to InitError failed for runtime. Error: State transition is not allowed"))
	s2.Close()
	if r := recv(t, next); r.err == nil {
		t.Fatalf("parked /next answered after Close: %+v", r)
	}
}

func TestClassicResponseFailures(t *testing.T) {
	s, c := start(t, Options{})
	ctx := bounded(t)
	var parked <-chan reply // the runtime's /next waiting for the next event
	deliver := func(payload string) *Pending {
		t.Helper()
		if parked == nil {
			parked = c.async(ctx, "GET", runtimeapi.PathNext, nil)
		}
		p := s.Enqueue(Invocation{Payload: []byte(payload)})
		c.must(recv(t, parked), 200, payload)
		parked = nil
		return p
	}
	complete := func() {
		t.Helper()
		parked = c.async(ctx, "GET", runtimeapi.PathNext, nil)
		if err := s.WaitParkedNext(ctx, 1); err != nil {
			t.Fatal(err)
		}
	}

	// Streaming mode is accepted.
	p := deliver("a")
	c.must(c.do(ctx, "POST", respPath(p.RequestID), strings.NewReader("s"), "Lambda-Runtime-Function-Response-Mode", "streaming"), 202, accepted)
	complete()

	// Exactly MaxPayloadSize is accepted, one byte more gets 413.
	big := bytes.Repeat([]byte{'z'}, MaxPayloadSize+1)
	p = deliver("b")
	c.must(c.do(ctx, "POST", respPath(p.RequestID), bytes.NewReader(big[:MaxPayloadSize])), 202, accepted)
	if res, _ := p.Wait(ctx); res.Size != MaxPayloadSize || len(res.Body) != MaxPayloadSize {
		t.Fatalf("size %d", res.Size)
	}
	complete()
	p = deliver("c")
	c.must(c.do(ctx, "POST", respPath(p.RequestID), bytes.NewReader(big)), 413,
		errJSON("RequestEntityTooLarge", "Exceeded maximum allowed payload size (6291556 bytes)."))
	if res, _ := p.Wait(ctx); res.Status != 413 || res.Failure != "Function.ResponseSizeTooLarge" || res.Size != MaxPayloadSize+1 {
		t.Fatalf("%+v", res.Failure)
	}
	// After a 413 the invoke is over as an error: /error is refused (notes §2.2).
	c.must(c.do(ctx, "POST", errorPath(p.RequestID), nil), 403, errJSON("InvalidStateTransition",
		"State transition from RuntimeResponseSentState to InvocationErrorResponse failed for runtime. Error: State transition is not allowed"))
	complete()

	// A truncated body gets 400 TruncatedHTTPRequest.
	p = deliver("d")
	conn, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789", respPath(p.RequestID))
	_ = conn.(*net.TCPConn).CloseWrite()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	c.must(reply{status: resp.StatusCode, body: string(b)}, 400, errJSON("TruncatedHTTPRequest", "HTTP request detected as truncated"))
	if res, _ := p.Wait(ctx); res.Failure != "Runtime.TruncatedResponse" || string(res.Body) != "0123456789" {
		t.Fatalf("%+v", res)
	}
	complete()

	// Any mode but "streaming" fails the invoke and rapid stays in
	// InvocationResponse (notes §2.2, T14).
	for _, mode := range []string{"Streaming", "buffered"} {
		p = deliver("e")
		c.must(c.do(ctx, "POST", respPath(p.RequestID), strings.NewReader("x"), "Lambda-Runtime-Function-Response-Mode", mode), 400,
			errJSON("InvalidFunctionResponseMode", "Invalid function response mode"))
		if res, _ := p.Wait(ctx); res.Failure != "Runtime.InvalidResponseModeHeader" || res.Status != 400 {
			t.Fatalf("%+v", res)
		}
		c.must(c.do(ctx, "GET", runtimeapi.PathNext, nil), 403, errJSON("InvalidStateTransition",
			"State transition from InvocationResponse to Ready failed for runtime. Error: State transition is not allowed"))
		s, c = start(t, Options{})
		parked = nil
	}
}

func TestNextFraming(t *testing.T) {
	small, large := strings.Repeat("s", 100), strings.Repeat("L", 3000)
	for _, tc := range []struct {
		name    string
		framing Framing
		payload string
		chunked bool
	}{
		{"auto small gets Content-Length", FramingAuto, small, false},
		{"auto over 2 KiB gets chunked", FramingAuto, large, true},
		{"auto at 2048 bytes", FramingAuto, strings.Repeat("x", 2048), false},
		{"forced chunked", FramingChunked, small, true},
		{"forced Content-Length", FramingContentLength, large, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, c := start(t, Options{NextFraming: tc.framing})
			ctx := bounded(t)
			s.Enqueue(Invocation{Payload: []byte(tc.payload)})
			r := c.must(c.do(ctx, "GET", runtimeapi.PathNext, nil), 200, tc.payload)
			if r.chunked != tc.chunked {
				t.Fatalf("chunked %v, want %v", r.chunked, tc.chunked)
			}
			if want := int64(len(tc.payload)); !tc.chunked && r.cl != want {
				t.Fatalf("Content-Length %d, want %d", r.cl, want)
			}
		})
	}
}

// trailerBody streams parts and sets trailers on req before reporting EOF,
// like aws-lambda-go's error-capturing reader.
type trailerBody struct {
	parts   chan []byte
	req     *http.Request
	trailer map[string]string
}

func (b *trailerBody) Read(p []byte) (int, error) {
	part, ok := <-b.parts
	if !ok {
		for k, v := range b.trailer {
			b.req.Trailer.Set(k, v)
		}
		return 0, io.EOF
	}
	return copy(p, part), nil
}

func TestStreamingResponseChunksAndTrailers(t *testing.T) {
	chunks := make(chan string, 16)
	s, c := start(t, Options{OnResponseChunk: func(id string, chunk []byte) { chunks <- id + ":" + string(chunk) }})
	ctx := bounded(t)
	p := s.Enqueue(Invocation{Payload: []byte("{}"), RequestID: "stream-1"})
	c.must(c.do(ctx, "GET", runtimeapi.PathNext, nil), 200, "{}")

	body := &trailerBody{parts: make(chan []byte), trailer: map[string]string{
		runtimeapi.HeaderErrorType: "Function.Boom",
		runtimeapi.HeaderErrorBody: "eyJlcnJvck1lc3NhZ2UiOiJib29tIn0=",
	}}
	req, _ := http.NewRequestWithContext(ctx, "POST", c.base+respPath("stream-1"), body)
	body.req = req
	req.Header.Set(runtimeapi.HeaderResponseMode, runtimeapi.ResponseModeStreaming)
	req.Trailer = http.Header{runtimeapi.HeaderErrorType: nil, runtimeapi.HeaderErrorBody: nil}
	done := make(chan reply, 1)
	go func() {
		resp, err := c.c.Do(req)
		if err != nil {
			done <- reply{err: err}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- reply{status: resp.StatusCode, body: string(b)}
	}()
	// Each part reaches the fake before the runtime writes the next one.
	for _, part := range []string{"first", "second"} {
		body.parts <- []byte(part)
		if got := recv(t, chunks); got != "stream-1:"+part {
			t.Fatalf("chunk %q", got)
		}
	}
	select {
	case r := <-done:
		t.Fatalf("answered before the body ended: %+v", r)
	default:
	}
	close(body.parts)
	c.must(recv(t, done), 202, accepted)

	res, err := p.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Chunked || res.ContentLength != -1 || string(res.Body) != "firstsecond" ||
		res.Trailer.Get(runtimeapi.HeaderErrorType) != "Function.Boom" ||
		res.Trailer.Get(runtimeapi.HeaderErrorBody) != "eyJlcnJvck1lc3NhZ2UiOiJib29tIn0=" ||
		res.Header.Get(runtimeapi.HeaderResponseMode) != "streaming" {
		t.Fatalf("result %+v", res)
	}
	reqs := s.Requests()
	last := reqs[len(reqs)-1]
	if last.RequestURI != respPath("stream-1") || !last.Chunked || !last.BodyEOF || string(last.Body) != "firstsecond" ||
		last.Trailer.Get(runtimeapi.HeaderErrorType) != "Function.Boom" {
		t.Fatalf("recorded %+v", last)
	}
}

func TestManagedInstancesConcurrency(t *testing.T) {
	const workers, invokes = 8, 32
	s, c := start(t, Options{Mode: ManagedInstances})
	ctx := bounded(t)

	// The first round is answered only once all workers hold an event at the
	// same time, which a one-at-a-time data plane could never do.
	var holding atomic.Int32
	allHolding := make(chan struct{})
	// The fake resolves a result before its 202 is on the wire; the server
	// is closed only once every runtime POST has its answer.
	var posted sync.WaitGroup
	posted.Add(invokes)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for first := true; ; first = false {
				ev := c.do(ctx, "GET", runtimeapi.PathNext, nil)
				if ev.err != nil || ev.status != 200 {
					return // server closed
				}
				if first && holding.Add(1) == workers {
					close(allHolding)
				}
				if first {
					select {
					case <-allHolding:
					case <-ctx.Done():
						return
					}
				}
				id := ev.header.Get(runtimeapi.HeaderRequestID)
				r := c.do(ctx, "POST", respPath(id), strings.NewReader("echo:"+ev.body))
				if r.status != 202 || r.body != accepted {
					t.Errorf("response %s: %+v", id, r)
					return
				}
				posted.Done()
			}
		}()
	}
	if err := s.WaitParkedNext(ctx, workers); err != nil {
		t.Fatal(err)
	}
	var results sync.WaitGroup
	for i := range invokes {
		results.Add(1)
		go func() {
			defer results.Done()
			payload := fmt.Sprintf("p%02d", i)
			res, err := s.Invoke(ctx, Invocation{Payload: []byte(payload), RequestID: "id-" + payload})
			if err != nil {
				t.Errorf("%s: %v", payload, err)
				return
			}
			if res.RequestID != "id-"+payload || string(res.Body) != "echo:"+payload || res.Status != 202 {
				t.Errorf("%s: result %+v", payload, res)
			}
		}()
	}
	results.Wait()
	allPosted := make(chan struct{})
	go func() { posted.Wait(); close(allPosted) }()
	recv(t, allPosted)
	s.Close()
	wg.Wait()
}

func TestManagedInstancesRules(t *testing.T) {
	s, c := start(t, Options{Mode: ManagedInstances})
	ctx := bounded(t)
	badID := errJSON("InvalidRequestID", "Invalid request ID")
	p1 := s.Enqueue(Invocation{Payload: []byte("1"), RequestID: "a"})
	p2 := s.Enqueue(Invocation{Payload: []byte("2"), RequestID: "b"})
	c.must(c.do(ctx, "GET", runtimeapi.PathNext, nil), 200, "1")
	c.must(c.do(ctx, "GET", runtimeapi.PathNext, nil), 200, "2")
	if p := s.Enqueue(Invocation{RequestID: "a"}); !errors.Is(must2(p.Wait(ctx)), ErrDuplicateRequestID) {
		t.Fatal("duplicate id accepted")
	}
	// Any running id may answer, in any order.
	c.must(c.do(ctx, "POST", errorPath("b"), strings.NewReader("{}")), 202, accepted)
	c.must(c.do(ctx, "POST", respPath("b"), strings.NewReader("again")), 400, badID)
	c.must(c.do(ctx, "POST", respPath("zzz"), strings.NewReader("x")), 400, badID)
	c.must(c.do(ctx, "POST", respPath("a"), strings.NewReader("A")), 202, accepted)
	c.must(c.do(ctx, "POST", errorPath("a"), strings.NewReader("{}")), 400, badID)
	if r, _ := p1.Wait(ctx); string(r.Body) != "A" {
		t.Fatal(r)
	}
	if r, _ := p2.Wait(ctx); r.Kind != KindError {
		t.Fatal(r)
	}
	// /init/error is accepted at any time.
	c.must(c.do(ctx, "POST", runtimeapi.PathInitError, nil), 202, accepted)
	c.must(c.do(ctx, "POST", runtimeapi.PathInitError, nil), 202, accepted)
	// /error is capped at 1 MiB.
	s.Enqueue(Invocation{Payload: []byte("3"), RequestID: "c"})
	c.must(c.do(ctx, "GET", runtimeapi.PathNext, nil), 200, "3")
	c.must(c.do(ctx, "POST", errorPath("c"), bytes.NewReader(make([]byte, 1<<20+1))), 413,
		errJSON("RequestEntityTooLarge", "Exceeded maximum allowed payload size (6291556 bytes)."))

	// An abandoned /next answers 500 to nobody but keeps its slot, which
	// then swallows an invocation (notes §2.1, T3).
	actx, cancel := context.WithCancel(ctx)
	a := c.async(actx, "GET", runtimeapi.PathNext, nil)
	if err := s.WaitParkedNext(ctx, 1); err != nil {
		t.Fatal(err)
	}
	cancel()
	recv(t, a)
	live := c.async(ctx, "GET", runtimeapi.PathNext, nil)
	if err := s.WaitParkedNext(ctx, 2); err != nil {
		t.Fatal(err)
	}
	lost := s.Enqueue(Invocation{Payload: []byte("lost")})
	got := s.Enqueue(Invocation{Payload: []byte("got")})
	c.must(recv(t, live), 200, "got")
	_ = got
	select {
	case <-lost.Done():
		t.Fatal("lost invocation finished")
	default:
	}
}

func must2[T any](_ T, err error) error { return err }

func register(t *testing.T, c *tclient, name, body string) string {
	t.Helper()
	r := c.must(c.do(bounded(t), "POST", runtimeapi.PathRegister, strings.NewReader(body), "Lambda-Extension-Name", name), 200,
		"{\"functionName\":\"test_function\",\"functionVersion\":\"$LATEST\",\"handler\":\"handler\"}\n")
	checkHeader(t, r.header, "Content-Type", "application/json")
	id := r.header.Get(runtimeapi.HeaderExtensionIdentifier)
	if _, ok := parseUUID(id); !ok || id[14] != '4' {
		t.Fatalf("identifier %q is not a UUID v4", id)
	}
	return id
}

func TestExtensionsClassic(t *testing.T) {
	s, c := start(t, Options{})
	ctx := bounded(t)
	inv := register(t, c, "invoker", `{"events":["INVOKE","SHUTDOWN"]}`)
	quiet := register(t, c, "quiet", `{"events":["SHUTDOWN"]}`)
	r := c.do(ctx, "POST", runtimeapi.PathRegister, strings.NewReader(`{}`),
		"Lambda-Extension-Name", "quiet", "Lambda-Extension-Accept-Feature", "accountId")
	c.must(r, 403, errJSON("Extension.InvalidExtensionState",
		"State transition from Registered to Registered failed for extension quiet. Error: State transition is not allowed"))
	acct := c.must(c.do(ctx, "POST", runtimeapi.PathRegister, strings.NewReader(`{"events":null}`),
		"Lambda-Extension-Name", "acct", "Lambda-Extension-Accept-Feature", "foo, accountId"), 200,
		"{\"functionName\":\"test_function\",\"functionVersion\":\"$LATEST\",\"handler\":\"handler\",\"accountId\":\"012345678912\"}\n").
		header.Get(runtimeapi.HeaderExtensionIdentifier)
	if err := s.WaitRegistered(ctx, 3); err != nil {
		t.Fatal(err)
	}
	ev := func(id string) <-chan reply {
		return c.async(ctx, "GET", runtimeapi.PathEventNext, nil, "Lambda-Extension-Identifier", id)
	}
	state := func(name string) string {
		for _, r := range s.Registrations() {
			if r.Name == name {
				return r.State
			}
		}
		return ""
	}
	waitState := func(name, want string) {
		t.Helper()
		if err := s.WaitUntil(ctx, func() bool { return state(name) == want }); err != nil {
			t.Fatalf("%s: state %s, want %s", name, state(name), want)
		}
	}

	// Init gate: nothing is delivered until every extension called
	// /event/next once (notes §6.4 rule 3).
	deadline := time.UnixMilli(1893456000000)
	p1 := s.Enqueue(Invocation{Payload: []byte("1"), RequestID: "r1", TraceID: "Root=1-x", Deadline: deadline})
	runtimeNext := c.async(ctx, "GET", runtimeapi.PathNext, nil)
	invEv := ev(inv)
	quietEv := ev(quiet)
	waitState("invoker", "Ready")
	waitState("quiet", "Ready")
	if err := s.WaitParkedNext(ctx, 1); err != nil {
		t.Fatal(err)
	}
	// A second concurrent /event/next is refused.
	c.must(c.do(ctx, "GET", runtimeapi.PathEventNext, nil, "Lambda-Extension-Identifier", quiet), 403,
		errJSON("Extension.InvalidExtensionState", "State transition from Ready to Ready failed for extension "+quiet+
			". Error: State transition is not allowed"))
	if s.ParkedNext() != 1 || s.RuntimeState() != "Ready" {
		t.Fatal("delivered before init completed")
	}
	acctEv := ev(acct) // last one: init completes, r1 goes out
	c.must(recv(t, runtimeNext), 200, "1")
	r = c.must(recv(t, invEv), 200, `{"eventType":"INVOKE","deadlineMs":1893456000000,"requestId":"r1",`+
		`"invokedFunctionArn":"arn:aws:lambda:us-east-1:012345678912:function:test_function",`+
		`"tracing":{"type":"X-Amzn-Trace-Id","value":"Root=1-x"}}`)
	checkHeader(t, r.header, "Content-Type", "application/json")
	if _, ok := parseUUID(r.header.Get("Lambda-Extension-Event-Identifier")); !ok {
		t.Fatal("no event identifier")
	}
	c.must(c.do(ctx, "POST", respPath("r1"), strings.NewReader("ok")), 202, accepted)
	if _, err := p1.Wait(ctx); err != nil {
		t.Fatal(err)
	}

	// The invoke completes only when the INVOKE subscriber is back too
	// (notes §6.4 rule 4).
	s.Enqueue(Invocation{Payload: []byte("2"), RequestID: "r2"})
	runtimeNext = c.async(ctx, "GET", runtimeapi.PathNext, nil)
	if err := s.WaitParkedNext(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if state("invoker") != "Running" || s.ParkedNext() != 1 {
		t.Fatal("r2 delivered while the extension still held r1")
	}
	invEv = ev(inv)
	c.must(recv(t, runtimeNext), 200, "2")
	r = c.must(recv(t, invEv), 200, `{"eventType":"INVOKE","deadlineMs":`+
		strconv.FormatInt(s.deadlineForTest("r2"), 10)+`,"requestId":"r2",`+
		`"invokedFunctionArn":"arn:aws:lambda:us-east-1:012345678912:function:test_function"}`)

	// SHUTDOWN: to parked subscribers now, to the busy one on its next call,
	// never to non-subscribers; json.Marshal body, no Content-Type.
	s.Shutdown("spindown", time.UnixMilli(1700000000000))
	want := `{"eventType":"SHUTDOWN","deadlineMs":1700000000000,"shutdownReason":"spindown"}`
	r = c.must(recv(t, quietEv), 200, want)
	checkHeader(t, r.header, "Content-Type", "-")
	checkHeader(t, r.header, "Lambda-Extension-Event-Identifier", "-")
	c.must(c.do(ctx, "GET", runtimeapi.PathEventNext, nil, "Lambda-Extension-Identifier", inv), 200, want)
	select {
	case r := <-acctEv:
		t.Fatalf("non-subscriber got %+v", r)
	default:
	}
	// After SHUTDOWN, /event/next parks for good.
	ev(quiet)
	waitState("quiet", "Ready")
	s.Shutdown("again", time.Now())
	if state("quiet") != "Ready" {
		t.Fatal("second SHUTDOWN delivered")
	}
}

// deadlineForTest returns the deadline fixed for a delivered invocation.
func (s *Server) deadlineForTest(id string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != nil && s.cur.RequestID == id {
		return s.cur.Deadline.UnixMilli()
	}
	return 0
}

func TestExtensionErrors(t *testing.T) {
	for _, mode := range []Mode{Classic, ManagedInstances} {
		t.Run(mode.String(), func(t *testing.T) {
			s, c := start(t, Options{Mode: mode})
			ctx := bounded(t)
			a := register(t, c, "a", `{"events":["SHUTDOWN"]}`)
			b := register(t, c, "b", `{}`)
			post := func(path, id, errorType string) reply {
				return c.do(ctx, "POST", path, strings.NewReader(`{"errorMessage":"m"}`),
					"Lambda-Extension-Identifier", id, "Lambda-Extension-Function-Error-Type", errorType)
			}
			c.must(post(runtimeapi.PathExtInitError, a, "Extension.Boom"), 202, accepted)
			c.must(post(runtimeapi.PathExtInitError, a, "Extension.Again"), 202, accepted) // no-op repeat
			c.must(post(runtimeapi.PathExtExitError, a, "Extension.X"), 403, errJSON("Extension.InvalidExtensionState",
				"State transition from InitError to ExitError failed for extension "+a+". Error: State transition is not allowed"))
			c.must(c.do(ctx, "GET", runtimeapi.PathEventNext, nil, "Lambda-Extension-Identifier", a), 403,
				errJSON("Extension.InvalidExtensionState",
					"State transition from InitError to Ready failed for extension "+a+". Error: State transition is not allowed"))

			parked := c.async(ctx, "GET", runtimeapi.PathEventNext, nil, "Lambda-Extension-Identifier", b)
			if err := s.WaitUntil(ctx, func() bool { return s.Registrations()[1].State == "Ready" }); err != nil {
				t.Fatal(err)
			}
			c.must(post(runtimeapi.PathExtInitError, b, "Extension.Late"), 403, errJSON("Extension.InvalidExtensionState",
				"State transition from Ready to InitError failed for extension "+b+". Error: State transition is not allowed"))
			c.must(post(runtimeapi.PathExtExitError, b, "Extension.Exit"), 202, accepted)

			ie, ee := s.InitErrors(), s.ExitErrors()
			if len(ie) != 2 || ie[0].ID != a || ie[0].Name != "a" || ie[0].ErrorType != "Extension.Boom" ||
				string(ie[0].Body) != `{"errorMessage":"m"}` || ie[1].ErrorType != "Extension.Again" {
				t.Fatalf("init errors %+v", ie)
			}
			if len(ee) != 1 || ee[0].ID != b || ee[0].ErrorType != "Extension.Exit" {
				t.Fatalf("exit errors %+v", ee)
			}
			s.Close()
			if r := recv(t, parked); r.err == nil {
				t.Fatalf("parked /event/next answered: %+v", r)
			}
		})
	}
}

func TestRestore(t *testing.T) {
	s, c := start(t, Options{InitCaching: true})
	ctx := bounded(t)
	c.must(c.do(ctx, "POST", runtimeapi.PathRestoreError, nil), 403, errJSON("InvalidStateTransition",
		"State transition from Started to RuntimeRestoreErrorState failed for runtime. Error: State transition is not allowed"))
	rn := c.async(ctx, "GET", runtimeapi.PathRestoreNext, nil)
	if err := s.WaitUntil(ctx, func() bool { return s.RuntimeState() == "RestoreReady" }); err != nil {
		t.Fatal(err)
	}
	c.must(c.do(ctx, "GET", runtimeapi.PathNext, nil), 403, errJSON("InvalidStateTransition",
		"State transition from RestoreReady to Ready failed for runtime. Error: State transition is not allowed"))
	s.Restore()
	r := c.must(recv(t, rn), 200, "")
	if r.cl != 0 {
		t.Fatalf("Content-Length %d", r.cl)
	}
	c.must(c.do(ctx, "POST", runtimeapi.PathRestoreError, strings.NewReader("hook"),
		"Lambda-Runtime-Function-Error-Type", "Runtime.AfterRestoreError"), 202, accepted)
	if e := s.RuntimeErrors(); len(e) != 1 || e[0].Path != runtimeapi.PathRestoreError || e[0].ErrorType != "Runtime.AfterRestoreError" {
		t.Fatalf("%+v", e)
	}

	// Restore before /restore/next: it returns at once; then /next is fine.
	s2, c2 := start(t, Options{InitCaching: true})
	s2.Restore()
	c2.must(c2.do(ctx, "GET", runtimeapi.PathRestoreNext, nil), 200, "")
	s2.Enqueue(Invocation{Payload: []byte("after")})
	c2.must(c2.do(ctx, "GET", runtimeapi.PathNext, nil), 200, "after")
}

func TestRequestsRecording(t *testing.T) {
	s, c := start(t, Options{RecordBodyLimit: 4})
	ctx := bounded(t)
	c.do(ctx, "PUT", "/2020-08-15/logs?b=2&a=1", strings.NewReader("0123456789"), "X-Custom", "v")
	c.do(ctx, "GET", "/2018-06-01/ping", nil)
	reqs := s.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests", len(reqs))
	}
	// The stub does not read the body: nothing consumed.
	if r := reqs[0]; r.Seq != 0 || r.Method != "PUT" || r.RequestURI != "/2020-08-15/logs?b=2&a=1" ||
		r.Host != s.Addr() || r.Header.Get("X-Custom") != "v" || r.ContentLength != 10 || r.Chunked || r.BodySize != 0 {
		t.Fatalf("%+v", r)
	}
	c.do(ctx, "POST", runtimeapi.PathRegister, strings.NewReader(`{"events":[]}`), "Lambda-Extension-Name", "e")
	reqs = s.Requests()
	if r := reqs[2]; string(r.Body) != `{"ev` || r.BodySize != 13 || !r.BodyEOF {
		t.Fatalf("%+v", r)
	}
	s.ClearRequests()
	c.do(ctx, "GET", "/x", nil)
	if reqs = s.Requests(); len(reqs) != 1 || reqs[0].Seq != 3 {
		t.Fatalf("%+v", reqs)
	}

	s2, c2 := start(t, Options{DisableRecording: true})
	c2.do(ctx, "GET", "/2018-06-01/ping", nil)
	if n := len(s2.Requests()); n != 0 {
		t.Fatalf("recorded %d", n)
	}
}

// TestCloseUnblocksEverything parks every kind of long request, closes the
// servers and checks that everything returns and no goroutine is left.
func TestCloseUnblocksEverything(t *testing.T) {
	before := runtime.NumGoroutine()
	ctx := bounded(t)
	tr := &http.Transport{Proxy: nil}
	hc := &http.Client{Transport: tr}

	chunk := make(chan struct{}, 1)
	classic, err := Start(Options{OnResponseChunk: func(string, []byte) { chunk <- struct{}{} }})
	if err != nil {
		t.Fatal(err)
	}
	mi, err := Start(Options{Mode: ManagedInstances})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := Start(Options{InitCaching: true})
	if err != nil {
		t.Fatal(err)
	}
	c := &tclient{t: t, base: "http://" + classic.Addr(), c: hc}
	cm := &tclient{t: t, base: "http://" + mi.Addr(), c: hc}
	cs := &tclient{t: t, base: "http://" + snap.Addr(), c: hc}

	var calls []<-chan reply
	id := register(t, c, "ext", `{"events":["SHUTDOWN"]}`)
	calls = append(calls, c.async(ctx, "GET", runtimeapi.PathEventNext, nil, "Lambda-Extension-Identifier", id))
	if err := classic.WaitUntil(ctx, func() bool { return classic.Registrations()[0].State == "Ready" }); err != nil {
		t.Fatal(err)
	}
	p1 := classic.Enqueue(Invocation{Payload: []byte("1"), RequestID: "one"})
	c.must(c.do(ctx, "GET", runtimeapi.PathNext, nil), 200, "1")
	pr, pw := io.Pipe()
	calls = append(calls, c.async(ctx, "POST", respPath("one"), pr)) // a stream in progress
	_, _ = pw.Write([]byte("partial"))
	recv(t, chunk)
	p2 := classic.Enqueue(Invocation{Payload: []byte("2")}) // queued
	for range 2 {
		calls = append(calls, cm.async(ctx, "GET", runtimeapi.PathNext, nil))
	}
	if err := mi.WaitParkedNext(ctx, 2); err != nil {
		t.Fatal(err)
	}
	calls = append(calls, cs.async(ctx, "GET", runtimeapi.PathRestoreNext, nil))
	if err := snap.WaitUntil(ctx, func() bool { return snap.RuntimeState() == "RestoreReady" }); err != nil {
		t.Fatal(err)
	}

	closed := make(chan struct{})
	go func() {
		classic.Close()
		mi.Close()
		snap.Close()
		classic.Close() // twice is fine
		close(closed)
	}()
	recv(t, closed)
	for _, p := range []*Pending{p1, p2} {
		if _, err := p.Wait(ctx); !errors.Is(err, ErrClosed) {
			t.Fatalf("pending: %v", err)
		}
	}
	if _, err := classic.Invoke(ctx, Invocation{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("invoke after close: %v", err)
	}
	if err := classic.WaitParkedNext(ctx, 5); !errors.Is(err, ErrClosed) {
		t.Fatalf("wait after close: %v", err)
	}
	// The client transport finishes writing a request body before it
	// reports the closed connection; end the stream's source.
	_ = pw.Close()
	for i, ch := range calls {
		if r := recv(t, ch); r.err == nil {
			t.Fatalf("call %d answered: %+v", i, r)
		}
	}
	tr.CloseIdleConnections()

	// Settle: goroutines of closed connections exit asynchronously.
	for end := time.Now().Add(waitBound); runtime.NumGoroutine() > before; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines left (before %d):\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
	}
}

// BenchmarkClassicInvoke measures one full classic cycle through the fake:
// /next, /response, Result.
func BenchmarkClassicInvoke(b *testing.B) {
	s, err := Start(Options{DisableRecording: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	hc := &http.Client{Transport: &http.Transport{Proxy: nil}}
	base := "http://" + s.Addr()
	payload := []byte(`{"hello":"world"}`)
	ctx := context.Background()
	go func() {
		for {
			resp, err := hc.Get(base + runtimeapi.PathNext)
			if err != nil {
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			resp, err = hc.Post(base+respPath(resp.Header.Get(runtimeapi.HeaderRequestID)), "application/json", bytes.NewReader(body))
			if err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Invoke(ctx, Invocation{Payload: payload}); err != nil {
			b.Fatal(err)
		}
	}
}
