package config

import (
	"os"
	"strings"
	"testing"
)

// The README's configuration table is the user's reference; it must list
// every setting the code reads, with the same default and accepted values,
// and nothing the code does not read.
func TestReadmeListsEverySetting(t *testing.T) {
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	begin := strings.Index(readme, "<!-- settings:begin")
	end := strings.Index(readme, "<!-- settings:end -->")
	if begin < 0 || end < begin {
		t.Fatal("README.md has no settings:begin/settings:end markers around the configuration table")
	}
	rows := map[string]string{}
	for _, line := range strings.Split(readme[begin:end], "\n") {
		if strings.HasPrefix(line, "| `") {
			name := strings.Trim(strings.SplitN(line, "|", 3)[1], " `")
			rows[name] = line
		}
	}
	for _, s := range Settings {
		want := readmeRow(s)
		if got, ok := rows[s.Name]; !ok {
			t.Errorf("README configuration table lacks %s; add:\n%s", s.Name, want)
		} else if got != want {
			t.Errorf("README row for %s is out of date:\n got: %s\nwant: %s", s.Name, got, want)
		}
		delete(rows, s.Name)
	}
	for name := range rows {
		t.Errorf("README documents %s, which lrap does not read", name)
	}
}

func readmeRow(s Setting) string {
	def := s.Default
	if !strings.Contains(def, " ") {
		def = "`" + def + "`"
	}
	return "| `" + s.Name + "` | " + def + " | " + s.Accepted + " | " + s.Doc + " |"
}
