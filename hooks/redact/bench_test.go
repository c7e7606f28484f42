package redact

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/lrap/lrap/hook"
)

// BenchmarkRedact measures the hook's cost per invocation: one OnResponse
// call on a buffered JSON response, as lrap makes it.
//
//	go test -run '^$' -bench Redact -benchmem ./hooks/redact
//
// "clean" bodies hold nothing to mask (the common case: no copy, no
// SetBody); "pii" bodies hold e-mails, cards and SSNs; "paths" adds two
// JSON paths, which costs a full decode of the document.
func BenchmarkRedact(b *testing.B) {
	small := apiGatewayResponse(false)
	smallPII := apiGatewayResponse(true)
	large := recordsDocument(1<<20, false)
	largePII := recordsDocument(1<<20, true)
	paths := []string{"$..password", "$.records[*].token"}
	for _, bc := range []struct {
		name string
		body []byte
		cfg  Config
	}{
		{"1.8KB/clean", small, Config{}},
		{"1.8KB/pii", smallPII, Config{}},
		{"1.8KB/pii+paths", smallPII, Config{Paths: paths}},
		{"1MB/clean", large, Config{}},
		{"1MB/pii", largePII, Config{}},
		{"1MB/pii+paths", largePII, Config{Paths: paths}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h, err := New(bc.cfg, nil)
			if err != nil {
				b.Fatal(err)
			}
			inv := &hook.Invocation{RequestID: "bench"}
			header := http.Header{"Content-Type": {"application/json"}}
			b.SetBytes(int64(len(bc.body)))
			b.ReportAllocs()
			for b.Loop() {
				msg := &hook.Message{Header: header, Body: bc.body}
				h.OnResponse(context.Background(), inv, msg)
			}
		})
	}
}

// apiGatewayResponse is a 1.8 KB proxy-integration response: headers and a
// JSON body carried as a string, as a typical HTTP API function returns.
func apiGatewayResponse(pii bool) []byte {
	email, card, ssn := "ann.lee@example.com", "4111 1111 1111 1111", "123-45-6789"
	if !pii {
		email, card, ssn = "ann.lee at example", "4111 1111 1111", "123-45"
	}
	inner := fmt.Sprintf(`{"user":{"id":"u-8f14e45f","name":"Ann Lee","email":%q,"password":"x",`+
		`"addresses":[{"street":"1 Main St","city":"Springfield","zip":"12345"}],`+
		`"payment":{"card":%q,"expiry":"12/29"},"ssn":%q},`+
		`"orders":[{"id":1001,"total":129.95,"items":["book","lamp"]},{"id":1002,"total":8.5,"items":["pen"]}],`+
		`"notes":%q}`, email, card, ssn, strings.Repeat("lorem ipsum dolor sit amet ", 20))
	doc := fmt.Sprintf(`{"statusCode":200,"headers":{"Content-Type":"application/json","Cache-Control":"no-store",`+
		`"X-Request-Id":"c6af9ac6-7b61-11e6-9a41-93e8deadbeef"},"multiValueHeaders":{"Set-Cookie":["a=1","b=2"]},`+
		`"isBase64Encoded":false,"body":%q,"pad":%q}`, inner, strings.Repeat("0123456789abcdef", 40))
	return []byte(doc)
}

// recordsDocument is a JSON document of about n bytes: an array of records,
// one in eight holding personal data when pii is set.
func recordsDocument(n int, pii bool) []byte {
	var sb strings.Builder
	sb.WriteString(`{"records":[`)
	for i := 0; sb.Len() < n; i++ {
		if i > 0 {
			sb.WriteByte(',')
		}
		email := fmt.Sprintf("user%d at example", i)
		if pii && i%8 == 0 {
			email = fmt.Sprintf("user%d@example.com", i)
		}
		fmt.Fprintf(&sb, `{"id":%d,"ts":1700000000%03d,"email":%q,"token":"t%08x","score":%d.%02d,"tags":["a","b"],"note":"nothing to see here"}`,
			i, i%1000, email, i, i%100, i%97)
	}
	sb.WriteString(`]}`)
	return []byte(sb.String())
}
