package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/client"
)

// Reconnection back-off of `kinehook listen --server`.
const (
	listenBackoffMin = 500 * time.Millisecond
	listenBackoffMax = 15 * time.Second
	// listenStable is how long a connection must have lasted for the
	// back-off to start again from its minimum.
	listenStable = 10 * time.Second
	// listenReadLimit bounds one frame from the server: a delivery's body
	// (at most the server's event limit, 1 MiB by default) in base64.
	listenReadLimit = 8 << 20
)

// listenServer is one `kinehook listen --server` session: the connection
// to the server, its endpoint, and the forwarding to the local app.
type listenServer struct {
	o       *listenOptions
	wsURL   string
	key     string
	pid     string
	forward *http.Client
	out     *eventPrinter
	stderr  io.Writer

	endpointID string // the endpoint to resume on reconnect
	secret     string
}

// listenServerFatal is a refusal that reconnecting cannot change (a bad key,
// an unknown project, too many listeners).
type listenServerFatal struct{ err error }

func (e *listenServerFatal) Error() string { return e.err.Error() }
func (e *listenServerFatal) Unwrap() error { return e.err }

// runListenServer connects to the server and forwards its deliveries until
// ctx ends, reconnecting with back-off (resuming the same endpoint).
func runListenServer(ctx context.Context, o *listenOptions, stdout, stderr io.Writer) error {
	if o.forwardTo == "" {
		return errors.New("--server needs --forward-to URL: where to pass each delivery on (your app)")
	}
	if !strings.HasPrefix(o.forwardTo, "http://") && !strings.HasPrefix(o.forwardTo, "https://") {
		return fmt.Errorf("--forward-to %q: want an http:// or https:// URL", o.forwardTo)
	}
	api := &apiOptions{server: o.server, key: o.key, project: o.project, withProject: true, timeout: 30 * time.Second}
	c, err := api.client()
	if err != nil {
		return err
	}
	pid, err := api.projectID(ctx, c)
	if err != nil {
		return err
	}
	ls := &listenServer{o: o, key: resolvedKey(o.key), pid: pid, stderr: stderr,
		out: newEventPrinter(stdout, o.json),
		forward: &http.Client{
			Transport:     &http.Transport{DisableCompression: true, Proxy: nil},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}}
	ls.wsURL = listenURL(c, pid)
	return ls.run(ctx)
}

// resolvedKey is the API key as apiOptions.client finds it.
func resolvedKey(flag string) string {
	cfg, _, _ := loadConfig()
	return firstSet(flag, os.Getenv("KINEHOOK_API_KEY"), cfg.Key)
}

// listenURL is the WebSocket URL of the project's listen route.
func listenURL(c *client.Client, pid string) string {
	base := strings.TrimRight(c.BaseURL(), "/")
	switch {
	case strings.HasPrefix(base, "https://"):
		base = "wss://" + strings.TrimPrefix(base, "https://")
	case strings.HasPrefix(base, "http://"):
		base = "ws://" + strings.TrimPrefix(base, "http://")
	}
	return base + "/v1/projects/" + url.PathEscape(pid) + "/listen"
}

// run connects, serves, and reconnects until ctx ends or the server refuses
// for good.
func (ls *listenServer) run(ctx context.Context) error {
	wait := listenBackoffMin
	for {
		start := time.Now()
		err := ls.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var fatal *listenServerFatal
		if errors.As(err, &fatal) {
			return err
		}
		if time.Since(start) > listenStable {
			wait = listenBackoffMin
		}
		fmt.Fprintf(ls.stderr, "kinehook listen: disconnected: %v; reconnecting in %s\n", err, wait.Round(100*time.Millisecond))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(wait*2, listenBackoffMax)
	}
}

// session is one connection, from the dial to its end.
func (ls *listenServer) session(ctx context.Context) error {
	q := url.Values{}
	if len(ls.o.events) > 0 {
		q.Set("events", strings.Join(ls.o.events, ","))
	}
	if ls.endpointID != "" {
		q.Set("endpoint_id", ls.endpointID)
	}
	u := ls.wsURL
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	conn, resp, err := websocket.Dial(dctx, u, &websocket.DialOptions{HTTPHeader: http.Header{
		"Authorization": {"Bearer " + ls.key}, "User-Agent": {"kinehook-cli/1 listen"}}})
	cancel()
	if err != nil {
		return dialError(resp, err)
	}
	defer conn.CloseNow()
	conn.SetReadLimit(listenReadLimit)
	_, data, err := conn.Read(ctx)
	if err != nil {
		return fmt.Errorf("read hello: %w", err)
	}
	hello, err := kinehook.ParseListenFrame(data)
	if err != nil || hello.Type != kinehook.FrameHello {
		return &listenServerFatal{fmt.Errorf("the server's first frame is not a hello: %v", err)}
	}
	ls.greet(hello)
	var wg sync.WaitGroup
	defer wg.Wait() // after stop: forwards in flight are cut short, their answers cannot be reported
	sessCtx, stop := context.WithCancel(ctx)
	defer stop()
	for {
		_, data, err := conn.Read(sessCtx)
		if err != nil {
			if ctx.Err() != nil {
				conn.Close(websocket.StatusNormalClosure, "listener stopped")
				return nil
			}
			if cs := websocket.CloseStatus(err); cs != -1 {
				var ce websocket.CloseError
				errors.As(err, &ce)
				return fmt.Errorf("server closed the connection: %s", ce.Reason)
			}
			return err
		}
		f, err := kinehook.ParseListenFrame(data)
		if err != nil || f.Type != kinehook.FrameDelivery {
			fmt.Fprintf(ls.stderr, "kinehook listen: ignoring a frame: %v\n", err)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := ls.deliver(sessCtx, f)
			b, _ := json.Marshal(r)
			if err := conn.Write(sessCtx, websocket.MessageText, b); err != nil && sessCtx.Err() == nil {
				fmt.Fprintf(ls.stderr, "kinehook listen: report %s: %v\n", f.WebhookID, err)
			}
		}()
	}
}

// greet prints what the developer needs from a hello: on a new endpoint its
// id and signing secret, on a resume one line.
func (ls *listenServer) greet(h *kinehook.ListenFrame) {
	events := "every event"
	if len(h.EventTypes) > 0 {
		events = strings.Join(h.EventTypes, ",")
	}
	if h.Resumed && h.EndpointID == ls.endpointID && h.Secret == ls.secret {
		fmt.Fprintf(ls.stderr, "kinehook listen: reconnected; endpoint %s resumed\n", h.EndpointID)
		return
	}
	ls.endpointID, ls.secret = h.EndpointID, h.Secret
	fmt.Fprintf(ls.stderr, "kinehook listen: ready; endpoint %s (project %s) forwards %s to %s\n", h.EndpointID, h.ProjectID, events, ls.o.forwardTo)
	fmt.Fprintf(ls.stderr, "kinehook listen: webhook signing secret: %s\n", h.Secret)
}

// dialError turns a failed handshake into an error; the API's refusals that
// a retry cannot change are fatal.
func dialError(resp *http.Response, err error) error {
	if resp == nil {
		return fmt.Errorf("connect: %w", err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	msg := strings.TrimSpace(string(body))
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error.Message != "" {
		msg = e.Error.Message
	}
	out := fmt.Errorf("connect: %d %s: %s", resp.StatusCode, http.StatusText(resp.StatusCode), msg)
	switch resp.StatusCode {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusConflict, http.StatusUnprocessableEntity:
		return &listenServerFatal{out}
	}
	return out
}

// deliver forwards one delivery to the local app and returns the result
// frame to report; it prints the event's line.
func (ls *listenServer) deliver(ctx context.Context, f *kinehook.ListenFrame) *kinehook.ListenFrame {
	timeout := 30 * time.Second
	if f.TimeoutMS > 0 {
		// Answer before the server's deadline, so the outcome is the local one.
		timeout = max(time.Duration(f.TimeoutMS)*time.Millisecond-250*time.Millisecond, 500*time.Millisecond)
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r := &kinehook.ListenFrame{Type: kinehook.FrameResult, ID: f.ID}
	start := time.Now()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, ls.o.forwardTo, bytes.NewReader(f.Body))
	if err == nil {
		for k, v := range f.Headers {
			req.Header.Set(k, v)
		}
		var resp *http.Response
		if resp, err = ls.forward.Do(req); err == nil {
			excerpt, _ := io.ReadAll(io.LimitReader(resp.Body, kinehook.MaxListenResponse))
			resp.Body.Close()
			r.Status, r.RetryAfter = resp.StatusCode, cut(resp.Header.Get("Retry-After"), 64)
			r.Response = cut(strings.ToValidUTF8(string(excerpt), "\uFFFD"), kinehook.MaxListenResponse)
		}
	}
	r.DurationMS = float64(time.Since(start).Microseconds()) / 1000
	if err != nil {
		r.Timeout = rctx.Err() != nil && ctx.Err() == nil
		r.Error = cut(strings.ToValidUTF8(err.Error(), "?"), kinehook.MaxListenError)
	}
	ls.out.line(eventLine{Time: time.Now(), Event: f.EventType, Resource: f.Resource, ID: f.WebhookID,
		Status: r.Status, Attempt: f.Attempt, Duration: time.Duration(r.DurationMS * float64(time.Millisecond)), Error: r.Error})
	return r
}

// cut shortens s to at most n bytes on a rune boundary.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
