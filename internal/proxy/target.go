package proxy

import "strings"

// checkTarget validates a request target as received on the wire
// (r.RequestURI) and returns why it is refused, or "" when it may be
// forwarded.
//
// lrap forwards to exactly one upstream, so the target must be a plain
// origin-form path. Refused, because they could address something other than
// the path the runtime meant, or another host through a lenient parser:
//   - absolute form (http://host/path), authority form (CONNECT host:port) and
//     asterisk form (OPTIONS *);
//   - a path starting with "//", which many parsers read as a host;
//   - dot segments, plain or percent-encoded (".", "..", "%2e", ".%2E", …);
//   - percent-encoded slashes and backslashes, and literal backslashes, which
//     some servers treat as separators and so smuggle segments past the check.
//
// The Runtime API's own paths never contain any of these.
func checkTarget(uri string) string {
	if uri == "" || uri[0] != '/' {
		return "request target must be a path beginning with \"/\" (origin form); absolute, authority and asterisk forms are not accepted"
	}
	path := uri
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	if len(path) > 1 && path[1] == '/' {
		return "request path must not begin with \"//\""
	}
	// Fast path: Runtime API paths have no '%', '.' or '\'.
	if !strings.ContainsAny(path, "%.\\") {
		return ""
	}
	if strings.IndexByte(path, '\\') >= 0 {
		return "request path must not contain a backslash"
	}
	for seg := range strings.SplitSeq(path[1:], "/") {
		switch decodeDots(seg) {
		case ".", "..":
			return "request path must not contain dot segments (\".\" or \"..\", plain or percent-encoded)"
		}
		if hasEncodedSeparator(seg) {
			return "request path must not contain percent-encoded slashes or backslashes (%2F, %5C)"
		}
	}
	return ""
}

// decodeDots returns seg with every "%2e"/"%2E" replaced by ".", or seg itself
// when it cannot be a dot segment, so that the common case does not allocate.
func decodeDots(seg string) string {
	if len(seg) == 0 || len(seg) > 6 { // "%2e%2e" is the longest dot segment
		return seg
	}
	return strings.NewReplacer("%2e", ".", "%2E", ".").Replace(seg)
}

func hasEncodedSeparator(seg string) bool {
	for i := 0; i+2 < len(seg); i++ {
		if seg[i] != '%' {
			continue
		}
		switch seg[i+1 : i+3] {
		case "2f", "2F", "5c", "5C":
			return true
		}
	}
	return false
}
