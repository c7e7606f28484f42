package builtin_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lrap/lrap/hook"
	"github.com/lrap/lrap/internal/builtin"
	"github.com/lrap/lrap/internal/config"
)

func env(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func hookNames(hs []hook.Hook) string {
	var n []string
	for _, h := range hs {
		n = append(n, h.Name)
	}
	return strings.Join(n, ",")
}

// writeFile writes a config file into a temporary directory.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func wantError(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted; want an error containing %q", parts)
	}
	if !errors.Is(err, config.ErrInvalid) {
		t.Errorf("%v does not wrap config.ErrInvalid", err)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not contain %q", err, p)
		}
	}
}

func TestLoadWithoutConfigurationIsNoHooks(t *testing.T) {
	for _, e := range [][]string{nil, {"LRAP_HOOKS", ""}, {"LRAP_CONFIG", ""}, {"LRAP_HOOKS", "none"}} {
		hs, err := builtin.Load(env(e...))
		if err != nil || len(hs) != 0 {
			t.Errorf("%q: %d hooks, %v; want none and no error", e, len(hs), err)
		}
	}
}

// Hooks run in LRAP_HOOKS's order, whatever the documentation order.
func TestLoadKeepsOrder(t *testing.T) {
	for _, list := range []string{"metrics,audit", "audit, metrics", " firewall , redact,tracecontext,audit,metrics ", "redact,firewall"} {
		hs, err := builtin.Load(env("LRAP_HOOKS", list, "LRAP_FIREWALL_MAX_BYTES", "1024"))
		if err != nil {
			t.Fatalf("%q: %v", list, err)
		}
		want := strings.ReplaceAll(list, " ", "")
		if got := hookNames(hs); got != want {
			t.Errorf("LRAP_HOOKS=%q built %s, want %s", list, got, want)
		}
	}
}

func TestLoadRefusesBadHookLists(t *testing.T) {
	known := "firewall, redact, tracecontext, audit, metrics"
	for _, tc := range []struct {
		list string
		want []string
	}{
		{"firewall,bogus", []string{`LRAP_HOOKS="firewall,bogus" is not valid`, `unknown hook "bogus"`, known}},
		{"Audit", []string{`unknown hook "Audit"`}},
		{"audit,metrics,audit", []string{`"audit" listed twice`}},
		{"audit,,metrics", []string{"empty name at position 2"}},
		{"audit,", []string{"empty name at position 2"}},
		{"nope,audit,nada", []string{`unknown hook "nope"`, `unknown hook "nada"`}},
		{"none,audit", []string{`unknown hook "none"`}},
	} {
		_, err := builtin.Load(env("LRAP_HOOKS", tc.list))
		wantError(t, err, append(tc.want, "LRAP_HOOKS")...)
	}
}

// A hook's own invalid setting is named, with the hook; every hook's
// errors are reported at once.
func TestLoadReportsEveryHookError(t *testing.T) {
	_, err := builtin.Load(env("LRAP_HOOKS", "audit,metrics",
		"LRAP_AUDIT_PAYLOADS", "maybe", "LRAP_METRICS_NAMESPACE", "AWS/Lambda"))
	wantError(t, err, `audit hook: LRAP_AUDIT_PAYLOADS="maybe"`, `metrics hook: LRAP_METRICS_NAMESPACE="AWS/Lambda"`)
}

const yamlConfig = `# lrap hooks
hooks:
  - audit
  - metrics
audit:
  payloads: true
  payloadMaxBytes: 64
metrics:
  namespace: Platform/lrap
`

const jsonConfig = `{
  "hooks": ["audit", "metrics"],
  "audit": {"payloads": true, "payloadMaxBytes": 64},
  "metrics": {"namespace": "Platform/lrap"}
}`

// The file is read as JSON or YAML by its extension, or by its content;
// both forms configure the same hooks.
func TestLoadConfigFile(t *testing.T) {
	for _, tc := range []struct{ name, content string }{
		{"lrap.yaml", yamlConfig},
		{"lrap.yml", yamlConfig},
		{"lrap.json", jsonConfig},
		{"lrap.conf", jsonConfig},
		{"lrap.conf", yamlConfig},
		{"config", "\ufeff" + jsonConfig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hs, err := builtin.Load(env("LRAP_CONFIG", writeFile(t, tc.name, tc.content)))
			if err != nil {
				t.Fatal(err)
			}
			if hookNames(hs) != "audit,metrics" || !hs[0].NeedsBody {
				t.Errorf("built %s (audit NeedsBody %v), want audit with payloads, metrics", hookNames(hs), hs[0].NeedsBody)
			}
		})
	}
}

// LRAP_HOOKS wins over the file's list, and a hook's variables over its
// section; sections of hooks not enabled are not built.
func TestEnvironmentWinsOverFile(t *testing.T) {
	path := writeFile(t, "lrap.yaml", yamlConfig+"redact:\n  paths: [\"$.card\"]\n")
	hs, err := builtin.Load(env("LRAP_CONFIG", path, "LRAP_HOOKS", "metrics,audit", "LRAP_AUDIT_PAYLOADS", "false"))
	if err != nil {
		t.Fatal(err)
	}
	if hookNames(hs) != "metrics,audit" || hs[1].NeedsBody {
		t.Errorf("built %s (audit NeedsBody %v), want metrics,audit without payloads", hookNames(hs), hs[1].NeedsBody)
	}
	hs, err = builtin.Load(env("LRAP_CONFIG", path, "LRAP_HOOKS", "none"))
	if err != nil || len(hs) != 0 {
		t.Errorf("LRAP_HOOKS=none: %d hooks, %v", len(hs), err)
	}
}

func TestLoadRefusesBadConfigFiles(t *testing.T) {
	for _, tc := range []struct {
		name, file, content string
		want                []string
	}{
		{"unknown top-level key", "c.yaml", "hooks: [audit]\nfirewal:\n  maxBytes: 1\n",
			[]string{`unknown key "firewal"`, "accepted: hooks, firewall, redact"}},
		{"hooks not a list", "c.json", `{"hooks": "audit"}`, []string{`"hooks" must be a list`}},
		{"unknown hook in the file", "c.yaml", "hooks: [audit, bogus]", []string{`"hooks": unknown hook "bogus"`}},
		{"duplicate hook in the file", "c.yaml", "hooks: [audit, audit]", []string{`"audit" listed twice`}},
		{"section not a mapping", "c.yaml", "hooks: [audit]\naudit: [1]", []string{`the "audit" section must be a mapping`}},
		{"not a mapping", "c.yaml", "- audit", []string{"must hold a mapping"}},
		{"empty", "c.yaml", "# nothing yet\n", []string{"must hold a mapping"}},
		{"sections but no hooks", "c.yaml", "audit:\n  payloads: true\nmetrics: {}\n",
			[]string{"configures audit, metrics but enables no hook", "LRAP_HOOKS"}},
		{"yaml outside the subset", "c.yaml", "hooks: [audit]\naudit: &a\n  payloads: true\n", []string{"YAML: line 2: anchors"}},
		{"json syntax", "c.json", "{\n  \"hooks\": [\"audit\"],\n  \"audit\": {\"payloads\": tru}\n}", []string{"JSON: line 3"}},
		{"json duplicate key", "c.json", "{\"hooks\": [],\n \"audit\": {\"payloads\": true,\n \"payloads\": false}}", []string{`JSON: line 3: duplicate key "payloads"`}},
		{"json trailing data", "c.json", `{"hooks": []} {}`, []string{"JSON"}},
		{"section error names the key", "c.yaml", "hooks: [audit]\naudit:\n  payloadMaxBytes: 0\n",
			[]string{"audit hook: LRAP_CONFIG audit.payloadMaxBytes=0 is not valid"}},
		{"too large", "c.yaml", "hooks: []\n" + strings.Repeat("#", 1<<20), []string{"larger than 1048576 bytes"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, tc.file, tc.content)
			_, err := builtin.Load(env("LRAP_CONFIG", path))
			want := tc.want
			if !strings.HasPrefix(tc.want[0], "audit hook:") {
				want = append(want, "LRAP_CONFIG="+path+": ")
			}
			wantError(t, err, want...)
		})
	}
	t.Run("missing file", func(t *testing.T) {
		_, err := builtin.Load(env("LRAP_CONFIG", "/nonexistent/lrap.yaml"))
		wantError(t, err, "LRAP_CONFIG=/nonexistent/lrap.yaml: cannot read the config file: no such file or directory")
	})
}

// Every built-in hook is registered under its own name with its settings,
// and every setting is an LRAP_ variable of that hook.
func TestRegistry(t *testing.T) {
	want := []string{"firewall", "redact", "tracecontext", "audit", "metrics"}
	var got []string
	for _, b := range builtin.Builtins() {
		got = append(got, b.Name)
		if b.Build == nil {
			t.Errorf("%s has no Build", b.Name)
		}
		prefix := "LRAP_" + strings.ToUpper(b.Name) + "_"
		for _, s := range b.Settings {
			if !strings.HasPrefix(s.Name, prefix) || s.Accepted == "" || s.Doc == "" || s.Default == "" {
				t.Errorf("%s setting %+v: want an %s... variable with default, accepted values and doc", b.Name, s, prefix)
			}
		}
	}
	for _, w := range want {
		if !strings.Contains(","+strings.Join(got, ",")+",", ","+w+",") {
			t.Errorf("built-in hooks %v lack %s", got, w)
		}
	}
	if !strings.Contains(builtin.Settings[0].Accepted, strings.Join(got, ", ")) {
		t.Errorf("LRAP_HOOKS accepted values %q do not list %v", builtin.Settings[0].Accepted, got)
	}
}
