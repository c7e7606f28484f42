package tracecontext_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/lrap/lrap/hook"
	"github.com/lrap/lrap/hooks/tracecontext"
	"github.com/lrap/lrap/internal/fakeapi"
	"github.com/lrap/lrap/internal/proxy"
)

// Through lrap's proxy, between the strict fake Runtime API and a client
// playing the runtime: the runtime sees the header in HTTP events, with a
// Content-Length that matches, and every other event byte for byte.
func TestProxyAddsTraceparent(t *testing.T) {
	api, err := fakeapi.Start(fakeapi.Options{Mode: fakeapi.ManagedInstances})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(api.Close)
	h, err := tracecontext.New(tracecontext.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	px, err := proxy.New(proxy.Config{Upstream: api.Addr(), Logger: slog.New(slog.DiscardHandler), Hooks: []hook.Hook{h}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := proxy.NewServer(px, nil)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		px.Close()
		srv.Close()
	})

	httpEvent, _ := os.ReadFile("testdata/httpapi.json")
	sqsEvent, _ := os.ReadFile("testdata/sqs.json")
	const trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
	const want = `"traceparent":"00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01"`
	for _, tc := range []struct {
		name    string
		inv     fakeapi.Invocation
		changed bool
	}{
		{"http event", fakeapi.Invocation{Payload: httpEvent, TraceID: trace}, true},
		{"http event without trace header", fakeapi.Invocation{Payload: httpEvent}, false},
		{"sqs event", fakeapi.Invocation{Payload: sqsEvent, TraceID: trace}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			pending := api.Enqueue(tc.inv)
			req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+ln.Addr().String()+"/2018-06-01/runtime/invocation/next", nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if tc.changed {
				if !bytes.Contains(got, []byte(want)) || resp.ContentLength != int64(len(got)) ||
					!bytes.Equal(bytes.Replace(got, []byte(want+","), nil, 1), tc.inv.Payload) {
					t.Errorf("runtime got (Content-Length %d) %s", resp.ContentLength, got)
				}
			} else if !bytes.Equal(got, tc.inv.Payload) {
				t.Errorf("runtime got a changed event: %s", got)
			}
			id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
			post, _ := http.NewRequestWithContext(ctx, "POST", "http://"+ln.Addr().String()+"/2018-06-01/runtime/invocation/"+id+"/response", bytes.NewReader([]byte(`{}`)))
			presp, err := http.DefaultClient.Do(post)
			if err != nil {
				t.Fatal(err)
			}
			presp.Body.Close()
			if _, err := pending.Wait(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
	if st := px.Stats(); st.Skips.Load()+st.Overruns.Load()+st.Panics.Load() != 0 {
		t.Errorf("hook failures counted")
	}
}
