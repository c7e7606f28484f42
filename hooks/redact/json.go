package redact

import (
	"bytes"
	"context"
	"encoding/json"
	"unicode/utf16"
	"unicode/utf8"
)

// JSON bodies are redacted by splicing: the document is walked in its
// original bytes, and only the values that change are rewritten. Everything
// else (key order, whitespace, number literals, escapes) is copied through
// as it was, so a redacted document differs from the original only where
// something was masked, and an unchanged one is not copied at all.
//
// The walker validates as it goes (the grammar of RFC 8259, as
// encoding/json accepts it), so a body is read once: no json.Valid pass
// first. For each string it notes which detectors could match at all (an
// '@' for e-mail, enough digits for a card...), so that on the usual string
// no detector runs.

// pathMatch marks, in a decoded document, a value a configured path
// selected. Decoding never produces this type.
type pathMatch struct{}

// maxDepth bounds nesting, as encoding/json does: the walker recurses.
const maxDepth = 10000

// walker rewrites one document.
type walker struct {
	r *redactor
	// ctx ends when lrap abandoned the call (over budget): the walk then
	// stops early instead of burning the function's CPU for nothing.
	ctx context.Context
	// values counts values walked, to look at ctx only now and then.
	values int
	b      []byte
	out    []byte // nil until the first change
	// last is the end of what has been copied to out.
	last  int
	masks int
	depth int
	spans []span // scratch for detector matches
}

// byte classes for the string scan.
const (
	clSpecial = 1 << iota // '"', '\\' or a control character: ends the fast scan
	clDigit
	clUpper
	clAt
	clDash
	clSpace
)

var classes = func() (t [256]uint8) {
	for c := 0; c < 0x20; c++ {
		t[c] = clSpecial
	}
	t['"'], t['\\'] = clSpecial, clSpecial
	for c := '0'; c <= '9'; c++ {
		t[c] = clDigit
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = clUpper
	}
	t['@'], t['-'], t[' '] = clAt, clDash, clSpace
	return t
}()

// hints summarises a string for choosing detectors.
type hints struct {
	at, dash bool
	// digitRun is the longest run of digits with spaces or dashes between
	// them, counting only the digits: a card or an SSN needs one that long.
	digitRun, uppers int
}

// wants reports whether detector d could match a string of n bytes with
// these hints.
func (h hints) wants(d *detector, n int) bool {
	switch d.kind {
	case kindEmail:
		return h.at
	case kindCard:
		return h.digitRun >= minCardDigits
	case kindSSN:
		return h.dash && h.digitRun >= 9
	case kindAWSKey:
		return n >= awsKeyLen && h.uppers >= 4
	}
	return true
}

// wantsAny reports whether any of dets could match.
func (h hints) wantsAny(dets []detector, n int) bool {
	for i := range dets {
		if h.wants(&dets[i], n) {
			return true
		}
	}
	return false
}

// walk walks the whole document. It returns false if b is not valid JSON.
func (w *walker) walk(node any, tree bool) bool {
	end := w.value(0, node, tree)
	return end >= 0 && w.ws(end) == len(w.b)
}

// replace copies b[last:start] and repl to out, and skips b[start:end].
func (w *walker) replace(start, end int, repl []byte) {
	if w.out == nil {
		w.out = make([]byte, 0, len(w.b)+len(w.b)/8)
	}
	w.out = append(w.out, w.b[w.last:start]...)
	w.out = append(w.out, repl...)
	w.last = end
}

// result returns the rewritten document, or nil when nothing changed.
func (w *walker) result() []byte {
	if w.out == nil {
		return nil
	}
	return append(w.out, w.b[w.last:]...)
}

// at returns b[i], or 0 past the end: 0 is valid nowhere in JSON, so every
// check fails there without a bounds check of its own.
func (w *walker) at(i int) byte {
	if i < len(w.b) {
		return w.b[i]
	}
	return 0
}

func (w *walker) ws(i int) int {
	for i < len(w.b) {
		switch w.b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// value walks the value at i (after any whitespace) and returns its end,
// or -1 if it is not valid. node is the same value in the decoded document
// when tree is true; there, pathMatch values are masked whole.
func (w *walker) value(i int, node any, tree bool) int {
	if w.values++; w.values&4095 == 0 && w.ctx != nil && w.ctx.Err() != nil {
		return -1
	}
	i = w.ws(i)
	if tree {
		if _, ok := node.(pathMatch); ok {
			return w.maskValue(i)
		}
	}
	switch c := w.at(i); {
	case c == '{':
		return w.object(i, node, tree)
	case c == '[':
		return w.array(i, node, tree)
	case c == '"':
		return w.str(i)
	case c == 't':
		return w.literal(i, "true")
	case c == 'f':
		return w.literal(i, "false")
	case c == 'n':
		return w.literal(i, "null")
	case c == '-' || isDigit(c):
		return w.number(i)
	}
	return -1
}

func (w *walker) object(i int, node any, tree bool) int {
	if w.depth++; w.depth > maxDepth {
		return -1
	}
	defer func() { w.depth-- }()
	obj, _ := node.(map[string]any)
	tree = tree && obj != nil
	i = w.ws(i + 1)
	if w.at(i) == '}' {
		return i + 1
	}
	for {
		if w.at(i) != '"' {
			return -1
		}
		var child any
		if tree {
			// The key is read before str may rewrite it: the path matched
			// the original name.
			child = obj[w.key(i)]
		}
		i = w.str(i)
		if i < 0 {
			return -1
		}
		i = w.ws(i)
		if w.at(i) != ':' {
			return -1
		}
		if i = w.value(i+1, child, tree); i < 0 {
			return -1
		}
		i = w.ws(i)
		switch w.at(i) {
		case '}':
			return i + 1
		case ',':
			i = w.ws(i + 1)
		default:
			return -1
		}
	}
}

func (w *walker) array(i int, node any, tree bool) int {
	if w.depth++; w.depth > maxDepth {
		return -1
	}
	defer func() { w.depth-- }()
	arr, _ := node.([]any)
	tree = tree && arr != nil
	i = w.ws(i + 1)
	if w.at(i) == ']' {
		return i + 1
	}
	for n := 0; ; n++ {
		var child any
		if tree && n < len(arr) {
			child = arr[n]
		}
		if i = w.value(i, child, tree); i < 0 {
			return -1
		}
		i = w.ws(i)
		switch w.at(i) {
		case ']':
			return i + 1
		case ',':
			i++
		default:
			return -1
		}
	}
}

func (w *walker) literal(i int, lit string) int {
	if len(w.b)-i < len(lit) || string(w.b[i:i+len(lit)]) != lit {
		return -1
	}
	return i + len(lit)
}

// scanString validates the string token at i. It returns its end (past
// the closing quote, -1 if invalid), whether it holds escapes, and its
// hints.
func (w *walker) scanString(i int) (int, bool, hints) {
	var h hints
	escaped, run := false, 0
	for j := i + 1; j < len(w.b); j++ {
		c := w.b[j]
		cl := classes[c]
		if cl == 0 {
			run = 0
			continue
		}
		switch cl {
		case clDigit:
			if run++; run > h.digitRun {
				h.digitRun = run
			}
			continue
		case clSpace:
			continue
		case clDash:
			h.dash = true
			continue
		case clUpper:
			h.uppers++
		case clAt:
			h.at = true
		}
		run = 0
		if cl != clSpecial {
			continue
		}
		switch {
		case c == '"':
			return j + 1, escaped, h
		case c < 0x20:
			return -1, false, h
		}
		// A backslash. The short escapes stand for characters no detector
		// looks at; \uXXXX can hide anything ("\u0040" is '@'), so then
		// every detector may match.
		escaped = true
		switch w.at(j + 1) {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			j++
		case 'u':
			for k := j + 2; k < j+6; k++ {
				if !isHex(w.at(k)) {
					return -1, false, h
				}
			}
			h.at, h.dash, h.digitRun, h.uppers = true, true, len(w.b), len(w.b)
			j += 5
		default:
			return -1, false, h
		}
	}
	return -1, false, h
}

func isHex(c byte) bool { return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

// key returns the decoded text of the (valid) key token at i.
func (w *walker) key(i int) string {
	end, escaped, _ := w.scanString(i)
	if end < 0 {
		return ""
	}
	if !escaped {
		return string(w.b[i+1 : end-1])
	}
	return string(unquote(nil, w.b[i+1:end-1]))
}

// str walks the string token at i (a value or a key), masking what the
// detectors find, and returns its end or -1.
func (w *walker) str(i int) int {
	end, escaped, h := w.scanString(i)
	if end < 0 {
		return -1
	}
	dets := w.r.detectors
	if !h.wantsAny(dets, end-i-2) {
		return end // the usual string: nothing any detector could match
	}
	if !escaped {
		// Without escapes the token's bytes are the string itself, and the
		// mask, already JSON-escaped, can be spliced straight in.
		raw := w.b[i+1 : end-1]
		w.spans = spansHinted(dets, raw, h, w.spans)
		if len(w.spans) == 0 {
			return end
		}
		repl := make([]byte, 0, end-i)
		repl = append(repl, '"')
		repl = maskSpans(repl, raw, w.spans, w.r.jsonMask)
		repl = append(repl, '"')
		w.replace(i, end, repl)
		w.masks += len(w.spans)
		return end
	}
	s := unquote(make([]byte, 0, end-i), w.b[i+1:end-1])
	w.spans = spansHinted(dets, s, h, w.spans)
	if len(w.spans) == 0 {
		return end
	}
	masked := maskSpans(nil, s, w.spans, w.r.mask)
	w.replace(i, end, encodeString(masked))
	w.masks += len(w.spans)
	return end
}

// number validates the number at i and returns its end or -1. A card
// number written as a JSON number is masked whole: the value becomes the
// mask string.
func (w *walker) number(i int) int {
	j := i
	if w.at(j) == '-' {
		j++
	}
	switch c := w.at(j); {
	case c == '0':
		j++
	case c >= '1' && c <= '9':
		for isDigit(w.at(j)) {
			j++
		}
	default:
		return -1
	}
	if w.at(j) == '.' {
		j++
		if !isDigit(w.at(j)) {
			return -1
		}
		for isDigit(w.at(j)) {
			j++
		}
	}
	if c := w.at(j); c == 'e' || c == 'E' {
		j++
		if c := w.at(j); c == '+' || c == '-' {
			j++
		}
		if !isDigit(w.at(j)) {
			return -1
		}
		for isDigit(w.at(j)) {
			j++
		}
	}
	if j-i >= minCardDigits && hasDetector(w.r.detectors, kindCard) {
		w.spans = findCards(w.b[i:j], w.spans[:0])
		if len(w.spans) > 0 {
			w.replace(i, j, w.r.quotedMask)
			w.masks++
		}
	}
	return j
}

// maskValue replaces the value at i, whatever it is, with the mask.
func (w *walker) maskValue(i int) int {
	// Walk the value with no detectors to find its end (and validate it);
	// the mask replaces it all.
	sub := walker{r: &redactor{}, b: w.b, depth: w.depth}
	end := sub.value(i, nil, false)
	if end < 0 {
		return -1
	}
	// A value that already is the mask (a body redacted before, by a
	// chained lrap for example) is not a change.
	if !bytes.Equal(w.b[i:end], w.r.quotedMask) {
		w.replace(i, end, w.r.quotedMask)
		w.masks++
	}
	return end
}

func hasDetector(dets []detector, kind detectorKind) bool {
	for i := range dets {
		if dets[i].kind == kind {
			return true
		}
	}
	return false
}

// encodeString returns s as a JSON string token, without the HTML escaping
// encoding/json applies by default (a redacted "<" must stay "<").
func encodeString(s []byte) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(string(s)) // a string always encodes
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// unquote appends the text of a validated JSON string's contents (without
// its quotes) to dst, decoding it as encoding/json does: escapes resolved,
// UTF-16 surrogate pairs joined, and a lone surrogate or an invalid UTF-8
// byte turned into U+FFFD.
func unquote(dst, raw []byte) []byte {
	for i := 0; i < len(raw); {
		c := raw[i]
		switch {
		case c == '\\':
			e := raw[i+1]
			if e != 'u' {
				dst = append(dst, unescape[e])
				i += 2
				continue
			}
			r := hex4(raw[i+2 : i+6])
			i += 6
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
					r2 = hex4(raw[i+2 : i+6])
				}
				if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
					r = d
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			i++
		default:
			r, size := utf8.DecodeRune(raw[i:])
			if r == utf8.RuneError && size == 1 {
				dst = utf8.AppendRune(dst, utf8.RuneError)
			} else {
				dst = append(dst, raw[i:i+size]...)
			}
			i += size
		}
	}
	return dst
}

var unescape = [256]byte{'"': '"', '\\': '\\', '/': '/', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}

func hex4(b []byte) rune {
	var r rune
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		default:
			c = c - 'A' + 10
		}
		r = r<<4 | rune(c)
	}
	return r
}
