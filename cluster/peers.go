package cluster

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/kinehook/kinehook"
)

// ChannelPeers carries messages from one instance to another
// (kinehook.Peers): "<from> <to> <payload>".
const ChannelPeers = "kinehook_peers"

// maxPeerPayload keeps a peer message under PostgreSQL's NOTIFY limit
// (8000 bytes) with room for the two instance ids.
const maxPeerPayload = 7000

var _ kinehook.Peers = (*Coordinator)(nil)

// peerHandler is the handler OnPeer set (a func(from, payload string)).
type peerHandler = atomic.Pointer[func(from, payload string)]

// SendPeer sends payload to instance to over the notification channel. It
// is at most once: a message sent while to's listening connection is down
// is lost, and the caller's deadline decides.
func (c *Coordinator) SendPeer(ctx context.Context, to, payload string) error {
	if len(payload) > maxPeerPayload {
		return fmt.Errorf("cluster: peer message of %d bytes, at most %d", len(payload), maxPeerPayload)
	}
	if err := c.d.Notify(ctx, ChannelPeers, []string{c.id + " " + to + " " + payload}); err != nil {
		return fmt.Errorf("cluster: notify %s: %w", ChannelPeers, err)
	}
	return nil
}

// OnPeer sets the handler of the messages sent to this instance; it runs
// on its own goroutine per message.
func (c *Coordinator) OnPeer(handle func(from, payload string)) { c.peer.Store(&handle) }

// MaxPeerPayload is the largest payload SendPeer takes.
func (c *Coordinator) MaxPeerPayload() int { return maxPeerPayload }

// handlePeer passes a message addressed to this instance to the handler.
func (c *Coordinator) handlePeer(from, rest string) {
	to, payload, ok := strings.Cut(rest, " ")
	if !ok || to != c.id {
		return
	}
	if h := c.peer.Load(); h != nil {
		go (*h)(from, payload)
	}
}
