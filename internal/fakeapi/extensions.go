package fakeapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/lrap/lrap/runtimeapi"
)

// maxExtensions is rapid's registration limit (notes §6.1).
const maxExtensions = 10

// Registration is one registered extension.
type Registration struct {
	// Name is the Lambda-Extension-Name it registered with.
	Name string
	// ID is the Lambda-Extension-Identifier the fake issued (UUID v4).
	ID string
	// Events it subscribed to (INVOKE, SHUTDOWN), as sent.
	Events []string
	// Header is the register request's header.
	Header http.Header
	// State is rapid's extension state name: Registered (not yet called
	// /event/next), Ready (parked in /event/next), Running (holding an
	// event), InitError or ExitError (notes §6.3).
	State string
}

// ExtensionError is a recorded /extension/init/error or /exit/error call.
type ExtensionError struct {
	ID   string
	Name string
	// ErrorType is the Lambda-Extension-Function-Error-Type header.
	ErrorType string
	Header    http.Header
	Body      []byte
}

// extState is rapid's external extension state machine (notes §6.2, §6.3).
type extState int

const (
	extRegistered extState = iota
	extReady
	extRunning
	extInitError
	extExitError
)

var extStateNames = [...]string{
	extRegistered: "Registered",
	extReady:      "Ready",
	extRunning:    "Running",
	extInitError:  "InitError",
	extExitError:  "ExitError",
}

func (st extState) String() string { return extStateNames[st] }

// extEvent is a rendered /event/next answer.
type extEvent struct {
	header http.Header
	body   []byte
}

// extension is the fake's state for one registered extension.
type extension struct {
	name     string
	id       string
	events   []string
	header   http.Header
	invoke   bool // subscribed to INVOKE
	shutdown bool // subscribed to SHUTDOWN

	state        extState
	waiter       chan extEvent // the parked /event/next, if any
	queued       *extEvent     // event waiting for the next /event/next
	ackFor       *invocation   // classic INVOKE event not yet acknowledged
	shutdownSent bool
}

// Registrations returns the registered extensions in registration order.
func (s *Server) Registrations() []Registration {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Registration, len(s.exts))
	for i, e := range s.exts {
		out[i] = Registration{
			Name:   e.name,
			ID:     e.id,
			Events: slices.Clone(e.events),
			Header: e.header.Clone(),
			State:  e.state.String(),
		}
	}
	return out
}

// WaitRegistered waits until at least n extensions have registered.
func (s *Server) WaitRegistered(ctx context.Context, n int) error {
	return s.WaitUntil(ctx, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.exts) >= n
	})
}

// InitErrors returns the accepted /extension/init/error calls, in order
// (repeated calls, which rapid accepts as no-ops, included).
func (s *Server) InitErrors() []ExtensionError {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.initErrs)
}

// ExitErrors returns the accepted /extension/exit/error calls, in order.
func (s *Server) ExitErrors() []ExtensionError {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.exitErrs)
}

// Shutdown sends a SHUTDOWN event to every extension subscribed to it that
// has not had one: at once to a parked /event/next, otherwise on its next
// /event/next. reason is passed through (rapid uses spindown, failure,
// Timeout, ...; notes §6.2). The runtime side is not affected. An extension
// that calls /event/next after its SHUTDOWN parks until Close: rapid has no
// further event for it and would SIGKILL it at the deadline.
func (s *Server) Shutdown(reason string, deadline time.Time) {
	// rapid renders agent events with json.Marshal: no trailing newline.
	// It sets no Content-Type, which Go then sniffs to text/plain on the
	// RIE's wire (notes §6.2); the fake suppresses the sniffing so the
	// header is absent and a proxy cannot come to depend on it.
	body, _ := json.Marshal(struct {
		EventType      string `json:"eventType"`
		DeadlineMs     int64  `json:"deadlineMs"`
		ShutdownReason string `json:"shutdownReason"`
	}{runtimeapi.EventShutdown, deadline.UnixMilli(), reason})
	ev := extEvent{header: http.Header{"Content-Type": nil}, body: body}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.exts {
		if !e.shutdown || e.shutdownSent || e.state == extInitError || e.state == extExitError {
			continue
		}
		e.shutdownSent = true
		if e.waiter != nil {
			s.deliverLocked(e, ev)
		} else {
			e.queued = &ev
		}
	}
	s.notifyLocked()
}

// deliverLocked answers e's parked /event/next. Caller holds s.mu.
func (s *Server) deliverLocked(e *extension, ev extEvent) {
	e.state = extRunning
	e.waiter <- ev
	e.waiter = nil
}

// sendInvokeEventsLocked releases every INVOKE subscriber with iv, at the
// same time as the runtime (notes §6.4 rule 4). Caller holds s.mu.
func (s *Server) sendInvokeEventsLocked(iv *invocation) {
	var body []byte
	for _, e := range s.exts {
		if !e.invoke || e.waiter == nil || e.shutdownSent {
			continue
		}
		if body == nil {
			body = invokeEventBody(iv)
		}
		s.deliverLocked(e, extEvent{
			header: http.Header{
				"Content-Type":                      {"application/json"},
				"Lambda-Extension-Event-Identifier": {newUUID()},
			},
			body: body,
		})
		e.ackFor = iv
		iv.extPending++
	}
}

// invokeEventBody renders the INVOKE event: json.Marshal, no trailing
// newline, no payload, tracing only with a trace id (notes §6.2).
func invokeEventBody(iv *invocation) []byte {
	type tracing struct {
		Type  string `json:"type"`
		Value string `json:"value"`
	}
	ev := struct {
		EventType          string   `json:"eventType"`
		DeadlineMs         int64    `json:"deadlineMs"`
		RequestID          string   `json:"requestId"`
		InvokedFunctionArn string   `json:"invokedFunctionArn"`
		Tracing            *tracing `json:"tracing,omitempty"`
	}{
		EventType:          runtimeapi.EventInvoke,
		DeadlineMs:         iv.Deadline.UnixMilli(),
		RequestID:          iv.RequestID,
		InvokedFunctionArn: iv.FunctionArn,
	}
	if iv.TraceID != "" {
		ev.Tracing = &tracing{"X-Amzn-Trace-Id", iv.TraceID}
	}
	b, _ := json.Marshal(ev)
	return b
}

// extensionsInitializedLocked reports whether every registered extension
// has called /event/next at least once (or failed), which rapid requires
// before the first invoke (notes §6.4 rule 3, §7). Caller holds s.mu.
func (s *Server) extensionsInitializedLocked() bool {
	for _, e := range s.exts {
		if e.state == extRegistered {
			return false
		}
	}
	return true
}

// handleRegister serves POST /extension/register (notes §6.1). Every
// extension is taken as external and registration never closes.
func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request) {
	name := r.Header.Get(runtimeapi.HeaderExtensionName)
	if name == "" {
		writeError(w, http.StatusForbidden, "Extension.InvalidExtensionName", "Empty extension name")
		return
	}
	body, _, err := readAll(r, s.errorBodyLimit())
	var req struct {
		Events            []string `json:"events"`
		ConfigurationKeys []string `json:"configurationKeys"`
	}
	if err == nil {
		err = json.Unmarshal(body, &req)
	}
	if err == nil && len(req.ConfigurationKeys) != 0 {
		err = fmt.Errorf("configurationKeys are deprecated; use environment variables instead")
	}
	if err != nil {
		writeError(w, http.StatusForbidden, "InvalidRequestFormat", err.Error())
		return
	}
	e := &extension{name: name, events: req.Events, header: r.Header.Clone()}
	for _, ev := range req.Events {
		switch {
		case ev == runtimeapi.EventShutdown:
			e.shutdown = true
		case ev == runtimeapi.EventInvoke && s.opts.Mode == Classic:
			// Managed Instances refuse INVOKE (notes §6.1, T11).
			e.invoke = true
		default:
			writeError(w, http.StatusForbidden, "Extension.InvalidEventType", ev+": ErrorInvalidEventType")
			return
		}
	}
	s.mu.Lock()
	for _, old := range s.exts {
		if old.name == name {
			from := old.state
			s.mu.Unlock()
			writeError(w, http.StatusForbidden, "Extension.InvalidExtensionState",
				extTransitionMessage(from, extRegistered, name))
			return
		}
	}
	if len(s.exts) >= maxExtensions {
		s.mu.Unlock()
		writeError(w, http.StatusForbidden, "Extension.TooManyExtensions",
			fmt.Sprintf("Extension limit (%d) reached", maxExtensions))
		return
	}
	e.id = newUUID()
	s.exts = append(s.exts, e)
	s.notifyLocked()
	s.mu.Unlock()

	resp := struct {
		FunctionName    string `json:"functionName"`
		FunctionVersion string `json:"functionVersion"`
		Handler         string `json:"handler"`
		AccountID       string `json:"accountId,omitempty"`
	}{s.opts.FunctionName, s.opts.FunctionVersion, s.opts.Handler, ""}
	for f := range strings.SplitSeq(r.Header.Get(runtimeapi.HeaderExtensionFeature), ",") {
		if strings.TrimSpace(f) == "accountId" {
			resp.AccountID = s.opts.AccountID
		}
	}
	var out bytes.Buffer
	_ = json.NewEncoder(&out).Encode(resp)
	w.Header().Set(runtimeapi.HeaderExtensionIdentifier, e.id)
	writeJSON(w, http.StatusOK, out.Bytes())
}

// extTransitionMessage is rapid's InvalidExtensionState message.
func extTransitionMessage(from, to extState, who string) string {
	return fmt.Sprintf("State transition from %s to %s failed for extension %s. Error: %s",
		from, to, who, errStateNotAllowed)
}

// withExtension validates Lambda-Extension-Identifier like rapid's
// middleware (missing or not a UUID → 403, notes §6.2) and passes the
// canonical id and the extension (nil when unknown) to h.
func (s *Server) withExtension(h func(http.ResponseWriter, *http.Request, string, *extension)) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		raw := r.Header.Get(runtimeapi.HeaderExtensionIdentifier)
		if raw == "" {
			writeError(w, http.StatusForbidden, "Extension.MissingExtensionIdentifier",
				"Missing Lambda-Extension-Identifier header")
			return
		}
		id, ok := parseUUID(raw)
		if !ok {
			writeError(w, http.StatusForbidden, "Extension.InvalidExtensionIdentifier",
				"Invalid Lambda-Extension-Identifier")
			return
		}
		s.mu.Lock()
		var ext *extension
		for _, e := range s.exts {
			if e.id == id {
				ext = e
			}
		}
		s.mu.Unlock()
		h(w, r, id, ext)
	}
}

// handleEventNext serves GET /extension/event/next (notes §6.2). The parked
// request does not watch its context, like the runtime's /next.
func (s *Server) handleEventNext(w http.ResponseWriter, _ *http.Request, id string, e *extension) {
	if e == nil {
		writeError(w, http.StatusForbidden, "Extension.UnknownExtensionIdentifier", "Unknown extension "+id)
		return
	}
	s.mu.Lock()
	switch e.state {
	case extRegistered, extRunning:
		// The first call ends the extension's init; a later one says it is
		// done with its event (notes §6.2).
		if iv := e.ackFor; iv != nil {
			e.ackFor = nil
			iv.extPending--
		}
		e.state = extReady
	default:
		// A second concurrent call finds it Ready (notes §6.2, T21).
		from := e.state
		s.mu.Unlock()
		writeError(w, http.StatusForbidden, "Extension.InvalidExtensionState",
			extTransitionMessage(from, extReady, id))
		return
	}
	ch := make(chan extEvent, 1)
	e.waiter = ch
	if ev := e.queued; ev != nil {
		e.queued = nil
		s.deliverLocked(e, *ev)
	}
	s.completeLocked()
	s.dispatchLocked()
	s.notifyLocked()
	s.mu.Unlock()

	select {
	case ev := <-ch:
		h := w.Header()
		for k, v := range ev.header {
			h[k] = v
		}
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(ev.body)
	case <-s.done:
		abort()
	}
}

// handleExtInitError serves POST /extension/init/error: allowed only before
// the extension's first /event/next, repeats are no-ops (notes §6.3).
func (s *Server) handleExtInitError(w http.ResponseWriter, r *http.Request, id string, e *extension) {
	s.extError(w, r, id, e, extInitError)
}

// handleExtExitError serves POST /extension/exit/error: allowed in
// Registered, Ready and Running, repeats are no-ops (notes §6.3). A parked
// /event/next of that extension stays parked until Close; a classic INVOKE
// event it still held no longer holds up the invocation.
func (s *Server) handleExtExitError(w http.ResponseWriter, r *http.Request, id string, e *extension) {
	s.extError(w, r, id, e, extExitError)
}

func (s *Server) extError(w http.ResponseWriter, r *http.Request, id string, e *extension, to extState) {
	errorType := r.Header.Get(runtimeapi.HeaderExtensionErrorType)
	if errorType == "" {
		writeError(w, http.StatusForbidden, "Extension.MissingHeader",
			runtimeapi.HeaderExtensionErrorType+" not found")
		return
	}
	if e == nil {
		writeError(w, http.StatusForbidden, "Extension.UnknownExtensionIdentifier",
			"Unknown "+runtimeapi.HeaderExtensionIdentifier)
		return
	}
	body, _, _ := readAll(r, s.errorBodyLimit())
	s.mu.Lock()
	allowed := e.state == extRegistered || e.state == to ||
		(to == extExitError && (e.state == extReady || e.state == extRunning))
	if !allowed {
		from := e.state
		s.mu.Unlock()
		writeError(w, http.StatusForbidden, "Extension.InvalidExtensionState",
			extTransitionMessage(from, to, id))
		return
	}
	e.state = to
	e.waiter = nil
	if iv := e.ackFor; iv != nil {
		e.ackFor = nil
		iv.extPending--
	}
	rec := ExtensionError{ID: id, Name: e.name, ErrorType: errorType, Header: r.Header.Clone(), Body: body}
	if to == extInitError {
		s.initErrs = append(s.initErrs, rec)
	} else {
		s.exitErrs = append(s.exitErrs, rec)
	}
	s.completeLocked()
	s.dispatchLocked()
	s.notifyLocked()
	s.mu.Unlock()
	writeJSON(w, http.StatusAccepted, bodyAccepted)
}

// newUUID returns a random (version 4) UUID in canonical form.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand, Go ≥ 1.24)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:])
	return string(out[:])
}

// parseUUID accepts the forms rapid's uuid.Parse does (canonical,
// {braced}, urn:uuid: prefixed, 32 bare hex digits) and returns the
// canonical lower-case form.
func parseUUID(s string) (string, bool) {
	switch len(s) {
	case 36 + 9:
		if !strings.EqualFold(s[:9], "urn:uuid:") {
			return "", false
		}
		s = s[9:]
	case 36 + 2:
		if s[0] != '{' || s[37] != '}' {
			return "", false
		}
		s = s[1:37]
	case 32:
		s = s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:]
	}
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return "", false
	}
	var b [16]byte
	hexPart := s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:]
	if _, err := hex.Decode(b[:], []byte(hexPart)); err != nil {
		return "", false
	}
	return strings.ToLower(s), true
}
