package proxy

import (
	"net/http"
	"net/textproto"
	"strings"
)

// hopByHop are the headers that describe one connection, not the message
// (RFC 9110 section 7.6.1), plus Expect: lrap answers 100-continue itself
// (the Go server does, on the first body read) and must not make the upstream
// leg wait for another one. Every other header, unknown ones and empty values
// included, crosses lrap unchanged in both directions.
var hopByHop = [...]string{
	"Connection",
	"Proxy-Connection",
	"Keep-Alive",
	"Proxy-Authenticate",
	"Proxy-Authorization",
	"Te",
	"Trailer",
	"Transfer-Encoding",
	"Upgrade",
	"Expect",
}

// removeHopByHop deletes the hop-by-hop headers from h, including any header
// the Connection header names.
func removeHopByHop(h http.Header) {
	for _, v := range h["Connection"] {
		for name := range strings.SplitSeq(v, ",") {
			if name = textproto.TrimString(name); name != "" {
				delete(h, textproto.CanonicalMIMEHeaderKey(name))
			}
		}
	}
	for _, name := range hopByHop {
		delete(h, name)
	}
}

// copyResponseHeader copies the upstream response headers to the runtime's
// response. Value slices are shared, not copied: the upstream response is not
// touched again once its headers have been relayed.
func copyResponseHeader(dst, src http.Header) {
	for k, vv := range src {
		dst[k] = vv
	}
	removeHopByHop(dst)
	// Go's server adds Content-Type (by sniffing) and Date when a handler sets
	// none. A nil entry suppresses that, so the runtime sees exactly the
	// headers the upstream sent (the SHUTDOWN event has no Content-Type).
	if _, ok := dst["Content-Type"]; !ok {
		dst["Content-Type"] = nil
	}
	if _, ok := dst["Date"]; !ok {
		dst["Date"] = nil
	}
}
