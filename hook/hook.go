// Package hook is the API for code that runs on lrap's data path: observe,
// change or reject invocations without touching function code.
//
// A Hook is a struct of optional functions, each named for the moment it runs:
//
//	OnEvent     the event from /next, before the runtime sees it
//	OnResponse  the runtime's /invocation/{id}/response, before the API gets it
//	OnError     the runtime's /invocation/{id}/error
//	OnInitError the runtime's /init/error (observe only)
//	OnEnd       after the invocation's result was accepted (observe only,
//	            off the hot path)
//
// Hooks run in the order given, each with its own failure Policy and time
// Budget. A panic or an overrun never reaches lrap or the invocation: it is
// recovered, logged and counted, and the hook's Policy decides what happens.
//
// Managed Instances run many invocations at once in one environment, so a
// hook never keeps "the current invocation" anywhere: everything it needs
// travels in the *Invocation it is given.
package hook

import (
	"context"
	"net/http"
	"sync"
	"time"
)

// Policy says what happens when a hook cannot give a verdict: it panicked,
// overran its Budget, or could not see a body it needs (larger than the
// buffer limit, or a streamed response).
type Policy int

const (
	// FailOpen skips the hook: the invocation continues untouched, and the
	// skip is logged and counted. For hooks whose absence is tolerable.
	FailOpen Policy = iota
	// FailClosed rejects: an event is failed upstream, a response is
	// replaced with an error. For hooks that guard something.
	FailClosed
)

func (p Policy) String() string {
	if p == FailClosed {
		return "fail-closed"
	}
	return "fail-open"
}

// DefaultBudget is a hook's time budget when Hook.Budget is zero.
const DefaultBudget = 200 * time.Millisecond

// Hook is one unit of processing. Every function field is optional; a nil
// field costs nothing on the data path.
type Hook struct {
	// Name identifies the hook in logs, counters and error messages.
	Name string
	// Policy applies when the hook cannot give a verdict. Zero is FailOpen.
	Policy Policy
	// Budget bounds each call of OnEvent, OnResponse and OnError. Zero
	// means DefaultBudget; a negative value means no budget (the hook runs
	// on the request's goroutine, for hooks that cannot block).
	Budget time.Duration
	// NeedsBody asks for whole bodies in Message.Body. Without it the body
	// streams past the hook untouched and Message.Body is nil. With it,
	// bodies are buffered up to the proxy's limit (LRAP_BUFFER_LIMIT); a
	// larger body, or a streamed response, cannot be given to the hook and
	// its Policy decides.
	NeedsBody bool
	// Digests asks for the size and SHA-256 of the event and the result in
	// End, computed while the bodies stream, with no buffering.
	Digests bool

	OnEvent     func(ctx context.Context, inv *Invocation, event *Message) Verdict
	OnResponse  func(ctx context.Context, inv *Invocation, response *Message) Verdict
	OnError     func(ctx context.Context, inv *Invocation, report *Message) Verdict
	OnInitError func(ctx context.Context, report *Message)
	// OnEnd runs after the invocation ended, from a bounded queue on its own
	// goroutine: it never delays an invocation. When the queue is full the
	// call is dropped and counted. The queue is flushed on SHUTDOWN.
	OnEnd func(inv *Invocation, end *End)
}

// Message is an event, response or error report as it crosses lrap.
type Message struct {
	// Header holds the message's headers. Changes are forwarded. For an
	// event these are the headers the runtime will see.
	Header http.Header
	// Body is the whole body when the hook set NeedsBody and the body could
	// be buffered; nil otherwise.
	Body []byte
	// Streaming is true for a response the runtime streams
	// (Lambda-Runtime-Function-Response-Mode: streaming). Its body is never
	// buffered.
	Streaming bool

	changed bool
}

// SetBody replaces the body. lrap sends it with a Content-Length that
// matches, whatever framing the original had.
func (m *Message) SetBody(b []byte) {
	m.Body = b
	m.changed = true
}

// BodyChanged reports whether SetBody was called.
func (m *Message) BodyChanged() bool { return m.changed }

// Verdict is a hook's decision. The zero value is Continue.
type Verdict struct {
	reject    bool
	errorType string
	message   string
}

// Continue lets the message go on, with any changes the hook made to it.
var Continue = Verdict{}

// Reject stops the message. For an event: lrap fails the invocation upstream
// through /invocation/{id}/error with errorType and message, the runtime never
// sees the event, and lrap polls /next again on the runtime's behalf. For a
// response or error report: lrap posts an error with errorType and message
// in its place.
func Reject(errorType, message string) Verdict {
	return Verdict{reject: true, errorType: errorType, message: message}
}

// Rejected reports whether the verdict is a rejection, and with what.
func (v Verdict) Rejected() (errorType, message string, ok bool) {
	return v.errorType, v.message, v.reject
}

// Invocation is one invocation as lrap sees it, from the event to the
// result. It is shared by the hooks of that invocation and safe for
// concurrent use.
type Invocation struct {
	RequestID       string
	FunctionARN     string
	TraceID         string
	TenantID        string
	ClientContext   string
	CognitoIdentity string
	// Deadline is the invocation's deadline as the API gave it
	// (Lambda-Runtime-Deadline-Ms). It is not checked: Managed Instances
	// have sent deadlines years away.
	Deadline time.Time
	// Header is the event's headers as the API sent them. Read only.
	Header http.Header

	mu    sync.Mutex
	store map[any]any
}

// Set keeps value under key for the rest of the invocation, for example
// from OnEvent to OnResponse and OnEnd. Use a key type of your own package
// to avoid clashes, as with context values.
func (inv *Invocation) Set(key, value any) {
	inv.mu.Lock()
	if inv.store == nil {
		inv.store = make(map[any]any)
	}
	inv.store[key] = value
	inv.mu.Unlock()
}

// Value returns what Set kept under key, or nil.
func (inv *Invocation) Value(key any) any {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	return inv.store[key]
}

// Outcome is how an invocation ended.
type Outcome string

const (
	// Success: the runtime's /response was accepted.
	Success Outcome = "success"
	// Error: the runtime reported an error through /error.
	Error Outcome = "error"
	// Rejected: a hook rejected the event or replaced the response.
	Rejected Outcome = "rejected"
	// Timeout: no result was accepted before the invocation's end was
	// forced (the API refused a late result, or SHUTDOWN came first).
	Timeout Outcome = "timeout"
)

// End describes a finished invocation.
type End struct {
	Outcome Outcome
	// ErrorType is the error type for Error and Rejected outcomes.
	ErrorType string
	// RejectedBy names the hook that rejected, for Rejected.
	RejectedBy string
	// EventBytes and ResultBytes are body sizes as they crossed lrap.
	EventBytes, ResultBytes int64
	// EventSHA256 and ResultSHA256 are set when a hook asked for Digests.
	EventSHA256, ResultSHA256 []byte
	// Delivered is when the event was handed to the runtime; zero for a
	// rejected event.
	Delivered time.Time
	// Duration runs from Delivered to the result's arrival at lrap: the
	// time in the function.
	Duration time.Duration
	// InLrap is the time lrap itself added to this invocation: hooks,
	// buffering and its own upstream calls, not waiting on either side.
	InLrap time.Duration
}
