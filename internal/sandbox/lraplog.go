package sandbox

import (
	"encoding/json"
	"strings"
)

// LrapRequest is one of lrap's debug lines (LRAP_LOG_LEVEL=debug): lrap
// writes a JSON object per request it forwarded, once the answer has been
// relayed, so a /next appears when it returns, not when it was made.
type LrapRequest struct {
	Method string
	Path   string
	Status int
	// Fields holds every field of the line, the three above included, so
	// callers can show whatever else lrap reports (sizes, durations).
	Fields map[string]any
}

// LrapRequests picks lrap's per-request lines out of the mixed output of the
// emulator, the runtime and the extensions. Lines that are not JSON objects
// with a method, a path and a numeric status are skipped.
func LrapRequests(output string) []LrapRequest {
	var reqs []LrapRequest
	for _, l := range strings.Split(output, "\n") {
		l = strings.TrimSpace(l)
		if !strings.HasPrefix(l, "{") || !strings.Contains(l, `"method"`) {
			continue
		}
		var fields map[string]any
		if err := json.Unmarshal([]byte(l), &fields); err != nil {
			continue
		}
		method, _ := fields["method"].(string)
		path, _ := fields["path"].(string)
		status, ok := fields["status"].(float64)
		if method == "" || path == "" || !ok {
			continue
		}
		reqs = append(reqs, LrapRequest{Method: method, Path: path, Status: int(status), Fields: fields})
	}
	return reqs
}
