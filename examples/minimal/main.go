// Command minimal is a custom lrap extension with one hook of its own: it
// tells the runtime, in a header on every event, how many invocations this
// environment has finished so far. Build it, put it in a layer at
// extensions/minimal, and use lrap's wrapper script as with the stock lrap.
package main

import (
	"context"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"

	"github.com/lrap/lrap"
	"github.com/lrap/lrap/hook"
)

func main() {
	// OnEnd runs on its own goroutine while events keep arriving (many at
	// once under Managed Instances): the count must be atomic.
	var finished atomic.Int64
	counter := hook.Hook{
		Name: "counter",
		// Setting a header cannot block: run inline, without a budget.
		Budget: -1,
		OnEvent: func(_ context.Context, _ *hook.Invocation, ev *hook.Message) hook.Verdict {
			ev.Header.Set("X-Invocations-Finished", strconv.FormatInt(finished.Load(), 10))
			return hook.Continue
		},
		OnEnd: func(*hook.Invocation, *hook.End) { finished.Add(1) },
	}
	// Lambda ends extensions with SHUTDOWN; a signal stops a local run.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := lrap.Run(ctx, lrap.Options{Hooks: []hook.Hook{counter}}); err != nil {
		stop()
		os.Exit(1)
	}
}
