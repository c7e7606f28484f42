package redact_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lrap/lrap/hook"
	"github.com/lrap/lrap/hooks/redact"
	"github.com/lrap/lrap/internal/fakeapi"
	"github.com/lrap/lrap/internal/proxy"
)

// These tests run the hook inside lrap's proxy, between the strict fake
// Runtime API and a client playing the runtime.

const testTimeout = 5 * time.Second

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// lrapWith starts the fake API and lrap in front of it with h.
func lrapWith(t *testing.T, h hook.Hook, bufferLimit int64) (*fakeapi.Server, string, *proxy.Proxy) {
	t.Helper()
	api, err := fakeapi.Start(fakeapi.Options{Mode: fakeapi.Classic})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(api.Close)
	px, err := proxy.New(proxy.Config{Upstream: api.Addr(), Logger: slog.New(slog.DiscardHandler),
		Hooks: []hook.Hook{h}, BufferLimit: bufferLimit})
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
	return api, ln.Addr().String(), px
}

var client = &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 2 * testTimeout}

func next(t *testing.T, addr string) (string, []byte, http.Header) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctxT(t), "GET", "http://"+addr+"/2018-06-01/runtime/invocation/next", nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("/next: %d %s", resp.StatusCode, b)
	}
	return resp.Header.Get("Lambda-Runtime-Aws-Request-Id"), b, resp.Header
}

func post(t *testing.T, addr, id, kind string, body []byte, header http.Header) int {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctxT(t), "POST", "http://"+addr+"/2018-06-01/runtime/invocation/"+id+"/"+kind, bytes.NewReader(body))
	for k, vv := range header {
		req.Header[k] = vv
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func newHook(t *testing.T, cfg redact.Config) hook.Hook {
	t.Helper()
	h, err := redact.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// A response with a card number reaches the API masked, with a matching
// Content-Length; the rest of the document is byte-identical.
func TestProxyMasksResponse(t *testing.T) {
	api, addr, px := lrapWith(t, newHook(t, redact.Config{Paths: []string{"$.customer.ssn"}}), 0)
	pending := api.Enqueue(fakeapi.Invocation{Payload: []byte(`{"order":7}`)})
	id, _, _ := next(t, addr)
	body := []byte(`{"order": 7, "customer": {"ssn": "078-05-1120", "card": "4111 1111 1111 1111", "name": "Ann"}}`)
	if status := post(t, addr, id, "response", body, http.Header{"Content-Type": {"application/json"}}); status != 202 {
		t.Fatalf("/response: %d", status)
	}
	res, err := pending.Wait(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"order": 7, "customer": {"ssn": "***", "card": "***", "name": "Ann"}}`
	if res.Kind != "response" || string(res.Body) != want || res.ContentLength != int64(len(want)) {
		t.Errorf("API got %s %q (Content-Length %d), want %q", res.Kind, res.Body, res.ContentLength, want)
	}
	if st := px.Stats(); st.Skips.Load()+st.Rejections.Load()+st.BodyUnavailable.Load() != 0 {
		t.Errorf("unexpected hook failures counted")
	}
}

// An untouched response is forwarded with its own framing: the hook did not
// call SetBody, so lrap did not re-frame it.
func TestProxyForwardsCleanResponseAsIs(t *testing.T) {
	api, addr, _ := lrapWith(t, newHook(t, redact.Config{}), 0)
	pending := api.Enqueue(fakeapi.Invocation{Payload: []byte(`{}`)})
	id, _, _ := next(t, addr)
	body := []byte(`{"ok": true, "n": 1.50}`)
	post(t, addr, id, "response", body, nil)
	res, err := pending.Wait(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(res.Body, body) {
		t.Errorf("API got %q, want the original bytes", res.Body)
	}
}

// With events on, the runtime gets the redacted event; error reports are
// always redacted.
func TestProxyMasksEventAndErrorReport(t *testing.T) {
	api, addr, _ := lrapWith(t, newHook(t, redact.Config{Events: true}), 0)
	pending := api.Enqueue(fakeapi.Invocation{Payload: []byte(`{"from":"bob@example.com","key":"AKIAIOSFODNN7EXAMPLE"}`)})
	id, event, h := next(t, addr)
	if want := `{"from":"***","key":"***"}`; string(event) != want || h.Get("Content-Length") != "26" {
		t.Errorf("runtime got %q (Content-Length %s), want %q", event, h.Get("Content-Length"), want)
	}
	post(t, addr, id, "error", []byte(`{"errorMessage":"no account for bob@example.com","errorType":"NotFound"}`),
		http.Header{"Lambda-Runtime-Function-Error-Type": {"Function.NotFound"}})
	res, err := pending.Wait(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if res.Kind != "error" || string(res.Body) != `{"errorMessage":"no account for ***","errorType":"NotFound"}` ||
		res.Header.Get("Lambda-Runtime-Function-Error-Type") != "Function.NotFound" {
		t.Errorf("API got %s %v %s", res.Kind, res.Header, res.Body)
	}
}

// A streamed response is never buffered, so the hook cannot see it and
// lrap applies the hook's policy: fail-open forwards it unredacted and
// counts it; fail-closed replaces it with an error. The same holds for a
// body over the buffer limit.
func TestProxyUnavailableBodyFollowsPolicy(t *testing.T) {
	secret := []byte(`{"card":"4111111111111111","pad":"` + strings.Repeat("x", 2048) + `"}`)
	for _, policy := range []string{"fail-open", "fail-closed"} {
		t.Run(policy, func(t *testing.T) {
			api, addr, px := lrapWith(t, newHook(t, redact.Config{Policy: policy}), 1024)
			for _, tc := range []struct {
				name   string
				header http.Header
			}{
				{"streamed", http.Header{"Lambda-Runtime-Function-Response-Mode": {"streaming"}}},
				{"over the buffer limit", nil},
			} {
				pending := api.Enqueue(fakeapi.Invocation{Payload: []byte(`{}`)})
				id, _, _ := next(t, addr)
				if status := post(t, addr, id, "response", secret, tc.header); status != 202 {
					t.Errorf("%s: runtime got %d", tc.name, status)
				}
				res, err := pending.Wait(ctxT(t))
				if err != nil {
					t.Fatal(err)
				}
				switch policy {
				case "fail-open":
					if res.Kind != "response" || !bytes.Equal(res.Body, secret) {
						t.Errorf("%s: API got %s with %d bytes, want the untouched response", tc.name, res.Kind, len(res.Body))
					}
				case "fail-closed":
					if res.Kind != "error" || res.Header.Get("Lambda-Runtime-Function-Error-Type") != proxy.ErrorHookFailed ||
						bytes.Contains(res.Body, []byte("4111")) {
						t.Errorf("%s: API got %s %v %s, want %s", tc.name, res.Kind, res.Header, res.Body, proxy.ErrorHookFailed)
					}
				}
			}
			st := px.Stats()
			if st.BodyUnavailable.Load() != 2 {
				t.Errorf("BodyUnavailable = %d, want 2", st.BodyUnavailable.Load())
			}
			if policy == "fail-open" && st.Skips.Load() != 2 || policy == "fail-closed" && st.Rejections.Load() != 2 {
				t.Errorf("skips %d, rejections %d", st.Skips.Load(), st.Rejections.Load())
			}
		})
	}
}

// Fail-closed with paths: a JSON response that does not parse is replaced
// with LRAP.RedactionUnavailable.
func TestProxyUnparsableJSONFailClosed(t *testing.T) {
	api, addr, _ := lrapWith(t, newHook(t, redact.Config{Paths: []string{"$.password"}}), 0)
	pending := api.Enqueue(fakeapi.Invocation{Payload: []byte(`{}`)})
	id, _, _ := next(t, addr)
	post(t, addr, id, "response", []byte(`{"password":"hunter2"`), http.Header{"Content-Type": {"application/json"}})
	res, err := pending.Wait(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if res.Kind != "error" || res.Header.Get("Lambda-Runtime-Function-Error-Type") != redact.ErrorUnavailable ||
		bytes.Contains(res.Body, []byte("hunter2")) {
		t.Errorf("API got %s %v %s", res.Kind, res.Header, res.Body)
	}
}
