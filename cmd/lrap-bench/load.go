package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lrap/lrap/internal/fakeapi"
	"github.com/lrap/lrap/runtimeapi"
)

// runtimeWorker plays one runtime worker: GET /next, read the event, POST a
// response of the same size, read the 202. Buffers are reused; the response
// body is a slice of a payload allocated once.
type runtimeWorker struct {
	client  *http.Client
	nextURL string
	invURL  string // http://addr/2018-06-01/runtime/invocation/
	payload []byte
	scratch []byte
	// starts and ends of the block's cycles, since the block's start.
	starts, ends []time.Duration
	cycles       int
}

func newWorker(e *env, payload []byte) *runtimeWorker {
	base := "http://" + e.addr
	return &runtimeWorker{
		client:  e.client,
		nextURL: base + runtimeapi.PathNext,
		invURL:  base + runtimeapi.PathInvocation,
		payload: payload,
		scratch: make([]byte, 64<<10),
		starts:  make([]time.Duration, 0, 1<<14),
		ends:    make([]time.Duration, 0, 1<<14),
	}
}

var jsonType = []string{"application/json"}

// cycle runs one invocation of size bytes each way.
func (w *runtimeWorker) cycle(size int) error {
	resp, err := w.client.Get(w.nextURL)
	if err != nil {
		return fmt.Errorf("GET /next: %w", err)
	}
	id := resp.Header.Get(runtimeapi.HeaderRequestID)
	n, err := w.drain(resp.Body)
	resp.Body.Close()
	switch {
	case err != nil:
		return fmt.Errorf("reading the event: %w", err)
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("GET /next: status %d", resp.StatusCode)
	case n != int64(size):
		return fmt.Errorf("GET /next: event of %d bytes, want %d", n, size)
	case id == "":
		return errors.New("GET /next: no request id")
	}
	req, err := http.NewRequest(http.MethodPost, w.invURL+id+"/response", bytes.NewReader(w.payload[:size]))
	if err != nil {
		return err
	}
	req.Header["Content-Type"] = jsonType
	resp, err = w.client.Do(req)
	if err != nil {
		return fmt.Errorf("POST /response: %w", err)
	}
	_, err = w.drain(resp.Body)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("reading the /response answer: %w", err)
	}
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("POST /response: status %d", resp.StatusCode)
	}
	return nil
}

// drain reads r to its end into the scratch buffer and counts the bytes.
func (w *runtimeWorker) drain(r io.Reader) (int64, error) {
	var total int64
	for {
		n, err := r.Read(w.scratch)
		total += int64(n)
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// blockStats is what one block of cycles measured.
type blockStats struct {
	lat     []time.Duration // cycles that started in the timed window
	done    int             // cycles that ended in the timed window
	window  time.Duration
	cycles  int           // every cycle of the block, warm-up and drain included
	cpu     time.Duration // proxy CPU over the whole block
	peakRSS int64         // proxy VmHWM during the block
}

// minTimedCycles is how many cycles a block times at least, per worker: a
// block whose cycles are longer than its window runs on until it has them.
const minTimedCycles = 2

// runBlock runs conc workers against e for warm + dur (longer if needed for
// minTimedCycles per worker, up to 20 × dur). The fake always holds conc
// invocations more than the workers have asked for, so a /next never waits
// for the platform; those spares are consumed afterwards (untimed) so that
// the next block starts clean.
func runBlock(e *env, workers []*runtimeWorker, size, conc int, warm, dur time.Duration) (blockStats, error) {
	var st blockStats
	var cpu0 time.Duration
	if e.pid != 0 {
		if err := resetPeakRSS(e.pid); err != nil {
			return st, err
		}
		var err error
		if cpu0, err = procCPU(e.pid); err != nil {
			return st, err
		}
	}
	inv := fakeapi.Invocation{Payload: workers[0].payload[:size]}
	for range conc {
		e.fake.Enqueue(inv)
	}
	start := time.Now()
	warmEnd := start.Add(warm)
	stop := warmEnd.Add(dur)
	hardStop := warmEnd.Add(20 * dur)
	minTimed := int64(minTimedCycles * conc)
	if dur == 0 {
		minTimed = 0
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		ferr    error
		timed   atomic.Int64 // cycles started in the window so far
		stopped atomic.Int64 // when the window ended, in ns since start; 0 while open
	)
	// open reports whether a cycle may start at now, and ends the window
	// when it may not.
	open := func(now time.Time) bool {
		if stopped.Load() != 0 {
			return false
		}
		if now.Before(stop) || (timed.Load() < minTimed && now.Before(hardStop)) {
			return true
		}
		stopped.CompareAndSwap(0, int64(now.Sub(start)))
		return false
	}
	for _, w := range workers[:conc] {
		w.starts, w.ends, w.cycles = w.starts[:0], w.ends[:0], 0
		wg.Go(func() {
			for {
				if !open(time.Now()) {
					return
				}
				e.fake.Enqueue(inv)
				t0 := time.Now()
				if !t0.Before(warmEnd) {
					timed.Add(1)
				}
				if err := w.cycle(size); err != nil {
					mu.Lock()
					ferr = errors.Join(ferr, err)
					mu.Unlock()
					stopped.CompareAndSwap(0, int64(time.Since(start)))
					return
				}
				t1 := time.Now()
				w.cycles++
				w.starts = append(w.starts, t0.Sub(start))
				w.ends = append(w.ends, t1.Sub(start))
			}
		})
	}
	wg.Wait()
	if ferr != nil {
		if err := e.alive(); err != nil {
			return st, err
		}
		return st, fmt.Errorf("%s, %d bytes, concurrency %d: %w", e.tgt.name, size, conc, ferr)
	}
	end := time.Duration(stopped.Load())
	st.window = end - warm
	for range conc {
		if err := workers[0].cycle(size); err != nil {
			return st, fmt.Errorf("%s: draining: %w", e.tgt.name, err)
		}
		st.cycles++
	}
	for _, w := range workers[:conc] {
		st.cycles += w.cycles
		for i, t0 := range w.starts {
			t1 := w.ends[i]
			if t0 >= warm && t0 < end {
				st.lat = append(st.lat, t1-t0)
			}
			if t1 >= warm && t1 <= end {
				st.done++
			}
		}
	}
	if e.pid != 0 {
		cpu1, err := procCPU(e.pid)
		if err != nil {
			return st, err
		}
		st.cpu = cpu1 - cpu0
		if st.peakRSS, _, err = procMem(e.pid); err != nil {
			return st, err
		}
	}
	return st, nil
}

// loadResult is one target's figures for one configuration in one run.
type loadResult struct {
	P50        time.Duration
	P99        time.Duration
	Throughput float64 // invocations per second
	// CPUPer1000 and PeakRSS are the proxy process's; zero for direct.
	CPUPer1000 time.Duration
	PeakRSS    int64
	Samples    int // timed cycles behind P50/P99
}

// accum sums the blocks of one target and configuration in one run.
type accum struct {
	lat    []time.Duration
	done   int
	window time.Duration
	cycles int
	cpu    time.Duration
	peak   int64
}

func (a *accum) add(st blockStats) {
	a.lat = append(a.lat, st.lat...)
	a.done += st.done
	a.window += st.window
	a.cycles += st.cycles
	a.cpu += st.cpu
	a.peak = max(a.peak, st.peakRSS)
}

func (a *accum) result() loadResult {
	r := loadResult{
		Samples: len(a.lat),
		P50:     percentile(a.lat, 50),
		P99:     percentile(a.lat, 99),
		PeakRSS: a.peak,
	}
	if a.window > 0 {
		r.Throughput = float64(a.done) / a.window.Seconds()
	}
	if a.cycles > 0 && a.cpu > 0 {
		r.CPUPer1000 = a.cpu * 1000 / time.Duration(a.cycles)
	}
	return r
}
