package redact

import (
	"context"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/lrap/lrap/hook"
)

// The worked example in README.md is real: its variables, and its YAML
// section, turn the response shown into the answer shown.
func TestReadmeExample(t *testing.T) {
	raw, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	block := func(intro, lang string) string {
		t.Helper()
		m := regexp.MustCompile("(?s)" + regexp.QuoteMeta(intro) + "\n\n```" + lang + "\n(.*?)```").FindStringSubmatch(readme)
		if m == nil {
			t.Fatalf("README.md has no %s block after %q", lang, intro)
		}
		return m[1]
	}
	vars := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(block("On the function:", "sh")), "\n") {
		name, value, _ := strings.Cut(line, "=")
		vars[name] = value
	}
	if vars["LRAP_HOOKS"] != Name {
		t.Errorf("the example enables %q", vars["LRAP_HOOKS"])
	}
	response := strings.TrimSpace(block("The function returns this response:", "json"))
	want := strings.TrimSpace(block("The caller gets:", "json"))

	// The YAML section uses flow lists only: key: [a, b].
	section := Config{}
	for _, line := range strings.Split(block("The same configuration as a section of the `LRAP_CONFIG` file (YAML or JSON):", "yaml"), "\n") {
		key, list, ok := strings.Cut(strings.TrimSpace(line), ": [")
		if !ok {
			continue
		}
		items := strings.Split(strings.TrimSuffix(list, "]"), ", ")
		switch key {
		case "paths":
			section.Paths = items
		case "detectors":
			section.Detectors = items
		}
	}

	fromEnv, err := Build(func(k string) (string, bool) { v, ok := vars[k]; return v, ok }, nil)
	if err != nil {
		t.Fatal(err)
	}
	fromFile, err := New(section, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, h := range map[string]hook.Hook{"variables": fromEnv, "YAML section": fromFile} {
		msg := &hook.Message{Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(response)}
		h.OnResponse(context.Background(), &hook.Invocation{}, msg)
		if string(msg.Body) != want {
			t.Errorf("%s: the example's response becomes\n%s\nnot\n%s", name, msg.Body, want)
		}
	}
}

// The settings table in README.md lists every variable with its default.
func TestReadmeListsSettings(t *testing.T) {
	raw, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range Settings {
		def := "`" + s.Default + "`"
		if s.Default == "none" {
			def = "none"
		}
		if !strings.Contains(string(raw), "| `"+s.Name+"` |") || !regexp.MustCompile(regexp.QuoteMeta("| `"+s.Name+"` |")+"[^\n]*\\| "+regexp.QuoteMeta(def)+" \\|").Match(raw) {
			t.Errorf("README.md has no row for %s with default %s", s.Name, def)
		}
	}
}
