// Package proxy is lrap's forwarding core: it serves the Runtime API to the
// function's runtime and forwards every request to the real API (or the next
// proxy in a chain), streaming bodies both ways.
//
// Invariants the runtime relies on (runtime-api-notes.md, section 10):
//   - every method and path is forwarded, byte-exact, with all end-to-end
//     headers, unknown ones and empty values included (T6, T13, T16);
//   - statuses and bodies are relayed verbatim; lrap never answers a success
//     itself and answers an error only when it could not reach the upstream
//     (502) or refuses a request target (400) (T7, T9);
//   - no timeouts on long polls or streams, idle connections are never closed
//     (T4, T5);
//   - a long poll the runtime abandons is kept and its answer handed to the
//     runtime's next poll, never lost and never delivered twice (T3);
//   - there is no "current invocation": any number of polls and streams may be
//     in flight at once (T10).
package proxy

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/lrap/lrap/hook"
	"github.com/lrap/lrap/runtimeapi"
)

// Config configures a Proxy. The zero value of each optional field says what
// it means.
type Config struct {
	// Upstream is the host:port lrap forwards to, without a scheme, the way
	// AWS_LAMBDA_RUNTIME_API is written. Required.
	Upstream string
	// Logger receives lifecycle, error and (at debug level) per-request
	// lines. Payloads are never logged. Nil discards.
	Logger *slog.Logger
	// DialAttempts bounds how often lrap dials an unreachable upstream for
	// one request before answering 502. Zero means 6.
	DialAttempts int
	// DialBackoff is the wait after the first failed dial; it doubles after
	// each further one. Zero means 10ms (six attempts span about 310ms).
	DialBackoff time.Duration
	// Transport replaces the upstream transport (tests, benchmarks). Nil
	// means one built by NewTransport.
	Transport http.RoundTripper
	// Hooks run on the data path, in order. None means every body streams
	// straight through.
	Hooks []hook.Hook
	// BufferLimit bounds a body buffered for hooks that need whole bodies.
	// Zero means DefaultBufferLimit (6 MiB).
	BufferLimit int64
}

// Proxy is an http.Handler that forwards the Runtime API. Create it with New.
type Proxy struct {
	upstream     string
	transport    http.RoundTripper
	log          *slog.Logger
	debug        bool
	dialAttempts int
	dialBackoff  time.Duration
	polls        *pollQueue
	chain        *chain // nil without hooks
	// life bounds upstream long polls, which outlive the runtime request
	// that started them; Close cancels it.
	life   context.Context
	cancel context.CancelFunc
}

// New returns a Proxy forwarding to cfg.Upstream.
func New(cfg Config) (*Proxy, error) {
	if cfg.Upstream == "" {
		return nil, errors.New("proxy: no upstream address")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Proxy{
		upstream:     cfg.Upstream,
		transport:    cfg.Transport,
		log:          log,
		debug:        log.Enabled(context.Background(), slog.LevelDebug),
		dialAttempts: cfg.DialAttempts,
		dialBackoff:  cfg.DialBackoff,
		polls:        newPollQueue(),
	}
	if p.transport == nil {
		p.transport = NewTransport()
	}
	if p.dialAttempts <= 0 {
		p.dialAttempts = 6
	}
	if p.dialBackoff <= 0 {
		p.dialBackoff = 10 * time.Millisecond
	}
	p.chain = newChain(cfg.Hooks, cfg.BufferLimit, log)
	p.life, p.cancel = context.WithCancel(context.Background())
	return p, nil
}

// NewTransport returns the upstream transport lrap uses: HTTP/1.1 only,
// ignoring HTTP_PROXY (T18), no timeouts on responses (long polls, streams),
// no transparent decompression (it would change headers and bodies), idle
// connections kept without limit of time (an environment freeze makes every
// wall-clock timer lie, T5) and a pool large enough for Managed Instances
// concurrency.
func NewTransport() *http.Transport {
	dialer := &net.Dialer{
		// Bounds one connection attempt; a Runtime API that does not accept
		// within this is down, and the request is redialed with backoff.
		Timeout: 2 * time.Second,
		// No TCP keep-alive probes: they run on wall-clock intervals.
		KeepAlive: -1,
	}
	return &http.Transport{
		Proxy:                  nil,
		DialContext:            dialer.DialContext,
		MaxIdleConns:           0,
		MaxIdleConnsPerHost:    1024,
		IdleConnTimeout:        0,
		DisableCompression:     true,
		ResponseHeaderTimeout:  0,
		ExpectContinueTimeout:  0,
		MaxResponseHeaderBytes: maxHeaderBytes,
		WriteBufferSize:        relayBufferSize,
		ReadBufferSize:         relayBufferSize,
	}
}

// maxHeaderBytes bounds request and response header blocks. The X-Ray error
// cause header alone may approach 1 MiB (clients cap it just below), so the
// Go default of 1 MiB is too tight for a transparent proxy.
const maxHeaderBytes = 2 << 20

// NewServer returns the runtime-facing HTTP server for h.
func NewServer(h http.Handler, log *slog.Logger) *http.Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &http.Server{
		Handler: h,
		// No read, write or idle timeouts: /next is an unbounded long poll,
		// /response may stream for the whole invocation, and runtimes keep
		// idle connections and fail on a closed one (T4, section 9).
		MaxHeaderBytes: maxHeaderBytes,
		// "OPTIONS *" must reach the handler, which refuses it; Go's default
		// would answer 200 on the API's behalf.
		DisableGeneralOptionsHandler: true,
		ErrorLog:                     slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// serveHooked forwards a request when hooks are configured: results and init
// errors pass through their hooks, everything else is forwarded as is.
func (p *Proxy) serveHooked(w http.ResponseWriter, r, out *http.Request, body *requestBody) (int, int64, error) {
	if id, point, ok := resultTarget(r); ok {
		return p.forwardResult(w, r, out, body, id, point)
	}
	if len(p.chain.onInitError) > 0 && r.Method == http.MethodPost && pathOf(r.RequestURI) == runtimeapi.PathInitError {
		p.runInitErrorHooks(r, out, body)
	}
	return p.forward(w, out, body)
}

// Stats returns the hook counters; nil without hooks.
func (p *Proxy) Stats() *Stats {
	if p.chain == nil {
		return nil
	}
	return &p.chain.stats
}

// Shutdown ends the invocations still in flight as timeouts and runs the
// OnEnd hooks still queued, until ctx ends. Call it after the server has
// drained.
func (p *Proxy) Shutdown(ctx context.Context) error {
	p.Close()
	if p.chain == nil {
		return nil
	}
	for _, t := range p.chain.tracker.drain() {
		p.endInvocation(t, hook.Timeout, "", "", 0, nil)
	}
	if p.chain.ends == nil {
		return nil
	}
	return p.chain.ends.flush(ctx)
}

// Close cancels every upstream long poll. In-flight forwards are not
// interrupted; the server's Shutdown waits for those.
func (p *Proxy) Close() {
	p.cancel()
	p.polls.closeAll()
}

// ServeHTTP forwards one runtime request.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if reason := checkTarget(r.RequestURI); reason != "" {
		p.log.Warn("refused request target", "method", r.Method, "reason", reason)
		runtimeapi.WriteError(w, http.StatusBadRequest, runtimeapi.ErrorInvalidRequestTarget, reason)
		return
	}
	out, body := p.outbound(r)
	var (
		status int
		n      int64
		err    error
	)
	switch key, isPoll := longPollKey(r); {
	case isPoll:
		status, n, err = p.serveLongPoll(w, r, key, out)
	case p.chain != nil:
		status, n, err = p.serveHooked(w, r, out.WithContext(r.Context()), body)
	default:
		status, n, err = p.forward(w, out.WithContext(r.Context()), body)
	}
	if p.debug {
		var in int64
		if body != nil {
			in = body.read.Load()
		}
		msg := "forwarded"
		if status == 0 {
			msg = "runtime left before the answer"
		}
		p.log.Debug(msg, "method", r.Method, "path", pathOf(r.RequestURI), "status", status,
			"bytes_in", in, "bytes_out", n, "duration_us", time.Since(start).Microseconds())
	}
	if err != nil {
		// Abort the runtime's connection so it sees a truncated answer, never
		// a clean-looking short one.
		panic(http.ErrAbortHandler)
	}
}

// outbound builds the upstream request. The inbound header map is handed on
// after the hop-by-hop headers are removed: the server made its own connection
// decisions from it before calling the handler, and does not read it again.
func (p *Proxy) outbound(r *http.Request) (*http.Request, *requestBody) {
	h := r.Header
	removeHopByHop(h)
	if _, ok := h["User-Agent"]; !ok {
		h["User-Agent"] = nil // the transport would add Go's own otherwise
	}
	rawPath, rawQuery, hasQuery := strings.Cut(r.RequestURI, "?")
	out := &http.Request{
		Method: r.Method,
		// Opaque is written to the request line as is: the path crosses
		// byte-exact, never cleaned or re-encoded (checkTarget guarantees it
		// starts with a single "/", so it cannot be read as a host).
		URL:        &url.URL{Scheme: "http", Host: p.upstream, Opaque: rawPath, RawQuery: rawQuery, ForceQuery: hasQuery && rawQuery == ""},
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     h,
		Host:       p.upstream,
	}
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		out.Body = http.NoBody
		return out, nil
	}
	body := &requestBody{in: r}
	out.Body = body
	out.GetBody = body.rewind
	// Known length stays Content-Length; unknown (chunked) stays chunked.
	out.ContentLength = r.ContentLength
	switch {
	case r.Trailer != nil:
		out.Trailer = r.Trailer // filled in place by the server at EOF
	case r.ContentLength < 0:
		body.trailers = make(http.Header)
		out.Trailer = body.trailers
	}
	return out, body
}

// forward sends out upstream and relays the answer.
func (p *Proxy) forward(w http.ResponseWriter, out *http.Request, body *requestBody) (int, int64, error) {
	resp, err := p.roundTrip(out, body)
	if err != nil {
		if body != nil && body.read.Load() > 0 && out.Context().Err() != nil {
			// The runtime went away in the middle of its own request body;
			// there is nobody to answer.
			return 0, 0, nil
		}
		p.unavailable(w, out, err)
		return http.StatusBadGateway, 0, nil
	}
	n, err := p.relayResponse(w, resp)
	return resp.StatusCode, n, err
}

// roundTrip sends out, redialing with backoff while the upstream cannot be
// reached and nothing of the request body has been consumed.
func (p *Proxy) roundTrip(out *http.Request, body *requestBody) (*http.Response, error) {
	wait := p.dialBackoff
	for attempt := 1; ; attempt++ {
		resp, err := p.transport.RoundTrip(out)
		if err == nil {
			return resp, nil
		}
		ctx := out.Context()
		if attempt >= p.dialAttempts || ctx.Err() != nil || (body != nil && body.read.Load() > 0) {
			return nil, err
		}
		p.log.Debug("upstream attempt failed, redialing", "attempt", attempt, "path", pathOf(out.URL.Opaque), "error", err)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, err
		}
		wait *= 2
	}
}

// unavailable answers 502 after the upstream could not be reached. It is the
// only failure status lrap makes up, and only when no upstream answer exists
// to relay.
func (p *Proxy) unavailable(w http.ResponseWriter, out *http.Request, err error) {
	p.log.Error("upstream unavailable", "upstream", p.upstream, "method", out.Method,
		"path", pathOf(out.URL.Opaque), "attempts", p.dialAttempts, "error", err)
	runtimeapi.WriteError(w, http.StatusBadGateway, runtimeapi.ErrorUpstreamUnavailable,
		"lrap could not reach the Runtime API at "+p.upstream+": "+err.Error())
}

// relayResponse writes the upstream answer to the runtime: status, headers
// and body as they came, with the framing they came with.
func (p *Proxy) relayResponse(w http.ResponseWriter, resp *http.Response) (int64, error) {
	defer resp.Body.Close()
	h := w.Header()
	// A known length arrives as the upstream's Content-Length header, which
	// is copied; an unknown one (chunked) has none, and the server chunks.
	copyResponseHeader(h, resp.Header)
	w.WriteHeader(resp.StatusCode)
	n, err := relayBody(w, resp.Body, resp.ContentLength)
	if resp.ContentLength < 0 && n == 0 && !bodyless(resp) {
		// An empty chunked body: flushing commits the chunked framing the
		// upstream chose instead of letting the server add Content-Length: 0.
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
	}
	if err != nil {
		var down errDownstream
		if errors.As(err, &down) {
			p.log.Debug("runtime went away during the answer", "status", resp.StatusCode, "error", down.err)
		} else {
			p.log.Error("upstream answer broke off", "status", resp.StatusCode, "bytes", n, "error", err)
		}
		return n, err
	}
	for k, vv := range resp.Trailer {
		h[http.TrailerPrefix+k] = vv
	}
	return n, nil
}

func bodyless(resp *http.Response) bool {
	return resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusNotModified ||
		(resp.StatusCode >= 100 && resp.StatusCode < 200)
}

// pathOf returns the path of a request target, without the query.
func pathOf(uri string) string {
	if i := strings.IndexByte(uri, '?'); i >= 0 {
		return uri[:i]
	}
	return uri
}
