//go:build linux

package sandbox

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLrapRequests(t *testing.T) {
	out := strings.Join([]string{
		`25 Nov 2026 04:06:31,074 [INFO] (rapid) INVOKE START(requestId: abc)`,
		`{"time":"t","level":"DEBUG","msg":"forwarded","method":"GET","path":"/2018-06-01/runtime/invocation/next","status":200,"bytes_out":23}`,
		`{"level":"INFO","msg":"lrap ready","listen":"127.0.0.1:9009"}`,
		`{"method":"POST","path":"/x","status":"202"}`,
		`  {"method":"POST","path":"/2018-06-01/runtime/invocation/abc/response","status":202}  `,
		`{"method":"GET"`,
	}, "\n")
	got := LrapRequests(out)
	if len(got) != 2 {
		t.Fatalf("got %d lines, want 2: %+v", len(got), got)
	}
	if got[0].Method != "GET" || got[0].Path != "/2018-06-01/runtime/invocation/next" || got[0].Status != 200 || got[0].Fields["bytes_out"] != float64(23) {
		t.Errorf("first line: %+v", got[0])
	}
	if got[1].Method != "POST" || got[1].Status != 202 {
		t.Errorf("second line: %+v", got[1])
	}
}

func TestLogBufferSince(t *testing.T) {
	var tee bytes.Buffer
	b := &logBuffer{tee: &tee}
	fmt.Fprint(b, "one\n")
	mark := b.Len()
	fmt.Fprint(b, "two\n")
	if got := b.Since(mark); got != "two\n" {
		t.Errorf("Since = %q", got)
	}
	if got := b.Since(1 << 20); got != "" {
		t.Errorf("Since past the end = %q", got)
	}
	if tee.String() != "one\ntwo\n" {
		t.Errorf("tee got %q", tee.String())
	}
}

func TestFreePortsDistinct(t *testing.T) {
	ports, err := freePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	if ports[0] == ports[1] || ports[1] == ports[2] || ports[0] == ports[2] {
		t.Errorf("ports not distinct: %v", ports)
	}
}

func TestConfigValidate(t *testing.T) {
	f := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(f, []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no function", Config{RIE: f}, "required"},
		{"lrap without wrapper", Config{RIE: f, Function: f, Lrap: f}, "go together"},
		{"missing file", Config{RIE: f, Function: f + ".missing"}, "no such file"},
		{"directory", Config{RIE: f, Function: filepath.Dir(f)}, "is a directory"},
	} {
		err := tc.cfg.validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to mention %q", tc.name, err, tc.want)
		}
	}
}

// TestStopLeavesNothingBehind starts a runtime that detaches a child into
// its own session, as a careless runtime or extension might, and checks that
// Stop still ends it and that the machine's /opt was never touched.
func TestStopLeavesNothingBehind(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the emulator; skipped with -short")
	}
	rie, ok := FindRIE(filepath.Join("..", "..", ".cache", "bin"))
	if !ok {
		t.Skip("pinned aws-lambda-rie not in .cache/bin; the e2e tests install it")
	}
	optBefore := listDir(t, "/opt")
	nonce := fmt.Sprintf("%d.%06d", 3000+os.Getpid()%500, time.Now().Nanosecond()/1000)
	runtime := filepath.Join(t.TempDir(), "bootstrap")
	script := `#!/bin/sh
setsid sleep ` + nonce + ` </dev/null >/dev/null 2>&1 &
api="http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime/invocation"
while :; do
	id=$(curl -sS -D - -o /dev/null "$api/next" | tr -d '\r' | sed -n 's/^lambda-runtime-aws-request-id: *//Ip')
	curl -sS -o /dev/null -H 'Content-Type: application/json' --data-binary '"ok"' "$api/$id/response"
done
`
	if err := os.WriteFile(runtime, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := Start(ctx, Config{RIE: rie, Function: runtime})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	r, err := s.Invoke(ctx, []byte(`{}`), `{"custom":{"k":"v"}}`)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != 200 || string(r.Body) != `"ok"` {
		t.Fatalf("invoke: %d %q\n%s", r.Status, r.Body, s.Output())
	}
	if !processWithArg(nonce) {
		t.Fatalf("the runtime's detached child (sleep %s) is not running; output:\n%s", nonce, s.Output())
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for processWithArg(nonce) {
		if time.Now().After(deadline) {
			t.Fatalf("sleep %s survived Stop", nonce)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if after := listDir(t, "/opt"); after != optBefore {
		t.Errorf("/opt changed: before %q, after %q", optBefore, after)
	}
	if _, err := os.Stat(s.dir); !os.IsNotExist(err) {
		t.Errorf("sandbox dir %s not removed: %v", s.dir, err)
	}
}

func listDir(t *testing.T, dir string) string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return strings.Join(names, ",")
}

// processWithArg reports whether any process on the machine has arg on its
// command line.
func processWithArg(arg string) bool {
	ms, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, m := range ms {
		b, err := os.ReadFile(m)
		if err != nil {
			continue
		}
		for _, a := range bytes.Split(b, []byte{0}) {
			if string(a) == arg {
				return true
			}
		}
	}
	return false
}
