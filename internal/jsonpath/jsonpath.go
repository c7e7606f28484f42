// Package jsonpath selects values inside a JSON document decoded by
// encoding/json (objects as map[string]any, arrays as []any, numbers as
// json.Number when decoded with Decode).
//
// The syntax is a small, predictable subset of JSONPath:
//
//	$              the root; every path starts with it
//	.name          an object member; name is letters, digits, '_', '-' or '$'
//	['name']       an object member with any characters ("name" works too;
//	               \\ \' \" \/ \b \f \n \r \t and \uXXXX escapes are understood)
//	[0]            an array element; a negative index counts from the end
//	[*]  .*        every member of an object or element of an array
//	..name         name at any depth below (recursive descent); also
//	..*  ..['name']  ..[0]  ..[*]
//
// There are no filters, slices, unions or functions: paths are configuration
// written by people and checked at start, so an unsupported form is a
// compile error, never a silent "matches nothing".
//
// A selector that does not fit the value (a name on an array, an index on an
// object, anything on a scalar) matches nothing; it is not an error.
package jsonpath

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Path is a compiled path. It is immutable and safe for concurrent use.
type Path struct {
	segs []segment
}

type segKind uint8

const (
	segName segKind = iota
	segIndex
	segWild
)

// segment is one step. descend makes it recursive: the selector applies to
// the current value and to every value below it.
type segment struct {
	kind    segKind
	descend bool
	name    string
	index   int
}

// SyntaxError is what Compile returns for a malformed path.
type SyntaxError struct {
	Expr   string
	Offset int // byte offset in Expr where the problem is
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("json path %q: at offset %d: %s", e.Expr, e.Offset, e.Msg)
}

// maxIndex bounds an index literal so that it always fits an int.
const maxIndex = 1 << 31

// Compile parses expr. The error is a *SyntaxError saying where and what is
// wrong.
func Compile(expr string) (*Path, error) {
	p := &parser{expr: expr}
	segs, err := p.parse()
	if err != nil {
		return nil, err
	}
	return &Path{segs: segs}, nil
}

// MustCompile is Compile that panics on error, for paths fixed in code.
func MustCompile(expr string) *Path {
	p, err := Compile(expr)
	if err != nil {
		panic(err)
	}
	return p
}

type parser struct {
	expr string
	pos  int
}

func (p *parser) fail(at int, format string, args ...any) error {
	return &SyntaxError{Expr: p.expr, Offset: at, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) parse() ([]segment, error) {
	if p.expr == "" {
		return nil, p.fail(0, "empty path; it must start with $")
	}
	if p.expr[0] != '$' {
		return nil, p.fail(0, "a path must start with $")
	}
	p.pos = 1
	var segs []segment
	for p.pos < len(p.expr) {
		start := p.pos
		switch p.expr[p.pos] {
		case '.':
			p.pos++
			descend := false
			if p.pos < len(p.expr) && p.expr[p.pos] == '.' {
				descend = true
				p.pos++
			}
			if p.pos >= len(p.expr) {
				return nil, p.fail(start, "%q must be followed by a name, * or [", p.expr[start:p.pos])
			}
			var seg segment
			var err error
			switch c := p.expr[p.pos]; {
			case c == '*':
				p.pos++
				seg = segment{kind: segWild}
			case c == '[' && descend:
				seg, err = p.bracket()
			default:
				seg, err = p.dotName(start)
			}
			if err != nil {
				return nil, err
			}
			seg.descend = descend
			segs = append(segs, seg)
		case '[':
			seg, err := p.bracket()
			if err != nil {
				return nil, err
			}
			segs = append(segs, seg)
		default:
			return nil, p.fail(start, "unexpected %q; expected . or [", p.peekRune())
		}
	}
	return segs, nil
}

func (p *parser) peekRune() rune {
	r, _ := utf8.DecodeRuneInString(p.expr[p.pos:])
	return r
}

func isNameRune(r rune) bool {
	return r == '_' || r == '-' || r == '$' || unicode.IsLetter(r) || unicode.IsDigit(r)
}

func (p *parser) dotName(dot int) (segment, error) {
	start := p.pos
	for p.pos < len(p.expr) {
		r, size := utf8.DecodeRuneInString(p.expr[p.pos:])
		if r == utf8.RuneError && size == 1 || !isNameRune(r) {
			break
		}
		p.pos += size
	}
	if p.pos == start {
		return segment{}, p.fail(start, "unexpected %q after %q; use ['...'] for names with other characters",
			p.peekRune(), p.expr[dot:start])
	}
	return segment{kind: segName, name: p.expr[start:p.pos]}, nil
}

// bracket parses [*], [index] or ['name'] / ["name"] at p.pos.
func (p *parser) bracket() (segment, error) {
	open := p.pos
	p.pos++ // '['
	if p.pos >= len(p.expr) {
		return segment{}, p.fail(open, "unclosed [")
	}
	var seg segment
	switch c := p.expr[p.pos]; {
	case c == '*':
		p.pos++
		seg = segment{kind: segWild}
	case c == '\'' || c == '"':
		name, err := p.quoted(c)
		if err != nil {
			return segment{}, err
		}
		seg = segment{kind: segName, name: name}
	case c == '-' || c >= '0' && c <= '9':
		start := p.pos
		if c == '-' {
			p.pos++
		}
		digits := p.pos
		for p.pos < len(p.expr) && p.expr[p.pos] >= '0' && p.expr[p.pos] <= '9' {
			p.pos++
		}
		lit := p.expr[start:p.pos]
		if p.pos == digits {
			return segment{}, p.fail(start, "index %q has no digits", lit)
		}
		if p.pos-digits > 1 && p.expr[digits] == '0' {
			return segment{}, p.fail(start, "index %q has a leading zero", lit)
		}
		n, err := strconv.ParseInt(lit, 10, 64)
		if err != nil || n >= maxIndex || n <= -maxIndex {
			return segment{}, p.fail(start, "index %q is out of range", lit)
		}
		seg = segment{kind: segIndex, index: int(n)}
	default:
		return segment{}, p.fail(p.pos, "unexpected %q after [; expected *, an index or a quoted name (filters, slices and unions are not supported)", p.peekRune())
	}
	if p.pos >= len(p.expr) {
		return segment{}, p.fail(open, "unclosed [")
	}
	if p.expr[p.pos] != ']' {
		return segment{}, p.fail(p.pos, "unexpected %q; expected ] (filters, slices and unions are not supported)", p.peekRune())
	}
	p.pos++
	return seg, nil
}

// quoted reads a quoted name starting at the opening quote q.
func (p *parser) quoted(q byte) (string, error) {
	open := p.pos
	p.pos++
	var b strings.Builder
	for {
		if p.pos >= len(p.expr) {
			return "", p.fail(open, "unterminated quoted name")
		}
		c := p.expr[p.pos]
		switch {
		case c == q:
			p.pos++
			return b.String(), nil
		case c == '\\':
			if p.pos+1 >= len(p.expr) {
				return "", p.fail(p.pos, "unterminated escape")
			}
			e := p.expr[p.pos+1]
			switch e {
			case '\\', '\'', '"', '/':
				b.WriteByte(e)
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'u':
				r, n, err := p.unicodeEscape(p.pos)
				if err != nil {
					return "", err
				}
				b.WriteRune(r)
				p.pos += n
				continue
			default:
				return "", p.fail(p.pos, "unknown escape \\%c", e)
			}
			p.pos += 2
		default:
			r, size := utf8.DecodeRuneInString(p.expr[p.pos:])
			if r == utf8.RuneError && size == 1 {
				return "", p.fail(p.pos, "invalid UTF-8")
			}
			b.WriteRune(r)
			p.pos += size
		}
	}
}

// unicodeEscape reads \uXXXX at i (and a low surrogate escape after a high
// one). It returns the rune and the bytes consumed.
func (p *parser) unicodeEscape(i int) (rune, int, error) {
	hex4 := func(j int) (rune, bool) {
		if j+6 > len(p.expr) || p.expr[j] != '\\' || p.expr[j+1] != 'u' {
			return 0, false
		}
		n, err := strconv.ParseUint(p.expr[j+2:j+6], 16, 32)
		return rune(n), err == nil
	}
	r, ok := hex4(i)
	if !ok {
		return 0, 0, p.fail(i, "\\u must be followed by four hex digits")
	}
	if utf16.IsSurrogate(r) {
		if lo, ok := hex4(i + 6); ok {
			if d := utf16.DecodeRune(r, lo); d != utf8.RuneError {
				return d, 12, nil
			}
		}
		return 0, 0, p.fail(i, "unpaired surrogate in \\u escape")
	}
	return r, 6, nil
}

// Descents counts the recursive descent (..) segments. Each one can visit
// the whole subtree below every value it starts from, so a path with k of
// them costs up to n·d^(k-1) on a document of n values and depth d: callers
// that evaluate paths on untrusted documents may want to bound k.
func (p *Path) Descents() int {
	k := 0
	for _, s := range p.segs {
		if s.descend {
			k++
		}
	}
	return k
}

// String returns the path in canonical form: names that fit the dot form
// use it, others are bracketed with single quotes. Compiling the result
// gives an equivalent path.
func (p *Path) String() string {
	var b strings.Builder
	b.WriteByte('$')
	for _, s := range p.segs {
		if s.descend {
			b.WriteString("..")
		}
		switch s.kind {
		case segWild:
			if s.descend {
				b.WriteByte('*')
			} else {
				b.WriteString("[*]")
			}
		case segIndex:
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(s.index))
			b.WriteByte(']')
		case segName:
			if plainName(s.name) {
				if !s.descend {
					b.WriteByte('.')
				}
				b.WriteString(s.name)
			} else {
				b.WriteString("['")
				writeQuoted(&b, s.name)
				b.WriteString("']")
			}
		}
	}
	return b.String()
}

func plainName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !isNameRune(r) {
			return false
		}
	}
	return true
}

func writeQuoted(b *strings.Builder, s string) {
	for _, r := range s {
		switch {
		case r == '\'' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == utf8.RuneError:
			fmt.Fprintf(b, "\\u%04x", r)
		default:
			b.WriteRune(r)
		}
	}
}

// Get returns every value the path selects in doc, in document order (object
// members in key order, since Go maps have none). It returns nil when
// nothing matches. The values are the document's own, not copies.
func (p *Path) Get(doc any) []any {
	var out []any
	p.walk(doc, func(_ any, _ string, _ int, v any) { out = append(out, v) })
	return out
}

// location is a match's place in its container, so it can be replaced.
type location struct {
	parent any // map[string]any or []any
	key    string
	index  int
}

// Replace sets every value the path selects to fn(value), in place, and
// returns how many were replaced. Only members of map[string]any and
// elements of []any can be replaced; the root itself ($) cannot, and
// Replace returns 0 for it.
//
// All matches are found first, then replaced deepest first: when matches
// nest (as with ..name), fn sees an outer value whose inner matches are
// already replaced, and each match is replaced exactly once.
func (p *Path) Replace(doc any, fn func(v any) any) int {
	if len(p.segs) == 0 {
		return 0
	}
	var locs []location
	p.walk(doc, func(parent any, key string, index int, _ any) {
		locs = append(locs, location{parent, key, index})
	})
	n := 0
	for i := len(locs) - 1; i >= 0; i-- {
		l := locs[i]
		switch c := l.parent.(type) {
		case map[string]any:
			c[l.key] = fn(c[l.key])
			n++
		case []any:
			c[l.index] = fn(c[l.index])
			n++
		}
	}
	return n
}

// visit receives a match with its container (nil for the root) and its key
// or index there.
type visit func(parent any, key string, index int, v any)

func (p *Path) walk(doc any, fn visit) {
	if len(p.segs) == 0 {
		fn(nil, "", 0, doc)
		return
	}
	p.step(0, doc, fn)
}

// step applies segment i to v and continues with the next segment on each
// match; after the last segment, matches go to fn.
func (p *Path) step(i int, v any, fn visit) {
	s := p.segs[i]
	next := func(parent any, key string, index int, child any) {
		if i+1 == len(p.segs) {
			fn(parent, key, index, child)
		} else {
			p.step(i+1, child, fn)
		}
	}
	if s.descend {
		descend(v, func(node any) { apply(s, node, next) })
		return
	}
	apply(s, v, next)
}

// apply runs one selector on v.
func apply(s segment, v any, next visit) {
	switch c := v.(type) {
	case map[string]any:
		switch s.kind {
		case segName:
			if child, ok := c[s.name]; ok {
				next(c, s.name, 0, child)
			}
		case segWild:
			for _, k := range sortedKeys(c) {
				next(c, k, 0, c[k])
			}
		}
	case []any:
		switch s.kind {
		case segIndex:
			i := s.index
			if i < 0 {
				i += len(c)
			}
			if i >= 0 && i < len(c) {
				next(c, "", i, c[i])
			}
		case segWild:
			for i, child := range c {
				next(c, "", i, child)
			}
		}
	}
}

// descend calls fn on v and on every value below it, parents before
// children.
func descend(v any, fn func(any)) {
	fn(v)
	switch c := v.(type) {
	case map[string]any:
		for _, k := range sortedKeys(c) {
			descend(c[k], fn)
		}
	case []any:
		for _, child := range c {
			descend(child, fn)
		}
	}
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// ErrTrailingData is returned by Decode for input with more after the value.
var ErrTrailingData = errors.New("json: data after the top-level value")

// Decode parses one JSON value with numbers kept as json.Number (exact: no
// float64 rounding of large integers). Anything but whitespace after the
// value is an error.
func Decode(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		if err == io.EOF {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, ErrTrailingData
	}
	return v, nil
}
