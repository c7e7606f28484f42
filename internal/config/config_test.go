package config_test

import (
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"testing"

	"github.com/lrap/lrap/internal/config"
)

// env is a Lookup over name/value pairs; a variable not given is unset.
func env(kv ...string) config.Lookup {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

const api = "169.254.100.1:9001" // a Runtime API address as Lambda sets it

// accepted returns the documented accepted values of a variable: the error
// message and the README table come from the same Settings entry.
func accepted(t *testing.T, name string) string {
	t.Helper()
	for _, s := range config.Settings {
		if s.Name == name {
			return s.Accepted
		}
	}
	t.Fatalf("%s is not in config.Settings", name)
	return ""
}

// requireInvalid checks that err refuses name=value with a message that
// names the variable, shows the value, and says what is accepted.
func requireInvalid(t *testing.T, err error, name, value, acceptedText string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s=%q accepted, want an error", name, value)
	}
	if !errors.Is(err, config.ErrInvalid) {
		t.Errorf("error %v does not wrap ErrInvalid", err)
	}
	msg := err.Error()
	for _, want := range []string{name, strconv.Quote(value), "accepted: " + acceptedText} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
}

// With only AWS_LAMBDA_RUNTIME_API set, lrap listens on 127.0.0.1:9009,
// forwards to the inherited address (T19), logs at info and buffers at most
// 6 MiB for hooks. Empty values mean "unset", the way the wrapper reads them.
func TestDefaults(t *testing.T) {
	for _, e := range []config.Lookup{
		env("AWS_LAMBDA_RUNTIME_API", api),
		env("AWS_LAMBDA_RUNTIME_API", api, "LRAP_LISTENER_PORT", "", "LRAP_RUNTIME_API_ENDPOINT", "",
			"LRAP_LOG_LEVEL", "", "LRAP_BUFFER_LIMIT", ""),
	} {
		cfg, err := config.Load(e)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.RuntimeAPI != api || cfg.ListenAddr != "127.0.0.1:9009" || cfg.Upstream != api ||
			cfg.LogLevel != slog.LevelInfo || cfg.BufferLimit != 6<<20 {
			t.Errorf("got %+v, want RuntimeAPI and Upstream %s, ListenAddr 127.0.0.1:9009, level info, buffer limit 6 MiB", cfg, api)
		}
	}
}

// The listener is loopback-only, on an integer port 1-65535.
func TestListenerPort(t *testing.T) {
	for _, tc := range []struct {
		value string
		addr  string // empty: invalid
	}{
		{"1", "127.0.0.1:1"},
		{"9010", "127.0.0.1:9010"},
		{"65535", "127.0.0.1:65535"},
		{"0", ""},
		{"65536", ""},
		{"-1", ""},
		{"abc", ""},
		{"9009x", ""},
		{" 9009", ""},
		{"127.0.0.1:9009", ""},
		{"99999999999999999999", ""},
	} {
		t.Run(tc.value, func(t *testing.T) {
			cfg, err := config.Load(env("AWS_LAMBDA_RUNTIME_API", api, "LRAP_LISTENER_PORT", tc.value))
			if tc.addr == "" {
				requireInvalid(t, err, "LRAP_LISTENER_PORT", tc.value, accepted(t, "LRAP_LISTENER_PORT"))
				return
			}
			if err != nil || cfg.ListenAddr != tc.addr {
				t.Errorf("got %q %v, want %q", cfg.ListenAddr, err, tc.addr)
			}
		})
	}
}

// The endpoint is written like AWS_LAMBDA_RUNTIME_API: host:port, no scheme
// (aws-lambda-go breaks on one), no path; the host need not be loopback (T18).
func TestRuntimeAPIEndpoint(t *testing.T) {
	for _, tc := range []struct {
		value string
		valid bool
	}{
		{"127.0.0.1:9001", true},
		{"10.0.0.7:9001", true},
		{"[::1]:9001", true},
		{"runtime.example:80", true},
		{"localhost:9010", true},
		{"http://x:1", false},
		{"https://127.0.0.1:9001", false},
		{"x", false},
		{":9001", false},
		{"x:", false},
		{"x:0", false},
		{"x:65536", false},
		{"x:port", false},
		{"x:1/path", false},
		{"user@x:1", false},
		{"x y:1", false},
		{"::1:9001", false},
	} {
		t.Run(tc.value, func(t *testing.T) {
			cfg, err := config.Load(env("AWS_LAMBDA_RUNTIME_API", api, "LRAP_RUNTIME_API_ENDPOINT", tc.value))
			if !tc.valid {
				requireInvalid(t, err, "LRAP_RUNTIME_API_ENDPOINT", tc.value, accepted(t, "LRAP_RUNTIME_API_ENDPOINT"))
				if cfg.Upstream == tc.value {
					t.Errorf("invalid endpoint used as upstream")
				}
				return
			}
			if err != nil || cfg.Upstream != tc.value {
				t.Errorf("got upstream %q %v, want %q", cfg.Upstream, err, tc.value)
			}
			if cfg.RuntimeAPI != api {
				t.Errorf("the endpoint changed RuntimeAPI (the Extensions API address) to %q", cfg.RuntimeAPI)
			}
		})
	}
}

func TestLogLevel(t *testing.T) {
	for _, tc := range []struct {
		value string
		level slog.Level
		valid bool
	}{
		{"debug", slog.LevelDebug, true},
		{"info", slog.LevelInfo, true},
		{"warn", slog.LevelWarn, true},
		{"warning", slog.LevelWarn, true},
		{"error", slog.LevelError, true},
		{"DEBUG", slog.LevelDebug, true},
		{"Error", slog.LevelError, true},
		{"loud", 0, false},
		{"trace", 0, false},
		{"-4", 0, false},
		{" info", 0, false},
	} {
		t.Run(tc.value, func(t *testing.T) {
			cfg, err := config.Load(env("AWS_LAMBDA_RUNTIME_API", api, "LRAP_LOG_LEVEL", tc.value))
			if !tc.valid {
				requireInvalid(t, err, "LRAP_LOG_LEVEL", tc.value, accepted(t, "LRAP_LOG_LEVEL"))
				return
			}
			if err != nil || cfg.LogLevel != tc.level {
				t.Errorf("got %v %v, want %v", cfg.LogLevel, err, tc.level)
			}
		})
	}
}

// Bodies are buffered for hooks up to LRAP_BUFFER_LIMIT: bytes, KiB or MiB,
// from 1 KiB to 200 MiB (the streaming response limit).
func TestBufferLimit(t *testing.T) {
	for _, tc := range []struct {
		value string
		limit int64 // 0: invalid
	}{
		{"1024", 1024},
		{"1KiB", 1024},
		{"6MiB", 6 << 20},
		{"200MiB", 200 << 20},
		{"209715200", 200 << 20},
		{"1023", 0},
		{"201MiB", 0},
		{"209715201", 0},
		{"-1", 0},
		{"6MB", 0},
		{"lots", 0},
		{"MiB", 0},
	} {
		t.Run(tc.value, func(t *testing.T) {
			cfg, err := config.Load(env("AWS_LAMBDA_RUNTIME_API", api, "LRAP_BUFFER_LIMIT", tc.value))
			if tc.limit == 0 {
				requireInvalid(t, err, "LRAP_BUFFER_LIMIT", tc.value, accepted(t, "LRAP_BUFFER_LIMIT"))
				return
			}
			if err != nil || cfg.BufferLimit != tc.limit {
				t.Errorf("got %d %v, want %d", cfg.BufferLimit, err, tc.limit)
			}
		})
	}
}

// AWS_LAMBDA_RUNTIME_API is set by Lambda; without a usable value there is
// no Extensions API to register with, and RuntimeAPI stays empty so that
// Run knows it cannot report.
func TestRuntimeAPIVariable(t *testing.T) {
	for _, tc := range []struct {
		name  string
		env   config.Lookup
		value string
	}{
		{"unset", env(), ""},
		{"empty", env("AWS_LAMBDA_RUNTIME_API", ""), ""},
		{"with a scheme", env("AWS_LAMBDA_RUNTIME_API", "http://127.0.0.1:9001"), "http://127.0.0.1:9001"},
		{"no port", env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1"), "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Load(tc.env)
			if err == nil {
				t.Fatal("accepted")
			}
			if cfg.RuntimeAPI != "" {
				t.Errorf("RuntimeAPI %q from an invalid value", cfg.RuntimeAPI)
			}
			msg := err.Error()
			if !strings.Contains(msg, "AWS_LAMBDA_RUNTIME_API") || !strings.Contains(msg, "accepted: ") {
				t.Errorf("error %q does not name the variable and what is accepted", msg)
			}
			if tc.value == "" && !strings.Contains(msg, "not set") {
				t.Errorf("error %q does not say the variable is not set", msg)
			}
			if tc.value != "" && !strings.Contains(msg, strconv.Quote(tc.value)) {
				t.Errorf("error %q does not show the value", msg)
			}
		})
	}
	cfg, err := config.Load(env("AWS_LAMBDA_RUNTIME_API", "[fd00::1]:9001"))
	if err != nil || cfg.RuntimeAPI != "[fd00::1]:9001" || cfg.Upstream != "[fd00::1]:9001" {
		t.Errorf("IPv6 address: %+v %v", cfg, err)
	}
}

// Every invalid setting is reported at once, not only the first, so one
// failed init shows the whole problem.
func TestMultipleErrorsAllReported(t *testing.T) {
	_, err := config.Load(env(
		"AWS_LAMBDA_RUNTIME_API", api,
		"LRAP_LISTENER_PORT", "abc",
		"LRAP_RUNTIME_API_ENDPOINT", "http://x:1",
		"LRAP_LOG_LEVEL", "loud",
		"LRAP_BUFFER_LIMIT", "1",
	))
	requireInvalid(t, err, "LRAP_BUFFER_LIMIT", "1", accepted(t, "LRAP_BUFFER_LIMIT"))
	requireInvalid(t, err, "LRAP_LISTENER_PORT", "abc", accepted(t, "LRAP_LISTENER_PORT"))
	requireInvalid(t, err, "LRAP_RUNTIME_API_ENDPOINT", "http://x:1", accepted(t, "LRAP_RUNTIME_API_ENDPOINT"))
	requireInvalid(t, err, "LRAP_LOG_LEVEL", "loud", accepted(t, "LRAP_LOG_LEVEL"))
}

// The Extensions API address survives invalid LRAP_* settings: lrap must
// still register to report Extension.ConfigInvalid through init/error.
func TestRuntimeAPIKeptWhenOtherSettingsInvalid(t *testing.T) {
	cfg, err := config.Load(env(
		"AWS_LAMBDA_RUNTIME_API", api,
		"LRAP_LISTENER_PORT", "0",
		"LRAP_RUNTIME_API_ENDPOINT", "nonsense",
		"LRAP_LOG_LEVEL", "loud",
	))
	if err == nil {
		t.Fatal("accepted")
	}
	if cfg.RuntimeAPI != api {
		t.Errorf("RuntimeAPI %q, want %q", cfg.RuntimeAPI, api)
	}
}

// An endpoint that is lrap's own listener would make every request loop
// through lrap until it runs out of connections. Any spelling of this host
// (localhost, any 127.x, ::1, and the unspecified 0.0.0.0 / ::, which
// connect to the local host) on the listener port is refused.
func TestLoopDetection(t *testing.T) {
	for _, tc := range []struct {
		port, endpoint string
		loop           bool
	}{
		{"", "127.0.0.1:9009", true}, // default port
		{"", "localhost:9009", true},
		{"9010", "127.0.0.1:9010", true},
		{"9010", "localhost:9010", true},
		{"9010", "127.0.0.2:9010", true},
		{"9010", "127.255.255.254:9010", true},
		{"9010", "0.0.0.0:9010", true},
		{"9010", "[::1]:9010", true},
		{"9010", "[::]:9010", true},
		{"9010", "[::ffff:127.0.0.1]:9010", true},
		{"9010", "127.0.0.1:9011", false},
		{"9010", "10.0.0.1:9010", false},
		{"9010", "localhost:9009", false},
		{"", "169.254.100.1:9009", false},
	} {
		t.Run(tc.port+"->"+tc.endpoint, func(t *testing.T) {
			e := env("AWS_LAMBDA_RUNTIME_API", api, "LRAP_RUNTIME_API_ENDPOINT", tc.endpoint)
			if tc.port != "" {
				e = env("AWS_LAMBDA_RUNTIME_API", api, "LRAP_RUNTIME_API_ENDPOINT", tc.endpoint, "LRAP_LISTENER_PORT", tc.port)
			}
			cfg, err := config.Load(e)
			if !tc.loop {
				if err != nil || cfg.Upstream != tc.endpoint {
					t.Errorf("got %q %v, want upstream %q", cfg.Upstream, err, tc.endpoint)
				}
				return
			}
			requireInvalid(t, err, "LRAP_RUNTIME_API_ENDPOINT", tc.endpoint, accepted(t, "LRAP_RUNTIME_API_ENDPOINT"))
			if err != nil && !strings.Contains(err.Error(), "loop") {
				t.Errorf("error %q does not say the requests would loop", err)
			}
			if cfg.Upstream == tc.endpoint {
				t.Error("the looping endpoint was used as upstream")
			}
		})
	}
}

// Other spellings of lrap's own listener loop just the same and must be
// refused too: host names are case-insensitive (LOCALHOST resolves through
// /etc/hosts, which Go's resolver matches case-insensitively, to 127.0.0.1),
// and a port with leading zeros (09010) is accepted by checkHostPort and
// dialed as 9010.
func TestLoopDetectionOtherSpellings(t *testing.T) {
	for _, endpoint := range []string{"LOCALHOST:9010", "LocalHost:9010", "127.0.0.1:09010", "localhost:009010"} {
		_, err := config.Load(env("AWS_LAMBDA_RUNTIME_API", api, "LRAP_RUNTIME_API_ENDPOINT", endpoint, "LRAP_LISTENER_PORT", "9010"))
		if err == nil {
			t.Errorf("LRAP_RUNTIME_API_ENDPOINT=%s with LRAP_LISTENER_PORT=9010 accepted: lrap would forward to itself", endpoint)
		}
	}
}

// Settings is the single source of the README table and of the "accepted"
// part of error messages: every variable has all four fields.
func TestSettingsComplete(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range config.Settings {
		if s.Name == "" || s.Default == "" || s.Accepted == "" || s.Doc == "" {
			t.Errorf("incomplete setting %+v", s)
		}
		if seen[s.Name] {
			t.Errorf("%s listed twice", s.Name)
		}
		seen[s.Name] = true
	}
	for _, name := range []string{"LRAP_LISTENER_PORT", "LRAP_RUNTIME_API_ENDPOINT", "LRAP_LOG_LEVEL", "LRAP_BUFFER_LIMIT", "LRAP_EXEC_WRAPPER"} {
		if !seen[name] {
			t.Errorf("%s missing from Settings", name)
		}
	}
}
