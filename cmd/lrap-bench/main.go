// Command lrap-bench measures what lrap costs a Lambda function, against no
// proxy at all (direct) and against the proxy a user would write instead
// (reference: a plain httputil.ReverseProxy, see bench/refproxy).
//
// It serves the fake Runtime + Extensions API in-process on loopback, starts
// lrap and the reference as separate processes the way Lambda starts an
// external extension (AWS_LAMBDA_RUNTIME_API, LRAP_LISTENER_PORT,
// registration for SHUTDOWN) and plays the runtime: GET /next, read the
// event, POST a response of the same size, read the 202. Targets run in
// interleaved blocks within each run so that machine drift hits all of them
// alike; every figure is the median of the runs, every ratio is taken within
// a run.
//
// Usage:
//
//	go run ./cmd/lrap-bench                # full run, about 1.5 minutes on 2 cores
//	go run ./cmd/lrap-bench -quick         # smoke run, a few seconds
//	go run ./cmd/lrap-bench -doc BENCHMARKS.md
//
// It writes results.json, results.md and overhead.svg to -out, and with -doc
// replaces the generated section of that Markdown file. Linux only (it reads
// /proc for CPU time and peak RSS).
//
// -profile dir runs lrap inside a copy of this binary with CPU and
// allocation profiling and writes the profiles to dir.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

// config is the parsed command line.
type config struct {
	quick       bool
	runs        int
	blocks      int
	block       time.Duration
	warmup      time.Duration
	payloads    []int
	concs       []int
	coldStarts  int
	streams     int
	bigStream   int64
	sizeArchs   []string
	out         string
	doc         string
	goCmd       string
	profile     string
	skipDetails bool // profile mode: load only
	lrapEnv     []string
	refEnv      []string
	wrap        []string
}

func main() {
	if role := os.Getenv(roleEnv); role != "" {
		os.Exit(runRole(role))
	}
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "lrap-bench:", err)
		os.Exit(2)
	}
	// The load generator's own garbage collection is noise for every target
	// alike; make it rare.
	debug.SetGCPercent(400)
	if err := benchmark(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "lrap-bench:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (*config, error) {
	fs := flag.NewFlagSet("lrap-bench", flag.ContinueOnError)
	var (
		cfg       config
		payloads  string
		concs     string
		bigStream string
		archs     string
		lrapEnv   string
		refEnv    string
		wrap      string
	)
	fs.BoolVar(&cfg.quick, "quick", false, "smoke run: one short run, fewer sizes, no arm64 build (a few seconds)")
	fs.IntVar(&cfg.runs, "runs", 3, "independent runs; figures are their medians")
	fs.IntVar(&cfg.blocks, "blocks", 3, "interleaved blocks per target and configuration in each run")
	fs.DurationVar(&cfg.block, "block", 250*time.Millisecond, "timed length of one block")
	fs.DurationVar(&cfg.warmup, "warmup", 100*time.Millisecond, "untimed warm-up per target and configuration in each run")
	fs.StringVar(&payloads, "payloads", "1KiB,64KiB,1MiB,6MiB", "event and response sizes")
	fs.StringVar(&concs, "concurrency", "1,8", "runtime workers; above 1 uses the Managed Instances data plane")
	fs.IntVar(&cfg.coldStarts, "coldstarts", 10, "cold starts per target in each run")
	fs.IntVar(&cfg.streams, "streams", 6, "streamed responses per target in each run (time to first byte)")
	fs.StringVar(&bigStream, "bigstream", "64MiB", "size of the large streamed response (peak RSS)")
	fs.StringVar(&archs, "arch", "amd64,arm64", "architectures to build lrap for, for the size report")
	fs.StringVar(&cfg.out, "out", "", "results directory (default bench/results/latest, or bench/results/quick with -quick)")
	fs.StringVar(&cfg.doc, "doc", "", "Markdown file whose generated section (between lrap-bench markers) is replaced with the results")
	fs.StringVar(&cfg.goCmd, "go", "go", "go command used to build lrap and the reference")
	fs.StringVar(&cfg.profile, "profile", "", "write CPU and allocation profiles of lrap under load to this directory (runs lrap in-process; load only)")
	fs.StringVar(&lrapEnv, "lrap-env", "", "experiments: extra environment for lrap, comma-separated KEY=VALUE (e.g. GOMAXPROCS=1)")
	fs.StringVar(&refEnv, "ref-env", "", "experiments: extra environment for the reference, comma-separated KEY=VALUE")
	fs.StringVar(&wrap, "wrap", "", "experiments: run lrap under this command, e.g. \"strace -c -f -o /tmp/lrap.strace\" (its CPU and RSS figures are then the wrapper's)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if cfg.quick {
		defaults := map[string]func(){
			"runs":        func() { cfg.runs = 1 },
			"blocks":      func() { cfg.blocks = 1 },
			"block":       func() { cfg.block = 60 * time.Millisecond },
			"warmup":      func() { cfg.warmup = 30 * time.Millisecond },
			"payloads":    func() { payloads = "1KiB,1MiB" },
			"coldstarts":  func() { cfg.coldStarts = 3 },
			"streams":     func() { cfg.streams = 2 },
			"bigstream":   func() { bigStream = "16MiB" },
			"arch":        func() { archs = runtime.GOARCH },
			"concurrency": func() {},
		}
		for name, apply := range defaults {
			if !set[name] {
				apply()
			}
		}
	}
	if cfg.out == "" {
		cfg.out = "bench/results/latest"
		if cfg.quick {
			cfg.out = "bench/results/quick"
		}
	}
	var err error
	if cfg.payloads, err = parseSizes(payloads); err != nil {
		return nil, fmt.Errorf("-payloads: %w", err)
	}
	for f := range strings.SplitSeq(concs, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 64 {
			return nil, fmt.Errorf("-concurrency: %q is not a number from 1 to 64", f)
		}
		cfg.concs = append(cfg.concs, n)
	}
	big, err := parseSizes(bigStream)
	if err != nil || len(big) != 1 {
		return nil, fmt.Errorf("-bigstream: %q is not one size", bigStream)
	}
	cfg.bigStream = int64(big[0])
	for a := range strings.SplitSeq(archs, ",") {
		if a = strings.TrimSpace(a); a != "" {
			cfg.sizeArchs = append(cfg.sizeArchs, a)
		}
	}
	if cfg.runs < 1 || cfg.blocks < 1 || cfg.block <= 0 || cfg.coldStarts < 1 || cfg.streams < 1 {
		return nil, fmt.Errorf("-runs, -blocks, -block, -coldstarts and -streams must be positive")
	}
	cfg.lrapEnv, cfg.refEnv, cfg.wrap = splitList(lrapEnv, ","), splitList(refEnv, ","), strings.Fields(wrap)
	if cfg.profile != "" {
		cfg.runs = 1
		cfg.skipDetails = true
	}
	return &cfg, nil
}

// parseSizes parses a comma-separated list like 1KiB,64KiB,1MiB. K, KB and
// KiB all mean 1024, M, MB and MiB 1024².
func parseSizes(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		num := strings.TrimRight(f, "KMGiBb")
		unit := strings.ToUpper(strings.TrimSuffix(strings.TrimSuffix(f[len(num):], "B"), "b"))
		n, err := strconv.Atoi(num)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a size", f)
		}
		switch strings.TrimSuffix(unit, "I") {
		case "":
		case "K":
			n <<= 10
		case "M":
			n <<= 20
		default:
			return nil, fmt.Errorf("%q is not a size", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func splitList(s, sep string) []string {
	var out []string
	for f := range strings.SplitSeq(s, sep) {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// sizeLabel writes n bytes the way the reports do: 1 KiB, 64 KiB, 6 MiB.
func sizeLabel(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " B"
}

var started = time.Now()

// logf reports progress on stderr.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%5.1fs] %s\n", time.Since(started).Seconds(), fmt.Sprintf(format, args...))
}
