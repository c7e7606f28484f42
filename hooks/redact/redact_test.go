package redact

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/lrap/lrap/hook"
	"github.com/lrap/lrap/internal/jsonpath"
)

func mustRedactor(t testing.TB, cfg Config) *redactor {
	t.Helper()
	r, _, err := compile(cfg, fileNames)
	if err != nil {
		t.Fatal(err)
	}
	r.log = slog.New(slog.DiscardHandler)
	return r
}

// redacted runs r on body and returns the result, or body itself when
// nothing changed.
func redacted(t testing.TB, r *redactor, body, contentType string) string {
	t.Helper()
	out, _, problem := r.redact(context.Background(), []byte(body), contentType)
	if problem != "" {
		t.Fatalf("problem with %q: %s", body, problem)
	}
	if out == nil {
		return body
	}
	return string(out)
}

// Detectors mask inside strings, keys included; the rest of the document is
// copied byte for byte: key order, whitespace, escapes and number literals.
func TestJSONDetectorsSpliceOnlyWhatChanged(t *testing.T) {
	r := mustRedactor(t, Config{})
	for _, tc := range []struct{ name, in, want string }{
		{"string values",
			`{"z":1,"user":{"email":"alice@example.com","note":"card 4111 1111 1111 1111 ok"},"a":true}`,
			`{"z":1,"user":{"email":"***","note":"card *** ok"},"a":true}`},
		{"layout and numbers kept",
			"{\n  \"n\": 12345678901234567890123,\n  \"f\": 1.50,\n  \"e\": 1E+400,\n  \"ssn\" : \"123-45-6789\"\n}\n",
			"{\n  \"n\": 12345678901234567890123,\n  \"f\": 1.50,\n  \"e\": 1E+400,\n  \"ssn\" : \"***\"\n}\n"},
		{"keys", `{"bob@example.com":{"id":1}}`, `{"***":{"id":1}}`},
		{"arrays and top-level strings", `["x", "AKIAIOSFODNN7EXAMPLE", []]`, `["x", "***", []]`},
		{"top-level string", `"a@b.com"`, `"***"`},
		{"card as a number", `{"pan":4111111111111111,"ts":1700000000004}`, `{"pan":"***","ts":1700000000004}`},
		{"escaped string decoded, re-encoded without HTML escaping",
			`{"m":"\u003cbob\u0040example.com\u003e \u00e9 \"q\"","other":"\u00e9"}`,
			`{"m":"<***> é \"q\"","other":"\u00e9"}`},
		{"nested JSON in a string (API Gateway body)",
			`{"statusCode":200,"body":"{\"email\":\"carol@example.com\"}"}`,
			`{"statusCode":200,"body":"{\"email\":\"***\"}"}`},
		{"escaped quote before a match", `{"q":"say \"hi\" to dan@example.com"}`, `{"q":"say \"hi\" to ***"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := redacted(t, r, tc.in, "application/json"); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

// Paths mask whole values of any type, detectors still run elsewhere, and
// the document is otherwise untouched.
func TestJSONPaths(t *testing.T) {
	r := mustRedactor(t, Config{Paths: []string{"$.user.password", "$..token", "$.items[*].secret", "$['odd key']", "$.list[1]"}})
	in := `{"user":{"password":{"v":[1,2]},"name":"x"},"items":[{"secret":42,"k":1},{"secret":null}],` +
		`"deep":{"a":{"token":"t0"}},"token":true,"odd key":"v","list":["a","b","c"],"mail":"eve@example.com","n":1.0}`
	want := `{"user":{"password":"***","name":"x"},"items":[{"secret":"***","k":1},{"secret":"***"}],` +
		`"deep":{"a":{"token":"***"}},"token":"***","odd key":"***","list":["a","***","c"],"mail":"***","n":1.0}`
	if got := redacted(t, r, in, "application/json"); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	// A path that selects nothing leaves the document to the detectors.
	if got := redacted(t, r, `{"other":1}`, ""); got != `{"other":1}` {
		t.Errorf("unmatched path changed the document: %s", got)
	}
}

// Paths only, no detectors: strings that look sensitive are left alone.
func TestPathsWithoutDetectors(t *testing.T) {
	r := mustRedactor(t, Config{Paths: []string{"$.a"}, Detectors: []string{}})
	if got := redacted(t, r, `{"a":"x","b":"bob@example.com"}`, ""); got != `{"a":"***","b":"bob@example.com"}` {
		t.Errorf("got %s", got)
	}
}

// The mask is configurable; inside a JSON string it is escaped as needed.
func TestCustomMask(t *testing.T) {
	r := mustRedactor(t, Config{Mask: `[REDACTED "x"]`, Paths: []string{"$.p"}})
	got := redacted(t, r, `{"e":"to bob@example.com","p":[1]}`, "")
	want := `{"e":"to [REDACTED \"x\"]","p":"[REDACTED \"x\"]"}`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	var v any
	if err := json.Unmarshal([]byte(got), &v); err != nil {
		t.Errorf("not JSON any more: %v", err)
	}
	text := redacted(t, r, "mail bob@example.com", "text/plain")
	if text != `mail [REDACTED "x"]` {
		t.Errorf("text: got %q", text)
	}
}

// A body with nothing to redact is not copied: redact returns nil and the
// hook does not call SetBody, so lrap forwards the original bytes.
func TestUnchangedBodyUntouched(t *testing.T) {
	h, err := New(Config{Paths: []string{"$.absent"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{
		`{"a": [1, 2.50, 1e3], "s": "nothing here", "ts": 1700000000004}`,
		"plain text, nothing here",
		"\x89PNG\r\n\x1a\n\x00bob@example.com",
	} {
		msg := &hook.Message{Header: http.Header{}, Body: []byte(body)}
		v := h.OnResponse(context.Background(), &hook.Invocation{}, msg)
		if _, _, rejected := v.Rejected(); rejected || msg.BodyChanged() || string(msg.Body) != body {
			t.Errorf("%q: rejected=%v changed=%v body %q", body, rejected, msg.BodyChanged(), msg.Body)
		}
	}
}

// Large integers and decimals keep their exact literal text, also when the
// document is changed and paths decoded it.
func TestNumberPrecisionKept(t *testing.T) {
	r := mustRedactor(t, Config{Paths: []string{"$.secret"}})
	in := `{"big":123456789012345678901234567890,"id":9007199254740993,"dec":0.10000000000000000555,"neg":-0.0,"secret":"s"}`
	want := `{"big":123456789012345678901234567890,"id":9007199254740993,"dec":0.10000000000000000555,"neg":-0.0,"secret":"***"}`
	if got := redacted(t, r, in, "application/json"); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// How bodies are inspected depends on their type (see classify).
func TestContentTypes(t *testing.T) {
	r := mustRedactor(t, Config{})
	for _, tc := range []struct{ name, ct, in, want string }{
		{"text", "text/plain; charset=utf-8", "mail bob@example.com now", "mail *** now"},
		{"html", "text/html", "<p>bob@example.com</p>", "<p>***</p>"},
		{"untyped text", "", "bob@example.com", "***"},
		{"octet-stream JSON (aws-lambda-go)", "application/octet-stream", ` {"e":"bob@example.com"}`, ` {"e":"***"}`},
		{"problem+json", "application/problem+json; charset=utf-8", `{"detail":"bob@example.com"}`, `{"detail":"***"}`},
		{"text/plain that is JSON", "text/plain", `["bob@example.com"]`, `["***"]`},
		{"image left alone", "image/png", "bob@example.com", "bob@example.com"},
		{"HTTP integration stream left alone", "application/vnd.awslambda.http-integration-response",
			"{\"statusCode\":200}\x00\x00\x00\x00\x00\x00\x00\x00bob@example.com", "{\"statusCode\":200}\x00\x00\x00\x00\x00\x00\x00\x00bob@example.com"},
		{"NUL bytes are binary", "", "bob@example.com\x00", "bob@example.com\x00"},
		{"invalid UTF-8 is binary", "", "bob@example.com\xff", "bob@example.com\xff"},
		{"invalid JSON without paths: text", "application/json", `{"e":"bob@example.com"`, `{"e":"***"`},
		{"unparsable Content-Type", "what;;=", "bob@example.com", "***"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := redacted(t, r, tc.in, tc.ct); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// JSON that does not parse cannot have its paths applied: fail-closed
// rejects with LRAP.RedactionUnavailable, fail-open forwards the body with
// the detectors applied and logs a warning.
func TestInvalidJSONWithPathsFollowsPolicy(t *testing.T) {
	body := `{"password":"hunter2","e":"bob@example.com"` // truncated
	for _, policy := range []string{"fail-closed", "fail-open"} {
		t.Run(policy, func(t *testing.T) {
			var logs bytes.Buffer
			h, err := New(Config{Paths: []string{"$.password"}, Policy: policy}, slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil {
				t.Fatal(err)
			}
			msg := &hook.Message{Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(body)}
			v := h.OnResponse(context.Background(), &hook.Invocation{RequestID: "r1"}, msg)
			errorType, message, rejected := v.Rejected()
			if policy == "fail-closed" {
				if !rejected || errorType != ErrorUnavailable || !strings.Contains(message, "not valid JSON") {
					t.Errorf("verdict %q %q %v, want a rejection with %s", errorType, message, rejected, ErrorUnavailable)
				}
				return
			}
			if rejected || string(msg.Body) != `{"password":"hunter2","e":"***"` {
				t.Errorf("fail-open: rejected=%v body %s", rejected, msg.Body)
			}
			if !strings.Contains(logs.String(), "paths not applied") || !strings.Contains(logs.String(), "request_id=r1") ||
				strings.Contains(logs.String(), "hunter2") {
				t.Errorf("log %q: want the warning, with the request id and without the payload", logs.String())
			}
		})
	}
}

// The hook's shape: it needs bodies, redacts responses and error reports,
// events only when asked.
func TestHookShape(t *testing.T) {
	h, err := New(Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if h.Name != Name || !h.NeedsBody || h.OnResponse == nil || h.OnError == nil || h.OnEvent != nil || h.Policy != hook.FailClosed || h.Budget != DefaultBudget {
		t.Errorf("default hook: %+v", h)
	}
	h, err = New(Config{Events: true, Policy: "fail-open", Budget: "1s"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if h.OnEvent == nil || h.Policy != hook.FailOpen || h.Budget.String() != "1s" {
		t.Errorf("configured hook: %+v", h)
	}
	msg := &hook.Message{Header: http.Header{}, Body: []byte(`{"errorMessage":"no user bob@example.com","errorType":"NotFound"}`)}
	h.OnError(context.Background(), &hook.Invocation{}, msg)
	if string(msg.Body) != `{"errorMessage":"no user ***","errorType":"NotFound"}` {
		t.Errorf("error report: %s", msg.Body)
	}
}

// FuzzJSON: for any valid JSON document, the redacted document is valid
// JSON, redacting it again changes nothing, no detector finds anything in
// any of its strings or keys, and with nothing to find the original is
// kept.
func FuzzJSON(f *testing.F) {
	for _, s := range []string{
		`{"a":"bob@example.com","b":[4111111111111111,"x"],"c":{"123-45-6789":null}}`,
		`"AKIAIOSFODNN7EXAMPLE"`, `[]`, `{}`, `1e5`, `{"s":"\u0040\"\\"}`, ` [ "a\u0040b.co" , true ] `,
		`{"p":{"q":[1,{"r":"s"}]}}`, `{"a":"x","a":"bob@example.com"}`,
		`{"a":01}`, `[1,]`, `{"a" 1}`, `"\x"`, `"\u12"`, "\"\x01\"", `-`, `1.`, `1e`, `[1 2]`, `tru`, `{"a":1}}`,
		"\"\xff@a.com\"", strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
	} {
		f.Add(s)
	}
	r := mustRedactor(f, Config{Paths: []string{"$.p.q", "$..r"}})
	plain := mustRedactor(f, Config{})
	f.Fuzz(func(t *testing.T, s string) {
		// The walker validates on its own: it must agree with encoding/json.
		_, _, ok := plain.redactJSON(context.Background(), []byte(s))
		if valid := json.Valid([]byte(s)); ok != valid {
			t.Fatalf("%q: walker says valid=%v, encoding/json %v", s, ok, valid)
		}
		if !ok {
			return
		}
		out, _, problem := r.redact(context.Background(), []byte(s), "application/json")
		if problem != "" {
			t.Fatalf("valid JSON %q: %s", s, problem)
		}
		if out == nil {
			out = []byte(s)
		} else if !json.Valid(out) {
			t.Fatalf("%q redacted to invalid JSON %q", s, out)
		}
		again, _, _ := r.redact(context.Background(), out, "application/json")
		if again != nil {
			t.Fatalf("not idempotent: %q -> %q -> %q", s, out, again)
		}
		doc, err := jsonpath.Decode(out)
		if err != nil {
			t.Fatal(err)
		}
		leak(t, r, doc)
	})
}

// leak fails if a detector finds something in any string or key of doc.
func leak(t *testing.T, r *redactor, doc any) {
	check := func(s string) {
		if spans := spansIn(r.detectors, []byte(s), nil); len(spans) > 0 {
			t.Fatalf("left unmasked: %q", s)
		}
	}
	switch v := doc.(type) {
	case string:
		check(v)
	case json.Number:
		check(v.String())
	case []any:
		for _, e := range v {
			leak(t, r, e)
		}
	case map[string]any:
		for k, e := range v {
			check(k)
			leak(t, r, e)
		}
	}
}

// FuzzUnquote: the walker decodes escaped strings exactly as encoding/json
// does, lone surrogates and invalid UTF-8 included.
func FuzzUnquote(f *testing.F) {
	for _, s := range []string{`"a"`, `"\u0040\n\/\\\""`, `"\ud83d\ude00"`, `"\ud83d"`, `"\ud83dx"`, `"\ude00\ud83d"`,
		"\"\xff\xfe\"", "\"\xe2\x82\"", `"\u00e9é"`, `"\ud83d\u0041"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var want string
		s = strings.Trim(s, " \t\r\n")
		if len(s) < 2 || s[0] != '"' || json.Unmarshal([]byte(s), &want) != nil {
			return
		}
		if got := string(unquote(nil, []byte(s[1:len(s)-1]))); got != want {
			t.Fatalf("unquote(%q) = %q, encoding/json says %q", s, got, want)
		}
	})
}

// Once lrap has abandoned a call (over budget), the walk stops early
// rather than spend the function's CPU on a result nobody reads.
func TestAbandonedWalkStops(t *testing.T) {
	r := mustRedactor(t, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	doc := recordsDocument(1<<20, true)
	w := &walker{r: r, b: doc, ctx: ctx}
	if w.walk(nil, false) || w.values > 4096 {
		t.Errorf("walked %d values after cancellation", w.values)
	}
	if out, _, problem := r.redact(ctx, doc, "application/json"); out != nil || problem != "" {
		t.Errorf("abandoned redact returned a result")
	}
}
