package main

import (
	"context"
	"fmt"
	"time"

	"github.com/lrap/lrap/internal/fakeapi"
)

// lifecycleSample is one extension lifetime, timed from just before the exec.
type lifecycleSample struct {
	Listening time.Duration // exec → the port accepts connections
	Register  time.Duration // exec → the fake has the /extension/register
	Ready     time.Duration // exec → first /extension/event/next (init done)
	// Exit is SHUTDOWN sent → process exited (after one invocation, with the
	// runtime's connections closed, as when Lambda has stopped the runtime).
	Exit time.Duration
}

// coldStart starts t as a fresh extension in front of a fresh fake, runs one
// invocation through it and shuts it down.
func coldStart(t *target, tmp string, payload []byte) (lifecycleSample, error) {
	var s lifecycleSample
	e := &env{tgt: t, mode: fakeapi.Classic}
	fake, err := fakeapi.Start(fakeOptions(fakeapi.Classic, e))
	if err != nil {
		return s, err
	}
	e.fake = fake
	e.client = newRuntimeHTTPClient()
	defer e.stop()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	registered := make(chan time.Time, 1)
	go func() {
		if fake.WaitRegistered(ctx, 1) == nil {
			registered <- time.Now()
		}
		close(registered)
	}()

	start, err := e.startProcess(tmp)
	if err != nil {
		return s, err
	}
	listening, err := waitListening(e, 10*time.Second)
	if err != nil {
		return s, err
	}
	s.Listening = listening.Sub(start)
	if err := waitInitDone(e, 10*time.Second); err != nil {
		return s, err
	}
	s.Ready = time.Since(start)
	reg, ok := <-registered
	if !ok {
		return s, fmt.Errorf("%s: registration not seen", t.name)
	}
	s.Register = reg.Sub(start)

	w := newWorker(e, payload)
	fake.Enqueue(fakeapi.Invocation{Payload: payload})
	if err := w.cycle(len(payload)); err != nil {
		return s, fmt.Errorf("%s: first invocation: %w", t.name, err)
	}
	// Lambda stops the runtime before it sends SHUTDOWN: its connections
	// are gone by then.
	e.client.CloseIdleConnections()
	if s.Exit, err = e.shutdown(5 * time.Second); err != nil {
		return s, err
	}
	return s, nil
}
