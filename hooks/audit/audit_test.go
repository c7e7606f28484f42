package audit_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lrap/lrap/hook"
	"github.com/lrap/lrap/hooks/audit"
	"github.com/lrap/lrap/internal/config"
)

// line is an audit line as a consumer reads it.
type line struct {
	Type           string   `json:"type"`
	RequestID      string   `json:"requestId"`
	FunctionARN    string   `json:"functionArn"`
	Outcome        string   `json:"outcome"`
	ErrorType      string   `json:"errorType"`
	RejectedBy     string   `json:"rejectedBy"`
	EventBytes     int64    `json:"eventBytes"`
	EventSHA256    *string  `json:"eventSha256"`
	ResponseBytes  int64    `json:"responseBytes"`
	ResponseSHA256 *string  `json:"responseSha256"`
	DurationMs     *float64 `json:"durationMs"`
	LrapMs         float64  `json:"lrapMs"`
	Time           string   `json:"time"`

	Event             *string `json:"event"`
	EventEncoding     string  `json:"eventEncoding"`
	EventTruncated    bool    `json:"eventTruncated"`
	Response          *string `json:"response"`
	ResponseEncoding  string  `json:"responseEncoding"`
	ResponseTruncated bool    `json:"responseTruncated"`
}

// lines splits w's output into lines, failing on anything that is not one
// JSON object per line.
func lines(t *testing.T, out []byte) ([]line, []map[string]any) {
	t.Helper()
	var ls []line
	var raw []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l line
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("not a JSON line: %v\n%s", err, sc.Bytes())
		}
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		raw = append(raw, m)
	}
	if len(out) > 0 && out[len(out)-1] != '\n' {
		t.Errorf("output does not end with a newline: %q", out)
	}
	return ls, raw
}

func newHook(t *testing.T, cfg audit.Config) (hook.Hook, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	h, err := audit.New(cfg, &buf)
	if err != nil {
		t.Fatal(err)
	}
	return h, &buf
}

func sum(b string) []byte { s := sha256.Sum256([]byte(b)); return s[:] }

// Each End is exactly one line, written with one Write, carrying every
// field; digests are lowercase hex, durations milliseconds.
func TestOneLinePerEndWithEveryField(t *testing.T) {
	h, buf := newHook(t, audit.Config{})
	if !h.Digests || h.NeedsBody || h.OnEvent != nil || h.OnResponse != nil || h.OnError != nil || h.Policy != hook.FailOpen {
		t.Fatalf("without payloads the hook must only ask for digests and observe OnEnd: %+v", h)
	}
	delivered := time.Now().Add(-time.Second)
	ends := []struct {
		inv *hook.Invocation
		end *hook.End
	}{
		{&hook.Invocation{RequestID: "r-1", FunctionARN: "arn:aws:lambda:eu-west-1:1:function:f"},
			&hook.End{Outcome: hook.Success, EventBytes: 5, EventSHA256: sum("event"), ResultBytes: 2, ResultSHA256: sum("ok"),
				Delivered: delivered, Duration: 1234567 * time.Microsecond, InLrap: 89 * time.Microsecond}},
		{&hook.Invocation{RequestID: "r-2"},
			&hook.End{Outcome: hook.Error, ErrorType: "Function.Oops", EventBytes: 1, EventSHA256: sum("x"), ResultBytes: 3, ResultSHA256: sum("err"),
				Delivered: delivered, Duration: time.Millisecond}},
		{&hook.Invocation{RequestID: "r-3"},
			&hook.End{Outcome: hook.Rejected, ErrorType: "LRAP.EventRejected", RejectedBy: "firewall", InLrap: 2 * time.Millisecond}},
		{&hook.Invocation{RequestID: "r-4"},
			&hook.End{Outcome: hook.Timeout, EventBytes: 1, EventSHA256: sum("y"), Delivered: delivered}},
	}
	for _, e := range ends {
		h.OnEnd(e.inv, e.end)
	}
	got, _ := lines(t, buf.Bytes())
	if len(got) != len(ends) {
		t.Fatalf("%d lines for %d ends:\n%s", len(got), len(ends), buf.Bytes())
	}
	for i, l := range got {
		e := ends[i]
		if l.Type != "lrap.audit" || l.RequestID != e.inv.RequestID || l.FunctionARN != e.inv.FunctionARN ||
			l.Outcome != string(e.end.Outcome) || l.ErrorType != e.end.ErrorType || l.RejectedBy != e.end.RejectedBy ||
			l.EventBytes != e.end.EventBytes || l.ResponseBytes != e.end.ResultBytes {
			t.Errorf("line %d = %+v, want the fields of %+v %+v", i, l, e.inv, e.end)
		}
		checkDigest(t, "eventSha256", l.EventSHA256, e.end.EventSHA256)
		checkDigest(t, "responseSha256", l.ResponseSHA256, e.end.ResultSHA256)
		if ts, err := time.Parse(time.RFC3339Nano, l.Time); err != nil || time.Since(ts) > time.Minute || !strings.HasSuffix(l.Time, "Z") {
			t.Errorf("line %d time %q is not a recent RFC 3339 UTC time", i, l.Time)
		}
		if l.Event != nil || l.Response != nil {
			t.Errorf("line %d holds payloads without LRAP_AUDIT_PAYLOADS", i)
		}
	}
	if d := got[0].DurationMs; d == nil || *d != 1234.567 || got[0].LrapMs != 0.089 {
		t.Errorf("durationMs %v lrapMs %v, want 1234.567 and 0.089", d, got[0].LrapMs)
	}
	if got[2].DurationMs != nil || got[3].DurationMs != nil {
		t.Errorf("a rejected event or a forced timeout has no time in the function, want durationMs null: %v %v", got[2].DurationMs, got[3].DurationMs)
	}
	if got[2].LrapMs != 2 {
		t.Errorf("lrapMs of the rejected event = %v, want 2", got[2].LrapMs)
	}
}

func checkDigest(t *testing.T, name string, got *string, want []byte) {
	t.Helper()
	switch {
	case want == nil && got != nil:
		t.Errorf("%s = %q, want null", name, *got)
	case want != nil && (got == nil || *got != hex.EncodeToString(want)):
		t.Errorf("%s = %v, want %x", name, got, want)
	}
}

// Whatever a header held, every line is valid JSON and keeps the text.
func TestLinesAreValidJSONWhateverTheInput(t *testing.T) {
	h, buf := newHook(t, audit.Config{})
	weird := "id \"quoted\" \\ back\nnew\tline \x00\x1f \xff\xfe bad utf8 <&> \u2028 żółw"
	h.OnEnd(&hook.Invocation{RequestID: weird, FunctionARN: "arn"}, &hook.End{Outcome: hook.Error, ErrorType: "</script>"})
	got, _ := lines(t, buf.Bytes())
	// Each invalid byte becomes one U+FFFD.
	want := strings.Replace(weird, "\xff\xfe", "\uFFFD\uFFFD", 1)
	if len(got) != 1 || got[0].RequestID != want || got[0].ErrorType != "</script>" {
		t.Errorf("got %+v, want request id %q", got, want)
	}
}

// Payloads appear only when enabled; then the event and the result as the
// hook saw them, bounded, text as a string and binary as base64.
func TestPayloadsOnlyWhenEnabled(t *testing.T) {
	h, buf := newHook(t, audit.Config{Payloads: true, PayloadMaxBytes: 16})
	if !h.NeedsBody || h.OnEvent == nil || h.OnResponse == nil || h.OnError == nil || h.Budget >= 0 {
		t.Fatalf("with payloads the hook must capture bodies on the request's goroutine: %+v", h)
	}
	ctx := context.Background()
	run := func(id string, event, result []byte, isError bool) {
		inv := &hook.Invocation{RequestID: id}
		ev := &hook.Message{Header: http.Header{}, Body: event}
		if v := h.OnEvent(ctx, inv, ev); v != hook.Continue {
			t.Fatalf("OnEvent verdict %v", v)
		}
		if ev.BodyChanged() {
			t.Fatal("audit changed the event")
		}
		if result != nil {
			fn := h.OnResponse
			if isError {
				fn = h.OnError
			}
			fn(ctx, inv, &hook.Message{Header: http.Header{}, Body: result})
		}
		// The engine's buffer may be reused once the hook returned: the
		// capture must be a copy.
		for i := range event {
			event[i] = 'X'
		}
		h.OnEnd(inv, &hook.End{Outcome: hook.Success})
	}
	run("short", []byte(`{"a":1}`), []byte(`"ok"`), false)
	run("long", []byte(`{"pad":"żżżżżżżżżżżż"}`), []byte(`{"errorType":"E","errorMessage":"m"}`), true)
	run("binary", []byte{0xff, 0x00, 0xfe}, nil, false)

	got, raw := lines(t, buf.Bytes())
	if len(got) != 3 {
		t.Fatalf("%d lines, want 3", len(got))
	}
	if got[0].Event == nil || *got[0].Event != `{"a":1}` || *got[0].Response != `"ok"` || got[0].EventTruncated || got[0].ResponseTruncated {
		t.Errorf("short payloads: %+v", got[0])
	}
	// 16 bytes of {"pad":"żż... end inside a two-byte ż: cut before it.
	if got[1].Event == nil || *got[1].Event != `{"pad":"żżżż` || !got[1].EventTruncated {
		t.Errorf("long event: %v truncated=%v, want the first whole characters within 16 bytes", got[1].Event, got[1].EventTruncated)
	}
	if got[1].Response == nil || *got[1].Response != `{"errorType":"E"` || !got[1].ResponseTruncated {
		t.Errorf("error report: %v truncated=%v", got[1].Response, got[1].ResponseTruncated)
	}
	if got[2].Event == nil || got[2].EventEncoding != "base64" || *got[2].Event != base64.StdEncoding.EncodeToString([]byte{0xff, 0x00, 0xfe}) {
		t.Errorf("binary event: %+v", got[2])
	}
	if v, ok := raw[2]["response"]; !ok || v != nil {
		t.Errorf("nothing captured for the response: want \"response\":null, got %v (present %v)", v, ok)
	}
	if _, ok := raw[0]["eventTruncated"]; ok {
		t.Error("eventTruncated written for a whole payload")
	}
}

func env(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// Build reads the config-file section, then the environment, which wins.
// Every refusal names the setting and wraps config.ErrInvalid.
func TestBuildSettings(t *testing.T) {
	for _, tc := range []struct {
		name      string
		env       []string
		section   string
		payloads  bool
		wantError []string
	}{
		{name: "defaults"},
		{name: "env", env: []string{"LRAP_AUDIT_PAYLOADS", "TRUE", "LRAP_AUDIT_PAYLOAD_MAX_BYTES", "100"}, payloads: true},
		{name: "section", section: `{"payloads":true,"payloadMaxBytes":64}`, payloads: true},
		{name: "env wins", section: `{"payloads":true}`, env: []string{"LRAP_AUDIT_PAYLOADS", "false"}},
		{name: "bad bool", env: []string{"LRAP_AUDIT_PAYLOADS", "yes"},
			wantError: []string{`LRAP_AUDIT_PAYLOADS="yes"`, "true or false"}},
		{name: "size too big", env: []string{"LRAP_AUDIT_PAYLOAD_MAX_BYTES", "16385"},
			wantError: []string{`LRAP_AUDIT_PAYLOAD_MAX_BYTES="16385"`, "from 1 to 16384"}},
		{name: "size not a number", env: []string{"LRAP_AUDIT_PAYLOAD_MAX_BYTES", "4KiB"},
			wantError: []string{"LRAP_AUDIT_PAYLOAD_MAX_BYTES"}},
		{name: "section bad type", section: `{"payloads":"yes"}`,
			wantError: []string{"LRAP_CONFIG audit.payloads", `"yes"`}},
		{name: "section bad size", section: `{"payloadMaxBytes":0}`,
			wantError: []string{"LRAP_CONFIG audit.payloadMaxBytes=0"}},
		{name: "section unknown key", section: `{"payload":true}`,
			wantError: []string{"LRAP_CONFIG audit", `unknown key "payload"`, "payloads, payloadMaxBytes"}},
		{name: "section not an object", section: `[1]`,
			wantError: []string{"LRAP_CONFIG audit", "object"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := audit.Build(env(tc.env...), json.RawMessage(tc.section))
			if len(tc.wantError) > 0 {
				if err == nil {
					t.Fatal("accepted")
				}
				if !errors.Is(err, config.ErrInvalid) {
					t.Errorf("%v does not wrap config.ErrInvalid", err)
				}
				for _, w := range tc.wantError {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.Name != "audit" || h.NeedsBody != tc.payloads || (h.OnEvent != nil) != tc.payloads {
				t.Errorf("payloads: NeedsBody=%v, want %v", h.NeedsBody, tc.payloads)
			}
		})
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	if _, err := audit.New(audit.Config{PayloadMaxBytes: audit.MaxPayloadMaxBytes + 1}, &bytes.Buffer{}); err == nil {
		t.Error("PayloadMaxBytes above the maximum accepted")
	}
	if _, err := audit.New(audit.Config{}, nil); err == nil {
		t.Error("nil writer accepted")
	}
}
