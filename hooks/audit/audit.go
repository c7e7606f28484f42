// Package audit is lrap's built-in audit hook: one JSON line per invocation
// on stdout, which Lambda sends to CloudWatch Logs with the function's logs.
//
// A line names the invocation (request id, function ARN), how it ended
// (outcome, error type, the hook that rejected it), the size and SHA-256 of
// the event and the response as they crossed lrap, and the time spent in the
// function and in lrap. The payloads themselves are recorded only when
// explicitly enabled, and then only up to a bound.
//
// Every line is written from OnEnd, which lrap runs off the data path on one
// goroutine: writing never delays an invocation, and lines never interleave.
package audit

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/lrap/lrap/hook"
	"github.com/lrap/lrap/internal/config"
)

// Name is the hook's name in LRAP_HOOKS, in logs and in the config file.
const Name = "audit"

// Payload bounds. The largest bound keeps a line with both payloads under
// 256 KiB, CloudWatch Logs' event size limit, even if every captured byte
// had to be escaped as \u00XX (six bytes each).
const (
	DefaultPayloadMaxBytes = 4096
	MaxPayloadMaxBytes     = 16384
)

// Config configures the audit hook.
type Config struct {
	// Payloads adds the event and the response (or error report), as they
	// crossed lrap, to each line. It makes the hook buffer bodies
	// (hook.Hook.NeedsBody).
	Payloads bool
	// PayloadMaxBytes bounds each recorded body: a longer one is cut at a
	// character boundary at most this many bytes in and marked truncated.
	// Zero means DefaultPayloadMaxBytes.
	PayloadMaxBytes int
}

// Settings are the variables the audit hook reads, for the README.
var Settings = []config.Setting{
	{
		Name:     "LRAP_AUDIT_PAYLOADS",
		Default:  "false",
		Accepted: "true or false",
		Doc:      "Adds the event and the response, as they crossed lrap (after the hooks before audit), to each audit line. Off, lines hold sizes and SHA-256 digests only.",
	},
	{
		Name:     "LRAP_AUDIT_PAYLOAD_MAX_BYTES",
		Default:  strconv.Itoa(DefaultPayloadMaxBytes),
		Accepted: "an integer from 1 to " + strconv.Itoa(MaxPayloadMaxBytes),
		Doc:      "Most bytes of each payload recorded when LRAP_AUDIT_PAYLOADS=true; a longer payload is cut and marked truncated.",
	},
}

// Build makes the audit hook from its config-file section (may be nil) and
// the environment, which wins over the file. It writes to stdout.
func Build(env func(string) (string, bool), section json.RawMessage) (hook.Hook, error) {
	cfg, err := load(env, section)
	if err != nil {
		return hook.Hook{}, err
	}
	return New(cfg, os.Stdout)
}

// load reads the section, then lets the environment override it.
func load(env func(string) (string, bool), section json.RawMessage) (Config, error) {
	var cfg Config
	keys, err := config.SectionKeys(Name, section, "payloads", "payloadMaxBytes")
	if err != nil {
		return cfg, err
	}
	if raw, ok := keys["payloads"]; ok {
		if err := json.Unmarshal(raw, &cfg.Payloads); err != nil {
			return cfg, invalid("LRAP_CONFIG "+Name+".payloads", string(raw), "true or false")
		}
	}
	if raw, ok := keys["payloadMaxBytes"]; ok {
		n, err := strconv.Atoi(string(raw))
		if err != nil || n < 1 || n > MaxPayloadMaxBytes {
			return cfg, invalid("LRAP_CONFIG "+Name+".payloadMaxBytes", string(raw), Settings[1].Accepted)
		}
		cfg.PayloadMaxBytes = n
	}
	if v, ok := env("LRAP_AUDIT_PAYLOADS"); ok && v != "" {
		switch strings.ToLower(v) {
		case "true":
			cfg.Payloads = true
		case "false":
			cfg.Payloads = false
		default:
			return cfg, invalid("LRAP_AUDIT_PAYLOADS", strconv.Quote(v), Settings[0].Accepted)
		}
	}
	if v, ok := env("LRAP_AUDIT_PAYLOAD_MAX_BYTES"); ok && v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxPayloadMaxBytes {
			return cfg, invalid("LRAP_AUDIT_PAYLOAD_MAX_BYTES", strconv.Quote(v), Settings[1].Accepted)
		}
		cfg.PayloadMaxBytes = n
	}
	return cfg, nil
}

// New makes an audit hook that writes its lines to w, one Write per line.
func New(cfg Config, w io.Writer) (hook.Hook, error) {
	if w == nil {
		return hook.Hook{}, fmt.Errorf("audit: no writer")
	}
	if cfg.PayloadMaxBytes == 0 {
		cfg.PayloadMaxBytes = DefaultPayloadMaxBytes
	}
	if cfg.PayloadMaxBytes < 0 || cfg.PayloadMaxBytes > MaxPayloadMaxBytes {
		return hook.Hook{}, fmt.Errorf("audit: PayloadMaxBytes %d is outside 1..%d", cfg.PayloadMaxBytes, MaxPayloadMaxBytes)
	}
	a := &auditor{cfg: cfg, w: w}
	h := hook.Hook{
		Name: Name,
		// An observer: whatever goes wrong with it, the invocation goes on.
		Policy:  hook.FailOpen,
		Digests: true,
		OnEnd:   a.end,
	}
	if cfg.Payloads {
		h.NeedsBody = true
		// Capturing is a bounded copy that cannot block, so it runs on the
		// request's goroutine instead of paying for one per call.
		h.Budget = -1
		h.OnEvent = a.captureEvent
		h.OnResponse = a.captureResult
		h.OnError = a.captureResult
	}
	return h, nil
}

type auditor struct {
	cfg Config
	// mu serializes lines: lrap runs OnEnd on one goroutine, but the same
	// hook may be handed to more than one proxy, and w may be shared.
	mu  sync.Mutex
	w   io.Writer
	buf []byte
}

// Keys of the captured payloads in the invocation's store: one each, so the
// event and the result never need to share (and lock) one value.
type (
	eventKey  struct{}
	resultKey struct{}
)

// captured is a bounded copy of a body.
type captured struct {
	body      []byte
	truncated bool
}

func (a *auditor) capture(body []byte) *captured {
	c := &captured{}
	if len(body) > a.cfg.PayloadMaxBytes {
		body = body[:a.cfg.PayloadMaxBytes]
		c.truncated = true
		// Cut at a character boundary, so that text stays text: drop a
		// trailing partial UTF-8 sequence.
		for i := len(body) - 1; i >= 0 && i >= len(body)-utf8.UTFMax; i-- {
			if utf8.RuneStart(body[i]) {
				if !utf8.FullRune(body[i:]) {
					body = body[:i]
				}
				break
			}
		}
	}
	// The message's body belongs to lrap and the next hooks; keep a copy.
	c.body = append([]byte(nil), body...)
	return c
}

func (a *auditor) captureEvent(_ context.Context, inv *hook.Invocation, m *hook.Message) hook.Verdict {
	inv.Set(eventKey{}, a.capture(m.Body))
	return hook.Continue
}

func (a *auditor) captureResult(_ context.Context, inv *hook.Invocation, m *hook.Message) hook.Verdict {
	inv.Set(resultKey{}, a.capture(m.Body))
	return hook.Continue
}

// maxRetained bounds the line buffer kept between lines.
const maxRetained = 64 << 10

func (a *auditor) end(inv *hook.Invocation, end *hook.End) {
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.buf = a.appendLine(a.buf[:0], inv, end, now)
	// One Write per line: a line is never split between writers.
	_, _ = a.w.Write(a.buf)
	if cap(a.buf) > maxRetained {
		a.buf = nil
	}
}

// appendLine appends one audit line, newline included. The JSON is written
// by hand: field order is fixed, and no reflection runs per invocation.
func (a *auditor) appendLine(b []byte, inv *hook.Invocation, end *hook.End, now time.Time) []byte {
	b = append(b, `{"type":"lrap.audit","requestId":`...)
	b = appendString(b, inv.RequestID)
	b = append(b, `,"functionArn":`...)
	b = appendString(b, inv.FunctionARN)
	b = append(b, `,"outcome":`...)
	b = appendString(b, string(end.Outcome))
	b = append(b, `,"errorType":`...)
	b = appendString(b, end.ErrorType)
	b = append(b, `,"rejectedBy":`...)
	b = appendString(b, end.RejectedBy)
	b = append(b, `,"eventBytes":`...)
	b = strconv.AppendInt(b, end.EventBytes, 10)
	b = append(b, `,"eventSha256":`...)
	b = appendDigest(b, end.EventSHA256)
	b = append(b, `,"responseBytes":`...)
	b = strconv.AppendInt(b, end.ResultBytes, 10)
	b = append(b, `,"responseSha256":`...)
	b = appendDigest(b, end.ResultSHA256)
	b = append(b, `,"durationMs":`...)
	// No time in the function when the event never reached it (rejected)
	// or no result came back (timeout forced at the end).
	if !end.Delivered.IsZero() && end.Duration > 0 {
		b = appendMillis(b, end.Duration)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"lrapMs":`...)
	b = appendMillis(b, end.InLrap)
	b = append(b, `,"time":"`...)
	b = now.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	if a.cfg.Payloads {
		b = appendPayload(b, "event", inv.Value(eventKey{}))
		b = appendPayload(b, "response", inv.Value(resultKey{}))
	}
	return append(b, "}\n"...)
}

// appendPayload writes name as a JSON string when the body is UTF-8 text and
// in base64 (marked so) otherwise; null when nothing was captured (the body
// could not be buffered, or a hook before audit rejected first).
func appendPayload(b []byte, name string, v any) []byte {
	b = append(b, `,"`...)
	b = append(b, name...)
	b = append(b, `":`...)
	c, _ := v.(*captured)
	if c == nil {
		return append(b, "null"...)
	}
	if utf8.Valid(c.body) {
		b = appendString(b, string(c.body))
	} else {
		b = append(b, '"')
		b = base64.StdEncoding.AppendEncode(b, c.body)
		b = append(b, `","`...)
		b = append(b, name...)
		b = append(b, `Encoding":"base64"`...)
	}
	if c.truncated {
		b = append(b, `,"`...)
		b = append(b, name...)
		b = append(b, `Truncated":true`...)
	}
	return b
}

func appendDigest(b []byte, sum []byte) []byte {
	if sum == nil {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = hex.AppendEncode(b, sum)
	return append(b, '"')
}

// appendMillis writes d in milliseconds with microsecond precision.
func appendMillis(b []byte, d time.Duration) []byte {
	us := max(d.Microseconds(), 0)
	b = strconv.AppendInt(b, us/1000, 10)
	frac := us % 1000
	b = append(b, '.', byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10))
	return b
}

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string. Invalid UTF-8 becomes U+FFFD, so
// every line is valid JSON whatever a header or a body held.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// configError is a configuration error; like lrap's own, it wraps
// config.ErrInvalid.
type configError string

func (e configError) Error() string { return string(e) }
func (e configError) Unwrap() error { return config.ErrInvalid }

// invalid names the setting, the value and what is accepted, in the same
// words as lrap's own configuration errors.
func invalid(setting, value, accepted string) error {
	return configError(setting + "=" + value + " is not valid (accepted: " + accepted + ")")
}
