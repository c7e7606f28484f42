package integration

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// wrapperRun is one run of layer/lrap-wrapper.
type wrapperRun struct {
	pid    int
	code   int
	stdout []string
	stderr string
}

// runWrapper runs the wrapper the way Lambda runs AWS_LAMBDA_EXEC_WRAPPER:
// as an executable, with the runtime's command line as arguments, in an
// environment holding only PATH, the real Runtime API address and env.
func runWrapper(t *testing.T, env []string, args ...string) wrapperRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitBound)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(moduleRoot, "layer", "lrap-wrapper"), args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "AWS_LAMBDA_RUNTIME_API=10.1.2.3:9001"}, env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("running the wrapper: %v", err)
	}
	if ctx.Err() != nil {
		t.Fatal("the wrapper did not finish in time")
	}
	r := wrapperRun{pid: cmd.Process.Pid, code: cmd.ProcessState.ExitCode(), stderr: errOut.String()}
	if s := strings.TrimSuffix(out.String(), "\n"); s != "" {
		r.stdout = strings.Split(s, "\n")
	}
	return r
}

// runtimeArgs stands in for the runtime's command line: it prints its own
// PID, the Runtime API address it was given, and its arguments, one a line.
// The arguments are awkward on purpose (spaces, empty, a glob).
var runtimeArgs = []string{"sh", "-c", `printf '%s\n' "$$" "$AWS_LAMBDA_RUNTIME_API" "$@"`, "runtime", "arg with  spaces", "", "*"}

var runtimeArgv = []string{"arg with  spaces", "", "*"}

// notes §8, T19: the wrapper points the runtime at lrap
// (AWS_LAMBDA_RUNTIME_API=127.0.0.1:$LRAP_LISTENER_PORT, default 9009,
// replacing the real address) and execs the runtime's command line unchanged.
// It must exec, not fork: Lambda supervises the process it started, so the
// runtime has to keep the wrapper's PID.
func TestWrapperExecsRuntimeWithLrapAddress(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		env  []string
		want string
	}{
		{"default port", nil, "127.0.0.1:9009"},
		{"empty port means default", []string{"LRAP_LISTENER_PORT="}, "127.0.0.1:9009"},
		{"configured port", []string{"LRAP_LISTENER_PORT=9123"}, "127.0.0.1:9123"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := runWrapper(t, tc.env, runtimeArgs...)
			if r.code != 0 {
				t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
			}
			if len(r.stdout) < 2 {
				t.Fatalf("the runtime did not run: stdout %q stderr %q", r.stdout, r.stderr)
			}
			if r.stdout[0] != strconv.Itoa(r.pid) {
				t.Errorf("runtime PID %s, wrapper PID %d: the wrapper forked instead of exec'ing", r.stdout[0], r.pid)
			}
			if r.stdout[1] != tc.want {
				t.Errorf("runtime got AWS_LAMBDA_RUNTIME_API=%q, want %q", r.stdout[1], tc.want)
			}
			if got := r.stdout[2:]; !slices.Equal(got, runtimeArgv) {
				t.Errorf("runtime arguments %q, want %q", got, runtimeArgv)
			}
		})
	}
}

// LRAP_EXEC_WRAPPER chains another vendor's wrapper: it runs after lrap's
// with the runtime's command line unchanged and the address already pointing
// at lrap, and the runtime still ends up with the original PID.
func TestWrapperChainsToNextWrapper(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	record := filepath.Join(dir, "record")
	next := filepath.Join(dir, "next-wrapper")
	script := "#!/bin/sh\n{ printf '%s\\n' \"$AWS_LAMBDA_RUNTIME_API\" \"$#\"; printf '%s\\n' \"$@\"; } > \"$RECORD\"\nexec \"$@\"\n"
	if err := os.WriteFile(next, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	r := runWrapper(t, []string{"LRAP_LISTENER_PORT=9200", "LRAP_EXEC_WRAPPER=" + next, "RECORD=" + record}, runtimeArgs...)
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	b, err := os.ReadFile(record)
	if err != nil {
		t.Fatalf("the next wrapper did not run: %v", err)
	}
	rec := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if rec[0] != "127.0.0.1:9200" {
		t.Errorf("next wrapper saw AWS_LAMBDA_RUNTIME_API=%q, want 127.0.0.1:9200", rec[0])
	}
	if rec[1] != strconv.Itoa(len(runtimeArgs)) || !slices.Equal(rec[2:], runtimeArgs) {
		t.Errorf("next wrapper got %s arguments %q, want %d %q", rec[1], rec[2:], len(runtimeArgs), runtimeArgs)
	}
	if len(r.stdout) < 2 || r.stdout[0] != strconv.Itoa(r.pid) || r.stdout[1] != "127.0.0.1:9200" || !slices.Equal(r.stdout[2:], runtimeArgv) {
		t.Errorf("runtime output %q (wrapper PID %d)", r.stdout, r.pid)
	}
}

// A wrapper that cannot do its job says why on stderr, names the variable,
// exits like a shell does for a missing (127) or non-executable (126)
// command, and never starts the runtime against the wrong address.
func TestWrapperRefusesBadSettings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notExec := filepath.Join(dir, "not-executable")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\nexec \"$@\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	for _, tc := range []struct {
		name     string
		env      []string
		code     int
		mentions []string
	}{
		{"next wrapper missing", []string{"LRAP_EXEC_WRAPPER=" + missing}, 127, []string{"LRAP_EXEC_WRAPPER", missing}},
		{"next wrapper not executable", []string{"LRAP_EXEC_WRAPPER=" + notExec}, 126, []string{"LRAP_EXEC_WRAPPER", notExec}},
		{"port not a number", []string{"LRAP_LISTENER_PORT=9o09"}, -1, []string{"LRAP_LISTENER_PORT", "9o09"}},
		{"port with a host", []string{"LRAP_LISTENER_PORT=127.0.0.1:9009"}, -1, []string{"LRAP_LISTENER_PORT"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := runWrapper(t, tc.env, runtimeArgs...)
			switch {
			case tc.code >= 0 && r.code != tc.code:
				t.Errorf("exit %d, want %d", r.code, tc.code)
			case r.code == 0:
				t.Error("exit 0")
			}
			if len(r.stdout) != 0 {
				t.Errorf("the runtime ran anyway: %q", r.stdout)
			}
			for _, m := range tc.mentions {
				if !strings.Contains(r.stderr, m) {
					t.Errorf("stderr %q does not mention %q", r.stderr, m)
				}
			}
		})
	}
}

// The wrapper's own message says LRAP_LISTENER_PORT accepts 1-65535, and
// lrap refuses anything else with Extension.ConfigInvalid; the wrapper should
// refuse the same values instead of starting the runtime against
// 127.0.0.1:0 or 127.0.0.1:70000.
func TestWrapperRefusesPortOutOfRange(t *testing.T) {
	t.Parallel()
	for _, port := range []string{"0", "65536", "70000", "99999999999"} {
		r := runWrapper(t, []string{"LRAP_LISTENER_PORT=" + port}, runtimeArgs...)
		if r.code == 0 || len(r.stdout) != 0 {
			t.Errorf("LRAP_LISTENER_PORT=%s: exit %d, runtime output %q; want a refusal before the runtime starts", port, r.code, r.stdout)
		}
	}
}
