package firewall

import (
	"errors"
	"strings"
	"testing"

	"github.com/lrap/lrap/internal/jsonpath"
)

// Each keyword of the supported subset, with an instance that passes and
// one that fails. want is "" for valid, else the exact violation.
func TestSchemaKeywords(t *testing.T) {
	for _, tc := range []struct {
		name, schema, instance, want string
	}{
		{"true schema", `true`, `{"a":1}`, ``},
		{"false schema", `false`, `1`, `at "": no value is allowed here (false schema at #)`},
		{"empty schema", `{}`, `[1,"x",null]`, ``},

		{"type string", `{"type":"string"}`, `"x"`, ``},
		{"type string/bad", `{"type":"string"}`, `1`, `at "": must be string, not number (type)`},
		{"type null", `{"type":"null"}`, `null`, ``},
		{"type boolean", `{"type":"boolean"}`, `null`, `at "": must be boolean, not null (type)`},
		{"type object", `{"type":"object"}`, `[]`, `at "": must be object, not array (type)`},
		{"type array", `{"type":"array"}`, `[]`, ``},
		{"type number", `{"type":"number"}`, `1.5`, ``},
		{"type integer", `{"type":"integer"}`, `3`, ``},
		{"type integer 1.0", `{"type":"integer"}`, `1.0`, ``},
		{"type integer 1e2", `{"type":"integer"}`, `1e2`, ``},
		{"type integer/bad", `{"type":"integer"}`, `1.5`, `at "": must be integer, not number (type)`},
		{"type list", `{"type":["string","null"]}`, `null`, ``},
		{"type list/bad", `{"type":["string","null"]}`, `true`, `at "": must be one of null, string, not boolean (type)`},

		{"const", `{"const":{"a":[1,2]}}`, `{"a":[1.0,2]}`, ``},
		{"const/bad", `{"const":"x"}`, `"y"`, `at "": is not the value required by const`},
		{"enum", `{"enum":["GET","POST",1]}`, `1.00`, ``},
		{"enum/bad", `{"enum":["GET","POST"]}`, `"DELETE"`, `at "": is not one of the 2 values allowed by enum`},
		{"enum type-strict", `{"enum":[1]}`, `"1"`, `at "": is not one of the 1 values allowed by enum`},

		{"minimum", `{"minimum":5}`, `5`, ``},
		{"minimum/bad", `{"minimum":5}`, `4.99`, `at "": must be >= 5 (minimum)`},
		{"maximum/bad", `{"maximum":5}`, `5.01`, `at "": must be <= 5 (maximum)`},
		{"exclusiveMinimum/bad", `{"exclusiveMinimum":5}`, `5`, `at "": must be > 5 (exclusiveMinimum)`},
		{"exclusiveMaximum/bad", `{"exclusiveMaximum":5}`, `5`, `at "": must be < 5 (exclusiveMaximum)`},
		{"exclusiveMaximum", `{"exclusiveMaximum":5}`, `4.999`, ``},
		{"numeric on a string", `{"minimum":5}`, `"1"`, ``},
		{"huge number", `{"maximum":1e300}`, `1e400`, `at "": must be <= 1e300 (maximum)`},
		{"multipleOf exact", `{"multipleOf":0.1}`, `0.3`, ``},
		{"multipleOf int", `{"multipleOf":3}`, `12`, ``},
		{"multipleOf/bad", `{"multipleOf":0.1}`, `0.35`, `at "": must be a multiple of 0.1 (multipleOf)`},
		{"multipleOf huge exponent", `{"multipleOf":2}`, `1e999999999`, `at "": must be a multiple of 2 (multipleOf)`},

		{"minLength runes", `{"minLength":3}`, `"héé"`, ``},
		{"minLength/bad", `{"minLength":3}`, `"hé"`, `at "": must be at least 3 characters long (minLength)`},
		{"maxLength runes", `{"maxLength":2}`, `"éé"`, ``},
		{"maxLength/bad", `{"maxLength":2}`, `"abc"`, `at "": must be at most 2 characters long (maxLength)`},
		{"pattern unanchored", `{"pattern":"b+"}`, `"abbc"`, ``},
		{"pattern/bad", `{"pattern":"^[a-z]+$"}`, `"ab1"`, `at "": does not match pattern "^[a-z]+$" (pattern)`},

		{"items", `{"items":{"type":"integer"}}`, `[1,2,3]`, ``},
		{"items/bad", `{"items":{"type":"integer"}}`, `[1,"2",3]`, `at "/1": must be integer, not string (type)`},
		{"prefixItems", `{"prefixItems":[{"type":"string"},{"type":"integer"}],"items":false}`, `["a",1]`, ``},
		{"prefixItems/bad", `{"prefixItems":[{"type":"string"},{"type":"integer"}]}`, `["a","b"]`, `at "/1": must be integer, not string (type)`},
		{"prefixItems then items false", `{"prefixItems":[{"type":"string"}],"items":false}`, `["a","b"]`, `at "/1": no value is allowed here (false schema at #/items)`},
		{"minItems/bad", `{"minItems":2}`, `[1]`, `at "": must have at least 2 items (minItems)`},
		{"maxItems/bad", `{"maxItems":1}`, `[1,2]`, `at "": must have at most 1 items (maxItems)`},
		{"uniqueItems", `{"uniqueItems":true}`, `[1,"1",[1],{"a":1},{"a":2},true,null]`, ``},
		{"uniqueItems numbers", `{"uniqueItems":true}`, `[1,2,1.0]`, `at "": items 0 and 2 are equal (uniqueItems)`},
		{"uniqueItems objects", `{"uniqueItems":true}`, `[{"a":1,"b":2},{"b":2,"a":1}]`, `at "": items 0 and 1 are equal (uniqueItems)`},
		{"contains", `{"contains":{"const":2}}`, `[1,2]`, ``},
		{"contains/bad", `{"contains":{"const":2}}`, `[1,3]`, `at "": must contain at least 1 items matching contains (minContains), has 0`},
		{"maxContains/bad", `{"contains":{"const":2},"maxContains":1}`, `[2,2]`, `at "": must contain at most 1 items matching contains (maxContains), has 2`},
		{"minContains 0", `{"contains":{"const":2},"minContains":0}`, `[]`, ``},

		{"properties", `{"properties":{"a":{"type":"string"}}}`, `{"a":"x","b":1}`, ``},
		{"properties/bad", `{"properties":{"a":{"type":"string"}}}`, `{"a":1}`, `at "/a": must be string, not number (type)`},
		{"nested pointer escapes", `{"properties":{"a/b":{"properties":{"c~d":{"type":"null"}}}}}`, `{"a/b":{"c~d":1}}`, `at "/a~1b/c~0d": must be null, not number (type)`},
		{"required/bad", `{"required":["a","b"]}`, `{"a":1}`, `at "": lacks required property "b" (required)`},
		{"required ignores non-objects", `{"required":["a"]}`, `"x"`, ``},
		{"additionalProperties false", `{"properties":{"a":{}},"additionalProperties":false}`, `{"a":1}`, ``},
		{"additionalProperties false/bad", `{"properties":{"a":{}},"additionalProperties":false}`, `{"a":1,"z":2,"c":3}`, `at "/c": property is not allowed (additionalProperties)`},
		{"additionalProperties schema/bad", `{"additionalProperties":{"type":"integer"}}`, `{"a":1,"b":"x"}`, `at "/b": must be integer, not string (type)`},
		{"patternProperties", `{"patternProperties":{"^x-":{"type":"string"}},"additionalProperties":false}`, `{"x-a":"1"}`, ``},
		{"patternProperties/bad", `{"patternProperties":{"^x-":{"type":"string"}}}`, `{"x-a":1}`, `at "/x-a": must be string, not number (type)`},
		{"patternProperties then additional/bad", `{"patternProperties":{"^x-":{}},"additionalProperties":false}`, `{"x-a":1,"y":2}`, `at "/y": property is not allowed (additionalProperties)`},
		{"propertyNames/bad", `{"propertyNames":{"maxLength":3}}`, `{"abcd":1}`, `at "/abcd": property name fails propertyNames: must be at most 3 characters long (maxLength)`},
		{"dependentRequired/bad", `{"dependentRequired":{"card":["cvv"]}}`, `{"card":1}`, `at "": has "card", so it needs "cvv" (dependentRequired)`},
		{"minProperties/bad", `{"minProperties":2}`, `{"a":1}`, `at "": must have at least 2 properties (minProperties)`},
		{"maxProperties/bad", `{"maxProperties":1}`, `{"a":1,"b":2}`, `at "": must have at most 1 properties (maxProperties)`},

		{"allOf/bad", `{"allOf":[{"type":"object"},{"required":["a"]}]}`, `{}`, `at "": lacks required property "a" (required)`},
		{"anyOf", `{"anyOf":[{"type":"string"},{"type":"integer"}]}`, `1`, ``},
		{"anyOf/bad", `{"anyOf":[{"type":"string"},{"type":"integer"}]}`, `1.5`, `at "": matches none of the 2 schemas in anyOf`},
		{"oneOf", `{"oneOf":[{"type":"string"},{"type":"integer"}]}`, `"x"`, ``},
		{"oneOf none", `{"oneOf":[{"type":"string"},{"type":"integer"}]}`, `null`, `at "": matches none of the 2 schemas in oneOf`},
		{"oneOf two", `{"oneOf":[{"type":"number"},{"type":"integer"}]}`, `1`, `at "": matches oneOf schemas 0 and 1; exactly one is allowed (oneOf)`},
		{"not/bad", `{"not":{"type":"null"}}`, `null`, `at "": matches the schema in not (not)`},
		{"if then", `{"if":{"properties":{"k":{"const":"card"}}},"then":{"required":["n"]},"else":{"required":["iban"]}}`, `{"k":"card","n":1}`, ``},
		{"if then/bad", `{"if":{"properties":{"k":{"const":"card"}}},"then":{"required":["n"]},"else":{"required":["iban"]}}`, `{"k":"card"}`, `at "": lacks required property "n" (required)`},
		{"if else/bad", `{"if":{"properties":{"k":{"const":"card"}}},"then":{"required":["n"]},"else":{"required":["iban"]}}`, `{"k":"sepa"}`, `at "": lacks required property "iban" (required)`},

		{"$ref", `{"$defs":{"id":{"type":"string","minLength":1}},"properties":{"a":{"$ref":"#/$defs/id"}}}`, `{"a":"x"}`, ``},
		{"$ref/bad", `{"$defs":{"id":{"type":"string","minLength":1}},"properties":{"a":{"$ref":"#/$defs/id"}}}`, `{"a":""}`, `at "/a": must be at least 1 characters long (minLength)`},
		{"$ref with siblings", `{"$defs":{"s":{"type":"string"}},"$ref":"#/$defs/s","maxLength":1}`, `"ab"`, `at "": must be at most 1 characters long (maxLength)`},
		{"$ref recursive", `{"type":"object","properties":{"child":{"$ref":"#"},"v":{"type":"integer"}}}`, `{"child":{"child":{"v":"x"}}}`, `at "/child/child/v": must be integer, not string (type)`},
		{"$ref escaped name", `{"$defs":{"a/b":{"const":1}},"$ref":"#/$defs/a~1b"}`, `1`, ``},
		{"$ref nested defs", `{"$defs":{"a":{"$defs":{"b":{"const":1}}}},"$ref":"#/$defs/a/$defs/b"}`, `2`, `at "": is not the value required by const`},
		{"annotations", `{"$schema":"https://json-schema.org/draft/2020-12/schema","$id":"https://x/y","title":"t","description":"d","format":"email","examples":[1],"default":1,"x-owner":"team"}`, `"not an email"`, ``},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := CompileSchema([]byte(tc.schema))
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			inst, err := jsonpath.Decode([]byte(tc.instance))
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if v := s.Validate(inst); v != nil {
				got = v.Error()
			}
			if got != tc.want {
				t.Errorf("Validate(%s) against %s\n got: %s\nwant: %s", tc.instance, tc.schema, got, tc.want)
			}
		})
	}
}

// The violation reported is the same every time, though Go randomises map
// order: several bad members report the smallest key.
func TestSchemaViolationIsDeterministic(t *testing.T) {
	s, err := CompileSchema([]byte(`{"additionalProperties":{"type":"integer"}}`))
	if err != nil {
		t.Fatal(err)
	}
	inst, _ := jsonpath.Decode([]byte(`{"k":"x","c":"x","q":"x","a":1,"d":"x","z":"x","e":"x"}`))
	for range 50 {
		if v := s.Validate(inst); v == nil || v.Pointer != "/c" {
			t.Fatalf("violation %v, want the one at /c", v)
		}
	}
}

// A pointer built from hostile property names is bounded.
func TestSchemaPointerBounded(t *testing.T) {
	s, _ := CompileSchema([]byte(`{"additionalProperties":false}`))
	key := strings.Repeat("é", 300)
	inst, _ := jsonpath.Decode([]byte(`{"` + key + `":1}`))
	v := s.Validate(inst)
	if v == nil || len(v.Pointer) > maxPointerLen+3 || !strings.HasSuffix(v.Pointer, "...") {
		t.Errorf("pointer not bounded: %d bytes", len(v.Pointer))
	}
}

// A schema either compiles into checks for everything it says, or it is
// refused with the location and the keyword.
func TestSchemaCompileErrors(t *testing.T) {
	for _, tc := range []struct {
		schema, want string
	}{
		{`[`, `at "#": not valid JSON`},
		{`1`, `at "#": a schema must be an object or a boolean, not number`},
		{`{"properties":{"a":{"if":{},"unevaluatedProperties":false}}}`, `at "#/properties/a/unevaluatedProperties": keyword "unevaluatedProperties" is not supported (annotation-dependent keywords are not supported; use additionalProperties); lrap refuses a schema it would not enforce in full`},
		{`{"maxLenght":3}`, `at "#/maxLenght": unknown keyword "maxLenght"; lrap refuses keywords it does not enforce (name extensions x-...)`},
		{`{"dependencies":{}}`, `keyword "dependencies" is not supported (draft-07 keyword; use dependentRequired)`},
		{`{"definitions":{}}`, `keyword "definitions" is not supported (draft-07 keyword; use $defs)`},
		{`{"$anchor":"a"}`, `keyword "$anchor" is not supported`},
		{`{"$dynamicRef":"#a"}`, `keyword "$dynamicRef" is not supported`},
		{`{"type":"str"}`, `at "#/type": unknown type "str" (accepted: null, boolean, object, array, number, string, integer)`},
		{`{"type":[]}`, `at "#/type": must be a type name or a non-empty array of them`},
		{`{"type":["string","string"]}`, `type "string" listed twice`},
		{`{"pattern":"("}`, `at "#/pattern": bad regex "(": missing closing )`},
		{`{"patternProperties":{"[":{}}}`, `at "#/patternProperties/[": bad regex "[": missing closing ]`},
		{`{"minLength":-1}`, `at "#/minLength": must be a non-negative integer, not -1`},
		{`{"maxItems":1.5}`, `at "#/maxItems": must be a non-negative integer, not 1.5`},
		{`{"minimum":"5"}`, `at "#/minimum": must be a number, not string`},
		{`{"multipleOf":0}`, `at "#/multipleOf": must be a number greater than 0`},
		{`{"enum":[]}`, `at "#/enum": must be a non-empty array`},
		{`{"required":["a","a"]}`, `at "#/required": lists "a" twice`},
		{`{"items":[{}]}`, `items as an array is the draft-07 tuple form; use prefixItems`},
		{`{"allOf":[]}`, `at "#/allOf": must be a non-empty array of schemas`},
		{`{"anyOf":[{},3]}`, `at "#/anyOf/1": a schema must be an object or a boolean, not number`},
		{`{"maxContains":1}`, `at "#": minContains/maxContains need contains`},
		{`{"then":{}}`, `at "#": then/else without if`},
		{`{"$ref":"other.json#/a"}`, `at "#/$ref": $ref "other.json#/a" is not supported: only local references, # or #/$defs/<name>`},
		{`{"$ref":"#/properties/a"}`, `$ref "#/properties/a" is not supported: only # and #/$defs/<name>`},
		{`{"$ref":"#/$defs/missing"}`, `$ref "#/$defs/missing": no such definition "missing"`},
		{`{"$ref":"#/$defs/a~2"}`, `bad ~ escape`},
		{`{"$ref":"#"}`, `at "#": $ref cycle that never moves into the event: validation would not end`},
		{`{"$defs":{"a":{"$ref":"#/$defs/b"},"b":{"anyOf":[{"$ref":"#/$defs/a"}]}}}`, `$ref cycle that never moves into the event`},
		{`{"properties":{"a":{"$id":"x"}}}`, `at "#/properties/a/$id": $id is only supported at the root`},
	} {
		_, err := CompileSchema([]byte(tc.schema))
		var se *SchemaError
		if !errors.As(err, &se) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CompileSchema(%s) = %v\nwant an error containing %s", tc.schema, err, tc.want)
		}
	}
}
