package proxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/lrap/lrap/hook"
	"github.com/lrap/lrap/runtimeapi"
)

// This file is the data path with hooks. Without hooks (p.chain == nil)
// none of it runs: no body is buffered, hashed or copied.

// processEvent runs the event hooks on an upstream /next answer. It returns
// the answer to relay, or rejected=true when a hook rejected the event: lrap
// has then failed the invocation upstream and the caller polls again.
func (p *Proxy) processEvent(ctx context.Context, resp *http.Response) (*tracked, bool) {
	c := p.chain
	start := time.Now()
	inv := invocationFromEvent(resp.Header.Clone())
	t := &tracked{inv: inv}
	msg := &hook.Message{Header: resp.Header}
	st := stage{point: pointEvent, hooks: c.onEvent}

	var buffered []byte
	if c.eventBody && len(c.onEvent) > 0 {
		var over bool
		buffered, over = bufferUpTo(resp.Body, c.bufferLimit)
		if over {
			st.bodyMissing = fmt.Sprintf("event body larger than the buffer limit of %d bytes", c.bufferLimit)
			resp.Body = struct {
				io.Reader
				io.Closer
			}{io.MultiReader(bytes.NewReader(buffered), resp.Body), resp.Body}
			buffered = nil
		} else {
			msg.Body = buffered
		}
	}
	v, by := c.run(ctx, st, inv, msg)
	if errorType, message, rejected := v.Rejected(); rejected {
		resp.Body.Close()
		t.inLrap.Add(int64(time.Since(start)))
		p.rejectEvent(ctx, t, errorType, message, by)
		return nil, true
	}

	resp.Header = msg.Header
	switch {
	case msg.BodyChanged():
		resp.Body.Close()
		setBody(resp, msg.Body)
	case buffered != nil:
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(buffered))
	}
	if c.digests {
		resp.Body = &digestReader{ReadCloser: resp.Body, h: sha256.New()}
	}
	t.inLrap.Add(int64(time.Since(start)))
	for _, evicted := range c.tracker.add(t) {
		p.endInvocation(evicted, hook.Timeout, "", "", 0, nil)
	}
	return t, false
}

// setBody replaces an answer's body with b, framed by Content-Length.
func setBody(resp *http.Response, b []byte) {
	resp.Body = io.NopCloser(bytes.NewReader(b))
	resp.ContentLength = int64(len(b))
	resp.TransferEncoding = nil
	resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
}

// rejectEvent fails a rejected invocation upstream, as the runtime would
// report an error, so the API ends it; the runtime never sees the event.
func (p *Proxy) rejectEvent(ctx context.Context, t *tracked, errorType, message, by string) {
	id := t.inv.RequestID
	p.log.Info("event rejected", "request_id", id, "hook", by, "error_type", errorType)
	resp, err := p.postError(ctx, id, errorType, message)
	if err != nil {
		p.log.Error("failing a rejected invocation upstream failed", "request_id", id, "error", err)
	} else {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			p.log.Error("the API refused the error for a rejected invocation", "request_id", id, "status", resp.StatusCode)
		}
	}
	p.endInvocation(t, hook.Rejected, errorType, by, 0, nil)
}

// postError posts an error document for invocation id upstream.
func (p *Proxy) postError(ctx context.Context, id, errorType, message string) (*http.Response, error) {
	doc := runtimeapi.ErrorDocument{ErrorMessage: message, ErrorType: errorType}.Marshal()
	out := &http.Request{
		Method:     http.MethodPost,
		URL:        &url.URL{Scheme: "http", Host: p.upstream, Opaque: runtimeapi.PathInvocation + id + runtimeapi.InvocationError},
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header: http.Header{
			"Content-Type":             {"application/json"},
			runtimeapi.HeaderErrorType: {errorType},
			"User-Agent":               nil,
		},
		Host:          p.upstream,
		Body:          io.NopCloser(bytes.NewReader(doc)),
		ContentLength: int64(len(doc)),
		GetBody:       func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(doc)), nil },
	}
	return p.roundTrip(out.WithContext(ctx), nil)
}

// resultTarget recognises POST /invocation/{id}/response and /error.
func resultTarget(r *http.Request) (id, point string, ok bool) {
	if r.Method != http.MethodPost {
		return "", "", false
	}
	rest, found := strings.CutPrefix(pathOf(r.RequestURI), runtimeapi.PathInvocation)
	if !found {
		return "", "", false
	}
	switch {
	case strings.HasSuffix(rest, runtimeapi.InvocationResponse):
		id, point = strings.TrimSuffix(rest, runtimeapi.InvocationResponse), pointResponse
	case strings.HasSuffix(rest, runtimeapi.InvocationError):
		id, point = strings.TrimSuffix(rest, runtimeapi.InvocationError), pointError
	default:
		return "", "", false
	}
	if id == "" || strings.Contains(id, "/") {
		return "", "", false
	}
	return id, point, true
}

// forwardResult forwards a /response or /error through the hooks and ends
// the invocation once the API accepted it.
func (p *Proxy) forwardResult(w http.ResponseWriter, r *http.Request, out *http.Request, body *requestBody, id, point string) (int, int64, error) {
	c := p.chain
	start := time.Now()
	t := c.tracker.get(id)
	if t == nil {
		// Not seen on /next (lrap restarted, or the id is wrong): the hooks
		// still run; the API will judge the id.
		t = &tracked{inv: &hook.Invocation{RequestID: id}}
	}
	hooks, needBody := c.onResponse, c.responseBody
	if point == pointError {
		hooks, needBody = c.onError, c.errorBody
	}
	msg := &hook.Message{
		Header:    out.Header,
		Streaming: point == pointResponse && out.Header.Get(runtimeapi.HeaderResponseMode) == runtimeapi.ResponseModeStreaming,
	}
	st := stage{point: point, hooks: hooks}
	if c.digests && body != nil {
		body.digest = sha256.New()
	}
	var buffered []byte
	if len(hooks) > 0 && needBody && body != nil {
		if msg.Streaming {
			st.bodyMissing = "streamed response: never buffered"
		} else {
			var over bool
			buffered, over = bufferUpTo(body, c.bufferLimit)
			if over {
				st.bodyMissing = fmt.Sprintf("%s body larger than the buffer limit of %d bytes", point, c.bufferLimit)
				out.Body = struct {
					io.Reader
					io.Closer
				}{io.MultiReader(bytes.NewReader(buffered), body), body}
				out.GetBody = nil
				buffered = nil
			} else {
				msg.Body = buffered
			}
		}
	}
	v, by := c.run(r.Context(), st, t.inv, msg)
	if errorType, message, rejected := v.Rejected(); rejected {
		// The runtime's result is replaced by an error. Its body is read to
		// the end first, as the API would, so the runtime's write completes.
		if body != nil {
			_, _ = io.Copy(io.Discard, out.Body)
		}
		t.inLrap.Add(int64(time.Since(start)))
		resp, err := p.postError(r.Context(), id, errorType, message)
		if err != nil {
			p.unavailable(w, out, err)
			return http.StatusBadGateway, 0, nil
		}
		p.log.Info("result replaced with an error", "request_id", id, "hook", by, "error_type", errorType)
		n, err := p.relayResponse(w, resp)
		if resp.StatusCode == http.StatusAccepted {
			p.endInvocation(c.tracker.take(id, start), hook.Rejected, errorType, by, 0, nil)
		}
		return resp.StatusCode, n, err
	}

	out.Header = msg.Header
	switch {
	case msg.BodyChanged():
		b := msg.Body
		out.Body = io.NopCloser(bytes.NewReader(b))
		out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
		// Trailers need chunked framing; otherwise the new length is known.
		if !hasTrailerValues(out.Trailer) {
			out.ContentLength = int64(len(b))
		}
	case buffered != nil:
		b := buffered
		out.Body = io.NopCloser(bytes.NewReader(b))
		out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	t.inLrap.Add(int64(time.Since(start)))

	resp, err := p.roundTrip(out, body)
	if err != nil {
		p.unavailable(w, out, err)
		return http.StatusBadGateway, 0, nil
	}
	n, err := p.relayResponse(w, resp)
	outcome, errorType := hook.Success, ""
	if point == pointError {
		outcome, errorType = hook.Error, out.Header.Get(runtimeapi.HeaderErrorType)
	}
	switch resp.StatusCode {
	case http.StatusAccepted:
	case http.StatusRequestEntityTooLarge:
		outcome, errorType = hook.Error, "Function.ResponseSizeTooLarge"
	case http.StatusGone:
		outcome = hook.Timeout
	default:
		// 400 or 403: the API did not take this result for this id; the
		// invocation, if any, is still open.
		return resp.StatusCode, n, err
	}
	var size int64
	var digest []byte
	if body != nil {
		size = body.read.Load()
		if body.digest != nil {
			digest = body.digest.Sum(nil)
		}
	}
	if msg.BodyChanged() {
		// The result that crossed lrap is the changed one: size and digest
		// must describe it, never the original (a redacted secret's digest
		// would let anyone test guesses of it).
		size = int64(len(msg.Body))
		if digest != nil {
			sum := sha256.Sum256(msg.Body)
			digest = sum[:]
		}
	}
	p.endInvocation(c.tracker.take(id, start), outcome, errorType, "", size, digest)
	return resp.StatusCode, n, err
}

func hasTrailerValues(h http.Header) bool {
	for _, vv := range h {
		for _, v := range vv {
			if v != "" {
				return true
			}
		}
	}
	return false
}

// endInvocation hands a finished invocation to the OnEnd hooks.
func (p *Proxy) endInvocation(t *tracked, outcome hook.Outcome, errorType, by string, resultBytes int64, resultDigest []byte) {
	c := p.chain
	if t == nil || c.ends == nil {
		return
	}
	end := &hook.End{
		Outcome:      outcome,
		ErrorType:    errorType,
		RejectedBy:   by,
		EventBytes:   t.eventBytes,
		ResultBytes:  resultBytes,
		EventSHA256:  t.eventDigest,
		ResultSHA256: resultDigest,
		Delivered:    t.delivered,
		InLrap:       time.Duration(t.inLrap.Load()),
	}
	if !t.delivered.IsZero() && !t.resultArrived.IsZero() {
		end.Duration = t.resultArrived.Sub(t.delivered)
	}
	c.ends.push(t.inv, end)
}

// runInitErrorHooks shows a runtime's /init/error to the observers.
func (p *Proxy) runInitErrorHooks(r *http.Request, out *http.Request, body *requestBody) {
	c := p.chain
	msg := &hook.Message{Header: out.Header.Clone()}
	needBody := false
	for _, h := range c.onInitError {
		needBody = needBody || h.NeedsBody
	}
	if needBody && body != nil {
		// init/error bodies are small documents; the API caps them at 1 MiB.
		b, over := bufferUpTo(body, 1<<20)
		if over {
			out.Body = struct {
				io.Reader
				io.Closer
			}{io.MultiReader(bytes.NewReader(b), body), body}
			out.GetBody = nil
		} else {
			msg.Body = b
			out.Body = io.NopCloser(bytes.NewReader(b))
			out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
		}
	}
	c.run(r.Context(), stage{point: pointInitError, hooks: c.onInitError}, nil, msg)
}

// bufferUpTo reads r whole if it holds at most limit bytes. Otherwise it
// returns what it read (limit+1 bytes) with over=true, for the caller to put
// back in front of the rest.
func bufferUpTo(r io.Reader, limit int64) ([]byte, bool) {
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(r, limit+1))
	_ = err // a read error surfaces again when the rest is forwarded
	return buf.Bytes(), n > limit
}

// digestReader hashes a body as it streams.
type digestReader struct {
	io.ReadCloser
	h hash.Hash
}

func (d *digestReader) Read(p []byte) (int, error) {
	n, err := d.ReadCloser.Read(p)
	d.h.Write(p[:n])
	return n, err
}

// eventDigest returns the SHA-256 of a relayed event body, if it was hashed.
func eventDigest(body io.Reader) []byte {
	if d, ok := body.(*digestReader); ok {
		return d.h.Sum(nil)
	}
	return nil
}

func parseMillis(s string) (int64, error) { return strconv.ParseInt(s, 10, 64) }
