// Package redact is lrap's built-in redaction hook: it masks values in the
// function's responses and error reports (and, optionally, in events before
// the runtime sees them), selected by JSON paths and found by detectors
// (e-mail addresses, payment card numbers, AWS access key ids, US social
// security numbers).
//
// What is inspected depends on the body (see README.md in this directory):
// JSON is walked value by value, text is scanned whole, binary content is
// left alone. A body that is not changed is forwarded byte for byte; a
// changed JSON document differs from the original only in the masked
// values.
//
// The hook needs whole bodies (hook.Hook.NeedsBody). A streamed response,
// or a body over LRAP_BUFFER_LIMIT, cannot be given to it, and lrap applies
// the hook's policy: fail-open forwards the body unredacted (logged, and
// counted in the proxy's Stats as BodyUnavailable and Skips), fail-closed
// replaces the response with an LRAP.HookFailed error.
package redact

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lrap/lrap/hook"
	"github.com/lrap/lrap/internal/jsonpath"
)

// Name is the hook's name in LRAP_HOOKS, logs and counters.
const Name = "redact"

// ErrorUnavailable is the error type that replaces a result (or fails an
// event) under fail-closed when the hook was given the body but could not
// apply its paths: the body claims or looks like JSON and does not parse.
const ErrorUnavailable = "LRAP.RedactionUnavailable"

// DefaultMask replaces what is redacted.
const DefaultMask = "***"

// Config is the hook's configuration, as in the "redact" section of the
// configuration file. The zero value masks with every detector, in
// responses and error reports, fail-closed.
type Config struct {
	// Paths select values masked whole (objects and arrays included), in
	// the syntax of internal/jsonpath: $.a.b, $['a b'], $.items[*].card,
	// $..password.
	Paths []string `json:"paths,omitempty"`
	// Detectors name the detectors to run on every string (and on numbers,
	// for card numbers). Nil means all of them; empty means none.
	Detectors []string `json:"detectors,omitempty"`
	// Mask replaces a detector's match inside its string, and a path's
	// value whole (as a JSON string). Empty means DefaultMask.
	Mask string `json:"mask,omitempty"`
	// Events redacts events too, before the runtime sees them.
	Events bool `json:"events,omitempty"`
	// Policy is "fail-closed" (default) or "fail-open": what happens when
	// a body cannot be redacted.
	Policy string `json:"policy,omitempty"`
	// Budget bounds the time spent on one body, as a Go duration ("250ms").
	// Empty means DefaultBudget.
	Budget string `json:"budget,omitempty"`
}

// redactor is a validated Config. It is immutable, shared by concurrent
// invocations.
type redactor struct {
	paths     []*jsonpath.Path
	detectors []detector
	mask      []byte
	// jsonMask is mask escaped for use inside a JSON string, quotedMask
	// the mask as a JSON string token.
	jsonMask, quotedMask []byte
	log                  *slog.Logger
	policy               hook.Policy
}

// New validates cfg and returns the hook. log receives the hook's warnings
// (never payloads); nil discards them.
func New(cfg Config, log *slog.Logger) (hook.Hook, error) {
	return newHook(cfg, log, fileNames)
}

func newHook(cfg Config, log *slog.Logger, names settingNames) (hook.Hook, error) {
	r, budget, err := compile(cfg, names)
	if err != nil {
		return hook.Hook{}, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r.log = log
	h := hook.Hook{
		Name:       Name,
		Policy:     r.policy,
		Budget:     budget,
		NeedsBody:  true,
		OnResponse: r.onResult,
		OnError:    r.onError,
	}
	if cfg.Events {
		h.OnEvent = r.onEvent
	}
	return h, nil
}

func (r *redactor) onResult(ctx context.Context, inv *hook.Invocation, msg *hook.Message) hook.Verdict {
	return r.apply(ctx, inv, msg, "response")
}

func (r *redactor) onError(ctx context.Context, inv *hook.Invocation, msg *hook.Message) hook.Verdict {
	return r.apply(ctx, inv, msg, "error report")
}

func (r *redactor) onEvent(ctx context.Context, inv *hook.Invocation, msg *hook.Message) hook.Verdict {
	return r.apply(ctx, inv, msg, "event")
}

// apply redacts msg's body. It never writes into msg.Body (lrap still holds
// it): a change is a new slice given to SetBody, and no change means no
// SetBody, so lrap forwards the original bytes and framing.
func (r *redactor) apply(ctx context.Context, inv *hook.Invocation, msg *hook.Message, what string) hook.Verdict {
	out, masks, problem := r.redact(ctx, msg.Body, msg.Header.Get("Content-Type"))
	if ctx.Err() != nil {
		// Over budget: lrap has already applied the policy and dropped
		// this call; whatever it returns is ignored.
		return hook.Continue
	}
	if problem != "" {
		if r.policy == hook.FailClosed {
			return hook.Reject(ErrorUnavailable, fmt.Sprintf("lrap redact could not redact the %s: %s", what, problem))
		}
		r.log.Warn("paths not applied; detectors only", "hook", Name, "what", what,
			"request_id", inv.RequestID, "reason", problem, "policy", r.policy.String())
	}
	if out != nil {
		msg.SetBody(out)
		r.log.Debug("redacted", "hook", Name, "what", what, "request_id", inv.RequestID, "masked", masks)
	}
	return hook.Continue
}

// bodyKind is how a body is inspected.
type bodyKind int

const (
	kindBinary bodyKind = iota // left alone
	kindText                   // detectors on the raw text
	kindJSON                   // paths, and detectors on every string and number
)

// redact returns the redacted body (nil when nothing changed) and how many
// masks it placed. problem is why the paths could not be applied to a body
// that is JSON by its Content-Type or its first byte but does not parse;
// the detectors have then still run on its text.
func (r *redactor) redact(ctx context.Context, body []byte, contentType string) (out []byte, masks int, problem string) {
	if len(body) == 0 {
		return nil, 0, ""
	}
	kind := classify(body, contentType)
	if kind == kindJSON {
		out, masks, ok := r.redactJSON(ctx, body)
		if ok {
			return out, masks, ""
		}
		if ctx.Err() != nil {
			return nil, 0, "" // abandoned: nobody waits for the result
		}
		if len(r.paths) > 0 {
			problem = "the body is not valid JSON, so the paths cannot be applied"
		}
		kind = textOrBinary(body)
	}
	if kind == kindBinary || len(r.detectors) == 0 {
		return nil, 0, problem
	}
	spans := spansIn(r.detectors, body, nil)
	if len(spans) == 0 {
		return nil, 0, problem
	}
	return maskSpans(make([]byte, 0, len(body)), body, spans, r.mask), len(spans), problem
}

// redactJSON redacts a JSON document; ok is false when it is not valid
// JSON.
func (r *redactor) redactJSON(ctx context.Context, body []byte) (out []byte, masks int, ok bool) {
	w := &walker{r: r, b: body, ctx: ctx}
	if len(r.paths) == 0 {
		if !w.walk(nil, false) {
			return nil, 0, false
		}
		return w.result(), w.masks, true
	}
	// Paths are evaluated on the decoded document; the walk then masks,
	// in the original bytes, the values they selected.
	doc, err := jsonpath.Decode(body)
	if err != nil || ctx.Err() != nil {
		return nil, 0, err == nil
	}
	selected := 0
	for _, p := range r.paths {
		selected += p.Replace(doc, func(any) any { return pathMatch{} })
	}
	if !w.walk(doc, selected > 0) {
		return nil, 0, false
	}
	return w.result(), w.masks, true
}

// classify decides how a body is inspected, from its Content-Type and its
// first bytes:
//
//   - JSON: application/json, text/json or any +json type; or any type
//     that is not binary when the body starts with { or [.
//   - binary: image/, audio/, video/, font/, archives, PDF, protobuf and
//     similar; the streamed HTTP integration type; or a body that is not
//     valid UTF-8 or contains NUL bytes.
//   - text: everything else (text/*, XML, form data, and untyped or
//     application/octet-stream bodies that are text).
//
// Untyped and application/octet-stream bodies are sniffed because runtimes
// label JSON that way (aws-lambda-go sends application/octet-stream).
func classify(body []byte, contentType string) bodyKind {
	media, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		media = strings.ToLower(strings.TrimSpace(strings.Split(contentType, ";")[0]))
	}
	switch {
	case media == "application/json" || media == "text/json" || strings.HasSuffix(media, "+json"):
		return kindJSON
	case binaryMedia(media):
		return kindBinary
	}
	if c := firstNonSpace(body); c == '{' || c == '[' {
		return kindJSON
	}
	return textOrBinary(body)
}

var binaryPrefixes = []string{"image/", "audio/", "video/", "font/", "model/", "multipart/"}

var binaryTypes = map[string]bool{
	"application/pdf": true, "application/zip": true, "application/gzip": true,
	"application/x-gzip": true, "application/x-tar": true, "application/x-7z-compressed": true,
	"application/x-protobuf": true, "application/protobuf": true, "application/grpc": true,
	"application/cbor": true, "application/msgpack": true, "application/x-msgpack": true,
	"application/wasm": true, "application/java-archive": true,
	// A streamed function URL response: a JSON prelude, 8 NUL bytes, then
	// the raw body (runtime-api-notes §4.4). Never buffered, but never
	// mistaken for JSON either.
	"application/vnd.awslambda.http-integration-response": true,
}

func binaryMedia(media string) bool {
	if binaryTypes[media] {
		return true
	}
	for _, p := range binaryPrefixes {
		if strings.HasPrefix(media, p) {
			return true
		}
	}
	return false
}

func textOrBinary(body []byte) bodyKind {
	for _, c := range body {
		if c == 0 {
			return kindBinary
		}
	}
	if !utf8.Valid(body) {
		return kindBinary
	}
	return kindText
}

func firstNonSpace(b []byte) byte {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\n', '\r':
		default:
			return c
		}
	}
	return 0
}

// compile validates cfg. Errors name the setting through names.
func compile(cfg Config, names settingNames) (*redactor, time.Duration, error) {
	var errs []error
	r := &redactor{policy: hook.FailClosed}
	for i, expr := range cfg.Paths {
		p, err := jsonpath.Compile(expr)
		switch {
		case err != nil:
			errs = append(errs, invalid(names.item(names.paths, i), expr, acceptedPaths, err))
		case p.String() == "$":
			errs = append(errs, invalid(names.item(names.paths, i), expr, acceptedPaths,
				fmt.Errorf("$ alone selects the whole document, which cannot be masked in place")))
		default:
			r.paths = append(r.paths, p)
		}
	}
	if cfg.Detectors == nil {
		r.detectors = allDetectors
	} else {
		seen := map[string]bool{}
		for i, name := range cfg.Detectors {
			d, ok := detectorByName(strings.TrimSpace(name))
			switch {
			case !ok:
				errs = append(errs, invalid(names.item(names.detectors, i), name, acceptedDetectors, nil))
			case !seen[d.name]:
				seen[d.name] = true
				r.detectors = append(r.detectors, d)
			}
		}
	}
	if len(r.paths) == 0 && len(cfg.Paths) == 0 && cfg.Detectors != nil && len(r.detectors) == 0 && len(errs) == 0 {
		errs = append(errs, invalid(names.detectors, detectorsNone, acceptedDetectors,
			errors.New("with no paths either, the hook would do nothing")))
	}
	mask := cfg.Mask
	if mask == "" {
		mask = DefaultMask
	}
	if err := checkMask(mask, r.detectors); err != nil {
		errs = append(errs, invalid(names.mask, mask, acceptedMask, err))
	} else {
		r.mask = []byte(mask)
		r.quotedMask = encodeString(r.mask)
		r.jsonMask = r.quotedMask[1 : len(r.quotedMask)-1]
	}
	switch cfg.Policy {
	case "", hook.FailClosed.String():
		r.policy = hook.FailClosed
	case hook.FailOpen.String():
		r.policy = hook.FailOpen
	default:
		errs = append(errs, invalid(names.policy, cfg.Policy, acceptedPolicy, nil))
	}
	budget := DefaultBudget
	if cfg.Budget != "" {
		d, err := time.ParseDuration(cfg.Budget)
		if err != nil || d < time.Millisecond || d > maxBudget {
			errs = append(errs, invalid(names.budget, cfg.Budget, acceptedBudget, nil))
		} else {
			budget = d
		}
	}
	if len(errs) > 0 {
		return nil, 0, joinErrors(errs)
	}
	return r, budget, nil
}

// DefaultBudget is the hook's time budget per body. It is larger than
// hook.DefaultBudget because the cost grows with the body (a few ms per MB
// on a full vCPU, several times that with paths, which decode the
// document), and a function with little memory gets a fraction of a vCPU:
// a budget sized for small events would fail large responses.
const DefaultBudget = time.Second

const (
	maxMask   = 64
	maxBudget = 10 * time.Second
)

// checkMask refuses masks that would make redaction unstable: a mask a
// detector matches would be "found" again in every redacted body.
func checkMask(mask string, dets []detector) error {
	if len(mask) > maxMask {
		return fmt.Errorf("longer than %d bytes", maxMask)
	}
	if !utf8.ValidString(mask) {
		return fmt.Errorf("not valid UTF-8")
	}
	for _, c := range mask {
		if c < 0x20 || c == 0x7f {
			return fmt.Errorf("contains a control character")
		}
	}
	for _, d := range dets {
		if len(d.find([]byte(mask), nil)) > 0 {
			return fmt.Errorf("the %s detector matches it", d.name)
		}
	}
	return nil
}
