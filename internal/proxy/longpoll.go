package proxy

import (
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
// lrap therefore never ties an upstream long poll to the runtime request that
// started it. A poll whose runtime request went away becomes an orphan; the
// runtime's next poll with the same key adopts the oldest orphan instead of
// starting another upstream poll, and receives its answer, whether it already
// arrived or not. Each upstream answer is relayed exactly once.

// poll is one upstream long poll. done is closed once resp or err is set.
type poll struct {
	done chan struct{}
	resp *http.Response
	err  error
	// event is the invocation behind a /next answer, when hooks track them.
	event *tracked
}

// pollQueue holds orphaned polls per key, oldest first.
type pollQueue struct {
	mu      sync.Mutex
	orphans map[string][]*poll
}

func newPollQueue() *pollQueue { return &pollQueue{orphans: make(map[string][]*poll)} }

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

// adopt takes the oldest orphan for key, skipping ones that already failed
// (their failure belongs to a request nobody waits for any more).
func (q *pollQueue) adopt(key string) *poll {
	q.mu.Lock()
	defer q.mu.Unlock()
	list := q.orphans[key]
	for len(list) > 0 {
		pl := list[0]
		list[0] = nil
		list = list[1:]
		if isDone(pl) && pl.err != nil {
			continue
		}
		q.set(key, list)
		return pl
	}
	q.set(key, list)
	return nil
}

func (q *pollQueue) set(key string, list []*poll) {
	if len(list) == 0 {
		delete(q.orphans, key)
		return
	}
	q.orphans[key] = list
}

func (q *pollQueue) orphan(key string, pl *poll) {
	q.mu.Lock()
	q.orphans[key] = append(q.orphans[key], pl)
	q.mu.Unlock()
}

// closeAll releases the answers no runtime will adopt any more.
func (q *pollQueue) closeAll() {
	q.mu.Lock()
	orphans := q.orphans
	q.orphans = make(map[string][]*poll)
	q.mu.Unlock()
	for _, list := range orphans {
		for _, pl := range list {
			go func() {
				<-pl.done
				if pl.resp != nil {
					pl.resp.Body.Close()
				}
			}()
		}
	}
}

func isDone(pl *poll) bool {
	select {
	case <-pl.done:
		return true
	default:
		return false
	}
}

var errShuttingDown = errors.New("lrap is shutting down")

// serveLongPoll answers a long poll from an adopted orphan or a new upstream
// poll, and orphans the poll if the runtime goes away first.
func (p *Proxy) serveLongPoll(w http.ResponseWriter, r *http.Request, key string, out *http.Request) (int, int64, error) {
	pl := p.polls.adopt(key)
	if pl != nil {
		p.log.Debug("long poll adopted an earlier abandoned one", "path", pathOf(r.RequestURI))
	} else {
		pl = &poll{done: make(chan struct{})}
		go p.runPoll(pl, out.WithContext(p.life))
	}
	select {
	case <-pl.done:
	case <-r.Context().Done():
		p.polls.orphan(key, pl)
		p.log.Debug("runtime abandoned a long poll; kept for its next one", "path", pathOf(r.RequestURI))
		return 0, 0, nil
	}
	if pl.err != nil {
		if p.life.Err() != nil {
			return 0, 0, errShuttingDown
		}
		p.unavailable(w, out, pl.err)
		return http.StatusBadGateway, 0, nil
	}
	delivered := time.Now()
	n, err := p.relayResponse(w, pl.resp)
	if pl.event != nil {
		p.chain.tracker.markDelivered(pl.event, delivered, n, eventDigest(pl.resp.Body))
	}
	return pl.resp.StatusCode, n, err
}

// runPoll polls upstream until it has an answer for the runtime. An event
// a hook rejects was failed upstream and never reaches the runtime: the
// poll goes on in its place.
func (p *Proxy) runPoll(pl *poll, out *http.Request) {
	defer close(pl.done)
	hooked := p.chain != nil && out.URL.Opaque == runtimeapi.PathNext
	for {
		pl.resp, pl.err = p.roundTrip(out, nil)
		if !hooked || pl.err != nil || pl.resp.StatusCode != http.StatusOK {
			return
		}
		t, rejected := p.processEvent(p.life, pl.resp)
		if !rejected {
			pl.event = t
			return
		}
	}
}
