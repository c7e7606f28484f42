package tracecontext

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/lrap/lrap/hook"
	"github.com/lrap/lrap/internal/config"
)

const (
	xray = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
	tp   = "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01"
)

func TestFromXRay(t *testing.T) {
	for _, tc := range []struct {
		in, want string // want "" means no traceparent
	}{
		{xray, tp},
		{"Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0", "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-00"},
		{"Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=?", "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-00"},
		{"Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8", "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-00"},
		{" Sampled=1 ; Parent=53995C3F42CD8AD8; Root=1-5759E988-BD862E3FE1BE46A994272793 ;", tp}, // any order, spaces, upper case
		{"Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1;Lineage=a87bd80c:1|68fd508a:5", tp},
		{"Root=1-5759e988-bd862e3fe1be46a994272793;Self=1-67891234-12456789abcdef012345678;Parent=53995c3f42cd8ad8;Sampled=1", tp},
		// No traceparent possible.
		{"", ""},
		{"Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1", ""},                         // no Parent
		{"Parent=53995c3f42cd8ad8;Sampled=1", ""},                                          // no Root
		{"Root=2-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8", ""},           // unknown version
		{"Root=1-5759e988-bd862e3fe1be46a99427279;Parent=53995c3f42cd8ad8", ""},            // short
		{"Root=1-5759e98g-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8", ""},           // not hex
		{"Root=1-5759e988bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8", ""},            // no second dash
		{"Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad", ""},            // short parent
		{"Root=1-00000000-000000000000000000000000;Parent=53995c3f42cd8ad8", ""},           // all-zero trace id
		{"Root=1-5759e988-bd862e3fe1be46a994272793;Parent=0000000000000000", ""},           // all-zero parent
		{"Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=2", ""}, // unknown decision
		{"Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=", ""},  // empty decision
		{"Root=1-5759e988-bd862e3fe1be46a994272793;Root=1-5759e988-bd862e3fe1be46a994272794;Parent=53995c3f42cd8ad8", ""},
		{"Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;garbage", ""},
	} {
		got, ok := FromXRay(tc.in)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("FromXRay(%q) = %q, %v; want %q", tc.in, got, ok, tc.want)
		}
	}
}

var traceparentRE = regexp.MustCompile(`^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$`)

// FuzzFromXRay: the parser never panics, and what it returns is a valid
// traceparent that maps back to the same ids.
func FuzzFromXRay(f *testing.F) {
	for _, s := range []string{xray, "", ";;;", "Root=", "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8",
		"Sampled=1;Parent=53995C3F42CD8AD8;Root=1-5759E988-BD862E3FE1BE46A994272793", "=;=", "Root=1-\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := FromXRay(s)
		if !ok {
			if got != "" {
				t.Fatalf("%q: not ok but returned %q", s, got)
			}
			return
		}
		if !traceparentRE.MatchString(got) || strings.Contains(got, "-00000000000000000000000000000000-") || strings.Contains(got, "-0000000000000000-") {
			t.Fatalf("%q -> invalid traceparent %q", s, got)
		}
		back := "Root=1-" + got[3:11] + "-" + got[11:35] + ";Parent=" + got[36:52] + ";Sampled=" + got[54:]
		if again, ok := FromXRay(back); !ok || again != got {
			t.Fatalf("%q -> %q, but %q -> %q", s, got, back, again)
		}
	})
}

func sample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decoded returns the event's headers and multiValueHeaders.
func decoded(t *testing.T, event []byte) (map[string]any, map[string]any) {
	t.Helper()
	var ev struct {
		Headers           map[string]any `json:"headers"`
		MultiValueHeaders map[string]any `json:"multiValueHeaders"`
	}
	if err := json.Unmarshal(event, &ev); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, event)
	}
	return ev.Headers, ev.MultiValueHeaders
}

// Each HTTP shape gets the header where that shape keeps headers, and
// nothing else in the event changes: taking the inserted text out again
// gives back the original bytes.
func TestAddTraceparentToHTTPShapes(t *testing.T) {
	for _, tc := range []struct {
		file          string
		single, multi bool
	}{
		{"rest.json", true, true},
		{"httpapi.json", true, false},
		{"functionurl.json", true, false},
		{"alb.json", true, false},
		{"alb-multivalue.json", false, true},
	} {
		t.Run(tc.file, func(t *testing.T) {
			in := sample(t, tc.file)
			out, ok := AddTraceparent(in, tp)
			if !ok {
				t.Fatal("not recognised")
			}
			headers, multi := decoded(t, out)
			if got := headers[Header]; tc.single != (got == tp) {
				t.Errorf("headers.traceparent = %v", got)
			}
			if got, _ := multi[Header].([]any); tc.multi != (len(got) == 1 && got[0] == tp) {
				t.Errorf("multiValueHeaders.traceparent = %v", multi[Header])
			}
			if !tc.multi && multi != nil && multi[Header] != nil || !tc.single && headers != nil {
				t.Errorf("header added where the shape has none: %v %v", headers, multi)
			}
			back := bytes.Replace(out, []byte(`"traceparent":"`+tp+`",`), nil, 1)
			back = bytes.Replace(back, []byte(`"traceparent":["`+tp+`"],`), nil, 1)
			if !bytes.Equal(back, in) {
				t.Errorf("more than the header changed:\n%s", out)
			}
		})
	}
}

// Events that are not HTTP-shaped, or already carry a traceparent, are left
// alone.
func TestAddTraceparentLeavesOthersAlone(t *testing.T) {
	rest := string(sample(t, "rest.json"))
	for name, event := range map[string]string{
		"sqs":                            string(sample(t, "sqs.json")),
		"websocket":                      string(sample(t, "websocket.json")),
		"traceparent in headers":         strings.Replace(rest, `"Accept": "application/json",`, `"Accept": "application/json", "TraceParent": "00-11111111111111111111111111111111-2222222222222222-01",`, 1),
		"traceparent in multiValue":      strings.Replace(rest, `"Accept": ["application/json"],`, `"Accept": ["application/json"], "traceparent": ["x"],`, 1),
		"v2 without requestContext.http": `{"version":"2.0","headers":{},"requestContext":{"stage":"x"}}`,
		"v1 without headers":             `{"httpMethod":"GET","requestContext":{}}`,
		"httpMethod not a string":        `{"httpMethod":1,"requestContext":{},"headers":{}}`,
		"requestContext not an object":   `{"httpMethod":"GET","requestContext":"x","headers":{}}`,
		"headers a string":               `{"httpMethod":"GET","requestContext":{},"headers":"x"}`,
		"not JSON":                       `{"httpMethod":"GET","requestContext":{},"headers":{}`,
		"trailing data":                  `{"httpMethod":"GET","requestContext":{},"headers":{}} {}`,
		"array":                          `[{"httpMethod":"GET","requestContext":{},"headers":{}}]`,
		"plain text":                     `requestContext`,
		"empty":                          ``,
	} {
		if out, ok := AddTraceparent([]byte(event), tp); ok || out != nil {
			t.Errorf("%s: changed to %s", name, out)
		}
	}
}

// Without headers, "headers" is created; a null one is replaced; empty
// objects get no stray comma.
func TestAddTraceparentCreatesHeaders(t *testing.T) {
	for in, want := range map[string]string{
		`{"httpMethod":"GET","requestContext":{},"headers":null,"multiValueHeaders":null}`:     `{"httpMethod":"GET","requestContext":{},"headers":{"traceparent":"` + tp + `"},"multiValueHeaders":null}`,
		`{"version":"2.0","requestContext":{"http":{"method":"GET"}}}`:                         `{"headers":{"traceparent":"` + tp + `"},"version":"2.0","requestContext":{"http":{"method":"GET"}}}`,
		`{"version":"2.0","requestContext":{"http":{}},"headers":{ }}`:                         `{"version":"2.0","requestContext":{"http":{}},"headers":{"traceparent":"` + tp + `" }}`,
		`{"httpMethod":"GET","requestContext":{"elb":{}},"headers":{},"multiValueHeaders":{}}`: `{"httpMethod":"GET","requestContext":{"elb":{}},"headers":{"traceparent":"` + tp + `"},"multiValueHeaders":{"traceparent":["` + tp + `"]}}`,
	} {
		out, ok := AddTraceparent([]byte(in), tp)
		if !ok || string(out) != want {
			t.Errorf("%s\n got %s\nwant %s", in, out, want)
		}
	}
}

// FuzzAddTraceparent: never panics; a changed event is valid JSON with the
// header in place.
func FuzzAddTraceparent(f *testing.F) {
	for _, name := range []string{"rest.json", "httpapi.json", "alb.json", "alb-multivalue.json", "sqs.json", "websocket.json"} {
		f.Add(sample(f, name))
	}
	f.Add([]byte(`{"version":"2.0","requestContext":{"http":{}},"headers":null}`))
	f.Fuzz(func(t *testing.T, event []byte) {
		out, ok := AddTraceparent(event, tp)
		if !ok {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("%q -> invalid JSON %q", event, out)
		}
		headers, multi := decoded(t, out)
		if headers[Header] != tp && multi[Header] == nil {
			t.Fatalf("%q -> no header in %q", event, out)
		}
	})
}

// The hook reads the trace header, adds traceparent, and leaves events it
// cannot help with untouched (no SetBody).
func TestHook(t *testing.T) {
	h, err := New(Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if h.Name != Name || h.Policy != hook.FailOpen || !h.NeedsBody || h.OnEvent == nil || h.OnResponse != nil || h.OnError != nil {
		t.Errorf("hook: %+v", h)
	}
	event := sample(t, "httpapi.json")
	for _, tc := range []struct {
		name, trace string
		changed     bool
	}{
		{"traced", xray, true},
		{"no trace header", "", false},
		{"no parent", "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1", false},
	} {
		msg := &hook.Message{Header: http.Header{}, Body: event}
		if tc.trace != "" {
			msg.Header.Set("Lambda-Runtime-Trace-Id", tc.trace)
		}
		h.OnEvent(context.Background(), &hook.Invocation{TraceID: tc.trace}, msg)
		if msg.BodyChanged() != tc.changed {
			t.Errorf("%s: changed=%v", tc.name, msg.BodyChanged())
		}
		if tc.changed && !bytes.Contains(msg.Body, []byte(`"traceparent":"`+tp+`"`)) {
			t.Errorf("%s: %s", tc.name, msg.Body)
		}
	}
}

func TestBuild(t *testing.T) {
	for _, section := range []string{"", "null", "{}", " { } "} {
		if _, err := Build(nil, json.RawMessage(section)); err != nil {
			t.Errorf("%q: %v", section, err)
		}
	}
	_, err := Build(nil, json.RawMessage(`{"header":"x"}`))
	if err == nil || !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), `tracecontext="{\"header\":\"x\"}"`) ||
		!strings.Contains(err.Error(), `unknown field "header"`) {
		t.Errorf("unknown key: %v", err)
	}
}
