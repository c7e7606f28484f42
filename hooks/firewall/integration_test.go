package firewall_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lrap/lrap/hook"
	"github.com/lrap/lrap/hooks/firewall"
	"github.com/lrap/lrap/internal/fakeapi"
	"github.com/lrap/lrap/internal/proxy"
)

// These tests run the firewall the way lrap does: the strict fake Runtime
// API, lrap's proxy with the hook in front of it, and a client playing the
// runtime.

const testTimeout = 5 * time.Second

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// start runs the fake API and lrap with the firewall built from section
// and env, and returns the fake and lrap's address.
func start(t *testing.T, cfg firewall.Config, logs io.Writer, bufferLimit int64) (*fakeapi.Server, string) {
	t.Helper()
	api, err := fakeapi.Start(fakeapi.Options{Mode: fakeapi.Classic})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(api.Close)
	if logs == nil {
		logs = io.Discard
	}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	h, err := firewall.New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	px, err := proxy.New(proxy.Config{Upstream: api.Addr(), Hooks: []hook.Hook{h}, Logger: log, BufferLimit: bufferLimit})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := proxy.NewServer(px, log)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		px.Close()
		srv.Close()
	})
	return api, ln.Addr().String()
}

var client = &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 2 * testTimeout}

// next plays the runtime's GET /next.
func next(t *testing.T, addr string) (string, []byte) {
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
	return resp.Header.Get("Lambda-Runtime-Aws-Request-Id"), b
}

func respond(t *testing.T, addr, id string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctxT(t), "POST", "http://"+addr+"/2018-06-01/runtime/invocation/"+id+"/response", strings.NewReader(`"ok"`))
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 202 {
		t.Fatalf("/response: %d", resp.StatusCode)
	}
}

// apiGatewayEvent is an API Gateway (REST) proxy event of about 1.8 KB:
// over the 2 KiB chunking threshold with padding, under it without.
func apiGatewayEvent(method, path, ua string, pad int) []byte {
	ev := map[string]any{
		"resource": "/{proxy+}", "path": path, "httpMethod": method,
		"headers": map[string]any{
			"Accept": "application/json", "Content-Type": "application/json", "Host": "abc123.execute-api.eu-west-1.amazonaws.com",
			"User-Agent": ua, "X-Amzn-Trace-Id": "Root=1-65f0a1b2-0123456789abcdef01234567",
			"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Port": "443", "X-Forwarded-Proto": "https",
		},
		"multiValueHeaders": map[string]any{
			"Accept": []any{"application/json"}, "Content-Type": []any{"application/json"}, "Host": []any{"abc123.execute-api.eu-west-1.amazonaws.com"},
			"User-Agent": []any{ua}, "X-Amzn-Trace-Id": []any{"Root=1-65f0a1b2-0123456789abcdef01234567"},
			"X-Forwarded-For": []any{"203.0.113.7"}, "X-Forwarded-Port": []any{"443"}, "X-Forwarded-Proto": []any{"https"},
		},
		"queryStringParameters":           map[string]any{"page": "2", "limit": "50"},
		"multiValueQueryStringParameters": map[string]any{"page": []any{"2"}, "limit": []any{"50"}},
		"pathParameters":                  map[string]any{"proxy": strings.TrimPrefix(path, "/")},
		"stageVariables":                  nil,
		"requestContext": map[string]any{
			"accountId": "123456789012", "apiId": "abc123", "resourceId": "r1", "stage": "prod",
			"requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef", "httpMethod": method, "path": "/prod" + path,
			"protocol": "HTTP/1.1", "requestTimeEpoch": 1700000000000,
			"domainName": "abc123.execute-api.eu-west-1.amazonaws.com", "requestTime": "14/Nov/2023:22:13:20 +0000",
			"extendedRequestId": "O2u8vGf3DoEFvWQ=",
			"identity": map[string]any{"sourceIp": "203.0.113.7", "userAgent": ua, "accountId": nil, "caller": nil,
				"cognitoIdentityPoolId": nil, "cognitoIdentityId": nil, "cognitoAuthenticationType": nil,
				"cognitoAuthenticationProvider": nil, "userArn": nil, "user": nil, "accessKey": nil, "apiKey": nil},
			"authorizer": map[string]any{"principalId": "user-42", "claims": map[string]any{"sub": "user-42", "scope": "orders:write"}},
		},
		"body":            `{"orderId":"o-1001","amount":250,"currency":"EUR","items":[{"sku":"A-1","qty":1},{"sku":"B-2","qty":3}]}` + strings.Repeat(" ", pad),
		"isBase64Encoded": false,
	}
	b, _ := json.Marshal(ev)
	return b
}

var apiRules = []firewall.Rule{
	{ID: "no-admin", Path: "$.path", Op: "matches", Value: json.RawMessage(`"^/admin(/|$)"`)},
	{ID: "no-scanners", Path: "$.headers['User-Agent']", Op: "matches", Value: json.RawMessage(`"(?i)sqlmap|nikto|nmap"`)},
	{ID: "methods", Path: "$.httpMethod", Op: "matches", Value: json.RawMessage(`"^(GET|POST)$"`), Not: true},
}

// A rejected event reaches the API as /error with LRAP.EventRejected and the
// rule id; the runtime never sees it and gets the next event. Events over
// 2 KiB (chunked, no Content-Length) are judged by size the same way.
func TestRejectedEventThroughProxy(t *testing.T) {
	api, addr := start(t, firewall.Config{
		MaxBytes: 4096,
		Rules:    apiRules,
		Schema:   json.RawMessage(`{"type":"object","required":["httpMethod","path"]}`),
	}, nil, 0)
	rejected := []struct {
		payload []byte
		msg     string
	}{
		{apiGatewayEvent("GET", "/admin/users", "curl/8", 0), "rule no-admin matched"},
		{apiGatewayEvent("GET", "/orders", "sqlmap/1.7", 0), "rule no-scanners matched"},
		{apiGatewayEvent("DELETE", "/orders", "curl/8", 0), "rule methods matched"},
		{apiGatewayEvent("GET", "/orders", "curl/8", 3000), "event larger than 4096 bytes (max-bytes)"},
		{[]byte(`{"path":"/orders"}`), `schema: at "": lacks required property "httpMethod" (required)`},
	}
	var pending []*fakeapi.Pending
	for _, r := range rejected {
		pending = append(pending, api.Enqueue(fakeapi.Invocation{Payload: r.payload}))
	}
	good := apiGatewayEvent("POST", "/orders", "Mozilla/5.0", 600) // > 2 KiB: chunked
	ok := api.Enqueue(fakeapi.Invocation{Payload: good})

	id, event := next(t, addr)
	if id != ok.RequestID || !bytes.Equal(event, good) {
		t.Fatalf("runtime got %s (%d bytes), want the good event %s (%d bytes)", id, len(event), ok.RequestID, len(good))
	}
	for i, r := range rejected {
		res, err := pending[i].Wait(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		var doc struct{ ErrorMessage, ErrorType string }
		_ = json.Unmarshal(res.Body, &doc)
		if res.Kind != "error" || res.Header.Get("Lambda-Runtime-Function-Error-Type") != "LRAP.EventRejected" ||
			doc.ErrorType != "LRAP.EventRejected" || doc.ErrorMessage != r.msg {
			t.Errorf("event %d: API got %s %q %s, want /error LRAP.EventRejected %q", i, res.Kind,
				res.Header.Get("Lambda-Runtime-Function-Error-Type"), res.Body, r.msg)
		}
	}
	respond(t, addr, id)
	if res, err := ok.Wait(ctxT(t)); err != nil || res.Kind != "response" {
		t.Errorf("good invocation: %v %v", res, err)
	}
}

// Dry run forwards every event and logs the ones it would have rejected.
func TestDryRunThroughProxy(t *testing.T) {
	var logs bytes.Buffer
	api, addr := start(t, firewall.Config{DryRun: true, Rules: apiRules, MaxBytes: 100}, &logs, 0)
	for _, payload := range [][]byte{
		apiGatewayEvent("GET", "/admin", "curl/8", 0),
		apiGatewayEvent("DELETE", "/orders", "curl/8", 0),
	} {
		p := api.Enqueue(fakeapi.Invocation{Payload: payload})
		id, event := next(t, addr)
		if id != p.RequestID || !bytes.Equal(event, payload) {
			t.Fatalf("dry run: runtime got %s, want %s untouched", id, p.RequestID)
		}
		respond(t, addr, id)
		if res, err := p.Wait(ctxT(t)); err != nil || res.Kind != "response" {
			t.Fatalf("dry run: %v %v", res, err)
		}
		if !strings.Contains(logs.String(), `"request_id":"`+id+`"`) {
			t.Errorf("no dry-run log line for %s:\n%s", id, logs.String())
		}
	}
	if !strings.Contains(logs.String(), `"msg":"firewall dry run: event would be rejected"`) ||
		!strings.Contains(logs.String(), `"rule":"max-bytes"`) || strings.Contains(logs.String(), "abc123.execute-api") {
		t.Errorf("dry-run logs:\n%s", logs.String())
	}
}

// An event over LRAP_BUFFER_LIMIT cannot be inspected: the default policy,
// fail-closed, fails it (LRAP.HookFailed); fail-open lets it through.
func TestEventOverBufferLimit(t *testing.T) {
	big := apiGatewayEvent("GET", "/orders", "curl/8", 4000)
	for _, policy := range []string{"fail-closed", "fail-open"} {
		t.Run(policy, func(t *testing.T) {
			api, addr := start(t, firewall.Config{Policy: policy, Rules: apiRules}, nil, 1024)
			p := api.Enqueue(fakeapi.Invocation{Payload: big})
			if policy == "fail-open" {
				if id, event := next(t, addr); id != p.RequestID || !bytes.Equal(event, big) {
					t.Fatalf("fail-open: runtime got %s (%d bytes)", id, len(event))
				}
				return
			}
			after := api.Enqueue(fakeapi.Invocation{Payload: []byte(`{"httpMethod":"GET","path":"/"}`)})
			if id, _ := next(t, addr); id != after.RequestID {
				t.Fatalf("fail-closed: runtime got %s, want the next event", id)
			}
			res, err := p.Wait(ctxT(t))
			if err != nil {
				t.Fatal(err)
			}
			if res.Kind != "error" || res.Header.Get("Lambda-Runtime-Function-Error-Type") != proxy.ErrorHookFailed {
				t.Errorf("fail-closed: API got %s %v", res.Kind, res.Header)
			}
		})
	}
}
