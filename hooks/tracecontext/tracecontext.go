// Package tracecontext is lrap's built-in trace context hook: it gives
// HTTP-shaped events (API Gateway REST and HTTP APIs, Application Load
// Balancer, function URLs) a W3C traceparent header derived from the
// invocation's X-Ray trace header (Lambda-Runtime-Trace-Id), so that
// OpenTelemetry and other W3C-aware code in the function continues the
// trace Lambda started, without X-Ray-specific code.
//
// The event is changed only when all of this holds: the trace header has a
// Root and a Parent (see FromXRay), the event is a JSON object of one of
// the HTTP shapes, and none of its headers is already a traceparent (in any
// letter case: a caller's own trace context wins). Otherwise it is
// forwarded byte for byte. The header is spliced into the event's bytes:
// nothing else in the event changes.
package tracecontext

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/lrap/lrap/hook"
	"github.com/lrap/lrap/internal/config"
	"github.com/lrap/lrap/runtimeapi"
)

// Name is the hook's name in LRAP_HOOKS, logs and counters.
const Name = "tracecontext"

// Header is the W3C header the hook adds.
const Header = "traceparent"

// Config is the hook's configuration. There is nothing to configure; the
// type exists so that the hook is built like the others, and so that a
// section with unknown keys is refused rather than ignored.
type Config struct{}

// Settings lists the hook's environment variables: none.
var Settings = []config.Setting{}

// New returns the hook. It is fail-open (a missing trace header never
// costs an invocation) and needs event bodies only; responses stream past
// it. log receives debug lines (never payloads); nil discards them.
func New(_ Config, log *slog.Logger) (hook.Hook, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return hook.Hook{
		Name:      Name,
		Policy:    hook.FailOpen,
		NeedsBody: true,
		OnEvent: func(_ context.Context, inv *hook.Invocation, ev *hook.Message) hook.Verdict {
			trace := ev.Header.Get(runtimeapi.HeaderTraceID)
			if trace == "" && inv != nil {
				trace = inv.TraceID
			}
			tp, ok := FromXRay(trace)
			if !ok {
				return hook.Continue
			}
			if out, ok := AddTraceparent(ev.Body, tp); ok {
				ev.SetBody(out)
				log.Debug("traceparent added", "hook", Name, "request_id", requestID(inv), "traceparent", tp)
			}
			return hook.Continue
		},
	}, nil
}

func requestID(inv *hook.Invocation) string {
	if inv == nil {
		return ""
	}
	return inv.RequestID
}

// Build returns the hook for the "tracecontext" section of the
// configuration file, which must be empty, null or {}.
func Build(_ func(string) (string, bool), section json.RawMessage) (hook.Hook, error) {
	if s := bytes.TrimSpace(section); len(s) > 0 && !bytes.Equal(s, []byte("null")) {
		var cfg Config
		dec := json.NewDecoder(bytes.NewReader(s))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&cfg); err != nil {
			return hook.Hook{}, &invalidError{value: string(s), cause: err}
		}
	}
	return New(Config{}, slog.Default())
}

// invalidError is worded like lrap's configuration errors.
type invalidError struct {
	value string
	cause error
}

func (e *invalidError) Error() string {
	return fmt.Sprintf("%s=%q is not valid: %v (accepted: an empty object; the hook has no settings)", Name, e.value, e.cause)
}

// Unwrap lets callers test errors.Is(err, config.ErrInvalid).
func (e *invalidError) Unwrap() error { return config.ErrInvalid }

// member is a member's value: event[start:end]; has is false when the
// object has no member of that name.
type member struct {
	start, end int
	has        bool
}

// event is what the hook needs of a top-level event object.
type event struct {
	b []byte
	// open is just past the top-level '{'.
	open                                                            int
	headers, multiValueHeaders, httpMethod, version, requestContext member
}

func (ev *event) raw(m member) []byte { return ev.b[m.start:m.end] }

// AddTraceparent returns the event body with a traceparent header set to tp,
// and true, if it is an HTTP-shaped event without a traceparent header. The
// header goes into "headers" and into "multiValueHeaders" (as a one-element
// list), whichever of them the event has as objects; when it has neither,
// "headers" is created (or its null replaced). Otherwise it returns nil and
// false.
func AddTraceparent(body []byte, tp string) ([]byte, bool) {
	// Every HTTP shape has a requestContext: a cheap test before parsing.
	if !bytes.Contains(body, []byte(`"requestContext"`)) || !json.Valid(body) {
		return nil, false
	}
	ev := &event{b: body}
	i := skipWS(body, 0)
	if body[i] != '{' {
		return nil, false
	}
	ev.open = i + 1
	// A repeated name keeps its last value, as encoding/json does.
	eachMember(body, i, func(key []byte, start, end int) bool {
		m := member{start, end, true}
		switch {
		case keyIs(key, "headers", false):
			ev.headers = m
		case keyIs(key, "multiValueHeaders", false):
			ev.multiValueHeaders = m
		case keyIs(key, "httpMethod", false):
			ev.httpMethod = m
		case keyIs(key, "version", false):
			ev.version = m
		case keyIs(key, "requestContext", false):
			ev.requestContext = m
		}
		return true
	})
	if !ev.httpShaped() {
		return nil, false
	}

	type edit struct {
		start, end int
		text       string
	}
	var edits []edit
	single, list := `"`+tp+`"`, `["`+tp+`"]`
	for _, c := range []struct {
		m     member
		value string
	}{{ev.headers, single}, {ev.multiValueHeaders, list}} {
		if !c.m.has {
			continue
		}
		switch body[c.m.start] {
		case 'n': // null
			continue
		case '{':
		default:
			return nil, false // malformed: headers are objects
		}
		empty, found := true, false
		eachMember(body, c.m.start, func(key []byte, _, _ int) bool {
			empty, found = false, keyIs(key, Header, true)
			return !found
		})
		if found {
			return nil, false // the caller's own trace context wins
		}
		text := `"` + Header + `":` + c.value
		if !empty {
			text += ","
		}
		edits = append(edits, edit{c.m.start + 1, c.m.start + 1, text})
	}
	switch {
	case len(edits) > 0:
	case !ev.headers.has:
		edits = append(edits, edit{ev.open, ev.open, `"headers":{"` + Header + `":` + single + `},`})
	default: // headers is null
		edits = append(edits, edit{ev.headers.start, ev.headers.end, `{"` + Header + `":` + single + `}`})
	}
	if len(edits) == 2 && edits[1].start < edits[0].start {
		edits[0], edits[1] = edits[1], edits[0]
	}
	out := make([]byte, 0, len(body)+2*len(Header)+2*len(tp)+16)
	prev := 0
	for _, e := range edits {
		out = append(out, body[prev:e.start]...)
		out = append(out, e.text...)
		prev = e.end
	}
	return append(out, body[prev:]...), true
}

// httpShaped recognises the events of Lambda's HTTP integrations:
//
//   - API Gateway REST API, and HTTP API with payload format 1.0:
//     httpMethod, a requestContext object, and headers or
//     multiValueHeaders;
//   - API Gateway HTTP API with payload format 2.0, and function URLs:
//     "version": "2.0" and requestContext.http an object;
//   - Application Load Balancer: httpMethod and requestContext.elb an
//     object.
//
// Other events with a requestContext (WebSocket APIs, AppSync) have no
// httpMethod or requestContext.http and are left alone.
func (ev *event) httpShaped() bool {
	rc := ev.requestContext
	if !rc.has || ev.b[rc.start] != '{' {
		return false
	}
	var httpObj, elbObj bool
	eachMember(ev.b, rc.start, func(key []byte, start, _ int) bool {
		switch {
		case keyIs(key, "http", false):
			httpObj = ev.b[start] == '{'
		case keyIs(key, "elb", false):
			elbObj = ev.b[start] == '{'
		}
		return true
	})
	if ev.version.has && string(ev.raw(ev.version)) == `"2.0"` && httpObj {
		return true
	}
	if !ev.httpMethod.has || ev.b[ev.httpMethod.start] != '"' {
		return false
	}
	return elbObj || ev.headers.has || ev.multiValueHeaders.has
}
