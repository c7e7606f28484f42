package proxy

import (
	"context"
	"net/http"
	"testing"
)

func newWaiter(ctx context.Context) *waiter { return &waiter{ctx: ctx, ch: make(chan *answer, 1)} }

func answerFor(status int) *answer {
	return &answer{resp: &http.Response{StatusCode: status, Body: http.NoBody}}
}

func received(w *waiter) *answer {
	select {
	case a := <-w.ch:
		return a
	default:
		return nil
	}
}

// Each runtime request waiting adds an upstream poll only while fewer are in
// flight than requests wait: a runtime that left leaves its poll to the next.
func TestPollQueueKeepsOnePollPerWaiter(t *testing.T) {
	q := newPollQueue()
	ctx := context.Background()
	if _, start := q.join("k", newWaiter(ctx)); !start {
		t.Fatal("first waiter did not start a poll")
	}
	left := newWaiter(ctx)
	q.leave("k", left) // not queued: nothing happens
	w1 := q.state["k"].waiters[0]
	q.leave("k", w1) // the runtime left; its poll stays in flight
	if _, start := q.join("k", newWaiter(ctx)); start {
		t.Error("a waiter started a second poll while the first one's poll had nobody waiting")
	}
}

// An answer goes to the newest connected waiter: when lrap has not yet
// noticed a runtime's abandoned poll, that one is the older.
func TestPollQueueAnswersNewestConnectedWaiter(t *testing.T) {
	q := newPollQueue()
	older, newer := newWaiter(context.Background()), newWaiter(context.Background())
	q.join("k", older)
	q.join("k", newer)
	a := answerFor(200)
	q.finish("k", a)
	if received(newer) != a || received(older) != nil {
		t.Error("the answer did not go to the newest waiter")
	}
}

// A waiter whose runtime is gone is skipped even before it has left the
// queue; with nobody connected the answer is kept for the next request.
func TestPollQueueSkipsGoneWaitersAndKeepsAnswer(t *testing.T) {
	q := newPollQueue()
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	w := newWaiter(gone)
	q.join("k", w)
	a := answerFor(200)
	q.finish("k", a)
	if received(w) != nil {
		t.Fatal("an answer went to a waiter whose runtime was gone")
	}
	if got, start := q.join("k", newWaiter(context.Background())); got != a || start {
		t.Errorf("next request got %v (start poll %v), want the kept answer at once", got, start)
	}
}

// An answer handed to a waiter in the instant its runtime leaves is not lost:
// leave puts it back in front of the line.
func TestPollQueueLeaveReturnsHandedAnswer(t *testing.T) {
	q := newPollQueue()
	ctx, cancel := context.WithCancel(context.Background())
	w := newWaiter(ctx)
	q.join("k", w)
	a := answerFor(200)
	q.finish("k", a) // handed to w
	cancel()
	q.leave("k", w)
	if got, _ := q.join("k", newWaiter(context.Background())); got != a {
		t.Errorf("answer handed to a leaving waiter was lost (next request got %v)", got)
	}
}

// Failures are not kept for later requests: they belong to whoever waited.
func TestPollQueueDropsUnclaimedFailures(t *testing.T) {
	q := newPollQueue()
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	q.join("k", newWaiter(gone))
	q.finish("k", &answer{err: context.Canceled})
	if got, start := q.join("k", newWaiter(context.Background())); got != nil || !start {
		t.Errorf("next request got %v (start %v); want a fresh poll", got, start)
	}
}
