package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lrap/lrap/hook"
)

// ErrorHookFailed is the error type of an invocation a fail-closed hook
// rejected because it could not give a verdict (panic, overrun, body it
// needs unavailable).
const ErrorHookFailed = "LRAP.HookFailed"

// DefaultBufferLimit is the largest body buffered for hooks that need whole
// bodies: the buffered response limit of Lambda itself.
const DefaultBufferLimit = 6 << 20

// chain runs the configured hooks. A nil *chain is the no-hook path: every
// method is then a no-op and no body is ever buffered.
type chain struct {
	hooks       []hook.Hook
	log         *slog.Logger
	bufferLimit int64

	onEvent, onResponse, onError, onInitError, onEnd []*hook.Hook
	// Which bodies some hook needs whole.
	eventBody, responseBody, errorBody bool
	digests                            bool

	tracker *tracker
	ends    *endQueue
	stats   Stats
}

// Stats counts what hooks did and what went wrong with them, per kind. A
// running proxy's Stats are available from Proxy.Stats.
type Stats struct {
	Panics, Overruns, Skips, Rejections, BodyUnavailable atomic.Int64
	// EndsDropped counts OnEnd calls dropped because the queue was full.
	EndsDropped atomic.Int64
}

func newChain(hooks []hook.Hook, bufferLimit int64, log *slog.Logger) *chain {
	if len(hooks) == 0 {
		return nil
	}
	if bufferLimit <= 0 {
		bufferLimit = DefaultBufferLimit
	}
	c := &chain{hooks: hooks, log: log, bufferLimit: bufferLimit, tracker: newTracker()}
	for i := range c.hooks {
		h := &c.hooks[i]
		if h.OnEvent != nil {
			c.onEvent = append(c.onEvent, h)
			c.eventBody = c.eventBody || h.NeedsBody
		}
		if h.OnResponse != nil {
			c.onResponse = append(c.onResponse, h)
			c.responseBody = c.responseBody || h.NeedsBody
		}
		if h.OnError != nil {
			c.onError = append(c.onError, h)
			c.errorBody = c.errorBody || h.NeedsBody
		}
		if h.OnInitError != nil {
			c.onInitError = append(c.onInitError, h)
		}
		if h.OnEnd != nil {
			c.onEnd = append(c.onEnd, h)
		}
		c.digests = c.digests || h.Digests
	}
	if len(c.onEnd) > 0 {
		c.ends = newEndQueue(c.onEnd, endQueueSize, log, &c.stats)
	}
	return c
}

// stage is one hook point: which hooks, and whether a body is at hand.
type stage struct {
	point string
	hooks []*hook.Hook
	// bodyMissing is why the body could not be given to hooks that need it
	// ("" when it was, or nobody needs it).
	bodyMissing string
}

// run calls the stage's hooks in order on msg. It returns the first
// rejection (with the hook's name), or Continue.
func (c *chain) run(ctx context.Context, st stage, inv *hook.Invocation, msg *hook.Message) (hook.Verdict, string) {
	for _, h := range st.hooks {
		if h.NeedsBody && st.bodyMissing != "" {
			c.stats.BodyUnavailable.Add(1)
			if v, rejected := c.failed(h, st.point, inv, st.bodyMissing); rejected {
				return v, h.Name
			}
			continue
		}
		v, failure := c.call(ctx, h, st.point, inv, msg)
		if failure != "" {
			if v, rejected := c.failed(h, st.point, inv, failure); rejected {
				return v, h.Name
			}
			continue
		}
		if _, _, rejected := v.Rejected(); rejected {
			c.stats.Rejections.Add(1)
			return v, h.Name
		}
	}
	return hook.Continue, ""
}

// failed applies h's policy to a hook that could not give a verdict.
func (c *chain) failed(h *hook.Hook, point string, inv *hook.Invocation, why string) (hook.Verdict, bool) {
	c.log.Warn("hook failed", "hook", h.Name, "point", point, "policy", h.Policy.String(),
		"request_id", requestIDOf(inv), "reason", why)
	if h.Policy == hook.FailClosed {
		c.stats.Rejections.Add(1)
		return hook.Reject(ErrorHookFailed, fmt.Sprintf("lrap hook %q (fail-closed) could not decide: %s", h.Name, why)), true
	}
	c.stats.Skips.Add(1)
	return hook.Continue, false
}

// call runs one hook function within its budget and recovers its panics. It
// returns the verdict, or why there is none.
//
// A budgeted hook runs on its own goroutine and is abandoned when it overruns
// (Go cannot stop it). It therefore works on a private copy of the message,
// whose changes are taken over only if it returns in time: a late write can
// never race the forward.
func (c *chain) call(ctx context.Context, h *hook.Hook, point string, inv *hook.Invocation, msg *hook.Message) (hook.Verdict, string) {
	fn := hookFunc(h, point)
	budget := h.Budget
	if budget == 0 {
		budget = hook.DefaultBudget
	}
	if budget < 0 {
		return c.protected(ctx, h, point, fn, inv, msg)
	}
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	private := copyMessage(msg)
	type result struct {
		v       hook.Verdict
		failure string
	}
	done := make(chan result, 1)
	go func() {
		v, failure := c.protected(ctx, h, point, fn, inv, private)
		done <- result{v, failure}
	}()
	select {
	case r := <-done:
		// A result that raced the deadline is an overrun all the same: the
		// budget is the contract, whichever channel select happened to pick.
		if ctx.Err() == nil {
			if r.failure == "" {
				adoptMessage(msg, private)
			}
			return r.v, r.failure
		}
	case <-ctx.Done():
	}
	c.stats.Overruns.Add(1)
	return hook.Continue, fmt.Sprintf("exceeded its budget of %v", budget)
}

func (c *chain) protected(ctx context.Context, h *hook.Hook, point string,
	fn func(context.Context, *hook.Invocation, *hook.Message) hook.Verdict,
	inv *hook.Invocation, msg *hook.Message) (v hook.Verdict, failure string) {
	defer func() {
		if r := recover(); r != nil {
			c.stats.Panics.Add(1)
			failure = fmt.Sprintf("panicked: %v", r)
		}
	}()
	return fn(ctx, inv, msg), ""
}

func hookFunc(h *hook.Hook, point string) func(context.Context, *hook.Invocation, *hook.Message) hook.Verdict {
	switch point {
	case pointEvent:
		return h.OnEvent
	case pointResponse:
		return h.OnResponse
	case pointError:
		return h.OnError
	default: // pointInitError: observe only
		return func(ctx context.Context, _ *hook.Invocation, m *hook.Message) hook.Verdict {
			h.OnInitError(ctx, m)
			return hook.Continue
		}
	}
}

const (
	pointEvent     = "event"
	pointResponse  = "response"
	pointError     = "error"
	pointInitError = "init-error"
)

func copyMessage(m *hook.Message) *hook.Message {
	c := &hook.Message{Header: m.Header.Clone(), Body: m.Body, Streaming: m.Streaming}
	if m.BodyChanged() {
		c.SetBody(m.Body)
	}
	return c
}

func adoptMessage(dst, src *hook.Message) {
	dst.Header = src.Header
	if src.BodyChanged() {
		dst.SetBody(src.Body)
	}
}

func requestIDOf(inv *hook.Invocation) string {
	if inv == nil {
		return ""
	}
	return inv.RequestID
}

// tracker keeps the invocations in flight by request id: there is no
// "current invocation" (Managed Instances run many at once).
type tracker struct {
	mu      sync.Mutex
	entries map[string]*tracked
}

// tracked is what lrap knows of one invocation between event and result.
type tracked struct {
	inv    *hook.Invocation
	inLrap atomic.Int64 // nanoseconds
	// Set by the tracker under its lock: the event is relayed on one
	// goroutine and the result handled on another.
	delivered, resultArrived time.Time
	eventBytes               int64
	eventDigest              []byte
}

// maxTracked bounds the tracker: an invocation whose result never comes
// (a worker died, a deadline the API never enforces) is ended as a timeout
// once this many newer ones are in flight.
const maxTracked = 4096

func newTracker() *tracker { return &tracker{entries: make(map[string]*tracked)} }

// add starts tracking t, returning the entries it had to evict.
func (tr *tracker) add(t *tracked) []*tracked {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.entries[t.inv.RequestID] = t
	if len(tr.entries) <= maxTracked {
		return nil
	}
	var oldest *tracked
	for _, e := range tr.entries {
		if oldest == nil || e.delivered.Before(oldest.delivered) {
			oldest = e
		}
	}
	delete(tr.entries, oldest.inv.RequestID)
	return []*tracked{oldest}
}

// markDelivered records that t's event reached the runtime.
func (tr *tracker) markDelivered(t *tracked, at time.Time, bytes int64, digest []byte) {
	tr.mu.Lock()
	t.delivered, t.eventBytes, t.eventDigest = at, bytes, digest
	tr.mu.Unlock()
}

func (tr *tracker) get(id string) *tracked {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.entries[id]
}

// take stops tracking id and returns its entry, once.
func (tr *tracker) take(id string, arrived time.Time) *tracked {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	t := tr.entries[id]
	delete(tr.entries, id)
	if t != nil {
		t.resultArrived = arrived
	}
	return t
}

func (tr *tracker) drain() []*tracked {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	all := make([]*tracked, 0, len(tr.entries))
	for id, t := range tr.entries {
		all = append(all, t)
		delete(tr.entries, id)
	}
	return all
}

// endQueueSize bounds OnEnd work waiting to run. Past it, ends are dropped
// and counted: an observer must never slow an invocation down.
const endQueueSize = 4096

type endQueue struct {
	hooks []*hook.Hook
	log   *slog.Logger
	stats *Stats
	ch    chan endItem
	done  chan struct{}
	// mu orders push against flush closing ch: a result that arrives
	// after SHUTDOWN began is dropped, not sent on a closed channel.
	mu     sync.RWMutex
	closed bool
}

type endItem struct {
	inv *hook.Invocation
	end *hook.End
}

func newEndQueue(hooks []*hook.Hook, size int, log *slog.Logger, stats *Stats) *endQueue {
	q := &endQueue{hooks: hooks, log: log, stats: stats, ch: make(chan endItem, size), done: make(chan struct{})}
	go q.work()
	return q
}

func (q *endQueue) push(inv *hook.Invocation, end *hook.End) {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		q.stats.EndsDropped.Add(1)
		return
	}
	select {
	case q.ch <- endItem{inv, end}:
	default:
		q.stats.EndsDropped.Add(1)
	}
}

func (q *endQueue) work() {
	defer close(q.done)
	for it := range q.ch {
		for _, h := range q.hooks {
			q.runOne(h, it)
		}
	}
}

func (q *endQueue) runOne(h *hook.Hook, it endItem) {
	defer func() {
		if r := recover(); r != nil {
			q.stats.Panics.Add(1)
			q.log.Warn("hook failed", "hook", h.Name, "point", "end", "request_id", it.inv.RequestID, "reason", fmt.Sprintf("panicked: %v", r))
		}
	}()
	h.OnEnd(it.inv, it.end)
}

// flush stops taking new ends and waits until the queue is empty or ctx
// ends.
func (q *endQueue) flush(ctx context.Context) error {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.ch)
	}
	q.mu.Unlock()
	select {
	case <-q.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%d invocation ends not flushed: %w", len(q.ch), ctx.Err())
	}
}

// invocationFromEvent reads the invocation's identity from /next headers.
func invocationFromEvent(h http.Header) *hook.Invocation {
	inv := &hook.Invocation{
		RequestID:       h.Get("Lambda-Runtime-Aws-Request-Id"),
		FunctionARN:     h.Get("Lambda-Runtime-Invoked-Function-Arn"),
		TraceID:         h.Get("Lambda-Runtime-Trace-Id"),
		TenantID:        h.Get("Lambda-Runtime-Aws-Tenant-Id"),
		ClientContext:   h.Get("Lambda-Runtime-Client-Context"),
		CognitoIdentity: h.Get("Lambda-Runtime-Cognito-Identity"),
		Header:          h,
	}
	if ms, err := parseMillis(h.Get("Lambda-Runtime-Deadline-Ms")); err == nil {
		inv.Deadline = time.UnixMilli(ms)
	}
	return inv
}
