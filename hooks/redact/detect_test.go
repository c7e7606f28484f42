package redact

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// maskWith runs the named detectors on s and returns it masked with "***".
func maskWith(t testing.TB, names []string, s string) string {
	t.Helper()
	var dets []detector
	for _, n := range names {
		d, ok := detectorByName(n)
		if !ok {
			t.Fatalf("no detector %q", n)
		}
		dets = append(dets, d)
	}
	return string(maskSpans(nil, []byte(s), spansIn(dets, []byte(s), nil), []byte(DefaultMask)))
}

type detectCase struct{ in, want string }

func runDetectCases(t *testing.T, name string, cases []detectCase) {
	t.Helper()
	for _, tc := range cases {
		if got := maskWith(t, []string{name}, tc.in); got != tc.want {
			t.Errorf("%s(%q) = %q, want %q", name, tc.in, got, tc.want)
		}
	}
}

func TestDetectEmail(t *testing.T) {
	runDetectCases(t, DetectEmail, []detectCase{
		// True positives.
		{"alice@example.com", "***"},
		{"contact: a.b+tag@mail.sub.example.co.uk, thanks", "contact: ***, thanks"},
		{"Write to bob@example.org.", "Write to ***."},
		{"<carol_99@example.io>", "<***>"},
		{"mailto:dave@example.com?subject=x", "mailto:***?subject=x"},
		{"jürgen@example.de", "***"},                               // non-ASCII local part masked whole
		{".erin@example.com", ".***"},                              // a leading dot is punctuation
		{"x@y.com@z.org", "***@z.org"},                             // the second @ has no local part left
		{"u@b.com.42", "***.42"},                                   // the last alphabetic label ends it
		{"a@b.com b@c.net", "*** ***"},                             // two addresses
		{"https://user:pw@host.example.com/", "https://user:***/"}, // credentials in a URL
		// Near misses.
		{"user@localhost", "user@localhost"}, // one label
		{"a@10.0.0.1", "a@10.0.0.1"},         // numeric top-level label
		{"@example.com", "@example.com"},     // no local part
		{"alice@", "alice@"},                 // no domain
		{"alice@.com", "alice@.com"},         // empty label
		{"alice.@example.com", "alice.@example.com"},
		{"x@y.c", "x@y.c"},                     // one-letter top-level label
		{"name@-bad.com", "name@-bad.com"},     // label starts with a dash
		{"***@example.com", "***@example.com"}, // the mask is not a local part
		{"no at sign here", "no at sign here"},
	})
}

func TestDetectCard(t *testing.T) {
	runDetectCases(t, DetectCard, []detectCase{
		// True positives: test numbers of each network, whole and grouped.
		{"4111111111111111", "***"},
		{"card 4111 1111 1111 1111 exp 12/29", "card *** exp 12/29"},
		{"4111-1111-1111-1111", "***"},
		{"5500 0000 0000 0004", "***"}, // Mastercard
		{"2221000000000009", "***"},    // Mastercard 2-series
		{"3782 822463 10005", "***"},   // Amex, 15 digits, 4-6-5
		{"6011000000000004", "***"},    // Discover
		{"3530111333300000", "***"},    // JCB
		{"4222222222222", "***"},       // 13-digit Visa
		{"6304000000000000000", "***"}, // 19 digits
		{"-4111111111111111", "-***"},  // a negative JSON number
		{"4111111111111111,5500000000000004", "***,***"},
		{"4111111111111111 5500000000000004", "*** ***"}, // two cards in one run
		{"ref 1234 4111 1111 1111 1111", "ref 1234 ***"},
		{"4111111111111111.", "***."},
		// Near misses.
		{"4111111111111112", "4111111111111112"},                               // Luhn fails
		{"1700000000004", "1700000000004"},                                     // Luhn-valid ms timestamp: no network starts with 1
		{"1700000000000000004", "1700000000000000004"},                         // Luhn-valid ns timestamp
		{"2220000000000000", "2220000000000000"},                               // below Mastercard's 2-series
		{"411111111111", "411111111111"},                                       // 12 digits
		{"41111111111111111111", "41111111111111111111"},                       // 20 digits
		{"1234567890123454111111111111111", "1234567890123454111111111111111"}, // inside a longer id
		{"x4111111111111111", "x4111111111111111"},
		{"4111111111111111a", "4111111111111111a"},
		{"0.4111111111111111", "0.4111111111111111"}, // decimals
		{"4111111111111111.5", "4111111111111111.5"},
		{"4111  1111 1111 1111", "4111  1111 1111 1111"}, // a double space ends the run
		{"4111/1111/1111/1111", "4111/1111/1111/1111"},
	})
}

func TestDetectAWSAccessKey(t *testing.T) {
	runDetectCases(t, DetectAWSKey, []detectCase{
		{"AKIAIOSFODNN7EXAMPLE", "***"},
		{"key=ASIAY34FZKBOKMUTVV7A;", "key=***;"},
		{`"AKIAIOSFODNN7EXAMPLE"`, `"***"`},
		{"AWS_ACCESS_KEY_ID=AKIA2E0A8F3B244C9986", "AWS_ACCESS_KEY_ID=***"},
		// Near misses.
		{"AKIAIOSFODNN7EXAMPL", "AKIAIOSFODNN7EXAMPL"},     // 19 characters
		{"AKIAIOSFODNN7EXAMPLEX", "AKIAIOSFODNN7EXAMPLEX"}, // 21
		{"xAKIAIOSFODNN7EXAMPLE", "xAKIAIOSFODNN7EXAMPLE"},
		{"AKIAiosfodnn7example", "AKIAiosfodnn7example"}, // lower case
		{"AKIDIOSFODNN7EXAMPLE", "AKIDIOSFODNN7EXAMPLE"}, // other prefix
		{"ABIA", "ABIA"},
		{"IA", "IA"},
	})
}

func TestDetectUSSSN(t *testing.T) {
	runDetectCases(t, DetectUSSSN, []detectCase{
		{"123-45-6789", "***"},
		{"SSN: 078-12-3456.", "SSN: ***."},
		{"ssn-123-45-6789", "ssn-***"},
		{"(665-01-0001)", "(***)"},
		// Near misses: areas and numbers the SSA never issues.
		{"000-12-3456", "000-12-3456"},
		{"666-12-3456", "666-12-3456"},
		{"900-12-3456", "900-12-3456"},
		{"999-12-3456", "999-12-3456"},
		{"123-00-4567", "123-00-4567"},
		{"123-45-0000", "123-45-0000"},
		// Near misses: shapes and parts of longer numbers.
		{"123456789", "123456789"},
		{"123-456-789", "123-456-789"},
		{"1-123-45-6789", "1-123-45-6789"},
		{"123-45-6789-0", "123-45-6789-0"},
		{"123-45-67890", "123-45-67890"},
		{"x123-45-6789", "x123-45-6789"},
		{"2024-01-15", "2024-01-15"},
	})
}

// All detectors at once: overlapping matches merge into one mask.
func TestDetectorsTogether(t *testing.T) {
	in := "4111111111111111@example.com and 123-45-6789 and AKIAIOSFODNN7EXAMPLE"
	want := "*** and *** and ***"
	if got := maskWith(t, DetectorNames, in); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// FuzzDetectors: the detectors never panic, their spans are in order,
// inside the text and on rune boundaries, and masking is idempotent: a
// masked text has nothing left to find.
func FuzzDetectors(f *testing.F) {
	for _, s := range []string{
		"alice@example.com", "4111 1111 1111 1111", "AKIAIOSFODNN7EXAMPLE", "123-45-6789",
		"x@y.com@z.org", "jürgen@example.de", "4111111111111111 5500000000000004",
		"ref 1234 4111 1111 1111 1111", "a@b.com.42", "", "@", "-", "IA", "AKIA", "0.4111111111111111",
		"***@example.com", "1-123-45-6789", "\xff@a.com", "a@b.co\x00m",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := []byte(s)
		spans := spansIn(allDetectors, b, nil)
		prev := 0
		for _, sp := range spans {
			if sp.start < prev || sp.end <= sp.start || sp.end > len(b) {
				t.Fatalf("bad span %v after %d in %q", sp, prev, s)
			}
			if utf8.ValidString(s) && (!utf8.RuneStart(b[sp.start]) || sp.end < len(b) && !utf8.RuneStart(b[sp.end])) {
				t.Fatalf("span %v splits a rune in %q", sp, s)
			}
			prev = sp.end
		}
		once := maskWith(t, DetectorNames, s)
		if twice := maskWith(t, DetectorNames, once); twice != once {
			t.Fatalf("not idempotent: %q -> %q -> %q", s, once, twice)
		}
		if utf8.ValidString(s) && !utf8.ValidString(once) {
			t.Fatalf("masking broke UTF-8: %q -> %q", s, once)
		}
		if len(spans) == 0 && once != s {
			t.Fatalf("changed without a match: %q -> %q", s, once)
		}
		if strings.Count(once, DefaultMask) < len(spans) {
			t.Fatalf("%d spans but fewer masks in %q", len(spans), once)
		}
	})
}
