package tracecontext

import (
	"bytes"
	"encoding/json"
	"strings"
)

// A minimal scanner over JSON already known to be valid (json.Valid): it
// finds members and the spans of their values without decoding them, so
// that looking at a 1 KB event costs microseconds and a
// large request body is skipped with bytes.IndexByte.

func skipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// stringEnd returns the end (past the closing quote) of the string token
// at b[i].
func stringEnd(b []byte, i int) int {
	j := i + 1
	for {
		q := j + bytes.IndexByte(b[j:], '"')
		// A quote preceded by an odd number of backslashes is escaped.
		bs := 0
		for q-1-bs > i && b[q-1-bs] == '\\' {
			bs++
		}
		if bs%2 == 0 {
			return q + 1
		}
		j = q + 1
	}
}

// skipValue returns the end of the value at b[i].
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); {
			switch b[j] {
			case '"':
				j = stringEnd(b, j)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
			j++
		}
		return len(b)
	default: // number, true, false, null
		j := i
		for j < len(b) && !strings.ContainsRune(",}] \t\r\n", rune(b[j])) {
			j++
		}
		return j
	}
}

// eachMember calls fn with the key token (quotes included) and the value
// span of each member of the object at b[i], in order, until fn returns
// false.
func eachMember(b []byte, i int, fn func(key []byte, start, end int) bool) {
	i = skipWS(b, i+1)
	if b[i] == '}' {
		return
	}
	for {
		kEnd := stringEnd(b, i)
		start := skipWS(b, skipWS(b, kEnd)+1) // past ':'
		end := skipValue(b, start)
		if !fn(b[i:kEnd], start, end) {
			return
		}
		i = skipWS(b, end)
		if b[i] == '}' {
			return
		}
		i = skipWS(b, i+1) // past ','
	}
}

// keyIs reports whether the key token names name, exactly or (fold) in
// any letter case. Escaped keys are decoded first.
func keyIs(key []byte, name string, fold bool) bool {
	text := key[1 : len(key)-1]
	if bytes.IndexByte(text, '\\') >= 0 {
		var s string
		if json.Unmarshal(key, &s) != nil {
			return false
		}
		text = []byte(s)
	}
	if fold {
		return bytes.EqualFold(text, []byte(name))
	}
	return string(text) == name
}
