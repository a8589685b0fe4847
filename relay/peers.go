package relay

import (
	"context"
	"encoding/json"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/delivery"
)

// peerMessage is what one instance's hub sends another's over
// kinehook.Peers: a delivery frame for the listener the other holds
// (Kind "req"), or that listener's result frame back (Kind "res", Err when
// the other could not pass it on).
type peerMessage struct {
	Kind     string                `json:"k"`
	Corr     string                `json:"c"`
	Endpoint string                `json:"e,omitempty"`
	Frame    *kinehook.ListenFrame `json:"f,omitempty"`
	Err      string                `json:"err,omitempty"`
}

// sendVia hands one attempt to the instance holding the endpoint's
// listener and waits for its answer or ctx.
func (h *Hub) sendVia(ctx context.Context, instance string, out delivery.Result, f *kinehook.ListenFrame, now time.Time) delivery.Result {
	ch := make(chan *peerMessage, 1)
	h.mu.Lock()
	h.remote[f.ID] = ch
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.remote, f.ID)
		h.mu.Unlock()
	}()
	b, _ := json.Marshal(&peerMessage{Kind: "req", Corr: f.ID, Endpoint: f.EndpointID, Frame: f})
	if len(b) > h.peers.MaxPeerPayload() {
		out.Outcome, out.RetryAfter = delivery.OutcomeBackoff, h.retry
		out.Err = ErrOtherInstance + " (" + instance + "), and the event is too large to relay between instances"
		return out
	}
	start := time.Now()
	if err := h.peers.SendPeer(ctx, instance, string(b)); err != nil {
		out.Outcome, out.RetryAfter = delivery.OutcomeBackoff, h.retry
		out.Err = ErrOtherInstance + " (" + instance + "): " + err.Error()
		return out
	}
	select {
	case r := <-ch:
		out.Duration = time.Since(start)
		if r.Err != "" || r.Frame == nil {
			out.Outcome, out.RetryAfter, out.Err = delivery.OutcomeBackoff, h.retry, r.Err
			return out
		}
		apply(&out, r.Frame, now)
	case <-ctx.Done():
		out.Duration = time.Since(start)
		out.Outcome = delivery.OutcomeTimeout
	}
	return out
}

// onPeer handles a message from another instance: a delivery for a
// listener held here (passed on, its result sent back), or the result of
// one this instance sent.
func (h *Hub) onPeer(from, payload string) {
	var m peerMessage
	if json.Unmarshal([]byte(payload), &m) != nil || m.Corr == "" {
		return
	}
	switch m.Kind {
	case "res":
		h.mu.Lock()
		ch := h.remote[m.Corr]
		h.mu.Unlock()
		if ch != nil {
			select {
			case ch <- &m:
			default:
			}
		}
	case "req":
		if m.Frame == nil {
			return
		}
		res := peerMessage{Kind: "res", Corr: m.Corr}
		res.Frame, res.Err = h.forward(m.Endpoint, m.Frame)
		b, _ := json.Marshal(&res)
		if len(b) > h.peers.MaxPeerPayload() && res.Frame != nil {
			res.Frame.Response = "" // the status is what matters; the excerpt does not fit
			b, _ = json.Marshal(&res)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = h.peers.SendPeer(ctx, from, string(b)) // lost: the sender's deadline decides
	}
}

// forward passes a delivery frame from another instance to the listener
// held here and waits for its result, within the frame's timeout.
func (h *Hub) forward(endpointID string, f *kinehook.ListenFrame) (*kinehook.ListenFrame, string) {
	h.mu.Lock()
	c := h.conns[endpointID]
	h.mu.Unlock()
	if c == nil {
		return nil, ErrNotConnected + " (on " + h.instance + " either)"
	}
	timeout := time.Duration(f.TimeoutMS) * time.Millisecond
	if timeout <= 0 {
		timeout = 15 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ch := make(chan *kinehook.ListenFrame, 1)
	c.mu.Lock()
	c.pending[f.ID] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, f.ID)
		c.mu.Unlock()
	}()
	if err := c.l.Send(ctx, f); err != nil {
		return nil, errListenerSendPref + err.Error()
	}
	select {
	case r := <-ch:
		return r, ""
	case <-c.gone:
		return nil, ErrListenerGone
	case <-ctx.Done():
		return &kinehook.ListenFrame{Type: kinehook.FrameResult, ID: f.ID, Error: "no answer in time", Timeout: true}, ""
	}
}
