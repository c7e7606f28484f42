package builtin_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lrap/lrap"
	"github.com/lrap/lrap/internal/builtin"
	"github.com/lrap/lrap/internal/fakeapi"
	"github.com/lrap/lrap/runtimeapi"
)

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

func startFake(t *testing.T) *fakeapi.Server {
	t.Helper()
	api, err := fakeapi.Start(fakeapi.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(api.Close)
	return api
}

func quietLogger() *slog.Logger { return slog.New(slog.NewJSONHandler(io.Discard, nil)) }

// An invalid hook configuration stops init: Run reports it through
// /extension/init/error as Extension.ConfigInvalid with a message naming
// the setting, and returns the error without serving.
func TestInvalidHookConfigurationIsReportedAtInit(t *testing.T) {
	badYAML := writeFile(t, "lrap.yaml", "hooks: [audit]\naudit:\n  payloads: !!bool true\n")
	unknownKey := writeFile(t, "lrap.json", `{"hooks": ["audit"], "audti": {}}`)
	for _, tc := range []struct {
		name string
		env  []string
		want []string
	}{
		{"unknown hook", []string{"LRAP_HOOKS", "firewall,bogus"},
			[]string{`LRAP_HOOKS="firewall,bogus"`, `unknown hook "bogus"`, "firewall, redact"}},
		{"duplicate hook", []string{"LRAP_HOOKS", "audit,audit"}, []string{"LRAP_HOOKS", `"audit" listed twice`}},
		{"bad hook setting", []string{"LRAP_HOOKS", "audit", "LRAP_AUDIT_PAYLOAD_MAX_BYTES", "lots"},
			[]string{`LRAP_AUDIT_PAYLOAD_MAX_BYTES="lots"`, "an integer from 1 to 16384"}},
		{"YAML outside the subset", []string{"LRAP_CONFIG", badYAML}, []string{"LRAP_CONFIG=" + badYAML, "line 3: tags"}},
		{"unknown config key", []string{"LRAP_CONFIG", unknownKey}, []string{"LRAP_CONFIG=" + unknownKey, `unknown key "audti"`}},
		{"missing config file", []string{"LRAP_CONFIG", "/nonexistent/lrap.yaml"}, []string{"LRAP_CONFIG=/nonexistent/lrap.yaml", "no such file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := startFake(t)
			e := append([]string{"AWS_LAMBDA_RUNTIME_API", api.Addr(), "LRAP_LISTENER_PORT", freePort(t)}, tc.env...)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := lrap.Run(ctx, lrap.Options{Name: "lrap", Env: env(e...), Logger: quietLogger(), LoadHooks: builtin.Load})
			if err == nil {
				t.Fatal("Run accepted the configuration")
			}
			ie := api.InitErrors()
			if len(ie) != 1 || ie[0].ErrorType != runtimeapi.ExtensionConfigInvalid || ie[0].Name != "lrap" {
				t.Fatalf("init errors %+v, want one %s from lrap", ie, runtimeapi.ExtensionConfigInvalid)
			}
			var doc runtimeapi.ErrorDocument
			if err := json.Unmarshal(ie[0].Body, &doc); err != nil {
				t.Fatalf("init error body %q: %v", ie[0].Body, err)
			}
			if doc.ErrorType != runtimeapi.ExtensionConfigInvalid {
				t.Errorf("body errorType %q", doc.ErrorType)
			}
			for _, w := range tc.want {
				if !strings.Contains(doc.ErrorMessage, w) {
					t.Errorf("message %q does not name %q", doc.ErrorMessage, w)
				}
			}
			for _, r := range api.Requests() {
				if r.RequestURI == runtimeapi.PathEventNext {
					t.Error("lrap polled /extension/event/next after its init failed")
				}
			}
		})
	}
}

// A valid configuration runs the hooks on the data path: through Run with
// builtin.Load, LRAP_HOOKS=metrics,audit writes one EMF line and one audit
// line per invocation to stdout, flushed by SHUTDOWN.
func TestBuiltinHooksRunThroughRun(t *testing.T) {
	// Build gives the hooks os.Stdout; catch it for this test.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = w
	defer func() { os.Stdout = stdout }()
	captured := make(chan []byte, 1)
	go func() { b, _ := io.ReadAll(r); captured <- b }()

	api := startFake(t)
	port := freePort(t)
	e := env("AWS_LAMBDA_RUNTIME_API", api.Addr(), "LRAP_LISTENER_PORT", port,
		"LRAP_HOOKS", "metrics,audit", "AWS_LAMBDA_FUNCTION_NAME", "orders")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- lrap.Run(ctx, lrap.Options{Name: "lrap", Env: e, Logger: quietLogger(), LoadHooks: builtin.Load})
	}()
	if err := api.WaitUntil(ctx, func() bool {
		regs := api.Registrations()
		return len(regs) == 1 && regs[0].State == "Ready"
	}); err != nil {
		t.Fatalf("lrap did not become ready: %v", err)
	}
	os.Stdout = stdout

	client := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 10 * time.Second}
	base := "http://127.0.0.1:" + port + "/2018-06-01/runtime/invocation/"
	var ids []string
	for i := range 3 {
		pending := api.Enqueue(fakeapi.Invocation{Payload: []byte(`{"n":` + strconv.Itoa(i) + `}`)})
		resp, err := client.Get(base + "next")
		if err != nil {
			t.Fatal(err)
		}
		id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
		resp.Body.Close()
		resp, err = client.Post(base+id+"/response", "application/json", strings.NewReader(`"ok"`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if _, err := pending.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	api.Shutdown("spindown", time.Now().Add(2*time.Second))
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	w.Close()
	out := <-captured

	audits, emfs := map[string]int{}, 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("stdout line is not JSON: %q", sc.Bytes())
		}
		switch {
		case m["type"] == "lrap.audit":
			audits[m["requestId"].(string)]++
		case m["_aws"] != nil && m["FunctionName"] == "orders":
			emfs++
		default:
			t.Errorf("unexpected stdout line %s", sc.Bytes())
		}
	}
	if emfs != 3 || len(audits) != 3 {
		t.Errorf("%d EMF lines and audit lines for %v, want 3 each:\n%s", emfs, audits, out)
	}
	for _, id := range ids {
		if audits[id] != 1 {
			t.Errorf("%d audit lines for %s, want exactly 1", audits[id], id)
		}
	}
}
