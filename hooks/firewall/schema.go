package firewall

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/lrap/lrap/internal/jsonpath"
)

// This file is a JSON Schema validator for a documented subset of draft
// 2020-12 (see README.md, "JSON Schema subset"). It is written here rather
// than imported because lrap takes no third-party dependencies and its
// binary size is budgeted.
//
// The invariant that matters for a firewall: a schema either compiles into
// checks that enforce every keyword it contains, or it is refused at start.
// A keyword this validator does not implement is never silently ignored;
// only keywords that are annotations by definition (title, format, ...)
// are accepted without effect.

// Schema is a compiled JSON Schema. It is immutable and safe for
// concurrent use.
type Schema struct {
	root *schemaNode
}

// annotations are keywords that never change validation in 2020-12 (format
// is an annotation unless a format-assertion vocabulary is declared).
var annotations = map[string]bool{
	"$schema": true, "$comment": true, "title": true, "description": true,
	"default": true, "examples": true, "deprecated": true, "readOnly": true,
	"writeOnly": true, "format": true, "contentMediaType": true,
	"contentEncoding": true, "contentSchema": true,
}

// unsupported are known keywords this validator does not enforce, with why,
// so the refusal says what to do instead.
var unsupported = map[string]string{
	"$anchor":               "only $ref to #/$defs/... is supported",
	"$dynamicRef":           "dynamic references are not supported",
	"$dynamicAnchor":        "dynamic references are not supported",
	"$recursiveRef":         "dynamic references are not supported",
	"$recursiveAnchor":      "dynamic references are not supported",
	"$vocabulary":           "custom vocabularies are not supported",
	"unevaluatedProperties": "annotation-dependent keywords are not supported; use additionalProperties",
	"unevaluatedItems":      "annotation-dependent keywords are not supported; use items",
	"dependentSchemas":      "not supported; use if/then",
	"dependencies":          "draft-07 keyword; use dependentRequired",
	"additionalItems":       "draft-07 keyword; use prefixItems and items",
	"definitions":           "draft-07 keyword; use $defs",
}

// schemaNode is one compiled (sub)schema. Absent keywords are zero values
// with a has* flag or a nil pointer, so validation only pays for what the
// schema says.
type schemaNode struct {
	loc string // where in the schema document, as "#/properties/a"

	boolean *bool // a true/false schema; nothing else is set

	types uint8 // bit set of typeX; 0 = no type keyword

	hasConst bool
	constVal any
	enum     []any

	minimum, maximum, exclMin, exclMax *bound
	multipleOf                         *big.Rat // nil when not exact
	multipleOfF                        float64  // 0 = no multipleOf
	multipleOfLit                      string

	minLength, maxLength int // -1 = absent
	pattern              *Regex

	prefixItems         []*schemaNode
	items               *schemaNode
	minItems, maxItems  int // -1 = absent
	uniqueItems         bool
	contains            *schemaNode
	minContains         int // 1 unless set
	maxContains         int // -1 = absent
	properties          map[string]*schemaNode
	propertyOrder       []string
	patternProperties   []patternProperty
	additional          *schemaNode
	propertyNames       *schemaNode
	required            []string
	dependentRequired   map[string][]string
	dependentOrder      []string
	minProps, maxProps  int // -1 = absent
	allOf, anyOf, oneOf []*schemaNode
	not                 *schemaNode
	ifS, thenS, elseS   *schemaNode
	ref                 string
	refTarget           *schemaNode
	defs                map[string]*schemaNode
	hasPropertyKeywords bool
	hasArrayKeywords    bool
	hasStringKeywords   bool
	hasNumericKeywords  bool
	hasContainsKeyword  bool
}

type bound struct {
	f   float64
	lit string
}

type patternProperty struct {
	source string
	re     *Regex
	s      *schemaNode
}

const (
	typeNull uint8 = 1 << iota
	typeBoolean
	typeObject
	typeArray
	typeNumber
	typeString
	typeInteger
)

var typeNames = []struct {
	name string
	bit  uint8
}{
	{"null", typeNull}, {"boolean", typeBoolean}, {"object", typeObject}, {"array", typeArray},
	{"number", typeNumber}, {"string", typeString}, {"integer", typeInteger},
}

// SchemaError is a schema that cannot be compiled: where in the schema
// document, and what is wrong.
type SchemaError struct {
	Location string // "#/properties/a/pattern"
	Msg      string
}

func (e *SchemaError) Error() string {
	return fmt.Sprintf("at %q: %s", e.Location, e.Msg)
}

// CompileSchema compiles a JSON Schema document (an object or a boolean).
func CompileSchema(doc []byte) (*Schema, error) {
	v, err := jsonpath.Decode(doc)
	if err != nil {
		return nil, &SchemaError{Location: "#", Msg: "not valid JSON: " + err.Error()}
	}
	c := &schemaCompiler{}
	root, err := c.compile(v, "#", true)
	if err != nil {
		return nil, err
	}
	for _, n := range c.refs {
		t, err := resolveRef(root, n.ref)
		if err != nil {
			return nil, &SchemaError{Location: n.loc + "/$ref", Msg: err.Error()}
		}
		n.refTarget = t
	}
	if err := checkRefCycles(c.all); err != nil {
		return nil, err
	}
	return &Schema{root: root}, nil
}

type schemaCompiler struct {
	refs []*schemaNode // nodes with a $ref, resolved once the tree is built
	all  []*schemaNode
}

func (c *schemaCompiler) fail(loc, format string, args ...any) error {
	return &SchemaError{Location: loc, Msg: fmt.Sprintf(format, args...)}
}

func (c *schemaCompiler) compile(v any, loc string, root bool) (*schemaNode, error) {
	n := &schemaNode{loc: loc, minLength: -1, maxLength: -1, minItems: -1, maxItems: -1,
		minContains: 1, maxContains: -1, minProps: -1, maxProps: -1}
	c.all = append(c.all, n)
	if b, ok := v.(bool); ok {
		n.boolean = &b
		return n, nil
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, c.fail(loc, "a schema must be an object or a boolean, not %s", jsonType(v))
	}
	for _, k := range sortedKeys(obj) { // errors in a stable order
		if err := c.keyword(n, k, obj[k], loc, root); err != nil {
			return nil, err
		}
	}
	if n.hasContainsKeyword && n.contains == nil {
		return nil, c.fail(loc, "minContains/maxContains need contains")
	}
	if n.ifS == nil && (n.thenS != nil || n.elseS != nil) {
		return nil, c.fail(loc, "then/else without if")
	}
	return n, nil
}

func (c *schemaCompiler) keyword(n *schemaNode, k string, v any, loc string, root bool) error {
	at := loc + "/" + escapePointer(k)
	sub := func(v any, where string) (*schemaNode, error) { return c.compile(v, where, false) }
	subList := func() ([]*schemaNode, error) {
		list, ok := v.([]any)
		if !ok || len(list) == 0 {
			return nil, c.fail(at, "must be a non-empty array of schemas")
		}
		out := make([]*schemaNode, len(list))
		for i, s := range list {
			var err error
			if out[i], err = sub(s, at+"/"+strconv.Itoa(i)); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	var err error
	switch k {
	case "$id":
		if !root {
			return c.fail(at, "$id is only supported at the root (references are local to this document)")
		}
		if _, ok := v.(string); !ok {
			return c.fail(at, "must be a string")
		}
	case "$defs":
		defs, ok := v.(map[string]any)
		if !ok {
			return c.fail(at, "must be an object of schemas")
		}
		n.defs = make(map[string]*schemaNode, len(defs))
		for _, name := range sortedKeys(defs) {
			if n.defs[name], err = sub(defs[name], at+"/"+escapePointer(name)); err != nil {
				return err
			}
		}
	case "$ref":
		s, ok := v.(string)
		if !ok {
			return c.fail(at, "must be a string")
		}
		n.ref = s
		c.refs = append(c.refs, n)
	case "type":
		n.types, err = c.types(v, at)
	case "const":
		n.hasConst, n.constVal = true, v
	case "enum":
		list, ok := v.([]any)
		if !ok || len(list) == 0 {
			return c.fail(at, "must be a non-empty array")
		}
		n.enum = list
	case "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum":
		b, err := c.number(v, at)
		if err != nil {
			return err
		}
		switch k {
		case "minimum":
			n.minimum = b
		case "maximum":
			n.maximum = b
		case "exclusiveMinimum":
			n.exclMin = b
		default:
			n.exclMax = b
		}
		n.hasNumericKeywords = true
	case "multipleOf":
		b, err := c.number(v, at)
		if err != nil {
			return err
		}
		if !(b.f > 0) || math.IsInf(b.f, 0) {
			return c.fail(at, "must be a number greater than 0")
		}
		n.multipleOfF, n.multipleOfLit = b.f, b.lit
		n.multipleOf, _ = exactRat(b.lit)
		n.hasNumericKeywords = true
	case "minLength":
		n.minLength, err = c.count(v, at)
		n.hasStringKeywords = true
	case "maxLength":
		n.maxLength, err = c.count(v, at)
		n.hasStringKeywords = true
	case "pattern":
		n.pattern, err = c.regex(v, at)
		n.hasStringKeywords = true
	case "items":
		if _, ok := v.([]any); ok {
			return c.fail(at, "items as an array is the draft-07 tuple form; use prefixItems")
		}
		n.items, err = sub(v, at)
		n.hasArrayKeywords = true
	case "prefixItems":
		n.prefixItems, err = subList()
		n.hasArrayKeywords = true
	case "minItems":
		n.minItems, err = c.count(v, at)
		n.hasArrayKeywords = true
	case "maxItems":
		n.maxItems, err = c.count(v, at)
		n.hasArrayKeywords = true
	case "uniqueItems":
		b, ok := v.(bool)
		if !ok {
			return c.fail(at, "must be true or false")
		}
		n.uniqueItems = b
		n.hasArrayKeywords = true
	case "contains":
		n.contains, err = sub(v, at)
		n.hasArrayKeywords = true
	case "minContains":
		n.minContains, err = c.count(v, at)
		n.hasContainsKeyword = true
	case "maxContains":
		n.maxContains, err = c.count(v, at)
		n.hasContainsKeyword = true
	case "properties":
		props, ok := v.(map[string]any)
		if !ok {
			return c.fail(at, "must be an object of schemas")
		}
		n.properties = make(map[string]*schemaNode, len(props))
		n.propertyOrder = sortedKeys(props)
		for _, name := range n.propertyOrder {
			if n.properties[name], err = sub(props[name], at+"/"+escapePointer(name)); err != nil {
				return err
			}
		}
		n.hasPropertyKeywords = true
	case "patternProperties":
		props, ok := v.(map[string]any)
		if !ok {
			return c.fail(at, "must be an object of schemas")
		}
		for _, src := range sortedKeys(props) {
			where := at + "/" + escapePointer(src)
			re, err := c.regex(src, where)
			if err != nil {
				return err
			}
			s, err := sub(props[src], where)
			if err != nil {
				return err
			}
			n.patternProperties = append(n.patternProperties, patternProperty{src, re, s})
		}
		n.hasPropertyKeywords = true
	case "additionalProperties":
		n.additional, err = sub(v, at)
		n.hasPropertyKeywords = true
	case "propertyNames":
		n.propertyNames, err = sub(v, at)
		n.hasPropertyKeywords = true
	case "required":
		n.required, err = c.stringList(v, at)
		n.hasPropertyKeywords = true
	case "dependentRequired":
		deps, ok := v.(map[string]any)
		if !ok {
			return c.fail(at, "must be an object of arrays of property names")
		}
		n.dependentRequired = make(map[string][]string, len(deps))
		n.dependentOrder = sortedKeys(deps)
		for _, name := range n.dependentOrder {
			if n.dependentRequired[name], err = c.stringList(deps[name], at+"/"+escapePointer(name)); err != nil {
				return err
			}
		}
		n.hasPropertyKeywords = true
	case "minProperties":
		n.minProps, err = c.count(v, at)
		n.hasPropertyKeywords = true
	case "maxProperties":
		n.maxProps, err = c.count(v, at)
		n.hasPropertyKeywords = true
	case "allOf":
		n.allOf, err = subList()
	case "anyOf":
		n.anyOf, err = subList()
	case "oneOf":
		n.oneOf, err = subList()
	case "not":
		n.not, err = sub(v, at)
	case "if":
		n.ifS, err = sub(v, at)
	case "then":
		n.thenS, err = sub(v, at)
	case "else":
		n.elseS, err = sub(v, at)
	default:
		if annotations[k] || strings.HasPrefix(k, "x-") {
			return nil
		}
		if why, ok := unsupported[k]; ok {
			return c.fail(at, "keyword %q is not supported (%s); lrap refuses a schema it would not enforce in full", k, why)
		}
		return c.fail(at, "unknown keyword %q; lrap refuses keywords it does not enforce (name extensions x-...)", k)
	}
	return err
}

func (c *schemaCompiler) types(v any, at string) (uint8, error) {
	one := func(v any) (uint8, error) {
		s, _ := v.(string)
		for _, t := range typeNames {
			if t.name == s {
				return t.bit, nil
			}
		}
		return 0, c.fail(at, "unknown type %s (accepted: null, boolean, object, array, number, string, integer)", shortJSON(v))
	}
	list, ok := v.([]any)
	if !ok {
		return one(v)
	}
	if len(list) == 0 {
		return 0, c.fail(at, "must be a type name or a non-empty array of them")
	}
	var bits uint8
	for _, t := range list {
		b, err := one(t)
		if err != nil {
			return 0, err
		}
		if bits&b != 0 {
			return 0, c.fail(at, "type %s listed twice", shortJSON(t))
		}
		bits |= b
	}
	return bits, nil
}

func (c *schemaCompiler) number(v any, at string) (*bound, error) {
	n, ok := v.(json.Number)
	if !ok {
		return nil, c.fail(at, "must be a number, not %s", jsonType(v))
	}
	f, _ := toFloat(n)
	return &bound{f: f, lit: string(n)}, nil
}

func (c *schemaCompiler) count(v any, at string) (int, error) {
	n, ok := v.(json.Number)
	if ok {
		if i, err := strconv.ParseInt(string(n), 10, 32); err == nil && i >= 0 {
			return int(i), nil
		}
		if isInteger(n) {
			if f, _ := toFloat(n); f >= 0 && f <= math.MaxInt32 {
				return int(f), nil
			}
		}
	}
	return 0, c.fail(at, "must be a non-negative integer, not %s", shortJSON(v))
}

func (c *schemaCompiler) regex(v any, at string) (*Regex, error) {
	s, ok := v.(string)
	if !ok {
		return nil, c.fail(at, "must be a string (a regular expression)")
	}
	re, err := CompileRegex(s)
	if err != nil {
		return nil, c.fail(at, "bad regex %q: %s", s, err)
	}
	return re, nil
}

func (c *schemaCompiler) stringList(v any, at string) ([]string, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, c.fail(at, "must be an array of strings")
	}
	out := make([]string, 0, len(list))
	for _, e := range list {
		s, ok := e.(string)
		if !ok {
			return nil, c.fail(at, "must be an array of strings")
		}
		if slices.Contains(out, s) {
			return nil, c.fail(at, "lists %q twice", s)
		}
		out = append(out, s)
	}
	return out, nil
}

// resolveRef finds the target of a local reference: "#" (the root) or
// "#/$defs/a", optionally nested ("#/$defs/a/$defs/b").
func resolveRef(root *schemaNode, ref string) (*schemaNode, error) {
	if ref == "#" {
		return root, nil
	}
	rest, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, fmt.Errorf("$ref %q is not supported: only local references, # or #/$defs/<name>", ref)
	}
	parts := strings.Split(rest, "/")
	if len(parts)%2 != 0 {
		return nil, fmt.Errorf("$ref %q is not supported: only # and #/$defs/<name>", ref)
	}
	n := root
	for i := 0; i < len(parts); i += 2 {
		if parts[i] != "$defs" {
			return nil, fmt.Errorf("$ref %q is not supported: only # and #/$defs/<name>", ref)
		}
		name, err := unescapePointer(parts[i+1])
		if err != nil {
			return nil, fmt.Errorf("$ref %q: %v", ref, err)
		}
		next, ok := n.defs[name]
		if !ok {
			return nil, fmt.Errorf("$ref %q: no such definition %q", ref, name)
		}
		n = next
	}
	return n, nil
}

// checkRefCycles refuses a schema whose references loop without moving into
// the instance ({"$ref": "#"} at the root, or a → b → a through $ref, allOf,
// anyOf, oneOf, not, if/then/else): validating it would never end. Cycles
// through properties or items are fine: each turn goes one level deeper
// into a finite document.
func checkRefCycles(all []*schemaNode) error {
	const (
		unseen = iota
		active
		done
	)
	state := make(map[*schemaNode]int, len(all))
	var visit func(n *schemaNode) error
	visit = func(n *schemaNode) error {
		switch state[n] {
		case active:
			return &SchemaError{Location: n.loc, Msg: "$ref cycle that never moves into the event: validation would not end"}
		case done:
			return nil
		}
		state[n] = active
		for _, next := range inPlace(n) {
			if err := visit(next); err != nil {
				return err
			}
		}
		state[n] = done
		return nil
	}
	for _, n := range all {
		if err := visit(n); err != nil {
			return err
		}
	}
	return nil
}

// inPlace lists the subschemas that apply to the same instance as n.
func inPlace(n *schemaNode) []*schemaNode {
	var out []*schemaNode
	if n.refTarget != nil {
		out = append(out, n.refTarget)
	}
	out = append(out, n.allOf...)
	out = append(out, n.anyOf...)
	out = append(out, n.oneOf...)
	for _, s := range []*schemaNode{n.not, n.ifS, n.thenS, n.elseS} {
		if s != nil {
			out = append(out, s)
		}
	}
	return out
}

// Violation is the first way an instance fails a schema.
type Violation struct {
	Pointer string // JSON Pointer into the event ("" is the whole event)
	Msg     string // what is wrong, naming the keyword; never the event's values
}

func (v *Violation) Error() string {
	return fmt.Sprintf("at %q: %s", v.Pointer, v.Msg)
}

// pointer is an instance location as a linked list built on the stack: it
// is only turned into a string when there is a violation to report.
type pointer struct {
	parent *pointer
	key    string
	index  int
	isKey  bool
}

// maxPointerLen bounds a reported pointer: property names come from the
// event and an attacker may make them long.
const maxPointerLen = 256

func (p *pointer) String() string {
	var parts []string
	for q := p; q != nil; q = q.parent {
		if q.isKey {
			parts = append(parts, escapePointer(q.key))
		} else {
			parts = append(parts, strconv.Itoa(q.index))
		}
	}
	var b strings.Builder
	for i := len(parts) - 1; i >= 0; i-- {
		b.WriteByte('/')
		b.WriteString(parts[i])
	}
	s := b.String()
	if len(s) > maxPointerLen {
		cut := maxPointerLen
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return s
}

func escapePointer(s string) string {
	if !strings.ContainsAny(s, "~/") {
		return s
	}
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}

func unescapePointer(s string) (string, error) {
	for i := 0; i < len(s); i++ {
		if s[i] == '~' && (i+1 == len(s) || (s[i+1] != '0' && s[i+1] != '1')) {
			return "", fmt.Errorf("bad ~ escape in %q", s)
		}
	}
	return strings.NewReplacer("~1", "/", "~0", "~").Replace(s), nil
}

// Validate checks a decoded instance (from jsonpath.Decode) and returns the
// first violation, or nil. It gives up, with a violation, after
// DefaultMaxSteps subschema applications.
func (s *Schema) Validate(instance any) *Violation {
	return s.validateWithin(instance, DefaultMaxSteps)
}

// DefaultMaxSteps bounds the subschema applications of one validation. A
// schema whose anyOf/oneOf branches recurse into the event can take time
// exponential in the event's depth, and events are not trusted. An API
// Gateway event against a typical schema takes a few hundred steps.
const DefaultMaxSteps = 1_000_000

// stepsFor is the step limit for an event of n bytes: large events with
// long arrays legitimately take more steps.
func stepsFor(n int) int { return DefaultMaxSteps + 8*n }

func (s *Schema) validateWithin(instance any, maxSteps int) *Violation {
	st := &vstate{max: maxSteps}
	v := s.root.validate(instance, nil, st)
	if st.over {
		// A violation found inside not, anyOf or if may have been read as
		// "did not match" after the limit cut it short: only the limit
		// itself is a reliable verdict.
		return &Violation{Msg: fmt.Sprintf("validation stopped after %d steps; the schema branches too much for this event", maxSteps)}
	}
	return v
}

// vstate is one validation's running cost.
type vstate struct {
	steps, max int
	over       bool
}

func violation(at *pointer, format string, args ...any) *Violation {
	return &Violation{Pointer: at.String(), Msg: fmt.Sprintf(format, args...)}
}

// validate returns the first violation of n by v at location at. Keywords
// are checked in a fixed order, and object members in key order, so the
// violation reported for a given event is always the same one.
func (n *schemaNode) validate(v any, at *pointer, st *vstate) *Violation {
	if st.steps++; st.steps > st.max {
		st.over = true
		return &Violation{}
	}
	if n.boolean != nil {
		if *n.boolean {
			return nil
		}
		return violation(at, "no value is allowed here (false schema at %s)", n.loc)
	}
	if n.refTarget != nil {
		if e := n.refTarget.validate(v, at, st); e != nil {
			return e
		}
	}
	if n.types != 0 && !hasType(n.types, v) {
		return violation(at, "must be %s, not %s (type)", typeList(n.types), jsonType(v))
	}
	if n.hasConst && !jsonEqual(v, n.constVal) {
		return violation(at, "is not the value required by const")
	}
	if n.enum != nil && !slices.ContainsFunc(n.enum, func(e any) bool { return jsonEqual(v, e) }) {
		return violation(at, "is not one of the %d values allowed by enum", len(n.enum))
	}
	switch x := v.(type) {
	case json.Number:
		if n.hasNumericKeywords {
			if e := n.validateNumber(x, at); e != nil {
				return e
			}
		}
	case string:
		if n.hasStringKeywords {
			if e := n.validateString(x, at); e != nil {
				return e
			}
		}
	case []any:
		if n.hasArrayKeywords || n.hasContainsKeyword {
			if e := n.validateArray(x, at, st); e != nil {
				return e
			}
		}
	case map[string]any:
		if n.hasPropertyKeywords {
			if e := n.validateObject(x, at, st); e != nil {
				return e
			}
		}
	}
	return n.validateApplicators(v, at, st)
}

func hasType(types uint8, v any) bool {
	switch v.(type) {
	case nil:
		return types&typeNull != 0
	case bool:
		return types&typeBoolean != 0
	case string:
		return types&typeString != 0
	case []any:
		return types&typeArray != 0
	case map[string]any:
		return types&typeObject != 0
	case json.Number, float64:
		return types&typeNumber != 0 || types&typeInteger != 0 && isInteger(v)
	}
	return false
}

func typeList(types uint8) string {
	var names []string
	for _, t := range typeNames {
		if types&t.bit != 0 {
			names = append(names, t.name)
		}
	}
	if len(names) == 1 {
		return names[0]
	}
	return "one of " + strings.Join(names, ", ")
}

func (n *schemaNode) validateNumber(x json.Number, at *pointer) *Violation {
	f, ok := toFloat(x)
	if !ok {
		return violation(at, "is not a valid number")
	}
	if n.minimum != nil && !(f >= n.minimum.f) {
		return violation(at, "must be >= %s (minimum)", n.minimum.lit)
	}
	if n.maximum != nil && !(f <= n.maximum.f) {
		return violation(at, "must be <= %s (maximum)", n.maximum.lit)
	}
	if n.exclMin != nil && !(f > n.exclMin.f) {
		return violation(at, "must be > %s (exclusiveMinimum)", n.exclMin.lit)
	}
	if n.exclMax != nil && !(f < n.exclMax.f) {
		return violation(at, "must be < %s (exclusiveMaximum)", n.exclMax.lit)
	}
	if n.multipleOfF != 0 && !multipleOf(x, n.multipleOf, n.multipleOfF) {
		return violation(at, "must be a multiple of %s (multipleOf)", n.multipleOfLit)
	}
	return nil
}

func (n *schemaNode) validateString(s string, at *pointer) *Violation {
	if n.minLength >= 0 || n.maxLength >= 0 {
		// Lengths count characters (code points), as JSON Schema says.
		l := utf8.RuneCountInString(s)
		if n.minLength >= 0 && l < n.minLength {
			return violation(at, "must be at least %d characters long (minLength)", n.minLength)
		}
		if n.maxLength >= 0 && l > n.maxLength {
			return violation(at, "must be at most %d characters long (maxLength)", n.maxLength)
		}
	}
	if n.pattern != nil && !n.pattern.MatchString(s) {
		return violation(at, "does not match pattern %q (pattern)", n.pattern.String())
	}
	return nil
}

func (n *schemaNode) validateArray(a []any, at *pointer, st *vstate) *Violation {
	if n.minItems >= 0 && len(a) < n.minItems {
		return violation(at, "must have at least %d items (minItems)", n.minItems)
	}
	if n.maxItems >= 0 && len(a) > n.maxItems {
		return violation(at, "must have at most %d items (maxItems)", n.maxItems)
	}
	if n.uniqueItems {
		if i, j, dup := firstDuplicate(a); dup {
			return violation(at, "items %d and %d are equal (uniqueItems)", i, j)
		}
	}
	for i, item := range a {
		var s *schemaNode
		switch {
		case i < len(n.prefixItems):
			s = n.prefixItems[i]
		case n.items != nil:
			s = n.items
		default:
			continue
		}
		if e := s.validate(item, &pointer{parent: at, index: i}, st); e != nil {
			return e
		}
	}
	if n.contains != nil {
		matched := 0
		for _, item := range a {
			if n.contains.validate(item, nil, st) == nil {
				matched++
			}
		}
		if matched < n.minContains {
			return violation(at, "must contain at least %d items matching contains (minContains), has %d", n.minContains, matched)
		}
		if n.maxContains >= 0 && matched > n.maxContains {
			return violation(at, "must contain at most %d items matching contains (maxContains), has %d", n.maxContains, matched)
		}
	}
	return nil
}

// firstDuplicate finds the first pair of equal items in linear time: each
// item is reduced to a canonical key that is equal exactly when jsonEqual
// holds (pairwise comparison would be quadratic in a hostile array).
func firstDuplicate(a []any) (int, int, bool) {
	seen := make(map[string]int, len(a))
	var buf []byte
	for j, item := range a {
		buf = canonical(buf[:0], item)
		if i, ok := seen[string(buf)]; ok {
			return i, j, true
		}
		seen[string(buf)] = j
	}
	return 0, 0, false
}

// canonical appends a key for v: numbers by value, object members sorted,
// strings length-prefixed so no two values share a key.
func canonical(b []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(b, 'z')
	case bool:
		if x {
			return append(b, 't')
		}
		return append(b, 'f')
	case string:
		b = append(b, 's')
		b = strconv.AppendInt(b, int64(len(x)), 10)
		b = append(b, ':')
		return append(b, x...)
	case json.Number, float64:
		f, _ := toFloat(x)
		if f == 0 {
			f = 0 // -0 and 0 are equal
		}
		b = append(b, 'n')
		b = strconv.AppendFloat(b, f, 'g', -1, 64)
		return append(b, ';')
	case []any:
		b = append(b, '[')
		for _, e := range x {
			b = canonical(b, e)
		}
		return append(b, ']')
	case map[string]any:
		b = append(b, '{')
		for _, k := range sortedKeys(x) {
			b = canonical(b, k)
			b = canonical(b, x[k])
		}
		return append(b, '}')
	}
	return append(b, '?')
}

func (n *schemaNode) validateObject(o map[string]any, at *pointer, st *vstate) *Violation {
	if n.minProps >= 0 && len(o) < n.minProps {
		return violation(at, "must have at least %d properties (minProperties)", n.minProps)
	}
	if n.maxProps >= 0 && len(o) > n.maxProps {
		return violation(at, "must have at most %d properties (maxProperties)", n.maxProps)
	}
	for _, r := range n.required {
		if _, ok := o[r]; !ok {
			return violation(at, "lacks required property %q (required)", r)
		}
	}
	for _, name := range n.dependentOrder {
		if _, ok := o[name]; !ok {
			continue
		}
		for _, r := range n.dependentRequired[name] {
			if _, ok := o[r]; !ok {
				return violation(at, "has %q, so it needs %q (dependentRequired)", name, r)
			}
		}
	}
	for _, name := range n.propertyOrder {
		if v, ok := o[name]; ok {
			if e := n.properties[name].validate(v, &pointer{parent: at, key: name, isKey: true}, st); e != nil {
				return e
			}
		}
	}
	if len(n.patternProperties) == 0 && n.additional == nil && n.propertyNames == nil {
		return nil
	}
	// Members not named in properties are visited in map order, which Go
	// randomises; to report the same violation every time, the failure with
	// the smallest key wins. The common (valid) case pays no sorting.
	var first *Violation
	var firstKey string
	for k, v := range o {
		if first != nil && k > firstKey {
			continue
		}
		if e := n.validateMember(k, v, at, st); e != nil {
			first, firstKey = e, k
		}
	}
	return first
}

func (n *schemaNode) validateMember(k string, v any, at *pointer, st *vstate) *Violation {
	here := &pointer{parent: at, key: k, isKey: true}
	if n.propertyNames != nil {
		if e := n.propertyNames.validate(k, nil, st); e != nil {
			return violation(here, "property name fails propertyNames: %s", e.Msg)
		}
	}
	_, named := n.properties[k]
	for _, pp := range n.patternProperties {
		if pp.re.MatchString(k) {
			named = true
			if e := pp.s.validate(v, here, st); e != nil {
				return e
			}
		}
	}
	if !named && n.additional != nil {
		if n.additional.boolean != nil && !*n.additional.boolean {
			return violation(here, "property is not allowed (additionalProperties)")
		}
		return n.additional.validate(v, here, st)
	}
	return nil
}

func (n *schemaNode) validateApplicators(v any, at *pointer, st *vstate) *Violation {
	for _, s := range n.allOf {
		if e := s.validate(v, at, st); e != nil {
			return e
		}
	}
	if n.anyOf != nil && !slices.ContainsFunc(n.anyOf, func(s *schemaNode) bool { return s.validate(v, at, st) == nil }) {
		return violation(at, "matches none of the %d schemas in anyOf", len(n.anyOf))
	}
	if n.oneOf != nil {
		var matched []int
		for i, s := range n.oneOf {
			if s.validate(v, at, st) == nil {
				matched = append(matched, i)
			}
		}
		switch len(matched) {
		case 1:
		case 0:
			return violation(at, "matches none of the %d schemas in oneOf", len(n.oneOf))
		default:
			return violation(at, "matches oneOf schemas %d and %d; exactly one is allowed (oneOf)", matched[0], matched[1])
		}
	}
	if n.not != nil && n.not.validate(v, at, st) == nil {
		return violation(at, "matches the schema in not (not)")
	}
	if n.ifS != nil {
		branch := n.elseS
		if n.ifS.validate(v, at, st) == nil {
			branch = n.thenS
		}
		if branch != nil {
			return branch.validate(v, at, st)
		}
	}
	return nil
}

// shortJSON renders a schema value for an error message, bounded.
func shortJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return jsonType(v)
	}
	if len(b) > 60 {
		return string(b[:57]) + "..."
	}
	return string(b)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
