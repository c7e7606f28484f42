// Package firewall is lrap's built-in hook that rejects events before the
// function sees them: by size, by JSON Schema, and by rules over event body
// fields and headers. A rejected invocation fails with error type
// LRAP.EventRejected and a message naming what matched; the runtime never
// sees the event. In dry-run mode the hook only logs what it would have
// rejected.
//
// Everything is checked and compiled once, when the hook is built: a bad
// regex, path or schema refuses to start instead of failing open later.
// See README.md in this directory for the settings and a worked example.
package firewall

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/lrap/lrap/hook"
	"github.com/lrap/lrap/internal/config"
)

// Name is the hook's name in LRAP_HOOKS, logs and the config file.
const Name = "firewall"

// ErrorType is the error type of an invocation the firewall rejected.
const ErrorType = "LRAP.EventRejected"

// MaxMaxBytes bounds MaxBytes: far above any event Lambda delivers.
const MaxMaxBytes = 200 << 20

// Config configures the firewall. The JSON names are the keys of the
// "firewall" section of the LRAP_CONFIG file.
type Config struct {
	// MaxBytes rejects an event whose body is larger. Zero means no limit.
	// It makes the hook buffer events (NeedsBody): the API frames events
	// over 2 KiB without a Content-Length.
	MaxBytes int64 `json:"maxBytes,omitempty"`
	// Schema is a JSON Schema (the subset in README.md) the event body must
	// satisfy. At most one of Schema and SchemaFile.
	Schema json.RawMessage `json:"schema,omitempty"`
	// SchemaFile is the absolute path of a JSON Schema file.
	SchemaFile string `json:"schemaFile,omitempty"`
	// Rules are checked in order; see Rule.
	Rules []Rule `json:"rules,omitempty"`
	// Match is "any" (default: reject when any rule holds) or "all" (reject
	// when every rule holds).
	Match string `json:"match,omitempty"`
	// DryRun logs what would be rejected and lets everything through.
	DryRun bool `json:"dryRun,omitempty"`
	// Policy is "fail-closed" (default) or "fail-open": what happens when
	// the firewall cannot decide (body over LRAP_BUFFER_LIMIT, a check over
	// its budget).
	Policy string `json:"policy,omitempty"`
	// Budget bounds each check, as a Go duration ("50ms"). Zero means
	// hook.DefaultBudget; negative means no budget.
	Budget Duration `json:"budget,omitempty"`
}

// Duration is a time.Duration written as a Go duration string in JSON.
type Duration time.Duration

// UnmarshalJSON reads "50ms", "1s", ...
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New(`not a duration string such as "50ms"`)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration such as \"50ms\"", s)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// Settings are the variables the firewall reads, for the README. Each
// overrides the matching key of the config file.
var Settings = []config.Setting{
	{
		Name:     "LRAP_FIREWALL_MAX_BYTES",
		Default:  "0",
		Accepted: "a number of bytes from 0 to 209715200, optionally with a KiB or MiB suffix; 0 is no limit",
		Doc:      "Rejects an event whose body is larger, with `event larger than N bytes (max-bytes)`. Keep it below LRAP_BUFFER_LIMIT.",
	},
	{
		Name:     "LRAP_FIREWALL_RULES",
		Default:  "none",
		Accepted: `a JSON array of rules: {"id", "path" or "header", "op", "value", "not"}`,
		Doc:      "Replaces the config file's rules. For short rule sets; longer ones read better in LRAP_CONFIG.",
	},
	{
		Name:     "LRAP_FIREWALL_SCHEMA_FILE",
		Default:  "none",
		Accepted: "the absolute path of a JSON Schema file (the subset of draft 2020-12 documented below)",
		Doc:      "The event body must satisfy this schema; replaces the config file's schema or schemaFile.",
	},
	{
		Name:     "LRAP_FIREWALL_MATCH",
		Default:  "any",
		Accepted: "any, all",
		Doc:      "any rejects when one rule holds; all rejects only when every rule holds.",
	},
	{
		Name:     "LRAP_FIREWALL_DRY_RUN",
		Default:  "false",
		Accepted: "true or false",
		Doc:      "Logs each event that would be rejected (request id, rule id, reason; never the payload) and lets it through.",
	},
	{
		Name:     "LRAP_FIREWALL_POLICY",
		Default:  "fail-closed",
		Accepted: "fail-closed, fail-open",
		Doc:      "What happens when the firewall cannot decide (an event larger than LRAP_BUFFER_LIMIT, a check over its budget): fail-closed fails the invocation with LRAP.HookFailed, fail-open lets the event through unchecked.",
	},
}

// Build makes the firewall from its config-file section (nil when absent)
// and the environment, which wins over the file. Every error names the
// setting it is about. The hook logs through slog.Default().
func Build(env func(string) (string, bool), section json.RawMessage) (hook.Hook, error) {
	cfg, names, err := load(env, section)
	if err != nil {
		return hook.Hook{}, err
	}
	return build(cfg, names, slog.Default())
}

// New makes the firewall from cfg, for tests and programmatic use. A nil
// log discards.
func New(cfg Config, log *slog.Logger) (hook.Hook, error) {
	return build(cfg, plainNames, log)
}

// firewall is the compiled configuration. It is read-only once built, so
// one instance serves concurrent invocations.
type firewall struct {
	maxBytes  int64
	schema    *Schema
	rules     []*rule
	all       bool
	dryRun    bool
	needsBody bool
	policy    hook.Policy
	log       *slog.Logger
}

func build(cfg Config, names settingNames, log *slog.Logger) (hook.Hook, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &firewall{dryRun: cfg.DryRun, log: log, policy: hook.FailClosed}
	var errs []error

	if cfg.MaxBytes < 0 || cfg.MaxBytes > MaxMaxBytes {
		errs = append(errs, invalid(names.maxBytes, strconv.FormatInt(cfg.MaxBytes, 10), Settings[0].Accepted, nil))
	} else {
		f.maxBytes = cfg.MaxBytes
	}

	switch cfg.Match {
	case "", "any":
	case "all":
		f.all = true
	default:
		errs = append(errs, invalid(names.match, strconv.Quote(cfg.Match), Settings[3].Accepted, nil))
	}

	switch cfg.Policy {
	case "", "fail-closed":
	case "fail-open":
		f.policy = hook.FailOpen
	default:
		errs = append(errs, invalid(names.policy, strconv.Quote(cfg.Policy), Settings[5].Accepted, nil))
	}

	switch {
	case len(cfg.Schema) > 0 && cfg.SchemaFile != "":
		errs = append(errs, configError(names.schema+" and "+names.schemaFile+": set one, not both"))
	case len(cfg.Schema) > 0:
		s, err := CompileSchema(cfg.Schema)
		if err != nil {
			errs = append(errs, configError(names.schema+": "+err.Error()))
		}
		f.schema = s
	case cfg.SchemaFile != "":
		s, err := loadSchemaFile(cfg.SchemaFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", names.schemaFile, cfg.SchemaFile, err))
		}
		f.schema = s
	}

	seen := make(map[string]int, len(cfg.Rules))
	for i, r := range cfg.Rules {
		c, err := compileRule(r)
		if err != nil {
			var re *ruleError
			errors.As(err, &re)
			errs = append(errs, ruleInvalid(names.rules(i, re.field), r.ID, re.msg))
			continue
		}
		if j, dup := seen[r.ID]; dup {
			errs = append(errs, ruleInvalid(names.rules(i, "id"), r.ID, fmt.Sprintf("the same id as rule %d; ids must be unique", j)))
			continue
		}
		seen[r.ID] = i
		f.rules = append(f.rules, c)
		f.needsBody = f.needsBody || c.path != nil
	}
	if err := errors.Join(errs...); err != nil {
		return hook.Hook{}, err
	}
	// The size limit needs the body too: the Runtime API sends an event
	// over 2 KiB chunked, without Content-Length, so only the body itself
	// says how large it is. Header rules alone need nothing buffered.
	f.needsBody = f.needsBody || f.schema != nil || f.maxBytes > 0
	return hook.Hook{
		Name:      Name,
		Policy:    f.policy,
		Budget:    time.Duration(cfg.Budget),
		NeedsBody: f.needsBody,
		OnEvent:   f.onEvent,
	}, nil
}

// loadSchemaFile reads and compiles a schema file. A relative path is
// refused: an extension's working directory is not something to rely on.
func loadSchemaFile(path string) (*Schema, error) {
	if !filepath.IsAbs(path) {
		return nil, configError("not an absolute path (accepted: " + Settings[2].Accepted + ")")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, configError("cannot be read: " + err.Error())
	}
	s, err := CompileSchema(b)
	if err != nil {
		return nil, configError(err.Error())
	}
	return s, nil
}

// onEvent decides on one event. It keeps nothing between invocations.
func (f *firewall) onEvent(_ context.Context, inv *hook.Invocation, msg *hook.Message) hook.Verdict {
	d := f.check(msg)
	switch {
	case d.rule == "":
		return hook.Continue
	case f.dryRun:
		f.log.Info("firewall dry run: event would be rejected", "request_id", inv.RequestID, "rule", d.rule, "reason", d.reason)
		return hook.Continue
	}
	f.log.Info("firewall rejected event", "request_id", inv.RequestID, "rule", d.rule, "reason", d.reason)
	return hook.Reject(ErrorType, d.reason)
}

// decision is the outcome of the checks: rule is empty when the event
// passes; otherwise it names what rejects it ("max-bytes", "schema", a rule
// id) and reason is the rejection message, which never quotes the event.
type decision struct {
	rule, reason string
}

// check runs the checks cheapest first: size, then schema, then rules.
//
// When the hook needs the body (always with a size limit, a schema or a
// path rule), msg.Body is the whole body: lrap only calls the hook when it
// could buffer it, and an empty body is nil.
func (f *firewall) check(msg *hook.Message) decision {
	if f.maxBytes > 0 && int64(len(msg.Body)) > f.maxBytes {
		return decision{rule: "max-bytes", reason: fmt.Sprintf("event larger than %d bytes (max-bytes)", f.maxBytes)}
	}
	ev := &event{header: msg.Header, body: msg.Body}
	if f.schema != nil {
		// A schema describes a JSON document: a body that is not JSON
		// violates it.
		doc, err := ev.json()
		if err != nil {
			return decision{rule: "schema", reason: "schema: event body is not JSON"}
		}
		if v := f.schema.validateWithin(doc, stepsFor(len(msg.Body))); v != nil {
			return decision{rule: "schema", reason: "schema: " + v.Error()}
		}
	}
	if len(f.rules) == 0 {
		return decision{}
	}
	if !f.all {
		for _, r := range f.rules {
			if r.holds(ev) {
				return decision{rule: r.id, reason: "rule " + r.id + " matched"}
			}
		}
		return decision{}
	}
	ids := make([]string, 0, len(f.rules))
	for _, r := range f.rules {
		if !r.holds(ev) {
			return decision{}
		}
		ids = append(ids, r.id)
	}
	return decision{rule: strings.Join(ids, ","), reason: "rules " + strings.Join(ids, ", ") + " matched (match: all)"}
}

// Configuration errors wrap config.ErrInvalid, like lrap's own.
type configError string

func (e configError) Error() string { return string(e) }
func (e configError) Unwrap() error { return config.ErrInvalid }

// invalid says, in lrap's words, that setting=value is not valid.
func invalid(setting, value, accepted string, cause error) error {
	msg := setting + "=" + value + " is not valid"
	if cause != nil {
		msg += ": " + cause.Error()
	}
	return configError(msg + " (accepted: " + accepted + ")")
}

func ruleInvalid(where, id, msg string) error {
	if id == "" {
		return configError(where + ": " + msg)
	}
	return configError(fmt.Sprintf("%s: rule %q: %s", where, id, msg))
}
