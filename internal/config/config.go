// Package config reads lrap's settings from the environment once, at start,
// and refuses an invalid value with a message that names the variable, the
// value and what is accepted.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
)

// Setting describes one environment variable. Settings is the single list the
// README's configuration table is generated from, so the two cannot drift.
type Setting struct {
	Name     string
	Default  string
	Accepted string
	Doc      string
}

// Settings lists every variable lrap reads, in documentation order.
var Settings = []Setting{
	{
		Name:     "LRAP_LISTENER_PORT",
		Default:  "9009",
		Accepted: "an integer from 1 to 65535",
		Doc:      "Port lrap serves the Runtime API on, on 127.0.0.1 only. The wrapper points the runtime at the same port.",
	},
	{
		Name:     "LRAP_RUNTIME_API_ENDPOINT",
		Default:  "the inherited AWS_LAMBDA_RUNTIME_API",
		Accepted: "host:port, without a scheme",
		Doc:      "Where lrap forwards to: the real Runtime API, or the next proxy when chaining.",
	},
	{
		Name:     "LRAP_LOG_LEVEL",
		Default:  "info",
		Accepted: "debug, info, warn, error",
		Doc:      "info logs lifecycle and errors; debug adds one line per forwarded request. Payloads are never logged.",
	},
	{
		Name:     "LRAP_BUFFER_LIMIT",
		Default:  "6291456",
		Accepted: "a number of bytes from 1024 to 209715200, optionally with a KiB or MiB suffix",
		Doc:      "Largest body buffered for hooks that need whole bodies; beyond it each hook's policy decides. Bodies stream when no hook needs them.",
	},
	{
		Name:     "LRAP_EXEC_WRAPPER",
		Default:  "none",
		Accepted: "the path of an executable",
		Doc:      "Read by the wrapper script, not the binary: another AWS_LAMBDA_EXEC_WRAPPER to run after lrap's, for chaining.",
	},
}

// Config is the validated configuration.
type Config struct {
	// RuntimeAPI is the inherited AWS_LAMBDA_RUNTIME_API: the Extensions API
	// lrap registers with, and the default upstream.
	RuntimeAPI string
	// ListenAddr is 127.0.0.1:LRAP_LISTENER_PORT. Loopback only: the Runtime
	// API carries payloads and credentials-bearing context.
	ListenAddr string
	// Upstream is where requests are forwarded.
	Upstream string
	LogLevel slog.Level
	// BufferLimit bounds bodies buffered for hooks.
	BufferLimit int64
}

// Lookup is os.LookupEnv's shape, so tests can pass a map.
type Lookup func(string) (string, bool)

// Load reads and validates the configuration. It reports every invalid
// setting, not only the first. RuntimeAPI is filled whenever it is valid, so
// a caller can still reach the Extensions API to report the error.
func Load(env Lookup) (Config, error) {
	var (
		cfg  Config
		errs []error
	)
	api, _ := env("AWS_LAMBDA_RUNTIME_API")
	if err := checkHostPort(api); err != nil {
		errs = append(errs, invalid("AWS_LAMBDA_RUNTIME_API", api, "host:port set by Lambda, without a scheme", err))
	} else {
		cfg.RuntimeAPI = api
	}

	port := 9009
	if v, ok := env("LRAP_LISTENER_PORT"); ok && v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 65535 {
			errs = append(errs, invalid("LRAP_LISTENER_PORT", v, settingAccepted("LRAP_LISTENER_PORT"), nil))
		} else {
			port = n
		}
	}
	cfg.ListenAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))

	cfg.Upstream = cfg.RuntimeAPI
	if v, ok := env("LRAP_RUNTIME_API_ENDPOINT"); ok && v != "" {
		switch err := checkHostPort(v); {
		case err != nil:
			errs = append(errs, invalid("LRAP_RUNTIME_API_ENDPOINT", v, settingAccepted("LRAP_RUNTIME_API_ENDPOINT"), err))
		case pointsAtSelf(v, port):
			errs = append(errs, invalid("LRAP_RUNTIME_API_ENDPOINT", v, settingAccepted("LRAP_RUNTIME_API_ENDPOINT"),
				fmt.Errorf("it is lrap's own listener %s; requests would loop", cfg.ListenAddr)))
		default:
			cfg.Upstream = v
		}
	}

	cfg.LogLevel = slog.LevelInfo
	if v, ok := env("LRAP_LOG_LEVEL"); ok && v != "" {
		switch strings.ToLower(v) {
		case "debug":
			cfg.LogLevel = slog.LevelDebug
		case "info":
			cfg.LogLevel = slog.LevelInfo
		case "warn", "warning":
			cfg.LogLevel = slog.LevelWarn
		case "error":
			cfg.LogLevel = slog.LevelError
		default:
			errs = append(errs, invalid("LRAP_LOG_LEVEL", v, settingAccepted("LRAP_LOG_LEVEL"), nil))
		}
	}
	cfg.BufferLimit = 6 << 20
	if v, ok := env("LRAP_BUFFER_LIMIT"); ok && v != "" {
		n, err := ParseBytes(v)
		if err != nil || n < 1024 || n > 200<<20 {
			errs = append(errs, invalid("LRAP_BUFFER_LIMIT", v, settingAccepted("LRAP_BUFFER_LIMIT"), nil))
		} else {
			cfg.BufferLimit = n
		}
	}
	return cfg, errors.Join(errs...)
}

// ParseBytes reads a byte count as lrap's settings write it: "1048576",
// "1024KiB" or "6MiB".
func ParseBytes(v string) (int64, error) {
	unit := int64(1)
	switch {
	case strings.HasSuffix(v, "MiB"):
		unit, v = 1<<20, strings.TrimSuffix(v, "MiB")
	case strings.HasSuffix(v, "KiB"):
		unit, v = 1<<10, strings.TrimSuffix(v, "KiB")
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n < 0 || n > (1<<40)/unit {
		return 0, errors.New("not a byte count")
	}
	return n * unit, nil
}

// ErrInvalid is wrapped by every validation error.
var ErrInvalid = errors.New("invalid configuration")

type invalidError struct {
	name, value, accepted string
	cause                 error
}

func (e *invalidError) Error() string {
	msg := fmt.Sprintf("%s=%q is not valid", e.name, e.value)
	if e.value == "" {
		msg = e.name + " is not set"
	}
	if e.cause != nil {
		msg += ": " + e.cause.Error()
	}
	return msg + " (accepted: " + e.accepted + ")"
}

func (e *invalidError) Unwrap() error { return ErrInvalid }

func invalid(name, value, accepted string, cause error) error {
	return &invalidError{name: name, value: value, accepted: accepted, cause: cause}
}

func settingAccepted(name string) string {
	for _, s := range Settings {
		if s.Name == name {
			return s.Accepted
		}
	}
	return ""
}

// checkHostPort accepts host:port the way AWS_LAMBDA_RUNTIME_API is written:
// no scheme (aws-lambda-go breaks on one), no path.
func checkHostPort(v string) error {
	if v == "" {
		return errors.New("empty")
	}
	if strings.Contains(v, "://") {
		return errors.New("has a scheme")
	}
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return errors.New("not host:port")
	}
	if host == "" || strings.ContainsAny(host, "/?#@ ") {
		return errors.New("bad host")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return errors.New("bad port")
	}
	return nil
}

// pointsAtSelf reports whether hostport dials lrap's own listener, in any
// spelling Go's dialer accepts: "LOCALHOST", "127.0.0.2", "[::1]", "09009".
func pointsAtSelf(hostport string, port int) bool {
	host, p, _ := net.SplitHostPort(hostport)
	if n, err := strconv.Atoi(p); err != nil || n != port {
		return false
	}
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && (ip.IsLoopback() || ip.IsUnspecified())
}
