package integration

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lrap/lrap/internal/fakeapi"
	"github.com/lrap/lrap/runtimeapi"
)

// marker is a distinctive payload string: it must cross lrap untouched and
// never show up in its logs.
const marker = "PAYLOAD-MARKER-q7Zr2x"

// T1, T2, T11: lrap registers under its executable's file name (else Lambda
// takes it for an internal extension and init hangs), subscribes to SHUTDOWN
// only (INVOKE is a hard 403 in Managed Instances), and has its listener
// bound before /register, because Lambda starts the runtime as soon as the
// last extension registered and the runtime's first /next must find it.
//
// A gate in front of the fake dials lrap's port while it holds the register
// request: lrap is blocked waiting for the answer, so a listener bound only
// after registering deterministically refuses that dial.
func TestRegistersUnderExecutableNameForShutdownAfterBinding(t *testing.T) {
	t.Parallel()
	fake := startFake(t, fakeapi.Options{})
	port := freePort(t)

	var (
		mu         sync.Mutex
		registers  int
		dialErr    error
		fakeURL, _ = url.Parse("http://" + fake.Addr())
	)
	rp := &httputil.ReverseProxy{
		Rewrite:       func(pr *httputil.ProxyRequest) { pr.SetURL(fakeURL) },
		Transport:     &http.Transport{Proxy: nil, DisableCompression: true},
		FlushInterval: -1,
	}
	gate := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == runtimeapi.PathRegister {
			c, err := net.DialTimeout("tcp", hostPort(port), time.Second)
			if err == nil {
				c.Close()
			}
			mu.Lock()
			registers++
			dialErr = err
			mu.Unlock()
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(gate.Close)

	p := startLrap(t, lrapOpts{name: "my-ext", api: strings.TrimPrefix(gate.URL, "http://"), port: port})
	waitExtension(t, fake, "my-ext", "Ready")

	mu.Lock()
	n, derr := registers, dialErr
	mu.Unlock()
	if n != 1 {
		t.Fatalf("lrap registered %d times, want once", n)
	}
	if derr != nil {
		t.Errorf("lrap's listener was not bound when it registered (the runtime starts right after): %v", derr)
	}
	regs := fake.Registrations()
	if len(regs) != 1 || regs[0].Name != "my-ext" {
		t.Fatalf("registrations %+v, want one named after the executable, my-ext", regs)
	}
	if !slices.Equal(regs[0].Events, []string{runtimeapi.EventShutdown}) {
		t.Errorf("subscribed to %q, want exactly [SHUTDOWN]", regs[0].Events)
	}
	for _, r := range fake.Requests() {
		if r.RequestURI == runtimeapi.PathRegister {
			if got := r.Header.Values(runtimeapi.HeaderExtensionName); !slices.Equal(got, []string{"my-ext"}) {
				t.Errorf("Lambda-Extension-Name %q", got)
			}
			if string(r.Body) != `{"events":["SHUTDOWN"]}` {
				t.Errorf("register body %q, want {\"events\":[\"SHUTDOWN\"]}", r.Body)
			}
		}
	}
	shutdownAndExpectExit(t, fake, 2*time.Second, p)
}

// invocationHeaders is an invocation carrying every /next header the API can
// send (notes §2.1), plus an unknown one with two values and an empty one:
// a proxy forwards them all unchanged (T16, T25).
func invocationHeaders(id string, payload []byte) fakeapi.Invocation {
	return fakeapi.Invocation{
		Payload:         payload,
		ContentType:     "application/x-lrap-test; charset=binary",
		RequestID:       id,
		FunctionArn:     "arn:aws:lambda:us-east-1:123456789012:function:lrap-test:prod",
		TraceID:         "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1",
		ClientContext:   `{"client":{"installation_id":"i-1"},"custom":{"k":"v"},"env":{}}`,
		CognitoIdentity: `{"cognitoIdentityId":"us-east-1:abc","cognitoIdentityPoolId":"us-east-1:pool"}`,
		TenantID:        "tenant-42",
		Deadline:        time.UnixMilli(4102444800123),
		ExtraHeaders: http.Header{
			"Lambda-Runtime-Invocation-Id": {"attempt-" + id},
			"X-Lambda-Future-Header":       {"one", "two"},
			"X-Lambda-Empty-Header":        {""},
		},
	}
}

// wantNextHeader is what the runtime must see for inv: exactly the API's
// headers, nothing added or dropped (Date is sent by the API's server).
func wantNextHeader(inv fakeapi.Invocation) http.Header {
	h := http.Header{
		runtimeapi.HeaderRequestID:       {inv.RequestID},
		runtimeapi.HeaderDeadlineMs:      {strconv.FormatInt(inv.Deadline.UnixMilli(), 10)},
		runtimeapi.HeaderFunctionArn:     {inv.FunctionArn},
		runtimeapi.HeaderTraceID:         {inv.TraceID},
		runtimeapi.HeaderClientContext:   {inv.ClientContext},
		runtimeapi.HeaderCognitoIdentity: {inv.CognitoIdentity},
		runtimeapi.HeaderTenantID:        {inv.TenantID},
		"Content-Type":                   {inv.ContentType},
		"Content-Length":                 {strconv.Itoa(len(inv.Payload))},
		"Date":                           nil,
	}
	for k, v := range inv.ExtraHeaders {
		h[k] = v
	}
	return h
}

// A full invocation cycle through the binary, in both data planes: the event
// reaches the runtime with every header and byte unchanged; /response and
// /error reach the API with their headers and bodies, and the API's 202
// comes back verbatim (notes §2.1-2.3, T7, T9, T16).
func TestInvocationCycleThroughBinary(t *testing.T) {
	t.Parallel()
	for _, mode := range []fakeapi.Mode{fakeapi.Classic, fakeapi.ManagedInstances} {
		t.Run(mode.String(), func(t *testing.T) {
			t.Parallel()
			fake := startFake(t, fakeapi.Options{Mode: mode})
			p := startReady(t, fake, lrapOpts{})
			rt := newRuntime(t, p.addr())
			ctx := bounded(t)

			event := append([]byte("\x00\x01\xfe\xff{binary event} "), marker...)
			inv := invocationHeaders("8476a536-e9f4-11e8-9739-2dfe598c3fcd", event)
			p1 := fake.Enqueue(inv)
			r := must(t, "/next", rt.do(ctx, "GET", runtimeapi.PathNext, nil), 200, string(event))
			headerExact(t, "/next", r.header, wantNextHeader(inv))

			respBody := []byte(`{"answer":"` + marker + `"}`)
			r = must(t, "/response", rt.do(ctx, "POST", respPath(inv.RequestID), bytes.NewReader(respBody),
				"Content-Type", "application/json"), 202, accepted)
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("202 Content-Type %q", ct)
			}
			res, err := p1.Wait(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if res.Kind != fakeapi.KindResponse || res.Status != 202 || !bytes.Equal(res.Body, respBody) ||
				res.Chunked || res.ContentLength != int64(len(respBody)) {
				t.Errorf("upstream got %+v", res)
			}
			if got := res.Header.Values("Content-Type"); !slices.Equal(got, []string{"application/json"}) {
				t.Errorf("upstream /response Content-Type %q", got)
			}

			// The second invocation fails: /error with its error type and
			// X-Ray cause headers (notes §2.3).
			inv2 := invocationHeaders("e0c7ad47-3d3b-4b5c-9b52-61e4a5d0a0b1", []byte(`{"second":true}`))
			p2 := fake.Enqueue(inv2)
			r = must(t, "second /next", rt.do(ctx, "GET", runtimeapi.PathNext, nil), 200, `{"second":true}`)
			headerExact(t, "second /next", r.header, wantNextHeader(inv2))
			const cause = `{"working_directory":"/var/task","exceptions":[{"message":"boom","type":"Error"}],"paths":[]}`
			errBody := errJSON("Function.Boom", "boom "+marker)
			must(t, "/error", rt.do(ctx, "POST", errPath(inv2.RequestID), strings.NewReader(errBody),
				"Content-Type", "application/json",
				runtimeapi.HeaderErrorType, "Function.Boom",
				runtimeapi.HeaderXRayErrorCause, cause), 202, accepted)
			res, err = p2.Wait(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if res.Kind != fakeapi.KindError || res.Status != 202 || string(res.Body) != errBody {
				t.Errorf("upstream got %+v", res)
			}
			for k, v := range map[string]string{runtimeapi.HeaderErrorType: "Function.Boom", runtimeapi.HeaderXRayErrorCause: cause} {
				if got := res.Header.Values(k); !slices.Equal(got, []string{v}) {
					t.Errorf("upstream /error %s = %q, want %q", k, got, v)
				}
			}
			shutdownAndExpectExit(t, fake, 2*time.Second, p)
		})
	}
}

// T10: in Managed Instances any number of /next calls are parked at once and
// responses are matched by request id. Eight workers park through lrap at
// the same time (all eight reach the API before any event exists), and each
// result reaches the API under its own id.
func TestManagedInstancesConcurrentInvocationsThroughBinary(t *testing.T) {
	t.Parallel()
	const workers = 8
	fake := startFake(t, fakeapi.Options{Mode: fakeapi.ManagedInstances})
	p := startReady(t, fake, lrapOpts{})
	rt := newRuntime(t, p.addr())
	ctx := bounded(t)

	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			r := rt.do(ctx, "GET", runtimeapi.PathNext, nil)
			if r.err != nil || r.status != 200 {
				t.Errorf("/next: %d %v", r.status, r.err)
				return
			}
			id := r.header.Get(runtimeapi.HeaderRequestID)
			if string(r.body) != "event "+id {
				t.Errorf("worker got body %q for %s", r.body, id)
			}
			r = rt.do(ctx, "POST", respPath(id), strings.NewReader("response "+id))
			if r.err != nil || r.status != 202 || string(r.body) != accepted {
				t.Errorf("/response %s: %d %q %v", id, r.status, r.body, r.err)
			}
		})
	}
	if err := fake.WaitParkedNext(ctx, workers); err != nil {
		t.Fatalf("only %d of %d /next parked at the API at once: %v", fake.ParkedNext(), workers, err)
	}
	var pending []*fakeapi.Pending
	for i := range workers {
		id := "mi-" + strconv.Itoa(i)
		pending = append(pending, fake.Enqueue(fakeapi.Invocation{RequestID: id, Payload: []byte("event " + id)}))
	}
	wg.Wait()
	for _, pd := range pending {
		res, err := pd.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != 202 || string(res.Body) != "response "+pd.RequestID {
			t.Errorf("%s: upstream got %d %q", pd.RequestID, res.Status, res.Body)
		}
	}
	shutdownAndExpectExit(t, fake, 2*time.Second, p)
}

// T11, T7: SHUTDOWN arrives while four streaming /response calls are still
// sending. lrap stops taking connections but lets the streams finish within
// the deadline: each reaches the API complete and gets its 202, and only then
// does lrap exit 0, before the deadline (an extension still running at the
// deadline is SIGKILLed, which counts as a crash).
func TestShutdownDrainsInFlightStreams(t *testing.T) {
	t.Parallel()
	const streams = 4
	firstChunk := make(chan string, 64)
	fake := startFake(t, fakeapi.Options{
		Mode: fakeapi.ManagedInstances,
		OnResponseChunk: func(id string, _ []byte) {
			select {
			case firstChunk <- id:
			default:
			}
		},
	})
	p := startReady(t, fake, lrapOpts{})
	rt := newRuntime(t, p.addr())
	ctx := bounded(t)

	type stream struct {
		id    string
		pw    *io.PipeWriter
		reply <-chan reply
	}
	var ss []stream
	var pending []*fakeapi.Pending
	for i := range streams {
		id := "stream-" + strconv.Itoa(i)
		pending = append(pending, fake.Enqueue(fakeapi.Invocation{RequestID: id, Payload: []byte("{}")}))
		r := must(t, "/next", rt.do(ctx, "GET", runtimeapi.PathNext, nil), 200, "{}")
		if got := r.header.Get(runtimeapi.HeaderRequestID); got != id {
			t.Fatalf("got event %s, want %s", got, id)
		}
		pr, pw := io.Pipe()
		t.Cleanup(func() { pw.CloseWithError(errors.New("test over")) })
		ss = append(ss, stream{id, pw, rt.async(ctx, "POST", respPath(id), pr,
			runtimeapi.HeaderResponseMode, runtimeapi.ResponseModeStreaming)})
		writeBounded(t, pw, "first part of "+id+"; ")
	}
	seen := map[string]bool{}
	for len(seen) < streams {
		seen[recv(t, "first chunks at the API", firstChunk)] = true
	}

	deadline := time.Now().Add(3 * time.Second)
	fake.Shutdown("spindown", deadline)
	p.waitLog(t, "the shutdown line", msgIs("shutdown"))
	// Draining has begun once the listener is closed.
	waitRefused(t, p.addr())
	if p.hasExited() {
		t.Fatal("lrap exited with four responses still streaming")
	}
	for _, s := range ss {
		writeBounded(t, s.pw, "last part of "+s.id)
		s.pw.Close()
	}
	for _, s := range ss {
		must(t, "streamed /response "+s.id, recv(t, "the 202 of "+s.id, s.reply), 202, accepted)
	}
	for i, pd := range pending {
		res, err := pd.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := "first part of " + ss[i].id + "; last part of " + ss[i].id
		if res.Status != 202 || string(res.Body) != want || !res.Chunked {
			t.Errorf("%s: upstream got %d chunked=%v %q, want the whole stream %q", pd.RequestID, res.Status, res.Chunked, res.Body, want)
		}
	}
	if code := p.waitExit(t, waitBound); code != 0 {
		t.Errorf("exit code %d after SHUTDOWN, want 0", code)
	}
	if p.exited.After(deadline) {
		t.Errorf("lrap exited %v after the SHUTDOWN deadline", p.exited.Sub(deadline))
	}
}

// writeBounded writes s to pw, failing the test if nobody reads it in time.
func writeBounded(t *testing.T, pw *io.PipeWriter, s string) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := io.WriteString(pw, s)
		done <- err
	}()
	if err := recv(t, "a pipe write to be read", done); err != nil {
		t.Fatalf("stream write: %v", err)
	}
}

// waitRefused waits until nothing accepts connections at addr any more.
func waitRefused(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(waitBound)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return
		}
		c.Close()
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%s still accepts connections", addr)
}

// T11, T4: a runtime /next parked at SHUTDOWN will never be answered (the
// runtime is already stopped when SHUTDOWN comes); lrap must not wait for it
// until the deadline, let alone past it. It cancels the parked poll and exits
// 0 promptly.
func TestShutdownWithParkedNextExitsPromptly(t *testing.T) {
	t.Parallel()
	fake := startFake(t, fakeapi.Options{})
	p := startReady(t, fake, lrapOpts{})
	rt := newRuntime(t, p.addr())
	ctx := bounded(t)
	next := rt.async(ctx, "GET", runtimeapi.PathNext, nil)
	if err := fake.WaitParkedNext(ctx, 1); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	deadline := start.Add(3 * time.Second)
	fake.Shutdown("spindown", deadline)
	if code := p.waitExit(t, 3*time.Second+waitBound); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	if p.exited.After(deadline) {
		t.Fatalf("a parked /next kept lrap alive %v past the SHUTDOWN deadline", p.exited.Sub(deadline))
	}
	if took := p.exited.Sub(start); took > time.Second {
		t.Errorf("lrap took %v to exit: it waited for a /next that cannot be answered instead of cancelling it", took)
	}
	if r := recv(t, "the parked /next to end", next); r.err == nil && r.status == 200 {
		t.Errorf("the parked /next got an event after SHUTDOWN: %q", r.body)
	}
}

// notes §6.3, T1: when lrap cannot bind its port it still registers (that is
// the only way to report), reports /extension/init/error with
// Extension.ListenFailed and a JSON body naming the cause, exits non-zero,
// and never calls /extension/event/next (init/error is valid only before it).
func TestInitErrorWhenPortTaken(t *testing.T) {
	t.Parallel()
	fake := startFake(t, fakeapi.Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	p := startLrap(t, lrapOpts{api: fake.Addr(), port: port})
	if code := p.waitExit(t, waitBound); code == 0 {
		t.Error("lrap exited 0 after failing to listen")
	}
	ie := fake.InitErrors()
	if len(ie) != 1 {
		t.Fatalf("%d init errors reported, want 1", len(ie))
	}
	if ie[0].ErrorType != runtimeapi.ExtensionListenFailed || ie[0].Name != "lrap" {
		t.Errorf("init error %+v, want %s from lrap", ie[0], runtimeapi.ExtensionListenFailed)
	}
	doc := decodeErrorDoc(t, ie[0].Body)
	if doc.ErrorType != runtimeapi.ExtensionListenFailed ||
		!strings.Contains(doc.ErrorMessage, hostPort(port)) || !strings.Contains(doc.ErrorMessage, "address already in use") {
		t.Errorf("init error body %q does not name the address and the cause", ie[0].Body)
	}
	noEventNext(t, fake)
}

func noEventNext(t *testing.T, fake *fakeapi.Server) {
	t.Helper()
	for _, r := range fake.Requests() {
		if r.RequestURI == runtimeapi.PathEventNext {
			t.Errorf("lrap called /extension/event/next after its init failed")
		}
	}
}

// Configuration is validated once at start; an invalid value is reported
// through /extension/init/error as Extension.ConfigInvalid with a message
// naming the variable, the value and what is accepted, and lrap exits
// non-zero. A loop (forwarding to its own listener) counts as invalid.
func TestInitErrorOnInvalidConfiguration(t *testing.T) {
	t.Parallel()
	loopPort := freePort(t)
	for _, tc := range []struct {
		name string
		env  []string
		want []string
	}{
		{"port not a number", []string{"LRAP_LISTENER_PORT=abc"},
			[]string{"LRAP_LISTENER_PORT", `"abc"`, "an integer from 1 to 65535"}},
		{"unknown log level", []string{"LRAP_LOG_LEVEL=loud"},
			[]string{"LRAP_LOG_LEVEL", `"loud"`, "debug, info, warn, error"}},
		{"endpoint with a scheme", []string{"LRAP_RUNTIME_API_ENDPOINT=http://x:1"},
			[]string{"LRAP_RUNTIME_API_ENDPOINT", `"http://x:1"`, "host:port, without a scheme"}},
		{"endpoint is lrap itself", []string{"LRAP_LISTENER_PORT=" + strconv.Itoa(loopPort), "LRAP_RUNTIME_API_ENDPOINT=127.0.0.1:" + strconv.Itoa(loopPort)},
			[]string{"LRAP_RUNTIME_API_ENDPOINT", `"127.0.0.1:` + strconv.Itoa(loopPort) + `"`, "loop", "host:port, without a scheme"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake := startFake(t, fakeapi.Options{})
			p := startLrap(t, lrapOpts{api: fake.Addr(), env: tc.env})
			if code := p.waitExit(t, waitBound); code == 0 {
				t.Error("lrap exited 0 with an invalid configuration")
			}
			ie := fake.InitErrors()
			if len(ie) != 1 || ie[0].ErrorType != runtimeapi.ExtensionConfigInvalid {
				t.Fatalf("init errors %+v, want one %s", ie, runtimeapi.ExtensionConfigInvalid)
			}
			doc := decodeErrorDoc(t, ie[0].Body)
			if doc.ErrorType != runtimeapi.ExtensionConfigInvalid {
				t.Errorf("body errorType %q", doc.ErrorType)
			}
			for _, w := range tc.want {
				if !strings.Contains(doc.ErrorMessage, w) {
					t.Errorf("message %q does not contain %q", doc.ErrorMessage, w)
				}
			}
			noEventNext(t, fake)
		})
	}
}

// extStub is a scripted Extensions API for failures the strict fake does not
// produce. onNext answers the n-th /extension/event/next (n from 1).
type extStub struct {
	*httptest.Server
	id       string
	nexts    atomic.Int32
	mu       sync.Mutex
	exitErrs []stubCall
	initErrs []stubCall
}

type stubCall struct {
	header http.Header
	body   []byte
}

func newExtStub(t *testing.T, onNext func(n int, w http.ResponseWriter, r *http.Request)) *extStub {
	s := &extStub{id: "0c5e5f1a-3b5c-4d8e-9f1a-2b3c4d5e6f70"}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case runtimeapi.PathRegister:
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set(runtimeapi.HeaderExtensionIdentifier, s.id)
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"functionName":"f","functionVersion":"$LATEST","handler":"h"}`+"\n")
		case runtimeapi.PathEventNext:
			onNext(int(s.nexts.Add(1)), w, r)
		case runtimeapi.PathExtExitError, runtimeapi.PathExtInitError:
			b, _ := io.ReadAll(r.Body)
			s.mu.Lock()
			if r.URL.Path == runtimeapi.PathExtExitError {
				s.exitErrs = append(s.exitErrs, stubCall{r.Header.Clone(), b})
			} else {
				s.initErrs = append(s.initErrs, stubCall{r.Header.Clone(), b})
			}
			s.mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusAccepted)
			_, _ = io.WriteString(w, accepted)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *extStub) addr() string { return strings.TrimPrefix(s.URL, "http://") }

func (s *extStub) calls() (exits, inits []stubCall) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.exitErrs), slices.Clone(s.initErrs)
}

// notes §6.3, T12: a refusal of /extension/event/next (any non-200, here
// 403 UnknownExtensionIdentifier) is final; lrap reports it through
// /extension/exit/error (Extension.Fatal, with its identifier and a JSON
// body) and exits non-zero instead of spinning.
func TestFatalEventNextRefusalReportsExitError(t *testing.T) {
	t.Parallel()
	stub := newExtStub(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, errJSON("Extension.UnknownExtensionIdentifier", "Unknown extension 0c5e5f1a-3b5c-4d8e-9f1a-2b3c4d5e6f70"))
	})
	p := startLrap(t, lrapOpts{api: stub.addr()})
	if code := p.waitExit(t, waitBound); code == 0 {
		t.Error("lrap exited 0 after a fatal Extensions API error")
	}
	exits, inits := stub.calls()
	if len(inits) != 0 {
		t.Errorf("init/error called after init: %+v", inits)
	}
	if len(exits) != 1 {
		t.Fatalf("%d exit/error calls, want 1", len(exits))
	}
	h := exits[0].header
	if h.Get(runtimeapi.HeaderExtensionIdentifier) != stub.id || h.Get(runtimeapi.HeaderExtensionErrorType) != runtimeapi.ExtensionFatal {
		t.Errorf("exit/error headers %v, want identifier %s and error type %s", h, stub.id, runtimeapi.ExtensionFatal)
	}
	doc := decodeErrorDoc(t, exits[0].body)
	if doc.ErrorType != runtimeapi.ExtensionFatal || !strings.Contains(doc.ErrorMessage, "403") {
		t.Errorf("exit/error body %q does not carry the type and the refusal", exits[0].body)
	}
	if n := stub.nexts.Load(); n != 1 {
		t.Errorf("event/next called %d times after a final refusal, want 1", n)
	}
}

// T12: an Extensions API that is briefly unreachable while lrap waits for
// its next event is not a reason to exit (any exit before SHUTDOWN is a
// crash): lrap retries with backoff and later exits 0 on SHUTDOWN.
//
// The stub drops the first two /event/next connections without an answer;
// Go's transport itself retries an idempotent GET once when a reused
// connection dies, so the second drop reaches lrap's own retry.
func TestEventNextRetriedWhenConnectionDropped(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	stub := newExtStub(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n <= 2 {
			c, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				c.Close()
			}
			return
		}
		select {
		case <-release:
		case <-time.After(waitBound):
		}
		_, _ = io.WriteString(w, `{"eventType":"SHUTDOWN","deadlineMs":`+
			strconv.FormatInt(time.Now().Add(2*time.Second).UnixMilli(), 10)+`,"shutdownReason":"spindown"}`)
	})
	p := startLrap(t, lrapOpts{api: stub.addr()})
	deadline := time.Now().Add(waitBound)
	for stub.nexts.Load() < 3 && time.Now().Before(deadline) && !p.hasExited() {
		time.Sleep(5 * time.Millisecond)
	}
	if p.hasExited() {
		t.Fatalf("lrap exited (code %d) because the Extensions API dropped a connection", p.code)
	}
	if n := stub.nexts.Load(); n < 3 {
		t.Fatalf("lrap called event/next %d times, want a retry after each dropped connection", n)
	}
	close(release)
	if code := p.waitExit(t, waitBound); code != 0 {
		t.Errorf("exit code %d after SHUTDOWN, want 0", code)
	}
	if exits, inits := stub.calls(); len(exits)+len(inits) != 0 {
		t.Errorf("error reports for a transient failure: exit %+v init %+v", exits, inits)
	}
}

// T9: when the upstream cannot be reached, lrap answers the runtime 502 with
// an LRAP.UpstreamUnavailable document (never a made-up success), logs it at
// error level, and keeps serving: once the upstream is back, requests pass.
func TestUpstreamUnavailableThroughBinary(t *testing.T) {
	t.Parallel()
	fake := startFake(t, fakeapi.Options{})
	upPort := freePort(t) // closed: nothing listens there
	up := hostPort(upPort)
	p := startReady(t, fake, lrapOpts{env: []string{"LRAP_RUNTIME_API_ENDPOINT=" + up}})
	rt := newRuntime(t, p.addr())
	ctx := bounded(t)

	r := rt.do(ctx, "GET", runtimeapi.PathNext, nil)
	if r.err != nil || r.status != http.StatusBadGateway {
		t.Fatalf("/next with the upstream down: %d %v, want 502", r.status, r.err)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("502 Content-Type %q", ct)
	}
	doc := decodeErrorDoc(t, r.body)
	if doc.ErrorType != runtimeapi.ErrorUpstreamUnavailable || !strings.Contains(doc.ErrorMessage, up) {
		t.Errorf("502 body %q, want %s naming %s", r.body, runtimeapi.ErrorUpstreamUnavailable, up)
	}
	p.waitLog(t, "an error-level line about the upstream", func(m map[string]any) bool {
		return m["level"] == "ERROR" && strings.Contains(stringify(m), up)
	})
	if p.hasExited() {
		t.Fatal("lrap exited after an upstream failure")
	}

	// The upstream comes up on the same address.
	ln, err := net.Listen("tcp", up)
	if err != nil {
		t.Skipf("cannot re-bind %s for the recovery half: %v", up, err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "pong")
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	must(t, "/ping once the upstream is back", rt.do(ctx, "GET", runtimeapi.RuntimePrefix+"/ping", nil), 200, "pong")
	shutdownAndExpectExit(t, fake, 2*time.Second, p)
}

func stringify(m map[string]any) string {
	b, _ := json.Marshal(m)
	return string(b)
}

// trailerBody streams parts, then sets the request's trailers before it
// reports EOF, the way aws-lambda-go's error-capturing reader does.
type trailerBody struct {
	parts   []string
	req     *http.Request
	trailer http.Header
}

func (b *trailerBody) Read(p []byte) (int, error) {
	if len(b.parts) == 0 {
		for k, v := range b.trailer {
			b.req.Trailer[k] = v
		}
		return 0, io.EOF
	}
	n := copy(p, b.parts[0])
	b.parts[0] = b.parts[0][n:]
	if b.parts[0] == "" {
		b.parts = b.parts[1:]
	}
	return n, nil
}

// T19, T8: two lrap instances chained (A forwards to B, B to the API; both
// registered under their own names) are as transparent as one: a whole
// invocation through A reaches the API byte-exact, including a chunked
// streamed /response whose declared trailers (error type and body) carry
// values, and the API's answers come back. Both log the forwarded /response
// (debug), so the chain was really used, and both exit 0 on SHUTDOWN.
func TestChainedInstancesAreTransparent(t *testing.T) {
	t.Parallel()
	fake := startFake(t, fakeapi.Options{})
	b := startReady(t, fake, lrapOpts{name: "lrap-b", env: []string{"LRAP_LOG_LEVEL=debug"}})
	a := startReady(t, fake, lrapOpts{name: "lrap-a", env: []string{
		"LRAP_LOG_LEVEL=debug", "LRAP_RUNTIME_API_ENDPOINT=" + b.addr()}})
	if regs := fake.Registrations(); len(regs) != 2 {
		t.Fatalf("registrations %+v, want lrap-b and lrap-a", regs)
	}
	rt := newRuntime(t, a.addr())
	ctx := bounded(t)

	event := []byte(`{"chained":"` + marker + `"}`)
	inv := invocationHeaders("3f9d1c52-0d6b-4c49-8f0e-1a2b3c4d5e6f", event)
	p := fake.Enqueue(inv)
	r := must(t, "/next via A and B", rt.do(ctx, "GET", runtimeapi.PathNext, nil), 200, string(event))
	headerExact(t, "/next via A and B", r.header, wantNextHeader(inv))

	errBody := base64.StdEncoding.EncodeToString([]byte(errJSON("Function.StreamFailed", "mid-stream")))
	req, err := http.NewRequestWithContext(ctx, "POST", rt.base+respPath(inv.RequestID), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Body = io.NopCloser(&trailerBody{
		parts:   []string{"part one, ", "part two, ", "part three"},
		req:     req,
		trailer: http.Header{runtimeapi.HeaderErrorType: {"Function.StreamFailed"}, runtimeapi.HeaderErrorBody: {errBody}},
	})
	req.ContentLength = -1
	req.Trailer = http.Header{runtimeapi.HeaderErrorType: nil, runtimeapi.HeaderErrorBody: nil}
	req.Header = http.Header{
		"User-Agent":                    {"aws-lambda-go/go1.26"},
		"Content-Type":                  {"application/vnd.awslambda.http-integration-response"},
		runtimeapi.HeaderResponseMode:   {runtimeapi.ResponseModeStreaming},
		"X-Lambda-Future-Request-Field": {"kept"},
	}
	must(t, "streamed /response via A and B", rt.send(req), 202, accepted)
	res, err := p.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Body) != "part one, part two, part three" || !res.Chunked || res.Status != 202 {
		t.Errorf("upstream got %+v", res)
	}
	headerExact(t, "/response at the API", res.Header, http.Header{
		"User-Agent":                    {"aws-lambda-go/go1.26"},
		"Content-Type":                  {"application/vnd.awslambda.http-integration-response"},
		runtimeapi.HeaderResponseMode:   {runtimeapi.ResponseModeStreaming},
		"X-Lambda-Future-Request-Field": {"kept"},
	})
	headerExact(t, "/response trailers at the API", res.Trailer, http.Header{
		runtimeapi.HeaderErrorType: {"Function.StreamFailed"},
		runtimeapi.HeaderErrorBody: {errBody},
	})
	shutdownAndExpectExit(t, fake, 2*time.Second, a, b)
	// stderr is complete once the processes have exited.
	for _, px := range []*proc{a, b} {
		var n int
		for _, m := range px.logLines(t) {
			if m["method"] == "POST" && m["path"] == respPath(inv.RequestID) && m["status"] == float64(202) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s logged the /response %d times, want once (the chain must pass through it)", px.name, n)
		}
	}
}

// Logs are JSON lines with a level on stderr; info (the default) has no
// per-request lines, debug has exactly one per forwarded request; and no
// payload byte (event, response or error body) appears at any level: the
// Runtime API carries customer data.
func TestLogsAreJSONAndNeverCarryPayloads(t *testing.T) {
	t.Parallel()
	for _, level := range []string{"", "debug"} {
		name := level
		if name == "" {
			name = "default"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fake := startFake(t, fakeapi.Options{})
			var env []string
			if level != "" {
				env = append(env, "LRAP_LOG_LEVEL="+level)
			}
			p := startReady(t, fake, lrapOpts{env: env})
			rt := newRuntime(t, p.addr())
			ctx := bounded(t)

			type fwd struct {
				method, path string
				status       int
			}
			var want []fwd
			p1 := fake.Enqueue(fakeapi.Invocation{RequestID: "log-1", Payload: []byte(`{"event":"` + marker + `"}`)})
			must(t, "/next", rt.do(ctx, "GET", runtimeapi.PathNext, nil), 200, `{"event":"`+marker+`"}`)
			must(t, "/response", rt.do(ctx, "POST", respPath("log-1"), strings.NewReader(marker+" response")), 202, accepted)
			must(t, "/response, wrong id", rt.do(ctx, "POST", respPath("not-the-id"), strings.NewReader(marker+" lost")),
				400, errJSON("InvalidRequestID", "Invalid request ID"))
			p2 := fake.Enqueue(fakeapi.Invocation{RequestID: "log-2", Payload: []byte(marker)})
			must(t, "second /next", rt.do(ctx, "GET", runtimeapi.PathNext, nil), 200, marker)
			must(t, "/error", rt.do(ctx, "POST", errPath("log-2"), strings.NewReader(errJSON("E", marker)),
				runtimeapi.HeaderErrorType, "Function.E"), 202, accepted)
			must(t, "/ping", rt.do(ctx, "GET", runtimeapi.RuntimePrefix+"/ping", nil), 200, "pong")
			want = append(want,
				fwd{"GET", runtimeapi.PathNext, 200}, fwd{"POST", respPath("log-1"), 202},
				fwd{"POST", respPath("not-the-id"), 400}, fwd{"GET", runtimeapi.PathNext, 200},
				fwd{"POST", errPath("log-2"), 202}, fwd{"GET", runtimeapi.RuntimePrefix + "/ping", 200})
			for _, pd := range []*fakeapi.Pending{p1, p2} {
				if _, err := pd.Wait(ctx); err != nil {
					t.Fatal(err)
				}
			}
			shutdownAndExpectExit(t, fake, 2*time.Second, p)

			lines := p.logLines(t)
			if len(lines) == 0 {
				t.Fatal("no log lines at all")
			}
			var got []fwd
			for _, m := range lines {
				switch m["level"] {
				case "DEBUG", "INFO", "WARN", "ERROR":
				default:
					t.Errorf("line without a valid level: %v", m)
				}
				if level == "" && m["level"] == "DEBUG" {
					t.Errorf("debug line at the default level: %v", m)
				}
				if strings.Contains(stringify(m), marker) {
					t.Errorf("payload in a log line: %v", m)
				}
				if path, ok := m["path"].(string); ok {
					status, _ := m["status"].(float64)
					method, _ := m["method"].(string)
					got = append(got, fwd{method, path, int(status)})
				}
			}
			if raw := p.stderr.String(); strings.Contains(raw, marker) {
				t.Errorf("payload on stderr")
			}
			if level == "" {
				if len(got) != 0 {
					t.Errorf("per-request lines at the default level: %v", got)
				}
				return
			}
			sortFwd := func(x, y fwd) int {
				return strings.Compare(x.method+x.path+strconv.Itoa(x.status), y.method+y.path+strconv.Itoa(y.status))
			}
			slices.SortFunc(got, sortFwd)
			slices.SortFunc(want, sortFwd)
			if !slices.Equal(got, want) {
				t.Errorf("per-request lines %v, want one per forwarded request %v", got, want)
			}
		})
	}
}
