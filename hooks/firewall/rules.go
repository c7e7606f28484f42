package firewall

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"

	"github.com/lrap/lrap/internal/jsonpath"
)

// Rule is one condition on the event. It selects values either with Path (a
// JSON path over the event body, see internal/jsonpath) or with Header (an
// event header, by name), and tests them with Op:
//
//	equals   a selected value equals Value (JSON equality; numbers by value)
//	matches  a selected string matches the regular expression Value (RE2
//	         syntax as in regex.go, unanchored: use ^...$ for a whole-string
//	         match)
//	exists   Path selects anything / the header is present (no Value)
//	lt le gt ge  a selected number is <, <=, >, >= the number Value
//
// A path may select several values (wildcards, ..name): the rule holds when
// any one of them passes. Not inverts the result, so {"op": "exists",
// "not": true} holds when the field is missing.
type Rule struct {
	// ID names the rule in rejections and logs: 1 to 64 letters, digits
	// and . _ - : /
	ID     string          `json:"id"`
	Path   string          `json:"path,omitempty"`
	Header string          `json:"header,omitempty"`
	Op     string          `json:"op"`
	Value  json.RawMessage `json:"value,omitempty"`
	Not    bool            `json:"not,omitempty"`
}

// Ops lists the operators a Rule accepts.
var Ops = []string{"equals", "matches", "exists", "lt", "le", "gt", "ge"}

type op uint8

const (
	opEquals op = iota
	opMatches
	opExists
	opLT
	opLE
	opGT
	opGE
)

// rule is a compiled Rule.
type rule struct {
	id     string
	path   *jsonpath.Path // nil for a header rule
	header string         // canonical header name
	op     op
	not    bool
	value  any     // equals: the decoded Value
	str    string  // equals on a header: Value as a string
	num    float64 // lt/le/gt/ge
	re     *Regex
}

// ruleError is a problem with one field of a rule.
type ruleError struct {
	field, msg string
}

func (e *ruleError) Error() string { return e.field + ": " + e.msg }

func badField(field, format string, args ...any) error {
	return &ruleError{field: field, msg: fmt.Sprintf(format, args...)}
}

// compileRule checks r and prepares it for evaluation.
func compileRule(r Rule) (*rule, error) {
	if err := checkID(r.ID); err != nil {
		return nil, badField("id", "%s", err)
	}
	c := &rule{id: r.ID, not: r.Not}
	switch {
	case r.Path != "" && r.Header != "":
		return nil, badField("path", "set path or header, not both")
	case r.Path != "":
		p, err := jsonpath.Compile(r.Path)
		if err != nil {
			return nil, badField("path", "%s", err)
		}
		// One .. visits the event once; each further one multiplies that by
		// the event's depth, which the sender controls.
		if p.Descents() > 1 {
			return nil, badField("path", "%q has %d recursive descents (..); at most one is allowed", r.Path, p.Descents())
		}
		c.path = p
	case r.Header != "":
		if !validHeaderName(r.Header) {
			return nil, badField("header", "%q is not a header name", r.Header)
		}
		c.header = textproto.CanonicalMIMEHeaderKey(r.Header)
	default:
		return nil, badField("path", "a rule needs a path (into the event body) or a header")
	}
	o, ok := parseOp(r.Op)
	if !ok {
		return nil, badField("op", "%q is not an operator (accepted: %s)", r.Op, strings.Join(Ops, ", "))
	}
	c.op = o
	hasValue := len(bytes.TrimSpace(r.Value)) > 0
	if o == opExists {
		if hasValue {
			return nil, badField("value", "exists takes no value (use \"not\": true for a missing field)")
		}
		return c, nil
	}
	if !hasValue {
		return nil, badField("value", "%s needs a value", r.Op)
	}
	v, err := jsonpath.Decode(r.Value)
	if err != nil {
		return nil, badField("value", "not valid JSON: %v", err)
	}
	switch o {
	case opEquals:
		c.value = v
		if c.header != "" {
			s, ok := v.(string)
			if !ok {
				return nil, badField("value", "a header is compared as a string; value must be a string, not %s", jsonType(v))
			}
			c.str = s
		}
	case opMatches:
		s, ok := v.(string)
		if !ok {
			return nil, badField("value", "matches needs a regular expression string, not %s", jsonType(v))
		}
		re, err := CompileRegex(s)
		if err != nil {
			return nil, badField("value", "bad regex %q: %s", s, err)
		}
		c.re = re
	default:
		f, ok := toFloat(v)
		if !ok {
			return nil, badField("value", "%s needs a number, not %s", r.Op, jsonType(v))
		}
		c.num = f
	}
	return c, nil
}

func parseOp(s string) (op, bool) {
	for i, name := range Ops {
		if s == name {
			return op(i), true
		}
	}
	return 0, false
}

// checkID keeps ids to a charset that is safe in error messages and logs.
func checkID(id string) error {
	if id == "" {
		return errors.New("missing; every rule needs an id, reported when it matches")
	}
	if len(id) > 64 {
		return fmt.Errorf("%q is longer than 64 characters", id)
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._-:/", c)) {
			return fmt.Errorf("%q has %q (accepted: letters, digits and . _ - : /)", id, c)
		}
	}
	return nil
}

func validHeaderName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return s != ""
}

// event is what rules and the schema look at. The body is decoded at most
// once, and only when a check needs it.
type event struct {
	header  http.Header
	body    []byte
	decoded bool
	doc     any
	docErr  error
}

func (e *event) json() (any, error) {
	if !e.decoded {
		e.decoded = true
		e.doc, e.docErr = jsonpath.Decode(e.body)
	}
	return e.doc, e.docErr
}

// holds evaluates the rule on an event. A body that is not JSON is a
// document in which no path selects anything: exists and every comparison
// are false, and Not inverts that as usual.
func (r *rule) holds(e *event) bool {
	var hit bool
	if r.path == nil {
		hit = r.testHeader(e.header[r.header])
	} else if doc, err := e.json(); err == nil {
		hit = r.testValues(r.path.Get(doc))
	}
	return hit != r.not
}

func (r *rule) testHeader(values []string) bool {
	if r.op == opExists {
		return len(values) > 0
	}
	for _, s := range values {
		switch r.op {
		case opEquals:
			if s == r.str {
				return true
			}
		case opMatches:
			if r.re.MatchString(s) {
				return true
			}
		default:
			f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
			if err == nil && r.compare(f) {
				return true
			}
		}
	}
	return false
}

func (r *rule) testValues(values []any) bool {
	if r.op == opExists {
		return len(values) > 0
	}
	for _, v := range values {
		switch r.op {
		case opEquals:
			if jsonEqual(v, r.value) {
				return true
			}
		case opMatches:
			if s, ok := v.(string); ok && r.re.MatchString(s) {
				return true
			}
		default:
			if f, ok := toFloat(v); ok && r.compare(f) {
				return true
			}
		}
	}
	return false
}

func (r *rule) compare(f float64) bool {
	switch r.op {
	case opLT:
		return f < r.num
	case opLE:
		return f <= r.num
	case opGT:
		return f > r.num
	default:
		return f >= r.num
	}
}
