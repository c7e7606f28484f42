//go:build linux

// Command lrap-demo shows lrap at work under the AWS Lambda Runtime Interface
// Emulator: it invokes a function through lrap, prints every Runtime API
// request lrap forwarded and what the caller got back, then measures invoke
// latency with and without lrap.
//
// It builds nothing. It takes the lrap binary, the wrapper script, a function
// and the emulator from flags, or finds them in -bin (see the flag help).
// Typical use, from the repository root after the binaries are built:
//
//	go run ./cmd/lrap-demo -bin bin
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/lrap/lrap/internal/sandbox"
)

type options struct {
	bin         string
	lrap        string
	wrapper     string
	function    string
	rie         string
	n           int
	concurrency int
	verbose     bool
}

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "bin", "directory searched for binaries not given by their own flag")
	flag.StringVar(&o.lrap, "lrap", "", "lrap binary (default: <bin>/lrap)")
	flag.StringVar(&o.wrapper, "wrapper", "", "lrap wrapper script (default: <bin>/lrap-wrapper, else layer/lrap-wrapper)")
	flag.StringVar(&o.function, "function", "", "function built from test/e2e/function (default: <bin>/function, else <bin>/e2e-function)")
	flag.StringVar(&o.rie, "rie", "", "aws-lambda-rie "+sandbox.RIEVersion+" (default: <bin>/aws-lambda-rie, else .cache/bin/aws-lambda-rie)")
	flag.IntVar(&o.n, "n", 50, "invokes per mode in the latency comparison")
	flag.IntVar(&o.concurrency, "concurrency", 0, "run the Managed Instances data plane with AWS_LAMBDA_MAX_CONCURRENCY set to this (0: classic)")
	flag.BoolVar(&o.verbose, "v", false, "also print the raw output of the emulator, the runtime and lrap")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "lrap-demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options, w io.Writer) error {
	if o.n < 1 {
		return errors.New("-n must be at least 1")
	}
	if err := o.resolve(); err != nil {
		return err
	}
	mode := "classic"
	if o.concurrency > 0 {
		mode = fmt.Sprintf("Managed Instances (AWS_LAMBDA_MAX_CONCURRENCY=%d)", o.concurrency)
	}
	fmt.Fprintf(w, "lrap demo — AWS Lambda Runtime Interface Emulator %s, %s data plane\n", sandbox.RIEVersion, mode)
	fmt.Fprintf(w, "  lrap      %s\n  wrapper   %s\n  function  %s\n  emulator  %s\n\n", o.lrap, o.wrapper, o.function, o.rie)

	if err := showTraffic(ctx, o, w); err != nil {
		return err
	}
	return compareLatency(ctx, o, w)
}

// resolve fills every path not given by a flag from the search locations,
// and insists the emulator is the pinned version so figures are comparable.
func (o *options) resolve() error {
	pick := func(flagVal, what string, candidates ...string) (string, error) {
		if flagVal != "" {
			candidates = []string{flagVal}
		}
		for _, c := range candidates {
			if st, err := os.Stat(c); err == nil && !st.IsDir() {
				return filepath.Abs(c)
			}
		}
		return "", fmt.Errorf("%s not found (looked at %s)", what, strings.Join(candidates, ", "))
	}
	var err error
	if o.lrap, err = pick(o.lrap, "lrap binary", filepath.Join(o.bin, "lrap")); err != nil {
		return fmt.Errorf("%w; build it with: go build -o %s ./cmd/lrap", err, filepath.Join(o.bin, "lrap"))
	}
	if o.wrapper, err = pick(o.wrapper, "lrap wrapper", filepath.Join(o.bin, "lrap-wrapper"), filepath.Join("layer", "lrap-wrapper")); err != nil {
		return err
	}
	if o.function, err = pick(o.function, "function", filepath.Join(o.bin, "function"), filepath.Join(o.bin, "e2e-function")); err != nil {
		return fmt.Errorf("%w; build it with: (cd test/e2e/function && CGO_ENABLED=0 go build -o ../../../%s .)", err, filepath.Join(o.bin, "function"))
	}
	install := fmt.Sprintf("GOBIN=$PWD/%s go install github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@%s", o.bin, sandbox.RIEVersion)
	if o.rie != "" {
		v, err := sandbox.RIEVersionOf(o.rie)
		if err != nil {
			return fmt.Errorf("-rie: %w", err)
		}
		if v != sandbox.RIEVersion {
			return fmt.Errorf("-rie %s is version %s, want %s; install it with: %s", o.rie, v, sandbox.RIEVersion, install)
		}
		o.rie, err = filepath.Abs(o.rie)
		return err
	}
	p, ok := sandbox.FindRIE(o.bin, filepath.Join(".cache", "bin"))
	if !ok {
		return fmt.Errorf("aws-lambda-rie %s not found in %s or .cache/bin; install it with: %s", sandbox.RIEVersion, o.bin, install)
	}
	o.rie = p
	return nil
}

func (o *options) config(withLrap bool, env map[string]string) sandbox.Config {
	cfg := sandbox.Config{RIE: o.rie, Function: o.function, MaxConcurrency: o.concurrency, Env: env}
	if withLrap {
		cfg.Lrap, cfg.Wrapper = o.lrap, o.wrapper
	}
	if o.verbose {
		cfg.Output = os.Stderr
	}
	return cfg
}

// demoInvokes cover the interesting paths through lrap: plain JSON, invoke
// metadata, a function error, a chunked (streamed) response and a larger body.
var demoInvokes = []struct {
	title string
	req   sandbox.Request
}{
	{"echo a JSON event", sandbox.Request{RequestID: "demo-echo",
		Payload: []byte(`{"op":"echo","message":"hello through lrap"}`)}},
	{"invoke metadata (client context, function ARN)", sandbox.Request{RequestID: "demo-meta",
		Payload:       []byte(`{"op":"meta"}`),
		ClientContext: `{"custom":{"caller":"lrap-demo"}}`}},
	{"function returns an error", sandbox.Request{RequestID: "demo-error",
		Payload: []byte(`{"op":"error","message":"something failed"}`)}},
	{"streamed response (io.Reader, chunked)", sandbox.Request{RequestID: "demo-stream",
		Payload: []byte(`{"op":"stream","chunks":3,"message":"part"}`)}},
	{"64 KiB response", sandbox.Request{RequestID: "demo-big",
		Payload: []byte(`{"op":"big","size":65536}`)}},
}

func showTraffic(ctx context.Context, o options, w io.Writer) error {
	fmt.Fprintln(w, "== Invokes through lrap (LRAP_LOG_LEVEL=debug) ==")
	s, err := sandbox.Start(ctx, o.config(true, map[string]string{"LRAP_LOG_LEVEL": "debug"}))
	if err != nil {
		return err
	}
	defer s.Stop()
	for i, inv := range demoInvokes {
		mark := s.OutputLen()
		resp, err := invoke(ctx, s, inv.req)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "\n%d. %s\n   event     %s\n", i+1, inv.title, clip(inv.req.Payload, 90))
		fmt.Fprintln(w, "   lrap forwarded:")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, r := range awaitForwarded(ctx, s, mark, inv.req.RequestID) {
			fmt.Fprintf(tw, "     %s\t%s\t%d\t%s\n", r.Method, r.Path, r.Status, extras(r))
		}
		tw.Flush()
		fmt.Fprintf(w, "   response  %d, %d bytes%s\n", resp.Status, len(resp.Body), errorType(resp))
		fmt.Fprintf(w, "             %s\n", clip(resp.Body, 90))
	}
	fmt.Fprintln(w)
	return s.Stop()
}

// awaitForwarded waits briefly for lrap's lines about this invoke: it logs a
// request after relaying the answer, which can trail the caller's response.
func awaitForwarded(ctx context.Context, s *sandbox.Sandbox, mark int, requestID string) []sandbox.LrapRequest {
	deadline := time.Now().Add(2 * time.Second)
	for {
		reqs := sandbox.LrapRequests(s.OutputSince(mark))
		for _, r := range reqs {
			if strings.Contains(r.Path, "/"+requestID+"/") {
				return reqs
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return reqs
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func extras(r sandbox.LrapRequest) string {
	var parts []string
	if v, ok := r.Fields["bytes_in"].(float64); ok {
		parts = append(parts, fmt.Sprintf("in %dB", int(v)))
	}
	if v, ok := r.Fields["bytes_out"].(float64); ok {
		parts = append(parts, fmt.Sprintf("out %dB", int(v)))
	}
	if v, ok := r.Fields["duration_us"].(float64); ok {
		parts = append(parts, (time.Duration(v) * time.Microsecond).String())
	}
	return strings.Join(parts, "  ")
}

func errorType(r *sandbox.Response) string {
	if t := r.Header.Get("Error-Type"); t != "" {
		return ", Error-Type " + t
	}
	return ""
}

func invoke(ctx context.Context, s *sandbox.Sandbox, req sandbox.Request) (*sandbox.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return s.Do(ctx, req)
}

// compareLatency alternates invokes between a sandbox without and one with
// lrap, so that drift on a busy machine hits both modes alike. lrap runs at
// its default log level here: the figure is the proxy, not its debug log.
func compareLatency(ctx context.Context, o options, w io.Writer) error {
	fmt.Fprintf(w, "== Invoke latency, %d invokes per mode, alternating ==\n", o.n)
	direct, err := sandbox.Start(ctx, o.config(false, nil))
	if err != nil {
		return err
	}
	defer direct.Stop()
	proxied, err := sandbox.Start(ctx, o.config(true, nil))
	if err != nil {
		return err
	}
	defer proxied.Stop()

	payload := []byte(`{"op":"echo","message":"latency probe"}`)
	sides := []*sandbox.Sandbox{direct, proxied}
	// The first invoke of each includes init (runtime start, extension
	// registration); a few more warm up connections and caches.
	for range 5 {
		for _, s := range sides {
			if _, err := invoke(ctx, s, sandbox.Request{Payload: payload}); err != nil {
				return err
			}
		}
	}
	lat := make([][]time.Duration, len(sides))
	for range o.n {
		for i, s := range sides {
			r, err := invoke(ctx, s, sandbox.Request{Payload: payload})
			if err != nil {
				return err
			}
			lat[i] = append(lat[i], r.Latency)
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "mode\tp50\tp90\tmin\tmax\t")
	for i, name := range []string{"direct", "through lrap"} {
		d := lat[i]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", name, round(pct(d, 50)), round(pct(d, 90)), round(pct(d, 0)), round(pct(d, 100)))
	}
	tw.Flush()
	p50d, p50l := pct(lat[0], 50), pct(lat[1], 50)
	fmt.Fprintf(w, "lrap adds %s at p50 per invoke (%+.0f%%).\n", round(p50l-p50d), 100*float64(p50l-p50d)/float64(p50d))
	fmt.Fprintln(w, "Local emulator figure: loopback, this machine, the emulator's own overhead included; not a Lambda measurement.")
	return errors.Join(proxied.Stop(), direct.Stop())
}

// pct is the nearest-rank percentile of d (0 is the minimum).
func pct(d []time.Duration, p int) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(a, b int) bool { return s[a] < s[b] })
	i := (p*len(s)+99)/100 - 1
	return s[max(0, min(i, len(s)-1))]
}

func round(d time.Duration) time.Duration {
	if d < 0 {
		return -round(-d)
	}
	return d.Round(time.Microsecond)
}

func clip(b []byte, n int) string {
	s := strings.ReplaceAll(string(b), "\n", `\n`)
	if len(s) <= n {
		return s
	}
	return s[:n] + fmt.Sprintf("… (%d bytes)", len(b))
}
