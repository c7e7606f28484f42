package examples_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/lrap/lrap/internal/fakeapi"
)

// maxLines is the promise the README makes for examples/minimal.
const maxLines = 50

// examples/minimal is a whole custom extension in under 50 lines, and it
// works: built with go build, started the way Lambda starts an extension
// against the strict fake API, it registers, serves the runtime with its
// hook's header on every event, counts finished invocations, and exits 0 on
// SHUTDOWN.
func TestMinimal(t *testing.T) {
	src, err := os.ReadFile("minimal/main.go")
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(src, []byte("\n")); n >= maxLines {
		t.Errorf("minimal/main.go has %d lines, want fewer than %d", n, maxLines)
	}

	bin := filepath.Join(t.TempDir(), "minimal") // Lambda registers it under this name
	build := exec.Command("go", "build", "-o", bin, "./minimal")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./minimal: %v\n%s", err, out)
	}

	api, err := fakeapi.Start(fakeapi.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(api.Close)
	port := freePort(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cmd := exec.Command(bin)
	cmd.Env = []string{"AWS_LAMBDA_RUNTIME_API=" + api.Addr(), "LRAP_LISTENER_PORT=" + strconv.Itoa(port)}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // by pid; a no-op once it has exited
		if t.Failed() {
			t.Logf("minimal's stderr:\n%s", stderr.String())
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := api.WaitRegistered(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if regs := api.Registrations(); len(regs) != 1 || regs[0].Name != "minimal" {
		t.Fatalf("registrations %+v", regs)
	}

	// Each event carries the number of invocations finished before it. The
	// count is kept by OnEnd, which runs on its own goroutine after the
	// result is accepted: the header reaches 1 within a few invocations.
	client := &http.Client{Transport: &http.Transport{Proxy: nil}}
	counts := []string{}
	for i := 0; i < 50 && (len(counts) == 0 || counts[len(counts)-1] == "0"); i++ {
		pending := api.Enqueue(fakeapi.Invocation{Payload: []byte(`{"n":` + strconv.Itoa(i) + `}`)})
		id, header := nextVia(ctx, t, client, addr)
		counts = append(counts, header.Get("X-Invocations-Finished"))
		req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+addr+"/2018-06-01/runtime/invocation/"+id+"/response", bytes.NewReader([]byte(`"ok"`)))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if res, err := pending.Wait(ctx); err != nil || string(res.Body) != `"ok"` {
			t.Fatalf("result %+v, %v", res, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("X-Invocations-Finished over the invocations: %q", counts)
	if counts[0] != "0" || counts[len(counts)-1] != "1" {
		t.Errorf("X-Invocations-Finished over the invocations: %q, want 0 first and 1 last", counts)
	}

	api.Shutdown("spindown", time.Now().Add(2*time.Second))
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("exit after SHUTDOWN: %v", err)
		}
	case <-ctx.Done():
		t.Error("still running after SHUTDOWN")
	}
}

func nextVia(ctx context.Context, t *testing.T, client *http.Client, addr string) (string, http.Header) {
	t.Helper()
	// lrap binds before it registers, so once registered it is listening.
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/2018-06-01/runtime/invocation/next", nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("/next: %d", resp.StatusCode)
	}
	return resp.Header.Get("Lambda-Runtime-Aws-Request-Id"), resp.Header
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
