package metrics_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/lrap/lrap/hook"
	"github.com/lrap/lrap/hooks/metrics"
	"github.com/lrap/lrap/internal/config"
)

// emf is an EMF document as CloudWatch reads it.
type emf struct {
	AWS struct {
		Timestamp         *int64 `json:"Timestamp"`
		CloudWatchMetrics []struct {
			Namespace  string     `json:"Namespace"`
			Dimensions [][]string `json:"Dimensions"`
			Metrics    []struct {
				Name string `json:"Name"`
				Unit string `json:"Unit"`
			} `json:"Metrics"`
		} `json:"CloudWatchMetrics"`
	} `json:"_aws"`
}

func parse(t *testing.T, out []byte) ([]emf, []map[string]any) {
	t.Helper()
	var docs []emf
	var roots []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var d emf
		var root map[string]any
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.UseNumber()
		if err := dec.Decode(&root); err != nil {
			t.Fatalf("not a JSON line: %v\n%s", err, sc.Bytes())
		}
		if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
			t.Fatal(err)
		}
		docs = append(docs, d)
		roots = append(roots, root)
	}
	return docs, roots
}

// checkEMF applies the EMF specification's rules to one document: a
// millisecond Timestamp, metric directives whose dimension and metric
// names are all members of the root, dimension values that are strings,
// metric values that are numbers, and units CloudWatch knows.
func checkEMF(t *testing.T, d emf, root map[string]any) {
	t.Helper()
	if d.AWS.Timestamp == nil || time.Since(time.UnixMilli(*d.AWS.Timestamp)).Abs() > time.Minute {
		t.Errorf("Timestamp %v is not now in epoch milliseconds", d.AWS.Timestamp)
	}
	if len(d.AWS.CloudWatchMetrics) != 1 {
		t.Fatalf("%d metric directives, want 1", len(d.AWS.CloudWatchMetrics))
	}
	dir := d.AWS.CloudWatchMetrics[0]
	for _, set := range dir.Dimensions {
		if len(set) > 30 {
			t.Errorf("dimension set of %d keys; EMF allows 30", len(set))
		}
		for _, k := range set {
			if _, ok := root[k].(string); !ok {
				t.Errorf("dimension %s: root member %v is not a string", k, root[k])
			}
		}
	}
	units := map[string]bool{"Milliseconds": true, "Bytes": true, "Count": true}
	if len(dir.Metrics) > 100 {
		t.Errorf("%d metrics; EMF allows 100 per directive", len(dir.Metrics))
	}
	for _, m := range dir.Metrics {
		if !units[m.Unit] {
			t.Errorf("metric %s: unit %q", m.Name, m.Unit)
		}
		if _, ok := root[m.Name].(json.Number); !ok {
			t.Errorf("metric %s: root member %v is not a number", m.Name, root[m.Name])
		}
	}
}

func metricNames(d emf) string {
	var names []string
	for _, m := range d.AWS.CloudWatchMetrics[0].Metrics {
		names = append(names, m.Name+"/"+m.Unit)
	}
	return strings.Join(names, " ")
}

func TestOneEMFLinePerEnd(t *testing.T) {
	var buf bytes.Buffer
	h, err := metrics.New(metrics.Config{Namespace: `Team "A"/lrap`, FunctionName: "orders"}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	if h.Name != "metrics" || h.OnEnd == nil || h.OnEvent != nil || h.OnResponse != nil || h.NeedsBody || h.Digests {
		t.Fatalf("metrics must only observe OnEnd, without bodies or digests: %+v", h)
	}
	delivered := time.Now().Add(-time.Second)
	inv := &hook.Invocation{RequestID: "r", FunctionARN: "arn:aws:lambda:us-east-1:1:function:other"}
	for _, e := range []*hook.End{
		{Outcome: hook.Success, Delivered: delivered, Duration: 12500 * time.Microsecond, InLrap: 75 * time.Microsecond, EventBytes: 100, ResultBytes: 2000},
		{Outcome: hook.Error, Delivered: delivered, Duration: time.Millisecond, EventBytes: 1, ResultBytes: 50},
		{Outcome: hook.Rejected, InLrap: time.Millisecond},
		{Outcome: hook.Timeout, Delivered: delivered},
	} {
		h.OnEnd(inv, e)
	}
	docs, roots := parse(t, buf.Bytes())
	if len(docs) != 4 {
		t.Fatalf("%d lines for 4 ends:\n%s", len(docs), buf.Bytes())
	}
	for i := range docs {
		checkEMF(t, docs[i], roots[i])
		dir := docs[i].AWS.CloudWatchMetrics[0]
		if dir.Namespace != `Team "A"/lrap` || len(dir.Dimensions) != 1 || strings.Join(dir.Dimensions[0], ",") != "FunctionName" {
			t.Errorf("line %d: namespace %q dimensions %v", i, dir.Namespace, dir.Dimensions)
		}
		if roots[i]["FunctionName"] != "orders" {
			t.Errorf("line %d: FunctionName %v, want the configured orders", i, roots[i]["FunctionName"])
		}
	}
	all := "Duration/Milliseconds LrapTime/Milliseconds EventBytes/Bytes ResponseBytes/Bytes Rejected/Count Errors/Count"
	if got := metricNames(docs[0]); got != all {
		t.Errorf("metrics %s, want %s", got, all)
	}
	if got := metricNames(docs[2]); got != strings.TrimPrefix(all, "Duration/Milliseconds ") {
		t.Errorf("rejected event: metrics %s; Duration must be left out, not 0", got)
	}
	if _, ok := roots[3]["Duration"]; ok {
		t.Error("a forced timeout has no time in the function, but Duration was sent")
	}
	want := []map[string]string{
		{"Duration": "12.500", "LrapTime": "0.075", "EventBytes": "100", "ResponseBytes": "2000", "Rejected": "0", "Errors": "0"},
		{"Duration": "1.000", "Rejected": "0", "Errors": "1"},
		{"LrapTime": "1.000", "Rejected": "1", "Errors": "0"},
		{"Rejected": "0", "Errors": "1"},
	}
	for i, w := range want {
		for k, v := range w {
			if got := roots[i][k]; got != json.Number(v) {
				t.Errorf("line %d: %s = %v, want %s", i, k, got, v)
			}
		}
	}
}

// Without AWS_LAMBDA_FUNCTION_NAME the dimension comes from the ARN; a
// value CloudWatch would refuse never makes a line invalid.
func TestFunctionNameDimension(t *testing.T) {
	var buf bytes.Buffer
	h, err := metrics.New(metrics.Config{}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	for _, arn := range []string{
		"arn:aws:lambda:us-east-1:012345678912:function:orders:prod",
		"arn:aws:lambda:us-east-1:012345678912:function:orders",
		"",
		"arn:aws:lambda:us-east-1:1:function:bad\x00\xffname",
	} {
		h.OnEnd(&hook.Invocation{FunctionARN: arn}, &hook.End{Outcome: hook.Success})
	}
	docs, roots := parse(t, buf.Bytes())
	for i, want := range []string{"orders", "orders", "unknown", "bad??name"} {
		checkEMF(t, docs[i], roots[i])
		if roots[i]["FunctionName"] != want {
			t.Errorf("line %d: FunctionName %v, want %s", i, roots[i]["FunctionName"], want)
		}
		if docs[i].AWS.CloudWatchMetrics[0].Namespace != "lrap" {
			t.Errorf("default namespace %q", docs[i].AWS.CloudWatchMetrics[0].Namespace)
		}
	}
}

func env(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestBuildSettings(t *testing.T) {
	for _, tc := range []struct {
		name      string
		env       []string
		section   string
		namespace string
		wantError []string
	}{
		{name: "default", namespace: "lrap"},
		{name: "env", env: []string{"LRAP_METRICS_NAMESPACE", "Platform/lrap"}, namespace: "Platform/lrap"},
		{name: "section", section: `{"namespace":"FromFile"}`, namespace: "FromFile"},
		{name: "env wins", section: `{"namespace":"FromFile"}`, env: []string{"LRAP_METRICS_NAMESPACE", "FromEnv"}, namespace: "FromEnv"},
		{name: "reserved", env: []string{"LRAP_METRICS_NAMESPACE", "AWS/Lambda"},
			wantError: []string{`LRAP_METRICS_NAMESPACE="AWS/Lambda"`, "reserved", "printable ASCII"}},
		{name: "colon", env: []string{"LRAP_METRICS_NAMESPACE", ":x"}, wantError: []string{"LRAP_METRICS_NAMESPACE", "colon"}},
		{name: "too long", env: []string{"LRAP_METRICS_NAMESPACE", strings.Repeat("n", 256)}, wantError: []string{"LRAP_METRICS_NAMESPACE", "255"}},
		{name: "not ascii", env: []string{"LRAP_METRICS_NAMESPACE", "żółw"}, wantError: []string{"LRAP_METRICS_NAMESPACE", "ASCII"}},
		{name: "section not a string", section: `{"namespace":5}`, wantError: []string{"LRAP_CONFIG metrics.namespace=5", "not a string"}},
		{name: "section unknown key", section: `{"Namespace":"x"}`, wantError: []string{"LRAP_CONFIG metrics", `unknown key "Namespace"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := append([]string{"AWS_LAMBDA_FUNCTION_NAME", "fn"}, tc.env...)
			h, err := metrics.Build(env(e...), json.RawMessage(tc.section))
			if len(tc.wantError) > 0 {
				if err == nil {
					t.Fatal("accepted")
				}
				if !errors.Is(err, config.ErrInvalid) {
					t.Errorf("%v does not wrap config.ErrInvalid", err)
				}
				for _, w := range tc.wantError {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			_ = h
			// Build writes to stdout; the same settings through New show
			// what it configured.
			var buf bytes.Buffer
			h2, _ := metrics.New(metrics.Config{Namespace: tc.namespace, FunctionName: "fn"}, &buf)
			h2.OnEnd(&hook.Invocation{}, &hook.End{})
			if !strings.Contains(buf.String(), `"Namespace":"`+tc.namespace+`"`) {
				t.Errorf("line %s", buf.String())
			}
		})
	}
}

// BenchmarkMetrics is the metrics hook's cost per invocation, writing to
// io.Discard. It runs in OnEnd, off the data path.
//
//	go test -run '^$' -bench Metrics -benchmem ./hooks/metrics
func BenchmarkMetrics(b *testing.B) {
	for _, c := range []struct {
		name string
		fn   string
	}{{"function-name-from-env", "orders"}, {"function-name-from-arn", ""}} {
		b.Run(c.name, func(b *testing.B) {
			h, err := metrics.New(metrics.Config{FunctionName: c.fn}, io.Discard)
			if err != nil {
				b.Fatal(err)
			}
			inv := &hook.Invocation{FunctionARN: "arn:aws:lambda:us-east-1:012345678912:function:orders"}
			end := &hook.End{Outcome: hook.Success, Delivered: time.Now(), Duration: 12 * time.Millisecond, InLrap: 80 * time.Microsecond, EventBytes: 1024, ResultBytes: 2048}
			b.ReportAllocs()
			for b.Loop() {
				h.OnEnd(inv, end)
			}
		})
	}
}
