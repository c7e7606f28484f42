package builtin

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// The worked config file in the README, in YAML and in JSON, is a valid
// configuration of the real hooks, and both forms say the same thing: the
// documentation cannot drift from the code.
func TestReadmeConfigExamples(t *testing.T) {
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	find := func(lang, name string) []byte {
		t.Helper()
		re := regexp.MustCompile("(?s)`" + regexp.QuoteMeta(name) + "`:\n\n```" + lang + "\n(.*?)```")
		m := re.FindSubmatch(raw)
		if m == nil {
			t.Fatalf("README.md has no %s block introduced by `%s`:", lang, name)
		}
		return m[1]
	}
	yamlDoc, jsonDoc := find("yaml", "/opt/lrap.yaml"), find("json", "/opt/lrap.json")
	converted, err := yamlToJSON(yamlDoc)
	if err != nil {
		t.Fatalf("the README's YAML example: %v", err)
	}
	if y, j := canonical(t, converted), canonical(t, jsonDoc); y != j {
		t.Errorf("the README's YAML and JSON examples differ:\nyaml: %s\njson: %s", y, j)
	}
	dir := t.TempDir()
	for name, doc := range map[string][]byte{"lrap.yaml": yamlDoc, "lrap.json": jsonDoc} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, doc, 0o644); err != nil {
			t.Fatal(err)
		}
		hooks, err := Load(func(k string) (string, bool) {
			if k == "LRAP_CONFIG" {
				return path, true
			}
			return "", false
		})
		if err != nil {
			t.Errorf("the README's %s does not load: %v", name, err)
			continue
		}
		if len(hooks) == 0 {
			t.Errorf("the README's %s enables no hook", name)
		}
	}
}
