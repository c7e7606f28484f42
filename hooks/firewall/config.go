package firewall

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/lrap/lrap/internal/config"
)

// settingNames says how to name each setting in an error: by the variable
// that set it, or by its key in the config file, so the message points at
// the place to fix.
type settingNames struct {
	maxBytes, schema, schemaFile, match, policy string
	rules                                       func(i int, field string) string
}

// filePrefix is how a key of this hook's config-file section is named, the
// same way the other built-in hooks name theirs.
const filePrefix = "LRAP_CONFIG " + Name + "."

var fileNames = settingNames{
	maxBytes:   filePrefix + "maxBytes",
	schema:     filePrefix + "schema",
	schemaFile: filePrefix + "schemaFile",
	match:      filePrefix + "match",
	policy:     filePrefix + "policy",
	rules:      indexedRuleName(filePrefix + "rules"),
}

// plainNames are used by New, where there is neither a file nor variables.
var plainNames = settingNames{
	maxBytes:   Name + ".maxBytes",
	schema:     Name + ".schema",
	schemaFile: Name + ".schemaFile",
	match:      Name + ".match",
	policy:     Name + ".policy",
	rules:      indexedRuleName(Name + ".rules"),
}

// indexedRuleName names rule i's field as "base[i].field".
func indexedRuleName(base string) func(int, string) string {
	return func(i int, field string) string {
		s := fmt.Sprintf("%s[%d]", base, i)
		if field != "" {
			s += "." + field
		}
		return s
	}
}

// envRuleName names rule i's field inside LRAP_FIREWALL_RULES.
func envRuleName(i int, field string) string {
	return "LRAP_FIREWALL_RULES: " + indexedRuleName("rules")(i, field)
}

var sectionKeys = []string{"maxBytes", "schema", "schemaFile", "rules", "match", "dryRun", "policy", "budget"}
var ruleKeys = []string{"id", "path", "header", "op", "value", "not"}

// load reads the config-file section, then lets the environment override
// it. It reports every problem it finds, not only the first.
func load(env func(string) (string, bool), section json.RawMessage) (Config, settingNames, error) {
	var cfg Config
	names := fileNames
	var errs []error
	if s := bytes.TrimSpace(section); len(s) > 0 && string(s) != "null" {
		errs = append(errs, loadSection(&cfg, s)...)
	}
	get := func(name string) (string, bool) {
		v, ok := env(name)
		return v, ok && v != ""
	}
	if v, ok := get("LRAP_FIREWALL_MAX_BYTES"); ok {
		names.maxBytes = "LRAP_FIREWALL_MAX_BYTES"
		n, err := config.ParseBytes(v)
		if err != nil || n > MaxMaxBytes {
			errs = append(errs, invalid(names.maxBytes, strconv.Quote(v), Settings[0].Accepted, nil))
		} else {
			cfg.MaxBytes = n
		}
	}
	if v, ok := get("LRAP_FIREWALL_RULES"); ok {
		names.rules = envRuleName
		rules, err := parseRules([]byte(v), "LRAP_FIREWALL_RULES", envRuleName)
		errs = append(errs, err...)
		cfg.Rules = rules
	}
	if v, ok := get("LRAP_FIREWALL_SCHEMA_FILE"); ok {
		names.schemaFile = "LRAP_FIREWALL_SCHEMA_FILE"
		cfg.Schema, cfg.SchemaFile = nil, v
	}
	if v, ok := get("LRAP_FIREWALL_MATCH"); ok {
		names.match = "LRAP_FIREWALL_MATCH"
		cfg.Match = v
	}
	if v, ok := get("LRAP_FIREWALL_DRY_RUN"); ok {
		switch strings.ToLower(v) {
		case "true":
			cfg.DryRun = true
		case "false":
			cfg.DryRun = false
		default:
			errs = append(errs, invalid("LRAP_FIREWALL_DRY_RUN", strconv.Quote(v), Settings[4].Accepted, nil))
		}
	}
	if v, ok := get("LRAP_FIREWALL_POLICY"); ok {
		names.policy = "LRAP_FIREWALL_POLICY"
		cfg.Policy = v
	}
	return cfg, names, errors.Join(errs...)
}

func loadSection(cfg *Config, section []byte) []error {
	keys, err := objectKeys(section, filePrefix[:len(filePrefix)-1], sectionKeys)
	if err != nil {
		return []error{err}
	}
	var errs []error
	field := func(key string, dst any, accepted string) {
		raw, ok := keys[key]
		if !ok {
			return
		}
		if err := strictUnmarshal(raw, dst); err != nil {
			errs = append(errs, invalid(filePrefix+key, short(raw), accepted, nil))
		}
	}
	field("maxBytes", &cfg.MaxBytes, "an integer number of bytes from 0 to "+strconv.Itoa(MaxMaxBytes)+"; 0 is no limit")
	field("schemaFile", &cfg.SchemaFile, Settings[2].Accepted)
	field("match", &cfg.Match, Settings[3].Accepted)
	field("dryRun", &cfg.DryRun, "true or false")
	field("policy", &cfg.Policy, Settings[5].Accepted)
	field("budget", &cfg.Budget, `a Go duration such as "50ms"; negative is no budget`)
	if raw, ok := keys["schema"]; ok {
		// Checked as a schema by build; here only that it can be one.
		if t := firstByte(raw); t != '{' && t != 't' && t != 'f' {
			errs = append(errs, invalid(filePrefix+"schema", short(raw), "a JSON Schema object (or true/false)", nil))
		} else {
			cfg.Schema = raw
		}
	}
	if raw, ok := keys["rules"]; ok {
		rules, err := parseRules(raw, filePrefix+"rules", fileNames.rules)
		errs = append(errs, err...)
		cfg.Rules = rules
	}
	return errs
}

// parseRules reads a JSON array of rule objects, refusing unknown keys
// (a misspelt "nott" must not silently drop a negation).
func parseRules(raw []byte, whole string, name func(int, string) string) ([]Rule, []error) {
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, []error{configError(whole + ": not a JSON array of rules: " + err.Error())}
	}
	var errs []error
	rules := make([]Rule, 0, len(list))
	for i, elem := range list {
		keys, err := objectKeys(elem, name(i, ""), ruleKeys)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var r Rule
		ok := true
		str := func(key string, dst *string) {
			if raw, found := keys[key]; found && strictUnmarshal(raw, dst) != nil {
				errs = append(errs, configError(name(i, key)+": must be a string, not "+short(raw)))
				ok = false
			}
		}
		str("id", &r.ID)
		str("path", &r.Path)
		str("header", &r.Header)
		str("op", &r.Op)
		if raw, found := keys["not"]; found && strictUnmarshal(raw, &r.Not) != nil {
			errs = append(errs, configError(name(i, "not")+": must be true or false, not "+short(raw)))
			ok = false
		}
		r.Value = keys["value"]
		if ok {
			rules = append(rules, r)
		}
	}
	return rules, errs
}

// objectKeys splits a JSON object into its members, refusing keys not in
// known.
func objectKeys(raw []byte, where string, known []string) (map[string]json.RawMessage, error) {
	var keys map[string]json.RawMessage
	if firstByte(raw) != '{' || json.Unmarshal(raw, &keys) != nil {
		return nil, configError(where + ": must be a JSON object, not " + short(raw))
	}
	var unknown []string
	for k := range keys {
		if !slices.Contains(known, k) {
			unknown = append(unknown, strconv.Quote(k))
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return nil, configError(where + ": unknown key " + strings.Join(unknown, ", ") + " (accepted: " + strings.Join(known, ", ") + ")")
	}
	return keys, nil
}

// strictUnmarshal refuses null, which json.Unmarshal would take as "leave
// unchanged".
func strictUnmarshal(raw []byte, dst any) error {
	if string(bytes.TrimSpace(raw)) == "null" {
		return errors.New("null")
	}
	return json.Unmarshal(raw, dst)
}

func firstByte(b []byte) byte {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return 0
	}
	return b[0]
}

// short renders a JSON value for an error message, bounded.
func short(raw []byte) string {
	s := string(bytes.TrimSpace(raw))
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}
