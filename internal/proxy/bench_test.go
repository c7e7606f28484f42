package proxy_test

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"testing"

	"github.com/lrap/lrap/internal/proxy"
	"github.com/lrap/lrap/runtimeapi"
)

// Micro-benchmarks of the hot path: one runtime cycle (GET /next with an
// event of N bytes, POST /response with N bytes, 202) forwarded by lrap.
//
//	go test -run '^$' -bench Cycle -benchmem ./internal/proxy
//
// BenchmarkHandlerCycle isolates lrap's own work: the handler is called
// directly and the upstream is an in-memory RoundTripper whose answers are
// reused, so allocs/op are lrap's alone. BenchmarkLoopbackCycle is the same
// cycle over real loopback connections, with the runtime client, lrap and
// the upstream in this process; "direct" is the floor without lrap. In both,
// allocations per cycle must not grow with the payload: bodies stream
// through a fixed buffer.

var cycleSizes = []struct {
	name string
	n    int
}{
	{"1KiB", 1 << 10},
	{"64KiB", 64 << 10},
	{"1MiB", 1 << 20},
}

const benchRequestID = "8476a536-e9f4-11e8-9739-2dfe598c3fcd"

var acceptedDoc = []byte("{\"status\":\"OK\"}\n")

// benchPayload returns n bytes of JSON-like text.
func benchPayload(n int) []byte {
	b := bytes.Repeat([]byte("abcdefghijklmnopqrstuvwxyz"), n/26+1)[:n]
	copy(b, `{"d":"`)
	copy(b[n-2:], `"}`)
	return b
}

// nextHeader is what the Runtime API sends with an event (notes §2.1).
func nextHeader() http.Header {
	return http.Header{
		"Content-Type":               {"application/json"},
		runtimeapi.HeaderRequestID:   {benchRequestID},
		runtimeapi.HeaderDeadlineMs:  {"1700000000000"},
		runtimeapi.HeaderFunctionArn: {"arn:aws:lambda:us-east-1:012345678912:function:f"},
		runtimeapi.HeaderTraceID:     {"Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"},
	}
}

// reusableBody is a body that can be rewound for the next cycle.
type reusableBody struct{ bytes.Reader }

func (*reusableBody) Close() error { return nil }

// memAPI is an in-memory Runtime API: GET answers the event (chunked, as
// the real API frames bodies over 2 KiB), anything else drains the request
// body and answers 202. Its answers are reused: one request at a time.
type memAPI struct {
	event                  []byte
	next, accepted         http.Response
	nextBody, acceptedBody reusableBody
}

func newMemAPI(event []byte) *memAPI {
	m := &memAPI{event: event}
	m.next = http.Response{
		StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: nextHeader(), ContentLength: -1, Body: &m.nextBody,
	}
	m.accepted = http.Response{
		StatusCode: http.StatusAccepted, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{
			"Content-Type":   {"application/json"},
			"Content-Length": {strconv.Itoa(len(acceptedDoc))},
		},
		ContentLength: int64(len(acceptedDoc)), Body: &m.acceptedBody,
	}
	return m
}

func (m *memAPI) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil && r.Body != http.NoBody {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			return nil, err
		}
	}
	if r.Method == http.MethodGet {
		m.nextBody.Reset(m.event)
		return &m.next, nil
	}
	m.acceptedBody.Reset(acceptedDoc)
	return &m.accepted, nil
}

// sinkWriter is a ResponseWriter that counts what it is given.
type sinkWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *sinkWriter) Header() http.Header         { return w.h }
func (w *sinkWriter) WriteHeader(status int)      { w.status = status }
func (w *sinkWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }
func (w *sinkWriter) Flush()                      {}

func (w *sinkWriter) reset() {
	clear(w.h)
	w.status, w.n = 0, 0
}

func BenchmarkHandlerCycle(b *testing.B) {
	for _, sz := range cycleSizes {
		b.Run(sz.name, func(b *testing.B) {
			payload := benchPayload(sz.n)
			px, err := proxy.New(proxy.Config{Upstream: "127.0.0.1:9001", Transport: newMemAPI(payload)})
			if err != nil {
				b.Fatal(err)
			}
			defer px.Close()
			next := &http.Request{
				Method: http.MethodGet, RequestURI: runtimeapi.PathNext, URL: &url.URL{Path: runtimeapi.PathNext},
				Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Host: "127.0.0.1:9009",
				Header: http.Header{"User-Agent": {"aws-lambda-go/go1.26"}}, Body: http.NoBody,
			}
			respPath := runtimeapi.PathInvocation + benchRequestID + runtimeapi.InvocationResponse
			body := &reusableBody{}
			post := &http.Request{
				Method: http.MethodPost, RequestURI: respPath, URL: &url.URL{Path: respPath},
				Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Host: "127.0.0.1:9009",
				Header: http.Header{"User-Agent": {"aws-lambda-go/go1.26"}, "Content-Type": {"application/json"}},
				Body:   body, ContentLength: int64(sz.n),
			}
			w := &sinkWriter{h: make(http.Header)}
			b.SetBytes(2 * int64(sz.n))
			b.ReportAllocs()
			for b.Loop() {
				w.reset()
				px.ServeHTTP(w, next)
				if w.status != http.StatusOK || w.n != sz.n {
					b.Fatalf("/next: %d with %d bytes", w.status, w.n)
				}
				w.reset()
				body.Reset(payload)
				px.ServeHTTP(w, post)
				if w.status != http.StatusAccepted {
					b.Fatalf("/response: %d", w.status)
				}
			}
		})
	}
}

// loopbackAPI serves the cycle over HTTP like the real API: the event is
// written without a length (Go frames it chunked above 2 KiB), the 202 only
// after the response body is consumed.
func loopbackAPI(b *testing.B, event []byte) string {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			for k, v := range nextHeader() {
				w.Header()[k] = v
			}
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(event)
			return
		}
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header()["Content-Type"] = []string{"application/json"}
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write(acceptedDoc)
	})
	return serveLoopback(b, &http.Server{Handler: h})
}

func serveLoopback(b *testing.B, srv *http.Server) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func BenchmarkLoopbackCycle(b *testing.B) {
	for _, via := range []string{"direct", "lrap"} {
		for _, sz := range cycleSizes {
			b.Run(via+"/"+sz.name, func(b *testing.B) {
				payload := benchPayload(sz.n)
				addr := loopbackAPI(b, payload)
				if via == "lrap" {
					px, err := proxy.New(proxy.Config{Upstream: addr})
					if err != nil {
						b.Fatal(err)
					}
					b.Cleanup(px.Close)
					addr = serveLoopback(b, proxy.NewServer(px, nil))
				}
				client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableCompression: true}}
				defer client.CloseIdleConnections()
				nextURL := "http://" + addr + runtimeapi.PathNext
				respURL := "http://" + addr + runtimeapi.PathInvocation + benchRequestID + runtimeapi.InvocationResponse
				scratch := make([]byte, 32<<10)
				b.SetBytes(2 * int64(sz.n))
				b.ReportAllocs()
				for b.Loop() {
					resp, err := client.Get(nextURL)
					if err != nil {
						b.Fatal(err)
					}
					n, _ := io.CopyBuffer(io.Discard, struct{ io.Reader }{resp.Body}, scratch)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK || n != int64(sz.n) {
						b.Fatalf("/next: %d with %d bytes", resp.StatusCode, n)
					}
					req, _ := http.NewRequest(http.MethodPost, respURL, bytes.NewReader(payload))
					req.Header["Content-Type"] = []string{"application/json"}
					resp, err = client.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					_, _ = io.CopyBuffer(io.Discard, struct{ io.Reader }{resp.Body}, scratch)
					resp.Body.Close()
					if resp.StatusCode != http.StatusAccepted {
						b.Fatalf("/response: %d", resp.StatusCode)
					}
				}
			})
		}
	}
}
