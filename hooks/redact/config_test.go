package redact

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lrap/lrap/hook"
	"github.com/lrap/lrap/internal/config"
)

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// The file section configures the hook; each variable overrides its field.
func TestBuildSectionAndEnvOverride(t *testing.T) {
	section := json.RawMessage(`{"paths":["$.a"],"detectors":["email"],"mask":"#","events":true,"policy":"fail-open","budget":"300ms"}`)
	h, err := Build(envOf(nil), section)
	if err != nil {
		t.Fatal(err)
	}
	if h.OnEvent == nil || h.Policy != hook.FailOpen || h.Budget != 300*time.Millisecond {
		t.Errorf("from the file: %+v", h)
	}
	got := respond(t, h, `{"a":1,"b":"bob@example.com","c":"123-45-6789"}`)
	if got != `{"a":"#","b":"#","c":"123-45-6789"}` {
		t.Errorf("from the file: %s", got)
	}

	h, err = Build(envOf(map[string]string{
		EnvPaths: "$.c, $['x,y']", EnvDetectors: "none", EnvMask: "-", EnvEvents: "false",
		EnvPolicy: "fail-closed", EnvBudget: "1s",
	}), section)
	if err != nil {
		t.Fatal(err)
	}
	if h.OnEvent != nil || h.Policy != hook.FailClosed || h.Budget != time.Second {
		t.Errorf("env over the file: %+v", h)
	}
	got = respond(t, h, `{"a":1,"b":"bob@example.com","c":2,"x,y":3}`)
	if got != `{"a":1,"b":"bob@example.com","c":"-","x,y":"-"}` {
		t.Errorf("env over the file: %s", got)
	}

	// Empty variables do not override, and no section at all is the default.
	for _, section := range []json.RawMessage{nil, json.RawMessage("null"), json.RawMessage(" {} ")} {
		h, err = Build(envOf(map[string]string{EnvPaths: "", EnvMask: ""}), section)
		if err != nil {
			t.Fatalf("%q: %v", section, err)
		}
		if got := respond(t, h, `{"e":"bob@example.com"}`); got != `{"e":"***"}` || h.Policy != hook.FailClosed {
			t.Errorf("default from %q: %s, %v", section, got, h.Policy)
		}
	}
}

func respond(t *testing.T, h hook.Hook, body string) string {
	t.Helper()
	msg := &hook.Message{Header: http.Header{}, Body: []byte(body)}
	if _, _, rejected := h.OnResponse(context.Background(), &hook.Invocation{}, msg).Rejected(); rejected {
		t.Fatalf("%s rejected", body)
	}
	return string(msg.Body)
}

// Invalid settings are refused with a message naming the setting as it was
// given (variable or file key), the value and what is accepted; every
// invalid setting is reported at once.
func TestBuildRefusesInvalidSettings(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		section string
		want    []string
	}{
		{"bad path from env", map[string]string{EnvPaths: "$.ok,$.a["}, "",
			[]string{`LRAP_REDACT_PATHS="$.a["`, "unclosed [", "accepted: comma-separated JSON paths"}},
		{"bad path from file", nil, `{"paths":["$.ok","a.b"]}`,
			[]string{`redact.paths[1]="a.b"`, "must start with $"}},
		{"root path", nil, `{"paths":["$"]}`, []string{`redact.paths[0]="$"`, "whole document"}},
		{"unknown detector", map[string]string{EnvDetectors: "email,phone"}, "",
			[]string{`LRAP_REDACT_DETECTORS="phone"`, "email, card, aws-access-key, us-ssn; or none"}},
		{"nothing to do", map[string]string{EnvDetectors: "none"}, "",
			[]string{`LRAP_REDACT_DETECTORS="none"`, "would do nothing"}},
		{"nothing to do from file", nil, `{"detectors":[]}`, []string{`redact.detectors="none"`}},
		{"mask a detector matches", map[string]string{EnvMask: "x@example.com"}, "",
			[]string{`LRAP_REDACT_MASK="x@example.com"`, "email detector matches it"}},
		{"mask with a newline", nil, `{"mask":"a\nb"}`, []string{`redact.mask="a\nb"`, "control character"}},
		{"mask too long", map[string]string{EnvMask: strings.Repeat("*", 65)}, "", []string{"LRAP_REDACT_MASK", "longer than 64"}},
		{"events", map[string]string{EnvEvents: "yes"}, "", []string{`LRAP_REDACT_EVENTS="yes"`, "true or false"}},
		{"policy", map[string]string{EnvPolicy: "closed"}, "", []string{`LRAP_REDACT_POLICY="closed"`, "fail-closed or fail-open"}},
		{"policy from file", nil, `{"policy":"strict"}`, []string{`redact.policy="strict"`}},
		{"budget", map[string]string{EnvBudget: "5"}, "", []string{`LRAP_REDACT_BUDGET="5"`, "Go duration from 1ms to 10s"}},
		{"budget too long", nil, `{"budget":"1m"}`, []string{`redact.budget="1m"`}},
		{"unknown key in the file", nil, `{"path":["$.a"]}`, []string{"redact=", `unknown field "path"`}},
		{"section not an object", nil, `["$.a"]`, []string{"redact=", "cannot unmarshal"}},
		{"several at once", map[string]string{EnvPolicy: "x", EnvBudget: "y"}, "",
			[]string{"LRAP_REDACT_POLICY", "LRAP_REDACT_BUDGET"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Build(envOf(tc.env), json.RawMessage(tc.section))
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, config.ErrInvalid) {
				t.Errorf("%v does not wrap config.ErrInvalid", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestSplitPaths(t *testing.T) {
	for in, want := range map[string][]string{
		"$.a":                         {"$.a"},
		"$.a, $.b ,$..c":              {"$.a", "$.b", "$..c"},
		`$['a,b'],$["c,]d"],$.e[*].f`: {"$['a,b']", `$["c,]d"]`, "$.e[*].f"},
		`$['it\'s,x'],$.y`:            {`$['it\'s,x']`, "$.y"},
		"$.a,":                        {"$.a", ""},
	} {
		if got := splitPaths(in); !slices.Equal(got, want) {
			t.Errorf("splitPaths(%q) = %q, want %q", in, got, want)
		}
	}
}

// Settings documents every variable Build reads.
func TestSettingsListEveryVariable(t *testing.T) {
	var names []string
	for _, s := range Settings {
		names = append(names, s.Name)
		if s.Default == "" || s.Accepted == "" || s.Doc == "" {
			t.Errorf("%s is not fully documented", s.Name)
		}
	}
	want := []string{EnvPaths, EnvDetectors, EnvMask, EnvEvents, EnvPolicy, EnvBudget}
	if !slices.Equal(names, want) {
		t.Errorf("Settings = %v, want %v", names, want)
	}
}
