package fakeapi

import (
	"io"
	"net/http"
	"slices"
)

// Request is one request as the fake received it, for asserting that a
// proxy forwarded it byte-exact.
type Request struct {
	// Seq is the arrival index, starting at 0.
	Seq int
	// Method, RequestURI (exactly as on the request line), Proto, Host and
	// RemoteAddr as net/http parsed them.
	Method     string
	RequestURI string
	Proto      string
	Host       string
	RemoteAddr string
	// Header is the request header; Go moves Transfer-Encoding out of it
	// (see TransferEncoding) and keeps Content-Length in ContentLength.
	Header           http.Header
	ContentLength    int64
	TransferEncoding []string
	// Chunked reports Transfer-Encoding: chunked.
	Chunked bool
	// Body holds the first Options.RecordBodyLimit bytes the route consumed;
	// routes that answer without reading (a parked /next, 400
	// InvalidRequestID, ...) consume nothing. BodySize counts every byte
	// consumed and BodyEOF reports that the body was read to its end.
	Body     []byte
	BodySize int64
	BodyEOF  bool
	// Trailer holds the request trailers; present only when BodyEOF.
	Trailer http.Header
}

// Requests returns every request received so far, in arrival order. The
// body fields of a request are filled in when its handler returns, so a
// request still being served (a parked /next, a streaming /response) shows
// no body yet. Body slices must not be modified.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.recording))
	for i, rec := range s.recording {
		out[i] = *rec
		out[i].Header = rec.Header.Clone()
		out[i].Trailer = rec.Trailer.Clone()
	}
	return out
}

// ClearRequests forgets the recorded requests; Seq keeps counting.
func (s *Server) ClearRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recording = nil
}

// recordLocked appends r to the recording, unless disabled. Caller holds
// s.mu.
func (s *Server) recordLocked(r *http.Request) *Request {
	if s.opts.DisableRecording {
		return nil
	}
	rec := &Request{
		Seq:              s.seq,
		Method:           r.Method,
		RequestURI:       r.RequestURI,
		Proto:            r.Proto,
		Host:             r.Host,
		RemoteAddr:       r.RemoteAddr,
		Header:           r.Header.Clone(),
		ContentLength:    r.ContentLength,
		TransferEncoding: slices.Clone(r.TransferEncoding),
		Chunked:          slices.Contains(r.TransferEncoding, "chunked"),
	}
	s.seq++
	s.recording = append(s.recording, rec)
	s.notifyLocked()
	return rec
}

// publish stores what the handler consumed of the body into rec.
func (s *Server) publish(rec *Request, body *recordingBody, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec.Body, rec.BodySize, rec.BodyEOF = body.kept, body.size, body.eof
	if body.eof && len(r.Trailer) > 0 {
		rec.Trailer = r.Trailer.Clone()
	}
	s.notifyLocked()
}

// recordingBody keeps a bounded copy of what the handler reads. It is used
// by the handler goroutine only.
type recordingBody struct {
	io.ReadCloser
	limit int
	kept  []byte
	size  int64
	eof   bool
}

func (b *recordingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.size += int64(n)
		if room := b.limit - len(b.kept); room > 0 {
			b.kept = append(b.kept, p[:min(n, room)]...)
		}
	}
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}
