package firewall_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/lrap/lrap/hook"
	"github.com/lrap/lrap/hooks/firewall"
)

// apiSchema is what a team would write for an API Gateway proxy event.
const apiSchema = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "required": ["httpMethod", "path", "headers", "requestContext"],
  "properties": {
    "httpMethod": {"enum": ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]},
    "path": {"type": "string", "maxLength": 512, "pattern": "^/"},
    "headers": {"type": ["object", "null"], "additionalProperties": {"type": "string", "maxLength": 8192}},
    "queryStringParameters": {"type": ["object", "null"], "additionalProperties": {"type": "string"}},
    "body": {"type": ["string", "null"], "maxLength": 65536},
    "isBase64Encoded": {"type": "boolean"},
    "requestContext": {
      "type": "object",
      "required": ["requestId", "stage", "identity"],
      "properties": {
        "requestId": {"$ref": "#/$defs/id"},
        "stage": {"type": "string", "minLength": 1},
        "requestTimeEpoch": {"type": "integer", "minimum": 0},
        "identity": {"type": "object", "properties": {"sourceIp": {"type": "string", "pattern": "^[0-9a-fA-F.:]+$"}}}
      }
    }
  },
  "$defs": {"id": {"type": "string", "minLength": 1, "maxLength": 128}}
}`

func benchmarkHook(b *testing.B, cfg firewall.Config, body []byte, wantReject bool) {
	h, err := firewall.New(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	header := http.Header{
		"Lambda-Runtime-Aws-Request-Id":       {"8476a536-e9f4-11e8-9739-2dfe598c3fcd"},
		"Lambda-Runtime-Invoked-Function-Arn": {"arn:aws:lambda:eu-west-1:123456789012:function:orders"},
		"Lambda-Runtime-Trace-Id":             {"Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1"},
		"Lambda-Runtime-Deadline-Ms":          {"1542409706888"},
		"Content-Type":                        {"application/json"},
	}
	inv := &hook.Invocation{RequestID: "8476a536-e9f4-11e8-9739-2dfe598c3fcd", Header: header}
	ctx := context.Background()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		msg := &hook.Message{Header: header}
		if h.NeedsBody {
			msg.Body = body
		}
		if _, _, rejected := h.OnEvent(ctx, inv, msg).Rejected(); rejected != wantReject {
			b.Fatalf("rejected = %v", rejected)
		}
	}
}

// BenchmarkFirewall is the firewall's cost per invocation on a passing
// 1.8 KB API Gateway event: size limit, schema and three path rules, so
// every check runs in full.
func BenchmarkFirewall(b *testing.B) {
	benchmarkHook(b, firewall.Config{MaxBytes: 256 << 10, Schema: json.RawMessage(apiSchema), Rules: apiRules},
		apiGatewayEvent("POST", "/orders", "Mozilla/5.0 (X11; Linux x86_64)", 0), false)
}

// BenchmarkFirewallReject: the first rule rejects (a log line is written to
// a discarding logger).
func BenchmarkFirewallReject(b *testing.B) {
	benchmarkHook(b, firewall.Config{Schema: json.RawMessage(apiSchema), Rules: apiRules},
		apiGatewayEvent("GET", "/admin/users", "Mozilla/5.0 (X11; Linux x86_64)", 0), true)
}

// BenchmarkFirewallRules: three path rules, no schema.
func BenchmarkFirewallRules(b *testing.B) {
	benchmarkHook(b, firewall.Config{Rules: apiRules}, apiGatewayEvent("POST", "/orders", "Mozilla/5.0 (X11; Linux x86_64)", 0), false)
}

// BenchmarkFirewallSchema: the schema alone.
func BenchmarkFirewallSchema(b *testing.B) {
	benchmarkHook(b, firewall.Config{Schema: json.RawMessage(apiSchema)}, apiGatewayEvent("POST", "/orders", "Mozilla/5.0 (X11; Linux x86_64)", 0), false)
}

// BenchmarkFirewallHeaders: header rules only; the body is not buffered or
// decoded.
func BenchmarkFirewallHeaders(b *testing.B) {
	benchmarkHook(b, firewall.Config{Rules: []firewall.Rule{
		{ID: "arn", Header: "Lambda-Runtime-Invoked-Function-Arn", Op: "matches", Value: json.RawMessage(`":function:orders$"`), Not: true},
		{ID: "cc", Header: "Lambda-Runtime-Client-Context", Op: "exists"},
		{ID: "sampled", Header: "Lambda-Runtime-Trace-Id", Op: "equals", Value: json.RawMessage(`"x"`)},
	}}, apiGatewayEvent("POST", "/orders", "Mozilla/5.0 (X11; Linux x86_64)", 0), false)
}

// BenchmarkFirewallMaxBytes: the size limit alone.
func BenchmarkFirewallMaxBytes(b *testing.B) {
	benchmarkHook(b, firewall.Config{MaxBytes: 256 << 10}, apiGatewayEvent("POST", "/orders", "Mozilla/5.0 (X11; Linux x86_64)", 0), false)
}
