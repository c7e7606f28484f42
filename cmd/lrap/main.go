// Command lrap is the stock lrap extension: put it in a Lambda layer at
// extensions/lrap and point the runtime at it with the lrap-wrapper script.
// Configuration comes from LRAP_* environment variables (see README),
// including the built-in hooks LRAP_HOOKS enables.
package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/lrap/lrap"
	"github.com/lrap/lrap/internal/builtin"
	"github.com/lrap/lrap/internal/config"
)

func main() {
	// Lambda never signals extensions (it sends SHUTDOWN, then SIGKILL), but
	// a local run is stopped with a signal and should drain the same way.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	// The built-in hooks log through slog's default logger: make it lrap's
	// own (JSON lines on stderr at LRAP_LOG_LEVEL), so that hook logs read
	// like the rest. A configuration error is reported by Run itself.
	cfg, _ := config.Load(os.LookupEnv)
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	slog.SetDefault(log)
	if err := lrap.Run(ctx, lrap.Options{Logger: log, LoadHooks: builtin.Load}); err != nil {
		stop()
		os.Exit(1)
	}
}
