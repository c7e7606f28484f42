package tracecontext

import (
	"context"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/lrap/lrap/hook"
)

// The worked example in README.md is real: with the trace header shown,
// the hook turns the event shown into the event shown.
func TestReadmeExample(t *testing.T) {
	raw, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	block := func(intro, lang string) string {
		t.Helper()
		m := regexp.MustCompile("(?s)" + regexp.QuoteMeta(intro) + "\n\n```" + lang + "\n(.*?)```").FindSubmatch(raw)
		if m == nil {
			t.Fatalf("README.md has no %q block after %q", lang, intro)
		}
		return strings.TrimSpace(string(m[1]))
	}
	if v := block("On the function:", "sh"); v != "LRAP_HOOKS="+Name {
		t.Errorf("the example enables %q", v)
	}
	name, trace, _ := strings.Cut(block("Lambda delivers an HTTP API (payload 2.0) event with this trace header:", ""), ": ")
	if name != "Lambda-Runtime-Trace-Id" {
		t.Fatalf("header %q", name)
	}
	in, want := block("The event from the API:", "json"), block("The event the function gets:", "json")

	h, err := Build(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	msg := &hook.Message{Header: http.Header{"Lambda-Runtime-Trace-Id": {trace}}, Body: []byte(in)}
	h.OnEvent(context.Background(), &hook.Invocation{TraceID: trace}, msg)
	if string(msg.Body) != want {
		t.Errorf("the example's event becomes\n%s\nnot\n%s", msg.Body, want)
	}
	if _, err := Build(nil, []byte(`{"header":"x"}`)); err == nil || !strings.Contains(string(raw), "tracecontext hook: "+err.Error()) {
		t.Errorf("README.md does not quote the error %v", err)
	}
}
