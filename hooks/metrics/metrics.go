// Package metrics is lrap's built-in metrics hook: one CloudWatch Embedded
// Metric Format (EMF) line per invocation on stdout. Lambda sends extension
// stdout to CloudWatch Logs, which extracts the metrics from the line: no
// agent, no API call, no credentials.
//
// Each line carries, under the FunctionName dimension: Duration (time in the
// function), LrapTime (time lrap added), EventBytes, ResponseBytes, Rejected
// and Errors (0 or 1; timeouts count as errors, as in Lambda's own Errors
// metric). Duration is left out of the line, not sent as 0, when the event
// never reached the function or no result came back, so averages stay true.
//
// The EMF document is written by hand; everything but the numbers is fixed
// when the hook is built.
package metrics

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lrap/lrap/hook"
	"github.com/lrap/lrap/internal/config"
)

// Name is the hook's name in LRAP_HOOKS, in logs and in the config file.
const Name = "metrics"

// DefaultNamespace is the CloudWatch namespace when none is configured.
const DefaultNamespace = "lrap"

// Config configures the metrics hook.
type Config struct {
	// Namespace is the CloudWatch metric namespace. Empty means
	// DefaultNamespace.
	Namespace string
	// FunctionName is the FunctionName dimension's value. Empty means the
	// function name in each invocation's ARN.
	FunctionName string
}

// Settings are the variables the metrics hook reads, for the README.
var Settings = []config.Setting{
	{
		Name:     "LRAP_METRICS_NAMESPACE",
		Default:  DefaultNamespace,
		Accepted: "1 to 255 printable ASCII characters, not starting with AWS/ or a colon",
		Doc:      "CloudWatch namespace of the metrics. The FunctionName dimension comes from AWS_LAMBDA_FUNCTION_NAME, which Lambda sets.",
	},
}

// Build makes the metrics hook from its config-file section (may be nil)
// and the environment, which wins over the file. It writes to stdout.
func Build(env func(string) (string, bool), section json.RawMessage) (hook.Hook, error) {
	cfg, err := load(env, section)
	if err != nil {
		return hook.Hook{}, err
	}
	return New(cfg, os.Stdout)
}

func load(env func(string) (string, bool), section json.RawMessage) (Config, error) {
	var cfg Config
	keys, err := config.SectionKeys(Name, section, "namespace")
	if err != nil {
		return cfg, err
	}
	if raw, ok := keys["namespace"]; ok {
		why := "not a string"
		if err := json.Unmarshal(raw, &cfg.Namespace); err == nil {
			why = checkNamespace(cfg.Namespace)
		}
		if why != "" {
			return cfg, invalid("LRAP_CONFIG "+Name+".namespace", string(raw), Settings[0].Accepted, why)
		}
	}
	if v, ok := env("LRAP_METRICS_NAMESPACE"); ok && v != "" {
		if why := checkNamespace(v); why != "" {
			return cfg, invalid("LRAP_METRICS_NAMESPACE", strconv.Quote(v), Settings[0].Accepted, why)
		}
		cfg.Namespace = v
	}
	// Set by Lambda in every function's environment.
	cfg.FunctionName, _ = env("AWS_LAMBDA_FUNCTION_NAME")
	return cfg, nil
}

// checkNamespace applies CloudWatch's namespace rules: 1 to 255 ASCII
// characters without control characters, at least one not a space, not
// starting with a colon, and not in the AWS/ space reserved for AWS
// services. It returns why ns is refused, or "".
func checkNamespace(ns string) string {
	switch {
	case ns == "":
		return "empty"
	case len(ns) > 255:
		return "longer than 255 characters"
	case strings.TrimSpace(ns) == "":
		return "only spaces"
	case ns[0] == ':':
		return "starts with a colon"
	case strings.HasPrefix(ns, "AWS/"):
		return "AWS/ is reserved for AWS services"
	}
	for i := 0; i < len(ns); i++ {
		if ns[i] < 0x20 || ns[i] > 0x7e {
			return "not printable ASCII"
		}
	}
	return ""
}

// New makes a metrics hook that writes its lines to w, one Write per line.
func New(cfg Config, w io.Writer) (hook.Hook, error) {
	if w == nil {
		return hook.Hook{}, fmt.Errorf("metrics: no writer")
	}
	if cfg.Namespace == "" {
		cfg.Namespace = DefaultNamespace
	}
	if why := checkNamespace(cfg.Namespace); why != "" {
		return hook.Hook{}, fmt.Errorf("metrics: namespace %q: %s", cfg.Namespace, why)
	}
	m := &emitter{w: w}
	if cfg.FunctionName != "" {
		m.functionName = dimensionValue(cfg.FunctionName)
	}
	m.withDuration = directive(cfg.Namespace, true)
	m.withoutDuration = directive(cfg.Namespace, false)
	return hook.Hook{Name: Name, Policy: hook.FailOpen, OnEnd: m.end}, nil
}

// directive is the fixed part of a line after the timestamp: the metric
// directive, closing "_aws".
func directive(namespace string, duration bool) []byte {
	b := []byte(`,"CloudWatchMetrics":[{"Namespace":`)
	b = appendString(b, namespace)
	b = append(b, `,"Dimensions":[["FunctionName"]],"Metrics":[`...)
	if duration {
		b = append(b, `{"Name":"Duration","Unit":"Milliseconds"},`...)
	}
	b = append(b, `{"Name":"LrapTime","Unit":"Milliseconds"},`+
		`{"Name":"EventBytes","Unit":"Bytes"},`+
		`{"Name":"ResponseBytes","Unit":"Bytes"},`+
		`{"Name":"Rejected","Unit":"Count"},`+
		`{"Name":"Errors","Unit":"Count"}]}]},"FunctionName":`...)
	return b
}

type emitter struct {
	w                             io.Writer
	functionName                  string
	withDuration, withoutDuration []byte
	// mu serializes lines: lrap runs OnEnd on one goroutine, but the same
	// hook may be handed to more than one proxy, and w may be shared.
	mu  sync.Mutex
	buf []byte
}

func (m *emitter) end(inv *hook.Invocation, end *hook.End) {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.buf = m.appendLine(m.buf[:0], inv, end, now)
	// One Write per line: CloudWatch Logs reads one log event per line.
	_, _ = m.w.Write(m.buf)
}

func (m *emitter) appendLine(b []byte, inv *hook.Invocation, end *hook.End, now time.Time) []byte {
	hasDuration := !end.Delivered.IsZero() && end.Duration > 0
	b = append(b, `{"_aws":{"Timestamp":`...)
	b = strconv.AppendInt(b, now.UnixMilli(), 10)
	if hasDuration {
		b = append(b, m.withDuration...)
	} else {
		b = append(b, m.withoutDuration...)
	}
	name := m.functionName
	if name == "" {
		name = dimensionValue(functionFromARN(inv.FunctionARN))
	}
	b = appendString(b, name)
	if hasDuration {
		b = append(b, `,"Duration":`...)
		b = appendMillis(b, end.Duration)
	}
	b = append(b, `,"LrapTime":`...)
	b = appendMillis(b, end.InLrap)
	b = append(b, `,"EventBytes":`...)
	b = strconv.AppendInt(b, end.EventBytes, 10)
	b = append(b, `,"ResponseBytes":`...)
	b = strconv.AppendInt(b, end.ResultBytes, 10)
	b = append(b, `,"Rejected":`...)
	b = appendFlag(b, end.Outcome == hook.Rejected)
	b = append(b, `,"Errors":`...)
	b = appendFlag(b, end.Outcome == hook.Error || end.Outcome == hook.Timeout)
	return append(b, "}\n"...)
}

// functionFromARN returns NAME from arn:PARTITION:lambda:REGION:ACCOUNT:
// function:NAME[:QUALIFIER], or "".
func functionFromARN(arn string) string {
	rest, ok := strings.CutPrefix(arn, "arn:")
	if !ok {
		return ""
	}
	// Skip partition, service, region and account.
	for range 4 {
		i := strings.IndexByte(rest, ':')
		if i < 0 {
			return ""
		}
		rest = rest[i+1:]
	}
	name, ok := strings.CutPrefix(rest, "function:")
	if !ok {
		return ""
	}
	name, _, _ = strings.Cut(name, ":")
	return name
}

// dimensionValue keeps a dimension value within CloudWatch's rules (1 to
// 1024 ASCII characters, no control characters) so that a line is never
// refused: other bytes become '?', and an empty value "unknown".
func dimensionValue(s string) string {
	if len(s) > 1024 {
		s = s[:1024]
	}
	clean := true
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			clean = false
			break
		}
	}
	if !clean {
		b := []byte(s)
		for i, c := range b {
			if c < 0x20 || c > 0x7e {
				b[i] = '?'
			}
		}
		s = string(b)
	}
	if strings.TrimSpace(s) == "" {
		return "unknown"
	}
	return s
}

func appendFlag(b []byte, on bool) []byte {
	if on {
		return append(b, '1')
	}
	return append(b, '0')
}

// appendMillis writes d in milliseconds with microsecond precision.
func appendMillis(b []byte, d time.Duration) []byte {
	us := max(d.Microseconds(), 0)
	b = strconv.AppendInt(b, us/1000, 10)
	frac := us % 1000
	return append(b, '.', byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10))
}

// appendString writes s, printable ASCII by construction (checkNamespace,
// dimensionValue), as a JSON string.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' {
			b = append(b, '\\')
		}
		b = append(b, s[i])
	}
	return append(b, '"')
}

// configError is a configuration error; like lrap's own, it wraps
// config.ErrInvalid.
type configError string

func (e configError) Error() string { return string(e) }
func (e configError) Unwrap() error { return config.ErrInvalid }

// invalid names the setting, the value, why and what is accepted, in the
// same words as lrap's own configuration errors.
func invalid(setting, value, accepted, why string) error {
	msg := setting + "=" + value + " is not valid"
	if why != "" {
		msg += ": " + why
	}
	return configError(msg + " (accepted: " + accepted + ")")
}
