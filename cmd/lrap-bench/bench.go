package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/lrap/lrap/internal/fakeapi"
)

// loadKey names one measured configuration of one target.
type loadKey struct {
	size, conc int
	target     string
}

// runData is everything one run measured.
type runData struct {
	load   map[loadKey]loadResult
	life   map[string][]lifecycleSample
	stream map[string][]streamSample
	big    map[string]bigStreamResult
}

// modeFor is the data plane a concurrency runs on.
func modeFor(conc int) fakeapi.Mode {
	if conc > 1 {
		return fakeapi.ManagedInstances
	}
	return fakeapi.Classic
}

// rotate returns ts rotated left by k, so that no target always goes first.
func rotate[T any](ts []T, k int) []T {
	k %= len(ts)
	return append(append([]T(nil), ts[k:]...), ts[:k]...)
}

func benchmark(cfg *config) error {
	root, err := findRoot()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "lrap-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	res := &results{
		Schema:  1,
		Started: started.UTC().Truncate(time.Second),
		Quick:   cfg.quick,
		Command: "go run ./cmd/lrap-bench " + strings.Join(os.Args[1:], " "),
		Machine: machineInfo{
			CPU: cpuModel(), Cores: runtime.NumCPU(), Kernel: kernelRelease(),
			OS: runtime.GOOS, Arch: runtime.GOARCH, BenchGo: runtime.Version(), MemMiB: memTotalMiB(),
		},
		Settings: settingsOf(cfg),
	}
	res.Command = strings.TrimSpace(res.Command)
	res.Revision = revision(root)

	direct := &target{name: "direct"}
	targets := []*target{direct}
	var lrapT, refT *target
	if cfg.profile != "" {
		if err := os.MkdirAll(cfg.profile, 0o755); err != nil {
			return err
		}
		self, err := os.Executable()
		if err != nil {
			return err
		}
		dir, _ := filepath.Abs(cfg.profile)
		lrapT = &target{name: "lrap", bin: self, args0: "/opt/extensions/lrap",
			env: []string{roleEnv + "=" + roleProfile}, profileDir: dir}
		targets = append(targets, lrapT)
		res.Machine.Go = runtime.Version()
	} else {
		logf("building lrap (%s) and the reference with CGO_ENABLED=0 -trimpath -ldflags \"-s -w\"", strings.Join(cfg.sizeArchs, ", "))
		b, err := buildAll(cfg.goCmd, root, tmp, runtime.GOARCH, cfg.sizeArchs)
		if err != nil {
			return err
		}
		res.Binaries = b.sizes
		res.Machine.Go = b.goVersion
		lrapT = &target{name: "lrap", bin: b.lrap, args0: "/opt/extensions/lrap"}
		refT = &target{name: "reference", bin: b.reference, args0: "/opt/extensions/refproxy"}
		targets = append(targets, lrapT, refT)
	}
	proxies := targets[1:]
	lrapT.env = append(lrapT.env, cfg.lrapEnv...)
	lrapT.wrap = cfg.wrap
	if refT != nil {
		refT.env = append(refT.env, cfg.refEnv...)
	}

	maxSize := 64 << 10
	for _, s := range cfg.payloads {
		maxSize = max(maxSize, s)
	}
	payload := makePayload(maxSize)
	small := payload[:1024]
	chunk := payload[:streamChunkSize]
	chunkMsg := chunkMessage(chunk)

	var runs []*runData
	for run := range cfg.runs {
		logf("run %d of %d", run+1, cfg.runs)
		rd := &runData{
			load:   map[loadKey]loadResult{},
			life:   map[string][]lifecycleSample{},
			stream: map[string][]streamSample{},
			big:    map[string]bigStreamResult{},
		}
		if !cfg.skipDetails {
			if err := measureLifecycle(cfg, rd, proxies, tmp, small, run == 0); err != nil {
				return err
			}
		}
		if err := measureRun(cfg, rd, targets, tmp, run, payload, small, chunkMsg, chunk); err != nil {
			return err
		}
		runs = append(runs, rd)
	}
	res.Seconds = time.Since(started).Seconds()
	res.assemble(cfg, targets, runs)
	if cfg.profile != "" {
		logf("profiles written to %s (lrap-Classic-*.pprof, lrap-ManagedInstances-*.pprof)", cfg.profile)
		return res.write(cfg.profile, "")
	}
	return res.write(cfg.out, cfg.doc)
}

// measureLifecycle times cold starts and shutdowns, the targets alternating.
func measureLifecycle(cfg *config, rd *runData, proxies []*target, tmp string, event []byte, first bool) error {
	if first {
		// One unrecorded start each: page cache, first exec of a new file.
		for _, t := range proxies {
			if _, err := coldStart(t, tmp, event); err != nil {
				return err
			}
		}
	}
	for i := range cfg.coldStarts {
		for _, t := range rotate(proxies, i) {
			s, err := coldStart(t, tmp, event)
			if err != nil {
				return err
			}
			rd.life[t.name] = append(rd.life[t.name], s)
		}
	}
	for _, t := range proxies {
		ls := rd.life[t.name]
		logf("cold start %-9s exec→listening %s, exec→register %s, exit after SHUTDOWN %s", t.name,
			medianDur(pick(ls, func(s lifecycleSample) time.Duration { return s.Listening })),
			medianDur(pick(ls, func(s lifecycleSample) time.Duration { return s.Register })),
			medianDur(pick(ls, func(s lifecycleSample) time.Duration { return s.Exit })))
	}
	return nil
}

func pick[T, U any](xs []T, f func(T) U) []U {
	out := make([]U, len(xs))
	for i, x := range xs {
		out[i] = f(x)
	}
	return out
}

// measureRun starts one environment per target and data plane, runs the
// load matrix in interleaved blocks, then the streaming measurements.
func measureRun(cfg *config, rd *runData, targets []*target, tmp string, run int,
	payload, small, chunkMsg, chunk []byte) error {
	modes := []fakeapi.Mode{fakeapi.Classic}
	for _, c := range cfg.concs {
		if c > 1 {
			modes = append(modes, fakeapi.ManagedInstances)
			break
		}
	}
	type envKey struct {
		target string
		mode   fakeapi.Mode
	}
	envs := map[envKey]*env{}
	workers := map[envKey][]*runtimeWorker{}
	defer func() {
		for _, e := range envs {
			e.stop()
		}
	}()
	maxConc := 1
	for _, c := range cfg.concs {
		maxConc = max(maxConc, c)
	}
	for _, t := range targets {
		for _, m := range modes {
			e, err := startEnv(t, m, tmp)
			if err != nil {
				return err
			}
			k := envKey{t.name, m}
			envs[k] = e
			for range maxConc {
				workers[k] = append(workers[k], newWorker(e, payload))
			}
		}
	}

	blockWarm := max(cfg.warmup/5, 5*time.Millisecond)
	for _, conc := range cfg.concs {
		for _, size := range cfg.payloads {
			mode := modeFor(conc)
			for _, t := range targets {
				k := envKey{t.name, mode}
				st, err := runBlock(envs[k], workers[k], size, conc, cfg.warmup, 0)
				if err != nil {
					return err
				}
				envs[k].cycles += st.cycles
			}
			acc := map[string]*accum{}
			for b := range cfg.blocks {
				for _, t := range rotate(targets, b+run) {
					k := envKey{t.name, mode}
					st, err := runBlock(envs[k], workers[k], size, conc, blockWarm, cfg.block)
					if err != nil {
						return err
					}
					if acc[t.name] == nil {
						acc[t.name] = &accum{}
					}
					acc[t.name].add(st)
					envs[k].cycles += st.cycles
				}
			}
			var line []string
			for _, t := range targets {
				r := acc[t.name].result()
				rd.load[loadKey{size, conc, t.name}] = r
				line = append(line, fmt.Sprintf("%s p50 %.0fµs p99 %.0fµs %.0f/s", t.name, us(r.P50), us(r.P99), r.Throughput))
			}
			logf("%-7s conc %d: %s", sizeLabel(int64(size)), conc, strings.Join(line, ", "))
		}
	}
	if cfg.skipDetails {
		return nil
	}

	// Streaming: time to first byte and chunk by chunk forwarding.
	for _, t := range targets {
		if _, err := streamOnce(envs[envKey{t.name, fakeapi.Classic}], small, chunkMsg); err != nil {
			return err
		}
	}
	for i := range cfg.streams {
		for _, t := range rotate(targets, i+run) {
			s, err := streamOnce(envs[envKey{t.name, fakeapi.Classic}], small, chunkMsg)
			if err != nil {
				return err
			}
			rd.stream[t.name] = append(rd.stream[t.name], s)
		}
	}
	var line []string
	for _, t := range targets {
		ss := rd.stream[t.name]
		line = append(line, fmt.Sprintf("%s TTFB %.0fµs", t.name,
			us(medianDur(pick(ss, func(s streamSample) time.Duration { return s.TTFB })))))
	}
	logf("streaming: %s", strings.Join(line, ", "))

	// A large streamed response: peak RSS of the proxies.
	line = line[:0]
	for _, t := range rotate(targets, run) {
		r, err := bigStream(envs[envKey{t.name, fakeapi.Classic}], small, chunk, cfg.bigStream)
		if err != nil {
			return err
		}
		rd.big[t.name] = r
		line = append(line, fmt.Sprintf("%s %.0f MB/s peak RSS %.1f MiB", t.name,
			float64(cfg.bigStream)/1e6/r.Duration.Seconds(), mib(r.PeakRSS)))
	}
	logf("%s stream: %s", sizeLabel(cfg.bigStream), strings.Join(line, ", "))

	for k, e := range envs {
		if len(e.tgt.wrap) > 0 {
			logf("%s (%s): %d load cycles (plus %d streamed responses)", e.tgt.name, e.mode, e.cycles, cfg.streams+2)
		}
		if _, err := e.shutdown(5 * time.Second); err != nil {
			return err
		}
		e.stop()
		delete(envs, k)
	}
	return nil
}

// makePayload returns n bytes of JSON-like text, {"data":"abcd…"}. Only its
// size matters: neither the fake nor the proxies parse events.
func makePayload(n int) []byte {
	if n < 16 {
		return []byte(strings.Repeat(" ", n))
	}
	b := make([]byte, n)
	copy(b, `{"data":"`)
	for i := 9; i < n-2; i++ {
		b[i] = 'a' + byte(i%26)
	}
	copy(b[n-2:], `"}`)
	return b
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
