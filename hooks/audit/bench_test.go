package audit_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/lrap/lrap/hook"
	"github.com/lrap/lrap/hooks/audit"
)

// BenchmarkAudit is the audit hook's own cost per invocation, writing to
// io.Discard: the OnEnd line alone (the default), and with payloads the two
// bounded captures on the data path as well. The SHA-256 digests the hook
// asks for are computed by lrap while bodies stream and are measured with
// the proxy (internal/proxy benchmarks), not here.
//
//	go test -run '^$' -bench Audit -benchmem ./hooks/audit
func BenchmarkAudit(b *testing.B) {
	inv := &hook.Invocation{RequestID: "8476a536-e9f4-11e8-9739-2dfe598c3fcd", FunctionARN: "arn:aws:lambda:us-east-1:012345678912:function:f"}
	end := &hook.End{
		Outcome: hook.Success, EventBytes: 1024, EventSHA256: sum("e"), ResultBytes: 2048, ResultSHA256: sum("r"),
		Delivered: time.Now(), Duration: 12345 * time.Microsecond, InLrap: 80 * time.Microsecond,
	}
	b.Run("digests", func(b *testing.B) {
		h, err := audit.New(audit.Config{}, io.Discard)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			h.OnEnd(inv, end)
		}
	})
	for _, size := range []struct {
		name string
		n    int
	}{{"payloads-1KiB", 1 << 10}, {"payloads-64KiB-cut-to-4KiB", 64 << 10}} {
		b.Run(size.name, func(b *testing.B) {
			h, err := audit.New(audit.Config{Payloads: true}, io.Discard)
			if err != nil {
				b.Fatal(err)
			}
			body := bytes.Repeat([]byte(`{"k":"v"},`), size.n/10)
			ctx := context.Background()
			ev := &hook.Message{Header: http.Header{}, Body: body}
			resp := &hook.Message{Header: http.Header{}, Body: body}
			b.ReportAllocs()
			for b.Loop() {
				inv := &hook.Invocation{RequestID: inv.RequestID, FunctionARN: inv.FunctionARN}
				h.OnEvent(ctx, inv, ev)
				h.OnResponse(ctx, inv, resp)
				h.OnEnd(inv, end)
			}
		})
	}
}
