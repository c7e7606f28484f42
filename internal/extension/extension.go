// Package extension is a client of the Lambda Extensions API (2020-01-01):
// register, wait for the next event, report init and exit errors.
//
// Protocol invariants (runtime-api-notes.md section 6 and T2, T11, T12, T21):
// an external extension registers under its executable's exact file name,
// else it counts as internal and init hangs; it never calls event/next twice
// at once; init/error is valid only before the first event/next; after
// init/error or exit/error it exits; and it never exits on its own otherwise.
package extension

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/lrap/lrap/runtimeapi"
)

// Client talks to the Extensions API at one address as one registered
// extension.
type Client struct {
	base string
	http *http.Client
	id   string
}

// Event is an Extensions API event. Only the fields lrap uses are decoded.
type Event struct {
	Type           string
	Deadline       time.Time // zero when the event carries none
	ShutdownReason string
	RequestID      string
}

// StatusError is a non-2xx answer of the Extensions API. It is final: the API
// refuses the call in this state, retrying would not change that.
type StatusError struct {
	Call   string
	Status int
	Body   string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("extensions API %s answered %d: %s", e.Call, e.Status, strings.TrimSpace(e.Body))
}

// newHTTPClient has no timeout: event/next is a long poll that may last the
// life of the environment and spans freezes (T4). Proxies are ignored.
func newHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:              nil,
		DialContext:        (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: -1}).DialContext,
		DisableCompression: true,
	}}
}

// Register registers the extension named name (the executable's file name)
// for the given events at apiAddr (host:port). Connection failures are retried
// with backoff until ctx ends; an answer other than 200 is final.
func Register(ctx context.Context, apiAddr, name string, events []string) (*Client, error) {
	c := &Client{base: "http://" + apiAddr, http: newHTTPClient()}
	body, _ := json.Marshal(struct {
		Events []string `json:"events"`
	}{events})
	var resp *http.Response
	err := retry(ctx, func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+runtimeapi.PathRegister, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set(runtimeapi.HeaderExtensionName, name)
		req.Header.Set("Content-Type", "application/json")
		resp, err = c.http.Do(req)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("register with the extensions API at %s: %w", apiAddr, err)
	}
	defer resp.Body.Close()
	if err := statusError("register", resp, http.StatusOK); err != nil {
		return nil, err
	}
	c.id = resp.Header.Get(runtimeapi.HeaderExtensionIdentifier)
	if c.id == "" {
		return nil, errors.New("extensions API register answered without " + runtimeapi.HeaderExtensionIdentifier)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return c, nil
}

// NextEvent waits for the next event. Connection failures are retried with
// backoff until ctx ends (lrap must not exit on its own); an answer other
// than 200 is returned as a *StatusError.
func (c *Client) NextEvent(ctx context.Context) (Event, error) {
	var resp *http.Response
	err := retry(ctx, func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+runtimeapi.PathEventNext, nil)
		if err != nil {
			return err
		}
		req.Header.Set(runtimeapi.HeaderExtensionIdentifier, c.id)
		resp, err = c.http.Do(req)
		return err
	})
	if err != nil {
		return Event{}, err
	}
	defer resp.Body.Close()
	if err := statusError("event/next", resp, http.StatusOK); err != nil {
		return Event{}, err
	}
	return decodeEvent(io.LimitReader(resp.Body, 1<<20))
}

// decodeEvent accepts deadlineMs as a number (what the data plane sends) or a
// numeric string (what older documentation shows).
func decodeEvent(r io.Reader) (Event, error) {
	var raw struct {
		EventType      string          `json:"eventType"`
		DeadlineMs     json.RawMessage `json:"deadlineMs"`
		ShutdownReason string          `json:"shutdownReason"`
		RequestID      string          `json:"requestId"`
	}
	if err := json.NewDecoder(r).Decode(&raw); err != nil {
		return Event{}, fmt.Errorf("decode extension event: %w", err)
	}
	ev := Event{Type: raw.EventType, ShutdownReason: raw.ShutdownReason, RequestID: raw.RequestID}
	if ms, err := strconv.ParseInt(strings.Trim(string(raw.DeadlineMs), `"`), 10, 64); err == nil && ms > 0 {
		ev.Deadline = time.UnixMilli(ms)
	}
	return ev, nil
}

// InitError reports a failed init. Lambda shows errorType in the function's
// init error; the caller must exit afterwards.
func (c *Client) InitError(ctx context.Context, errorType string, cause error) error {
	return c.report(ctx, "init/error", runtimeapi.PathExtInitError, errorType, cause)
}

// ExitError reports a fatal error after init; the caller must exit afterwards.
func (c *Client) ExitError(ctx context.Context, errorType string, cause error) error {
	return c.report(ctx, "exit/error", runtimeapi.PathExtExitError, errorType, cause)
}

func (c *Client) report(ctx context.Context, call, path, errorType string, cause error) error {
	body := runtimeapi.ErrorDocument{ErrorMessage: cause.Error(), ErrorType: errorType}.Marshal()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set(runtimeapi.HeaderExtensionIdentifier, c.id)
	req.Header.Set(runtimeapi.HeaderExtensionErrorType, errorType)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("extensions API %s: %w", call, err)
	}
	defer resp.Body.Close()
	return statusError(call, resp, http.StatusAccepted)
}

func statusError(call string, resp *http.Response, want int) error {
	if resp.StatusCode == want {
		return nil
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	return &StatusError{Call: call, Status: resp.StatusCode, Body: string(b)}
}

// retry calls fn until it succeeds or ctx ends, backing off from 10ms to 1s.
// Only transport errors reach here: the API was not reachable at all.
func retry(ctx context.Context, fn func() error) error {
	wait := 10 * time.Millisecond
	for {
		err := fn()
		if err == nil || ctx.Err() != nil {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
		wait = min(2*wait, time.Second)
	}
}
