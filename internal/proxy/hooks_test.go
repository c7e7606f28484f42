package proxy_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lrap/lrap/hook"
	"github.com/lrap/lrap/internal/fakeapi"
	"github.com/lrap/lrap/internal/proxy"
)

// hooked starts the strict fake API and lrap with hooks in front of it.
func hooked(t *testing.T, mode fakeapi.Mode, hooks ...hook.Hook) (*fakeapi.Server, string, *proxy.Proxy) {
	t.Helper()
	api, err := fakeapi.Start(fakeapi.Options{Mode: mode})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(api.Close)
	addr, px := startLrapProxy(t, api.Addr(), func(c *proxy.Config) { c.Hooks = hooks })
	return api, addr, px
}

func nextEvent(t *testing.T, client *http.Client, addr string) (string, []byte, http.Header) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctxT(t), "GET", "http://"+addr+nextPath, nil)
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

func postResult(t *testing.T, client *http.Client, addr, id, kind string, body []byte, header http.Header) (int, []byte) {
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
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// Hooks observe and change events and responses: the runtime sees the
// changed event with a matching Content-Length, the API the changed response.
func TestHooksObserveAndModify(t *testing.T) {
	var sawEvent, sawResponse []byte
	var sawInv *hook.Invocation
	api, addr, _ := hooked(t, fakeapi.Classic, hook.Hook{
		Name:      "rewrite",
		NeedsBody: true,
		OnEvent: func(ctx context.Context, inv *hook.Invocation, ev *hook.Message) hook.Verdict {
			sawEvent, sawInv = ev.Body, inv
			ev.Header.Set("X-Lrap-Seen", "yes")
			ev.SetBody(bytes.ToUpper(ev.Body))
			return hook.Continue
		},
		OnResponse: func(ctx context.Context, inv *hook.Invocation, resp *hook.Message) hook.Verdict {
			sawResponse = resp.Body
			resp.SetBody(append([]byte("wrapped:"), resp.Body...))
			return hook.Continue
		},
	})
	pending := api.Enqueue(fakeapi.Invocation{Payload: []byte(`{"secret":"abc"}`), FunctionArn: "arn:aws:lambda:us-east-1:1:function:f", TraceID: "Root=1-2-3", ClientContext: `{"c":1}`, TenantID: "tenant-7"})
	client := runtimeClient()
	id, event, h := nextEvent(t, client, addr)
	if string(event) != `{"SECRET":"ABC"}` || h.Get("Content-Length") != "16" || h.Get("X-Lrap-Seen") != "yes" {
		t.Errorf("runtime got %q (Content-Length %q, X-Lrap-Seen %q), want the changed event", event, h.Get("Content-Length"), h.Get("X-Lrap-Seen"))
	}
	if string(sawEvent) != `{"secret":"abc"}` {
		t.Errorf("event hook saw %q", sawEvent)
	}
	if sawInv.RequestID != id || sawInv.FunctionARN != "arn:aws:lambda:us-east-1:1:function:f" || sawInv.TraceID != "Root=1-2-3" ||
		sawInv.ClientContext != `{"c":1}` || sawInv.TenantID != "tenant-7" || sawInv.Deadline.IsZero() {
		t.Errorf("invocation context incomplete: %+v", sawInv)
	}
	if status, _ := postResult(t, client, addr, id, "response", []byte("result"), nil); status != 202 {
		t.Fatalf("/response: %d", status)
	}
	res, err := pending.Wait(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if string(sawResponse) != "result" || string(res.Body) != "wrapped:result" || res.ContentLength != int64(len("wrapped:result")) {
		t.Errorf("API got %q (length %d), hook saw %q", res.Body, res.ContentLength, sawResponse)
	}
}

// A rejected event never reaches the runtime: lrap fails it upstream with the
// hook's error type and message and hands the runtime the next event.
func TestRejectedEventFailsUpstreamAndRuntimeGetsNextEvent(t *testing.T) {
	api, addr, _ := hooked(t, fakeapi.Classic, hook.Hook{
		Name:      "firewall",
		NeedsBody: true,
		OnEvent: func(ctx context.Context, inv *hook.Invocation, ev *hook.Message) hook.Verdict {
			if bytes.Contains(ev.Body, []byte("DROP TABLE")) {
				return hook.Reject("LRAP.EventRejected", "rule sql-1 matched")
			}
			return hook.Continue
		},
	})
	bad := api.Enqueue(fakeapi.Invocation{Payload: []byte(`{"q":"1; DROP TABLE users"}`)})
	good := api.Enqueue(fakeapi.Invocation{Payload: []byte(`{"q":"hello"}`)})
	client := runtimeClient()
	id, event, _ := nextEvent(t, client, addr)
	if string(event) != `{"q":"hello"}` || id != good.RequestID {
		t.Fatalf("runtime got %s %q, want the good event %s", id, event, good.RequestID)
	}
	res, err := bad.Wait(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if res.Kind != "error" || res.Header.Get("Lambda-Runtime-Function-Error-Type") != "LRAP.EventRejected" ||
		!strings.Contains(string(res.Body), "rule sql-1 matched") {
		t.Errorf("upstream got %s %v %s for the rejected event", res.Kind, res.Header, res.Body)
	}
	if status, _ := postResult(t, client, addr, id, "response", []byte("ok"), nil); status != 202 {
		t.Errorf("good invocation's /response: %d", status)
	}
}

// A response hook can replace the result with an error: the API receives
// /error instead of /response, the runtime the API's 202.
func TestRejectedResponseReplacedWithError(t *testing.T) {
	api, addr, _ := hooked(t, fakeapi.Classic, hook.Hook{
		Name:      "dlp",
		NeedsBody: true,
		OnResponse: func(ctx context.Context, inv *hook.Invocation, resp *hook.Message) hook.Verdict {
			return hook.Reject("LRAP.ResponseBlocked", "card number in response")
		},
	})
	pending := api.Enqueue(fakeapi.Invocation{Payload: []byte(`{}`)})
	client := runtimeClient()
	id, _, _ := nextEvent(t, client, addr)
	status, body := postResult(t, client, addr, id, "response", []byte(`{"card":"4111111111111111"}`), nil)
	if status != 202 || string(body) != `{"status":"OK"}`+"\n" {
		t.Errorf("runtime got %d %q, want the API's 202", status, body)
	}
	res, _ := pending.Wait(ctxT(t))
	if res.Kind != "error" || res.Header.Get("Lambda-Runtime-Function-Error-Type") != "LRAP.ResponseBlocked" || bytes.Contains(res.Body, []byte("4111")) {
		t.Errorf("API got %s %v %s", res.Kind, res.Header.Get("Lambda-Runtime-Function-Error-Type"), res.Body)
	}
}

// A hook that panics or overruns its budget never takes the invocation
// down: fail-open skips it, fail-closed rejects with LRAP.HookFailed.
func TestHookFailuresFollowPolicy(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy hook.Policy
		fn     func(ctx context.Context, inv *hook.Invocation, ev *hook.Message) hook.Verdict
	}{
		{"panic/fail-open", hook.FailOpen, func(context.Context, *hook.Invocation, *hook.Message) hook.Verdict { panic("boom") }},
		{"panic/fail-closed", hook.FailClosed, func(context.Context, *hook.Invocation, *hook.Message) hook.Verdict { panic("boom") }},
		{"overrun/fail-open", hook.FailOpen, func(_ context.Context, _ *hook.Invocation, ev *hook.Message) hook.Verdict {
			time.Sleep(300 * time.Millisecond)
			ev.SetBody([]byte("late write must not be seen"))
			return hook.Continue
		}},
		{"overrun/fail-closed", hook.FailClosed, func(context.Context, *hook.Invocation, *hook.Message) hook.Verdict {
			time.Sleep(300 * time.Millisecond)
			return hook.Continue
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The hook fails on the first event only, so the runtime's poll
			// has a second event to receive once the first is rejected.
			api, addr, px := hooked(t, fakeapi.Classic, hook.Hook{
				Name: "flaky", Policy: tc.policy, Budget: 20 * time.Millisecond, NeedsBody: true,
				OnEvent: func(ctx context.Context, inv *hook.Invocation, ev *hook.Message) hook.Verdict {
					if string(ev.Body) != `{"n":1}` {
						return hook.Continue
					}
					return tc.fn(ctx, inv, ev)
				},
			})
			first := api.Enqueue(fakeapi.Invocation{Payload: []byte(`{"n":1}`)})
			client := runtimeClient()
			if tc.policy == hook.FailOpen {
				id, event, _ := nextEvent(t, client, addr)
				time.Sleep(350 * time.Millisecond) // past the abandoned hook's late write
				if id != first.RequestID || string(event) != `{"n":1}` {
					t.Errorf("fail-open: runtime got %s %q, want the untouched event", id, event)
				}
				if px.Stats().Skips.Load() != 1 {
					t.Errorf("skips = %d, want 1", px.Stats().Skips.Load())
				}
				return
			}
			second := api.Enqueue(fakeapi.Invocation{Payload: []byte(`{"n":2}`)})
			if id, _, _ := nextEvent(t, client, addr); id != second.RequestID {
				t.Errorf("fail-closed: runtime got %s, want the next event %s", id, second.RequestID)
			}
			res, err := first.Wait(ctxT(t))
			if err != nil {
				t.Fatal(err)
			}
			if res.Header.Get("Lambda-Runtime-Function-Error-Type") != "LRAP.HookFailed" || !strings.Contains(string(res.Body), "flaky") {
				t.Errorf("fail-closed: API got %v %s", res.Header, res.Body)
			}
			if px.Stats().Rejections.Load() < 1 {
				t.Errorf("rejections not counted")
			}
		})
	}
}

// A body a hook needs but cannot have (over the buffer limit, or a streamed
// response) follows the hook's policy: fail-open passes it untouched,
// fail-closed rejects.
func TestUnavailableBodyFollowsPolicy(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 2048)
	for _, policy := range []hook.Policy{hook.FailOpen, hook.FailClosed} {
		t.Run(policy.String(), func(t *testing.T) {
			called := false
			api, err := fakeapi.Start(fakeapi.Options{Mode: fakeapi.Classic})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(api.Close)
			addr, px := startLrapProxy(t, api.Addr(), func(c *proxy.Config) {
				c.BufferLimit = 1024
				c.Hooks = []hook.Hook{{Name: "inspect", Policy: policy, NeedsBody: true,
					OnResponse: func(context.Context, *hook.Invocation, *hook.Message) hook.Verdict {
						called = true
						return hook.Continue
					}}}
			})
			client := runtimeClient()
			for _, tc := range []struct {
				name   string
				header http.Header
			}{{"over-limit", nil}, {"streamed", http.Header{"Lambda-Runtime-Function-Response-Mode": {"streaming"}}}} {
				pending := api.Enqueue(fakeapi.Invocation{Payload: []byte(`{}`)})
				id, _, _ := nextEvent(t, client, addr)
				status, _ := postResult(t, client, addr, id, "response", big, tc.header)
				res, _ := pending.Wait(ctxT(t))
				if status != 202 {
					t.Errorf("%s: runtime got %d", tc.name, status)
				}
				if policy == hook.FailOpen && (res.Kind != "response" || !bytes.Equal(res.Body, big)) {
					t.Errorf("%s fail-open: API got %s with %d bytes, want the untouched response", tc.name, res.Kind, len(res.Body))
				}
				if policy == hook.FailClosed && (res.Kind != "error" || res.Header.Get("Lambda-Runtime-Function-Error-Type") != "LRAP.HookFailed") {
					t.Errorf("%s fail-closed: API got %s %v, want LRAP.HookFailed", tc.name, res.Kind, res.Header)
				}
			}
			if called {
				t.Error("the hook was called without the body it needs")
			}
			if n := px.Stats().BodyUnavailable.Load(); n != 2 {
				t.Errorf("body-unavailable count %d, want 2", n)
			}
		})
	}
}

type storeKey struct{}

// 16 invocations in flight at once each keep their own state from event to
// response to end, and each ends exactly once with the right outcome,
// sizes and digests.
func TestSixteenConcurrentInvocationsKeepTheirOwnState(t *testing.T) {
	const n = 16
	var mu sync.Mutex
	ends := map[string]*hook.End{}
	mismatches := 0
	api, addr, px := hooked(t, fakeapi.ManagedInstances, hook.Hook{
		Name:      "state",
		NeedsBody: true,
		Digests:   true,
		OnEvent: func(ctx context.Context, inv *hook.Invocation, ev *hook.Message) hook.Verdict {
			inv.Set(storeKey{}, string(ev.Body))
			return hook.Continue
		},
		OnResponse: func(ctx context.Context, inv *hook.Invocation, resp *hook.Message) hook.Verdict {
			if want := inv.Value(storeKey{}).(string); "echo:"+want != string(resp.Body) {
				mu.Lock()
				mismatches++
				mu.Unlock()
			}
			return hook.Continue
		},
		OnEnd: func(inv *hook.Invocation, end *hook.End) {
			mu.Lock()
			defer mu.Unlock()
			if ends[inv.RequestID] != nil {
				t.Errorf("invocation %s ended twice", inv.RequestID)
			}
			ends[inv.RequestID] = end
		},
	})
	var pendings []*fakeapi.Pending
	payloads := map[string][]byte{}
	for i := range n {
		p := api.Enqueue(fakeapi.Invocation{Payload: []byte(fmt.Sprintf(`{"worker-event":%d,"pad":"%s"}`, i, strings.Repeat("z", i*100)))})
		pendings = append(pendings, p)
	}
	client := runtimeClient()
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			id, event, _ := nextEvent(t, client, addr)
			mu.Lock()
			payloads[id] = event
			mu.Unlock()
			time.Sleep(10 * time.Millisecond) // all 16 in flight together
			if status, _ := postResult(t, client, addr, id, "response", append([]byte("echo:"), event...), nil); status != 202 {
				t.Errorf("%s: %d", id, status)
			}
		})
	}
	wg.Wait()
	for _, p := range pendings {
		if _, err := p.Wait(ctxT(t)); err != nil {
			t.Fatal(err)
		}
	}
	if err := px.Shutdown(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if mismatches != 0 {
		t.Errorf("%d responses saw another invocation's state", mismatches)
	}
	if len(ends) != n {
		t.Fatalf("%d ends, want %d", len(ends), n)
	}
	for id, end := range ends {
		ev := payloads[id]
		res := append([]byte("echo:"), ev...)
		evSum, resSum := sha256.Sum256(ev), sha256.Sum256(res)
		if end.Outcome != hook.Success || end.EventBytes != int64(len(ev)) || end.ResultBytes != int64(len(res)) ||
			!bytes.Equal(end.EventSHA256, evSum[:]) || !bytes.Equal(end.ResultSHA256, resSum[:]) || end.Duration <= 0 || end.Delivered.IsZero() {
			t.Errorf("%s: end %+v, want success with %d/%d bytes and their digests", id, end, len(ev), len(res))
		}
	}
}

// Outcomes: an /error ends as error with its type, a rejected event as
// rejected (by the hook that rejected it), an open invocation at shutdown as
// a timeout.
func TestEndOutcomes(t *testing.T) {
	var mu sync.Mutex
	ends := map[string]*hook.End{}
	api, addr, px := hooked(t, fakeapi.ManagedInstances, hook.Hook{
		Name: "gate",
		OnEvent: func(ctx context.Context, inv *hook.Invocation, ev *hook.Message) hook.Verdict {
			if ev.Header.Get("X-Reject") != "" {
				return hook.Reject("LRAP.EventRejected", "no")
			}
			return hook.Continue
		},
		OnEnd: func(inv *hook.Invocation, end *hook.End) {
			mu.Lock()
			ends[inv.RequestID] = end
			mu.Unlock()
		},
	})
	rejected := api.Enqueue(fakeapi.Invocation{Payload: []byte(`{}`), ExtraHeaders: http.Header{"X-Reject": {"1"}}})
	failing := api.Enqueue(fakeapi.Invocation{Payload: []byte(`{}`)})
	open := api.Enqueue(fakeapi.Invocation{Payload: []byte(`{}`)})
	client := runtimeClient()
	id1, _, _ := nextEvent(t, client, addr)
	id2, _, _ := nextEvent(t, client, addr)
	if id1 != failing.RequestID || id2 != open.RequestID {
		t.Fatalf("runtime got %s, %s", id1, id2)
	}
	if status, _ := postResult(t, client, addr, id1, "error", []byte(`{"errorType":"Handled"}`), http.Header{"Lambda-Runtime-Function-Error-Type": {"Function.Handled"}}); status != 202 {
		t.Fatalf("/error: %d", status)
	}
	if _, err := rejected.Wait(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := px.Shutdown(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for id, want := range map[string]hook.End{
		rejected.RequestID: {Outcome: hook.Rejected, ErrorType: "LRAP.EventRejected", RejectedBy: "gate"},
		id1:                {Outcome: hook.Error, ErrorType: "Function.Handled"},
		id2:                {Outcome: hook.Timeout},
	} {
		got := ends[id]
		if got == nil || got.Outcome != want.Outcome || got.ErrorType != want.ErrorType || got.RejectedBy != want.RejectedBy {
			t.Errorf("%s: end %+v, want %+v", id, got, want)
		}
	}
}

// Without hooks nothing is buffered: a streamed response still reaches the
// API before the runtime finishes it (the no-hook path is the plain path).
func TestNoHooksNoStats(t *testing.T) {
	px, err := proxy.New(proxy.Config{Upstream: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	if px.Stats() != nil {
		t.Error("a proxy without hooks has hook stats")
	}
}

// A hook abandoned after overrunning its budget keeps running (Go cannot
// stop it); its late changes must never reach the message the next hooks
// and the forward work on.
func TestAbandonedHookCannotChangeTheMessage(t *testing.T) {
	nextRunning := make(chan struct{})
	lateWritten := make(chan struct{})
	sawLate := make(chan bool, 1)
	api, addr, _ := hooked(t, fakeapi.Classic,
		hook.Hook{Name: "slow", Budget: 10 * time.Millisecond, NeedsBody: true,
			OnEvent: func(ctx context.Context, _ *hook.Invocation, ev *hook.Message) hook.Verdict {
				<-nextRunning // abandoned by now: the next hook runs
				ev.SetBody([]byte("late"))
				ev.Header.Set("X-Late", "1")
				close(lateWritten)
				return hook.Continue
			}},
		hook.Hook{Name: "next", Budget: -1, NeedsBody: true,
			OnEvent: func(ctx context.Context, _ *hook.Invocation, ev *hook.Message) hook.Verdict {
				close(nextRunning)
				select {
				case <-lateWritten:
				case <-time.After(testTimeout):
				}
				sawLate <- string(ev.Body) == "late" || ev.Header.Get("X-Late") != ""
				return hook.Continue
			}},
	)
	api.Enqueue(fakeapi.Invocation{Payload: []byte(`{"original":true}`)})
	_, event, h := nextEvent(t, runtimeClient(), addr)
	if <-sawLate || string(event) != `{"original":true}` || h.Get("X-Late") != "" {
		t.Errorf("the abandoned hook's late write leaked: runtime got %q, X-Late %q", event, h.Get("X-Late"))
	}
}

// When a hook changes a result, End describes what crossed lrap: the size
// and digest of the changed body, never of the original (a redacted secret's
// digest would let anyone test guesses of it).
func TestEndDescribesTheChangedResult(t *testing.T) {
	ends := make(chan *hook.End, 1)
	api, addr, px := hooked(t, fakeapi.Classic, hook.Hook{
		Name: "mask", NeedsBody: true, Digests: true,
		OnResponse: func(_ context.Context, _ *hook.Invocation, m *hook.Message) hook.Verdict {
			m.SetBody([]byte(`{"pin":"***"}`))
			return hook.Continue
		},
		OnEnd: func(_ *hook.Invocation, e *hook.End) { ends <- e },
	})
	pending := api.Enqueue(fakeapi.Invocation{Payload: []byte(`{}`)})
	client := runtimeClient()
	id, _, _ := nextEvent(t, client, addr)
	if status, _ := postResult(t, client, addr, id, "response", []byte(`{"pin":"1234"}`), nil); status != 202 {
		t.Fatalf("status %d", status)
	}
	if _, err := pending.Wait(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := px.Shutdown(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	e := <-ends
	want := sha256.Sum256([]byte(`{"pin":"***"}`))
	if e.ResultBytes != int64(len(`{"pin":"***"}`)) || !bytes.Equal(e.ResultSHA256, want[:]) {
		t.Errorf("end has %d bytes, digest %x; want the changed body's %d bytes and digest %x", e.ResultBytes, e.ResultSHA256, len(`{"pin":"***"}`), want)
	}
}
