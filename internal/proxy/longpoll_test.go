package proxy_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lrap/lrap/internal/proxy"
)

const nextPath = "/2018-06-01/runtime/invocation/next"

// Managed Instances park many /next at once; all of them must be parked
// upstream at the same time, each answered with its own event.
func TestConcurrentNextAllParkUpstream(t *testing.T) {
	const workers = 8
	var parked atomic.Int32
	release := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		n := parked.Add(1)
		if n == workers {
			close(release)
		}
		select {
		case <-release:
		case <-time.After(testTimeout):
			w.WriteHeader(500)
			return
		}
		w.Header().Set("Lambda-Runtime-Aws-Request-Id", fmt.Sprint("req-", n))
		_, _ = io.WriteString(w, fmt.Sprint(`{"n":`, n, `}`))
	})
	addr := startLrap(t, up.addr())
	client := runtimeClient()
	var wg sync.WaitGroup
	ids := make(chan string, workers)
	for range workers {
		wg.Go(func() {
			req, _ := http.NewRequestWithContext(ctxT(t), "GET", "http://"+addr+nextPath, nil)
			resp, err := client.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("status %d: not all %d /next were parked upstream at once", resp.StatusCode, workers)
			}
			ids <- resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
		})
	}
	wg.Wait()
	close(ids)
	seen := map[string]bool{}
	for id := range ids {
		if seen[id] {
			t.Errorf("event %s delivered twice", id)
		}
		seen[id] = true
	}
	if len(seen) != workers {
		t.Errorf("%d distinct events delivered, want %d", len(seen), workers)
	}
}

// classicNext mimics the classic data plane's /next: parked handlers ignore
// their client going away, and each event goes to the oldest parked handler,
// into a dead connection if its runtime left (runtime-api-notes.md T3).
type classicNext struct {
	mu      sync.Mutex
	waiters []chan string
	polls   atomic.Int32
}

func (c *classicNext) handle(w http.ResponseWriter, r *http.Request) {
	c.polls.Add(1)
	ch := make(chan string, 1)
	c.mu.Lock()
	c.waiters = append(c.waiters, ch)
	c.mu.Unlock()
	select {
	case id := <-ch:
		w.Header().Set("Lambda-Runtime-Aws-Request-Id", id)
		_, _ = io.WriteString(w, `{"id":"`+id+`"}`)
	case <-time.After(testTimeout):
		w.WriteHeader(500)
	}
}

// deliver wakes the oldest parked /next, waiting for one to be parked.
func (c *classicNext) deliver(t *testing.T, id string) {
	deadline := time.Now().Add(testTimeout)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		if len(c.waiters) > 0 {
			ch := c.waiters[0]
			c.waiters = c.waiters[1:]
			c.mu.Unlock()
			ch <- id
			return
		}
		c.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
	t.Error("no /next parked upstream")
}

// The runtime abandons its /next while the upstream holds it: lrap keeps
// the upstream poll, and the runtime's next /next receives its event. No new
// upstream poll is started, so the event cannot go into a dead connection.
func TestAbandonedNextHandsEventToNextPoll(t *testing.T) {
	for _, eventFirst := range []bool{false, true} {
		t.Run(fmt.Sprintf("event_arrives_before_repoll=%v", eventFirst), func(t *testing.T) {
			c := &classicNext{}
			up := newUpstream(t, c.handle)
			logs := &lineLog{}
			addr := startLrap(t, up.addr(), func(cfg *proxy.Config) { cfg.Logger = logs.logger() })
			client := runtimeClient()

			ctx, cancel := context.WithCancel(ctxT(t))
			abandoned := make(chan error, 1)
			go func() {
				req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+nextPath, nil)
				_, err := client.Do(req)
				abandoned <- err
			}()
			waitFor(t, func() bool { return c.polls.Load() == 1 })
			cancel()
			<-abandoned
			// lrap must have seen the runtime leave: an answer arriving in
			// the instant before that goes to the closed connection, which
			// no HTTP server can tell from a live one.
			waitFor(t, func() bool { return logs.contains("runtime left a long poll") })
			if eventFirst {
				c.deliver(t, "evt-1")
				time.Sleep(20 * time.Millisecond) // let the orphaned answer land
			}

			got := make(chan string, 1)
			go func() {
				req, _ := http.NewRequestWithContext(ctxT(t), "GET", "http://"+addr+nextPath, nil)
				resp, err := client.Do(req)
				if err != nil {
					t.Error(err)
					got <- ""
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				got <- resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
			}()
			if !eventFirst {
				time.Sleep(20 * time.Millisecond) // the re-poll is parked in lrap
				c.deliver(t, "evt-1")
			}
			select {
			case id := <-got:
				if id != "evt-1" {
					t.Fatalf("runtime's next /next got %q, want evt-1", id)
				}
			case <-time.After(testTimeout):
				t.Fatal("the event was lost: the runtime's next /next never got it")
			}
			if n := c.polls.Load(); n != 1 {
				t.Errorf("upstream saw %d /next polls, want 1 (the abandoned one, reused)", n)
			}

			// The following /next is a fresh upstream poll with its own event.
			go c.deliver(t, "evt-2")
			resp, err := client.Get("http://" + addr + nextPath)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id"); id != "evt-2" {
				t.Errorf("following /next got %q, want evt-2 (no event delivered twice)", id)
			}
		})
	}
}

// lineLog collects log messages for tests that wait on what lrap noticed.
type lineLog struct {
	mu   sync.Mutex
	msgs []string
}

func (l *lineLog) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.msgs = append(l.msgs, string(p))
	l.mu.Unlock()
	return len(p), nil
}

func (l *lineLog) contains(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range l.msgs {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in time")
		}
		time.Sleep(time.Millisecond)
	}
}
