//go:build linux

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/lrap/lrap/internal/sandbox"
)

// goCase is one behaviour of the test function.
type goCase struct {
	name    string
	req     sandbox.Request
	outcome string // "response" or "error": what the runtime posts
}

// goCases are shared by both data planes. Request ids are fixed, so the
// metadata echoed by the function is the same in both runs; "panic" is left
// out because it ends the runtime process and each data plane reacts
// differently (see the tests).
func goCases(prefix string) []goCase {
	id := func(name string) string { return "e2e-" + prefix + "-" + name }
	return []goCase{
		{name: "echo", outcome: "response", req: sandbox.Request{RequestID: id("echo"),
			Payload: []byte(`{"op":"echo","message":"hello","nested":{"list":[1,2.5,"three",null,true],"html":"<a href=\"x\">&amp;</a>"},"unicode":"żółw ☃ \u2028 \ud83d\ude00"}`)}},
		{name: "event-1MB", outcome: "response", req: sandbox.Request{RequestID: id("event-1MB"),
			Payload: megabyteEvent()}},
		{name: "response-1MB", outcome: "response", req: sandbox.Request{RequestID: id("response-1MB"),
			Payload: []byte(`{"op":"big","size":1048576}`)}},
		{name: "error", outcome: "error", req: sandbox.Request{RequestID: id("error"),
			Payload: []byte(`{"op":"error","message":"it went wrong on purpose"}`)}},
		{name: "stream", outcome: "response", req: sandbox.Request{RequestID: id("stream"),
			Payload: []byte(`{"op":"stream","chunks":20,"message":"streamed through the Runtime API"}`)}},
		{name: "meta", outcome: "response", req: sandbox.Request{RequestID: id("meta"),
			Payload:         []byte(`{"op":"meta"}`),
			ClientContext:   `{"client":{"installation_id":"inst-1","app_title":"lrap e2e","app_version_code":"7","app_package_name":"dev.lrap.e2e"},"env":{"locale":"en_GB"},"custom":{"tenant":"acme","nested":{"a":[1,2]}}}`,
			CognitoIdentity: `{"cognitoIdentityId":"us-east-1:11111111-2222","cognitoIdentityPoolId":"us-east-1:pool-3333"}`,
			TraceID:         "Root=1-67891233-abcdef012345678912345678;Parent=463ac35c9f6413ad;Sampled=1"}},
	}
}

func panicCase(prefix string) goCase {
	return goCase{name: "panic", outcome: "error", req: sandbox.Request{RequestID: "e2e-" + prefix + "-panic",
		Payload: []byte(`{"op":"panic","message":"on purpose"}`)}}
}

// megabyteEvent is a 1 MiB JSON event, above the 2 KiB at which the API
// switches /next to chunked framing and far above any single read buffer.
func megabyteEvent() []byte {
	var b bytes.Buffer
	b.WriteString(`{"op":"echo","pad":"`)
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	for i := 0; b.Len() < 1<<20-2; i++ {
		b.WriteByte(alphabet[(i*13+i/97)%len(alphabet)])
	}
	b.WriteString(`"}`)
	return b.Bytes()
}

// runGoCase invokes c on both sides, compares, and checks lrap's log.
func runGoCase(t *testing.T, p pair, c goCase) {
	t.Helper()
	mark := p.proxied.OutputLen()
	invokeBoth(t, p, c.req)
	expectForwarded(t, p.proxied, mark, nextLine(), outcomeLine(c.req.RequestID, c.outcome))
}

// checkWhoami proves the runtime really used lrap's address (and, without
// lrap, the emulator's), independently of lrap's own log.
func checkWhoami(t *testing.T, p pair) {
	t.Helper()
	for _, side := range []struct {
		name string
		s    *sandbox.Sandbox
		want string
	}{
		{"direct", p.direct, p.direct.RuntimeAPIAddr()},
		{"lrap", p.proxied, p.proxied.LrapAddr()},
	} {
		r, err := do(side.s, sandbox.Request{Payload: []byte(`{"op":"whoami"}`)})
		if err != nil {
			t.Fatalf("%s whoami: %v", side.name, err)
		}
		var got struct {
			RuntimeAPI string `json:"runtimeAPI"`
		}
		if err := json.Unmarshal(r.Body, &got); err != nil {
			t.Fatalf("%s whoami: %d %q: %v", side.name, r.Status, r.Body, err)
		}
		if got.RuntimeAPI != side.want {
			t.Errorf("%s: runtime saw AWS_LAMBDA_RUNTIME_API=%q, want %q", side.name, got.RuntimeAPI, side.want)
		}
	}
}

func TestClassicGoFunction(t *testing.T) {
	a := needArtifacts(t)
	p := startPair(t, a, a.function, 0)
	t.Run("whoami", func(t *testing.T) { checkWhoami(t, p) })
	for _, c := range goCases("classic") {
		t.Run(c.name, func(t *testing.T) { runGoCase(t, p, c) })
	}
	// A panic makes aws-lambda-go report the error and exit; the classic
	// emulator answers 502, resets the environment (lrap gets SHUTDOWN and
	// exits) and initialises it again, lrap included, on the next invoke.
	t.Run("panic", func(t *testing.T) { runGoCase(t, p, panicCase("classic")) })
	t.Run("echo-after-panic", func(t *testing.T) {
		mark := p.proxied.OutputLen()
		req := sandbox.Request{RequestID: "e2e-classic-after-panic", Payload: []byte(`{"op":"echo","again":true}`)}
		_, proxied := invokeBoth(t, p, req)
		if proxied.Status != http.StatusOK || !bytes.Equal(proxied.Body, req.Payload) {
			t.Errorf("after the reset: %d %q, want 200 %q", proxied.Status, proxied.Body, req.Payload)
		}
		expectForwarded(t, p.proxied, mark, nextLine(), outcomeLine(req.RequestID, "response"))
	})
	t.Run("whoami-after-panic", func(t *testing.T) { checkWhoami(t, p) })
}

func TestManagedInstancesGoFunction(t *testing.T) {
	a := needArtifacts(t)
	skipUnlessRoot(t)
	const concurrency = 4
	p := startPair(t, a, a.function, concurrency)
	t.Run("whoami", func(t *testing.T) { checkWhoami(t, p) })
	for _, c := range goCases("lmi") {
		t.Run(c.name, func(t *testing.T) { runGoCase(t, p, c) })
	}

	// 16 distinct events, 4 in flight at a time, each with its own request
	// id: every answer must be its own event, on both sides. A proxy that
	// mixed up concurrent invocations would hand one caller another's body.
	t.Run("concurrent-echo", func(t *testing.T) {
		var reqs []sandbox.Request
		for i := range 16 {
			reqs = append(reqs, sandbox.Request{
				RequestID: fmt.Sprintf("e2e-lmi-conc-%02d", i),
				Payload:   []byte(fmt.Sprintf(`{"op":"echo","id":%d,"sleepMs":%d,"pad":"%s"}`, i, (i%4)*25, strings.Repeat(string(rune('a'+i)), 100+i*300))),
			})
		}
		mark := p.proxied.OutputLen()
		direct, err := runConcurrently(p.direct, reqs, concurrency)
		if err != nil {
			t.Fatalf("direct: %v", err)
		}
		proxied, err := runConcurrently(p.proxied, reqs, concurrency)
		if err != nil {
			t.Fatalf("through lrap: %v", err)
		}
		var want []forwarded
		for i, req := range reqs {
			compareResponses(t, req, direct[i], proxied[i])
			if !bytes.Equal(proxied[i].Body, req.Payload) {
				t.Errorf("%s: through lrap got %q, want its own event back", describe(req), snippet(proxied[i].Body, 0))
			}
			want = append(want, nextLine(), outcomeLine(req.RequestID, "response"))
		}
		expectForwarded(t, p.proxied, mark, want...)
	})

	// Each wave's four invocations only return once all four are inside the
	// handler at the same time, which proves lrap delivers concurrent events
	// instead of serialising /next.
	t.Run("rendezvous", func(t *testing.T) {
		for wave := range 3 {
			var reqs []sandbox.Request
			for i := range concurrency {
				reqs = append(reqs, sandbox.Request{
					RequestID: fmt.Sprintf("e2e-lmi-wave%d-%d", wave, i),
					Payload:   []byte(fmt.Sprintf(`{"op":"rendezvous","group":"wave-%d","size":%d,"id":%d,"waitMs":5000}`, wave, concurrency, i)),
				})
			}
			direct, err := runConcurrently(p.direct, reqs, concurrency)
			if err != nil {
				t.Fatalf("direct: %v", err)
			}
			proxied, err := runConcurrently(p.proxied, reqs, concurrency)
			if err != nil {
				t.Fatalf("through lrap: %v", err)
			}
			for i, req := range reqs {
				compareResponses(t, req, direct[i], proxied[i])
				want := fmt.Sprintf(`{"group":"wave-%d","id":%d,"size":%d}`, wave, i, concurrency)
				if string(proxied[i].Body) != want {
					t.Errorf("%s: through lrap got %d %q, want %s", describe(req), proxied[i].Status, proxied[i].Body, want)
				}
			}
		}
	})

	// In Managed Instances any runtime process exit ends the environment:
	// the panic is reported, then the emulator shuts down on both sides.
	t.Run("panic", func(t *testing.T) {
		runGoCase(t, p, panicCase("lmi"))
		waitExit(t, p.direct, "direct")
		waitExit(t, p.proxied, "lrap")
	})
}

func TestCurlRuntime(t *testing.T) {
	a := needArtifacts(t)
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("the shell custom runtime needs curl on PATH")
	}
	cases := func(prefix string) []goCase {
		id := func(name string) string { return "e2e-curl-" + prefix + "-" + name }
		return []goCase{
			{name: "echo", outcome: "response", req: sandbox.Request{RequestID: id("echo"),
				Payload: []byte(`{"op":"echo","greeting":"hello from curl","list":[1,2,3]}`)}},
			{name: "plain-event", outcome: "response", req: sandbox.Request{RequestID: id("plain"),
				Payload: []byte(`{"hello":"world"}`)}},
			{name: "event-256KB", outcome: "response", req: sandbox.Request{RequestID: id("big"),
				Payload: []byte(`{"pad":"` + strings.Repeat("0123456789abcdef", 16<<10) + `"}`)}},
			{name: "error", outcome: "error", req: sandbox.Request{RequestID: id("error"),
				Payload: []byte(`{"op":"error"}`)}},
		}
	}
	t.Run("classic", func(t *testing.T) {
		p := startPair(t, a, a.curlRuntime, 0)
		for _, c := range cases("classic") {
			t.Run(c.name, func(t *testing.T) { runGoCase(t, p, c) })
		}
	})
	t.Run("managed-instances", func(t *testing.T) {
		skipUnlessRoot(t)
		p := startPair(t, a, a.curlRuntime, 2)
		for _, c := range cases("lmi") {
			t.Run(c.name, func(t *testing.T) { runGoCase(t, p, c) })
		}
		t.Run("concurrent", func(t *testing.T) {
			var reqs []sandbox.Request
			for i := range 6 {
				reqs = append(reqs, sandbox.Request{
					RequestID: fmt.Sprintf("e2e-curl-lmi-conc-%d", i),
					Payload:   []byte(fmt.Sprintf(`{"op":"echo","id":%d}`, i)),
				})
			}
			direct, err := runConcurrently(p.direct, reqs, 2)
			if err != nil {
				t.Fatalf("direct: %v", err)
			}
			proxied, err := runConcurrently(p.proxied, reqs, 2)
			if err != nil {
				t.Fatalf("through lrap: %v", err)
			}
			for i, req := range reqs {
				compareResponses(t, req, direct[i], proxied[i])
				if !bytes.Contains(proxied[i].Body, req.Payload) {
					t.Errorf("%s: through lrap got %q, which does not embed its own event", describe(req), proxied[i].Body)
				}
			}
		})
	})
}

func skipUnlessRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("Managed Instances mode needs root: the emulator starts the runtime and extensions as uid 993")
	}
}
