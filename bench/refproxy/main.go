// Command refproxy is lrap-bench's reference: the Runtime API proxy extension
// a Go user would write instead of using lrap, a plain
// net/http/httputil.ReverseProxy behind the same lifecycle (bind, register
// for SHUTDOWN, serve, shut down on SHUTDOWN).
//
// It is deliberately ordinary, neither slowed down nor hand-tuned. The
// ReverseProxy keeps its zero-value settings (no BufferPool, default
// FlushInterval, which flushes chunked answers at once); the transport is
// http.DefaultTransport's clone with what any careful user sets: no
// HTTP_PROXY, no transparent compression, and an idle pool large enough for
// Managed Instances concurrency (the default of 2 idle connections per host
// would make it redial under concurrent load, which is not what we measure).
//
// It reads the same environment lrap does: AWS_LAMBDA_RUNTIME_API (upstream
// and Extensions API) and LRAP_LISTENER_PORT. lrap-bench builds it with the
// same flags as lrap, so start-up time, memory and CPU compare like with
// like. It is not a product: it has the bugs lrap exists to avoid (an
// abandoned /next is cancelled upstream, request trailers are dropped).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

func main() {
	if err := run(); err != nil {
		log.Printf("refproxy: %v", err)
		os.Exit(1)
	}
}

func run() error {
	api := os.Getenv("AWS_LAMBDA_RUNTIME_API")
	if api == "" {
		return errors.New("AWS_LAMBDA_RUNTIME_API is not set")
	}
	port := os.Getenv("LRAP_LISTENER_PORT")
	if port == "" {
		port = "9009"
	}

	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.DisableCompression = true
	tr.MaxIdleConnsPerHost = 64
	target := &url.URL{Scheme: "http", Host: api}
	rp := &httputil.ReverseProxy{
		Rewrite:   func(r *httputil.ProxyRequest) { r.SetURL(target) },
		Transport: tr,
	}
	srv := &http.Server{Handler: rp}

	// Bind before registering: the runtime starts once every extension has
	// registered, and its first /next must find the proxy listening.
	ln, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		return err
	}
	go func() { _ = srv.Serve(ln) }()

	client := &http.Client{Transport: &http.Transport{Proxy: nil}}
	base := "http://" + api + "/2020-01-01/extension"
	id, err := register(client, base, filepath.Base(os.Args[0]))
	if err != nil {
		return err
	}
	for {
		ev, err := nextEvent(client, base, id)
		if err != nil {
			return err
		}
		if ev.EventType != "SHUTDOWN" {
			continue
		}
		ctx, cancel := context.WithDeadline(context.Background(), time.UnixMilli(ev.DeadlineMs).Add(-100*time.Millisecond))
		err = srv.Shutdown(ctx)
		cancel()
		if err != nil {
			_ = srv.Close()
		}
		return nil
	}
}

func register(c *http.Client, base, name string) (string, error) {
	req, err := http.NewRequest(http.MethodPost, base+"/register", strings.NewReader(`{"events":["SHUTDOWN"]}`))
	if err != nil {
		return "", err
	}
	req.Header.Set("Lambda-Extension-Name", name)
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("register: status %d", resp.StatusCode)
	}
	return resp.Header.Get("Lambda-Extension-Identifier"), nil
}

type event struct {
	EventType  string `json:"eventType"`
	DeadlineMs int64  `json:"deadlineMs"`
}

func nextEvent(c *http.Client, base, id string) (event, error) {
	var ev event
	req, err := http.NewRequest(http.MethodGet, base+"/event/next", nil)
	if err != nil {
		return ev, err
	}
	req.Header.Set("Lambda-Extension-Identifier", id)
	resp, err := c.Do(req)
	if err != nil {
		return ev, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return ev, fmt.Errorf("event/next: status %d", resp.StatusCode)
	}
	return ev, json.NewDecoder(resp.Body).Decode(&ev)
}
