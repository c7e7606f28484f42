package extension_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lrap/lrap/internal/extension"
	"github.com/lrap/lrap/runtimeapi"
)

// waitBound bounds every wait in these tests.
const waitBound = 5 * time.Second

const extID = "5f1e2d3c-4b5a-4968-8776-655443322110"

func bounded(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitBound)
	t.Cleanup(cancel)
	return ctx
}

// stub is a scripted Extensions API. Unset handlers answer like the API:
// register with an identifier, the rest 404.
type stub struct {
	*httptest.Server
	register, next, report http.HandlerFunc
}

func newStub(t *testing.T, s *stub) *stub {
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var h http.HandlerFunc
		switch r.URL.Path {
		case runtimeapi.PathRegister:
			h = s.register
			if h == nil {
				h = registerOK
			}
		case runtimeapi.PathEventNext:
			h = s.next
		case runtimeapi.PathExtInitError, runtimeapi.PathExtExitError:
			h = s.report
		}
		if h == nil {
			http.NotFound(w, r)
			return
		}
		h(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *stub) addr() string { return strings.TrimPrefix(s.URL, "http://") }

func registerOK(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	w.Header().Set(runtimeapi.HeaderExtensionIdentifier, extID)
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"functionName":"f","functionVersion":"$LATEST","handler":"h"}`+"\n")
}

func register(t *testing.T, s *stub) *extension.Client {
	t.Helper()
	c, err := extension.Register(bounded(t), s.addr(), "lrap", []string{runtimeapi.EventShutdown})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// notes §6.1, T2, T11: register is a POST carrying the executable's name in
// Lambda-Extension-Name and {"events":["SHUTDOWN"]}; the identifier from the
// answer identifies every later call.
func TestRegisterSendsNameAndEventsAndKeepsIdentifier(t *testing.T) {
	var (
		mu       sync.Mutex
		problems []string
		nextID   string
	)
	complain := func(problem string) {
		mu.Lock()
		problems = append(problems, problem)
		mu.Unlock()
	}
	s := newStub(t, &stub{
		register: func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			if r.Method != http.MethodPost {
				complain("method " + r.Method)
			}
			if got := r.Header.Values(runtimeapi.HeaderExtensionName); len(got) != 1 || got[0] != "my-ext" {
				complain("Lambda-Extension-Name " + strings.Join(got, ","))
			}
			if string(b) != `{"events":["SHUTDOWN"]}` {
				complain("body " + string(b))
			}
			if ct := r.Header.Get("Content-Type"); ct != "application/json" {
				complain("Content-Type " + ct)
			}
			registerOK(w, r)
		},
		next: func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			nextID = r.Header.Get(runtimeapi.HeaderExtensionIdentifier)
			mu.Unlock()
			_, _ = io.WriteString(w, `{"eventType":"SHUTDOWN","deadlineMs":1700000000000,"shutdownReason":"spindown"}`)
		},
	})
	c, err := extension.Register(bounded(t), s.addr(), "my-ext", []string{runtimeapi.EventShutdown})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.NextEvent(bounded(t)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Errorf("register request: %s", p)
	}
	if nextID != extID {
		t.Errorf("event/next sent identifier %q, want the registered %q", nextID, extID)
	}
}

// Any answer but 200 to register is final (the API refuses; retrying would
// not change that): a *StatusError with the call, status and body, after one
// attempt.
func TestRegisterRefusedIsStatusError(t *testing.T) {
	var calls atomic.Int32
	body := `{"errorMessage":"Extension limit (10) reached","errorType":"Extension.TooManyExtensions"}` + "\n"
	s := newStub(t, &stub{register: func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, body)
	}})
	_, err := extension.Register(bounded(t), s.addr(), "lrap", []string{runtimeapi.EventShutdown})
	var se *extension.StatusError
	if !errors.As(err, &se) {
		t.Fatalf("error %v is not a *StatusError", err)
	}
	if se.Call != "register" || se.Status != 403 || se.Body != body {
		t.Errorf("got %+v", se)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("register sent %d times, want once", n)
	}
}

// A 200 without Lambda-Extension-Identifier leaves lrap unable to make any
// further call; that is an error, not a client with an empty identifier.
func TestRegisterWithoutIdentifierFails(t *testing.T) {
	s := newStub(t, &stub{register: func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "{}\n")
	}})
	if _, err := extension.Register(bounded(t), s.addr(), "lrap", []string{runtimeapi.EventShutdown}); err == nil ||
		!strings.Contains(err.Error(), runtimeapi.HeaderExtensionIdentifier) {
		t.Errorf("got %v, want an error naming the missing header", err)
	}
}

// notes §6.2: the data plane sends deadlineMs as a JSON number, older
// documentation as a string; both mean epoch milliseconds. SHUTDOWN comes
// without Content-Type and with reasons in any case.
func TestNextEventDecodes(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       extension.Event
	}{
		{"SHUTDOWN, deadline as a number",
			`{"eventType":"SHUTDOWN","deadlineMs":1700000000123,"shutdownReason":"spindown"}`,
			extension.Event{Type: "SHUTDOWN", Deadline: time.UnixMilli(1700000000123), ShutdownReason: "spindown"}},
		{"SHUTDOWN, deadline as a numeric string",
			`{"eventType":"SHUTDOWN","deadlineMs":"1700000000456","shutdownReason":"TIMEOUT"}`,
			extension.Event{Type: "SHUTDOWN", Deadline: time.UnixMilli(1700000000456), ShutdownReason: "TIMEOUT"}},
		{"SHUTDOWN without a deadline",
			`{"eventType":"SHUTDOWN","shutdownReason":"failure"}`,
			extension.Event{Type: "SHUTDOWN", ShutdownReason: "failure"}},
		{"INVOKE with unknown fields",
			`{"eventType":"INVOKE","deadlineMs":1700000000789,"requestId":"r-1","invokedFunctionArn":"arn:x","tracing":{"type":"X-Amzn-Trace-Id","value":"Root=1"}}`,
			extension.Event{Type: "INVOKE", Deadline: time.UnixMilli(1700000000789), RequestID: "r-1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStub(t, &stub{next: func(w http.ResponseWriter, _ *http.Request) {
				w.Header()["Content-Type"] = nil // as rapid sends SHUTDOWN
				_, _ = io.WriteString(w, tc.body)
			}})
			ev, err := register(t, s).NextEvent(bounded(t))
			if err != nil {
				t.Fatal(err)
			}
			if ev.Type != tc.want.Type || !ev.Deadline.Equal(tc.want.Deadline) || ev.ShutdownReason != tc.want.ShutdownReason ||
				ev.RequestID != tc.want.RequestID {
				t.Errorf("got %+v, want %+v", ev, tc.want)
			}
		})
	}
}

// A refusal of event/next (403 for an unknown identifier, for example) is
// returned as a *StatusError at once, not retried: Run reports it through
// exit/error and exits.
func TestNextEventRefusedIsStatusError(t *testing.T) {
	var calls atomic.Int32
	s := newStub(t, &stub{next: func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, `{"errorMessage":"Unknown extension x","errorType":"Extension.UnknownExtensionIdentifier"}`)
	}})
	_, err := register(t, s).NextEvent(bounded(t))
	var se *extension.StatusError
	if !errors.As(err, &se) || se.Call != "event/next" || se.Status != 403 || !strings.Contains(se.Body, "UnknownExtensionIdentifier") {
		t.Fatalf("got %v, want a *StatusError for event/next 403", err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("event/next sent %d times, want once", n)
	}
}

// closingListener accepts connections and closes them at once, recording
// when: every request to it fails at the transport level.
type closingListener struct {
	net.Listener
	mu    sync.Mutex
	times []time.Time
}

func newClosingListener(t *testing.T) *closingListener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &closingListener{Listener: ln}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			cl.mu.Lock()
			cl.times = append(cl.times, time.Now())
			cl.mu.Unlock()
			c.Close()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return cl
}

func (cl *closingListener) attempts() []time.Time {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return append([]time.Time(nil), cl.times...)
}

// T12: an Extensions API that cannot be reached is retried with growing
// waits (no busy loop) until the context ends; only then is the transport
// error returned.
func TestRetriesWithBackoffUntilContextEnds(t *testing.T) {
	cl := newClosingListener(t)
	const budget = 500 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	start := time.Now()
	_, err := extension.Register(ctx, cl.Addr().String(), "lrap", []string{runtimeapi.EventShutdown})
	took := time.Since(start)
	if err == nil {
		t.Fatal("register succeeded against a server that drops every connection")
	}
	if took < budget-50*time.Millisecond {
		t.Errorf("gave up after %v, before the context ended (%v)", took, budget)
	}
	if took > budget+time.Second {
		t.Errorf("returned %v after the context ended", took-budget)
	}
	times := cl.attempts()
	if len(times) < 3 {
		t.Fatalf("%d attempts in %v, want retries", len(times), budget)
	}
	if len(times) > 20 {
		t.Errorf("%d attempts in %v: no backoff", len(times), budget)
	}
	first, last := times[1].Sub(times[0]), times[len(times)-1].Sub(times[len(times)-2])
	if last < 2*first {
		t.Errorf("waits did not grow: first %v, last %v", first, last)
	}
}

// Connection refused while the API is not up yet: register keeps trying and
// succeeds once it is.
func TestRegisterRetriesUntilTheAPIIsUp(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // refused from now on
	srv := &http.Server{Handler: http.HandlerFunc(registerOK)}
	up := make(chan struct{})
	go func() {
		defer close(up)
		time.Sleep(150 * time.Millisecond)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("re-binding %s: %v", addr, err)
			return
		}
		go func() { _ = srv.Serve(ln) }()
	}()
	t.Cleanup(func() {
		<-up
		srv.Close()
	})
	start := time.Now()
	if _, err := extension.Register(bounded(t), addr, "lrap", []string{runtimeapi.EventShutdown}); err != nil {
		t.Fatalf("register: %v", err)
	}
	if time.Since(start) < 150*time.Millisecond {
		t.Error("register succeeded before the API was up")
	}
}

// event/next survives dropped connections (retry) and returns the event
// once the API answers; with the API gone it gives up only when ctx ends.
func TestNextEventRetries(t *testing.T) {
	var calls atomic.Int32
	s := newStub(t, &stub{next: func(w http.ResponseWriter, _ *http.Request) {
		if calls.Add(1) <= 2 {
			if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
				c.Close()
			}
			return
		}
		_, _ = io.WriteString(w, `{"eventType":"SHUTDOWN","deadlineMs":1700000000000,"shutdownReason":"spindown"}`)
	}})
	c := register(t, s)
	ev, err := c.NextEvent(bounded(t))
	if err != nil || ev.Type != runtimeapi.EventShutdown {
		t.Fatalf("got %+v %v after dropped connections, want the SHUTDOWN event", ev, err)
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("event/next reached the API %d times, want 3", n)
	}

	s.Close() // refused from now on
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := c.NextEvent(ctx); err == nil {
		t.Fatal("event/next succeeded with the API gone")
	}
	if took := time.Since(start); took < 250*time.Millisecond {
		t.Errorf("event/next gave up after %v, before its context ended", took)
	}
}

// notes §6.3: init/error and exit/error carry the identifier, the error type
// header (required; 403 without it) and a JSON error document; 202 is
// success, anything else a *StatusError.
func TestInitErrorAndExitError(t *testing.T) {
	for _, tc := range []struct {
		call, path string
		report     func(*extension.Client, context.Context, string, error) error
	}{
		{"init/error", runtimeapi.PathExtInitError, (*extension.Client).InitError},
		{"exit/error", runtimeapi.PathExtExitError, (*extension.Client).ExitError},
	} {
		t.Run(tc.call, func(t *testing.T) {
			type got struct {
				path   string
				header http.Header
				body   string
			}
			calls := make(chan got, 4)
			var status atomic.Int32
			status.Store(http.StatusAccepted)
			s := newStub(t, &stub{report: func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				calls <- got{r.URL.Path, r.Header.Clone(), string(b)}
				w.WriteHeader(int(status.Load()))
				_, _ = io.WriteString(w, "{\"status\":\"OK\"}\n")
			}})
			c := register(t, s)
			cause := errors.New(`LRAP_LOG_LEVEL="loud" is not valid (accepted: debug, info, warn, error)`)
			if err := tc.report(c, bounded(t), "Extension.ConfigInvalid", cause); err != nil {
				t.Fatal(err)
			}
			g := <-calls
			if g.path != tc.path {
				t.Errorf("path %s, want %s", g.path, tc.path)
			}
			for k, v := range map[string]string{
				runtimeapi.HeaderExtensionIdentifier: extID,
				runtimeapi.HeaderExtensionErrorType:  "Extension.ConfigInvalid",
				"Content-Type":                       "application/json",
			} {
				if g.header.Get(k) != v {
					t.Errorf("header %s = %q, want %q", k, g.header.Get(k), v)
				}
			}
			want := `{"errorMessage":"LRAP_LOG_LEVEL=\"loud\" is not valid (accepted: debug, info, warn, error)","errorType":"Extension.ConfigInvalid"}` + "\n"
			if g.body != want {
				t.Errorf("body %q, want %q", g.body, want)
			}

			status.Store(http.StatusForbidden)
			err := tc.report(c, bounded(t), "Extension.Fatal", errors.New("x"))
			var se *extension.StatusError
			if !errors.As(err, &se) || se.Call != tc.call || se.Status != 403 {
				t.Errorf("a 403 gave %v, want a *StatusError for %s", err, tc.call)
			}
			<-calls
		})
	}
}

// The StatusError message names the call and status, so a log line is
// enough to see what the API refused.
func TestStatusErrorMessage(t *testing.T) {
	e := &extension.StatusError{Call: "event/next", Status: 403, Body: "  refused\n"}
	if got := e.Error(); !strings.Contains(got, "event/next") || !strings.Contains(got, strconv.Itoa(403)) || !strings.HasSuffix(got, "refused") {
		t.Errorf("message %q", got)
	}
}
