package proxy

import (
	"errors"
	"hash"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
)

// relayBufferSize is the unit of one read from the upstream body and so the
// largest piece lrap holds of any body: bodies stream, nothing reads a whole
// one. 32 KiB matches the Go transport's own copy buffer.
const relayBufferSize = 32 << 10

var relayBuffers = sync.Pool{New: func() any { b := make([]byte, relayBufferSize); return &b }}

// errBodyConsumed stops the transport from replaying a request whose body has
// already been read in part: the bytes are gone, a replay would corrupt it.
var errBodyConsumed = errors.New("lrap: request body already consumed; not replayed")

// requestBody is the runtime's request body on its way upstream. It counts
// what the transport read, so that lrap redials only while nothing has been
// consumed, and it carries request trailers across.
//
// Trailers: the Go server fills the inbound trailer values only when the body
// reaches EOF, after the transport has already written the upstream headers.
// The upstream request therefore shares the inbound trailer map when trailers
// were declared (filled in place), and otherwise gets its own map, filled
// here at EOF, which the transport writes after the last chunk.
type requestBody struct {
	in       *http.Request
	trailers http.Header // upstream trailers when not shared with in.Trailer
	read     atomic.Int64
	digest   hash.Hash // SHA-256 of the body as read, when a hook wants digests
}

func (b *requestBody) Read(p []byte) (int, error) {
	n, err := b.in.Body.Read(p)
	b.read.Add(int64(n))
	if b.digest != nil {
		b.digest.Write(p[:n])
	}
	if err == io.EOF && b.trailers != nil {
		for k, vv := range b.in.Trailer {
			b.trailers[k] = vv
		}
	}
	return n, err
}

// Close does not close the inbound body: the transport closes request bodies
// even on a failed attempt, and an untouched body must stay readable for a
// redial. The server closes the inbound body when the handler returns.
func (b *requestBody) Close() error { return nil }

// rewind is the upstream request's GetBody: it lets the transport retry on a
// dead pooled connection only while no byte of the body has been read.
func (b *requestBody) rewind() (io.ReadCloser, error) {
	if b.read.Load() > 0 {
		return nil, errBodyConsumed
	}
	return b, nil
}

// relayBody copies the upstream body to the runtime as it arrives. Each piece
// is flushed unless it completes a body of known length (the handler's return
// flushes that one together with the headers, in one write). It returns the
// bytes written and whether the upstream body ended cleanly.
func relayBody(w http.ResponseWriter, body io.Reader, contentLength int64) (int64, error) {
	bufp := relayBuffers.Get().(*[]byte)
	defer relayBuffers.Put(bufp)
	buf := *bufp
	flusher, _ := w.(http.Flusher)
	var written int64
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return written, errDownstream{werr}
			}
			written += int64(n)
			if flusher != nil && (contentLength < 0 || written < contentLength) {
				flusher.Flush()
			}
		}
		if rerr == io.EOF {
			return written, nil
		}
		if rerr != nil {
			return written, rerr
		}
	}
}

// errDownstream marks a failure to write to the runtime (it went away), as
// opposed to a failure to read from the upstream.
type errDownstream struct{ err error }

func (e errDownstream) Error() string { return "writing to runtime: " + e.err.Error() }
func (e errDownstream) Unwrap() error { return e.err }
