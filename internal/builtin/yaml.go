package builtin

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// This file converts the YAML subset lrap's config file may be written in
// to JSON, so that hooks only ever decode JSON. The subset covers what a
// config file needs:
//
//   - block mappings (key: value) and block sequences (- item), including a
//     sequence written at its key's indentation and mappings inside items;
//   - flow sequences [a, b] and flow mappings {k: v}, closed on their line;
//   - plain, 'single-quoted' and "double-quoted" scalars on one line;
//   - comments, a leading "---", and the YAML 1.2 core schema: null, ~,
//     true, false, integers (decimal, 0o octal, 0x hex) and floats.
//
// Anything else is refused with its line number rather than guessed at:
// anchors, aliases, tags, directives, block scalars (| and >), complex keys
// (?), multi-line plain or quoted scalars, tabs in indentation, duplicate
// keys and more than one document. JSON is refused only where it spans
// lines; a .json file is read as JSON anyway.

// maxDepth bounds nesting, so that no input can exhaust the stack.
const maxDepth = 64

// yamlError is a refusal, with the line it concerns.
type yamlError struct {
	line int
	msg  string
}

func (e *yamlError) Error() string { return "line " + strconv.Itoa(e.line) + ": " + e.msg }

type yamlLine struct {
	num    int // 1-based, in the file
	indent int // leading spaces
	text   string
}

type yamlParser struct {
	lines []yamlLine
	pos   int
	depth int
	out   bytes.Buffer
}

// yamlToJSON converts a document in the subset to JSON. An empty document
// (nothing but comments) is null.
func yamlToJSON(src []byte) ([]byte, error) {
	src = bytes.TrimPrefix(src, []byte("\ufeff"))
	if !utf8.Valid(src) {
		line := 1 + bytes.Count(src[:invalidUTF8At(src)], []byte("\n"))
		return nil, &yamlError{line, "not valid UTF-8"}
	}
	p := &yamlParser{}
	if err := p.split(string(src)); err != nil {
		return nil, err
	}
	if len(p.lines) == 0 {
		return []byte("null"), nil
	}
	if err := p.node(); err != nil {
		return nil, err
	}
	if p.pos < len(p.lines) {
		return nil, p.errorf(p.lines[p.pos], "unexpected content at this indentation")
	}
	return p.out.Bytes(), nil
}

func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return len(b)
}

func (p *yamlParser) errorf(l yamlLine, format string, args ...any) error {
	return &yamlError{l.num, fmt.Sprintf(format, args...)}
}

// split keeps the lines with content, measuring their indentation.
func (p *yamlParser) split(src string) error {
	started := false
	for i, text := range strings.Split(src, "\n") {
		num := i + 1
		text = strings.TrimSuffix(text, "\r")
		content := strings.TrimLeft(text, " \t")
		if content == "" || content[0] == '#' {
			continue
		}
		indent := len(text) - len(content)
		if strings.ContainsRune(text[:indent], '\t') {
			return &yamlError{num, "tab in indentation (YAML indents with spaces only)"}
		}
		if indent == 0 {
			switch {
			case content[0] == '%':
				return &yamlError{num, "directives (%) are not supported"}
			case isMarker(content, "---"):
				if started {
					return &yamlError{num, "more than one document (---) is not supported"}
				}
				if rest := strings.TrimLeft(content[3:], " \t"); rest != "" && rest[0] != '#' {
					return &yamlError{num, "content after --- is not supported; start it on the next line"}
				}
				started = true
				continue
			case isMarker(content, "..."):
				return &yamlError{num, "document end markers (...) are not supported"}
			}
		}
		started = true
		p.lines = append(p.lines, yamlLine{num: num, indent: indent, text: strings.TrimRight(content, " \t")})
	}
	return nil
}

// isMarker reports whether s is a document marker: the three characters
// alone or followed by whitespace.
func isMarker(s, marker string) bool {
	return strings.HasPrefix(s, marker) && (len(s) == 3 || s[3] == ' ' || s[3] == '\t')
}

func isSeqEntry(text string) bool { return text == "-" || strings.HasPrefix(text, "- ") }

// node converts the block node that starts at the current line.
func (p *yamlParser) node() error {
	l := p.lines[p.pos]
	if p.depth++; p.depth > maxDepth {
		return p.errorf(l, "nested deeper than %d levels", maxDepth)
	}
	defer func() { p.depth-- }()
	if isSeqEntry(l.text) {
		return p.sequence(l.indent)
	}
	if _, _, ok, err := p.splitKey(l); err != nil {
		return err
	} else if ok {
		return p.mapping(l.indent)
	}
	p.pos++
	return p.inline(l, l.text)
}

// mapping converts the block mapping whose keys are at indent.
func (p *yamlParser) mapping(indent int) error {
	p.out.WriteByte('{')
	seen := map[string]int{}
	for p.pos < len(p.lines) {
		l := p.lines[p.pos]
		if l.indent < indent {
			break
		}
		if l.indent > indent {
			return p.errorf(l, "unexpected indentation (a value continued on another line is not supported)")
		}
		if isSeqEntry(l.text) {
			return p.errorf(l, "a sequence entry (-) where a key was expected")
		}
		key, rest, ok, err := p.splitKey(l)
		if err != nil {
			return err
		}
		if !ok {
			return p.errorf(l, "expected key: value (a space must follow the colon)")
		}
		if first, dup := seen[key]; dup {
			return p.errorf(l, "duplicate key %q (first on line %d)", key, first)
		}
		seen[key] = l.num
		if len(seen) > 1 {
			p.out.WriteByte(',')
		}
		writeJSONString(&p.out, key)
		p.out.WriteByte(':')
		p.pos++
		// The value is on this line unless only a comment follows the
		// colon. A comment inside a quoted value is no comment: inline
		// tells them apart.
		if rest = strings.TrimLeft(rest, " \t"); rest != "" && rest[0] != '#' {
			if err := p.inline(l, rest); err != nil {
				return err
			}
			continue
		}
		// The value is on the following lines: a more indented node, or a
		// sequence at the key's own indentation.
		switch {
		case p.pos < len(p.lines) && p.lines[p.pos].indent > indent:
			if err := p.node(); err != nil {
				return err
			}
		case p.pos < len(p.lines) && p.lines[p.pos].indent == indent && isSeqEntry(p.lines[p.pos].text):
			if err := p.sequence(indent); err != nil {
				return err
			}
		default:
			p.out.WriteString("null")
		}
	}
	p.out.WriteByte('}')
	return nil
}

// sequence converts the block sequence whose dashes are at indent.
func (p *yamlParser) sequence(indent int) error {
	p.out.WriteByte('[')
	for n := 0; p.pos < len(p.lines); n++ {
		l := p.lines[p.pos]
		if l.indent < indent {
			break
		}
		if l.indent > indent {
			return p.errorf(l, "unexpected indentation (a value continued on another line is not supported)")
		}
		if !isSeqEntry(l.text) {
			break
		}
		if n > 0 {
			p.out.WriteByte(',')
		}
		after := l.text[1:]
		rest := strings.TrimLeft(after, " ")
		if rest == "" || rest[0] == '#' {
			p.pos++
			if p.pos < len(p.lines) && p.lines[p.pos].indent > indent {
				if err := p.node(); err != nil {
					return err
				}
			} else {
				p.out.WriteString("null")
			}
			continue
		}
		// The item starts on the dash's line: read it as a node whose
		// indentation is its column, so that "- a: 1" continues with keys
		// aligned under "a".
		p.lines[p.pos] = yamlLine{num: l.num, indent: indent + 1 + len(after) - len(rest), text: rest}
		if err := p.node(); err != nil {
			return err
		}
	}
	p.out.WriteByte(']')
	return nil
}

// splitKey recognises "key: rest" on a line. ok is false when the line
// holds a value instead.
func (p *yamlParser) splitKey(l yamlLine) (key, rest string, ok bool, err error) {
	s := l.text
	if err := p.checkStart(l, s); err != nil {
		return "", "", false, err
	}
	switch s[0] {
	case '"', '\'':
		key, n, err := p.quoted(l, s)
		if err != nil {
			return "", "", false, err
		}
		after := strings.TrimLeft(s[n:], " \t")
		if strings.HasPrefix(after, ":") && (len(after) == 1 || after[1] == ' ' || after[1] == '\t') {
			return key, after[1:], true, nil
		}
		return "", "", false, nil
	case '[', '{', '-':
		// Flow collections are values here (flow keys are not in the
		// subset); "-x" is a plain scalar, which may still be a key.
		if s[0] != '-' {
			return "", "", false, nil
		}
	}
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '#':
			if i > 0 && (s[i-1] == ' ' || s[i-1] == '\t') {
				return "", "", false, nil
			}
		case ':':
			if i+1 == len(s) || s[i+1] == ' ' || s[i+1] == '\t' {
				key = strings.TrimRight(s[:i], " \t")
				if key == "" {
					return "", "", false, p.errorf(l, "empty key")
				}
				return key, s[i+1:], true, nil
			}
		}
	}
	return "", "", false, nil
}

// checkStart refuses what the subset leaves out, by the character a node
// starts with.
func (p *yamlParser) checkStart(l yamlLine, s string) error {
	switch s[0] {
	case '&':
		return p.errorf(l, "anchors (&) are not supported")
	case '*':
		return p.errorf(l, "aliases (*) are not supported")
	case '!':
		return p.errorf(l, "tags (!) are not supported")
	case '|', '>':
		return p.errorf(l, "block scalars (| and >) are not supported; write the value quoted on one line")
	case '?':
		if len(s) == 1 || s[1] == ' ' || s[1] == '\t' {
			return p.errorf(l, "complex keys (?) are not supported")
		}
	case '@', '`', '%':
		return p.errorf(l, "a plain value cannot start with %q; quote it", s[0])
	}
	return nil
}

// inline converts the value that fills the rest of a line: a scalar or a
// flow collection.
func (p *yamlParser) inline(l yamlLine, s string) error {
	s = strings.TrimLeft(s, " \t")
	if err := p.checkStart(l, s); err != nil {
		return err
	}
	switch s[0] {
	case '[', '{':
		n, err := p.flow(l, s, 0)
		if err != nil {
			return err
		}
		return p.lineEnd(l, s[n:])
	case '"', '\'':
		v, n, err := p.quoted(l, s)
		if err != nil {
			return err
		}
		writeJSONString(&p.out, v)
		return p.lineEnd(l, s[n:])
	case ']', '}', ',':
		return p.errorf(l, "unexpected %q", s[0])
	case '-', ':':
		if len(s) == 1 || s[1] == ' ' || s[1] == '\t' {
			return p.errorf(l, "unexpected %q here; quote the value or start the entry on its own line", s[0])
		}
	}
	v := trimComment(s)
	if strings.Contains(v, ": ") || strings.Contains(v, ":\t") || strings.HasSuffix(v, ":") {
		return p.errorf(l, "a mapping is not allowed here; quote the value if it contains \": \"")
	}
	return p.scalar(l, v)
}

// lineEnd accepts what may follow a complete value: nothing, or a comment.
func (p *yamlParser) lineEnd(l yamlLine, rest string) error {
	trimmed := strings.TrimLeft(rest, " \t")
	if trimmed == "" || (trimmed[0] == '#' && len(trimmed) < len(rest)) {
		return nil
	}
	return p.errorf(l, "unexpected %q after the value", trimmed)
}

// trimComment cuts a comment (a # after whitespace, or at the start) off a
// plain value, and trailing whitespace.
func trimComment(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == '#' && (i == 0 || s[i-1] == ' ' || s[i-1] == '\t') {
			s = s[:i]
			break
		}
	}
	return strings.TrimRight(s, " \t")
}

// scalar writes a plain scalar resolved by the YAML 1.2 core schema.
func (p *yamlParser) scalar(l yamlLine, v string) error {
	switch v {
	case "null", "Null", "NULL", "~":
		p.out.WriteString("null")
		return nil
	case "true", "True", "TRUE":
		p.out.WriteString("true")
		return nil
	case "false", "False", "FALSE":
		p.out.WriteString("false")
		return nil
	}
	num, isNum, err := coreNumber(v)
	if err != nil {
		return p.errorf(l, "%s %q: %v; quote it to keep it as text", "number", v, err)
	}
	if isNum {
		p.out.WriteString(num)
		return nil
	}
	writeJSONString(&p.out, v)
	return nil
}

// coreNumber recognises the core schema's integers and floats and writes
// them as JSON numbers. isNum is false for anything else (a string).
func coreNumber(v string) (num string, isNum bool, err error) {
	if v == "" {
		return "", false, nil
	}
	switch {
	case len(v) > 2 && v[0] == '0' && (v[1] == 'x' || v[1] == 'o'):
		digits, base := v[2:], 16
		if v[1] == 'o' {
			base = 8
		}
		for _, c := range digits {
			if !isDigitIn(c, base) {
				return "", false, nil
			}
		}
		n, err := strconv.ParseUint(digits, base, 63)
		if err != nil {
			return "", true, fmt.Errorf("out of range")
		}
		return strconv.FormatUint(n, 10), true, nil
	}
	body := strings.TrimLeft(v, "+-")
	if len(v)-len(body) > 1 {
		return "", false, nil
	}
	switch strings.ToLower(body) {
	case ".inf", ".nan":
		if body == ".inf" || body == ".Inf" || body == ".INF" || body == ".nan" || body == ".NaN" || body == ".NAN" {
			return "", true, fmt.Errorf("infinity and NaN have no JSON form")
		}
		return "", false, nil
	}
	if !isCoreFloat(body) {
		return "", false, nil
	}
	if isAllDigits(body) {
		n, err := strconv.ParseInt(strings.TrimPrefix(v, "+"), 10, 64)
		if err != nil {
			return "", true, fmt.Errorf("out of range")
		}
		return strconv.FormatInt(n, 10), true, nil
	}
	f, err := strconv.ParseFloat(strings.TrimPrefix(v, "+"), 64)
	if err != nil {
		return "", true, fmt.Errorf("out of range")
	}
	return strconv.FormatFloat(f, 'g', -1, 64), true, nil
}

// isCoreFloat matches (\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?, which
// includes the integers.
func isCoreFloat(s string) bool {
	i := 0
	digits := func() int {
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return i - start
	}
	mantissa := digits()
	if i < len(s) && s[i] == '.' {
		i++
		mantissa += digits()
	}
	if mantissa == 0 {
		return false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}

func isAllDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func isDigitIn(c rune, base int) bool {
	switch {
	case c >= '0' && c <= '7':
		return true
	case base == 8:
		return false
	case c >= '8' && c <= '9', c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
		return true
	}
	return false
}

// flow converts the flow collection at s[i] and returns the index after it.
func (p *yamlParser) flow(l yamlLine, s string, i int) (int, error) {
	if p.depth++; p.depth > maxDepth {
		return 0, p.errorf(l, "nested deeper than %d levels", maxDepth)
	}
	defer func() { p.depth-- }()
	open := s[i]
	closing := byte(']')
	if open == '{' {
		closing = '}'
	}
	p.out.WriteByte(open)
	i++
	seen := map[string]bool{}
	for n := 0; ; n++ {
		i = skipSpace(s, i)
		if i == len(s) || (s[i] == '#' && (s[i-1] == ' ' || s[i-1] == '\t')) {
			return 0, p.errorf(l, "%q not closed on its line (flow collections must end on the line they start)", open)
		}
		if s[i] == closing {
			break
		}
		if n > 0 {
			p.out.WriteByte(',')
		}
		if open == '{' {
			key, next, err := p.flowScalar(l, s, i, true)
			if err != nil {
				return 0, err
			}
			if seen[key] {
				return 0, p.errorf(l, "duplicate key %q", key)
			}
			seen[key] = true
			writeJSONString(&p.out, key)
			p.out.WriteByte(':')
			i = skipSpace(s, next)
			if i == len(s) || s[i] != ':' {
				return 0, p.errorf(l, "expected ':' after the key %q in a flow mapping", key)
			}
			i++
		}
		var err error
		if i, err = p.flowValue(l, s, i); err != nil {
			return 0, err
		}
		i = skipSpace(s, i)
		switch {
		case i < len(s) && s[i] == ',':
			i++
		case i < len(s) && s[i] == closing:
		default:
			return 0, p.errorf(l, "expected ',' or %q in a flow collection", closing)
		}
	}
	p.out.WriteByte(closing)
	return i + 1, nil
}

func (p *yamlParser) flowValue(l yamlLine, s string, i int) (int, error) {
	i = skipSpace(s, i)
	if i == len(s) {
		return 0, p.errorf(l, "a flow collection is not closed on its line")
	}
	if err := p.checkStart(l, s[i:]); err != nil {
		return 0, err
	}
	switch s[i] {
	case '[', '{':
		return p.flow(l, s, i)
	case '"', '\'':
		v, n, err := p.quoted(l, s[i:])
		if err != nil {
			return 0, err
		}
		writeJSONString(&p.out, v)
		return i + n, nil
	}
	v, next, err := p.flowScalar(l, s, i, false)
	if err != nil {
		return 0, err
	}
	if v == "" {
		return 0, p.errorf(l, "empty entry in a flow collection")
	}
	return next, p.scalar(l, v)
}

// flowScalar reads a key (quoted or plain) or a plain value inside a flow
// collection: it ends at , [ ] { } or at a colon followed by a space or an
// indicator.
func (p *yamlParser) flowScalar(l yamlLine, s string, i int, key bool) (string, int, error) {
	i = skipSpace(s, i)
	if key && i < len(s) && (s[i] == '"' || s[i] == '\'') {
		v, n, err := p.quoted(l, s[i:])
		return v, i + n, err
	}
	start := i
	for ; i < len(s); i++ {
		c := s[i]
		if c == ',' || c == '[' || c == ']' || c == '{' || c == '}' {
			break
		}
		if c == ':' && (i+1 == len(s) || strings.IndexByte(" \t,[]{}", s[i+1]) >= 0) {
			break
		}
		if c == '#' && i > start && (s[i-1] == ' ' || s[i-1] == '\t') {
			break
		}
	}
	v := strings.TrimRight(s[start:i], " \t")
	if key && v == "" {
		return "", 0, p.errorf(l, "empty key in a flow mapping")
	}
	return v, i, nil
}

func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return i
}

// quoted reads the quoted scalar that starts s and returns its value and
// the length it took.
func (p *yamlParser) quoted(l yamlLine, s string) (string, int, error) {
	q := s[0]
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == q && q == '\'':
			if i+1 < len(s) && s[i+1] == '\'' {
				b.WriteByte('\'')
				i++
				continue
			}
			return b.String(), i + 1, nil
		case c == q:
			return b.String(), i + 1, nil
		case c == '\\' && q == '"':
			n, err := unescape(&b, s[i:])
			if err != nil {
				return "", 0, p.errorf(l, "%v", err)
			}
			i += n - 1
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, p.errorf(l, "quoted value not closed on its line (multi-line quoted values are not supported)")
}

// simpleEscapes are YAML's one-character escapes in double quotes.
var simpleEscapes = map[byte]string{
	'0': "\x00", 'a': "\a", 'b': "\b", 't': "\t", '\t': "\t", 'n': "\n", 'v': "\v", 'f': "\f",
	'r': "\r", 'e': "\x1b", ' ': " ", '"': "\"", '/': "/", '\\': "\\",
	'N': "\u0085", '_': "\u00a0", 'L': "\u2028", 'P': "\u2029",
}

// unescape decodes the escape sequence at the start of s into b and returns
// its length.
func unescape(b *strings.Builder, s string) (int, error) {
	if len(s) < 2 {
		return 0, fmt.Errorf("escape at the end of the line (line continuations are not supported)")
	}
	if r, ok := simpleEscapes[s[1]]; ok {
		b.WriteString(r)
		return 2, nil
	}
	digits := map[byte]int{'x': 2, 'u': 4, 'U': 8}[s[1]]
	if digits == 0 {
		return 0, fmt.Errorf("unknown escape \\%c", s[1])
	}
	if len(s) < 2+digits {
		return 0, fmt.Errorf("short escape %q", s)
	}
	code, err := strconv.ParseUint(s[2:2+digits], 16, 32)
	if err != nil {
		return 0, fmt.Errorf("bad escape %q", s[:2+digits])
	}
	r, n := rune(code), 2+digits
	// A UTF-16 surrogate pair written as two \u escapes, as in JSON.
	if r >= 0xd800 && r < 0xdc00 && digits == 4 && len(s) >= n+6 && s[n] == '\\' && s[n+1] == 'u' {
		if low, err := strconv.ParseUint(s[n+2:n+6], 16, 32); err == nil && low >= 0xdc00 && low < 0xe000 {
			r = 0x10000 + (r-0xd800)<<10 + (rune(low) - 0xdc00)
			n += 6
		}
	}
	if !utf8.ValidRune(r) {
		return 0, fmt.Errorf("escape %q is not a Unicode character", s[:n])
	}
	b.WriteRune(r)
	return n, nil
}

const hexDigits = "0123456789abcdef"

// writeJSONString writes s, valid UTF-8, as a JSON string.
func writeJSONString(b *bytes.Buffer, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\t':
			b.WriteString(`\t`)
		case c < 0x20:
			b.WriteString(`\u00`)
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&0xf])
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
}
