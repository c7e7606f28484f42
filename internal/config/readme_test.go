package config_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/lrap/lrap/internal/builtin"
	"github.com/lrap/lrap/internal/config"
)

// The README's settings tables are the user's reference; each must list
// every setting the code reads, with the same default and accepted values,
// and nothing the code does not read. lrap's own settings are in the table
// between settings:begin and settings:end; LRAP_HOOKS and LRAP_CONFIG
// between settings:hooks:begin and settings:hooks:end; each built-in
// hook's between settings:<hook>:begin and settings:<hook>:end.
func TestReadmeListsEverySetting(t *testing.T) {
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	groups := []struct {
		marker   string
		settings []config.Setting
	}{
		{"settings", config.Settings},
		{"settings:hooks", builtin.Settings},
	}
	for _, b := range builtin.Builtins() {
		groups = append(groups, struct {
			marker   string
			settings []config.Setting
		}{"settings:" + b.Name, b.Settings})
	}
	known := map[string]bool{}
	for _, g := range groups {
		known[g.marker] = true
		t.Run(g.marker, func(t *testing.T) { checkTable(t, readme, g.marker, g.settings) })
	}
	// A table for a hook that no longer exists is documentation drift too.
	for _, m := range regexp.MustCompile(`<!-- (settings(?::[a-z]+)?):begin`).FindAllStringSubmatch(readme, -1) {
		if !known[m[1]] {
			t.Errorf("README.md has a %s table, but lrap has no such settings", m[1])
		}
	}
}

func checkTable(t *testing.T, readme, marker string, settings []config.Setting) {
	begin := strings.Index(readme, "<!-- "+marker+":begin")
	end := strings.Index(readme, "<!-- "+marker+":end -->")
	if begin < 0 && len(settings) == 0 {
		return // a hook without variables needs no table
	}
	if begin < 0 || end < begin {
		t.Fatalf("README.md has no %s:begin/%s:end markers around a settings table", marker, marker)
	}
	if strings.Count(readme, "<!-- "+marker+":begin") != 1 {
		t.Errorf("README.md has more than one %s table", marker)
	}
	rows := map[string]string{}
	for _, line := range strings.Split(readme[begin:end], "\n") {
		if strings.HasPrefix(line, "| `") {
			name := strings.Trim(strings.SplitN(line, "|", 3)[1], " `")
			rows[name] = line
		}
	}
	for _, s := range settings {
		if strings.Contains(s.Default+s.Accepted+s.Doc, "|") {
			t.Errorf("%s: a | in the setting's text would break the table", s.Name)
		}
		want := readmeRow(s)
		if got, ok := rows[s.Name]; !ok {
			t.Errorf("README %s table lacks %s; add:\n%s", marker, s.Name, want)
		} else if got != want {
			t.Errorf("README row for %s is out of date:\n got: %s\nwant: %s", s.Name, got, want)
		}
		delete(rows, s.Name)
	}
	for name := range rows {
		t.Errorf("README %s table documents %s, which is not among these settings", marker, name)
	}
}

func readmeRow(s config.Setting) string {
	def := s.Default
	if !strings.Contains(def, " ") {
		def = "`" + def + "`"
	}
	return "| `" + s.Name + "` | " + def + " | " + s.Accepted + " | " + s.Doc + " |"
}
