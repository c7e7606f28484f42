package builtin

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// FuzzYAML: no input panics or hangs the parser; what it accepts is valid
// JSON; what it refuses is refused with a line number.
//
//	go test -run '^$' -fuzz FuzzYAML ./internal/builtin
func FuzzYAML(f *testing.F) {
	for _, seed := range []string{
		"hooks: [firewall, audit]\nfirewall:\n  rules:\n    - id: r1\n      path: $.a\n      op: exists\n",
		"a:\n- b\n- c: d\n  e: [1, {f: g}]\n",
		"- - x\n  - 'y''s'\n- \"\\u00e9\\ud83d\\ude00\"\n",
		"---\nn: ~\nb: TRUE\ni: 0x1F\no: 0o7\nf: -1.5e3\n",
		"a: &x 1\nb: *x\n",
		"a: |\n  text\n",
		"? k\n: v\n",
		"a: [1,\n 2]\n",
		"\t- x",
		"k: \"unterminated",
		`{"json": ["on", "one", "line"], "n": 1}`,
		"a: b: c",
		"",
		"# only a comment",
		strings.Repeat("- ", 80) + "x",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		out, err := yamlToJSON(src)
		if err != nil {
			var ye *yamlError
			if !errors.As(err, &ye) || ye.line < 1 {
				t.Fatalf("refusal without a line number: %v", err)
			}
			return
		}
		if !json.Valid(out) {
			t.Fatalf("accepted %q as invalid JSON %q", src, out)
		}
	})
}

// FuzzHookList: whatever LRAP_HOOKS holds, the list is either refused or
// made of known, distinct names.
//
//	go test -run '^$' -fuzz FuzzHookList ./internal/builtin
func FuzzHookList(f *testing.F) {
	for _, seed := range []string{"firewall,redact,audit", "audit, metrics", "none", "audit,,x", "audit,audit", " , ", "Firewall", "audit\x00"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, v string) {
		list, err := parseHookList(v)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		seen := map[string]bool{}
		for _, name := range list {
			if lookup(name) == nil || seen[name] {
				t.Fatalf("%q accepted with unknown or repeated %q", v, name)
			}
			seen[name] = true
		}
	})
}
