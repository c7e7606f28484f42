// Command lrap is the stock lrap extension: put it in a Lambda layer at
// extensions/lrap and point the runtime at it with the lrap-wrapper script.
// Configuration comes from LRAP_* environment variables (see README).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/lrap/lrap"
)

func main() {
	// Lambda never signals extensions (it sends SHUTDOWN, then SIGKILL), but
	// a local run is stopped with a signal and should drain the same way.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := lrap.Run(ctx, lrap.Options{}); err != nil {
		stop()
		os.Exit(1)
	}
}
