package jsonpath

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

const doc = `{
  "a": {"b": 1, "c": [10, 20, {"b": 2}]},
  "weird key": {"it's": true, "q\"k": "x", "dot.ted": 5},
  "list": [{"id": "x"}, {"id": "y"}, {"name": "z"}],
  "big": 12345678901234567890,
  "$ref": "r",
  "ünï": "u",
  "b": "top"
}`

func mustDecode(t testing.TB, s string) any {
	t.Helper()
	v, err := Decode([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestGet(t *testing.T) {
	for _, tc := range []struct {
		path string
		want string // JSON array of the matches; "null" for none
	}{
		{`$`, `[` + doc + `]`},
		{`$.a.b`, `[1]`},
		{`$['a']["b"]`, `[1]`},
		{`$.a.c[0]`, `[10]`},
		{`$.a.c[-1].b`, `[2]`},
		{`$.a.c[-4]`, `null`},
		{`$.a.c[3]`, `null`},
		{`$.a.c[*]`, `[10, 20, {"b": 2}]`},
		{`$.a.c.*`, `[10, 20, {"b": 2}]`},
		{`$.a.*`, `[1, [10, 20, {"b": 2}]]`},
		{`$['weird key']['it\'s']`, `[true]`},
		{`$["weird key"]["q\"k"]`, `["x"]`},
		{`$['weird key']['dot.ted']`, `[5]`},
		{`$['weird key'].dot`, `null`},
		{`$.list[*].id`, `["x", "y"]`},
		{`$.list..id`, `["x", "y"]`},
		{`$..b`, `["top", 1, 2]`},
		{`$..['b']`, `["top", 1, 2]`},
		{`$..[0]`, `[10, {"id": "x"}]`},
		{`$.a..*`, `[1, [10, 20, {"b": 2}], 10, 20, {"b": 2}, 2]`},
		{`$.big`, `[12345678901234567890]`},
		{`$.$ref`, `["r"]`},
		{`$.ünï`, `["u"]`},
		{`$['\u00fcn\u00ef']`, `["u"]`},
		{`$.missing`, `null`},
		{`$.a.b.c`, `null`},
		{`$.a[0]`, `null`},
		{`$.a.c.b`, `null`},
		{`$.a.b[*]`, `null`},
	} {
		t.Run(tc.path, func(t *testing.T) {
			p, err := Compile(tc.path)
			if err != nil {
				t.Fatal(err)
			}
			got := p.Get(mustDecode(t, doc))
			var want []any
			if tc.want != "null" {
				want = mustDecode(t, tc.want).([]any)
			}
			if !reflect.DeepEqual(got, want) {
				gb, _ := json.Marshal(got)
				t.Errorf("Get(%s) = %s, want %s", tc.path, gb, tc.want)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	for _, tc := range []struct {
		path   string
		offset int
		msg    string
	}{
		{``, 0, "empty path"},
		{`a.b`, 0, "must start with $"},
		{`$a`, 1, `unexpected 'a'; expected . or [`},
		{`$.`, 1, `"." must be followed by`},
		{`$..`, 1, `".." must be followed by`},
		{`$.a b`, 3, `unexpected ' '`},
		{`$.[0]`, 2, `use ['...']`},
		{`$.a[`, 3, "unclosed ["},
		{`$.a[0`, 3, "unclosed ["},
		{`$.a[01]`, 4, "leading zero"},
		{`$.a[-]`, 4, "no digits"},
		{`$.a[99999999999]`, 4, "out of range"},
		{`$.a[?(@.x)]`, 4, "filters, slices and unions are not supported"},
		{`$.a[1:2]`, 5, "expected ]"},
		{`$.a['x','y']`, 7, "expected ]"},
		{`$['abc`, 2, "unterminated quoted name"},
		{`$['a\q']`, 4, `unknown escape \q`},
		{`$['a\`, 4, "unterminated escape"},
		{`$['\u12']`, 3, "four hex digits"},
		{`$['\ud800']`, 3, "unpaired surrogate"},
		{"$['\xff']", 3, "invalid UTF-8"},
		{`$.a..`, 3, `".." must be followed by`},
	} {
		t.Run(tc.path, func(t *testing.T) {
			_, err := Compile(tc.path)
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Compile(%q) error = %v, want a *SyntaxError", tc.path, err)
			}
			if se.Offset != tc.offset || !strings.Contains(err.Error(), tc.msg) || !strings.Contains(err.Error(), "json path") {
				t.Errorf("Compile(%q) = %v (offset %d), want offset %d and %q", tc.path, err, se.Offset, tc.offset, tc.msg)
			}
		})
	}
}

func TestString(t *testing.T) {
	for in, want := range map[string]string{
		`$`:                  `$`,
		`$.a.b`:              `$.a.b`,
		`$['a']["b"]`:        `$.a.b`,
		`$.a.*`:              `$.a[*]`,
		`$..*`:               `$..*`,
		`$..[*]`:             `$..*`,
		`$..a..['b c'][0]`:   `$..a..['b c'][0]`,
		`$['it\'s']["q\"k"]`: `$['it\'s']['q"k']`,
		`$['a\\b']`:          `$['a\\b']`,
		`$['tab\there']`:     `$['tab\u0009here']`,
		`$['']`:              `$['']`,
		`$[-1]`:              `$[-1]`,
		`$['a.b']`:           `$['a.b']`,
	} {
		p, err := Compile(in)
		if err != nil {
			t.Fatalf("Compile(%q): %v", in, err)
		}
		if got := p.String(); got != want {
			t.Errorf("Compile(%q).String() = %q, want %q", in, got, want)
		}
		again, err := Compile(p.String())
		if err != nil || !reflect.DeepEqual(again, p) {
			t.Errorf("String() of %q does not compile back to the same path: %v", in, err)
		}
	}
}

func TestDescents(t *testing.T) {
	for expr, want := range map[string]int{`$`: 0, `$.a[*]`: 0, `$..a`: 1, `$..a.b..c`: 2, `$['..']`: 0, `$..*..[0]`: 2} {
		if got := MustCompile(expr).Descents(); got != want {
			t.Errorf("Descents(%s) = %d, want %d", expr, got, want)
		}
	}
}

func TestReplace(t *testing.T) {
	for _, tc := range []struct {
		path string
		n    int
		want string
	}{
		{`$`, 0, doc},
		{`$.a.b`, 1, `{"a":{"b":"X","c":[10,20,{"b":2}]}}`},
		{`$.a.c[1]`, 1, `{"a":{"b":1,"c":[10,"X",{"b":2}]}}`},
		{`$.a.c[-1]`, 1, `{"a":{"b":1,"c":[10,20,"X"]}}`},
		{`$..b`, 2, `{"a":{"b":"X","c":[10,20,{"b":"X"}]}}`},
		{`$.a.c[*]`, 3, `{"a":{"b":1,"c":["X","X","X"]}}`},
		{`$.nope`, 0, `{"a":{"b":1,"c":[10,20,{"b":2}]}}`},
	} {
		t.Run(tc.path, func(t *testing.T) {
			src := `{"a":{"b":1,"c":[10,20,{"b":2}]}}`
			if tc.path == `$` {
				src = doc
			}
			d := mustDecode(t, src)
			n := MustCompile(tc.path).Replace(d, func(any) any { return "X" })
			if n != tc.n {
				t.Errorf("Replace(%s) = %d, want %d", tc.path, n, tc.n)
			}
			if want := mustDecode(t, tc.want); !reflect.DeepEqual(d, want) {
				got, _ := json.Marshal(d)
				t.Errorf("after Replace(%s): %s, want %s", tc.path, got, tc.want)
			}
		})
	}
}

// Nested matches are replaced innermost first, each exactly once, so fn sees
// the outer value with its inner matches already replaced.
func TestReplaceNestedDeepestFirst(t *testing.T) {
	d := mustDecode(t, `{"a":{"a":{"a":1}}}`)
	var seen []string
	n := MustCompile(`$..a`).Replace(d, func(v any) any {
		b, _ := json.Marshal(v)
		seen = append(seen, string(b))
		return "X"
	})
	if n != 3 {
		t.Errorf("Replace = %d, want 3", n)
	}
	if want := []string{`1`, `{"a":"X"}`, `{"a":"X"}`}; !reflect.DeepEqual(seen, want) {
		t.Errorf("fn saw %v, want %v", seen, want)
	}
	if want := mustDecode(t, `{"a":"X"}`); !reflect.DeepEqual(d, want) {
		t.Errorf("result %v", d)
	}
}

func TestDecode(t *testing.T) {
	v, err := Decode([]byte(` {"n": 12345678901234567890.5e3} `))
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := v.(map[string]any)["n"].(json.Number); !ok || n.String() != "12345678901234567890.5e3" {
		t.Errorf("number not kept exactly: %#v", v)
	}
	for _, bad := range []string{``, ` `, `{`, `{} {}`, `1 2`, `{}]`, `nul`, `"a" x`} {
		if _, err := Decode([]byte(bad)); err == nil {
			t.Errorf("Decode(%q) succeeded", bad)
		}
	}
	if _, err := Decode([]byte(`[] x`)); !errors.Is(err, ErrTrailingData) {
		t.Errorf("trailing data error = %v", err)
	}
}

// FuzzCompile: Compile never panics; a compiled path prints to a form that
// compiles back to the same path, and evaluating it on a document never
// panics.
func FuzzCompile(f *testing.F) {
	for _, s := range []string{
		`$`, `$.a`, `$.a.b[0]`, `$['a b']["c"]`, `$..x`, `$..*`, `$[*]`, `$.*`,
		`$[-1]`, `$['\u00e9\n']`, `$['\ud83d\ude00']`, `$.a[`, `$..`, `$['`, `$[01]`, `$.é`, `$[?(@)]`,
	} {
		f.Add(s)
	}
	d, _ := Decode([]byte(doc))
	f.Fuzz(func(t *testing.T, expr string) {
		p, err := Compile(expr)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.Offset < 0 || se.Offset > len(expr) {
				t.Fatalf("Compile(%q): bad error %v", expr, err)
			}
			return
		}
		again, err := Compile(p.String())
		if err != nil || !reflect.DeepEqual(again, p) {
			t.Fatalf("Compile(%q).String() = %q does not round-trip: %v", expr, p.String(), err)
		}
		p.Get(d)
		p.Replace(mustDecode(t, doc), func(v any) any { return v })
	})
}
