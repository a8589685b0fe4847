// Package relay is the transport of cli endpoints (kinehook.EndpointCLI):
// instead of dialling out, it hands each attempt to the `kinehook listen
// --server` connection that holds the endpoint, and takes the CLI's report
// of the local answer as the attempt's outcome.
//
// The Hub is one object wired twice by cmd/kinehook: as the engine's
// delivery.Transport for "cli", and as the application layer's relay
// (app.Relay), through which the HTTP adapter attaches connections and
// passes back results. It knows no WebSocket: a connection is a
// kinehook.Listener. With several instances, an attempt whose endpoint's
// listener another instance holds goes there through kinehook.Peers
// (peers.go) and its answer comes back the same way.
package relay

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/delivery"
)

// DefaultNotConnectedRetry is how long the engine pauses a cli endpoint
// whose CLI is not connected before trying again.
const DefaultNotConnectedRetry = 2 * time.Second

// Errors an attempt records when no CLI here can take it.
const (
	ErrNotConnected     = "listener not connected"
	ErrOtherInstance    = "listener connected to another instance"
	ErrListenerGone     = "listener disconnected before answering"
	errListenerSendPref = "listener: send: "
)

// Options configure a Hub.
type Options struct {
	// Instance names this server instance in the endpoints' ListenerState,
	// so another instance can tell a CLI is connected elsewhere; a new
	// random id when empty.
	Instance string
	// NotConnectedRetry is the pause asked for while the endpoint's CLI is
	// not connected here (DefaultNotConnectedRetry when 0). It is a
	// back-off, not a failure: no attempt of the retry schedule is used up
	// and the breaker does not open while the developer reconnects.
	NotConnectedRetry time.Duration
	// UserAgent is sent to the local app ("kinehook/<version>" when empty).
	UserAgent string
	// Peers, when set (several instances on PostgreSQL), carries an
	// attempt to the instance holding the endpoint's listener and its
	// answer back; Instance is then Peers.ID(). Without it such an attempt
	// backs off with ErrOtherInstance.
	Peers kinehook.Peers
}

// Hub holds the connected listeners of this instance, one per cli endpoint,
// and the attempts waiting for their answers. It is safe for concurrent use.
type Hub struct {
	instance  string
	retry     time.Duration
	userAgent string
	// nonce and seq make each attempt's correlation id unique, across
	// the instances too (an instance passes on another's ids).
	nonce string
	seq   atomic.Uint64

	peers kinehook.Peers

	mu     sync.Mutex
	conns  map[string]*conn             // endpoint id -> its listener
	remote map[string]chan *peerMessage // attempts sent to another instance, by correlation id
	closed bool
}

// conn is one attached listener and its attempts in flight.
type conn struct {
	l       kinehook.Listener
	gone    chan struct{} // closed when detached
	mu      sync.Mutex
	pending map[string]chan *kinehook.ListenFrame
}

// New returns an empty Hub.
func New(o Options) *Hub {
	if o.Peers != nil {
		o.Instance = o.Peers.ID()
	}
	if o.Instance == "" {
		o.Instance = kinehook.NewID("inst")
	}
	if o.NotConnectedRetry <= 0 {
		o.NotConnectedRetry = DefaultNotConnectedRetry
	}
	if o.UserAgent == "" {
		o.UserAgent = "kinehook/" + delivery.Version
	}
	nonce := kinehook.NewID("n")
	h := &Hub{instance: o.Instance, retry: o.NotConnectedRetry, userAgent: o.UserAgent, peers: o.Peers, nonce: nonce[len(nonce)-6:] + "-",
		conns: map[string]*conn{}, remote: map[string]chan *peerMessage{}}
	if h.peers != nil {
		h.peers.OnPeer(h.onPeer)
	}
	return h
}

// Instance is this instance's name in ListenerState.
func (h *Hub) Instance() string { return h.instance }

// Attach makes l the listener of endpointID on this instance, replacing
// (and closing) one attached before. release detaches it and reports
// whether it was still the endpoint's listener (false once replaced); its
// attempts in flight then fail as ErrListenerGone.
func (h *Hub) Attach(endpointID string, l kinehook.Listener) (release func() bool) {
	c := &conn{l: l, gone: make(chan struct{}), pending: map[string]chan *kinehook.ListenFrame{}}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		l.Close("server shutting down")
		close(c.gone)
		return func() bool { return false }
	}
	old := h.conns[endpointID]
	h.conns[endpointID] = c
	h.mu.Unlock()
	if old != nil {
		close(old.gone)
		old.l.Close("replaced by a newer connection of the same endpoint")
	}
	var once sync.Once
	return func() bool {
		current := false
		once.Do(func() {
			h.mu.Lock()
			if h.conns[endpointID] == c {
				delete(h.conns, endpointID)
				current = true
				close(c.gone)
			}
			h.mu.Unlock()
		})
		return current
	}
}

// Connected reports whether endpointID's listener is attached here.
func (h *Hub) Connected(endpointID string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.conns[endpointID] != nil
}

// Resolve hands a result frame to the attempt waiting for it; a result
// nobody waits for (late, after the attempt timed out) is dropped.
func (h *Hub) Resolve(endpointID string, f *kinehook.ListenFrame) {
	h.mu.Lock()
	c := h.conns[endpointID]
	h.mu.Unlock()
	if c == nil || f == nil || f.Type != kinehook.FrameResult {
		return
	}
	c.mu.Lock()
	ch := c.pending[f.ID]
	delete(c.pending, f.ID)
	c.mu.Unlock()
	if ch != nil {
		ch <- f // buffered: never blocks
	}
}

// Close detaches and closes every listener (the engine calls it at
// shutdown, once no attempt is in flight); later Attach calls are refused.
func (h *Hub) Close() error {
	h.mu.Lock()
	h.closed = true
	conns := h.conns
	h.conns = map[string]*conn{}
	h.mu.Unlock()
	for _, c := range conns {
		close(c.gone)
		c.l.Close("server shutting down")
	}
	return nil
}

// Send hands one attempt to the endpoint's listener and waits for its
// answer, the attempt's deadline or the listener's going away.
func (h *Hub) Send(ctx context.Context, m delivery.Message) delivery.Result {
	ep := m.Endpoint
	req := delivery.RequestHeaders(h.userAgent, m)
	out := delivery.Result{Headers: delivery.RecordedHeaders(req, ep.Headers)}
	headers := make(map[string]string, len(req)) // the frame's: one value each
	for k, vs := range req {
		headers[k] = vs[0]
	}
	h.mu.Lock()
	c := h.conns[ep.ID]
	h.mu.Unlock()
	id := m.ID + "." + h.nonce + strconv.FormatUint(h.seq.Add(1), 36)
	if c == nil {
		out.Outcome, out.RetryAfter, out.Err = delivery.OutcomeBackoff, h.retry, ErrNotConnected
		if st := kinehook.ParseListenerState(ep.Config); st.Connected && st.Instance != "" && st.Instance != h.instance {
			if h.peers != nil {
				f := h.frame(ctx, id, m, headers)
				f.EndpointID = ep.ID
				return h.sendVia(ctx, st.Instance, out, f, m.Now)
			}
			out.Err = ErrOtherInstance + " (" + st.Instance + ")"
		}
		return out
	}
	ch := make(chan *kinehook.ListenFrame, 1)
	c.mu.Lock()
	c.pending[id] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
	}()
	f := h.frame(ctx, id, m, headers)
	start := time.Now()
	if err := c.l.Send(ctx, f); err != nil {
		out.Duration = time.Since(start)
		if ctx.Err() != nil {
			out.Outcome = delivery.OutcomeTimeout
			return out
		}
		out.Outcome, out.Err = delivery.OutcomeNetworkError, errListenerSendPref+err.Error()
		return out
	}
	select {
	case r := <-ch:
		out.Duration = time.Since(start)
		apply(&out, r, m.Now)
	case <-c.gone:
		out.Duration = time.Since(start)
		out.Outcome, out.Err = delivery.OutcomeNetworkError, ErrListenerGone
	case <-ctx.Done():
		out.Duration = time.Since(start)
		out.Outcome = delivery.OutcomeTimeout
	}
	return out
}

// frame is the delivery frame of one attempt.
func (h *Hub) frame(ctx context.Context, id string, m delivery.Message, headers map[string]string) *kinehook.ListenFrame {
	f := &kinehook.ListenFrame{Type: kinehook.FrameDelivery, ID: id, WebhookID: m.ID, EventType: string(m.EventType),
		Resource: m.ResourceKey, Headers: headers, Body: m.Body, Attempt: m.Attempt}
	if dl, ok := ctx.Deadline(); ok {
		f.TimeoutMS = max(time.Until(dl).Milliseconds()-100, 1) // room for the way back
	}
	return f
}

// apply classifies the CLI's report as the webhook transport classifies an
// answer: 2xx success, 410 gone, 429/503 with Retry-After back off, 3xx
// (not followed) and every other status failure; no status is the local
// app's timeout or connection error.
func apply(out *delivery.Result, r *kinehook.ListenFrame, now time.Time) {
	if local := time.Duration(r.DurationMS * float64(time.Millisecond)); local > 0 && local <= out.Duration {
		out.Duration = local // the local app's latency, not the tunnel's
	}
	out.Response = r.Response
	if len(out.Response) > delivery.ResponseBodyLimit {
		out.Response = out.Response[:delivery.ResponseBodyLimit]
	}
	if r.Status == 0 {
		out.Outcome, out.Err = delivery.OutcomeNetworkError, "local: "+r.Error
		if r.Timeout {
			out.Outcome = delivery.OutcomeTimeout
		}
		return
	}
	out.StatusCode = r.Status
	delivery.ClassifyHTTPStatus(out, r.RetryAfter, now)
}
