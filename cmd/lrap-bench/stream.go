package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/lrap/lrap/internal/fakeapi"
	"github.com/lrap/lrap/runtimeapi"
)

// The streamed response of the time-to-first-byte measurement: 16 chunks of
// 64 KiB, 10 ms apart, the way a streaming function writes as it produces.
const (
	streamChunks    = 16
	streamChunkSize = 64 << 10
	streamGap       = 10 * time.Millisecond
)

// chunkRecorder notes when the fake's reads of one response body returned
// and how many bytes had arrived by then.
type chunkRecorder struct {
	mu    sync.Mutex
	id    string
	times []time.Time
	cum   []int64
	total int64
}

func (r *chunkRecorder) add(id string, n int) {
	if id != r.id {
		return
	}
	t := time.Now()
	r.mu.Lock()
	r.total += int64(n)
	r.times = append(r.times, t)
	r.cum = append(r.cum, r.total)
	r.mu.Unlock()
}

// arrival returns when at least n bytes had arrived.
func (r *chunkRecorder) arrival(n int64) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, c := range r.cum {
		if c >= n {
			return r.times[i], true
		}
	}
	return time.Time{}, false
}

// streamSample is one streamed response's timing at the fake.
type streamSample struct {
	// TTFB is from the runtime's write of the request head and the first
	// chunk to the fake's first read of body bytes.
	TTFB time.Duration
	// MaxChunkDelay is the longest time from a chunk's write to its last
	// byte's arrival.
	MaxChunkDelay time.Duration
	// AsTheyCome is true when every chunk had fully arrived before the
	// runtime wrote the next one.
	AsTheyCome bool
}

// nextEvent does the runtime's GET /next and returns the request id.
func nextEvent(c *http.Client, addr string) (string, error) {
	resp, err := c.Get("http://" + addr + runtimeapi.PathNext)
	if err != nil {
		return "", err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET /next: status %d", resp.StatusCode)
	}
	return resp.Header.Get(runtimeapi.HeaderRequestID), nil
}

// chunkMessage is one chunk of chunked transfer coding carrying data.
func chunkMessage(data []byte) []byte {
	msg := []byte(strconv.FormatInt(int64(len(data)), 16) + "\r\n")
	msg = append(msg, data...)
	return append(msg, "\r\n"...)
}

// streamOnce posts one streamed response the way aws-lambda-go does
// (chunked, trailers declared, streaming mode), written by hand on its own
// connection so that the write times are exact.
func streamOnce(e *env, event, chunk []byte) (streamSample, error) {
	var s streamSample
	pending := e.fake.Enqueue(fakeapi.Invocation{Payload: event})
	id, err := nextEvent(e.client, e.addr)
	if err != nil {
		return s, err
	}
	conn, err := net.Dial("tcp", e.addr)
	if err != nil {
		return s, err
	}
	defer conn.Close()
	time.Sleep(2 * time.Millisecond) // let the server accept the connection first

	head := "POST " + runtimeapi.PathInvocation + id + "/response HTTP/1.1\r\n" +
		"Host: " + e.addr + "\r\n" +
		"User-Agent: lrap-bench\r\n" +
		"Content-Type: application/octet-stream\r\n" +
		runtimeapi.HeaderResponseMode + ": streaming\r\n" +
		"Trailer: " + runtimeapi.HeaderErrorType + ", " + runtimeapi.HeaderErrorBody + "\r\n" +
		"Transfer-Encoding: chunked\r\n\r\n"
	first := append([]byte(head), chunk...)

	rec := &chunkRecorder{id: id, times: make([]time.Time, 0, 256), cum: make([]int64, 0, 256)}
	e.chunks.Store(rec)
	defer e.chunks.Store(nil)

	var sends [streamChunks + 1]time.Time
	base := time.Now()
	for i := range streamChunks {
		if i > 0 {
			time.Sleep(time.Until(base.Add(time.Duration(i) * streamGap)))
		}
		msg := chunk
		if i == 0 {
			msg = first
		}
		sends[i] = time.Now()
		if _, err := conn.Write(msg); err != nil {
			return s, err
		}
	}
	time.Sleep(time.Until(base.Add(streamChunks * streamGap)))
	sends[streamChunks] = time.Now()
	if _, err := io.WriteString(conn, "0\r\n\r\n"); err != nil {
		return s, err
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return s, fmt.Errorf("%s: reading the streamed response's answer: %w", e.tgt.name, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return s, fmt.Errorf("%s: streamed response answered %d", e.tgt.name, resp.StatusCode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := pending.Wait(ctx)
	if err != nil {
		return s, err
	}
	if want := int64(streamChunks * streamChunkSize); res.Size != want {
		return s, fmt.Errorf("%s: streamed %d bytes arrived, want %d", e.tgt.name, res.Size, want)
	}

	firstByte, _ := rec.arrival(1)
	s.TTFB = firstByte.Sub(sends[0])
	s.AsTheyCome = true
	for i := range streamChunks {
		at, ok := rec.arrival(int64(i+1) * streamChunkSize)
		if !ok {
			return s, fmt.Errorf("%s: chunk %d never arrived", e.tgt.name, i)
		}
		s.MaxChunkDelay = max(s.MaxChunkDelay, at.Sub(sends[i]))
		if !at.Before(sends[i+1]) {
			s.AsTheyCome = false
		}
	}
	return s, nil
}

// repeatBody is a streamed body of n bytes made of one chunk repeated. Its
// WriteTo hands the chunk to the transport without copying, one chunked
// transfer chunk per write.
type repeatBody struct {
	chunk []byte
	left  int64
}

func (b *repeatBody) Read(p []byte) (int, error) {
	if b.left == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(int64(len(p)), b.left)], b.chunk)
	b.left -= int64(n)
	return n, nil
}

func (b *repeatBody) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for b.left > 0 {
		n, err := w.Write(b.chunk[:min(int64(len(b.chunk)), b.left)])
		total += int64(n)
		b.left -= int64(n)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// bigStreamResult is a large streamed response through one target.
type bigStreamResult struct {
	Duration time.Duration
	PeakRSS  int64 // proxy VmHWM during the stream; 0 for direct
}

// bigStream posts one streamed response of size bytes as fast as the
// runtime can write it and measures the proxy's peak RSS meanwhile.
func bigStream(e *env, event, chunk []byte, size int64) (bigStreamResult, error) {
	var r bigStreamResult
	pending := e.fake.Enqueue(fakeapi.Invocation{Payload: event})
	id, err := nextEvent(e.client, e.addr)
	if err != nil {
		return r, err
	}
	if e.pid != 0 {
		if err := resetPeakRSS(e.pid); err != nil {
			return r, err
		}
	}
	req, err := http.NewRequest(http.MethodPost, "http://"+e.addr+runtimeapi.PathInvocation+id+"/response",
		&repeatBody{chunk: chunk, left: size})
	if err != nil {
		return r, err
	}
	req.ContentLength = -1
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set(runtimeapi.HeaderResponseMode, "streaming")
	// Declared like aws-lambda-go does; sent only on a failure.
	req.Trailer = http.Header{runtimeapi.HeaderErrorType: nil, runtimeapi.HeaderErrorBody: nil}
	start := time.Now()
	resp, err := e.client.Do(req)
	if err != nil {
		return r, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	r.Duration = time.Since(start)
	if resp.StatusCode != http.StatusAccepted {
		return r, fmt.Errorf("%s: %d-byte stream answered %d", e.tgt.name, size, resp.StatusCode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := pending.Wait(ctx)
	if err != nil {
		return r, err
	}
	if res.Size != size {
		return r, fmt.Errorf("%s: %d bytes of the stream arrived, want %d", e.tgt.name, res.Size, size)
	}
	if e.pid != 0 {
		if r.PeakRSS, _, err = procMem(e.pid); err != nil {
			return r, err
		}
	}
	return r, nil
}
