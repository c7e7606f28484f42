package hook_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"

	"github.com/lrap/lrap/hook"
)

// A hook that tags every event with a header and blocks responses that
// would leak a secret. lrap calls these functions itself; here they are
// called by hand to show what they do.
func ExampleHook() {
	h := hook.Hook{
		Name:      "guard",
		Policy:    hook.FailClosed, // a guard that cannot decide must not let things through
		NeedsBody: true,            // whole bodies in Message.Body
		OnEvent: func(_ context.Context, inv *hook.Invocation, ev *hook.Message) hook.Verdict {
			ev.Header.Set("X-Guarded-Request", inv.RequestID)
			return hook.Continue
		},
		OnResponse: func(_ context.Context, _ *hook.Invocation, resp *hook.Message) hook.Verdict {
			if bytes.Contains(resp.Body, []byte("BEGIN PRIVATE KEY")) {
				return hook.Reject("Guard.SecretInResponse", "the response contains a private key")
			}
			return hook.Continue
		},
	}

	inv := &hook.Invocation{RequestID: "8476a536-e9f4-11e8-9739-2dfe598c3fcd"}
	ev := &hook.Message{Header: http.Header{}, Body: []byte(`{"order":42}`)}
	h.OnEvent(context.Background(), inv, ev)
	fmt.Println("runtime sees X-Guarded-Request:", ev.Header.Get("X-Guarded-Request"))

	resp := &hook.Message{Header: http.Header{}, Body: []byte("-----BEGIN PRIVATE KEY-----\n...")}
	errorType, message, rejected := h.OnResponse(context.Background(), inv, resp).Rejected()
	fmt.Println(rejected, errorType, message)
	// Output:
	// runtime sees X-Guarded-Request: 8476a536-e9f4-11e8-9739-2dfe598c3fcd
	// true Guard.SecretInResponse the response contains a private key
}

// Reject stops a message. For an event, lrap fails the invocation upstream
// with this error type and message and the runtime never sees it; for a
// response, lrap posts this error in its place.
func ExampleReject() {
	v := hook.Reject("LRAP.EventRejected", "payload over 1 MiB")
	errorType, message, rejected := v.Rejected()
	fmt.Printf("rejected=%v type=%s message=%q\n", rejected, errorType, message)

	_, _, rejected = hook.Continue.Rejected()
	fmt.Println("Continue rejects:", rejected)
	// Output:
	// rejected=true type=LRAP.EventRejected message="payload over 1 MiB"
	// Continue rejects: false
}

// startKey is a key type of this package only, so no other hook's Set can
// clash with it (as with context values).
type startKey struct{}

// Set carries state from one hook point to the next of the same invocation:
// here the event's size, from OnEvent to OnResponse. Under Managed
// Instances many invocations run at once, so such state lives in the
// Invocation, never in the hook.
func ExampleInvocation_Set() {
	h := hook.Hook{
		Name:      "growth",
		NeedsBody: true,
		OnEvent: func(_ context.Context, inv *hook.Invocation, ev *hook.Message) hook.Verdict {
			inv.Set(startKey{}, len(ev.Body))
			return hook.Continue
		},
		OnResponse: func(_ context.Context, inv *hook.Invocation, resp *hook.Message) hook.Verdict {
			eventBytes, _ := inv.Value(startKey{}).(int)
			fmt.Printf("%s: event %d bytes, response %d bytes\n", inv.RequestID, eventBytes, len(resp.Body))
			return hook.Continue
		},
	}

	inv := &hook.Invocation{RequestID: "req-1"}
	h.OnEvent(context.Background(), inv, &hook.Message{Body: []byte(`{"q":"lamps"}`)})
	h.OnResponse(context.Background(), inv, &hook.Message{Body: []byte(`{"items":["desk lamp","floor lamp"]}`)})
	fmt.Println(inv.Value("unset key") == nil)
	// Output:
	// req-1: event 13 bytes, response 36 bytes
	// true
}
