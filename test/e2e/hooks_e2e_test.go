//go:build linux

package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lrap/lrap/internal/sandbox"
)

// The built-in hooks under the real emulator and the real function: a
// firewall rejection reaches the invoke caller as the configured error, a
// redaction is visible in the caller's response, and the audit hook writes
// exactly one line per invocation to lrap's stdout, which Lambda (here: the
// emulator) captures with the function's output.

// hooksYAML configures the hooks through LRAP_CONFIG, in the YAML subset.
const hooksYAML = `# lrap hooks for the end-to-end tests
hooks: [firewall, redact, audit]
firewall:
  rules:
    - id: no-drop-table
      path: $.query
      op: matches
      value: "(?i)drop\\s+table"
redact:
  paths: [$.card]
  detectors: [email]
audit:
  payloads: false
`

// hooksEnv configures the same hooks (and metrics) through variables only.
var hooksEnv = map[string]string{
	"LRAP_HOOKS":            "firewall,redact,audit,metrics",
	"LRAP_FIREWALL_RULES":   `[{"id":"no-drop-table","path":"$.query","op":"matches","value":"(?i)drop\\s+table"}]`,
	"LRAP_REDACT_PATHS":     "$.card",
	"LRAP_REDACT_DETECTORS": "email",
}

// hookCase is one invoke and what the caller must get.
type hookCase struct {
	name string
	req  sandbox.Request
	// body is the response body the caller must get exactly; empty means
	// check with contains instead.
	body     string
	contains []string
	outcome  string // the audit line's outcome
}

func hookCases(prefix string, n int) []hookCase {
	id := func(name string) string { return fmt.Sprintf("e2e-hooks-%s-%s-%d", prefix, name, n) }
	return []hookCase{
		{name: "pass", outcome: "success",
			req:  sandbox.Request{RequestID: id("pass"), Payload: []byte(`{"op":"echo","message":"nothing to see"}`)},
			body: `{"op":"echo","message":"nothing to see"}`},
		{name: "redacted", outcome: "success",
			req: sandbox.Request{RequestID: id("redacted"),
				Payload: []byte(`{"op":"echo","note":"write to alice@example.com today","card":"4111 1111 1111 1111","keep":42}`)},
			body: `{"op":"echo","note":"write to *** today","card":"***","keep":42}`},
		{name: "rejected", outcome: "rejected",
			req:      sandbox.Request{RequestID: id("rejected"), Payload: []byte(`{"op":"echo","query":"1; DROP TABLE users"}`)},
			contains: []string{"LRAP.EventRejected", "rule no-drop-table matched"}},
		{name: "error", outcome: "error",
			req:      sandbox.Request{RequestID: id("error"), Payload: []byte(`{"op":"error","message":"on purpose"}`)},
			contains: []string{"requested error: on purpose"}},
	}
}

func checkHookCase(t *testing.T, c hookCase, r *sandbox.Response) {
	t.Helper()
	if c.body != "" {
		if r.Status != http.StatusOK || string(r.Body) != c.body {
			t.Errorf("%s: caller got %d %s\nwant 200 %s", c.req.RequestID, r.Status, r.Body, c.body)
		}
		return
	}
	for _, w := range c.contains {
		if !strings.Contains(string(r.Body), w) {
			t.Errorf("%s: caller got %d %s %v, which lacks %q", c.req.RequestID, r.Status, r.Body, r.Header, w)
		}
	}
	if c.outcome == "rejected" {
		// The caller gets the error document lrap posted in the
		// function's place: the configured error type and the rule.
		var doc struct{ ErrorType, ErrorMessage string }
		if err := json.Unmarshal(r.Body, &doc); err != nil || doc.ErrorType != "LRAP.EventRejected" || !strings.Contains(doc.ErrorMessage, "no-drop-table") {
			t.Errorf("%s: caller got %d %s, want an error document of type LRAP.EventRejected naming the rule", c.req.RequestID, r.Status, r.Body)
		}
		// The function never saw the event: it would have echoed it.
		if strings.Contains(string(r.Body), "DROP TABLE") {
			t.Errorf("%s: the rejected event reached the function: %s", c.req.RequestID, r.Body)
		}
		t.Logf("a rejected invoke, as its caller sees it: %d %s (X-Amz-Function-Error: %q)", r.Status, r.Body, r.Header.Get("X-Amz-Function-Error"))
	}
}

// auditLine is the part of an audit line these tests check.
type auditLine struct {
	Type       string `json:"type"`
	RequestID  string `json:"requestId"`
	Outcome    string `json:"outcome"`
	ErrorType  string `json:"errorType"`
	RejectedBy string `json:"rejectedBy"`
	EventBytes int64  `json:"eventBytes"`
	EventSHA   any    `json:"eventSha256"`
}

// auditLines returns the audit lines in the sandbox's output, by request id.
func auditLines(out string) map[string][]auditLine {
	lines := map[string][]auditLine{}
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		if !strings.Contains(l, `"lrap.audit"`) {
			continue
		}
		// The emulator may prefix lines it relays; the line starts at '{'.
		if i := strings.IndexByte(l, '{'); i > 0 {
			l = l[i:]
		}
		var a auditLine
		if json.Unmarshal([]byte(l), &a) == nil && a.Type == "lrap.audit" {
			lines[a.RequestID] = append(lines[a.RequestID], a)
		}
	}
	return lines
}

// countEMF counts the metrics hook's lines in the output.
func countEMF(out string) int {
	n := 0
	for _, l := range strings.Split(out, "\n") {
		if i := strings.Index(l, `{"_aws":`); i >= 0 {
			var doc map[string]any
			if json.Unmarshal([]byte(strings.TrimSpace(l[i:])), &doc) == nil && doc["Rejected"] != nil {
				n++
			}
		}
	}
	return n
}

// waitAudit waits (bounded) until every id has an audit line: they are
// written from lrap's OnEnd queue, just after the invocation ended.
func waitAudit(t *testing.T, s *sandbox.Sandbox, ids []string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		lines := auditLines(s.Output())
		missing := 0
		for _, id := range ids {
			if len(lines[id]) == 0 {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d invocations have no audit line after 5s", missing, len(ids))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkAudit stops the sandbox (SHUTDOWN flushes lrap's OnEnd queue) and
// checks that each invocation has exactly one audit line, with its outcome.
func checkAudit(t *testing.T, s *sandbox.Sandbox, cases []hookCase) {
	t.Helper()
	var ids []string
	for _, c := range cases {
		ids = append(ids, c.req.RequestID)
	}
	waitAudit(t, s, ids)
	if err := s.Stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
	lines := auditLines(s.Output())
	total := 0
	for _, ls := range lines {
		total += len(ls)
	}
	if total != len(cases) {
		t.Errorf("%d audit lines for %d invocations", total, len(cases))
	}
	for _, c := range cases {
		ls := lines[c.req.RequestID]
		if len(ls) != 1 {
			t.Errorf("%s: %d audit lines, want exactly 1", c.req.RequestID, len(ls))
			continue
		}
		a := ls[0]
		if a.Outcome != c.outcome {
			t.Errorf("%s: audit outcome %q, want %q", c.req.RequestID, a.Outcome, c.outcome)
		}
		switch c.outcome {
		case "rejected":
			if a.RejectedBy != "firewall" || a.ErrorType != "LRAP.EventRejected" {
				t.Errorf("%s: audit line %+v, want rejectedBy firewall, errorType LRAP.EventRejected", c.req.RequestID, a)
			}
		default:
			if a.EventBytes != int64(len(c.req.Payload)) || a.EventSHA == nil {
				t.Errorf("%s: audit line %+v, want eventBytes %d and a digest", c.req.RequestID, a, len(c.req.Payload))
			}
		}
	}
}

func TestHooksClassic(t *testing.T) {
	a := needArtifacts(t)
	// The config file lives outside the sandbox's private /opt, at a path
	// the emulator's mount namespace shares with this process.
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "lrap.yaml")
	if err := os.WriteFile(path, []byte(hooksYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startSandbox(t, sandbox.Config{RIE: a.rie, Function: a.function, Lrap: a.lrap, Wrapper: a.wrapper,
		Env: map[string]string{"LRAP_CONFIG": path}}, "hooks")
	cases := hookCases("classic", 0)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := do(s, c.req)
			if err != nil {
				t.Fatal(err)
			}
			checkHookCase(t, c, r)
		})
	}
	t.Run("audit", func(t *testing.T) { checkAudit(t, s, cases) })
}

// Managed Instances: the same hooks configured by variables only, with
// concurrent invocations; metrics writes one EMF line per invocation.
func TestHooksManagedInstances(t *testing.T) {
	a := needArtifacts(t)
	skipUnlessRoot(t)
	const concurrency = 4
	s := startSandbox(t, sandbox.Config{RIE: a.rie, Function: a.function, Lrap: a.lrap, Wrapper: a.wrapper,
		MaxConcurrency: concurrency, Env: hooksEnv}, "hooks-lmi")
	var cases []hookCase
	for n := range 3 {
		cases = append(cases, hookCases("lmi", n)...)
	}
	reqs := make([]sandbox.Request, len(cases))
	for i, c := range cases {
		reqs[i] = c.req
	}
	res, err := runConcurrently(s, reqs, concurrency)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range cases {
		checkHookCase(t, c, res[i])
	}
	checkAudit(t, s, cases)
	if n := countEMF(s.Output()); n != len(cases) {
		t.Errorf("%d EMF lines for %d invocations", n, len(cases))
	}
}
