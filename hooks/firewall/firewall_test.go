package firewall

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lrap/lrap/hook"
	"github.com/lrap/lrap/internal/config"
)

// eventHeader is what the Runtime API sends with an event.
func eventHeader(body []byte) http.Header {
	return http.Header{
		"Lambda-Runtime-Aws-Request-Id":       {"req-1"},
		"Lambda-Runtime-Invoked-Function-Arn": {"arn:aws:lambda:eu-west-1:123456789012:function:f"},
		"Lambda-Runtime-Trace-Id":             {"Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"},
		"Content-Type":                        {"application/json"},
		"Content-Length":                      {itoa(len(body))},
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// verdict runs the hook on one event the way the proxy does: the body is
// given only when the hook asked for it.
func verdict(t testing.TB, h hook.Hook, header http.Header, body []byte) (errorType, message string, rejected bool) {
	t.Helper()
	msg := &hook.Message{Header: header}
	if h.NeedsBody {
		msg.Body = body
	}
	v := h.OnEvent(context.Background(), &hook.Invocation{RequestID: "req-1", Header: header}, msg)
	return v.Rejected()
}

func mustNew(t testing.TB, cfg Config) hook.Hook {
	t.Helper()
	h, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

const sampleEvent = `{"httpMethod":"POST","path":"/orders","headers":{"User-Agent":"curl/8.5","X-Tenant":"acme"},
"queryStringParameters":{"debug":"1"},"body":"{}","amount":250,"items":[{"sku":"a","qty":1},{"sku":"b","qty":12}],"flag":true,"none":null}`

func TestRuleOps(t *testing.T) {
	for _, tc := range []struct {
		name string
		rule string
		hit  bool
	}{
		{"equals string", `{"path":"$.httpMethod","op":"equals","value":"POST"}`, true},
		{"equals string/no", `{"path":"$.httpMethod","op":"equals","value":"GET"}`, false},
		{"equals number by value", `{"path":"$.amount","op":"equals","value":250.0}`, true},
		{"equals bool", `{"path":"$.flag","op":"equals","value":true}`, true},
		{"equals null", `{"path":"$.none","op":"equals","value":null}`, true},
		{"equals object", `{"path":"$.items[0]","op":"equals","value":{"qty":1,"sku":"a"}}`, true},
		{"equals type-strict", `{"path":"$.amount","op":"equals","value":"250"}`, false},
		{"equals any of wildcard", `{"path":"$.items[*].sku","op":"equals","value":"b"}`, true},
		{"equals missing", `{"path":"$.nope","op":"equals","value":"x"}`, false},
		{"matches", `{"path":"$.headers['User-Agent']","op":"matches","value":"^curl/"}`, true},
		{"matches unanchored", `{"path":"$.path","op":"matches","value":"rder"}`, true},
		{"matches/no", `{"path":"$.path","op":"matches","value":"^/admin"}`, false},
		{"matches non-string", `{"path":"$.amount","op":"matches","value":"2"}`, false},
		{"matches recursive", `{"path":"$..sku","op":"matches","value":"^b$"}`, true},
		{"exists", `{"path":"$.queryStringParameters.debug","op":"exists"}`, true},
		{"exists null value", `{"path":"$.none","op":"exists"}`, true},
		{"exists/no", `{"path":"$.queryStringParameters.trace","op":"exists"}`, false},
		{"not exists", `{"path":"$.requestContext","op":"exists","not":true}`, true},
		{"not equals", `{"path":"$.httpMethod","op":"equals","value":"POST","not":true}`, false},
		{"lt", `{"path":"$.amount","op":"lt","value":251}`, true},
		{"lt/no", `{"path":"$.amount","op":"lt","value":250}`, false},
		{"le", `{"path":"$.amount","op":"le","value":250}`, true},
		{"gt", `{"path":"$.items[*].qty","op":"gt","value":10}`, true},
		{"gt/no", `{"path":"$.amount","op":"gt","value":250}`, false},
		{"ge", `{"path":"$.amount","op":"ge","value":250}`, true},
		{"gt non-number", `{"path":"$.httpMethod","op":"gt","value":0}`, false},
		{"header equals", `{"header":"lambda-runtime-invoked-function-arn","op":"equals","value":"arn:aws:lambda:eu-west-1:123456789012:function:f"}`, true},
		{"header matches", `{"header":"Lambda-Runtime-Trace-Id","op":"matches","value":"Sampled=1"}`, true},
		{"header exists", `{"header":"Lambda-Runtime-Client-Context","op":"exists"}`, false},
		{"header not exists", `{"header":"Lambda-Runtime-Client-Context","op":"exists","not":true}`, true},
		{"header numeric", `{"header":"Content-Length","op":"gt","value":100}`, true},
		{"header numeric/no", `{"header":"Content-Type","op":"gt","value":0}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r Rule
			if err := json.Unmarshal([]byte(tc.rule), &r); err != nil {
				t.Fatal(err)
			}
			r.ID = "r1"
			h := mustNew(t, Config{Rules: []Rule{r}})
			body := []byte(sampleEvent)
			errorType, message, rejected := verdict(t, h, eventHeader(body), body)
			if rejected != tc.hit {
				t.Fatalf("rejected = %v, want %v", rejected, tc.hit)
			}
			if rejected && (errorType != "LRAP.EventRejected" || message != "rule r1 matched") {
				t.Errorf("rejection %s %q", errorType, message)
			}
		})
	}
}

func TestMatchAnyAll(t *testing.T) {
	rules := []Rule{
		{ID: "post", Path: "$.httpMethod", Op: "equals", Value: json.RawMessage(`"POST"`)},
		{ID: "big", Path: "$.amount", Op: "gt", Value: json.RawMessage(`1000`)},
		{ID: "curl", Header: "X-Client", Op: "matches", Value: json.RawMessage(`"curl"`)},
	}
	body := []byte(sampleEvent)
	header := eventHeader(body)

	_, msg, rejected := verdict(t, mustNew(t, Config{Rules: rules}), header, body)
	if !rejected || msg != "rule post matched" {
		t.Errorf("any: %v %q, want the first rule that holds", rejected, msg)
	}
	if _, _, rejected := verdict(t, mustNew(t, Config{Rules: rules, Match: "all"}), header, body); rejected {
		t.Errorf("all: rejected though rule big does not hold")
	}
	rules[1].Value = json.RawMessage(`100`)
	header.Set("X-Client", "curl/8")
	_, msg, rejected = verdict(t, mustNew(t, Config{Rules: rules, Match: "all"}), header, body)
	if !rejected || msg != "rules post, big, curl matched (match: all)" {
		t.Errorf("all: %v %q", rejected, msg)
	}
	if _, _, rejected := verdict(t, mustNew(t, Config{Match: "all"}), header, body); rejected {
		t.Errorf("all with no rules rejected an event")
	}
}

// Header rules alone never make the hook buffer bodies; a size limit, a
// schema or a path rule does (events over 2 KiB come without
// Content-Length, so only the body tells their size).
func TestNeedsBody(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want bool
	}{
		{Config{MaxBytes: 10}, true},
		{Config{Rules: []Rule{{ID: "h", Header: "X-A", Op: "exists"}}}, false},
		{Config{Rules: []Rule{{ID: "h", Header: "X-A", Op: "exists"}, {ID: "p", Path: "$.a", Op: "exists"}}}, true},
		{Config{Schema: json.RawMessage(`{"type":"object"}`)}, true},
	} {
		if h := mustNew(t, tc.cfg); h.NeedsBody != tc.want || h.Name != "firewall" || h.Policy != hook.FailClosed {
			t.Errorf("%+v: NeedsBody=%v Name=%q Policy=%v", tc.cfg, h.NeedsBody, h.Name, h.Policy)
		}
	}
}

func TestMaxBytes(t *testing.T) {
	body := bytes.Repeat([]byte("x"), 100)
	for _, tc := range []struct {
		max  int64
		body []byte
		msg  string
	}{
		{100, body, ""},
		{99, body, "event larger than 99 bytes (max-bytes)"},
		{1, nil, ""},
	} {
		// The header's Content-Length is not trusted: the body is measured.
		_, msg, _ := verdict(t, mustNew(t, Config{MaxBytes: tc.max}), http.Header{"Content-Length": {"1"}}, tc.body)
		if msg != tc.msg {
			t.Errorf("max %d, %d bytes: %q, want %q", tc.max, len(tc.body), msg, tc.msg)
		}
	}
}

// A body that is not JSON: no path selects anything (not inverts that), and
// a schema rejects it.
func TestNonJSONBody(t *testing.T) {
	body := []byte(`not json {`)
	exists := Rule{ID: "e", Path: "$.a", Op: "exists"}
	allow := Rule{ID: "allow", Path: "$.source", Op: "equals", Value: json.RawMessage(`"aws.events"`), Not: true}
	if _, _, rejected := verdict(t, mustNew(t, Config{Rules: []Rule{exists}}), eventHeader(body), body); rejected {
		t.Errorf("exists held on a non-JSON body")
	}
	if _, msg, _ := verdict(t, mustNew(t, Config{Rules: []Rule{allow}}), eventHeader(body), body); msg != "rule allow matched" {
		t.Errorf("a negated allowlist rule let a non-JSON body through: %q", msg)
	}
	_, msg, _ := verdict(t, mustNew(t, Config{Schema: json.RawMessage(`true`)}), eventHeader(body), body)
	if msg != "schema: event body is not JSON" {
		t.Errorf("schema on a non-JSON body: %q", msg)
	}
	// Trailing data after a JSON value is not JSON either.
	_, msg, _ = verdict(t, mustNew(t, Config{Schema: json.RawMessage(`true`)}), eventHeader(nil), []byte(`{} {}`))
	if msg != "schema: event body is not JSON" {
		t.Errorf("schema on trailing data: %q", msg)
	}
}

func TestSchemaRejection(t *testing.T) {
	h := mustNew(t, Config{Schema: json.RawMessage(`{"type":"object","required":["httpMethod"],
		"properties":{"httpMethod":{"enum":["GET","POST"]},"items":{"items":{"properties":{"qty":{"maximum":10}}}}}}`)})
	body := []byte(sampleEvent)
	errType, msg, _ := verdict(t, h, eventHeader(body), body)
	if errType != ErrorType || msg != `schema: at "/items/1/qty": must be <= 10 (maximum)` {
		t.Errorf("got %s %q", errType, msg)
	}
	if strings.Contains(msg, "12") {
		t.Errorf("the message quotes the event's value: %q", msg)
	}
}

// Dry run lets everything through and logs what would have been rejected,
// with the request id and the rule id, never the payload.
func TestDryRun(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	h, err := New(Config{DryRun: true, Rules: []Rule{{ID: "no-curl", Path: "$.headers['User-Agent']", Op: "matches", Value: json.RawMessage(`"curl"`)}}}, log)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(sampleEvent)
	if _, _, rejected := verdict(t, h, eventHeader(body), body); rejected {
		t.Fatal("dry run rejected")
	}
	var line map[string]any
	if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
		t.Fatalf("log %q: %v", logs.String(), err)
	}
	if line["level"] != "INFO" || line["request_id"] != "req-1" || line["rule"] != "no-curl" || line["reason"] != "rule no-curl matched" {
		t.Errorf("dry-run log line: %s", logs.String())
	}
	if strings.Contains(logs.String(), "curl/8.5") || strings.Contains(logs.String(), "acme") {
		t.Errorf("the log holds payload: %s", logs.String())
	}
}

func TestBuildFromFileAndEnv(t *testing.T) {
	quietDefaultLog(t)
	dir := t.TempDir()
	schemaPath := filepath.Join(dir, "schema.json")
	if err := os.WriteFile(schemaPath, []byte(`{"required":["id"]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	section := json.RawMessage(`{
		"maxBytes": 1000,
		"schema": {"type": "object"},
		"rules": [{"id": "file-rule", "path": "$.admin", "op": "exists"}],
		"match": "any", "dryRun": false, "policy": "fail-open", "budget": "50ms"
	}`)
	h, err := Build(envMap(nil), section)
	if err != nil {
		t.Fatal(err)
	}
	if h.Policy != hook.FailOpen || h.Budget.String() != "50ms" || !h.NeedsBody {
		t.Errorf("file settings not applied: %+v", h)
	}
	if _, msg, _ := verdict(t, h, http.Header{}, []byte(`{"admin":1}`)); msg != "rule file-rule matched" {
		t.Errorf("file rule: %q", msg)
	}

	// The environment wins over the file.
	h, err = Build(envMap(map[string]string{
		"LRAP_FIREWALL_MAX_BYTES":   "1KiB",
		"LRAP_FIREWALL_RULES":       `[{"id":"env-rule","path":"$.root","op":"equals","value":true}]`,
		"LRAP_FIREWALL_SCHEMA_FILE": schemaPath,
		"LRAP_FIREWALL_MATCH":       "all",
		"LRAP_FIREWALL_DRY_RUN":     "TRUE",
		"LRAP_FIREWALL_POLICY":      "fail-closed",
	}), section)
	if err != nil {
		t.Fatal(err)
	}
	if h.Policy != hook.FailClosed {
		t.Errorf("LRAP_FIREWALL_POLICY not applied")
	}
	// Dry run: nothing is rejected, whatever matches.
	if _, _, rejected := verdict(t, h, http.Header{}, []byte(`{"root":true}`)); rejected {
		t.Errorf("LRAP_FIREWALL_DRY_RUN not applied")
	}
	h, _ = Build(envMap(map[string]string{
		"LRAP_FIREWALL_RULES":       `[{"id":"env-rule","path":"$.root","op":"equals","value":true}]`,
		"LRAP_FIREWALL_SCHEMA_FILE": schemaPath,
	}), section)
	if _, msg, _ := verdict(t, h, http.Header{}, []byte(`{"admin":1}`)); msg != `schema: at "": lacks required property "id" (required)` {
		t.Errorf("LRAP_FIREWALL_SCHEMA_FILE did not replace the inline schema: %q", msg)
	}
	if _, msg, _ := verdict(t, h, http.Header{}, []byte(`{"id":1,"admin":1,"root":true}`)); msg != "rule env-rule matched" {
		t.Errorf("LRAP_FIREWALL_RULES did not replace the file's rules: %q", msg)
	}
	// Empty variables are unset, as for lrap's own settings.
	if _, err := Build(envMap(map[string]string{"LRAP_FIREWALL_MATCH": ""}), nil); err != nil {
		t.Errorf("an empty variable was refused: %v", err)
	}
}

func envMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// Invalid configuration is refused at start; every message names the
// setting, and all problems are reported at once.
func TestBuildErrors(t *testing.T) {
	dir := t.TempDir()
	badSchema := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(badSchema, []byte(`{"type":"object","if":{},"unevaluatedProperties":false}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		env     map[string]string
		section string
		want    []string
	}{
		{"bad regex in env", map[string]string{"LRAP_FIREWALL_RULES": `[{"id":"r1","header":"X","op":"exists"},{"id":"r2","path":"$.q","op":"matches","value":"("}]`}, ``,
			[]string{`LRAP_FIREWALL_RULES: rules[1].value: rule "r2": bad regex "(": missing closing )`}},
		{"bad path in file", nil, `{"rules":[{"id":"a","path":"$.x","op":"exists"},{"id":"b","path":"$.a[","op":"exists"}]}`,
			[]string{`LRAP_CONFIG firewall.rules[1].path: rule "b": json path "$.a[": at offset 3: unclosed [`}},
		{"two descents", nil, `{"rules":[{"id":"a","path":"$..a..b","op":"exists"}]}`,
			[]string{`LRAP_CONFIG firewall.rules[0].path: rule "a": "$..a..b" has 2 recursive descents (..); at most one is allowed`}},
		{"rules not JSON", map[string]string{"LRAP_FIREWALL_RULES": `[{"id":`}, ``,
			[]string{`LRAP_FIREWALL_RULES: not a JSON array of rules`}},
		{"rules not an array", map[string]string{"LRAP_FIREWALL_RULES": `{"id":"a"}`}, ``,
			[]string{`LRAP_FIREWALL_RULES: not a JSON array of rules`}},
		{"unknown rule key", nil, `{"rules":[{"id":"a","path":"$.x","op":"exists","nott":true}]}`,
			[]string{`LRAP_CONFIG firewall.rules[0]: unknown key "nott" (accepted: id, path, header, op, value, not)`}},
		{"rule not an object", nil, `{"rules":[3]}`,
			[]string{`LRAP_CONFIG firewall.rules[0]: must be a JSON object, not 3`}},
		{"missing id", nil, `{"rules":[{"path":"$.x","op":"exists"}]}`,
			[]string{`LRAP_CONFIG firewall.rules[0].id: missing; every rule needs an id`}},
		{"bad id", nil, `{"rules":[{"id":"a b","path":"$.x","op":"exists"}]}`,
			[]string{`LRAP_CONFIG firewall.rules[0].id: rule "a b": "a b" has ' ' (accepted: letters, digits and . _ - : /)`}},
		{"duplicate id", nil, `{"rules":[{"id":"a","path":"$.x","op":"exists"},{"id":"a","header":"X","op":"exists"}]}`,
			[]string{`LRAP_CONFIG firewall.rules[1].id: rule "a": the same id as rule 0; ids must be unique`}},
		{"id not a string", nil, `{"rules":[{"id":7,"path":"$.x","op":"exists"}]}`,
			[]string{`LRAP_CONFIG firewall.rules[0].id: must be a string, not 7`}},
		{"bad op", nil, `{"rules":[{"id":"a","path":"$.x","op":"eq","value":1}]}`,
			[]string{`LRAP_CONFIG firewall.rules[0].op: rule "a": "eq" is not an operator (accepted: equals, matches, exists, lt, le, gt, ge)`}},
		{"path and header", nil, `{"rules":[{"id":"a","path":"$.x","header":"X","op":"exists"}]}`,
			[]string{`rules[0].path: rule "a": set path or header, not both`}},
		{"neither path nor header", nil, `{"rules":[{"id":"a","op":"exists"}]}`,
			[]string{`rules[0].path: rule "a": a rule needs a path (into the event body) or a header`}},
		{"bad header", nil, `{"rules":[{"id":"a","header":"X Y","op":"exists"}]}`,
			[]string{`rules[0].header: rule "a": "X Y" is not a header name`}},
		{"exists with value", nil, `{"rules":[{"id":"a","path":"$.x","op":"exists","value":true}]}`,
			[]string{`rules[0].value: rule "a": exists takes no value`}},
		{"missing value", nil, `{"rules":[{"id":"a","path":"$.x","op":"equals"}]}`,
			[]string{`rules[0].value: rule "a": equals needs a value`}},
		{"gt non-number", nil, `{"rules":[{"id":"a","path":"$.x","op":"gt","value":"5"}]}`,
			[]string{`rules[0].value: rule "a": gt needs a number, not string`}},
		{"matches non-string", nil, `{"rules":[{"id":"a","path":"$.x","op":"matches","value":5}]}`,
			[]string{`rules[0].value: rule "a": matches needs a regular expression string, not number`}},
		{"header equals non-string", nil, `{"rules":[{"id":"a","header":"X","op":"equals","value":5}]}`,
			[]string{`rules[0].value: rule "a": a header is compared as a string; value must be a string, not number`}},
		{"unknown section key", nil, `{"maxbytes":1}`,
			[]string{`LRAP_CONFIG firewall: unknown key "maxbytes" (accepted: maxBytes, schema, schemaFile, rules, match, dryRun, policy, budget)`}},
		{"section not an object", nil, `[1]`, []string{`LRAP_CONFIG firewall: must be a JSON object, not [1]`}},
		{"maxBytes type", nil, `{"maxBytes":"1MiB"}`, []string{`LRAP_CONFIG firewall.maxBytes="1MiB" is not valid (accepted: an integer number of bytes`}},
		{"maxBytes range", nil, `{"maxBytes":-1}`, []string{`LRAP_CONFIG firewall.maxBytes=-1 is not valid (accepted: a number of bytes from 0 to 209715200`}},
		{"max bytes env", map[string]string{"LRAP_FIREWALL_MAX_BYTES": "6MB"}, ``, []string{`LRAP_FIREWALL_MAX_BYTES="6MB" is not valid (accepted: a number of bytes from 0 to 209715200, optionally with a KiB or MiB suffix; 0 is no limit)`}},
		{"match env", map[string]string{"LRAP_FIREWALL_MATCH": "some"}, ``, []string{`LRAP_FIREWALL_MATCH="some" is not valid (accepted: any, all)`}},
		{"match file", nil, `{"match":"every"}`, []string{`LRAP_CONFIG firewall.match="every" is not valid (accepted: any, all)`}},
		{"policy env", map[string]string{"LRAP_FIREWALL_POLICY": "closed"}, ``, []string{`LRAP_FIREWALL_POLICY="closed" is not valid (accepted: fail-closed, fail-open)`}},
		{"dry run env", map[string]string{"LRAP_FIREWALL_DRY_RUN": "yes"}, ``, []string{`LRAP_FIREWALL_DRY_RUN="yes" is not valid (accepted: true or false)`}},
		{"dryRun file", nil, `{"dryRun":"true"}`, []string{`LRAP_CONFIG firewall.dryRun="true" is not valid (accepted: true or false)`}},
		{"budget file", nil, `{"budget":"fast"}`, []string{`LRAP_CONFIG firewall.budget="fast" is not valid`}},
		{"null value", nil, `{"policy":null}`, []string{`LRAP_CONFIG firewall.policy=null is not valid`}},
		{"schema env unreadable", map[string]string{"LRAP_FIREWALL_SCHEMA_FILE": filepath.Join(dir, "missing.json")}, ``,
			[]string{`LRAP_FIREWALL_SCHEMA_FILE="` + filepath.Join(dir, "missing.json") + `": cannot be read: open `}},
		{"schema env relative", map[string]string{"LRAP_FIREWALL_SCHEMA_FILE": "schema.json"}, ``,
			[]string{`LRAP_FIREWALL_SCHEMA_FILE="schema.json": not an absolute path (accepted: the absolute path of a JSON Schema file`}},
		{"schema file unsupported keyword", nil, `{"schemaFile":"` + badSchema + `"}`,
			[]string{`LRAP_CONFIG firewall.schemaFile="` + badSchema + `": at "#/unevaluatedProperties": keyword "unevaluatedProperties" is not supported`}},
		{"inline schema", nil, `{"schema":{"properties":{"a":{"pattern":"["}}}}`,
			[]string{`LRAP_CONFIG firewall.schema: at "#/properties/a/pattern": bad regex "[": missing closing ]`}},
		{"inline schema not a schema", nil, `{"schema":"draft"}`, []string{`LRAP_CONFIG firewall.schema="draft" is not valid (accepted: a JSON Schema object (or true/false))`}},
		{"schema and schemaFile", nil, `{"schema":{},"schemaFile":"/x.json"}`,
			[]string{`LRAP_CONFIG firewall.schema and LRAP_CONFIG firewall.schemaFile: set one, not both`}},
		{"several at once", map[string]string{"LRAP_FIREWALL_MATCH": "x", "LRAP_FIREWALL_POLICY": "y"}, `{"rules":[{"id":"a","path":"$[","op":"exists"}]}`,
			[]string{`LRAP_FIREWALL_MATCH="x"`, `LRAP_FIREWALL_POLICY="y"`, `LRAP_CONFIG firewall.rules[0].path`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Build(envMap(tc.env), json.RawMessage(tc.section))
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, config.ErrInvalid) {
				t.Errorf("error does not wrap config.ErrInvalid: %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error:\n%v\nwant it to contain:\n%s", err, w)
				}
			}
		})
	}
}

// New names fields by their JSON keys, without a variable or file.
func TestNewErrors(t *testing.T) {
	_, err := New(Config{Rules: []Rule{{ID: "x", Path: "$.a", Op: "matches", Value: json.RawMessage(`"a("`)}}}, nil)
	if err == nil || err.Error() != `firewall.rules[0].value: rule "x": bad regex "a(": missing closing )` {
		t.Errorf("New: %v", err)
	}
}

// The Settings list and the README's table cannot drift apart.
func TestReadmeListsEverySetting(t *testing.T) {
	raw, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	for _, s := range Settings {
		def := s.Default
		if !strings.Contains(def, " ") {
			def = "`" + def + "`"
		}
		row := "| `" + s.Name + "` | " + def + " | " + s.Accepted + " | " + s.Doc + " |"
		if !strings.Contains(readme, row+"\n") {
			t.Errorf("README.md lacks or has an outdated row for %s:\n%s", s.Name, row)
		}
	}
	for _, op := range Ops {
		if !strings.Contains(readme, "`"+op+"`") {
			t.Errorf("README.md does not document op %s", op)
		}
	}
}

// The worked example in README.md builds, and does what the README says.
func TestReadmeExample(t *testing.T) {
	raw, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(string(raw), "```json\n")
	block := func(after string) string {
		for i := 1; i < len(blocks); i++ {
			if strings.Contains(blocks[i-1][max(0, len(blocks[i-1])-200):], after) {
				return blocks[i][:strings.Index(blocks[i], "```")]
			}
		}
		t.Fatalf("no json block after %q", after)
		return ""
	}
	schemaPath := filepath.Join(t.TempDir(), "orders.schema.json")
	if err := os.WriteFile(schemaPath, []byte(block("`/opt/lrap/orders.schema.json`:")), 0o600); err != nil {
		t.Fatal(err)
	}
	var file map[string]json.RawMessage
	if err := json.Unmarshal([]byte(block("`/opt/lrap/config.json`, shipped")), &file); err != nil {
		t.Fatal(err)
	}
	section := strings.Replace(string(file["firewall"]), "/opt/lrap/orders.schema.json", schemaPath, 1)
	quietDefaultLog(t)
	env := envMap(map[string]string{"LRAP_FIREWALL_DRY_RUN": "false"})
	h, err := Build(env, json.RawMessage(section))
	if err != nil {
		t.Fatal(err)
	}
	header := eventHeader(nil)
	header.Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:eu-west-1:123456789012:function:orders")
	event := func(method, path string) []byte {
		return []byte(`{"httpMethod":"` + method + `","path":"` + path + `","headers":{"User-Agent":"Mozilla/5.0"},"body":null,"requestContext":{"requestId":"r-1"}}`)
	}
	for _, tc := range []struct {
		body []byte
		msg  string
	}{
		{event("GET", "/orders/1"), ""},
		{event("GET", "/admin/users"), "rule no-admin matched"},
		{event("DELETE", "/orders/1"), "rule methods matched"},
		{[]byte(`{"httpMethod":"GET","path":"/orders"}`), `schema: at "": lacks required property "requestContext" (required)`},
	} {
		if _, msg, _ := verdict(t, h, header, tc.body); msg != tc.msg {
			t.Errorf("%s: %q, want %q", tc.body, msg, tc.msg)
		}
	}
	header.Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:eu-west-1:123456789012:function:billing")
	if _, msg, _ := verdict(t, h, header, event("GET", "/orders/1")); msg != "rule orders-only matched" {
		t.Errorf("header rule: %q", msg)
	}
}

// quietDefaultLog discards what Build's hooks log (through slog.Default)
// for the rest of the test.
func quietDefaultLog(t *testing.T) {
	old := slog.Default()
	slog.SetDefault(slog.New(slog.DiscardHandler))
	t.Cleanup(func() { slog.SetDefault(old) })
}
