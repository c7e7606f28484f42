package fakeapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/lrap/lrap/runtimeapi"
)

// ErrDuplicateRequestID is returned by Pending.Wait when Enqueue was given
// the request id of an invocation that has not finished yet.
var ErrDuplicateRequestID = errors.New("fakeapi: request id already in flight")

// Invocation is one invoke request, as the platform hands it to the data
// plane. Payload and ExtraHeaders must not be modified after Enqueue.
type Invocation struct {
	// Payload is the /next body, unmodified. Classic cuts it to
	// MaxPayloadSize like the RIE does (notes §2.1).
	Payload []byte
	// ContentType of the event; default application/json (notes §2.1).
	ContentType string
	// RequestID is generated (UUID v4) when empty.
	RequestID string
	// FunctionArn defaults to Options.FunctionArn.
	FunctionArn string
	// TraceID, ClientContext, CognitoIdentity and TenantID become the
	// matching /next headers, each sent only when non-empty (notes §2.1).
	TraceID         string
	ClientContext   string
	CognitoIdentity string
	TenantID        string
	// Deadline defaults to delivery time + Options.FunctionTimeout. It is
	// fixed at the first delivery and shared by re-deliveries and the INVOKE
	// extension event.
	Deadline time.Time
	// ExtraHeaders are added to the /next response after the standard
	// ones; a key in canonical form replaces the standard header of that
	// name (e.g. to send an empty one or Lambda-Runtime-Invocation-Id).
	ExtraHeaders http.Header
}

// Result kinds.
const (
	KindResponse = "response" // the runtime posted /response
	KindError    = "error"    // the runtime posted /error
)

// Result is what the runtime posted for one invocation.
type Result struct {
	RequestID string
	// Kind is KindResponse or KindError.
	Kind string
	// Status is the status the fake answered the runtime with: 202, or
	// 400/413 when the invocation failed on that request.
	Status int
	// Failure is the error type rapid gives a failed invocation
	// (Runtime.InvalidResponseModeHeader, Function.ResponseSizeTooLarge,
	// Runtime.TruncatedResponse); empty when Status is 202 (notes §2.2).
	Failure string
	// Header is the request's header (Go removes Transfer-Encoding from it;
	// see Chunked).
	Header http.Header
	// Body is the bytes received, up to the size limit; nil with
	// Options.DiscardBodies.
	Body []byte
	// Size counts every body byte received.
	Size int64
	// Trailer holds the request trailers, filled only when the body was
	// read to its end (notes §9).
	Trailer http.Header
	// Chunked reports Transfer-Encoding: chunked on the request.
	Chunked bool
	// ContentLength is the request's Content-Length, -1 when chunked.
	ContentLength int64
}

// Pending is an enqueued invocation whose result may not have arrived yet.
type Pending struct {
	// RequestID is the invocation's id, generated if it was empty.
	RequestID string

	done     chan struct{}
	finished bool // guarded by Server.mu
	res      *Result
	err      error
}

// Done is closed when Wait would not block.
func (p *Pending) Done() <-chan struct{} { return p.done }

// Wait returns the runtime's result, or ctx.Err() if ctx ends first, or
// ErrClosed if the server was closed first. An invocation is never withdrawn:
// after ctx ends it may still be delivered, as in Lambda when the caller
// gives up.
func (p *Pending) Wait(ctx context.Context) (*Result, error) {
	select {
	case <-p.done:
		return p.res, p.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// finish resolves p once. Caller holds Server.mu.
func (p *Pending) finish(res *Result, err error) {
	if p.finished {
		return
	}
	p.finished = true
	p.res, p.err = res, err
	close(p.done)
}

// invocation is the fake's state for one Invocation.
type invocation struct {
	Invocation
	pending *Pending
	header  http.Header // /next response headers, built at first delivery
	// Classic: the invoke completes when the runtime has called /next after
	// its response and every INVOKE subscriber has called /event/next again
	// (notes §2.1, §6.4 rule 4).
	runtimeDone bool
	extPending  int
}

// nextWaiter is one parked /next.
type nextWaiter struct{ ch chan *invocation }

// rtState is the classic runtime state machine; the names are rapid's, as
// they appear in 403 messages (notes §2.7).
type rtState int

const (
	rtStarted rtState = iota
	rtInitError
	rtReady
	rtRunning
	rtRestoreReady
	rtRestoring
	rtInvocationResponse
	rtInvocationErrorResponse
	rtResponseSent
	rtRestoreError
)

var rtStateNames = [...]string{
	rtStarted:                 "Started",
	rtInitError:               "InitError",
	rtReady:                   "Ready",
	rtRunning:                 "Running",
	rtRestoreReady:            "RestoreReady",
	rtRestoring:               "Restoring",
	rtInvocationResponse:      "InvocationResponse",
	rtInvocationErrorResponse: "InvocationErrorResponse",
	rtResponseSent:            "RuntimeResponseSentState",
	rtRestoreError:            "RuntimeRestoreErrorState",
}

func (st rtState) String() string { return rtStateNames[st] }

// RuntimeError is a recorded /runtime/init/error or /runtime/restore/error.
type RuntimeError struct {
	// Path is runtimeapi.PathInitError or runtimeapi.PathRestoreError.
	Path string
	// ErrorType is the Lambda-Runtime-Function-Error-Type header, verbatim.
	ErrorType string
	Header    http.Header
	Body      []byte
}

// Enqueue queues an invocation and returns at once. It is delivered to the
// oldest parked /next when the data plane can take it: in Classic when the
// previous invocation has completed, in Managed Instances at once; and in
// both only after every registered extension has called /event/next once
// (init complete, notes §6.4 rule 3, §7). Unlike Managed Instances, the fake
// queues instead of rejecting invokes when no /next is parked.
func (s *Server) Enqueue(inv Invocation) *Pending {
	if inv.RequestID == "" {
		inv.RequestID = newUUID()
	}
	p := &Pending{RequestID: inv.RequestID, done: make(chan struct{})}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		p.finish(nil, ErrClosed)
	case s.inflight[inv.RequestID] != nil:
		p.finish(nil, ErrDuplicateRequestID)
	default:
		iv := &invocation{Invocation: inv, pending: p}
		s.inflight[inv.RequestID] = iv
		s.queue = append(s.queue, iv)
		s.dispatchLocked()
		s.notifyLocked()
	}
	return p
}

// Invoke enqueues inv and waits for its result (see Enqueue, Pending.Wait).
func (s *Server) Invoke(ctx context.Context, inv Invocation) (*Result, error) {
	return s.Enqueue(inv).Wait(ctx)
}

// ParkedNext is the number of runtime /next requests parked waiting for an
// invocation, abandoned ones included.
func (s *Server) ParkedNext() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.nextWaiters)
}

// WaitParkedNext waits until at least n /next requests are parked.
func (s *Server) WaitParkedNext(ctx context.Context, n int) error {
	return s.WaitUntil(ctx, func() bool { return s.ParkedNext() >= n })
}

// RuntimeState is the classic runtime state name (Started, Ready, Running,
// RuntimeResponseSentState, ...). Managed Instances stay Started (notes §2.4).
func (s *Server) RuntimeState() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rt.String()
}

// RuntimeErrors returns the accepted /runtime/init/error and
// /runtime/restore/error calls, in order.
func (s *Server) RuntimeErrors() []RuntimeError {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.rtErrors)
}

// Restore ends the snapshot: a parked /runtime/restore/next (InitCaching)
// returns 200 with an empty body, now or, if none is parked yet, when it is
// called (notes §2.5).
func (s *Server) Restore() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.restored = true
	if s.rt == rtRestoreReady {
		s.rt = rtRestoring
	}
	for _, ch := range s.restoreWait {
		close(ch)
	}
	s.restoreWait = nil
	s.notifyLocked()
}

// dispatchLocked hands queued invocations to parked /next requests, oldest
// first. Caller holds s.mu.
func (s *Server) dispatchLocked() {
	for len(s.queue) > 0 && len(s.nextWaiters) > 0 {
		if s.opts.Mode == Classic && (s.cur != nil || s.rt != rtReady) {
			return
		}
		if !s.extensionsInitializedLocked() {
			return
		}
		iv := s.queue[0]
		s.queue[0] = nil
		s.queue = s.queue[1:]
		// Oldest waiter first, whether or not its client is still there:
		// sync.Cond.Signal in classic rapid, the idle queue in Managed
		// Instances (notes §2.1, T3).
		wt := s.nextWaiters[0]
		s.nextWaiters[0] = nil
		s.nextWaiters = s.nextWaiters[1:]
		s.startLocked(iv)
		wt.ch <- iv
	}
}

// startLocked marks iv delivered. Caller holds s.mu.
func (s *Server) startLocked(iv *invocation) {
	if iv.header == nil {
		if iv.Deadline.IsZero() {
			iv.Deadline = time.Now().Add(s.opts.FunctionTimeout)
		}
		if iv.FunctionArn == "" {
			iv.FunctionArn = s.opts.FunctionArn
		}
		if s.opts.Mode == Classic && len(iv.Payload) > MaxPayloadSize {
			iv.Payload = iv.Payload[:MaxPayloadSize]
		}
		iv.header = nextHeader(&iv.Invocation)
	}
	if s.opts.Mode == ManagedInstances {
		s.running[iv.RequestID] = iv
		return
	}
	s.cur = iv
	s.rt = rtRunning
	s.sendInvokeEventsLocked(iv)
}

// nextHeader builds the /next response headers (notes §2.1).
func nextHeader(inv *Invocation) http.Header {
	h := make(http.Header, 8+len(inv.ExtraHeaders))
	set := func(k, v string) {
		if v != "" {
			h[k] = []string{v}
		}
	}
	set(runtimeapi.HeaderRequestID, inv.RequestID)
	set(runtimeapi.HeaderDeadlineMs, strconv.FormatInt(inv.Deadline.UnixMilli(), 10))
	set(runtimeapi.HeaderFunctionArn, inv.FunctionArn)
	set(runtimeapi.HeaderTraceID, inv.TraceID)
	set(runtimeapi.HeaderClientContext, inv.ClientContext)
	set(runtimeapi.HeaderCognitoIdentity, inv.CognitoIdentity)
	set(runtimeapi.HeaderTenantID, inv.TenantID)
	ct := inv.ContentType
	if ct == "" {
		ct = "application/json"
	}
	h["Content-Type"] = []string{ct}
	for k, v := range inv.ExtraHeaders {
		h[k] = slices.Clone(v)
	}
	return h
}

// writeEvent answers a /next with iv.
func (s *Server) writeEvent(w http.ResponseWriter, iv *invocation) {
	h := w.Header()
	for k, v := range iv.header {
		h[k] = v
	}
	switch s.opts.NextFraming {
	case FramingContentLength:
		h.Set("Content-Length", strconv.Itoa(len(iv.Payload)))
		w.WriteHeader(http.StatusOK)
	case FramingChunked:
		w.WriteHeader(http.StatusOK)
		_ = http.NewResponseController(w).Flush() // headers out before the body: chunked
	default:
		w.WriteHeader(http.StatusOK)
	}
	_, _ = w.Write(iv.Payload)
}

// completeLocked ends the classic current invocation once the runtime and
// every INVOKE subscriber are done with it (notes §2.1). Caller holds s.mu.
func (s *Server) completeLocked() {
	if iv := s.cur; iv != nil && iv.runtimeDone && iv.extPending == 0 {
		s.cur = nil
		s.dispatchLocked()
	}
}

// finishLocked resolves iv's Pending. Caller holds s.mu.
func (s *Server) finishLocked(iv *invocation, res *Result) {
	iv.pending.finish(res, nil)
	if s.inflight[iv.RequestID] == iv {
		delete(s.inflight, iv.RequestID)
	}
	s.notifyLocked()
}

// abort drops the connection without an answer; used when Close wakes a
// parked handler (the client sees the connection close, not a made-up
// status).
func abort() { panic(http.ErrAbortHandler) }

// handleNext serves GET /runtime/invocation/next (notes §2.1).
func (s *Server) handleNext(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.opts.Mode == Classic {
		switch s.rt {
		case rtStarted, rtRestoring, rtReady:
			s.rt = rtReady
		case rtRunning:
			// /next while Running re-renders the same event (notes §2.1, T10).
			iv := s.cur
			s.mu.Unlock()
			s.writeEvent(w, iv)
			return
		case rtResponseSent:
			s.rt = rtReady
			s.cur.runtimeDone = true
			s.completeLocked()
		default:
			from := s.rt
			s.mu.Unlock()
			runtimeTransitionError(w, from, "Ready")
			return
		}
	}
	wt := &nextWaiter{ch: make(chan *invocation, 1)}
	s.nextWaiters = append(s.nextWaiters, wt)
	s.dispatchLocked()
	s.notifyLocked()
	s.mu.Unlock()

	if s.opts.Mode == Classic {
		// Classic parks on a condition variable and never looks at the
		// request context: an abandoned /next keeps its place in line and
		// takes the next event into a dead connection (notes §2.1, T3).
		select {
		case iv := <-wt.ch:
			s.writeEvent(w, iv)
		case <-s.done:
			abort()
		}
		return
	}
	// Managed Instances return 500 when the client goes away, but the slot
	// stays queued and will swallow an invocation (notes §2.1, T3).
	select {
	case iv := <-wt.ch:
		s.writeEvent(w, iv)
	case <-r.Context().Done():
		writeJSON(w, http.StatusInternalServerError, bodyInternalError)
	case <-s.done:
		abort()
	}
}

// claim outcomes.
const (
	claimOK = iota
	claimBadID
	claimBadState
)

// claim checks that id may post a result now and moves the state machine
// to "to". Classic: id must be the current invocation (else 400, checked
// before the body is read) and the runtime must be Running (else 403).
// Managed Instances: id must be delivered and without a result yet (else
// 400, duplicates included) (notes §2.2, §2.3).
func (s *Server) claim(id string, to rtState) (*invocation, rtState, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.opts.Mode == ManagedInstances {
		iv := s.running[id]
		if iv == nil {
			return nil, 0, claimBadID
		}
		delete(s.running, id)
		return iv, 0, claimOK
	}
	iv := s.cur
	if iv == nil || iv.RequestID != id {
		return nil, 0, claimBadID
	}
	if s.rt != rtRunning {
		return nil, s.rt, claimBadState
	}
	s.rt = to
	return iv, 0, claimOK
}

// claimOrReject is claim plus the error answer.
func (s *Server) claimOrReject(w http.ResponseWriter, id string, to rtState) *invocation {
	iv, from, outcome := s.claim(id, to)
	switch outcome {
	case claimBadID:
		writeJSON(w, http.StatusBadRequest, bodyInvalidRequestID)
	case claimBadState:
		runtimeTransitionError(w, from, to.String())
	}
	return iv
}

// handleResponse serves POST /runtime/invocation/{id}/response (notes §2.2).
func (s *Server) handleResponse(w http.ResponseWriter, r *http.Request, id string) {
	iv := s.claimOrReject(w, id, rtInvocationResponse)
	if iv == nil {
		return
	}
	res := newResult(r, id, KindResponse)
	if mode := r.Header.Get(runtimeapi.HeaderResponseMode); mode != "" && mode != runtimeapi.ResponseModeStreaming {
		// The invoke fails; classic rapid leaves the runtime in
		// InvocationResponse (notes §2.2, T14).
		res.Status, res.Failure = http.StatusBadRequest, "Runtime.InvalidResponseModeHeader"
		s.mu.Lock()
		s.finishLocked(iv, res)
		s.mu.Unlock()
		writeJSON(w, http.StatusBadRequest, bodyInvalidMode)
		return
	}
	limit := s.opts.MaxResponseSize
	readErr := s.readResult(r, res, limit)
	body := bodyAccepted
	res.Status = http.StatusAccepted
	switch {
	case readErr != nil:
		res.Status, res.Failure, body = http.StatusBadRequest, "Runtime.TruncatedResponse", bodyTruncated
	case limit >= 0 && res.Size > limit:
		res.Status, res.Failure, body = http.StatusRequestEntityTooLarge, "Function.ResponseSizeTooLarge", bodyTooLarge
	}
	s.mu.Lock()
	if s.opts.Mode == Classic {
		s.rt = rtResponseSent
	}
	s.finishLocked(iv, res)
	s.mu.Unlock()
	// Only now, with the whole body consumed, does the runtime get its
	// answer (notes §2.2, T7).
	writeJSON(w, res.Status, body)
}

// handleError serves POST /runtime/invocation/{id}/error (notes §2.3).
func (s *Server) handleError(w http.ResponseWriter, r *http.Request, id string) {
	iv := s.claimOrReject(w, id, rtInvocationErrorResponse)
	if iv == nil {
		return
	}
	res := newResult(r, id, KindError)
	res.Status = http.StatusAccepted
	body := bodyAccepted
	if s.opts.Mode == ManagedInstances {
		// Managed Instances cap the body at 1 MiB (notes §2.3).
		switch readErr := s.readResult(r, res, lmiErrorBodyLimit); {
		case res.Size > lmiErrorBodyLimit:
			res.Status, res.Failure, body = http.StatusRequestEntityTooLarge, "Function.ResponseSizeTooLarge", bodyTooLarge
		case readErr != nil:
			res.Status, res.Failure, body = http.StatusBadRequest, "Runtime.TruncatedResponse", bodyTruncated
		}
	} else {
		// Classic reads without limit and accepts a body it failed to read;
		// above the payload limit rapid panics and drops the connection,
		// leaving the invoke unfinished (notes §2.3).
		_ = s.readResult(r, res, s.opts.MaxResponseSize)
		if limit := s.opts.MaxResponseSize; limit >= 0 && res.Size > limit {
			abort()
		}
	}
	s.mu.Lock()
	if s.opts.Mode == Classic {
		s.rt = rtResponseSent
	}
	s.finishLocked(iv, res)
	s.mu.Unlock()
	writeJSON(w, res.Status, body)
}

func newResult(r *http.Request, id, kind string) *Result {
	return &Result{
		RequestID:     id,
		Kind:          kind,
		Header:        r.Header.Clone(),
		Chunked:       slices.Contains(r.TransferEncoding, "chunked"),
		ContentLength: r.ContentLength,
	}
}

var readBufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// readResult reads r's body to its end into res (keeping at most limit
// bytes unless limit < 0), reporting each read to OnResponseChunk. It
// returns the read error, nil at a clean EOF.
func (s *Server) readResult(r *http.Request, res *Result, limit int64) error {
	keep := !s.opts.DiscardBodies
	if keep && r.ContentLength > 0 && (limit < 0 || r.ContentLength <= limit) {
		res.Body = make([]byte, 0, r.ContentLength)
	}
	bp := readBufPool.Get().(*[]byte)
	defer readBufPool.Put(bp)
	buf := *bp
	for {
		n, err := r.Body.Read(buf)
		if n > 0 {
			if keep {
				k := int64(n)
				if limit >= 0 {
					k = max(0, min(k, limit-res.Size))
				}
				res.Body = append(res.Body, buf[:k]...)
			}
			res.Size += int64(n)
			if cb := s.opts.OnResponseChunk; cb != nil {
				cb(res.RequestID, buf[:n])
			}
		}
		if err == io.EOF {
			// Trailers exist only once the body has hit EOF (notes §9).
			if len(r.Trailer) > 0 {
				res.Trailer = r.Trailer.Clone()
			}
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// readAll reads an error document body, keeping at most limit bytes
// (limit < 0: no limit). It reports whether the body was larger than limit.
func readAll(r *http.Request, limit int64) ([]byte, bool, error) {
	if limit < 0 {
		b, err := io.ReadAll(r.Body)
		return b, false, err
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if int64(len(b)) > limit {
		return b[:limit], true, err
	}
	return b, false, err
}

// errorBodyLimit is the body cap of /init/error, /restore/error and the
// Extensions API: 1 MiB in Managed Instances, none in classic (notes §1.3).
func (s *Server) errorBodyLimit() int64 {
	if s.opts.Mode == ManagedInstances {
		return lmiErrorBodyLimit
	}
	return -1
}

// handleInitError serves POST /runtime/init/error (notes §2.4).
func (s *Server) handleInitError(w http.ResponseWriter, r *http.Request) {
	body, tooLarge, _ := readAll(r, s.errorBodyLimit())
	if tooLarge {
		writeJSON(w, http.StatusRequestEntityTooLarge, bodyTooLarge)
		return
	}
	rec := RuntimeError{
		Path:      runtimeapi.PathInitError,
		ErrorType: r.Header.Get(runtimeapi.HeaderErrorType),
		Header:    r.Header.Clone(),
		Body:      body,
	}
	s.mu.Lock()
	if s.opts.Mode == Classic {
		switch s.rt {
		case rtRestoring:
			// Treated as /restore/error during a restore (notes §2.4).
			s.rt = rtRestoreError
		case rtStarted:
			// Only before the first /next (notes §2.4).
			s.rt = rtInitError
		default:
			from := s.rt
			s.mu.Unlock()
			runtimeTransitionError(w, from, rtInitError.String())
			return
		}
	}
	// Managed Instances accept it at any time (notes §2.4).
	s.rtErrors = append(s.rtErrors, rec)
	s.notifyLocked()
	s.mu.Unlock()
	writeJSON(w, http.StatusAccepted, bodyAccepted)
}

// handleRestoreNext serves GET /runtime/restore/next (InitCaching only):
// it parks until Restore, then answers 200 with an empty body (notes §2.5).
func (s *Server) handleRestoreNext(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	if s.rt != rtStarted {
		from := s.rt
		s.mu.Unlock()
		runtimeTransitionError(w, from, rtRestoreReady.String())
		return
	}
	s.rt = rtRestoreReady
	if s.restored {
		s.rt = rtRestoring
		s.notifyLocked()
		s.mu.Unlock()
		w.WriteHeader(http.StatusOK)
		return
	}
	ch := make(chan struct{})
	s.restoreWait = append(s.restoreWait, ch)
	s.notifyLocked()
	s.mu.Unlock()
	// Parked like /next: the request context is not watched.
	select {
	case <-ch:
		w.WriteHeader(http.StatusOK)
	case <-s.done:
		abort()
	}
}

// handleRestoreError serves POST /runtime/restore/error: 202 while
// Restoring, 403 otherwise (notes §2.5).
func (s *Server) handleRestoreError(w http.ResponseWriter, r *http.Request) {
	body, _, _ := readAll(r, -1)
	s.mu.Lock()
	if s.rt != rtRestoring {
		from := s.rt
		s.mu.Unlock()
		runtimeTransitionError(w, from, rtRestoreError.String())
		return
	}
	s.rt = rtRestoreError
	s.rtErrors = append(s.rtErrors, RuntimeError{
		Path:      runtimeapi.PathRestoreError,
		ErrorType: r.Header.Get(runtimeapi.HeaderErrorType),
		Header:    r.Header.Clone(),
		Body:      body,
	})
	s.notifyLocked()
	s.mu.Unlock()
	writeJSON(w, http.StatusAccepted, bodyAccepted)
}
