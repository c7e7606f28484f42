package proxy

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/lrap/lrap/runtimeapi"
)

// Long polls (/next, /restore/next, /extension/event/next) are the calls a
// runtime may abandon: its HTTP client times out or its worker is torn down
// while the API still holds the request. The API does not notice. Classic
// Lambda wakes the oldest parked /next first and writes the event into the
// dead connection while the runtime's fresh /next stays parked: the
// invocation hangs until its timeout (runtime-api-notes.md T3). Managed
// Instances keep the dead slot queued and route an invocation to it.
//
// lrap therefore keeps upstream polls apart from the runtime requests
// waiting for them. Per key, lrap keeps at least as many upstream polls in
// flight as there are runtime requests waiting. Each upstream answer goes to
// the newest waiter still connected; with none it is kept and handed to the
// next runtime request at once. A waiter that leaves does not cancel any
// upstream poll, so an answer is never lost to lrap, and each answer is
// handed out exactly once.
//
// Newest first, because a runtime that abandons a poll does so before it
// polls again: when lrap has not yet noticed the first connection close, the
// older waiter is the dead one. (Waiters of one key are interchangeable: any
// worker may take any event.) What no HTTP server can tell apart is an
// answer that arrives in the very instant between a runtime closing its only
// waiting connection and the server noticing it; that answer goes out on
// the closed connection.

// answer is the outcome of one upstream long poll.
type answer struct {
	resp *http.Response
	err  error
	// event is the invocation behind a /next answer, when hooks track them.
	event *tracked
}

// waiter is one runtime request waiting for an answer.
type waiter struct {
	ctx context.Context
	ch  chan *answer // buffered: the dispatcher never blocks on it
}

// pollState is the per-key bookkeeping. Invariant: inFlight >= len(waiters).
type pollState struct {
	waiters  []*waiter
	inFlight int
	ready    []*answer // answers that arrived with no waiter connected
}

// pollQueue holds the long-poll state of every key.
type pollQueue struct {
	mu    sync.Mutex
	state map[string]*pollState
}

func newPollQueue() *pollQueue { return &pollQueue{state: make(map[string]*pollState)} }

// longPollKey says whether r is a long poll and which polls can stand in for
// each other: all /next calls are interchangeable (any worker may take any
// event), an extension's event polls only with its own identifier.
func longPollKey(r *http.Request) (string, bool) {
	if r.Method != http.MethodGet || r.ContentLength != 0 {
		return "", false
	}
	switch path := pathOf(r.RequestURI); path {
	case runtimeapi.PathNext, runtimeapi.PathRestoreNext:
		return path, true
	case runtimeapi.PathEventNext:
		return path + " " + r.Header.Get(runtimeapi.HeaderExtensionIdentifier), true
	}
	return "", false
}

func (q *pollQueue) stateLocked(key string) *pollState {
	st := q.state[key]
	if st == nil {
		st = &pollState{}
		q.state[key] = st
	}
	return st
}

// join enqueues a waiter for key. It returns an answer at once when one is
// ready, and otherwise whether the caller must start an upstream poll to
// keep inFlight >= waiters.
func (q *pollQueue) join(key string, w *waiter) (ready *answer, startPoll bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	st := q.stateLocked(key)
	if len(st.ready) > 0 {
		a := st.ready[0]
		st.ready[0] = nil
		st.ready = st.ready[1:]
		return a, false
	}
	st.waiters = append(st.waiters, w)
	if st.inFlight < len(st.waiters) {
		st.inFlight++
		return nil, true
	}
	return nil, false
}

// leave removes a waiter whose runtime went away. An answer already handed
// to it goes back to the front of the line: it is older than any other.
func (q *pollQueue) leave(key string, w *waiter) {
	q.mu.Lock()
	defer q.mu.Unlock()
	st := q.stateLocked(key)
	for i, x := range st.waiters {
		if x == w {
			st.waiters = append(st.waiters[:i], st.waiters[i+1:]...)
			return
		}
	}
	select {
	case a := <-w.ch:
		q.dispatchLocked(st, a, true)
	default:
	}
}

// finish hands the answer of one upstream poll to the newest connected
// waiter, or keeps it for the next runtime request.
func (q *pollQueue) finish(key string, a *answer) {
	q.mu.Lock()
	defer q.mu.Unlock()
	st := q.stateLocked(key)
	st.inFlight--
	q.dispatchLocked(st, a, false)
}

func (q *pollQueue) dispatchLocked(st *pollState, a *answer, front bool) {
	for n := len(st.waiters); n > 0; n = len(st.waiters) {
		w := st.waiters[n-1]
		st.waiters[n-1] = nil
		st.waiters = st.waiters[:n-1]
		if w.ctx.Err() == nil {
			w.ch <- a
			return
		}
		// That runtime left; its leave() will find it gone.
	}
	if a.err != nil {
		// A failure nobody waits for is nobody's: the next poll starts
		// afresh rather than inheriting it.
		return
	}
	if front {
		st.ready = append([]*answer{a}, st.ready...)
	} else {
		st.ready = append(st.ready, a)
	}
}

// closeAll releases the answers no runtime will take any more.
func (q *pollQueue) closeAll() {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, st := range q.state {
		for _, a := range st.ready {
			a.resp.Body.Close()
		}
		st.ready = nil
	}
}

var errShuttingDown = errors.New("lrap is shutting down")

// serveLongPoll answers a runtime long poll with the next upstream answer
// for its key.
func (p *Proxy) serveLongPoll(w http.ResponseWriter, r *http.Request, key string, out *http.Request) (int, int64, error) {
	wt := &waiter{ctx: r.Context(), ch: make(chan *answer, 1)}
	a, startPoll := p.polls.join(key, wt)
	if startPoll {
		go p.runPoll(key, out.WithContext(p.life))
	}
	if a == nil {
		select {
		case a = <-wt.ch:
		case <-r.Context().Done():
			p.polls.leave(key, wt)
			p.log.Debug("runtime left a long poll; its answer goes to the next one", "path", pathOf(r.RequestURI))
			return 0, 0, nil
		}
	}
	if a.err != nil {
		if p.life.Err() != nil {
			return 0, 0, errShuttingDown
		}
		p.unavailable(w, out, a.err)
		return http.StatusBadGateway, 0, nil
	}
	delivered := time.Now()
	n, err := p.relayResponse(w, a.resp)
	if a.event != nil {
		p.chain.tracker.markDelivered(a.event, delivered, n, eventDigest(a.resp.Body))
	}
	return a.resp.StatusCode, n, err
}

// runPoll polls upstream until it has an answer for a runtime. An event a
// hook rejects was failed upstream and never reaches the runtime: the poll
// goes on in its place.
func (p *Proxy) runPoll(key string, out *http.Request) {
	a := &answer{}
	defer func() { p.polls.finish(key, a) }()
	hooked := p.chain != nil && out.URL.Opaque == runtimeapi.PathNext
	for {
		a.resp, a.err = p.roundTrip(out, nil)
		if !hooked || a.err != nil || a.resp.StatusCode != http.StatusOK {
			return
		}
		t, rejected := p.processEvent(p.life, a.resp)
		if !rejected {
			a.event = t
			return
		}
	}
}
