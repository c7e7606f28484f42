package firewall

import (
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// This file is a small regular-expression matcher for rule values and
// schema patterns. Go's regexp package would add about 250 KB to the lrap
// binary (mostly Unicode tables for \p{...}), a third of the size budget
// left; rules only need "does it match".
//
// The syntax is RE2's (Go's regexp) minus a few features that are refused
// at compile time, never ignored: \p{..} and \pX classes, [[:name:]] POSIX
// classes, \C, and octal escapes. Matching is a Pike VM: time linear in
// the input times the pattern size, whatever the pattern (no backtracking,
// so no catastrophic patterns). Results equal Go's regexp.MatchString for
// every pattern both accept; FuzzRegexAgainstGo checks that.

// Regex is a compiled pattern. It is immutable and safe for concurrent use.
type Regex struct {
	src           string
	prog          []inst
	anchoredStart bool // the pattern starts with \A or ^ outside (?m)
	// machines recycles matcher state: matching allocates nothing once
	// warm. Invocations run concurrently, so state is never shared.
	machines sync.Pool
}

// machine is the state of one MatchString call.
type machine struct {
	clist, nlist threadSet
	stack        []int
}

type instOp uint8

const (
	opClass    instOp = iota // consume one rune in cls
	opAnyNL                  // consume any rune
	opAnyNotNL               // consume any rune but \n
	opSplit                  // continue at x and at y
	opJmp                    // continue at x
	opBeginText
	opEndText
	opBeginLine
	opEndLine
	opWordBoundary
	opNotWordBoundary
	opMatch
)

type inst struct {
	op   instOp
	x, y int
	cls  *runeClass
}

// runeClass is a set of runes as sorted, non-overlapping [lo, hi] pairs.
// Case folding ((?i)) is applied when the class is built, as RE2 does, so
// that negated and Perl classes fold exactly as in Go's regexp.
type runeClass struct {
	ranges []rune
	negate bool
}

func (c *runeClass) contains(r rune) bool {
	return inRanges(c.ranges, r) != c.negate
}

func inRanges(rs []rune, r rune) bool {
	lo, hi := 0, len(rs)/2
	for lo < hi {
		m := (lo + hi) / 2
		switch {
		case r < rs[2*m]:
			hi = m
		case r > rs[2*m+1]:
			lo = m + 1
		default:
			return true
		}
	}
	return false
}

// RegexError is a pattern that does not compile. Code uses the words of
// Go's regexp/syntax errors where the problem is the same.
type RegexError struct {
	Code string
}

func (e *RegexError) Error() string { return e.Code }

// Limits, as RE2's: repeat counts up to 1000, nesting up to 1000, and a
// bounded program.
const (
	maxRepeat  = 1000
	maxNesting = 1000
	maxProg    = 20000
)

// CompileRegex compiles an RE2-syntax pattern (see the file comment for
// what is refused).
func CompileRegex(src string) (*Regex, error) {
	if !utf8.ValidString(src) {
		return nil, reErr("invalid UTF-8")
	}
	p := &reParser{src: src, t: src}
	n, err := p.parseAlt(0)
	if err != nil {
		return nil, err
	}
	if p.t != "" { // only a ')' stops the top level early
		return nil, &RegexError{"unexpected )"}
	}
	c := &reCompiler{}
	c.emit(n)
	if c.tooLarge {
		return nil, &RegexError{"expression too large"}
	}
	c.prog = append(c.prog, inst{op: opMatch})
	re := &Regex{src: src, prog: c.prog}
	re.anchoredStart = startsAnchored(n)
	return re, nil
}

// String returns the source pattern.
func (re *Regex) String() string { return re.src }

// --- syntax tree ---

type nodeKind uint8

const (
	nEmpty nodeKind = iota
	nClass
	nAny
	nAssert
	nConcat
	nAlt
	nRepeat
)

type node struct {
	kind     nodeKind
	cls      *runeClass
	dotNL    bool   // nAny: (?s)
	assert   instOp // nAssert
	subs     []*node
	min, max int // nRepeat; max -1 = unbounded
}

type reFlags struct {
	fold, multiLine, dotNL bool
}

type reParser struct {
	src   string
	t     string // the rest to parse
	flags reFlags
	names map[string]bool
}

func reErr(code string) error { return &RegexError{code} }

// parseAlt parses alternatives until the end or a ')' (left in p.t).
func (p *reParser) parseAlt(depth int) (*node, error) {
	if depth > maxNesting {
		return nil, reErr("expression nests too deeply")
	}
	var alts []*node
	for {
		c, err := p.parseConcat(depth)
		if err != nil {
			return nil, err
		}
		alts = append(alts, c)
		if p.t == "" || p.t[0] == ')' {
			break
		}
		p.t = p.t[1:] // '|'
	}
	if len(alts) == 1 {
		return alts[0], nil
	}
	return &node{kind: nAlt, subs: alts}, nil
}

func (p *reParser) parseConcat(depth int) (*node, error) {
	var items []*node
	lastRepeat := false
	for p.t != "" && p.t[0] != '|' && p.t[0] != ')' {
		// Repetition operators apply to the item before them.
		if min, max, rest, ok := p.repeatOp(); ok {
			lazy := strings.HasPrefix(rest, "?")
			if lazy {
				rest = rest[1:] // non-greedy: the same language, so the same match/no match
			}
			if lastRepeat {
				return nil, reErr("invalid nested repetition operator")
			}
			if len(items) == 0 {
				return nil, reErr("missing argument to repetition operator")
			}
			if min < 0 || max > maxRepeat || min > maxRepeat || max >= 0 && min > max {
				return nil, reErr("invalid repeat count")
			}
			sub := items[len(items)-1]
			items[len(items)-1] = &node{kind: nRepeat, subs: []*node{sub}, min: min, max: max}
			p.t = rest
			lastRepeat = true
			continue
		}
		lastRepeat = false
		if strings.HasPrefix(p.t, `\Q`) {
			// \Q...\E is a run of separate literals: a repetition after it
			// applies to the last character only, as in RE2.
			lit := p.t[2:]
			if i := strings.Index(lit, `\E`); i >= 0 {
				p.t = lit[i+2:]
				lit = lit[:i]
			} else {
				p.t = ""
			}
			for _, r := range lit {
				items = append(items, p.literal(r))
			}
			continue
		}
		n, err := p.parseAtom(depth)
		if err != nil {
			return nil, err
		}
		if n != nil {
			items = append(items, n)
		}
	}
	switch len(items) {
	case 0:
		return &node{kind: nEmpty}, nil
	case 1:
		return items[0], nil
	}
	return &node{kind: nConcat, subs: items}, nil
}

// repeatOp recognises *, +, ? and {n}, {n,}, {n,m} at p.t. A '{' that does
// not start a valid count is a literal, as in RE2.
func (p *reParser) repeatOp() (min, max int, rest string, ok bool) {
	if p.t == "" {
		return 0, 0, "", false
	}
	switch p.t[0] {
	case '*':
		return 0, -1, p.t[1:], true
	case '+':
		return 1, -1, p.t[1:], true
	case '?':
		return 0, 1, p.t[1:], true
	case '{':
		t := p.t[1:]
		lo, t, ok := readInt(t)
		if !ok {
			return 0, 0, "", false
		}
		hi := lo
		if strings.HasPrefix(t, ",") {
			t = t[1:]
			if strings.HasPrefix(t, "}") {
				hi = -1
			} else if hi, t, ok = readInt(t); !ok {
				return 0, 0, "", false
			}
		}
		if !strings.HasPrefix(t, "}") {
			return 0, 0, "", false
		}
		return lo, hi, t[1:], true
	}
	return 0, 0, "", false
}

// readInt reads decimal digits; an absurdly long count reads as invalid
// (-2) rather than overflowing.
func readInt(t string) (int, string, bool) {
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 || i >= 2 && t[0] == '0' { // a leading zero makes '{' a literal, as in RE2
		return 0, t, false
	}
	if i > 8 {
		return maxRepeat + 1, t[i:], true
	}
	n, _ := strconv.Atoi(t[:i])
	return n, t[i:], true
}

// parseAtom parses one item. It returns nil for a flag group "(?i)", which
// changes flags and matches nothing.
func (p *reParser) parseAtom(depth int) (*node, error) {
	switch c := p.t[0]; c {
	case '(':
		return p.parseGroup(depth)
	case '[':
		return p.parseClass()
	case '.':
		p.t = p.t[1:]
		return &node{kind: nAny, dotNL: p.flags.dotNL}, nil
	case '^':
		p.t = p.t[1:]
		if p.flags.multiLine {
			return &node{kind: nAssert, assert: opBeginLine}, nil
		}
		return &node{kind: nAssert, assert: opBeginText}, nil
	case '$':
		p.t = p.t[1:]
		if p.flags.multiLine {
			return &node{kind: nAssert, assert: opEndLine}, nil
		}
		return &node{kind: nAssert, assert: opEndText}, nil
	case '\\':
		return p.parseEscapeAtom()
	}
	r, w := utf8.DecodeRuneInString(p.t)
	p.t = p.t[w:]
	return p.literal(r), nil
}

func (p *reParser) literal(r rune) *node {
	rs := []rune{r, r}
	if p.flags.fold {
		rs = foldRanges(rs)
	}
	return &node{kind: nClass, cls: &runeClass{ranges: rs}}
}

// perlClassNode builds \d, \W, ... (folded under (?i) before negation, as
// RE2 does: (?i)\W excludes the Kelvin sign, which folds to k).
func (p *reParser) perlRanges(ranges []rune, negate bool) []rune {
	if p.flags.fold {
		ranges = foldRanges(ranges)
	}
	if negate {
		return complement(ranges)
	}
	return ranges
}

// The runes case folding can affect (unicode.SimpleFold orbits), as in
// regexp/syntax: ranges outside need no work.
const (
	minFold = 0x0041
	maxFold = 0x1e943
)

// foldRanges adds to each range every rune in the case orbit of its runes.
func foldRanges(rs []rune) []rune {
	var out []rune
	for i := 0; i < len(rs); i += 2 {
		lo, hi := rs[i], rs[i+1]
		if lo <= minFold && hi >= maxFold || hi < minFold || lo > maxFold {
			out = append(out, lo, hi)
			continue
		}
		if lo < minFold {
			out = append(out, lo, minFold-1)
			lo = minFold
		}
		if hi > maxFold {
			out = append(out, maxFold+1, hi)
			hi = maxFold
		}
		out = append(out, lo, hi)
		for c := lo; c <= hi; c++ {
			for f := unicode.SimpleFold(c); f != c; f = unicode.SimpleFold(f) {
				if f < lo || f > hi {
					out = append(out, f, f)
				}
			}
		}
	}
	return normalize(out)
}

func (p *reParser) parseGroup(depth int) (*node, error) {
	t := p.t[1:]
	saved := p.flags
	if strings.HasPrefix(t, "?") {
		t = t[1:]
		if name, rest, ok := groupName(t); ok {
			if name == "" || !isWordName(name) {
				return nil, reErr("invalid named capture")
			}
			if p.names[name] {
				return nil, reErr("duplicate capture group name")
			}
			if p.names == nil {
				p.names = map[string]bool{}
			}
			p.names[name] = true
			t = rest
		} else {
			// Flags: (?flags) for the rest of the group, (?flags:re).
			f, neg, sawFlag := p.flags, false, false
		flags:
			for {
				if t == "" {
					return nil, reErr("missing closing )")
				}
				switch t[0] {
				case 'i':
					f.fold, sawFlag = !neg, true
				case 'm':
					f.multiLine, sawFlag = !neg, true
				case 's':
					f.dotNL, sawFlag = !neg, true
				case 'U':
					sawFlag = true // ungreedy: no effect on whether it matches
				case '-':
					if neg {
						return nil, reErr("invalid or unsupported Perl syntax")
					}
					neg, sawFlag = true, false
				case ')', ':':
					if neg && !sawFlag { // "(?)" and "(?:" are fine; "(?i-)" is not
						return nil, reErr("invalid or unsupported Perl syntax")
					}
					break flags
				default:
					return nil, reErr("invalid or unsupported Perl syntax")
				}
				t = t[1:]
			}
			if t[0] == ')' {
				p.flags = f
				p.t = t[1:]
				return nil, nil
			}
			p.flags = f
			t = t[1:]
		}
	}
	p.t = t
	n, err := p.parseAlt(depth + 1)
	if err != nil {
		return nil, err
	}
	if p.t == "" {
		return nil, reErr("missing closing )")
	}
	p.t = p.t[1:]
	p.flags = saved
	return n, nil
}

// groupName recognises P<name> and <name> after "(?".
func groupName(t string) (string, string, bool) {
	switch {
	case strings.HasPrefix(t, "P<"):
		t = t[2:]
	case strings.HasPrefix(t, "<") && !strings.HasPrefix(t, "<=") && !strings.HasPrefix(t, "<!"):
		t = t[1:]
	default:
		return "", "", false
	}
	end := strings.IndexByte(t, '>')
	if end < 0 {
		return "", "", true // reported as an invalid name
	}
	return t[:end], t[end+1:], true
}

func isWordName(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isWordByte(s[i]) {
			return false
		}
	}
	return true
}

func isWordByte(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// Perl classes, ASCII-only as in RE2.
var (
	digitRanges = []rune{'0', '9'}
	spaceRanges = []rune{'\t', '\n', '\f', '\r', ' ', ' '}
	wordRanges  = []rune{'0', '9', 'A', 'Z', '_', '_', 'a', 'z'}
)

func perlClass(c byte) (ranges []rune, negate, ok bool) {
	switch c {
	case 'd':
		return digitRanges, false, true
	case 'D':
		return digitRanges, true, true
	case 's':
		return spaceRanges, false, true
	case 'S':
		return spaceRanges, true, true
	case 'w':
		return wordRanges, false, true
	case 'W':
		return wordRanges, true, true
	}
	return nil, false, false
}

func (p *reParser) parseEscapeAtom() (*node, error) {
	if len(p.t) < 2 {
		return nil, reErr("trailing backslash at end of expression")
	}
	switch c := p.t[1]; c {
	case 'A':
		p.t = p.t[2:]
		return &node{kind: nAssert, assert: opBeginText}, nil
	case 'z':
		p.t = p.t[2:]
		return &node{kind: nAssert, assert: opEndText}, nil
	case 'b':
		p.t = p.t[2:]
		return &node{kind: nAssert, assert: opWordBoundary}, nil
	case 'B':
		p.t = p.t[2:]
		return &node{kind: nAssert, assert: opNotWordBoundary}, nil
	}
	if ranges, negate, ok := perlClass(p.t[1]); ok {
		p.t = p.t[2:]
		return &node{kind: nClass, cls: &runeClass{ranges: p.perlRanges(ranges, negate)}}, nil
	}
	r, err := p.escape()
	if err != nil {
		return nil, err
	}
	return p.literal(r), nil
}

// escape reads an escape for one rune at p.t ("\n", "\x41", "\.", ...).
func (p *reParser) escape() (rune, error) {
	if len(p.t) < 2 {
		return 0, reErr("trailing backslash at end of expression")
	}
	c := p.t[1]
	p.t = p.t[2:]
	switch c {
	case 'a':
		return '\a', nil
	case 'f':
		return '\f', nil
	case 'n':
		return '\n', nil
	case 'r':
		return '\r', nil
	case 't':
		return '\t', nil
	case 'v':
		return '\v', nil
	case 'x':
		return p.hexEscape()
	case 'p', 'P':
		return 0, reErr(`\p and \P Unicode classes are not supported`)
	case 'C':
		return 0, reErr(`\C is not supported`)
	case '0', '1', '2', '3', '4', '5', '6', '7':
		if c == '0' || p.t != "" && p.t[0] >= '0' && p.t[0] <= '7' {
			return 0, reErr(`octal escapes are not supported; use \x`)
		}
	}
	if c < utf8.RuneSelf && (c == '_' || !isWordByte(c)) {
		return rune(c), nil // escaped punctuation ('_' included, as in RE2)
	}
	return 0, reErr("invalid escape sequence")
}

func (p *reParser) hexEscape() (rune, error) {
	hexVal := func(s string) (rune, bool) {
		var v rune
		for i := 0; i < len(s); i++ {
			d, ok := hexDigit(s[i])
			if !ok {
				return 0, false
			}
			if v = v*16 + d; v > unicode.MaxRune {
				return 0, false
			}
		}
		return v, s != ""
	}
	if strings.HasPrefix(p.t, "{") {
		end := strings.IndexByte(p.t, '}')
		if end < 0 {
			return 0, reErr("invalid escape sequence")
		}
		r, ok := hexVal(p.t[1:end])
		if !ok {
			return 0, reErr("invalid escape sequence")
		}
		p.t = p.t[end+1:]
		return r, nil
	}
	if len(p.t) < 2 {
		return 0, reErr("invalid escape sequence")
	}
	r, ok := hexVal(p.t[:2])
	if !ok {
		return 0, reErr("invalid escape sequence")
	}
	p.t = p.t[2:]
	return r, nil
}

func hexDigit(c byte) (rune, bool) {
	switch {
	case c >= '0' && c <= '9':
		return rune(c - '0'), true
	case c >= 'a' && c <= 'f':
		return rune(c - 'a' + 10), true
	case c >= 'A' && c <= 'F':
		return rune(c - 'A' + 10), true
	}
	return 0, false
}

func (p *reParser) parseClass() (*node, error) {
	p.t = p.t[1:] // '['
	cls := &runeClass{}
	if strings.HasPrefix(p.t, "^") {
		cls.negate = true
		p.t = p.t[1:]
	}
	var ranges []rune
	first := true
	for {
		if p.t == "" {
			return nil, reErr("missing closing ]")
		}
		if p.t[0] == ']' && !first {
			p.t = p.t[1:]
			break
		}
		first = false
		if strings.HasPrefix(p.t, "[:") && strings.Contains(p.t[2:], ":]") {
			return nil, reErr("POSIX classes [:name:] are not supported; use a range or \\d, \\s, \\w")
		}
		if len(p.t) >= 2 && p.t[0] == '\\' {
			if pr, neg, ok := perlClass(p.t[1]); ok {
				p.t = p.t[2:]
				ranges = append(ranges, p.perlRanges(pr, neg)...)
				continue
			}
		}
		lo, err := p.classChar()
		if err != nil {
			return nil, err
		}
		hi := lo
		if len(p.t) >= 2 && p.t[0] == '-' && p.t[1] != ']' {
			p.t = p.t[1:]
			if hi, err = p.classChar(); err != nil {
				return nil, err
			}
			if hi < lo {
				return nil, reErr("invalid character class range")
			}
		}
		if p.flags.fold {
			ranges = append(ranges, foldRanges([]rune{lo, hi})...)
		} else {
			ranges = append(ranges, lo, hi)
		}
	}
	cls.ranges = normalize(ranges)
	return &node{kind: nClass, cls: cls}, nil
}

func (p *reParser) classChar() (rune, error) {
	if p.t[0] == '\\' {
		return p.escape()
	}
	r, w := utf8.DecodeRuneInString(p.t)
	p.t = p.t[w:]
	return r, nil
}

// normalize sorts and merges [lo, hi] pairs.
func normalize(rs []rune) []rune {
	type pair struct{ lo, hi rune }
	ps := make([]pair, 0, len(rs)/2)
	for i := 0; i < len(rs); i += 2 {
		ps = append(ps, pair{rs[i], rs[i+1]})
	}
	slices.SortFunc(ps, func(a, b pair) int { return int(a.lo - b.lo) })
	out := make([]rune, 0, len(rs))
	for _, q := range ps {
		if n := len(out); n > 0 && q.lo <= out[n-1]+1 {
			out[n-1] = max(out[n-1], q.hi)
			continue
		}
		out = append(out, q.lo, q.hi)
	}
	return out
}

func complement(rs []rune) []rune {
	var out []rune
	next := rune(0)
	for i := 0; i < len(rs); i += 2 {
		if rs[i] > next {
			out = append(out, next, rs[i]-1)
		}
		next = rs[i+1] + 1
	}
	if next <= unicode.MaxRune {
		out = append(out, next, unicode.MaxRune)
	}
	return out
}

// startsAnchored reports whether every match must start at the beginning
// of the text, so the matcher need not try later starts.
func startsAnchored(n *node) bool {
	switch n.kind {
	case nAssert:
		return n.assert == opBeginText
	case nConcat:
		return startsAnchored(n.subs[0])
	}
	return false
}

// --- compiler: Thompson construction ---

type reCompiler struct {
	prog     []inst
	tooLarge bool
}

func (c *reCompiler) add(i inst) int {
	if len(c.prog) >= maxProg {
		c.tooLarge = true
		return len(c.prog) - 1
	}
	c.prog = append(c.prog, i)
	return len(c.prog) - 1
}

func (c *reCompiler) emit(n *node) {
	if c.tooLarge {
		return
	}
	switch n.kind {
	case nEmpty:
	case nClass:
		c.add(inst{op: opClass, cls: n.cls})
	case nAny:
		if n.dotNL {
			c.add(inst{op: opAnyNL})
		} else {
			c.add(inst{op: opAnyNotNL})
		}
	case nAssert:
		c.add(inst{op: n.assert})
	case nConcat:
		for _, s := range n.subs {
			c.emit(s)
		}
	case nAlt:
		var jumps []int
		for i, s := range n.subs {
			if i == len(n.subs)-1 {
				c.emit(s)
				break
			}
			split := c.add(inst{op: opSplit})
			c.prog[split].x = len(c.prog)
			c.emit(s)
			jumps = append(jumps, c.add(inst{op: opJmp}))
			c.prog[split].y = len(c.prog)
		}
		for _, j := range jumps {
			c.prog[j].x = len(c.prog)
		}
	case nRepeat:
		sub := n.subs[0]
		for range n.min {
			c.emit(sub)
			if c.tooLarge {
				return
			}
		}
		if n.max < 0 {
			// x*: L: split body, out; body; jmp L
			split := c.add(inst{op: opSplit})
			c.prog[split].x = len(c.prog)
			c.emit(sub)
			c.add(inst{op: opJmp, x: split})
			c.prog[split].y = len(c.prog)
			return
		}
		// Optional copies: split body, out for each.
		var splits []int
		for range n.max - n.min {
			s := c.add(inst{op: opSplit})
			c.prog[s].x = len(c.prog)
			splits = append(splits, s)
			c.emit(sub)
			if c.tooLarge {
				return
			}
		}
		for _, s := range splits {
			c.prog[s].y = len(c.prog)
		}
	}
}

// --- matcher: Pike VM without captures ---

// threadSet is a sparse set of program counters.
type threadSet struct {
	dense  []int
	sparse []int
}

func newThreadSet(n int) threadSet {
	return threadSet{dense: make([]int, 0, n), sparse: make([]int, n)}
}

func (s *threadSet) has(pc int) bool {
	i := s.sparse[pc]
	return i < len(s.dense) && s.dense[i] == pc
}

func (s *threadSet) insert(pc int) {
	s.sparse[pc] = len(s.dense)
	s.dense = append(s.dense, pc)
}

// MatchString reports whether s contains a match of the pattern.
func (re *Regex) MatchString(s string) bool {
	m, _ := re.machines.Get().(*machine)
	if m == nil {
		n := len(re.prog)
		m = &machine{clist: newThreadSet(n), nlist: newThreadSet(n), stack: make([]int, 0, 16)}
	}
	matched := re.run(m, s)
	re.machines.Put(m)
	return matched
}

func (re *Regex) run(m *machine, s string) bool {
	clist, nlist, stack := &m.clist, &m.nlist, &m.stack
	clist.dense = clist.dense[:0]
	for pos := 0; ; {
		if pos == 0 || !re.anchoredStart {
			if re.addThread(clist, 0, s, pos, stack) {
				return true
			}
		}
		if len(clist.dense) == 0 || pos >= len(s) {
			return false
		}
		r, w := utf8.DecodeRuneInString(s[pos:])
		nlist.dense = nlist.dense[:0]
		for _, pc := range clist.dense {
			in := &re.prog[pc]
			var ok bool
			switch in.op {
			case opClass:
				ok = in.cls.contains(r)
			case opAnyNL:
				ok = true
			case opAnyNotNL:
				ok = r != '\n'
			}
			if ok && re.addThread(nlist, pc+1, s, pos+w, stack) {
				return true
			}
		}
		clist, nlist = nlist, clist
		pos += w
	}
}

// addThread adds pc and everything reachable from it without consuming
// input at pos. It reports whether the match instruction was reached.
func (re *Regex) addThread(set *threadSet, pc int, s string, pos int, stack *[]int) bool {
	*stack = append((*stack)[:0], pc)
	for len(*stack) > 0 {
		pc := (*stack)[len(*stack)-1]
		*stack = (*stack)[:len(*stack)-1]
		if set.has(pc) {
			continue
		}
		set.insert(pc)
		in := &re.prog[pc]
		switch in.op {
		case opMatch:
			return true
		case opJmp:
			*stack = append(*stack, in.x)
		case opSplit:
			*stack = append(*stack, in.y, in.x)
		case opBeginText, opEndText, opBeginLine, opEndLine, opWordBoundary, opNotWordBoundary:
			if assertHolds(in.op, s, pos) {
				*stack = append(*stack, pc+1)
			}
		}
	}
	return false
}

func assertHolds(op instOp, s string, pos int) bool {
	switch op {
	case opBeginText:
		return pos == 0
	case opEndText:
		return pos == len(s)
	case opBeginLine:
		return pos == 0 || s[pos-1] == '\n'
	case opEndLine:
		return pos == len(s) || s[pos] == '\n'
	}
	// \b is ASCII, as in RE2: a byte of a multi-byte rune is not a word
	// byte, which gives the same answer as deciding per rune.
	before := pos > 0 && isWordByte(s[pos-1])
	after := pos < len(s) && isWordByte(s[pos])
	return (before != after) == (op == opWordBoundary)
}
