package relay

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/delivery"
)

// fakeListener answers each delivery frame with answer(frame) through the
// hub, as the HTTP adapter does with a CLI's result frame; a nil answer
// leaves the attempt waiting.
type fakeListener struct {
	hub    *Hub
	eid    string
	answer func(f *kinehook.ListenFrame) *kinehook.ListenFrame
	async  bool
	err    error

	mu     sync.Mutex
	frames []*kinehook.ListenFrame
	closed string
}

func (l *fakeListener) Send(_ context.Context, f *kinehook.ListenFrame) error {
	if l.err != nil {
		return l.err
	}
	l.mu.Lock()
	l.frames = append(l.frames, f)
	l.mu.Unlock()
	if l.answer == nil {
		return nil
	}
	r := l.answer(f)
	if r == nil {
		return nil
	}
	if l.async {
		go l.hub.Resolve(l.eid, r)
	} else {
		l.hub.Resolve(l.eid, r)
	}
	return nil
}

func (l *fakeListener) Close(reason string) {
	l.mu.Lock()
	l.closed = reason
	l.mu.Unlock()
}

func (l *fakeListener) closedWith() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

func message(ep *kinehook.Endpoint, id string) delivery.Message {
	return delivery.Message{Endpoint: ep, ID: id, Timestamp: "1700000000", Signature: "v1,c2ln", Body: []byte(`{"event":"media.update.status"}`),
		EventType: "media.update.status", ResourceKey: "video-1", ProjectID: ep.ProjectID, Now: time.Now(), Attempt: 2, TraceParent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
}

func cliEndpoint() *kinehook.Endpoint {
	return &kinehook.Endpoint{ID: "ep_1", ProjectID: "prj_1", Type: kinehook.EndpointCLI, Headers: map[string]string{"X-Token": "secret-value"}}
}

func sendCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// TestSendNotConnected: without a listener the attempt backs off (no
// attempt of the schedule used), saying why; when the endpoint's state says
// another instance holds the CLI, the error says so.
func TestSendNotConnected(t *testing.T) {
	h := New(Options{Instance: "inst_a", NotConnectedRetry: 3 * time.Second})
	ep := cliEndpoint()
	r := h.Send(sendCtx(t, time.Second), message(ep, "msg_1"))
	if r.Outcome != delivery.OutcomeBackoff || r.Err != ErrNotConnected || r.RetryAfter != 3*time.Second {
		t.Errorf("not connected: %+v", r)
	}
	for _, tc := range []struct {
		state kinehook.ListenerState
		want  string
	}{
		{kinehook.ListenerState{Connected: true, Instance: "inst_b"}, ErrOtherInstance + " (inst_b)"},
		{kinehook.ListenerState{Connected: false, Instance: "inst_b"}, ErrNotConnected},
		{kinehook.ListenerState{Connected: true, Instance: "inst_a"}, ErrNotConnected}, // stale: this instance has none
	} {
		ep.Config = tc.state.Marshal()
		if r := h.Send(sendCtx(t, time.Second), message(ep, "msg_1")); r.Outcome != delivery.OutcomeBackoff || r.Err != tc.want {
			t.Errorf("state %+v: %+v, want back-off %q", tc.state, r, tc.want)
		}
	}
}

// TestSendAnswerMapping: the CLI's report becomes the attempt's outcome as
// the webhook transport would classify the same answer.
func TestSendAnswerMapping(t *testing.T) {
	tests := []struct {
		name    string
		res     kinehook.ListenFrame
		outcome delivery.Outcome
		status  int
		err     string
		retry   time.Duration
	}{
		{"200", kinehook.ListenFrame{Status: 200, Response: "ok"}, delivery.OutcomeSuccess, 200, "", 0},
		{"204", kinehook.ListenFrame{Status: 204}, delivery.OutcomeSuccess, 204, "", 0},
		{"500", kinehook.ListenFrame{Status: 500, Response: "boom"}, delivery.OutcomeHTTPError, 500, "HTTP 500", 0},
		{"404", kinehook.ListenFrame{Status: 404}, delivery.OutcomeHTTPError, 404, "HTTP 404", 0},
		{"410", kinehook.ListenFrame{Status: 410}, delivery.OutcomeGone, 410, "HTTP 410 Gone: endpoint disabled", 0},
		{"302", kinehook.ListenFrame{Status: 302}, delivery.OutcomeHTTPError, 302, "HTTP 302: redirects are not followed", 0},
		{"429 with Retry-After", kinehook.ListenFrame{Status: 429, RetryAfter: "7"}, delivery.OutcomeBackoff, 429, "HTTP 429 with Retry-After: backing off 7s", 7 * time.Second},
		{"503 without Retry-After", kinehook.ListenFrame{Status: 503}, delivery.OutcomeHTTPError, 503, "HTTP 503", 0},
		{"connection refused", kinehook.ListenFrame{Error: "dial tcp 127.0.0.1:3000: connection refused"}, delivery.OutcomeNetworkError, 0, "local: dial tcp 127.0.0.1:3000: connection refused", 0},
		{"local timeout", kinehook.ListenFrame{Error: "context deadline exceeded", Timeout: true}, delivery.OutcomeTimeout, 0, "local: context deadline exceeded", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := New(Options{UserAgent: "kinehook/test"})
			ep := cliEndpoint()
			l := &fakeListener{hub: h, eid: ep.ID, answer: func(f *kinehook.ListenFrame) *kinehook.ListenFrame {
				time.Sleep(2 * time.Millisecond) // the tunnel's time: more than the app's
				r := tt.res
				r.Type, r.ID, r.DurationMS = kinehook.FrameResult, f.ID, 0.5
				return &r
			}}
			defer h.Attach(ep.ID, l)()
			r := h.Send(sendCtx(t, 5*time.Second), message(ep, "msg_1"))
			if r.Outcome != tt.outcome || r.StatusCode != tt.status || r.Err != tt.err || r.RetryAfter != tt.retry || r.Response != tt.res.Response {
				t.Errorf("result %+v, want outcome %v status %d err %q retry %v", r, tt.outcome, tt.status, tt.err, tt.retry)
			}
			if r.Duration != 500*time.Microsecond {
				t.Errorf("duration %v, want the local app's 0.5ms", r.Duration)
			}
			f := l.frames[0]
			want := map[string]string{"Webhook-Id": "msg_1", "Webhook-Timestamp": "1700000000", "Webhook-Signature": "v1,c2ln",
				"Content-Type": "application/json", "User-Agent": "kinehook/test", "X-Token": "secret-value",
				"Traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
			for k, v := range want {
				if f.Headers[k] != v {
					t.Errorf("frame header %s = %q, want %q", k, f.Headers[k], v)
				}
			}
			if string(f.Body) != `{"event":"media.update.status"}` || f.WebhookID != "msg_1" || f.EventType != "media.update.status" || f.Resource != "video-1" || f.TimeoutMS <= 0 || f.Attempt != 2 {
				t.Errorf("frame = %+v", f)
			}
			if r.Headers["X-Token"] == "secret-value" || r.Headers["Webhook-Id"] != "msg_1" {
				t.Errorf("recorded headers %v: custom values must be masked", r.Headers)
			}
		})
	}
}

// TestSendTimeout: a CLI that does not answer within the attempt's deadline
// is a timeout; its late answer is dropped.
func TestSendTimeout(t *testing.T) {
	h := New(Options{})
	ep := cliEndpoint()
	l := &fakeListener{hub: h, eid: ep.ID}
	defer h.Attach(ep.ID, l)()
	start := time.Now()
	r := h.Send(sendCtx(t, 100*time.Millisecond), message(ep, "msg_1"))
	if r.Outcome != delivery.OutcomeTimeout || time.Since(start) > 2*time.Second {
		t.Errorf("result %+v after %v, want a timeout at the deadline", r, time.Since(start))
	}
	h.Resolve(ep.ID, &kinehook.ListenFrame{Type: kinehook.FrameResult, ID: l.frames[0].ID, Status: 200}) // late: no panic, no effect
	h.Resolve("ep_other", &kinehook.ListenFrame{Type: kinehook.FrameResult, ID: "x", Status: 200})
}

// TestSendListenerGone: an attempt waiting on a listener that detaches
// fails at once (retryable), and a listener's write error is a network
// error.
func TestSendListenerGone(t *testing.T) {
	h := New(Options{})
	ep := cliEndpoint()
	l := &fakeListener{hub: h, eid: ep.ID}
	release := h.Attach(ep.ID, l)
	go func() {
		for {
			l.mu.Lock()
			n := len(l.frames)
			l.mu.Unlock()
			if n > 0 {
				release()
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	if r := h.Send(sendCtx(t, 10*time.Second), message(ep, "msg_1")); r.Outcome != delivery.OutcomeNetworkError || r.Err != ErrListenerGone {
		t.Errorf("detached while waiting: %+v", r)
	}
	bad := &fakeListener{err: errors.New("broken pipe")}
	defer h.Attach(ep.ID, bad)()
	if r := h.Send(sendCtx(t, time.Second), message(ep, "msg_2")); r.Outcome != delivery.OutcomeNetworkError || !strings.Contains(r.Err, "broken pipe") {
		t.Errorf("send error: %+v", r)
	}
}

// TestAttachReplacesAndClose: a second connection of one endpoint replaces
// the first (closed, its release reports false); Close closes all and
// refuses later ones.
func TestAttachReplacesAndClose(t *testing.T) {
	h := New(Options{})
	first, second := &fakeListener{}, &fakeListener{}
	rel1 := h.Attach("ep_1", first)
	rel2 := h.Attach("ep_1", second)
	if first.closedWith() == "" || second.closedWith() != "" {
		t.Errorf("closed: first %q second %q", first.closedWith(), second.closedWith())
	}
	if rel1() {
		t.Error("the replaced connection's release reported it current")
	}
	if !h.Connected("ep_1") {
		t.Error("the replacement is not connected")
	}
	if !rel2() || h.Connected("ep_1") {
		t.Error("release of the current connection")
	}
	third := &fakeListener{}
	h.Attach("ep_2", third)
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if third.closedWith() != "server shutting down" || h.Connected("ep_2") {
		t.Errorf("after Close: %q", third.closedWith())
	}
	late := &fakeListener{}
	if h.Attach("ep_3", late)() || late.closedWith() == "" {
		t.Error("Attach after Close was accepted")
	}
}

// TestSendConcurrent: many attempts in flight on one listener, answered out
// of order, each get their own answer.
func TestSendConcurrent(t *testing.T) {
	h := New(Options{})
	ep := cliEndpoint()
	l := &fakeListener{hub: h, eid: ep.ID, async: true, answer: func(f *kinehook.ListenFrame) *kinehook.ListenFrame {
		time.Sleep(time.Duration(len(f.WebhookID)%7) * time.Millisecond)
		return &kinehook.ListenFrame{Type: kinehook.FrameResult, ID: f.ID, Status: 200, Response: f.WebhookID}
	}}
	defer h.Attach(ep.ID, l)()
	var wg sync.WaitGroup
	errs := make(chan string, 200)
	for i := range 200 {
		wg.Go(func() {
			id := fmt.Sprintf("msg_%d%s", i, strings.Repeat("x", i%5))
			if r := h.Send(sendCtx(t, 10*time.Second), message(ep, id)); r.Outcome != delivery.OutcomeSuccess || r.Response != id {
				errs <- fmt.Sprintf("%s got %+v", id, r)
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
