package firewall

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/lrap/lrap/hook"
	"github.com/lrap/lrap/internal/jsonpath"
)

// FuzzRules: any rule set either is refused at build or evaluates without
// panicking on any body and header, and gives the same verdict twice.
func FuzzRules(f *testing.F) {
	for _, seed := range []struct{ rules, body, header string }{
		{`[{"id":"a","path":"$.a","op":"equals","value":1}]`, `{"a":1}`, ``},
		{`[{"id":"a","path":"$..b","op":"matches","value":"^x"},{"id":"b","header":"X-H","op":"exists","not":true}]`, `{"b":["x",{"b":"xy"}]}`, `v`},
		{`[{"id":"a","path":"$.n[*]","op":"gt","value":1e3}]`, `{"n":[1,2e4]}`, ``},
		{`[{"id":"a","header":"X-H","op":"le","value":-1.5}]`, `x`, `-2`},
		{`[{"id":"a","path":"$['k'][0]","op":"equals","value":{"x":[null,true]}}]`, `{"k":[{"x":[null,true]}]}`, ``},
		{`[{"id":"a","path":"$[","op":"exists"}]`, `{}`, ``},
		{`[{"id":"a","path":"$.a","op":"matches","value":"("}]`, `{}`, ``},
		{`{"id":"a"}`, ``, ``},
	} {
		f.Add(seed.rules, []byte(seed.body), seed.header, false)
		f.Add(seed.rules, []byte(seed.body), seed.header, true)
	}
	f.Fuzz(func(t *testing.T, rules string, body []byte, header string, all bool) {
		parsed, errs := parseRules([]byte(rules), "rules", plainNames.rules)
		if len(errs) > 0 {
			return
		}
		cfg := Config{Rules: parsed}
		if all {
			cfg.Match = "all"
		}
		h, err := New(cfg, nil)
		if err != nil {
			return
		}
		run := func() hook.Verdict {
			msg := &hook.Message{Header: http.Header{"X-H": {header}}, Body: body}
			return h.OnEvent(context.Background(), &hook.Invocation{}, msg)
		}
		if a, b := run(), run(); a != b {
			t.Fatalf("verdicts differ: %v / %v", a, b)
		}
	})
}

// FuzzSchema: any schema either is refused or validates any instance
// without panicking, deterministically, within the step limit.
func FuzzSchema(f *testing.F) {
	for _, seed := range []struct{ schema, instance string }{
		{`{"type":"object","required":["a"],"properties":{"a":{"type":"integer","minimum":0}}}`, `{"a":-1}`},
		{`{"$defs":{"n":{"anyOf":[{"type":"null"},{"items":{"$ref":"#/$defs/n"}}]}},"$ref":"#/$defs/n"}`, `[[[null]],[]]`},
		{`{"oneOf":[{"multipleOf":0.1},{"pattern":"^a"}],"uniqueItems":true}`, `0.3`},
		{`{"patternProperties":{"^x":{"maxLength":2}},"additionalProperties":false}`, `{"xa":"héé","y":1}`},
		{`{"if":{"const":1},"then":false,"else":{"not":{"enum":[2,"2"]}}}`, `2.0`},
		{`{"prefixItems":[true,false],"contains":{"type":"string"},"maxContains":1}`, `["a","b"]`},
		{`{"$ref":"#"}`, `1`},
		{`{"dependentRequired":{"a":["b"]},"propertyNames":{"minLength":1}}`, `{"a":1,"":2}`},
	} {
		f.Add([]byte(seed.schema), []byte(seed.instance))
	}
	f.Fuzz(func(t *testing.T, schema, instance []byte) {
		s, err := CompileSchema(schema)
		if err != nil {
			return
		}
		doc, err := jsonpath.Decode(instance)
		if err != nil {
			return
		}
		a, b := s.validateWithin(doc, 10000), s.validateWithin(doc, 10000)
		if (a == nil) != (b == nil) || a != nil && *a != *b {
			t.Fatalf("validation is not deterministic: %v / %v", a, b)
		}
		if a != nil {
			if _, err := json.Marshal(a.Pointer); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// A schema that branches exponentially with the event's depth is stopped by
// the step limit instead of running for hours, and the event is rejected.
func TestSchemaStepLimit(t *testing.T) {
	s, err := CompileSchema([]byte(`{"$defs":{"n":{"anyOf":[{"items":{"$ref":"#/$defs/n"}},{"items":{"$ref":"#/$defs/n"}}],"not":{"const":1}}},"$ref":"#/$defs/n"}`))
	if err != nil {
		t.Fatal(err)
	}
	deep := []byte{}
	for range 40 {
		deep = append(deep, '[')
	}
	deep = append(deep, '1')
	for range 40 {
		deep = append(deep, ']')
	}
	doc, err := jsonpath.Decode(deep)
	if err != nil {
		t.Fatal(err)
	}
	v := s.validateWithin(doc, 100000)
	if v == nil || v.Msg != "validation stopped after 100000 steps; the schema branches too much for this event" {
		t.Errorf("got %v", v)
	}
}

// uniqueItems is linear: a long array of equal-looking objects is checked
// by canonical keys, and keys agree with jsonEqual.
func TestCanonicalAgreesWithEqual(t *testing.T) {
	values := []string{`1`, `1.0`, `-0`, `0`, `"1"`, `true`, `null`, `[1,2]`, `[2,1]`, `{"a":1,"b":[1]}`, `{"b":[1.0],"a":1}`,
		`{"a":"1"}`, `["a1:"]`, `["a","1:"]`, `{}`, `[]`, `""`, `1e2`, `100`}
	for _, x := range values {
		for _, y := range values {
			a, _ := jsonpath.Decode([]byte(x))
			b, _ := jsonpath.Decode([]byte(y))
			if eq, same := jsonEqual(a, b), string(canonical(nil, a)) == string(canonical(nil, b)); eq != same {
				t.Errorf("%s vs %s: jsonEqual %v, canonical keys equal %v", x, y, eq, same)
			}
		}
	}
}
