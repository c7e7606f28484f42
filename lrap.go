// Package lrap runs a Lambda Runtime API proxy as an external extension.
//
// Run is the whole extension: it binds 127.0.0.1:LRAP_LISTENER_PORT, registers
// with the Extensions API for SHUTDOWN, forwards every Runtime API call of the
// function's runtime to the real API, and exits 0 after draining on SHUTDOWN.
// The stock binary, cmd/lrap, is Run with the built-in hooks that LRAP_HOOKS
// selects (Options.LoadHooks).
package lrap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/lrap/lrap/hook"
	"github.com/lrap/lrap/internal/config"
	"github.com/lrap/lrap/internal/extension"
	"github.com/lrap/lrap/internal/proxy"
	"github.com/lrap/lrap/runtimeapi"
)

// Options configure Run. The zero value runs the stock extension.
type Options struct {
	// Name is the name lrap registers under. It must be the file name of the
	// executable in /opt/extensions, or Lambda takes the extension for an
	// internal one and init hangs. Empty means the running executable's file
	// name.
	Name string
	// Env looks up configuration variables. Nil means os.LookupEnv.
	Env func(string) (string, bool)
	// Logger receives lrap's logs. Nil means JSON lines on stderr at the
	// level LRAP_LOG_LEVEL sets.
	Logger *slog.Logger
	// Hooks run on every invocation, in order (see package hook). None
	// means every body streams straight through, untouched.
	Hooks []hook.Hook
	// LoadHooks, when set, builds more hooks from the configuration (the
	// stock binary's built-in hooks); they run after Hooks. An error is a
	// configuration error: reported as Extension.ConfigInvalid, and lrap
	// exits. It is called once, after registration.
	LoadHooks func(env func(string) (string, bool)) ([]hook.Hook, error)
}

// registerTimeout bounds registration: the Extensions API answers it at once
// during init, and Lambda fails an init that takes longer anyway.
const registerTimeout = 30 * time.Second

// shutdownMargin is kept back from the SHUTDOWN deadline so that lrap exits
// before Lambda's SIGKILL, which would count as a crash.
const shutdownMargin = 100 * time.Millisecond

// Run runs the extension until SHUTDOWN, or until ctx ends (a signal when run
// by hand; Lambda itself never signals extensions). It returns nil after a
// clean shutdown and an error when lrap could not start or hit a fatal error;
// the error has been reported to Lambda where the API allows.
func Run(ctx context.Context, opts Options) error {
	env := opts.Env
	if env == nil {
		env = os.LookupEnv
	}
	cfg, cfgErr := config.Load(env)
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	}
	name := opts.Name
	if name == "" {
		name = filepath.Base(os.Args[0])
	}
	if cfg.RuntimeAPI == "" {
		// Without the Extensions API there is nobody to report to.
		log.Error("cannot start", "error", cfgErr)
		return cfgErr
	}

	// Bind before registering: Lambda starts the runtime as soon as the last
	// extension registers, and its first /next must find lrap listening (T1).
	var (
		ln    net.Listener
		lnErr error
	)
	if cfgErr == nil {
		ln, lnErr = net.Listen("tcp", cfg.ListenAddr)
	}

	regCtx, cancel := context.WithTimeout(ctx, registerTimeout)
	client, err := extension.Register(regCtx, cfg.RuntimeAPI, name, []string{runtimeapi.EventShutdown})
	cancel()
	if err != nil {
		if ln != nil {
			ln.Close()
		}
		log.Error("registration failed", "extension", name, "error", err)
		return err
	}

	hooks := opts.Hooks
	if cfgErr == nil && opts.LoadHooks != nil {
		loaded, err := opts.LoadHooks(env)
		if err != nil {
			cfgErr = err
		}
		hooks = append(hooks[:len(hooks):len(hooks)], loaded...)
	}

	switch {
	case cfgErr != nil:
		return initFailed(ctx, log, client, runtimeapi.ExtensionConfigInvalid, cfgErr)
	case lnErr != nil:
		return initFailed(ctx, log, client, runtimeapi.ExtensionListenFailed,
			fmt.Errorf("listen on %s: %w", cfg.ListenAddr, lnErr))
	}

	px, err := proxy.New(proxy.Config{Upstream: cfg.Upstream, Logger: log, Hooks: hooks, BufferLimit: cfg.BufferLimit})
	if err != nil {
		ln.Close()
		return initFailed(ctx, log, client, runtimeapi.ExtensionConfigInvalid, err)
	}
	srv := proxy.NewServer(px, log)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("lrap ready", "extension", name, "listen", cfg.ListenAddr, "upstream", cfg.Upstream)

	events := make(chan extension.Event, 1)
	eventErr := make(chan error, 1)
	go func() {
		for {
			ev, err := client.NextEvent(ctx)
			var status *extension.StatusError
			if err != nil && !errors.As(err, &status) && ctx.Err() == nil {
				// A malformed event is not worth dying for: lrap may exit
				// only on SHUTDOWN (T12). Back off so this cannot spin.
				log.Warn("unreadable extension event", "error", err)
				time.Sleep(100 * time.Millisecond)
				continue
			}
			if err != nil {
				eventErr <- err
				return
			}
			if ev.Type == runtimeapi.EventShutdown {
				events <- ev
				return
			}
			// Only SHUTDOWN is subscribed; anything else is ignored.
			log.Debug("ignored extension event", "type", ev.Type)
		}
	}()

	select {
	case ev := <-events:
		log.Info("shutdown", "reason", ev.ShutdownReason, "deadline", ev.Deadline)
		drain(log, srv, px, ev.Deadline)
		return nil
	case <-ctx.Done():
		log.Info("shutdown", "reason", "signal")
		drain(log, srv, px, time.Now().Add(2*time.Second))
		return nil
	case err := <-eventErr:
		if ctx.Err() != nil {
			log.Info("shutdown", "reason", "signal")
			drain(log, srv, px, time.Now().Add(2*time.Second))
			return nil
		}
		return fatal(log, client, srv, px, fmt.Errorf("waiting for extension events: %w", err))
	case err := <-serveErr:
		return fatal(log, client, srv, px, fmt.Errorf("serving the Runtime API: %w", err))
	}
}

// drain stops accepting connections, cancels long polls (the API answers
// none after SHUTDOWN), lets in-flight forwards finish until shortly before
// the deadline, then closes what is left and flushes the hooks' OnEnd queue
// in the time that remains.
func drain(log *slog.Logger, srv *http.Server, px *proxy.Proxy, deadline time.Time) {
	if deadline.IsZero() {
		deadline = time.Now().Add(2 * time.Second)
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline.Add(-shutdownMargin))
	defer cancel()
	px.Close()
	if err := srv.Shutdown(ctx); err != nil {
		log.Warn("in-flight requests cut at the shutdown deadline", "error", err)
		srv.Close()
	}
	if err := px.Shutdown(ctx); err != nil {
		log.Warn("hook work cut at the shutdown deadline", "error", err)
	}
	if st := px.Stats(); st != nil {
		log.Info("hook totals", "panics", st.Panics.Load(), "overruns", st.Overruns.Load(), "skips", st.Skips.Load(),
			"rejections", st.Rejections.Load(), "body_unavailable", st.BodyUnavailable.Load(), "ends_dropped", st.EndsDropped.Load())
	}
}

func initFailed(ctx context.Context, log *slog.Logger, c *extension.Client, errorType string, cause error) error {
	log.Error("init failed", "error_type", errorType, "error", cause)
	if err := c.InitError(context.WithoutCancel(ctx), errorType, cause); err != nil {
		log.Error("reporting the init error failed", "error", err)
	}
	return cause
}

func fatal(log *slog.Logger, c *extension.Client, srv *http.Server, px *proxy.Proxy, cause error) error {
	log.Error("fatal", "error", cause)
	var se *extension.StatusError
	if !errors.As(cause, &se) || se.Call != "exit/error" {
		if err := c.ExitError(context.Background(), runtimeapi.ExtensionFatal, cause); err != nil {
			log.Error("reporting the fatal error failed", "error", err)
		}
	}
	drain(log, srv, px, time.Now().Add(time.Second))
	return cause
}
