package builtin

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// canonical re-encodes JSON so that documents compare by value.
func canonical(t *testing.T, doc []byte) string {
	t.Helper()
	var v any
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, doc)
	}
	out, _ := json.Marshal(v)
	return string(out)
}

func TestYAMLSubset(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, json string
	}{
		{"mapping", "a: 1\nb: two\n", `{"a":1,"b":"two"}`},
		{"nested mapping", "a:\n  b:\n    c: x\n  d: y\ne: z", `{"a":{"b":{"c":"x"},"d":"y"},"e":"z"}`},
		{"sequence", "- a\n- b\n", `["a","b"]`},
		{"sequence under key, indented", "hooks:\n  - firewall\n  - audit\n", `{"hooks":["firewall","audit"]}`},
		{"sequence under key, not indented", "hooks:\n- firewall\n- audit\nnext: 1\n", `{"hooks":["firewall","audit"],"next":1}`},
		{"mappings in a sequence", "rules:\n  - id: r1\n    path: $.a\n  -   id: r2\n      op: exists\n",
			`{"rules":[{"id":"r1","path":"$.a"},{"id":"r2","op":"exists"}]}`},
		{"sequence in a sequence", "- - a\n  - b\n- c", `[["a","b"],"c"]`},
		{"item on the next line", "-\n  a: 1\n-\n", `[{"a":1},null]`},
		{"flow", "a: [1, two, \"three\", 'four', [5], {k: v}]\nb: {x: 1, \"y z\": [], w: {}}\nc: []",
			`{"a":[1,"two","three","four",[5],{"k":"v"}],"b":{"x":1,"y z":[],"w":{}},"c":[]}`},
		{"flow trailing comma", "a: [x, y, ]", `{"a":["x","y"]}`},
		{"json on one line", `{"hooks": ["audit"], "audit": {"payloads": true}}`, `{"hooks":["audit"],"audit":{"payloads":true}}`},
		{"core schema", "n: null\nt: ~\nb1: true\nb2: False\ni: -42\np: +7\no: 0o17\nh: 0xff\nf: 2.5\ne: 1e3\nd: .5\nz: 007\ns: yes\nv: 1.2.3\nu: 1_000",
			`{"n":null,"t":null,"b1":true,"b2":false,"i":-42,"p":7,"o":15,"h":255,"f":2.5,"e":1000,"d":0.5,"z":7,"s":"yes","v":"1.2.3","u":"1_000"}`},
		{"empty value", "a:\nb: 1", `{"a":null,"b":1}`},
		{"comments", "# head\na: 1 # trailing\n  # indented comment\nb: 'x # not a comment' # comment\nc: x#y\nd: \"q\" #c\n", `{"a":1,"b":"x # not a comment","c":"x#y","d":"q"}`},
		{"quoted", `a: 'it''s'` + "\n" + `b: "tab\there \"q\" \\ \u00e9 \x41 \U0001F600 \ud83d\ude00"` + "\n" + `"key: with colon": 1`,
			`{"a":"it's","b":"tab\there \"q\" \\ é A 😀 😀","key: with colon":1}`},
		{"plain with colons and dashes", "url: http://example.com:80/x\nneg: -x\nre: ^[a-z]+$\n", `{"url":"http://example.com:80/x","neg":"-x","re":"^[a-z]+$"}`},
		{"document start", "---\na: 1", `{"a":1}`},
		{"crlf", "a: 1\r\nb:\r\n  - x\r\n", `{"a":1,"b":["x"]}`},
		{"indented document", "  a: 1\n  b: 2", `{"a":1,"b":2}`},
		{"scalar document", "hello", `"hello"`},
		{"empty", "# nothing\n\n", `null`},
		{"key with spaces", "my key: my value", `{"my key":"my value"}`},
		{"escapes in output", "a: \"line\\nbreak\\u0001\"", `{"a":"line\nbreak\u0001"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := yamlToJSON([]byte(tc.yaml))
			if err != nil {
				t.Fatalf("refused: %v\n%s", err, tc.yaml)
			}
			if g, w := canonical(t, got), canonical(t, []byte(tc.json)); g != w {
				t.Errorf("got  %s\nwant %s", g, w)
			}
		})
	}
}

// Everything outside the subset is refused with its line, not guessed at.
func TestYAMLRefusals(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"anchor", "a: 1\nb: &x 2", "line 2: anchors"},
		{"alias", "a: 1\nb: *x", "line 2: aliases"},
		{"anchor on key", "&a k: v", "line 1: anchors"},
		{"tag", "a: !!str 1", "line 1: tags"},
		{"literal block", "a: |\n  text", "line 1: block scalars"},
		{"folded block", "a: >\n  text", "line 1: block scalars"},
		{"directive", "%YAML 1.2\n---\na: 1", "line 1: directives"},
		{"two documents", "a: 1\n---\nb: 2", "line 2: more than one document"},
		{"document end", "a: 1\n...", "line 2: document end"},
		{"complex key", "? a\n: b", "line 1: complex keys"},
		{"tab indentation", "a:\n\tb: 1", "line 2: tab in indentation"},
		{"duplicate key", "a: 1\nb: 2\na: 3", `line 3: duplicate key "a" (first on line 1)`},
		{"duplicate flow key", "a: {x: 1, x: 2}", `line 1: duplicate key "x"`},
		{"multi-line plain", "a: one\n  two", "line 2: unexpected indentation"},
		{"multi-line quoted", "a: \"one\n  two\"", "line 1: quoted value not closed"},
		{"multi-line flow", "a: [1,\n  2]", "line 1: '[' not closed on its line"},
		{"bad indentation", "a:\n    b: 1\n  c: 2", "line 3: unexpected indentation"},
		{"sequence in mapping", "a: 1\n- b", "line 2: a sequence entry"},
		{"mapping in value", "a: b: c", "line 1: a mapping is not allowed here"},
		{"dash value", "a: - b", "line 1: unexpected '-'"},
		{"no space after colon", "a: 1\nb:2", "line 2: expected key: value"},
		{"junk after quoted", "a: \"x\" y", "line 1: unexpected \"y\" after the value"},
		{"junk after flow", "a: [x] y", "line 1: unexpected \"y\" after the value"},
		{"unknown escape", `a: "\q"`, `line 1: unknown escape \q`},
		{"lone surrogate", `a: "\ud800"`, "line 1: escape"},
		{"infinity", "a: .inf", "line 1: number \".inf\": infinity and NaN"},
		{"int overflow", "a: 99999999999999999999", "line 1: number"},
		{"invalid utf-8", "a: 1\nb: \xff", "line 2: not valid UTF-8"},
		{"reserved", "a: @x", "line 1: a plain value cannot start with '@'"},
		{"empty key", ": v", "line 1: empty key"},
		{"empty flow entry", "a: [x, , y]", "line 1: empty entry"},
		{"flow key without colon", "a: {x}", "line 1: expected ':'"},
		{"content after document", "a:\n  b: 1\nc", "line 3: expected key: value"},
		{"too deep", strings.Repeat("[", 100) + strings.Repeat("]", 100), "nested deeper than 64"},
		{"too deep blocks", func() string {
			var b strings.Builder
			for i := range 70 {
				b.WriteString(strings.Repeat(" ", i) + "k:\n")
			}
			return b.String()
		}(), "nested deeper than 64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := yamlToJSON([]byte(tc.yaml))
			if err == nil {
				t.Fatalf("accepted as %s", got)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

// The same config written in YAML and in JSON is the same document.
func TestYAMLMatchesJSONConfig(t *testing.T) {
	yaml := `# lrap config
hooks: [firewall, redact, audit]
firewall:
  maxBytes: 262144
  rules:
    - id: no-sql
      path: $.query
      op: matches
      value: "(?i)drop\\s+table"
    - id: admin-header
      header: X-Admin
      op: exists
redact:
  paths: ["$.card", "$..password"]
audit:
  payloads: false
`
	want := `{"hooks":["firewall","redact","audit"],"firewall":{"maxBytes":262144,"rules":[{"id":"no-sql","path":"$.query","op":"matches","value":"(?i)drop\\s+table"},{"id":"admin-header","header":"X-Admin","op":"exists"}]},"redact":{"paths":["$.card","$..password"]},"audit":{"payloads":false}}`
	got, err := yamlToJSON([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	if g, w := canonical(t, got), canonical(t, []byte(want)); g != w {
		t.Errorf("got  %s\nwant %s", g, w)
	}
}
