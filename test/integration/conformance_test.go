package integration

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lrap/lrap/internal/fakeapi"
	"github.com/lrap/lrap/internal/proxy"
	"github.com/lrap/lrap/runtimeapi"
)

// side is one place a test runtime talks to: the fake directly, or lrap's
// forwarding core (in-process, served the way Run serves it) in front of a
// fake of its own.
type side struct {
	name string
	fake *fakeapi.Server
	rt   *runtimeClient
	// connClosed receives a value each time lrap's server has finished
	// with a runtime connection (nil for the direct side).
	connClosed chan struct{}
}

func direct(t *testing.T, opts fakeapi.Options) *side {
	fake := startFake(t, opts)
	return &side{name: "direct", fake: fake, rt: newRuntime(t, fake.Addr())}
}

func viaLrap(t *testing.T, opts fakeapi.Options) *side {
	t.Helper()
	fake := startFake(t, opts)
	px, err := proxy.New(proxy.Config{Upstream: fake.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &side{name: "via lrap", fake: fake, rt: newRuntime(t, ln.Addr().String()), connClosed: make(chan struct{}, 64)}
	srv := proxy.NewServer(px, nil)
	srv.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateClosed || st == http.StateHijacked {
			select {
			case s.connClosed <- struct{}{}:
			default:
			}
		}
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		px.Close()
		srv.Close()
		<-served
	})
	return s
}

// scenario drives one side and returns the answers the runtime saw.
type scenario func(t *testing.T, ctx context.Context, s *side) []reply

// differential runs sc once against the fake directly and once through
// lrap, each with a fresh fake, and requires lrap to be invisible both ways:
// the runtime sees the same statuses, headers, bodies and framing, and the
// fake receives the same requests (method, target, headers, framing, body,
// trailers). It returns the answers seen through lrap for exact checks.
func differential(t *testing.T, opts fakeapi.Options, sc scenario) []reply {
	t.Helper()
	ctx := bounded(t)
	d, v := direct(t, opts), viaLrap(t, opts)
	want, got := sc(t, ctx, d), sc(t, ctx, v)
	if t.Failed() {
		t.FailNow()
	}
	if len(want) != len(got) {
		t.Fatalf("%d answers through lrap, %d direct", len(got), len(want))
	}
	for i := range want {
		w, g := want[i], got[i]
		if g.err != nil || w.err != nil {
			t.Fatalf("answer %d: error through lrap %v, direct %v", i, g.err, w.err)
		}
		if g.status != w.status || !bytes.Equal(g.body, w.body) || g.chunked != w.chunked || g.cl != w.cl {
			t.Errorf("answer %d through lrap: %d %q chunked=%v length=%d; direct: %d %q chunked=%v length=%d",
				i, g.status, g.body, g.chunked, g.cl, w.status, w.body, w.chunked, w.cl)
		}
		wh := w.header.Clone()
		if _, ok := wh["Date"]; ok {
			wh["Date"] = nil
		}
		headerExact(t, "answer "+strconv.Itoa(i)+" through lrap", g.header, wh)
	}
	wr, gr := d.fake.Requests(), v.fake.Requests()
	if len(wr) != len(gr) {
		t.Fatalf("the fake received %d requests through lrap, %d direct", len(gr), len(wr))
	}
	for i := range wr {
		w, g := wr[i], gr[i]
		if g.Host != v.fake.Addr() {
			t.Errorf("request %d reached the fake with Host %q, want its address %q", i, g.Host, v.fake.Addr())
		}
		if g.Method != w.Method || g.RequestURI != w.RequestURI || g.Proto != w.Proto ||
			g.ContentLength != w.ContentLength || g.Chunked != w.Chunked || !bytes.Equal(g.Body, w.Body) ||
			g.BodySize != w.BodySize || g.BodyEOF != w.BodyEOF {
			t.Errorf("request %d through lrap %s %s %s len=%d chunked=%v body=%d/%d eof=%v; direct %s %s %s len=%d chunked=%v body=%d/%d eof=%v",
				i, g.Method, g.RequestURI, g.Proto, g.ContentLength, g.Chunked, len(g.Body), g.BodySize, g.BodyEOF,
				w.Method, w.RequestURI, w.Proto, w.ContentLength, w.Chunked, len(w.Body), w.BodySize, w.BodyEOF)
		}
		headerExact(t, "request "+strconv.Itoa(i)+" headers through lrap", g.Header, w.Header)
		if len(w.Trailer)+len(g.Trailer) > 0 {
			headerExact(t, "request "+strconv.Itoa(i)+" trailers through lrap", g.Trailer, w.Trailer)
		}
	}
	return got
}

// fixedDeadline keeps the /next headers equal between the two sides.
var fixedDeadline = time.UnixMilli(4102444800000)

func enqueue(s *side, id, payload string) *fakeapi.Pending {
	return s.fake.Enqueue(fakeapi.Invocation{RequestID: id, Payload: []byte(payload), Deadline: fixedDeadline})
}

// expect checks one answer seen through lrap against the API's exact answer
// (notes §2.7).
func expect(t *testing.T, what string, r reply, status int, contentType, body string) {
	t.Helper()
	if r.status != status || string(r.body) != body || r.header.Get("Content-Type") != contentType {
		t.Errorf("%s: got %d %q (Content-Type %q), want %d %q (%q)", what, r.status, r.body, r.header.Get("Content-Type"), status, body, contentType)
	}
}

const stateNotAllowed = "failed for runtime. Error: State transition is not allowed"

// Every answer of the API crosses lrap unchanged, whatever its status, and
// every request reaches the API unchanged (T7, T9, T13, T14): lrap answers
// nothing itself while the API is reachable.
func TestConformanceStatusesAndBodies(t *testing.T) {
	t.Parallel()
	const js = "application/json"
	invalidID := errJSON("InvalidRequestID", "Invalid request ID")
	invalidMode := errJSON("InvalidFunctionResponseMode", "Invalid function response mode")

	t.Run("202 for /response and /error", func(t *testing.T) {
		t.Parallel()
		r := differential(t, fakeapi.Options{}, func(t *testing.T, ctx context.Context, s *side) []reply {
			enqueue(s, "id-1", `{"n":1}`)
			next1 := s.rt.do(ctx, "GET", runtimeapi.PathNext, nil)
			resp := s.rt.do(ctx, "POST", respPath("id-1"), strings.NewReader(`{"ok":1}`), "Content-Type", js)
			enqueue(s, "id-2", `{"n":2}`)
			next2 := s.rt.do(ctx, "GET", runtimeapi.PathNext, nil)
			errr := s.rt.do(ctx, "POST", errPath("id-2"), strings.NewReader(errJSON("Function.X", "x")),
				runtimeapi.HeaderErrorType, "Function.X")
			return []reply{next1, resp, next2, errr}
		})
		expect(t, "/response", r[1], 202, js, accepted)
		expect(t, "/error", r[3], 202, js, accepted)
	})

	// Classic checks the id before reading the body (notes §2.2, T13).
	t.Run("400 InvalidRequestID", func(t *testing.T) {
		t.Parallel()
		r := differential(t, fakeapi.Options{}, func(t *testing.T, ctx context.Context, s *side) []reply {
			enqueue(s, "id-1", "{}")
			next := s.rt.do(ctx, "GET", runtimeapi.PathNext, nil)
			return []reply{next,
				s.rt.do(ctx, "POST", respPath("id-2"), strings.NewReader("wrong id")),
				s.rt.do(ctx, "POST", errPath("ID-1"), strings.NewReader("ids are case-sensitive")),
			}
		})
		expect(t, "/response, wrong id", r[1], 400, js, invalidID)
		expect(t, "/error, wrong id", r[2], 400, js, invalidID)
	})

	// Only an absent header or exactly "streaming" is accepted (T14).
	for _, mode := range []string{"Streaming", "buffered"} {
		t.Run("400 InvalidFunctionResponseMode "+mode, func(t *testing.T) {
			t.Parallel()
			r := differential(t, fakeapi.Options{}, func(t *testing.T, ctx context.Context, s *side) []reply {
				enqueue(s, "id-1", "{}")
				return []reply{
					s.rt.do(ctx, "GET", runtimeapi.PathNext, nil),
					s.rt.do(ctx, "POST", respPath("id-1"), strings.NewReader("body"), runtimeapi.HeaderResponseMode, mode),
				}
			})
			expect(t, "/response mode "+mode, r[1], 400, js, invalidMode)
		})
	}

	t.Run("403 second /response", func(t *testing.T) {
		t.Parallel()
		r := differential(t, fakeapi.Options{}, func(t *testing.T, ctx context.Context, s *side) []reply {
			enqueue(s, "id-1", "{}")
			return []reply{
				s.rt.do(ctx, "GET", runtimeapi.PathNext, nil),
				s.rt.do(ctx, "POST", respPath("id-1"), strings.NewReader("first")),
				s.rt.do(ctx, "POST", respPath("id-1"), strings.NewReader("second")),
			}
		})
		expect(t, "second /response", r[2], 403, js, errJSON("InvalidStateTransition",
			"State transition from RuntimeResponseSentState to InvocationResponse "+stateNotAllowed))
	})

	// A buffered response one byte over 6 MiB + 100 gets 413 after the API
	// has consumed it; lrap must not cap, buffer or answer early (T7, T23).
	t.Run("413 response too large", func(t *testing.T) {
		t.Parallel()
		big := bytes.Repeat([]byte("x"), fakeapi.MaxPayloadSize+1)
		r := differential(t, fakeapi.Options{}, func(t *testing.T, ctx context.Context, s *side) []reply {
			p := enqueue(s, "id-1", "{}")
			r := []reply{
				s.rt.do(ctx, "GET", runtimeapi.PathNext, nil),
				s.rt.do(ctx, "POST", respPath("id-1"), bytes.NewReader(big)),
			}
			if res, err := p.Wait(ctx); err != nil || res.Size != int64(len(big)) || res.Failure != "Function.ResponseSizeTooLarge" {
				t.Errorf("%s: upstream result %v %v", s.name, res, err)
			}
			return r
		})
		expect(t, "oversized /response", r[1], 413, js,
			errJSON("RequestEntityTooLarge", "Exceeded maximum allowed payload size (6291556 bytes)."))
	})

	// Unknown paths are forwarded, not answered by lrap (T6); the API's 404
	// is text/plain.
	t.Run("404 unknown path", func(t *testing.T) {
		t.Parallel()
		r := differential(t, fakeapi.Options{}, func(t *testing.T, ctx context.Context, s *side) []reply {
			return []reply{
				s.rt.do(ctx, "GET", runtimeapi.RuntimePrefix+"/runtime/unknown", nil),
				s.rt.do(ctx, "GET", runtimeapi.PathNext+"/", nil),
				s.rt.do(ctx, "POST", "/2099-01-01/future/api?x=1", strings.NewReader("{}")),
			}
		})
		for i, x := range r {
			expect(t, "unknown path "+strconv.Itoa(i), x, 404, "text/plain; charset=utf-8", "404 page not found\n")
		}
	})

	// 405 with an empty body; classic (chi v5) adds Allow, Managed
	// Instances (chi v1) do not: whatever the API says crosses unchanged.
	for _, mode := range []fakeapi.Mode{fakeapi.Classic, fakeapi.ManagedInstances} {
		t.Run("405 wrong method "+mode.String(), func(t *testing.T) {
			t.Parallel()
			r := differential(t, fakeapi.Options{Mode: mode}, func(t *testing.T, ctx context.Context, s *side) []reply {
				return []reply{
					s.rt.do(ctx, "POST", runtimeapi.PathNext, strings.NewReader("{}")),
					s.rt.do(ctx, "GET", respPath("id-1"), nil),
					s.rt.do(ctx, "PUT", runtimeapi.PathInitError, strings.NewReader("{}")),
				}
			})
			for i, allow := range []string{"GET", "POST", "POST"} {
				if mode == fakeapi.ManagedInstances {
					allow = ""
				}
				if r[i].status != 405 || len(r[i].body) != 0 || r[i].header.Get("Allow") != allow {
					t.Errorf("answer %d: %d %q Allow %q, want 405, empty, Allow %q", i, r[i].status, r[i].body, r[i].header.Get("Allow"), allow)
				}
			}
		})
	}

	// /runtime/init/error is accepted before the first /next only (notes
	// §2.4).
	t.Run("202 init/error before the first /next", func(t *testing.T) {
		t.Parallel()
		r := differential(t, fakeapi.Options{}, func(t *testing.T, ctx context.Context, s *side) []reply {
			r := s.rt.do(ctx, "POST", runtimeapi.PathInitError, strings.NewReader(errJSON("Runtime.InitFailed", "no config")),
				runtimeapi.HeaderErrorType, "Runtime.InitFailed", "Content-Type", js)
			if re := s.fake.RuntimeErrors(); len(re) != 1 || re[0].ErrorType != "Runtime.InitFailed" {
				t.Errorf("%s: runtime errors %+v", s.name, re)
			}
			return []reply{r}
		})
		expect(t, "/init/error", r[0], 202, js, accepted)
	})
	t.Run("403 init/error after the first /next", func(t *testing.T) {
		t.Parallel()
		r := differential(t, fakeapi.Options{}, func(t *testing.T, ctx context.Context, s *side) []reply {
			nctx, cancel := context.WithCancel(ctx)
			defer cancel()
			s.rt.async(nctx, "GET", runtimeapi.PathNext, nil)
			if err := s.fake.WaitParkedNext(ctx, 1); err != nil {
				t.Fatal(err)
			}
			return []reply{s.rt.do(ctx, "POST", runtimeapi.PathInitError, strings.NewReader("{}"),
				runtimeapi.HeaderErrorType, "Runtime.Late")}
		})
		expect(t, "late /init/error", r[0], 403, js, errJSON("InvalidStateTransition",
			"State transition from Ready to InitError "+stateNotAllowed))
	})
}

// /next bodies come with Content-Length when they fit the API server's 2 KiB
// buffer and chunked otherwise; the runtime must see the framing the API
// chose, with the same bytes (notes §2.1, §9, T15).
func TestConformanceNextFraming(t *testing.T) {
	t.Parallel()
	small, large := strings.Repeat("s", 100), strings.Repeat("L", 3000)
	for _, tc := range []struct {
		name    string
		framing fakeapi.Framing
		payload string
		chunked bool
	}{
		{"small event, Content-Length", fakeapi.FramingAuto, small, false},
		{"3000-byte event, chunked", fakeapi.FramingAuto, large, true},
		{"small event, forced chunked", fakeapi.FramingChunked, small, true},
		{"3000-byte event, forced Content-Length", fakeapi.FramingContentLength, large, false},
		{"empty event, chunked", fakeapi.FramingChunked, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := differential(t, fakeapi.Options{NextFraming: tc.framing}, func(t *testing.T, ctx context.Context, s *side) []reply {
				enqueue(s, "id-1", tc.payload)
				return []reply{s.rt.do(ctx, "GET", runtimeapi.PathNext, nil)}
			})[0]
			if string(r.body) != tc.payload || r.chunked != tc.chunked {
				t.Errorf("runtime got %d bytes chunked=%v, want %d bytes chunked=%v", len(r.body), r.chunked, len(tc.payload), tc.chunked)
			}
			if !tc.chunked && r.cl != int64(len(tc.payload)) {
				t.Errorf("Content-Length %d, want %d", r.cl, len(tc.payload))
			}
		})
	}
}

// T3: a runtime that abandons its /next and polls again must get the next
// event. Classic Lambda keeps the abandoned /next parked and hands the next
// event to it, the oldest waiter, into a dead connection, while the fresh
// /next stays parked. Directly against the fake the event is swallowed that
// way; through lrap, which keeps the abandoned upstream poll and hands its
// answer to the runtime's next poll, it arrives.
func TestConformanceAbandonedNextIsNotSwallowed(t *testing.T) {
	t.Parallel()
	abandon := func(t *testing.T, ctx context.Context, s *side) {
		actx, cancel := context.WithCancel(ctx)
		a := s.rt.async(actx, "GET", runtimeapi.PathNext, nil)
		if err := s.fake.WaitParkedNext(ctx, 1); err != nil {
			t.Fatal(err)
		}
		cancel()
		if r := recv(t, "the abandoned /next to return", a); !errors.Is(r.err, context.Canceled) {
			t.Fatalf("%s: abandoned /next returned %+v", s.name, r)
		}
	}

	t.Run("via lrap the event arrives", func(t *testing.T) {
		t.Parallel()
		ctx := bounded(t)
		s := viaLrap(t, fakeapi.Options{})
		abandon(t, ctx, s)
		// lrap's server is done with the abandoned connection, so the
		// handler has let go of its poll before the runtime polls again.
		recv(t, "lrap to close the abandoned connection", s.connClosed)
		b := s.rt.async(ctx, "GET", runtimeapi.PathNext, nil)
		// The event must come after the second poll has reached the API's
		// side: an event enqueued while the abandoned poll is the only one
		// parked would be re-delivered to any later /next (classic re-renders
		// the running event) and hide the trap. A proxy that opens a second
		// upstream poll shows it within a moment; lrap, which adopts the
		// abandoned one, never does.
		waitUntilOrTimeout(ctx, 200*time.Millisecond, func() bool { return s.fake.ParkedNext() >= 2 })
		if n := s.fake.ParkedNext(); n != 1 {
			t.Errorf("%d /next parked at the API; the runtime's new poll must take over the abandoned one, not park behind it", n)
		}
		p := enqueue(s, "after-abandon", `{"n":1}`)
		r := must(t, "the second /next", recv(t, "the event on the second /next", b), 200, `{"n":1}`)
		if id := r.header.Get(runtimeapi.HeaderRequestID); id != p.RequestID {
			t.Fatalf("got event %q, want %q", id, p.RequestID)
		}
		must(t, "/response", s.rt.do(ctx, "POST", respPath(p.RequestID), strings.NewReader("done")), 202, accepted)
		if res, err := p.Wait(ctx); err != nil || string(res.Body) != "done" {
			t.Fatalf("upstream result %+v %v", res, err)
		}
	})

	t.Run("directly the fake swallows it", func(t *testing.T) {
		t.Parallel()
		ctx := bounded(t)
		s := direct(t, fakeapi.Options{})
		abandon(t, ctx, s)
		b := s.rt.async(ctx, "GET", runtimeapi.PathNext, nil)
		if err := s.fake.WaitParkedNext(ctx, 2); err != nil {
			t.Fatal(err)
		}
		enqueue(s, "after-abandon", `{"n":1}`)
		// The event went to the oldest, abandoned /next: the invocation
		// is running, the live /next is still parked.
		if n, st := s.fake.ParkedNext(), s.fake.RuntimeState(); n != 1 || st != "Running" {
			t.Fatalf("parked %d, state %s; want the event taken by the abandoned /next", n, st)
		}
		select {
		case r := <-b:
			t.Fatalf("the live /next got %+v; the fake no longer reproduces trap T3", r)
		case <-time.After(100 * time.Millisecond):
		}
	})
}

// T3, the realistic timing: a runtime whose HTTP client timed out on /next
// polls again at once, on another keep-alive connection it already holds.
// That second poll can reach lrap before lrap's server has noticed that the
// first connection closed; lrap then opens a second upstream /next instead of
// adopting the first one, the API hands the next event to the older,
// abandoned poll, and the live /next stays parked: the invocation hangs until
// its timeout, exactly the trap lrap exists to avoid. lrap hands each
// upstream answer to a runtime poll still connected, whichever upstream poll
// produced it (internal/proxy/longpoll.go). The race shows in about half of
// the attempts when it is not handled; the test makes up to 30 and stops at
// the first lost event.
func TestConformanceAbandonedNextImmediateRepoll(t *testing.T) {
	t.Parallel()
	for i := range 30 {
		ctx := bounded(t)
		s := viaLrap(t, fakeapi.Options{})
		// Two idle keep-alive connections, as a runtime that has talked to
		// the API before holds.
		w1 := s.rt.async(ctx, "GET", runtimeapi.RuntimePrefix+"/ping", nil)
		w2 := s.rt.async(ctx, "GET", runtimeapi.RuntimePrefix+"/ping", nil)
		recv(t, "warm-up", w1)
		recv(t, "warm-up", w2)

		actx, cancel := context.WithCancel(ctx)
		a := s.rt.async(actx, "GET", runtimeapi.PathNext, nil)
		if err := s.fake.WaitParkedNext(ctx, 1); err != nil {
			t.Fatal(err)
		}
		cancel()
		recv(t, "the abandoned /next to return", a)
		b := s.rt.async(ctx, "GET", runtimeapi.PathNext, nil) // at once
		waitUntilOrTimeout(ctx, 30*time.Millisecond, func() bool { return s.fake.ParkedNext() >= 2 })
		parked := s.fake.ParkedNext()
		id := "repoll-" + strconv.Itoa(i)
		enqueue(s, id, "{}")
		select {
		case r := <-b:
			if r.err != nil || r.status != 200 || r.header.Get(runtimeapi.HeaderRequestID) != id {
				t.Fatalf("attempt %d: the re-poll got %d %v %q", i, r.status, r.err, r.header.Get(runtimeapi.HeaderRequestID))
			}
		case <-time.After(time.Second):
			t.Fatalf("attempt %d: the event was swallowed: lrap had %d /next parked at the API when it came, "+
				"and the API gave it to the abandoned one", i, parked)
		}
	}
}

// notes §2.5, T22: with SnapStart, /restore/next blocks across the snapshot
// (no timeout in lrap) and returns 200 with an empty body when the platform
// restores.
func TestConformanceRestoreNext(t *testing.T) {
	t.Parallel()
	r := differential(t, fakeapi.Options{InitCaching: true}, func(t *testing.T, ctx context.Context, s *side) []reply {
		ch := s.rt.async(ctx, "GET", runtimeapi.PathRestoreNext, nil)
		if err := s.fake.WaitUntil(ctx, func() bool { return s.fake.RuntimeState() == "RestoreReady" }); err != nil {
			t.Fatal(err)
		}
		select {
		case r := <-ch:
			t.Fatalf("%s: /restore/next returned before the restore: %+v", s.name, r)
		case <-time.After(50 * time.Millisecond):
		}
		s.fake.Restore()
		return []reply{recv(t, "/restore/next after Restore", ch)}
	})[0]
	if r.status != 200 || len(r.body) != 0 || r.cl != 0 || r.chunked {
		t.Errorf("/restore/next: %d %q length %d chunked %v, want 200 with an empty body", r.status, r.body, r.cl, r.chunked)
	}
	if !slices.Contains([]string{"", "text/plain; charset=utf-8"}, r.header.Get("Content-Type")) {
		t.Errorf("Content-Type %q", r.header.Get("Content-Type"))
	}
}

// waitUntilOrTimeout polls cond until it holds or d has passed.
func waitUntilOrTimeout(ctx context.Context, d time.Duration, cond func() bool) {
	end := time.Now().Add(d)
	for !cond() && time.Now().Before(end) && ctx.Err() == nil {
		time.Sleep(2 * time.Millisecond)
	}
}
