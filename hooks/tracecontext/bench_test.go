package tracecontext

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/lrap/lrap/hook"
)

// BenchmarkTracecontext measures the hook's cost per invocation: one
// OnEvent call, as lrap makes it, on sample events. "sqs" is the cost for
// an event that is not HTTP-shaped; "1MB body" an HTTP API event carrying a
// 1 MB request body.
//
//	go test -run '^$' -bench Tracecontext -benchmem ./hooks/tracecontext
func BenchmarkTracecontext(b *testing.B) {
	big := strings.Replace(string(sample(b, "httpapi.json")), `"body":"{\"item\":\"lamp\",\"qty\":2}"`,
		`"body":"`+strings.Repeat("x", 1<<20)+`"`, 1)
	h, err := New(Config{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name  string
		event []byte
	}{
		{"rest", sample(b, "rest.json")},
		{"httpapi", sample(b, "httpapi.json")},
		{"alb", sample(b, "alb.json")},
		{"sqs", sample(b, "sqs.json")},
		{"1MB body", []byte(big)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			inv := &hook.Invocation{RequestID: "bench", TraceID: xray}
			header := http.Header{"Lambda-Runtime-Trace-Id": {xray}}
			b.SetBytes(int64(len(bc.event)))
			b.ReportAllocs()
			for b.Loop() {
				msg := &hook.Message{Header: header, Body: bc.event}
				h.OnEvent(context.Background(), inv, msg)
			}
		})
	}
}
