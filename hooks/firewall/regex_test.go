package firewall

import (
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Go's regexp is the oracle: the matcher must agree with it on every
// pattern both accept. (Tests may import regexp; the binary does not.)

var regexCases = []struct {
	pattern string
	inputs  []string
}{
	{``, []string{"", "a"}},
	{`abc`, []string{"abc", "xabcx", "ab", ""}},
	{`^/admin(/|$)`, []string{"/admin", "/admin/x", "/administrator", "x/admin"}},
	{`(?i)sqlmap|nikto|nmap`, []string{"SQLMap/1.7", "Nikto", "curl", "nMaP"}},
	{`^(GET|POST)$`, []string{"GET", "POST", "GETS", "get", ""}},
	{`a*b+c?d{2}e{1,}f{0,2}`, []string{"bdd ef", "aabbbcddeeff", "bddef", "bdef"}},
	{`[a-c-e]`, []string{"-", "d", "e", "b"}},
	{`[]a]`, []string{"]", "a", "b"}},
	{`[^]a]`, []string{"]", "a", "b", "\n"}},
	{`[\d\s]+x`, []string{"1 2x", "x", "a1x"}},
	{`[^\D]`, []string{"a", "5"}},
	{`\bword\b`, []string{"a word here", "swordfish", "word", "wordé"}},
	{`\Bor\B`, []string{"word", "or"}},
	{`(?m)^b$`, []string{"a\nb\nc", "ab", "b"}},
	{`^b$`, []string{"a\nb\nc", "b", "b\n"}},
	{`(?s)a.b`, []string{"a\nb", "axb"}},
	{`a.b`, []string{"a\nb", "aéb"}},
	{`\Qa.b*\E+`, []string{"a.b*", "a.b**", "axb"}},
	{`\Q00\E*x\Q\E\Qab`, []string{"", "0x", "xab", "0xab"}},
	{`\x41\x{263a}\t`, []string{"A☺\t", "A☺ "}},
	{`(?i)k`, []string{"K", "\u212a", "k", "x"}},
	{`(?i)\W`, []string{"\u212a", "\u017f", "!", "a"}},
	{`(?i)[\W]`, []string{"\u212a", "!"}},
	{`(?i)[^k]`, []string{"K", "\u212a", "j"}},
	{`(?i:A)a`, []string{"aa", "Aa", "aA"}},
	{`((?i)a)a`, []string{"Aa", "AA"}},
	{`(?P<x>ab)+(?<y>c)`, []string{"ababc", "c"}},
	{`(a|b|)+$`, []string{"", "ab", "c"}},
	{`(a*)*b`, []string{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaac", "aab"}},
	{`^*a`, []string{"a"}},
	{`x{,2}`, []string{"x{,2}", "xx"}},
	{`a{`, []string{"a{"}},
	{`(?)a(?:b)`, []string{"ab", "a"}},
	{`{00}a{01}`, []string{"{00}a{01}", "a"}},
	{`é+`, []string{"éé", "e"}},
	{`\.\*\\\_`, []string{`.*\_`}},
	{`[\x00-\x{10FFFF}]`, []string{"\xff", "a"}},
	{`.`, []string{"\xff", ""}},
	{`\A\z`, []string{""}},
	{`a*?b??c+?`, []string{"c", "aabc"}},
}

func TestRegexAgreesWithGo(t *testing.T) {
	for _, tc := range regexCases {
		mine, err := CompileRegex(tc.pattern)
		if err != nil {
			t.Errorf("CompileRegex(%q): %v", tc.pattern, err)
			continue
		}
		oracle := regexp.MustCompile(tc.pattern)
		for _, in := range tc.inputs {
			if got, want := mine.MatchString(in), oracle.MatchString(in); got != want {
				t.Errorf("%q on %q: %v, Go's regexp says %v", tc.pattern, in, got, want)
			}
		}
	}
}

// Case folding agrees with Go's regexp rune by rune, for the classes where
// RE2's order (fold, then negate) matters.
func TestRegexFoldExhaustive(t *testing.T) {
	for _, pattern := range []string{`(?i)k`, `(?i)[a-z]`, `(?i)[^a-z]`, `(?i)\w`, `(?i)\W`, `(?i)[\W\d]`,
		`(?i)[^\S]`, `(?i)[ſ-ǿ]`, `(?i)[\x{400}-\x{4ff}]`, `(?i)ß`, `(?i)[^σ]`} {
		mine, err := CompileRegex(pattern)
		if err != nil {
			t.Fatal(err)
		}
		oracle := regexp.MustCompile(pattern)
		for r := rune(0); r < 0x2200; r++ {
			if s := string(r); mine.MatchString(s) != oracle.MatchString(s) {
				t.Errorf("%s on U+%04X: %v, Go says %v", pattern, r, mine.MatchString(s), oracle.MatchString(s))
			}
		}
	}
}

func TestRegexErrors(t *testing.T) {
	for pattern, want := range map[string]string{
		`(`:                       "missing closing )",
		`a)`:                      "unexpected )",
		`[a`:                      "missing closing ]",
		`[]`:                      "missing closing ]",
		`*a`:                      "missing argument to repetition operator",
		`a|*`:                     "missing argument to repetition operator",
		`a**`:                     "invalid nested repetition operator",
		`a*??`:                    "invalid nested repetition operator",
		`a{2}{3}`:                 "invalid nested repetition operator",
		`a{1001}`:                 "invalid repeat count",
		`a{3,2}`:                  "invalid repeat count",
		`[z-a]`:                   "invalid character class range",
		`\`:                       "trailing backslash at end of expression",
		`\y`:                      "invalid escape sequence",
		`\1`:                      "invalid escape sequence",
		`\x{110000}`:              "invalid escape sequence",
		`(?=a)`:                   "invalid or unsupported Perl syntax",
		`(?i-)`:                   "invalid or unsupported Perl syntax",
		`(?P<>a)`:                 "invalid named capture",
		`(?P<a>x)(?P<a>y)`:        "duplicate capture group name",
		`\pL`:                     `\p and \P Unicode classes are not supported`,
		`\p{Greek}`:               `\p and \P Unicode classes are not supported`,
		`[[:alpha:]]`:             "POSIX classes [:name:] are not supported",
		`\012`:                    "octal escapes are not supported",
		"a\x8d":                   "invalid UTF-8",
		`\C`:                      `\C is not supported`,
		`((a{1000}){1000}){1000}`: "expression too large",
	} {
		_, err := CompileRegex(pattern)
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("CompileRegex(%q) = %v, want %q", pattern, err, want)
		}
	}
}

// Matching is linear: a pattern that makes backtracking engines take
// exponential time is instant here.
func TestRegexLinearTime(t *testing.T) {
	re, err := CompileRegex(`^(a+)+$`)
	if err != nil {
		t.Fatal(err)
	}
	in := strings.Repeat("a", 100000) + "!"
	start := time.Now()
	if re.MatchString(in) {
		t.Fatal("matched")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v", d)
	}
}

// One Regex serves concurrent invocations (run with -race).
func TestRegexConcurrent(t *testing.T) {
	re, err := CompileRegex(`(?i)^/(orders|admin)/[0-9]+$`)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				in, want := "/orders/"+strconv.Itoa(i), true
				if (g+i)%2 == 0 {
					in, want = "/ORDERS/x"+strconv.Itoa(i), false
				}
				if re.MatchString(in) != want {
					t.Errorf("%q: want %v", in, want)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// FuzzRegexAgainstGo: for any pattern, the matcher accepts what Go's
// regexp accepts (except what it documents as not supported) and refuses
// what Go refuses, and on every input both say the same.
func FuzzRegexAgainstGo(f *testing.F) {
	for _, tc := range regexCases {
		for _, in := range tc.inputs {
			f.Add(tc.pattern, in)
		}
	}
	f.Fuzz(func(t *testing.T, pattern, input string) {
		if len(pattern) > 200 {
			return // keeps counted repetitions' programs small
		}
		oracle, goErr := regexp.Compile(pattern)
		mine, err := CompileRegex(pattern)
		limit := func(e error) bool {
			return e != nil && (strings.Contains(e.Error(), "too large") || strings.Contains(e.Error(), "too deeply"))
		}
		switch {
		case limit(goErr) || limit(err):
			return
		case goErr != nil && err == nil:
			t.Fatalf("%q: Go refuses (%v), the matcher accepts", pattern, goErr)
		case goErr == nil && err != nil:
			if !strings.Contains(err.Error(), "not supported") {
				t.Fatalf("%q: Go accepts, the matcher refuses: %v", pattern, err)
			}
			return
		case err != nil:
			return
		}
		for _, in := range []string{input, "", pattern} {
			if got, want := mine.MatchString(in), oracle.MatchString(in); got != want {
				t.Fatalf("%q on %q: %v, Go's regexp says %v", pattern, in, got, want)
			}
		}
	})
}
