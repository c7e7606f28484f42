package redact

import (
	"bytes"
	"slices"
)

// Detectors find sensitive values inside text. Each is a hand-written
// scanner rather than a regular expression: they run on every string of
// every response, so they must cost next to nothing on text without a
// candidate (each starts from a bytes.IndexByte or bytes.Index), and their
// boundary rules are easier to state and test in code.
//
// A detector reports spans in s, left to right and non-overlapping. Spans
// always start and end on UTF-8 rune boundaries, so masking keeps valid
// UTF-8 valid.

// span is a match: s[start:end].
type span struct{ start, end int }

// detector is one kind of sensitive value.
type detector struct {
	name string
	kind detectorKind
	find func(s []byte, out []span) []span
}

type detectorKind uint8

const (
	kindEmail detectorKind = iota
	kindCard
	kindAWSKey
	kindSSN
)

// Detector names as configured.
const (
	DetectEmail   = "email"
	DetectCard    = "card"
	DetectAWSKey  = "aws-access-key"
	DetectUSSSN   = "us-ssn"
	detectorsNone = "none"
)

// allDetectors is every detector, in the order of DetectorNames.
var allDetectors = []detector{
	{DetectEmail, kindEmail, findEmails},
	{DetectCard, kindCard, findCards},
	{DetectAWSKey, kindAWSKey, findAWSKeys},
	{DetectUSSSN, kindSSN, findSSNs},
}

// DetectorNames lists the detectors, the default set.
var DetectorNames = []string{DetectEmail, DetectCard, DetectAWSKey, DetectUSSSN}

func detectorByName(name string) (detector, bool) {
	for _, d := range allDetectors {
		if d.name == name {
			return d, true
		}
	}
	return detector{}, false
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }
func isLetter(c byte) bool {
	return c >= 'a' && c <= 'z' || isUpper(c)
}
func isAlnum(c byte) bool { return isDigit(c) || isLetter(c) }

// isWord is what may not touch a match on either side: a match glued to
// letters or digits is part of a longer token (an id, a hash), not a value.
func isWord(c byte) bool { return isAlnum(c) || c == '_' }

// --- e-mail ---------------------------------------------------------------

// isLocal reports a byte of an address's local part: the unquoted characters
// people actually use, plus any non-ASCII byte (RFC 6531 addresses), so that
// "jürgen@example.de" is masked whole rather than leaving "jü" behind.
// '*' is deliberately absent: the default mask "***" placed before an
// unmatched "@domain" must not itself form an address (idempotence).
func isLocal(c byte) bool {
	return isAlnum(c) || c >= 0x80 || c == '.' || c == '_' || c == '%' || c == '+' || c == '-'
}

const (
	maxLocal = 64  // RFC 5321 limit on the local part
	maxLabel = 63  // RFC 1035 limit on a DNS label
	maxEmail = 254 // RFC 5321 limit on a path
)

// findEmails finds local@domain where the domain has at least two ASCII
// labels and ends in an alphabetic top-level label of two letters or more
// ("a@host" and "a@10.0.0.1" are not addresses to this detector).
func findEmails(s []byte, out []span) []span {
	floor := 0 // matches must not overlap
	for from := 0; ; {
		at := bytes.IndexByte(s[from:], '@')
		if at < 0 {
			return out
		}
		at += from
		from = at + 1
		start := at
		for start > floor && isLocal(s[start-1]) {
			start--
		}
		for start < at && s[start] == '.' {
			start++ // a sentence's dot is not part of the address
		}
		if start == at || s[at-1] == '.' || at-start > maxLocal {
			continue
		}
		end := domainEnd(s, at+1)
		if end < 0 || end-start > maxEmail {
			continue
		}
		out = append(out, span{start, end})
		floor, from = end, end
	}
}

// domainEnd returns the end of the domain starting at i, or -1. It takes
// the longest run of labels whose last label is a plausible top-level one,
// so "a@b.com.42" ends after "com" and "a@b.com." leaves the dot.
func domainEnd(s []byte, i int) int {
	end, labels := -1, 0
	for {
		j := i
		for j < len(s) && (isAlnum(s[j]) || s[j] == '-') {
			j++
		}
		n := j - i
		if n == 0 || n > maxLabel || s[i] == '-' || s[j-1] == '-' {
			return end
		}
		labels++
		if labels >= 2 && n >= 2 && allLetters(s[i:j]) {
			end = j
		}
		if j+1 < len(s) && s[j] == '.' && isAlnum(s[j+1]) {
			i = j + 1
			continue
		}
		return end
	}
}

func allLetters(b []byte) bool {
	for _, c := range b {
		if !isLetter(c) {
			return false
		}
	}
	return true
}

// --- card numbers -----------------------------------------------------------

const (
	minCardDigits = 13
	maxCardDigits = 19
)

// findCards finds payment card numbers: 13 to 19 digits, written whole or
// in groups separated by single spaces or dashes, that start with a card
// network's prefix and pass the Luhn check.
//
// Digits are grouped as written, and a card is a window of whole groups:
// "4111 1111 1111 1111" and "4111111111111111" match, but 16 digits cut out
// of a 25-digit id do not. The prefix check (3, 4, 5, 6, or 2221-2720)
// keeps epoch timestamps in milliseconds or nanoseconds, which the Luhn
// check alone would pass one time in ten, from being taken for cards.
// A digit run glued to letters, or part of a decimal number ("0.4111..."),
// is not a card.
func findCards(s []byte, out []span) []span {
	var buf [24]span
	for i := 0; i < len(s); {
		if !isDigit(s[i]) {
			i++
			continue
		}
		groups := digitGroups(s, i, buf[:0])
		runStart, runEnd := groups[0].start, groups[len(groups)-1].end
		i = runEnd
		leftOK := runStart == 0 || !isWord(s[runStart-1]) && s[runStart-1] != '.'
		rightOK := runEnd == len(s) || !isWord(s[runEnd]) &&
			(s[runEnd] != '.' || runEnd+1 == len(s) || !isDigit(s[runEnd+1]))
		for g := 0; g < len(groups); {
			last := -1
			if g > 0 || leftOK {
				digits := 0
				for h := g; h < len(groups); h++ {
					digits += groups[h].end - groups[h].start
					if digits > maxCardDigits {
						break
					}
					if digits >= minCardDigits && (h < len(groups)-1 || rightOK) &&
						isCard(s[groups[g].start:groups[h].end], digits) {
						last = h // keep looking: the longest window wins
					}
				}
			}
			if last < 0 {
				g++
				continue
			}
			out = append(out, span{groups[g].start, groups[last].end})
			g = last + 1
		}
	}
	return out
}

// digitGroups returns the digit groups of the run starting at i: digits,
// then any number of (one space or dash, digits).
func digitGroups(s []byte, i int, groups []span) []span {
	for {
		j := i
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		groups = append(groups, span{i, j})
		if j+1 < len(s) && (s[j] == ' ' || s[j] == '-') && isDigit(s[j+1]) {
			i = j + 1
			continue
		}
		return groups
	}
}

// isCard checks the network prefix and the Luhn checksum of the digits in
// b (which also holds separators); n is the digit count.
func isCard(b []byte, n int) bool {
	var first [4]byte
	k, sum := 0, 0
	double := n%2 == 0 // the leftmost digit is doubled when the count is even
	for _, c := range b {
		if !isDigit(c) {
			continue
		}
		if k < 4 {
			first[k] = c
		}
		k++
		d := int(c - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	if sum%10 != 0 {
		return false
	}
	switch first[0] {
	case '3', '4', '5', '6':
		return true
	case '2':
		p := int(first[0]-'0')*1000 + int(first[1]-'0')*100 + int(first[2]-'0')*10 + int(first[3]-'0')
		return p >= 2221 && p <= 2720 // Mastercard's 2-series
	}
	return false
}

// --- AWS access key ids -------------------------------------------------------

const awsKeyLen = 20

// findAWSKeys finds access key ids: AKIA (long-term) or ASIA (temporary)
// and 16 upper-case letters or digits, not glued to other letters or digits.
func findAWSKeys(s []byte, out []span) []span {
	for from := 0; ; {
		k := bytes.Index(s[from:], []byte("IA"))
		if k < 0 {
			return out
		}
		at := from + k - 2 // the candidate's start: the A of AKIA/ASIA
		from += k + 1
		if at < 0 || s[at] != 'A' || s[at+1] != 'K' && s[at+1] != 'S' || at+awsKeyLen > len(s) {
			continue
		}
		if at > 0 && isAlnum(s[at-1]) || at+awsKeyLen < len(s) && isAlnum(s[at+awsKeyLen]) {
			continue
		}
		ok := true
		for _, c := range s[at+4 : at+awsKeyLen] {
			if !isUpper(c) && !isDigit(c) {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, span{at, at + awsKeyLen})
			from = at + awsKeyLen
		}
	}
}

// --- US social security numbers -----------------------------------------------

// findSSNs finds ddd-dd-dddd numbers that the SSA could have issued: area
// not 000, 666 or 900-999, group not 00, serial not 0000. The number must
// stand alone: not glued to letters or digits, and not one part of a longer
// dashed or dotted number ("1-555-12-3456", "123-45-6789-0").
func findSSNs(s []byte, out []span) []span {
	for from := 0; ; {
		k := bytes.IndexByte(s[from:], '-')
		if k < 0 {
			return out
		}
		dash := from + k
		from = dash + 1
		at := dash - 3
		if at < 0 || at+11 > len(s) || !ssnShape(s[at:at+11]) {
			continue
		}
		end := at + 11
		if !standalone(s, at, end) || !ssnValid(s[at:end]) {
			continue
		}
		out = append(out, span{at, end})
		from = end
	}
}

func ssnShape(b []byte) bool {
	for i, c := range b {
		if i == 3 || i == 6 {
			if c != '-' {
				return false
			}
		} else if !isDigit(c) {
			return false
		}
	}
	return true
}

func ssnValid(b []byte) bool {
	area, group, serial := string(b[0:3]), string(b[4:6]), string(b[7:11])
	return area != "000" && area != "666" && area[0] != '9' && group != "00" && serial != "0000"
}

// standalone reports that s[start:end] is not part of a longer token.
func standalone(s []byte, start, end int) bool {
	if start > 0 {
		c := s[start-1]
		if isWord(c) || (c == '-' || c == '.') && start > 1 && isDigit(s[start-2]) {
			return false
		}
	}
	if end < len(s) {
		c := s[end]
		if isWord(c) || (c == '-' || c == '.') && end+1 < len(s) && isDigit(s[end+1]) {
			return false
		}
	}
	return true
}

// --- masking ----------------------------------------------------------------

// spansIn runs the detectors on s and returns their matches sorted, with
// overlapping or touching matches merged into one.
func spansIn(dets []detector, s []byte, buf []span) []span {
	out := buf[:0]
	for _, d := range dets {
		out = d.find(s, out)
	}
	return mergeSpans(out)
}

// mergeSpans sorts spans and merges those that overlap or touch.
func mergeSpans(out []span) []span {
	if len(out) < 2 {
		return out
	}
	slices.SortFunc(out, func(a, b span) int { return a.start - b.start })
	merged := out[:1]
	for _, sp := range out[1:] {
		last := &merged[len(merged)-1]
		if sp.start <= last.end {
			last.end = max(last.end, sp.end)
			continue
		}
		merged = append(merged, sp)
	}
	return merged
}

// spansHinted is spansIn that skips the detectors the hints rule out.
func spansHinted(dets []detector, s []byte, h hints, buf []span) []span {
	out := buf[:0]
	for i := range dets {
		if h.wants(&dets[i], len(s)) {
			out = dets[i].find(s, out)
		}
	}
	return mergeSpans(out)
}

// maskSpans appends s to dst with every span replaced by mask.
func maskSpans(dst, s []byte, spans []span, mask []byte) []byte {
	prev := 0
	for _, sp := range spans {
		dst = append(dst, s[prev:sp.start]...)
		dst = append(dst, mask...)
		prev = sp.end
	}
	return append(dst, s[prev:]...)
}
