package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/lrap/lrap/internal/fakeapi"
)

// results is what a benchmark writes (results.json) and renders.
type results struct {
	Schema    int           `json:"schema"`
	Started   time.Time     `json:"started"`
	Seconds   float64       `json:"duration_s"`
	Quick     bool          `json:"quick"`
	Command   string        `json:"command"`
	Revision  string        `json:"revision,omitempty"`
	Machine   machineInfo   `json:"machine"`
	Settings  settings      `json:"settings"`
	Binaries  []binarySize  `json:"binaries,omitempty"`
	Load      []loadEntry   `json:"load"`
	Lifecycle []lifeEntry   `json:"lifecycle,omitempty"`
	Streaming []streamEntry `json:"streaming,omitempty"`
	BigStream []bigEntry    `json:"big_stream,omitempty"`
	Targets   []targetCheck `json:"targets"`
}

type settings struct {
	Runs             int     `json:"runs"`
	Blocks           int     `json:"blocks"`
	BlockMs          float64 `json:"block_ms"`
	WarmupMs         float64 `json:"warmup_ms"`
	Payloads         []int   `json:"payload_bytes"`
	Concurrency      []int   `json:"concurrency"`
	ColdStarts       int     `json:"cold_starts_per_run"`
	Streams          int     `json:"streams_per_run"`
	StreamChunks     int     `json:"stream_chunks"`
	StreamChunkBytes int     `json:"stream_chunk_bytes"`
	StreamGapMs      float64 `json:"stream_gap_ms"`
	BigStreamBytes   int64   `json:"big_stream_bytes"`
}

func settingsOf(cfg *config) settings {
	return settings{
		Runs: cfg.runs, Blocks: cfg.blocks,
		BlockMs: ms(cfg.block), WarmupMs: ms(cfg.warmup),
		Payloads: cfg.payloads, Concurrency: cfg.concs,
		ColdStarts: cfg.coldStarts, Streams: cfg.streams,
		StreamChunks: streamChunks, StreamChunkBytes: streamChunkSize, StreamGapMs: ms(streamGap),
		BigStreamBytes: cfg.bigStream,
	}
}

// loadFigures are one target's figures for one configuration: of one run,
// or the medians of all runs.
type loadFigures struct {
	P50us              float64 `json:"p50_us"`
	P99us              float64 `json:"p99_us"`
	OverheadP50us      float64 `json:"overhead_p50_us"`
	OverheadP99us      float64 `json:"overhead_p99_us"`
	Throughput         float64 `json:"throughput_per_s"`
	ThroughputVsDirect float64 `json:"throughput_vs_direct"`
	CPUmsPer1000       float64 `json:"cpu_ms_per_1000,omitempty"`
	PeakRSSMiB         float64 `json:"peak_rss_mib,omitempty"`
	Samples            int     `json:"samples"`
}

type loadEntry struct {
	PayloadBytes int           `json:"payload_bytes"`
	Concurrency  int           `json:"concurrency"`
	Mode         string        `json:"mode"`
	Target       string        `json:"target"`
	Median       loadFigures   `json:"median"`
	Runs         []loadFigures `json:"runs"`
}

type lifeFigures struct {
	ListeningMs float64 `json:"exec_to_listening_ms"`
	RegisterMs  float64 `json:"exec_to_register_ms"`
	ReadyMs     float64 `json:"exec_to_init_done_ms"`
	ExitMs      float64 `json:"shutdown_to_exit_ms"`
	Samples     int     `json:"samples"`
}

type lifeEntry struct {
	Target string        `json:"target"`
	Median lifeFigures   `json:"median"`
	Runs   []lifeFigures `json:"runs"`
}

type streamFigures struct {
	TTFBus          float64 `json:"ttfb_us"`
	AddedTTFBus     float64 `json:"added_ttfb_us"`
	MaxChunkDelayUs float64 `json:"max_chunk_delay_us"`
	AsTheyCome      bool    `json:"every_chunk_as_it_came"`
	Samples         int     `json:"samples"`
}

type streamEntry struct {
	Target string          `json:"target"`
	Median streamFigures   `json:"median"`
	Runs   []streamFigures `json:"runs"`
}

type bigFigures struct {
	Seconds    float64 `json:"seconds"`
	MBps       float64 `json:"mb_per_s"`
	PeakRSSMiB float64 `json:"peak_rss_mib,omitempty"`
}

type bigEntry struct {
	Target string       `json:"target"`
	Bytes  int64        `json:"bytes"`
	Median bigFigures   `json:"median"`
	Runs   []bigFigures `json:"runs"`
}

// targetCheck is one row of the targets table.
type targetCheck struct {
	Figure string `json:"figure"`
	Target string `json:"target"`
	Value  string `json:"measured"`
	// Status is met, missed or not measured.
	Status string `json:"status"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// medianOf returns the median of f over xs.
func medianOf[T any](xs []T, f func(T) float64) float64 {
	return median(pick(xs, f))
}

// ratio is a/b, with +Inf for a positive a over a non-positive b.
func ratio(a, b float64) float64 {
	switch {
	case b > 0:
		return a / b
	case a > 0:
		return math.Inf(1)
	}
	return 0
}

// assemble turns the runs into the report: per-run figures, their medians
// and the target checks.
func (r *results) assemble(cfg *config, targets []*target, runs []*runData) {
	fig := map[loadKey][]loadFigures{}
	for _, conc := range cfg.concs {
		for _, size := range cfg.payloads {
			for _, t := range targets {
				k := loadKey{size, conc, t.name}
				var per []loadFigures
				for _, rd := range runs {
					lr, d := rd.load[k], rd.load[loadKey{size, conc, "direct"}]
					f := loadFigures{
						P50us: us(lr.P50), P99us: us(lr.P99),
						Throughput: lr.Throughput, ThroughputVsDirect: ratio(lr.Throughput, d.Throughput),
						CPUmsPer1000: ms(lr.CPUPer1000), PeakRSSMiB: mib(lr.PeakRSS), Samples: lr.Samples,
					}
					if t.name != "direct" {
						f.OverheadP50us = us(lr.P50 - d.P50)
						f.OverheadP99us = us(lr.P99 - d.P99)
					}
					per = append(per, f)
				}
				fig[k] = per
				r.Load = append(r.Load, loadEntry{
					PayloadBytes: size, Concurrency: conc, Mode: modeFor(conc).String(), Target: t.name,
					Runs: per, Median: medianFigures(per),
				})
			}
		}
	}
	if !cfg.skipDetails {
		for _, t := range targets[1:] {
			var per []lifeFigures
			for _, rd := range runs {
				ls := rd.life[t.name]
				per = append(per, lifeFigures{
					ListeningMs: ms(medianDur(pick(ls, func(s lifecycleSample) time.Duration { return s.Listening }))),
					RegisterMs:  ms(medianDur(pick(ls, func(s lifecycleSample) time.Duration { return s.Register }))),
					ReadyMs:     ms(medianDur(pick(ls, func(s lifecycleSample) time.Duration { return s.Ready }))),
					ExitMs:      ms(medianDur(pick(ls, func(s lifecycleSample) time.Duration { return s.Exit }))),
					Samples:     len(ls),
				})
			}
			r.Lifecycle = append(r.Lifecycle, lifeEntry{Target: t.name, Runs: per, Median: lifeFigures{
				ListeningMs: medianOf(per, func(f lifeFigures) float64 { return f.ListeningMs }),
				RegisterMs:  medianOf(per, func(f lifeFigures) float64 { return f.RegisterMs }),
				ReadyMs:     medianOf(per, func(f lifeFigures) float64 { return f.ReadyMs }),
				ExitMs:      medianOf(per, func(f lifeFigures) float64 { return f.ExitMs }),
				Samples:     sumOf(per, func(f lifeFigures) int { return f.Samples }),
			}})
		}
		for _, t := range targets {
			var per []streamFigures
			for _, rd := range runs {
				ttfb := func(name string) time.Duration {
					return medianDur(pick(rd.stream[name], func(s streamSample) time.Duration { return s.TTFB }))
				}
				ss := rd.stream[t.name]
				f := streamFigures{
					TTFBus:     us(ttfb(t.name)),
					AsTheyCome: true,
					Samples:    len(ss),
				}
				if t.name != "direct" {
					f.AddedTTFBus = us(ttfb(t.name) - ttfb("direct"))
				}
				for _, s := range ss {
					f.MaxChunkDelayUs = max(f.MaxChunkDelayUs, us(s.MaxChunkDelay))
					f.AsTheyCome = f.AsTheyCome && s.AsTheyCome
				}
				per = append(per, f)
			}
			r.Streaming = append(r.Streaming, streamEntry{Target: t.name, Runs: per, Median: streamFigures{
				TTFBus:          medianOf(per, func(f streamFigures) float64 { return f.TTFBus }),
				AddedTTFBus:     medianOf(per, func(f streamFigures) float64 { return f.AddedTTFBus }),
				MaxChunkDelayUs: medianOf(per, func(f streamFigures) float64 { return f.MaxChunkDelayUs }),
				AsTheyCome:      !slices.ContainsFunc(per, func(f streamFigures) bool { return !f.AsTheyCome }),
				Samples:         sumOf(per, func(f streamFigures) int { return f.Samples }),
			}})
			var big []bigFigures
			for _, rd := range runs {
				b := rd.big[t.name]
				big = append(big, bigFigures{
					Seconds: b.Duration.Seconds(), MBps: float64(cfg.bigStream) / 1e6 / b.Duration.Seconds(),
					PeakRSSMiB: mib(b.PeakRSS),
				})
			}
			r.BigStream = append(r.BigStream, bigEntry{Target: t.name, Bytes: cfg.bigStream, Runs: big, Median: bigFigures{
				Seconds:    medianOf(big, func(f bigFigures) float64 { return f.Seconds }),
				MBps:       medianOf(big, func(f bigFigures) float64 { return f.MBps }),
				PeakRSSMiB: medianOf(big, func(f bigFigures) float64 { return f.PeakRSSMiB }),
			}})
		}
	}
	r.Targets = r.checks(cfg, fig)
}

func sumOf[T any](xs []T, f func(T) int) int {
	n := 0
	for _, x := range xs {
		n += f(x)
	}
	return n
}

func medianFigures(per []loadFigures) loadFigures {
	return loadFigures{
		P50us:              medianOf(per, func(f loadFigures) float64 { return f.P50us }),
		P99us:              medianOf(per, func(f loadFigures) float64 { return f.P99us }),
		OverheadP50us:      medianOf(per, func(f loadFigures) float64 { return f.OverheadP50us }),
		OverheadP99us:      medianOf(per, func(f loadFigures) float64 { return f.OverheadP99us }),
		Throughput:         medianOf(per, func(f loadFigures) float64 { return f.Throughput }),
		ThroughputVsDirect: medianOf(per, func(f loadFigures) float64 { return f.ThroughputVsDirect }),
		CPUmsPer1000:       medianOf(per, func(f loadFigures) float64 { return f.CPUmsPer1000 }),
		PeakRSSMiB:         medianOf(per, func(f loadFigures) float64 { return f.PeakRSSMiB }),
		Samples:            sumOf(per, func(f loadFigures) int { return f.Samples }),
	}
}

// checks evaluates the targets on the medians of the runs; ratios
// are taken within each run first.
func (r *results) checks(cfg *config, fig map[loadKey][]loadFigures) []targetCheck {
	var out []targetCheck
	status := func(measured, ok bool) string {
		switch {
		case !measured:
			return "not measured"
		case ok:
			return "met"
		}
		return "missed"
	}
	has := func(size, conc int) bool {
		return slices.Contains(cfg.payloads, size) && slices.Contains(cfg.concs, conc)
	}
	// perRun returns f(lrap, other) for each run of a configuration.
	perRun := func(size, conc int, other string, f func(l, o loadFigures) float64) []float64 {
		ls, os := fig[loadKey{size, conc, "lrap"}], fig[loadKey{size, conc, other}]
		var v []float64
		for i := range min(len(ls), len(os)) {
			v = append(v, f(ls[i], os[i]))
		}
		return v
	}
	med := func(size, conc int, name string) loadFigures { return medianFigures(fig[loadKey{size, conc, name}]) }
	hasRef := slices.ContainsFunc(r.Load, func(e loadEntry) bool { return e.Target == "reference" })
	const kib, mibB = 1 << 10, 1 << 20
	concN := 8
	if !slices.Contains(cfg.concs, 8) {
		concN = slices.Max(cfg.concs)
	}

	{ // 1. overhead vs the reference's, small payloads.
		var parts []string
		measured, ok := hasRef, true
		for _, size := range []int{kib, 64 * kib} {
			if !has(size, 1) {
				measured = false
				continue
			}
			q := median(perRun(size, 1, "reference", func(l, o loadFigures) float64 { return ratio(l.OverheadP50us, o.OverheadP50us) }))
			ok = ok && q <= 0.5
			parts = append(parts, fmt.Sprintf("%s: lrap +%.1f µs, reference +%.1f µs (%s)", sizeLabel(int64(size)),
				med(size, 1, "lrap").OverheadP50us, med(size, 1, "reference").OverheadP50us, fmtRatio(q)))
		}
		out = append(out, targetCheck{"overhead p50 over direct, 1 KiB and 64 KiB, conc 1", "≤ 0.5× the reference's overhead",
			strings.Join(parts, "; "), status(measured, ok)})
	}
	{ // 2. overhead on 6 MiB vs the direct cycle.
		size := 6 * mibB
		c := targetCheck{Figure: "overhead p50 over direct, 6 MiB, conc 1", Target: "≤ 0.5× the direct cycle time", Status: status(false, false)}
		if has(size, 1) {
			q := median(perRun(size, 1, "direct", func(l, d loadFigures) float64 { return ratio(l.OverheadP50us, d.P50us) }))
			c.Value = fmt.Sprintf("lrap +%.0f µs on a direct cycle of %.0f µs (%s); reference +%.0f µs", med(size, 1, "lrap").OverheadP50us,
				med(size, 1, "direct").P50us, fmtRatio(q), med(size, 1, "reference").OverheadP50us)
			c.Status = status(true, q <= 0.5)
		}
		out = append(out, c)
	}
	{ // 3. throughput at concurrency 8.
		var parts []string
		measured, ok := true, true
		for _, size := range []int{kib, mibB} {
			if !has(size, concN) || concN == 1 {
				measured = false
				continue
			}
			q := median(perRun(size, concN, "direct", func(l, _ loadFigures) float64 { return l.ThroughputVsDirect }))
			ok = ok && q >= 0.6
			parts = append(parts, fmt.Sprintf("%s: lrap %.0f/s = %s of direct %.0f/s (reference %s)", sizeLabel(int64(size)),
				med(size, concN, "lrap").Throughput, fmtRatio(q), med(size, concN, "direct").Throughput,
				fmtRatio(med(size, concN, "reference").ThroughputVsDirect)))
		}
		out = append(out, targetCheck{fmt.Sprintf("throughput at conc %d, 1 KiB and 1 MiB", concN), "≥ 0.6× direct",
			strings.Join(parts, "; "), status(measured, ok)})
	}
	{ // 4. CPU per 1000 invocations.
		var parts []string
		measured, ok := hasRef, true
		for _, size := range []int{kib, 6 * mibB} {
			if !has(size, 1) {
				measured = false
				continue
			}
			q := median(perRun(size, 1, "reference", func(l, o loadFigures) float64 { return ratio(l.CPUmsPer1000, o.CPUmsPer1000) }))
			ok = ok && q <= 0.5
			parts = append(parts, fmt.Sprintf("%s: lrap %.0f ms, reference %.0f ms (%s)", sizeLabel(int64(size)),
				med(size, 1, "lrap").CPUmsPer1000, med(size, 1, "reference").CPUmsPer1000, fmtRatio(q)))
		}
		out = append(out, targetCheck{"CPU per 1000 invocations, 1 KiB and 6 MiB, conc 1", "≤ 0.5× the reference",
			strings.Join(parts, "; "), status(measured, ok)})
	}
	{ // 5. peak RSS.
		var parts []string
		measured, ok := true, true
		if size := 6 * mibB; has(size, concN) && concN > 1 {
			v := med(size, concN, "lrap").PeakRSSMiB
			ok = ok && v <= 12
			parts = append(parts, fmt.Sprintf("6 MiB at conc %d: %.1f MiB (reference %.1f MiB)", concN, v, med(size, concN, "reference").PeakRSSMiB))
		} else {
			measured = false
		}
		if i := slices.IndexFunc(r.BigStream, func(e bigEntry) bool { return e.Target == "lrap" }); i >= 0 {
			v := r.BigStream[i].Median.PeakRSSMiB
			ok = ok && v <= 12
			ref := ""
			if j := slices.IndexFunc(r.BigStream, func(e bigEntry) bool { return e.Target == "reference" }); j >= 0 {
				ref = fmt.Sprintf(" (reference %.1f MiB)", r.BigStream[j].Median.PeakRSSMiB)
			}
			parts = append(parts, fmt.Sprintf("%s stream: %.1f MiB%s", sizeLabel(cfg.bigStream), v, ref))
			measured = measured && cfg.bigStream >= 64*mibB
		} else {
			measured = false
		}
		out = append(out, targetCheck{"peak RSS during 6 MiB at conc 8, and during a 64 MiB streamed response", "≤ 12 MiB",
			strings.Join(parts, "; "), status(measured, ok)})
	}
	{ // 6. streaming.
		c := targetCheck{Figure: "streaming TTFB added", Target: "≤ 0.3 ms, every chunk forwarded as it arrives", Status: status(false, false)}
		if i := slices.IndexFunc(r.Streaming, func(e streamEntry) bool { return e.Target == "lrap" }); i >= 0 {
			m := r.Streaming[i].Median
			c.Value = fmt.Sprintf("+%.0f µs; every chunk as it came: %s (slowest chunk %.0f µs)", m.AddedTTFBus, yesNo(m.AsTheyCome), m.MaxChunkDelayUs)
			if j := slices.IndexFunc(r.Streaming, func(e streamEntry) bool { return e.Target == "reference" }); j >= 0 {
				c.Value += fmt.Sprintf("; reference +%.0f µs", r.Streaming[j].Median.AddedTTFBus)
			}
			c.Status = status(true, m.AddedTTFBus <= 300 && m.AsTheyCome)
		}
		out = append(out, c)
	}
	{ // 7. cold start.
		c := targetCheck{Figure: "cold start, exec → listening", Target: "≤ 0.5× the reference's", Status: status(false, false)}
		li := slices.IndexFunc(r.Lifecycle, func(e lifeEntry) bool { return e.Target == "lrap" })
		ri := slices.IndexFunc(r.Lifecycle, func(e lifeEntry) bool { return e.Target == "reference" })
		if li >= 0 && ri >= 0 {
			l, o := r.Lifecycle[li], r.Lifecycle[ri]
			var qs []float64
			for i := range min(len(l.Runs), len(o.Runs)) {
				qs = append(qs, ratio(l.Runs[i].ListeningMs, o.Runs[i].ListeningMs))
			}
			q := median(qs)
			c.Value = fmt.Sprintf("lrap %.2f ms, reference %.2f ms (%s)", l.Median.ListeningMs, o.Median.ListeningMs, fmtRatio(q))
			c.Status = status(true, q <= 0.5)
		}
		out = append(out, c)
	}
	{ // 8. binary size.
		c := targetCheck{Figure: "binary size, stripped, linux/amd64", Target: "≤ 7 MiB", Status: status(false, false)}
		for _, b := range r.Binaries {
			if b.Name == "lrap" && b.Arch == "amd64" {
				c.Value = fmt.Sprintf("%.2f MiB (%d bytes)", mib(b.Bytes), b.Bytes)
				c.Status = status(true, b.Bytes <= 7<<20)
			}
		}
		out = append(out, c)
	}
	return out
}

func fmtRatio(q float64) string {
	if math.IsInf(q, 1) {
		return "∞×"
	}
	return fmt.Sprintf("%.2f×", q)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// write writes results.json, results.md and overhead.svg into dir and, if
// doc is set, replaces the generated section of doc.
func (r *results) write(dir, doc string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	files := map[string][]byte{
		"results.json": append(js, '\n'),
		"results.md":   []byte("# lrap-bench results\n\n" + r.markdown("##", "overhead.svg")),
		"overhead.svg": r.svg(),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	logf("wrote %s", filepath.Join(dir, "results.{json,md}, overhead.svg"))
	if doc == "" {
		return nil
	}
	absDir, _ := filepath.Abs(dir)
	absDoc, _ := filepath.Abs(doc)
	chart, err := filepath.Rel(filepath.Dir(absDoc), filepath.Join(absDir, "overhead.svg"))
	if err != nil {
		return err
	}
	if err := replaceSection(doc, r.markdown("###", filepath.ToSlash(chart))); err != nil {
		return err
	}
	logf("updated %s", doc)
	return nil
}

const (
	beginMarker = "<!-- lrap-bench:begin (generated by go run ./cmd/lrap-bench -doc; do not edit by hand) -->"
	endMarker   = "<!-- lrap-bench:end -->"
)

// replaceSection replaces what lies between the markers in doc.
func replaceSection(doc, content string) error {
	b, err := os.ReadFile(doc)
	if err != nil {
		return err
	}
	s := string(b)
	i := strings.Index(s, beginMarker)
	j := strings.Index(s, endMarker)
	if i < 0 || j < i {
		return fmt.Errorf("%s has no generated section: add the lines\n%s\n%s", doc, beginMarker, endMarker)
	}
	s = s[:i+len(beginMarker)] + "\n" + content + s[j:]
	return os.WriteFile(doc, []byte(s), 0o644)
}

// markdown renders the results with headings at level h.
func (r *results) markdown(h, chart string) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	m := r.Machine
	w("Run of %s: %s, %d cores, %d MiB RAM, Linux %s, %s/%s; binaries built with %s (lrap-bench ran on %s).\n",
		r.Started.Format("2006-01-02 15:04 UTC"), m.CPU, m.Cores, m.MemMiB, m.Kernel, m.OS, m.Arch, m.Go, m.BenchGo)
	st := r.Settings
	w("%d run(s); in each, %d interleaved block(s) of %.0f ms per target and configuration after a %.0f ms warm-up; "+
		"figures are medians of the runs, ratios are taken within a run. The whole benchmark took %.0f s.\n\n",
		st.Runs, st.Blocks, st.BlockMs, st.WarmupMs, r.Seconds)
	w("Command: `%s`", r.Command)
	if r.Revision != "" {
		w(" at revision %s", r.Revision)
	}
	w("\n\n")
	if r.Quick {
		w("**Quick smoke run: too short for the figures to mean much.**\n\n")
	}

	w("%s Targets\n\n| figure | target | measured | status |\n|---|---|---|---|\n", h)
	for _, c := range r.Targets {
		mark := map[string]string{"met": "**met**", "missed": "**missed**"}[c.Status]
		if mark == "" {
			mark = c.Status
		}
		w("| %s | %s | %s | %s |\n", c.Figure, c.Target, orDash(c.Value), mark)
	}

	w("\n%s Runtime cycles\n\n", h)
	w("One cycle: `GET /next`, read the event, `POST /response` with as many bytes, read the `202`. " +
		"Overhead is the target's figure minus direct's in the same run. CPU and peak RSS are the proxy process's " +
		"(`/proc/<pid>/stat` utime+stime, `VmHWM`); conc 1 runs on the classic data plane, higher concurrency on Managed Instances.\n\n")
	w("| payload | conc | target | p50 | p99 | p50 overhead | p99 overhead | throughput | vs direct | CPU / 1000 inv | peak RSS |\n")
	w("|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, e := range r.Load {
		f := e.Median
		ovh50, ovh99, cpu, rss := "", "", "", ""
		if e.Target != "direct" {
			ovh50, ovh99 = fmtSignedUs(f.OverheadP50us), fmtSignedUs(f.OverheadP99us)
			cpu, rss = fmt.Sprintf("%.0f ms", f.CPUmsPer1000), fmt.Sprintf("%.1f MiB", f.PeakRSSMiB)
		}
		w("| %s | %d | %s | %s | %s | %s | %s | %.0f/s | %.2f | %s | %s |\n", sizeLabel(int64(e.PayloadBytes)), e.Concurrency, e.Target,
			fmtUs(f.P50us), fmtUs(f.P99us), orDash(ovh50), orDash(ovh99), f.Throughput, f.ThroughputVsDirect, orDash(cpu), orDash(rss))
	}
	w("\n![p50 overhead over direct by payload size, lrap and reference](%s)\n", chart)

	if len(r.Lifecycle) > 0 {
		w("\n%s Start and stop\n\n", h)
		w("Each start is a fresh process in front of a fresh fake API, timed from just before the exec; the port is polled every 50 µs. " +
			"Exit is timed from SHUTDOWN, sent after one invocation with the runtime's connections closed.\n\n")
		w("| target | exec → listening | exec → register | exec → init done | exit after SHUTDOWN | starts |\n|---|--:|--:|--:|--:|--:|\n")
		for _, e := range r.Lifecycle {
			f := e.Median
			w("| %s | %.2f ms | %.2f ms | %.2f ms | %.2f ms | %d |\n", e.Target, f.ListeningMs, f.RegisterMs, f.ReadyMs, f.ExitMs, f.Samples)
		}
	}
	if len(r.Streaming) > 0 {
		w("\n%s Streaming\n\n", h)
		w("A streamed `/response` (chunked, trailers declared, `Lambda-Runtime-Function-Response-Mode: streaming`) of %d × %s written %.0f ms apart. "+
			"TTFB: from the write of the request head with the first chunk to the fake API's first read of body bytes. "+
			"A chunk is forwarded as it came when all of it reached the fake before the next one was written.\n\n",
			r.Settings.StreamChunks, sizeLabel(int64(r.Settings.StreamChunkBytes)), r.Settings.StreamGapMs)
		w("| target | TTFB | added | slowest chunk | every chunk as it came | streams |\n|---|--:|--:|--:|---|--:|\n")
		for _, e := range r.Streaming {
			f := e.Median
			added := ""
			if e.Target != "direct" {
				added = fmtSignedUs(f.AddedTTFBus)
			}
			w("| %s | %s | %s | %s | %s | %d |\n", e.Target, fmtUs(f.TTFBus), orDash(added), fmtUs(f.MaxChunkDelayUs), yesNo(f.AsTheyCome), f.Samples)
		}
	}
	if len(r.BigStream) > 0 {
		w("\n%s %s streamed response\n\n", h, sizeLabel(r.BigStream[0].Bytes))
		w("| target | time | throughput | peak RSS |\n|---|--:|--:|--:|\n")
		for _, e := range r.BigStream {
			rss := ""
			if e.Target != "direct" {
				rss = fmt.Sprintf("%.1f MiB", e.Median.PeakRSSMiB)
			}
			w("| %s | %.0f ms | %.0f MB/s | %s |\n", e.Target, e.Median.Seconds*1000, e.Median.MBps, orDash(rss))
		}
	}
	if len(r.Binaries) > 0 {
		w("\n%s Binary size\n\n`CGO_ENABLED=0 go build -trimpath -ldflags \"-s -w\"`\n\n| binary | os/arch | bytes | MiB |\n|---|---|--:|--:|\n", h)
		for _, s := range r.Binaries {
			w("| %s | %s/%s | %d | %.2f |\n", s.Name, s.OS, s.Arch, s.Bytes, mib(s.Bytes))
		}
	}
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

func fmtUs(v float64) string {
	if math.Abs(v) >= 10000 {
		return fmt.Sprintf("%.2f ms", v/1000)
	}
	return fmt.Sprintf("%.0f µs", v)
}

func fmtSignedUs(v float64) string {
	s := fmtUs(v)
	if v >= 0 {
		s = "+" + s
	}
	return s
}

// svg draws the p50 overhead over direct by payload size, lrap against the
// reference, one panel per concurrency, on a logarithmic axis.
func (r *results) svg() []byte {
	type bar struct {
		target string
		v      float64
	}
	var concs []int
	var sizes []int
	vals := map[[2]int][]bar{}
	for _, e := range r.Load {
		if e.Target == "direct" {
			continue
		}
		if !slices.Contains(concs, e.Concurrency) {
			concs = append(concs, e.Concurrency)
		}
		if !slices.Contains(sizes, e.PayloadBytes) {
			sizes = append(sizes, e.PayloadBytes)
		}
		k := [2]int{e.Concurrency, e.PayloadBytes}
		vals[k] = append(vals[k], bar{e.Target, e.Median.OverheadP50us})
	}
	hi := 1.0
	lo := math.Inf(1)
	for _, bs := range vals {
		for _, b := range bs {
			if b.v > 0 {
				hi, lo = max(hi, b.v), min(lo, b.v)
			}
		}
	}
	if math.IsInf(lo, 1) {
		lo = 1
	}
	top := math.Pow(10, math.Ceil(math.Log10(hi)))
	bottom := math.Pow(10, math.Floor(math.Log10(lo)))
	if bottom >= top {
		bottom = top / 10
	}
	const (
		left, right, topM, bottomM = 64.0, 16.0, 56.0, 56.0
		plotH                      = 240.0
		groupW, barW               = 92.0, 30.0
		panelGap                   = 36.0
	)
	panelW := groupW * float64(max(len(sizes), 1))
	width := left + float64(len(concs))*panelW + float64(max(len(concs)-1, 0))*panelGap + right
	height := topM + plotH + bottomM
	y := func(v float64) float64 {
		if v <= bottom {
			return topM + plotH
		}
		return topM + plotH*(1-(math.Log10(v)-math.Log10(bottom))/(math.Log10(top)-math.Log10(bottom)))
	}
	colors := map[string]string{"lrap": "#2563eb", "reference": "#ea580c"}
	var b bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w(`<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	w(`<rect width="100%%" height="100%%" fill="#fff"/>` + "\n")
	w(`<text x="%.0f" y="22" font-size="15" font-weight="bold">p50 overhead over direct per runtime cycle (µs, log scale)</text>`+"\n", left)
	w(`<text x="%.0f" y="40" fill="#555">median of %d runs · %s · %s</text>`+"\n", left, r.Settings.Runs, r.Machine.CPU, r.Started.Format("2006-01-02"))
	// Axis and decade grid lines.
	for d := bottom; d <= top*1.0001; d *= 10 {
		yy := y(d)
		w(`<line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", left, width-right, yy, yy)
		w(`<text x="%.0f" y="%.1f" text-anchor="end" fill="#555">%s</text>`+"\n", left-6, yy+4, trimFloat(d))
	}
	for pi, conc := range concs {
		x0 := left + float64(pi)*(panelW+panelGap)
		mode := fakeapi.Classic
		if conc > 1 {
			mode = fakeapi.ManagedInstances
		}
		w(`<text x="%.1f" y="%.0f" text-anchor="middle" font-weight="bold">concurrency %d (%s)</text>`+"\n", x0+panelW/2, height-12, conc, mode)
		w(`<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#333"/>`+"\n", x0, x0+panelW, topM+plotH, topM+plotH)
		for gi, size := range sizes {
			gx := x0 + float64(gi)*groupW + (groupW-2*barW)/2
			for bi, br := range vals[[2]int{conc, size}] {
				bx := gx + float64(bi)*barW
				yy := y(br.v)
				label := trimFloat(math.Round(br.v))
				if br.v <= 0 {
					label = "≤0"
				}
				w(`<rect x="%.1f" y="%.1f" width="%.0f" height="%.1f" fill="%s"><title>%s %s conc %d: %.1f µs</title></rect>`+"\n",
					bx+2, yy, barW-4, topM+plotH-yy, colors[br.target], br.target, sizeLabel(int64(size)), conc, br.v)
				w(`<text x="%.1f" y="%.1f" text-anchor="middle" font-size="10">%s</text>`+"\n", bx+barW/2, yy-4, label)
			}
			w(`<text x="%.1f" y="%.0f" text-anchor="middle">%s</text>`+"\n", x0+float64(gi)*groupW+groupW/2, topM+plotH+18, sizeLabel(int64(size)))
		}
	}
	// Legend.
	lx := width - right - 190
	for i, name := range []string{"lrap", "reference"} {
		xx := lx + float64(i)*95
		w(`<rect x="%.0f" y="30" width="12" height="12" fill="%s"/><text x="%.0f" y="40">%s</text>`+"\n", xx, colors[name], xx+16, name)
	}
	w("</svg>\n")
	return b.Bytes()
}

func trimFloat(v float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.3f", v), "0"), ".")
}
