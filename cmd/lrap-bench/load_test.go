package main

import (
	"testing"

	"github.com/lrap/lrap/internal/fakeapi"
)

// BenchmarkDirectCycle is the benchmark's floor: the runtime cycle against
// the fake API without a proxy, all in this process.
func BenchmarkDirectCycle(b *testing.B) {
	t := &target{name: "direct"}
	e, err := startEnv(t, fakeapi.Classic, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer e.stop()
	payload := makePayload(1024)
	w := newWorker(e, payload)
	inv := fakeapi.Invocation{Payload: payload}
	b.ReportAllocs()
	for b.Loop() {
		e.fake.Enqueue(inv)
		if err := w.cycle(len(payload)); err != nil {
			b.Fatal(err)
		}
	}
}
