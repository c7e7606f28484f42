// Package fakeapi is a strict, in-process fake of the AWS Lambda Runtime API
// (2018-06-01) and Extensions API (2020-01-01). It is the upstream of lrap's
// integration tests and benchmarks: lrap sits between it and a test client
// that plays the runtime.
//
// Strict means it answers like the RIE data plane ("rapid") does: same routes,
// status codes, error documents byte for byte, state machine and long-poll
// behaviour, including the parts that hurt a careless proxy (an abandoned
// /next that swallows the next event, trap T3). Section numbers in comments
// refer to shared/runtime-api-notes.md.
//
// Fast means no logging, no sleeps and no polling: parked requests wait on
// channels and every state change is a few map or slice operations under one
// mutex.
//
// Known simplifications (the fake never resets the environment, so after an
// invoke failure the runtime state stays where rapid leaves it; no timeouts
// are enforced; registration is never closed and every extension is treated
// as external; /2021-04-23/credentials is not served) are documented on the
// names they affect.
package fakeapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/lrap/lrap/runtimeapi"
)

// Mode selects which Lambda data plane the fake imitates.
type Mode int

const (
	// Classic is the one-invocation-at-a-time data plane (notes §2, §6.4).
	Classic Mode = iota
	// ManagedInstances is Lambda Managed Instances: many concurrent
	// invocations matched by request id, SHUTDOWN-only extensions (notes §7).
	ManagedInstances
)

// String returns the mode's name.
func (m Mode) String() string {
	switch m {
	case Classic:
		return "Classic"
	case ManagedInstances:
		return "ManagedInstances"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Framing selects how /next bodies are framed on the wire.
type Framing int

const (
	// FramingAuto writes the body after WriteHeader without a length, like
	// the real API: Go's server then sends Content-Length when the whole body
	// fits its 2048-byte buffer and chunked encoding otherwise (notes §2.1).
	FramingAuto Framing = iota
	// FramingChunked always sends Transfer-Encoding: chunked.
	FramingChunked
	// FramingContentLength always sends Content-Length.
	FramingContentLength
)

// MaxPayloadSize is rapid's payload limit, 6 MiB + 100 bytes (notes §4.2):
// larger buffered responses get 413, larger classic events are cut to it.
const MaxPayloadSize = 6*1024*1024 + 100

// lmiErrorBodyLimit is the 1 MiB cap Managed Instances put on /error,
// /init/error and the Extensions API (notes §1.3).
const lmiErrorBodyLimit = 1 << 20

// Defaults used when the matching Options field is zero.
const (
	DefaultFunctionName    = "test_function"
	DefaultFunctionVersion = "$LATEST"
	DefaultHandler         = "handler"
	DefaultAccountID       = "012345678912"
	DefaultFunctionTimeout = 300 * time.Second
	DefaultRecordBodyLimit = 1 << 20
)

// ErrClosed is returned by waits that were ended by Server.Close.
var ErrClosed = errors.New("fakeapi: server closed")

// Options configures a Server. The zero value is a classic data plane with
// RIE-like defaults.
type Options struct {
	// Mode selects Classic (default) or ManagedInstances behaviour.
	Mode Mode
	// InitCaching mounts /runtime/restore/next and /runtime/restore/error,
	// like the RIE's --enable-init-caching (SnapStart, notes §2.5). Classic
	// only; Managed Instances never mount them.
	InitCaching bool

	// FunctionName, FunctionVersion, Handler and AccountID fill the
	// /extension/register response (notes §6.1) and the default ARN.
	FunctionName    string
	FunctionVersion string
	Handler         string
	AccountID       string
	// FunctionArn is the Invoked-Function-Arn of invocations that do not
	// set one; default arn:aws:lambda:us-east-1:<AccountID>:function:<FunctionName>.
	FunctionArn string
	// FunctionTimeout sets the deadline of invocations without one, counted
	// from delivery to the runtime (notes §5). Default 300 s, like the RIE.
	// The fake never enforces it.
	FunctionTimeout time.Duration

	// NextFraming selects the framing of /next bodies; FramingAuto mimics
	// the real API.
	NextFraming Framing
	// MaxResponseSize is the limit above which /response gets 413 (and
	// classic /error drops the connection). 0 means MaxPayloadSize;
	// negative means unlimited, for streaming tests beyond 6 MB.
	MaxResponseSize int64
	// DiscardBodies stops Result.Body from being kept (Result.Size still
	// counts), for benchmarks with large responses.
	DiscardBodies bool
	// OnResponseChunk, if set, is called on the handler goroutine each time
	// a read of a /response or /error body returns data, before the next
	// read. chunk is only valid during the call. It must not block for long
	// and must not call Close.
	OnResponseChunk func(requestID string, chunk []byte)

	// DisableRecording turns Requests off entirely (benchmarks).
	DisableRecording bool
	// RecordBodyLimit bounds the bytes of each request body kept by
	// Requests. 0 means DefaultRecordBodyLimit; negative keeps none.
	RecordBodyLimit int
}

// Server is a running fake. All methods are safe for concurrent use.
type Server struct {
	opts   Options
	ln     net.Listener
	srv    *http.Server
	routes map[string]route

	done      chan struct{}  // closed by Close: wakes every parked handler
	serveDone chan struct{}  // closed when Serve has returned
	closeDone chan struct{}  // closed when the first Close has finished
	handler   sync.WaitGroup // running handlers; Add only under mu while open

	// mu guards everything below.
	mu      sync.Mutex
	closed  bool
	changed chan struct{} // closed and replaced on every state change

	// Runtime side (runtime.go).
	rt          rtState
	restored    bool
	restoreWait []chan struct{}
	queue       []*invocation          // enqueued, not yet delivered
	nextWaiters []*nextWaiter          // parked /next, oldest first
	cur         *invocation            // classic: delivered, not yet complete
	running     map[string]*invocation // Managed Instances: delivered, no result yet
	inflight    map[string]*invocation // every unfinished invocation by id
	rtErrors    []RuntimeError

	// Extensions side (extensions.go).
	exts     []*extension
	initErrs []ExtensionError
	exitErrs []ExtensionError

	// Recording (record.go).
	recording []*Request
	seq       int
}

type route struct {
	method string
	serve  func(w http.ResponseWriter, r *http.Request)
}

// Start listens on 127.0.0.1 (a random port) and serves the fake until Close.
func Start(opts Options) (*Server, error) {
	if opts.FunctionName == "" {
		opts.FunctionName = DefaultFunctionName
	}
	if opts.FunctionVersion == "" {
		opts.FunctionVersion = DefaultFunctionVersion
	}
	if opts.Handler == "" {
		opts.Handler = DefaultHandler
	}
	if opts.AccountID == "" {
		opts.AccountID = DefaultAccountID
	}
	if opts.FunctionArn == "" {
		opts.FunctionArn = "arn:aws:lambda:us-east-1:" + opts.AccountID + ":function:" + opts.FunctionName
	}
	if opts.FunctionTimeout <= 0 {
		opts.FunctionTimeout = DefaultFunctionTimeout
	}
	if opts.MaxResponseSize == 0 {
		opts.MaxResponseSize = MaxPayloadSize
	}
	if opts.RecordBodyLimit == 0 {
		opts.RecordBodyLimit = DefaultRecordBodyLimit
	}
	if opts.Mode == ManagedInstances {
		opts.InitCaching = false
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{
		opts:      opts,
		ln:        ln,
		done:      make(chan struct{}),
		changed:   make(chan struct{}),
		running:   make(map[string]*invocation),
		inflight:  make(map[string]*invocation),
		serveDone: make(chan struct{}),
		closeDone: make(chan struct{}),
	}
	s.routes = s.buildRoutes()
	// Plain HTTP/1.1 without any timeout, like the real API (notes §1.2).
	// The fake logs nothing; ErrorLog stays nil so that net/http still
	// reports a handler panic (a bug in the fake) on stderr.
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serveHTTP)}
	go func() {
		defer close(s.serveDone)
		_ = s.srv.Serve(ln)
	}()
	return s, nil
}

// Addr is the listen address as host:port without a scheme, the format of
// AWS_LAMBDA_RUNTIME_API (notes §1.1).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the server: it closes the listener and every connection, wakes
// every parked handler, fails every unfinished Pending with ErrClosed and
// returns once all handlers and the serve loop have returned. Safe to call
// more than once.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		<-s.closeDone
		return
	}
	s.closed = true
	close(s.done)
	for _, inv := range s.inflight {
		inv.pending.finish(nil, ErrClosed)
	}
	clear(s.inflight)
	s.notifyLocked()
	s.mu.Unlock()

	_ = s.srv.Close()
	s.handler.Wait()
	<-s.serveDone
	close(s.closeDone)
}

// WaitUntil blocks until cond returns true, ctx ends (ctx.Err()) or the
// server is closed (ErrClosed). cond is evaluated without the server's lock
// held, again after every state change, so it may call any Server method.
func (s *Server) WaitUntil(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		ch, closed := s.changed, s.closed
		s.mu.Unlock()
		if cond() {
			return nil
		}
		if closed {
			return ErrClosed
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// notifyLocked wakes WaitUntil callers. Caller holds s.mu.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// serveHTTP records the request and routes it. Handlers are counted so
// that Close can wait for them.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		panic(http.ErrAbortHandler)
	}
	s.handler.Add(1)
	rec := s.recordLocked(r)
	s.mu.Unlock()
	defer s.handler.Done()
	if rec != nil {
		body := &recordingBody{ReadCloser: r.Body, limit: s.opts.RecordBodyLimit}
		r.Body = body
		defer s.publish(rec, body, r)
	}
	s.route(w, r)
}

// route dispatches on the path only, like chi: the query is ignored, the
// path is not cleaned, and the escaped form is matched when it differs from
// the decoded one (notes §1.2, §9).
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	path := r.URL.RawPath
	if path == "" {
		path = r.URL.Path
	}
	if rt, ok := s.routes[path]; ok {
		if r.Method != rt.method {
			s.methodNotAllowed(w, rt.method)
			return
		}
		rt.serve(w, r)
		return
	}
	// /runtime/invocation/{awsrequestid}/response|error; the id is one path
	// segment, echoed byte-exact (notes §1.3, T13).
	if rest, ok := strings.CutPrefix(path, runtimeapi.PathInvocation); ok {
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			id, suffix := rest[:i], rest[i:]
			var serve func(http.ResponseWriter, *http.Request, string)
			switch suffix {
			case runtimeapi.InvocationResponse:
				serve = s.handleResponse
			case runtimeapi.InvocationError:
				serve = s.handleError
			}
			if serve != nil {
				if r.Method != http.MethodPost {
					s.methodNotAllowed(w, http.MethodPost)
					return
				}
				serve(w, r, id)
				return
			}
		}
	}
	// 404 text/plain "404 page not found\n" (notes §1.2).
	http.NotFound(w, r)
}

// methodNotAllowed answers 405 with an empty body; classic (chi v5) adds
// Allow, Managed Instances (chi v1) do not (notes §1.2).
func (s *Server) methodNotAllowed(w http.ResponseWriter, allow string) {
	if s.opts.Mode == Classic {
		w.Header().Set("Allow", allow)
	}
	w.WriteHeader(http.StatusMethodNotAllowed)
}

// buildRoutes returns the static route table of notes §1.3 for the mode.
func (s *Server) buildRoutes() map[string]route {
	get, post, put := http.MethodGet, http.MethodPost, http.MethodPut
	rt := map[string]route{
		runtimeapi.RuntimePrefix + "/ping": {get, s.handlePing},
		runtimeapi.PathNext:                {get, s.handleNext},
		runtimeapi.PathInitError:           {post, s.handleInitError},
		runtimeapi.PathRegister:            {post, s.handleRegister},
		runtimeapi.PathEventNext:           {get, s.withExtension(s.handleEventNext)},
		runtimeapi.PathExtInitError:        {post, s.withExtension(s.handleExtInitError)},
		runtimeapi.PathExtExitError:        {post, s.withExtension(s.handleExtExitError)},
		runtimeapi.TelemetryPrefix + "/telemetry": {put, stub(
			"Telemetry API is not supported", "Telemetry.NotSupported")},
	}
	if s.opts.Mode == Classic {
		// Managed Instances do not mount the Logs API (notes §1.3, §7).
		rt[runtimeapi.LogsPrefix+"/logs"] = route{put, stub(
			"Logs API is not supported", "Logs.NotSupported")}
		if s.opts.InitCaching {
			rt[runtimeapi.PathRestoreNext] = route{get, s.handleRestoreNext}
			rt[runtimeapi.PathRestoreError] = route{post, s.handleRestoreError}
		}
	}
	return rt
}

// handlePing answers 200 "pong" (notes §2.6); the type is sniffed.
func (s *Server) handlePing(w http.ResponseWriter, _ *http.Request) {
	_, _ = w.Write([]byte("pong"))
}

// stub is the classic RIE Logs/Telemetry stub: 202 with an error document
// (notes §2.6).
func stub(message, errorType string) func(http.ResponseWriter, *http.Request) {
	body := runtimeapi.ErrorDocument{ErrorMessage: message, ErrorType: errorType}.Marshal()
	return func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusAccepted, body)
	}
}

// Bodies every JSON answer shares. encoding/json output plus "\n", as the
// API's json.Encoder writes them (notes §1.2, §2.7).
var (
	bodyAccepted         = []byte("{\"status\":\"OK\"}\n")
	bodyInvalidRequestID = errDoc("InvalidRequestID", "Invalid request ID")
	bodyInvalidMode      = errDoc("InvalidFunctionResponseMode", "Invalid function response mode")
	bodyTruncated        = errDoc("TruncatedHTTPRequest", "HTTP request detected as truncated")
	bodyTooLarge         = errDoc("RequestEntityTooLarge", fmt.Sprintf("Exceeded maximum allowed payload size (%d bytes).", MaxPayloadSize))
	bodyInternalError    = errDoc("InternalServerError", "Internal Server Error")
)

// errStateNotAllowed ends every InvalidStateTransition message (notes §2.7).
const errStateNotAllowed = "State transition is not allowed"

func errDoc(errorType, message string) []byte {
	return runtimeapi.ErrorDocument{ErrorMessage: message, ErrorType: errorType}.Marshal()
}

// writeJSON answers with a pre-rendered JSON document.
func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeError answers with an error document.
func writeError(w http.ResponseWriter, status int, errorType, message string) {
	writeJSON(w, status, errDoc(errorType, message))
}

// runtimeTransitionError is the 403 InvalidStateTransition of the classic
// runtime state machine (notes §2.7). Managed Instances never produce it.
func runtimeTransitionError(w http.ResponseWriter, from rtState, to string) {
	writeError(w, http.StatusForbidden, "InvalidStateTransition",
		fmt.Sprintf("State transition from %s to %s failed for runtime. Error: %s", from, to, errStateNotAllowed))
}
