package tracecontext

import "strings"

// FromXRay returns the W3C traceparent for an X-Ray trace header as Lambda
// sends it in Lambda-Runtime-Trace-Id:
//
//	Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1
//	-> 00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01
//
// The trace id is the Root's time and random parts joined; the parent id is
// Parent; the flags are 01 for Sampled=1 and 00 otherwise (0, ? for a
// deferred decision, or absent). Fields may come in any order, with spaces
// around them; unknown fields (Lineage, Self) are ignored. Hex digits are
// written in lower case, as W3C requires.
//
// ok is false, and no traceparent can be made, when there is no Root or no
// Parent (W3C has no form without a parent id, and inventing one would hang
// the function's spans under a span nobody recorded), when a field is
// malformed or repeated, or when an id is all zeros (invalid in W3C).
func FromXRay(header string) (traceparent string, ok bool) {
	var root, parent, sampled string
	var haveRoot, haveParent, haveSampled bool
	for field := range strings.SplitSeq(header, ";") {
		field = strings.TrimSpace(field)
		if field == "" {
			continue
		}
		key, value, found := strings.Cut(field, "=")
		if !found {
			return "", false
		}
		switch strings.TrimSpace(key) {
		case "Root":
			if haveRoot {
				return "", false
			}
			root, haveRoot = strings.TrimSpace(value), true
		case "Parent":
			if haveParent {
				return "", false
			}
			parent, haveParent = strings.TrimSpace(value), true
		case "Sampled":
			if haveSampled {
				return "", false
			}
			sampled, haveSampled = strings.TrimSpace(value), true
		}
	}
	// Root is "1-" + 8 hex digits (epoch seconds) + "-" + 24 hex digits.
	if len(root) != 35 || root[:2] != "1-" || root[10] != '-' || !isHex(root[2:10]) || !isHex(root[11:]) {
		return "", false
	}
	if len(parent) != 16 || !isHex(parent) {
		return "", false
	}
	traceID := strings.ToLower(root[2:10] + root[11:])
	parentID := strings.ToLower(parent)
	if allZero(traceID) || allZero(parentID) {
		return "", false
	}
	flags := "00"
	switch sampled {
	case "1":
		flags = "01"
	case "0", "?", "":
	default:
		return "", false
	}
	if haveSampled && sampled == "" {
		return "", false
	}
	return "00-" + traceID + "-" + parentID + "-" + flags, true
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func allZero(s string) bool {
	return strings.Trim(s, "0") == ""
}
