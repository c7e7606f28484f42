// Package builtin builds the stock binary's built-in hooks from the
// configuration: LRAP_HOOKS names them in order, each reads its own
// LRAP_<HOOK>_... variables, and LRAP_CONFIG may hold the same in a JSON or
// YAML file when rules get long. Load is lrap.Options.LoadHooks for
// cmd/lrap: any error it returns stops init as Extension.ConfigInvalid.
package builtin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/lrap/lrap/hook"
	"github.com/lrap/lrap/internal/config"
)

// Builtin is one built-in hook.
type Builtin struct {
	// Name is the hook's name in LRAP_HOOKS and its section's key in the
	// config file.
	Name string
	// Build makes the hook from the environment and its config-file
	// section (nil when the file has none). The environment wins.
	Build func(env func(string) (string, bool), section json.RawMessage) (hook.Hook, error)
	// Settings are the variables the hook reads, for the README.
	Settings []config.Setting
}

// Builtins returns the built-in hooks in documentation order.
func Builtins() []Builtin { return append([]Builtin(nil), registry...) }

// Settings are the variables Load itself reads, for the README.
var Settings = []config.Setting{
	{
		Name:     "LRAP_HOOKS",
		Default:  "none",
		Accepted: "built-in hook names separated by commas (" + strings.Join(names(), ", ") + "), or none",
		Doc:      "The built-in hooks to run, in this order. Set, it wins over the hooks list of the config file; none turns every hook off.",
	},
	{
		Name:     "LRAP_CONFIG",
		Default:  "none",
		Accepted: "the path of a JSON (.json) or YAML (.yaml, .yml) file of at most 1 MiB",
		Doc:      "A config file with the hooks list and one section per hook, for rules too long for variables. A hook's variables win over its section.",
	},
}

// maxConfigSize bounds the config file read at start.
const maxConfigSize = 1 << 20

// Load builds the hooks LRAP_HOOKS (or the config file's hooks list) names,
// in that order. It returns no hooks, and no error, when neither is set.
// Every error names the setting at fault; all of them are reported at once.
func Load(env func(string) (string, bool)) ([]hook.Hook, error) {
	var file *configFile
	if path, ok := env("LRAP_CONFIG"); ok && path != "" {
		f, err := readConfig(path)
		if err != nil {
			return nil, err
		}
		file = f
	}
	var list []string
	if v, ok := env("LRAP_HOOKS"); ok && v != "" {
		l, err := parseHookList(v)
		if err != nil {
			return nil, &settingError{name: "LRAP_HOOKS", value: strconv.Quote(v), accepted: Settings[0].Accepted, cause: err}
		}
		list = l
	} else if file != nil {
		if file.hooks == nil && len(file.sections) > 0 {
			// Sections with nothing to enable them are a hook the user
			// believes runs and does not: say so instead of running none.
			return nil, &fileError{path: file.path, msg: "configures " + strings.Join(file.sectionNames(), ", ") +
				" but enables no hook: add a \"hooks\" list or set LRAP_HOOKS"}
		}
		list = file.hooks
	}

	var (
		hooks []hook.Hook
		errs  []error
	)
	for _, name := range list {
		b := lookup(name)
		var section json.RawMessage
		if file != nil {
			section = file.sections[name]
		}
		h, err := b.Build(env, section)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s hook: %w", name, err))
			continue
		}
		if h.Name == "" {
			h.Name = name
		}
		hooks = append(hooks, h)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return hooks, nil
}

func names() []string {
	n := make([]string, len(registry))
	for i, b := range registry {
		n[i] = b.Name
	}
	return n
}

func lookup(name string) *Builtin {
	for i := range registry {
		if registry[i].Name == name {
			return &registry[i]
		}
	}
	return nil
}

// parseHookList reads a comma-separated, ordered list of hook names.
// "none" alone is the empty list. Unknown, empty and repeated names are
// refused, all of them named.
func parseHookList(v string) ([]string, error) {
	if strings.TrimSpace(v) == "none" {
		return []string{}, nil
	}
	return checkHookList(strings.Split(v, ","), true)
}

// checkHookList validates names, trimming spaces when trim is set (a
// variable's list is typed by hand; a file's is already split).
func checkHookList(list []string, trim bool) ([]string, error) {
	var (
		out      []string
		problems []string
		seen     = map[string]bool{}
	)
	for i, name := range list {
		if trim {
			name = strings.TrimSpace(name)
		}
		switch {
		case name == "":
			problems = append(problems, fmt.Sprintf("empty name at position %d", i+1))
		case lookup(name) == nil:
			problems = append(problems, fmt.Sprintf("unknown hook %q", name))
		case seen[name]:
			problems = append(problems, fmt.Sprintf("%q listed twice", name))
		default:
			seen[name] = true
			out = append(out, name)
		}
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "; "))
	}
	if out == nil {
		out = []string{}
	}
	return out, nil
}

// settingError reads like lrap's own configuration errors: the variable,
// the value, what is wrong and what is accepted.
type settingError struct {
	name, value, accepted string
	cause                 error
}

func (e *settingError) Error() string {
	return e.name + "=" + e.value + " is not valid: " + e.cause.Error() + " (accepted: " + e.accepted + ")"
}

func (e *settingError) Unwrap() error { return config.ErrInvalid }

// configFile is a parsed LRAP_CONFIG file.
type configFile struct {
	path string
	// hooks is the file's hooks list; nil when it has none.
	hooks []string
	// sections holds each hook's section (a JSON object) by name.
	sections map[string]json.RawMessage
}

func (f *configFile) sectionNames() []string {
	var n []string
	for name := range f.sections {
		n = append(n, name)
	}
	sort.Strings(n)
	return n
}

// fileError names LRAP_CONFIG and the file in every error about it.
type fileError struct {
	path string
	msg  string
}

func (e *fileError) Error() string { return "LRAP_CONFIG=" + e.path + ": " + e.msg }
func (e *fileError) Unwrap() error { return config.ErrInvalid }

func readConfig(path string) (*configFile, error) {
	fail := func(format string, args ...any) error {
		return &fileError{path: path, msg: fmt.Sprintf(format, args...)}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fail("cannot read the config file: %v", unwrapPath(err))
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return nil, fail("cannot read the config file: %v", unwrapPath(err))
	}
	if len(raw) > maxConfigSize {
		return nil, fail("larger than %d bytes", maxConfigSize)
	}
	doc, err := toJSON(path, raw)
	if err != nil {
		return nil, fail("%v", err)
	}
	return parseConfig(path, doc)
}

// unwrapPath drops the path from an *os.PathError: the message names it
// already.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// toJSON reads the file as JSON or YAML: by extension, or, for any other
// name, as JSON when it starts with '{'.
func toJSON(path string, raw []byte) ([]byte, error) {
	isJSON := false
	switch strings.ToLower(filepath.Ext(path)) {
	case ".json":
		isJSON = true
	case ".yaml", ".yml":
	default:
		trimmed := bytes.TrimLeft(bytes.TrimPrefix(raw, []byte("\ufeff")), " \t\r\n")
		isJSON = len(trimmed) > 0 && trimmed[0] == '{'
	}
	if !isJSON {
		doc, err := yamlToJSON(raw)
		if err != nil {
			return nil, fmt.Errorf("YAML: %w", err)
		}
		return doc, nil
	}
	raw = bytes.TrimPrefix(raw, []byte("\ufeff"))
	if err := checkJSON(raw); err != nil {
		return nil, fmt.Errorf("JSON: %w", err)
	}
	return raw, nil
}

// checkJSON refuses malformed JSON and duplicate keys (which encoding/json
// would silently resolve to the last), with the line at fault.
func checkJSON(raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	lineAt := func(off int64) int { return 1 + bytes.Count(raw[:min(int(off), len(raw))], []byte("\n")) }
	type object struct {
		keys      map[string]bool
		expectKey bool
	}
	var stack []*object
	for done := false; ; done = len(stack) == 0 {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if done && err == nil {
			return fmt.Errorf("line %d: more after the top-level value", lineAt(dec.InputOffset()))
		}
		if err != nil {
			var se *json.SyntaxError
			if errors.As(err, &se) {
				return fmt.Errorf("line %d: %v", lineAt(se.Offset), se)
			}
			return fmt.Errorf("line %d: %v", lineAt(dec.InputOffset()), err)
		}
		var top *object
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{':
				if top != nil {
					top.expectKey = true
				}
				stack = append(stack, &object{keys: map[string]bool{}, expectKey: true})
			case '[':
				if top != nil {
					top.expectKey = true
				}
				stack = append(stack, nil)
			default:
				stack = stack[:len(stack)-1]
			}
			continue
		case string:
			if top != nil && top.expectKey {
				if top.keys[t] {
					return fmt.Errorf("line %d: duplicate key %q", lineAt(dec.InputOffset()), t)
				}
				top.keys[t] = true
				top.expectKey = false
				continue
			}
		}
		if top != nil {
			top.expectKey = true
		}
	}
	return nil
}

// parseConfig reads the top level: "hooks" and one section per built-in
// hook, nothing else.
func parseConfig(path string, doc []byte) (*configFile, error) {
	fail := func(format string, args ...any) error {
		return &fileError{path: path, msg: fmt.Sprintf(format, args...)}
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(doc, &top); err != nil || top == nil {
		return nil, fail("the file must hold a mapping with \"hooks\" and a section per hook")
	}
	cf := &configFile{path: path, sections: map[string]json.RawMessage{}}
	accepted := "hooks, " + strings.Join(names(), ", ")
	var unknown []string
	for key, raw := range top {
		if key == "hooks" {
			continue
		}
		if lookup(key) == nil {
			unknown = append(unknown, strconv.Quote(key))
			continue
		}
		raw = bytes.TrimSpace(raw)
		switch {
		case string(raw) == "null":
		case len(raw) > 0 && raw[0] == '{':
			cf.sections[key] = raw
		default:
			return nil, fail("the %q section must be a mapping", key)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fail("unknown key %s (accepted: %s)", strings.Join(unknown, ", "), accepted)
	}
	if raw, ok := top["hooks"]; ok && string(bytes.TrimSpace(raw)) != "null" {
		var list []string
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, fail("\"hooks\" must be a list of hook names (accepted: %s)", strings.Join(names(), ", "))
		}
		hooks, err := checkHookList(list, false)
		if err != nil {
			return nil, fail("\"hooks\": %v (accepted: %s)", err, strings.Join(names(), ", "))
		}
		cf.hooks = hooks
	}
	return cf, nil
}
