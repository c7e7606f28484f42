package proxy

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

// The upstream transport may retry a request on a dead pooled connection
// only through GetBody; it must get the body back while untouched and an
// error once any byte was read, so a consumed body is never replayed.
func TestRewindOnlyUntouchedBody(t *testing.T) {
	in, _ := http.NewRequest("POST", "/", io.NopCloser(strings.NewReader("payload")))
	b := &requestBody{in: in}
	if rc, err := b.rewind(); err != nil || rc != b {
		t.Fatalf("untouched body: rewind = %v, %v; want the body itself", rc, err)
	}
	buf := make([]byte, 3)
	if _, err := b.Read(buf); err != nil {
		t.Fatal(err)
	}
	if _, err := b.rewind(); !errors.Is(err, errBodyConsumed) {
		t.Fatalf("after reading 3 bytes: rewind err = %v, want errBodyConsumed", err)
	}
}
