package main

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	var xs []time.Duration
	for i := 100; i >= 1; i-- {
		xs = append(xs, time.Duration(i))
	}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{50, 50}, {99, 99}, {100, 100}, {1, 1}, {0.1, 1}} {
		if got := percentile(slices.Clone(xs), tc.p); got != tc.want {
			t.Errorf("p%v = %v, want %v", tc.p, got, tc.want)
		}
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("p50 of nothing = %v", got)
	}
	if got := median([]float64{3, 1, 2, 10}); got != 2.5 {
		t.Errorf("median = %v, want 2.5", got)
	}
}

func TestParseSizes(t *testing.T) {
	got, err := parseSizes("1KiB, 64KB,1MiB,6M,100")
	if err != nil {
		t.Fatal(err)
	}
	want := []int{1 << 10, 64 << 10, 1 << 20, 6 << 20, 100}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for _, bad := range []string{"", "1G", "x", "-1KiB"} {
		if _, err := parseSizes(bad); err == nil {
			t.Errorf("parseSizes(%q) accepted", bad)
		}
	}
	if got := sizeLabel(6 << 20); got != "6 MiB" {
		t.Errorf("sizeLabel = %q", got)
	}
}

func TestQuickDefaultsKeepExplicitFlags(t *testing.T) {
	cfg, err := parseFlags([]string{"-quick", "-runs", "2"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.runs != 2 || cfg.blocks != 1 || cfg.out != "bench/results/quick" || len(cfg.sizeArchs) != 1 {
		t.Errorf("quick config: %+v", cfg)
	}
}

// sampleResults is a small result set with every section filled.
func sampleResults(t *testing.T) *results {
	cfg, err := parseFlags([]string{"-payloads", "1KiB,6MiB", "-runs", "2"})
	if err != nil {
		t.Fatal(err)
	}
	targets := []*target{{name: "direct"}, {name: "lrap", bin: "x"}, {name: "reference", bin: "y"}}
	var runs []*runData
	for i := range cfg.runs {
		rd := &runData{load: map[loadKey]loadResult{}, life: map[string][]lifecycleSample{},
			stream: map[string][]streamSample{}, big: map[string]bigStreamResult{}}
		for _, c := range cfg.concs {
			for _, s := range cfg.payloads {
				base := time.Duration(s/1000+100) * time.Microsecond * time.Duration(c)
				rd.load[loadKey{s, c, "direct"}] = loadResult{P50: base, P99: 2 * base, Throughput: 1000, Samples: 10}
				rd.load[loadKey{s, c, "lrap"}] = loadResult{P50: base + 20*time.Microsecond, P99: 3 * base, Throughput: 800,
					CPUPer1000: 100 * time.Millisecond, PeakRSS: 9 << 20, Samples: 10}
				rd.load[loadKey{s, c, "reference"}] = loadResult{P50: base + time.Duration(50+i)*time.Microsecond, P99: 4 * base,
					Throughput: 700, CPUPer1000: 300 * time.Millisecond, PeakRSS: 11 << 20, Samples: 10}
			}
		}
		rd.life["lrap"] = []lifecycleSample{{Listening: time.Millisecond, Register: 2 * time.Millisecond, Exit: time.Millisecond}}
		rd.life["reference"] = []lifecycleSample{{Listening: 3 * time.Millisecond, Register: 4 * time.Millisecond, Exit: time.Millisecond}}
		for _, n := range []string{"direct", "lrap", "reference"} {
			rd.stream[n] = []streamSample{{TTFB: 100 * time.Microsecond, AsTheyCome: true}}
			rd.big[n] = bigStreamResult{Duration: time.Second, PeakRSS: 10 << 20}
		}
		runs = append(runs, rd)
	}
	r := &results{Started: time.Unix(0, 0), Settings: settingsOf(cfg), Binaries: []binarySize{{"lrap", "linux", "amd64", 6 << 20}}}
	r.assemble(cfg, targets, runs)
	return r
}

func TestChecks(t *testing.T) {
	r := sampleResults(t)
	status := map[string]string{}
	for _, c := range r.Targets {
		status[c.Figure] = c.Status
	}
	want := map[string]string{
		"overhead p50 over direct, 1 KiB and 64 KiB, conc 1": "not measured", // 64 KiB not run
		"overhead p50 over direct, 6 MiB, conc 1":            "met",
		"throughput at conc 8, 1 KiB and 1 MiB":              "not measured",
		"CPU per 1000 invocations, 1 KiB and 6 MiB, conc 1":  "met",
		"streaming TTFB added":                               "met",
		"cold start, exec → listening":                       "met",
		"binary size, stripped, linux/amd64":                 "met",
	}
	for fig, st := range want {
		if status[fig] != st {
			t.Errorf("%s: %q, want %q", fig, status[fig], st)
		}
	}
	if len(r.Targets) != 8 {
		t.Errorf("%d target rows, want 8", len(r.Targets))
	}
}

func TestRenderings(t *testing.T) {
	r := sampleResults(t)
	if err := xml.Unmarshal(r.svg(), new(struct{})); err != nil {
		t.Errorf("SVG is not well-formed XML: %v", err)
	}
	md := r.markdown("##", "overhead.svg")
	for _, want := range []string{"## Targets", "## Runtime cycles", "| 6 MiB | 8 | lrap |", "## Start and stop", "## Streaming", "## Binary size"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q", want)
		}
	}

	doc := filepath.Join(t.TempDir(), "B.md")
	if err := os.WriteFile(doc, []byte("intro\n"+beginMarker+"\nold\n"+endMarker+"\nrest\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := replaceSection(doc, "new\n"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(doc)
	if got := string(b); got != "intro\n"+beginMarker+"\nnew\n"+endMarker+"\nrest\n" {
		t.Errorf("doc after replace:\n%s", got)
	}
	if err := os.WriteFile(doc, []byte("no markers"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := replaceSection(doc, "x"); err == nil {
		t.Error("a doc without markers was accepted")
	}
}
