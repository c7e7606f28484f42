// Command function is the Lambda function the end-to-end tests run under the
// Runtime Interface Emulator, once talking to the Runtime API directly and
// once through lrap. The event's "op" field selects a behaviour, so one binary
// covers every case and both runs execute exactly the same code.
//
// Every answer must be a pure function of the event and the invoke metadata the
// caller controls: the tests compare the direct and the proxied run byte for
// byte, so nothing time- or process-dependent may leak into a response.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

type event struct {
	Op      string `json:"op"`
	Size    int    `json:"size"`
	Chunks  int    `json:"chunks"`
	SleepMs int    `json:"sleepMs"`
	Message string `json:"message"`
	Group   string `json:"group"`
	ID      int    `json:"id"`
	WaitMs  int    `json:"waitMs"`
}

// opError gives returned errors a fixed errorType so the error document does
// not depend on how the standard library names its error types.
type opError struct{ msg string }

func (e *opError) Error() string { return e.msg }

func handle(ctx context.Context, raw json.RawMessage) (any, error) {
	var ev event
	if err := json.Unmarshal(raw, &ev); err != nil {
		return nil, &opError{msg: "bad event: " + err.Error()}
	}
	if ev.SleepMs > 0 {
		// Lets the concurrency tests keep several invokes in flight at once.
		select {
		case <-time.After(time.Duration(ev.SleepMs) * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	switch ev.Op {
	case "echo":
		return raw, nil
	case "error":
		return nil, &opError{msg: "requested error: " + ev.Message}
	case "panic":
		panic("requested panic: " + ev.Message)
	case "big":
		return pattern(ev.Size), nil
	case "stream":
		return newStream(ev.Chunks, ev.Message), nil
	case "meta":
		return meta(ctx)
	case "rendezvous":
		return rendezvous(ctx, ev)
	case "whoami":
		// Not compared between runs: it tells the test which address the
		// runtime really used, so a proxied case cannot silently bypass lrap.
		return map[string]string{"runtimeAPI": os.Getenv("AWS_LAMBDA_RUNTIME_API")}, nil
	default:
		return nil, &opError{msg: fmt.Sprintf("unknown op %q", ev.Op)}
	}
}

// pattern is deterministic filler, varied enough that a dropped or repeated
// block shows up in a byte comparison.
func pattern(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	var b strings.Builder
	b.Grow(n)
	for i := 0; i < n; i++ {
		b.WriteByte(alphabet[(i*7+i/len(alphabet))%len(alphabet)])
	}
	return b.String()
}

// stream makes aws-lambda-go post the response as a chunked body written over
// time, which is the path that exercises lrap's body streaming and trailers.
type stream struct {
	r *io.PipeReader
}

func newStream(chunks int, msg string) *stream {
	if chunks <= 0 {
		chunks = 5
	}
	pr, pw := io.Pipe()
	go func() {
		for i := 0; i < chunks; i++ {
			if _, err := fmt.Fprintf(pw, "chunk %d/%d %s\n", i+1, chunks, msg); err != nil {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		pw.Close()
	}()
	return &stream{r: pr}
}

func (s *stream) Read(p []byte) (int, error) { return s.r.Read(p) }
func (s *stream) Close() error               { return s.r.Close() }
func (s *stream) ContentType() string        { return "text/plain; charset=utf-8" }

// groups holds the rendezvous points, keyed by the event's group name.
var (
	groupsMu sync.Mutex
	groups   = map[string]*group{}
)

type group struct {
	arrived int
	full    chan struct{}
}

// rendezvous returns only once Size invocations of the same group are inside
// the handler at the same time, so its success proves that the runtime was
// handed that many events concurrently; a proxy that serialises /next makes
// it time out instead. The answer names only the event's own fields, so it is
// the same in every run.
func rendezvous(ctx context.Context, ev event) (any, error) {
	groupsMu.Lock()
	g, ok := groups[ev.Group]
	if !ok {
		g = &group{full: make(chan struct{})}
		groups[ev.Group] = g
	}
	g.arrived++
	if g.arrived == ev.Size {
		close(g.full)
	}
	groupsMu.Unlock()
	wait := 10 * time.Second
	if ev.WaitMs > 0 {
		wait = time.Duration(ev.WaitMs) * time.Millisecond
	}
	select {
	case <-g.full:
		return map[string]any{"group": ev.Group, "size": ev.Size, "id": ev.ID}, nil
	case <-time.After(wait):
		return nil, &opError{msg: fmt.Sprintf("rendezvous %q: fewer than %d invocations at once", ev.Group, ev.Size)}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type metaResult struct {
	RequestID          string                        `json:"requestId"`
	InvokedFunctionArn string                        `json:"invokedFunctionArn"`
	ClientContext      lambdacontext.ClientContext   `json:"clientContext"`
	Identity           lambdacontext.CognitoIdentity `json:"identity"`
	TenantID           string                        `json:"tenantId"`
	// The deadline itself differs per run; what must hold in both is that the
	// proxy delivered a usable one.
	DeadlineInFuture bool   `json:"deadlineInFuture"`
	DeadlineWithin   bool   `json:"deadlineWithin15Min"`
	FunctionName     string `json:"functionName"`
	FunctionVersion  string `json:"functionVersion"`
	MemoryLimitInMB  int    `json:"memoryLimitInMB"`
	MaxConcurrency   int    `json:"maxConcurrency"`
}

func meta(ctx context.Context) (any, error) {
	lc, ok := lambdacontext.FromContext(ctx)
	if !ok {
		return nil, &opError{msg: "no lambda context"}
	}
	dl, hasDeadline := ctx.Deadline()
	remaining := time.Until(dl)
	return metaResult{
		RequestID:          lc.AwsRequestID,
		InvokedFunctionArn: lc.InvokedFunctionArn,
		ClientContext:      lc.ClientContext,
		Identity:           lc.Identity,
		TenantID:           lc.TenantID,
		DeadlineInFuture:   hasDeadline && remaining > 0,
		DeadlineWithin:     hasDeadline && remaining <= 15*time.Minute,
		FunctionName:       lambdacontext.FunctionName,
		FunctionVersion:    lambdacontext.FunctionVersion,
		MemoryLimitInMB:    lambdacontext.MemoryLimitInMB,
		MaxConcurrency:     lambdacontext.MaxConcurrency(),
	}, nil
}

func main() {
	lambda.Start(handle)
}
