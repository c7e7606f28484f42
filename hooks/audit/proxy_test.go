package audit_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/lrap/lrap/hook"
	"github.com/lrap/lrap/hooks/audit"
	"github.com/lrap/lrap/internal/fakeapi"
	"github.com/lrap/lrap/internal/proxy"
)

// syncBuffer is written by the OnEnd goroutine and read by the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.buf.Bytes()...)
}

// Through lrap's real data path, against the strict fake API: one line per
// invocation whatever its outcome, with sizes, digests and payloads of the
// bodies as they crossed lrap (after the hooks before audit).
func TestOneLinePerInvocationThroughLrap(t *testing.T) {
	api, err := fakeapi.Start(fakeapi.Options{Mode: fakeapi.Classic})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(api.Close)

	out := &syncBuffer{}
	auditHook, err := audit.New(audit.Config{Payloads: true}, out)
	if err != nil {
		t.Fatal(err)
	}
	guard := hook.Hook{
		Name: "guard", NeedsBody: true,
		OnEvent: func(_ context.Context, _ *hook.Invocation, ev *hook.Message) hook.Verdict {
			if bytes.Contains(ev.Body, []byte("reject")) {
				return hook.Reject("LRAP.EventRejected", "rule r1")
			}
			ev.SetBody(bytes.ReplaceAll(ev.Body, []byte("secret"), []byte("******")))
			return hook.Continue
		},
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	px, err := proxy.New(proxy.Config{Upstream: api.Addr(), Logger: logger, Hooks: []hook.Hook{guard, auditHook}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := proxy.NewServer(px, logger)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	base := "http://" + ln.Addr().String() + "/2018-06-01/runtime/invocation/"
	client := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 10 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	rejected := api.Enqueue(fakeapi.Invocation{Payload: []byte(`{"op":"reject"}`)})
	ok := api.Enqueue(fakeapi.Invocation{Payload: []byte(`{"op":"echo","pw":"secret"}`), FunctionArn: "arn:aws:lambda:us-east-1:012345678912:function:f"})
	failed := api.Enqueue(fakeapi.Invocation{Payload: []byte(`{"op":"fail"}`)})

	next := func() (string, []byte) {
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"next", nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.Header.Get("Lambda-Runtime-Aws-Request-Id"), b
	}
	post := func(id, kind, body string) {
		req, _ := http.NewRequestWithContext(ctx, "POST", base+id+"/"+kind, bytes.NewReader([]byte(body)))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("%s %s: %d", kind, id, resp.StatusCode)
		}
	}
	id, event := next()
	if id != ok.RequestID || string(event) != `{"op":"echo","pw":"******"}` {
		t.Fatalf("runtime got %s %s", id, event)
	}
	post(id, "response", `{"echo":"******"}`)
	id, _ = next()
	if id != failed.RequestID {
		t.Fatalf("runtime got %s, want %s", id, failed.RequestID)
	}
	errDoc := `{"errorType":"Oops","errorMessage":"it failed"}`
	post(id, "error", errDoc)
	for _, p := range []*fakeapi.Pending{rejected, ok, failed} {
		if _, err := p.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Shutdown flushes the OnEnd queue: every line is written after it.
	if err := px.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	got, _ := lines(t, out.Bytes())
	byID := map[string][]line{}
	for _, l := range got {
		byID[l.RequestID] = append(byID[l.RequestID], l)
	}
	if len(got) != 3 || len(byID) != 3 {
		t.Fatalf("%d lines for 3 invocations:\n%s", len(got), out.Bytes())
	}
	hexSum := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }

	r := byID[rejected.RequestID][0]
	if r.Outcome != "rejected" || r.ErrorType != "LRAP.EventRejected" || r.RejectedBy != "guard" || r.DurationMs != nil || r.Event != nil {
		t.Errorf("rejected invocation: %+v", r)
	}

	s := byID[ok.RequestID][0]
	changed := `{"op":"echo","pw":"******"}`
	if s.Outcome != "success" || s.FunctionARN != "arn:aws:lambda:us-east-1:012345678912:function:f" ||
		s.EventBytes != int64(len(changed)) || s.EventSHA256 == nil || *s.EventSHA256 != hexSum(changed) ||
		s.ResponseBytes != int64(len(`{"echo":"******"}`)) || s.ResponseSHA256 == nil || *s.ResponseSHA256 != hexSum(`{"echo":"******"}`) ||
		s.DurationMs == nil || s.Event == nil || *s.Event != changed || s.Response == nil || *s.Response != `{"echo":"******"}` {
		t.Errorf("successful invocation: %+v", s)
	}

	f := byID[failed.RequestID][0]
	if f.Outcome != "error" || f.ResponseBytes != int64(len(errDoc)) || f.ResponseSHA256 == nil || *f.ResponseSHA256 != hexSum(errDoc) ||
		f.Response == nil || *f.Response != errDoc {
		t.Errorf("failed invocation: %+v", f)
	}
}
