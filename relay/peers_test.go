package relay

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/delivery"
)

// memPeers connects hubs in memory as the cluster coordinator does over
// PostgreSQL; drop loses every message (a broken listening connection).
type memPeers struct {
	id  string
	net *memNet
}

type memNet struct {
	mu       sync.Mutex
	handlers map[string]func(from, payload string)
	drop     bool
	max      int
}

func (p *memPeers) ID() string { return p.id }
func (p *memPeers) SendPeer(_ context.Context, to, payload string) error {
	p.net.mu.Lock()
	h, drop := p.net.handlers[to], p.net.drop
	p.net.mu.Unlock()
	if h != nil && !drop {
		go h(p.id, payload)
	}
	return nil
}
func (p *memPeers) OnPeer(h func(from, payload string)) {
	p.net.mu.Lock()
	p.net.handlers[p.id] = h
	p.net.mu.Unlock()
}
func (p *memPeers) MaxPeerPayload() int { return p.net.max }

// twoHubs is instance a, holding ep_1's listener (answering 201), and b.
func twoHubs(t *testing.T) (a, b *Hub, ep *kinehook.Endpoint, net *memNet, l *fakeListener) {
	net = &memNet{handlers: map[string]func(string, string){}, max: 7000}
	a = New(Options{Peers: &memPeers{id: "inst_a", net: net}})
	b = New(Options{Peers: &memPeers{id: "inst_b", net: net}})
	ep = cliEndpoint()
	ep.Config = kinehook.ListenerState{Connected: true, Instance: "inst_a", Session: "s"}.Marshal()
	l = &fakeListener{hub: a, eid: ep.ID, async: true, answer: func(f *kinehook.ListenFrame) *kinehook.ListenFrame {
		return &kinehook.ListenFrame{Type: kinehook.FrameResult, ID: f.ID, Status: 201, Response: "made " + f.WebhookID, DurationMS: 0.1}
	}}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b, ep, net, l
}

// TestSendThroughPeer: an instance without the listener hands the attempt
// to the instance holding it and records the local answer.
func TestSendThroughPeer(t *testing.T) {
	a, b, ep, _, l := twoHubs(t)
	if a.Instance() != "inst_a" {
		t.Fatalf("instance %q, want the peers' id", a.Instance())
	}
	defer a.Attach(ep.ID, l)()
	r := b.Send(sendCtx(t, 5*time.Second), message(ep, "msg_1"))
	if r.Outcome != delivery.OutcomeSuccess || r.StatusCode != 201 || r.Response != "made msg_1" || r.Headers["Webhook-Id"] != "msg_1" {
		t.Fatalf("relayed attempt: %+v", r)
	}
	f := l.frames[0]
	if string(f.Body) != string(message(ep, "msg_1").Body) || f.Headers["Webhook-Signature"] != "v1,c2ln" {
		t.Errorf("frame the listener got: %+v", f)
	}
}

// TestSendThroughPeerFailures: the holder without the listener, a lost
// message, an event too large to relay: each backs off or times out,
// retryably.
func TestSendThroughPeerFailures(t *testing.T) {
	a, b, ep, net, l := twoHubs(t)
	if r := b.Send(sendCtx(t, 5*time.Second), message(ep, "msg_1")); r.Outcome != delivery.OutcomeBackoff || !strings.HasPrefix(r.Err, ErrNotConnected) {
		t.Errorf("holder without the listener: %+v", r)
	}
	defer a.Attach(ep.ID, l)()
	net.mu.Lock()
	net.drop = true
	net.mu.Unlock()
	if r := b.Send(sendCtx(t, 200*time.Millisecond), message(ep, "msg_2")); r.Outcome != delivery.OutcomeTimeout {
		t.Errorf("message lost: %+v", r)
	}
	net.mu.Lock()
	net.drop, net.max = false, 100
	net.mu.Unlock()
	if r := b.Send(sendCtx(t, 5*time.Second), message(ep, "msg_3")); r.Outcome != delivery.OutcomeBackoff || !strings.Contains(r.Err, "too large to relay") {
		t.Errorf("too large: %+v", r)
	}
}
