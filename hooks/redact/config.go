package redact

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/lrap/lrap/hook"
	"github.com/lrap/lrap/internal/config"
)

// Environment variables; each overrides the same field of the file section.
const (
	EnvPaths     = "LRAP_REDACT_PATHS"
	EnvDetectors = "LRAP_REDACT_DETECTORS"
	EnvMask      = "LRAP_REDACT_MASK"
	EnvEvents    = "LRAP_REDACT_EVENTS"
	EnvPolicy    = "LRAP_REDACT_POLICY"
	EnvBudget    = "LRAP_REDACT_BUDGET"
)

const (
	acceptedPaths     = "comma-separated JSON paths such as $.card, $.items[*].email, $..password or $['odd key']; a comma inside [...] or quotes does not separate"
	acceptedDetectors = "comma-separated names from email, card, aws-access-key, us-ssn; or none"
	acceptedMask      = "1 to 64 bytes of UTF-8 without control characters, in which no enabled detector finds anything"
	acceptedEvents    = "true or false"
	acceptedPolicy    = "fail-closed or fail-open"
	acceptedBudget    = "a Go duration from 1ms to 10s, such as 250ms"
)

// Settings documents the hook's variables, in the shape of lrap's own
// settings table.
var Settings = []config.Setting{
	{Name: EnvPaths, Default: "none", Accepted: acceptedPaths,
		Doc: "Values masked whole, whatever their type (the value becomes the mask string). Needs JSON bodies."},
	{Name: EnvDetectors, Default: "email,card,aws-access-key,us-ssn", Accepted: acceptedDetectors,
		Doc: "Detectors run on every string of a JSON body (keys included; numbers for cards) and on text bodies; a match is masked inside its string."},
	{Name: EnvMask, Default: DefaultMask, Accepted: acceptedMask,
		Doc: "What replaces a match or a selected value."},
	{Name: EnvEvents, Default: "false", Accepted: acceptedEvents,
		Doc: "Also redact events before the runtime sees them. Responses and error reports are always redacted."},
	{Name: EnvPolicy, Default: "fail-closed", Accepted: acceptedPolicy,
		Doc: "A body the hook cannot redact (streamed, over LRAP_BUFFER_LIMIT, JSON that does not parse while paths are set, or over budget): fail-open forwards it unredacted and logs it; fail-closed replaces the response with an error."},
	{Name: EnvBudget, Default: "1s", Accepted: acceptedBudget,
		Doc: "Time allowed to redact one body; past it the policy applies."},
}

// settingNames says what each field is called in error messages: the
// environment variable or the file key it came from.
type settingNames struct {
	paths, detectors, mask, events, policy, budget string
	// listsFromEnv: a list from the environment is named as a whole, one
	// from the file by its index.
	pathsFromEnv, detectorsFromEnv bool
}

var fileNames = settingNames{
	paths: "redact.paths", detectors: "redact.detectors", mask: "redact.mask",
	events: "redact.events", policy: "redact.policy", budget: "redact.budget",
}

// item names element i of a list setting.
func (n settingNames) item(list string, i int) string {
	if list == n.paths && n.pathsFromEnv || list == n.detectors && n.detectorsFromEnv {
		return list
	}
	return fmt.Sprintf("%s[%d]", list, i)
}

// Build returns the hook configured by section (the "redact" object of the
// configuration file; empty or null for none) and the LRAP_REDACT_*
// variables, which override the section field by field. Every invalid
// setting is reported, each by the name it was given under.
func Build(env func(string) (string, bool), section json.RawMessage) (hook.Hook, error) {
	var cfg Config
	names := fileNames
	if s := bytes.TrimSpace(section); len(s) > 0 && !bytes.Equal(s, []byte("null")) {
		dec := json.NewDecoder(bytes.NewReader(s))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&cfg); err != nil {
			return hook.Hook{}, invalid("redact", string(s), "an object with paths, detectors, mask, events, policy, budget", err)
		}
	}
	var errs []error
	lookup := func(name string) (string, bool) {
		v, ok := env(name)
		return v, ok && v != ""
	}
	if v, ok := lookup(EnvPaths); ok {
		cfg.Paths, names.paths, names.pathsFromEnv = splitPaths(v), EnvPaths, true
	}
	if v, ok := lookup(EnvDetectors); ok {
		names.detectors, names.detectorsFromEnv = EnvDetectors, true
		if strings.TrimSpace(v) == detectorsNone {
			cfg.Detectors = []string{}
		} else {
			cfg.Detectors = strings.Split(v, ",")
		}
	}
	if v, ok := lookup(EnvMask); ok {
		cfg.Mask, names.mask = v, EnvMask
	}
	if v, ok := lookup(EnvEvents); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, invalid(EnvEvents, v, acceptedEvents, nil))
		}
		cfg.Events = b
	}
	if v, ok := lookup(EnvPolicy); ok {
		cfg.Policy, names.policy = v, EnvPolicy
	}
	if v, ok := lookup(EnvBudget); ok {
		cfg.Budget, names.budget = v, EnvBudget
	}
	// The hook logs through slog's default logger here; Run's own logger
	// is not reachable from a builder.
	h, err := newHook(cfg, slog.Default(), names)
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return hook.Hook{}, joinErrors(errs)
	}
	return h, nil
}

// splitPaths splits a comma-separated list of paths at the commas that are
// outside brackets and quotes: $['a,b'] is one path.
func splitPaths(v string) []string {
	var out []string
	depth, quote, start := 0, byte(0), 0
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case quote != 0:
			if c == '\\' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '[':
			depth++
		case c == ']':
			depth--
		case c == ',' && depth <= 0:
			out = append(out, strings.TrimSpace(v[start:i]))
			start = i + 1
		}
	}
	return append(out, strings.TrimSpace(v[start:]))
}

// invalidError is a setting refused at start, worded like lrap's own
// configuration errors: the name, the value, why, and what is accepted.
type invalidError struct {
	name, value, accepted string
	cause                 error
}

func (e *invalidError) Error() string {
	msg := fmt.Sprintf("%s=%q is not valid", e.name, e.value)
	if e.cause != nil {
		msg += ": " + e.cause.Error()
	}
	return msg + " (accepted: " + e.accepted + ")"
}

// Unwrap lets callers test errors.Is(err, config.ErrInvalid).
func (e *invalidError) Unwrap() error { return config.ErrInvalid }

func invalid(name, value, accepted string, cause error) error {
	return &invalidError{name: name, value: value, accepted: accepted, cause: cause}
}

func joinErrors(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
}
