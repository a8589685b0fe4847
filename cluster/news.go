package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kinehook/kinehook"
)

// listen keeps a listening connection and passes news to the owner. After
// a reconnect it asks for a full reload of the owned partitions, since
// notifications sent while it was away are lost.
func (c *Coordinator) listen(ctx context.Context, owner kinehook.PartitionOwner, done chan<- struct{}) {
	defer close(done)
	defer c.listening.Store(false)
	backoff := 100 * time.Millisecond
	first := true
	for ctx.Err() == nil {
		connected := false
		ready := func() {
			connected = true
			c.listening.Store(true)
			if !first {
				c.afterGap(ctx)
			}
			first = false
		}
		err := c.d.Listen(ctx, []string{ChannelDeliveries, ChannelEndpoints, ChannelSync, ChannelPeers}, ready,
			func(channel, payload string) { c.handle(ctx, owner, channel, payload) })
		if connected {
			backoff = 100 * time.Millisecond
			if ctx.Err() == nil {
				c.log.Warn("cluster: LISTEN connection lost", "err", err)
			}
			c.listening.Store(false)
			c.gap.Store(true)
			continue
		}
		if ctx.Err() != nil {
			return
		}
		c.storeWarn("cluster: LISTEN connection", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// afterGap asks for the reload that makes up for the notifications lost
// while the connection was down, and waits for it.
func (c *Coordinator) afterGap(ctx context.Context) {
	c.log.Info("cluster: LISTEN connection back; reloading owned partitions")
	c.reloadSoon()
	// Handle no news before the reload: a delivery announced now must not
	// start before older ones announced during the gap, which only the
	// reload brings. News waits in the socket.
	for c.gap.Load() && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
}

// handle acts on one notification: the echo of a Sync, deliveries to wake,
// an endpoint to refresh. An instance ignores its own news.
func (c *Coordinator) handle(ctx context.Context, owner kinehook.PartitionOwner, channel, payload string) {
	from, rest, ok := strings.Cut(payload, " ")
	if !ok {
		return
	}
	if channel == ChannelSync {
		if from == c.id {
			c.echo(rest)
		}
		return
	}
	if from == c.id {
		return
	}
	switch channel {
	case ChannelDeliveries:
		ids := c.ownedOf(strings.Split(rest, ","))
		if len(ids) == 0 {
			return
		}
		c.loadMu.Lock()
		err := owner.Wake(ctx, ids)
		c.loadMu.Unlock()
		if err != nil && ctx.Err() == nil {
			c.storeWarn("cluster: wake; reloading owned partitions", err)
			c.needReassign.Store(true)
		}
	case ChannelEndpoints:
		pid, eid, ok := strings.Cut(rest, " ")
		if ok {
			owner.RefreshEndpoint(ctx, pid, eid)
		}
	case ChannelPeers:
		c.handlePeer(from, rest)
	}
}

// deliveryPayloads builds the payloads announcing deliveries, each under
// the size limit: "<instance> <id>[:<partition>],...". With the partition,
// an instance wakes only for the partitions it owns instead of reading
// every announced delivery; parts may be nil.
func (c *Coordinator) deliveryPayloads(ids []string, parts []int) []string {
	var payloads []string
	var sb strings.Builder
	for i, id := range ids {
		entry := id
		if parts != nil {
			entry += ":" + strconv.Itoa(parts[i])
		}
		if sb.Len() > 0 && sb.Len()+1+len(entry) > maxNotifyPayload {
			payloads = append(payloads, sb.String())
			sb.Reset()
		}
		if sb.Len() == 0 {
			sb.WriteString(c.id)
			sb.WriteByte(' ')
		} else {
			sb.WriteByte(',')
		}
		sb.WriteString(entry)
	}
	return append(payloads, sb.String())
}

// ownedOf keeps the announced deliveries this instance may own: those
// whose partition is assigned here, and those announced without one. It
// strips the partitions.
func (c *Coordinator) ownedOf(entries []string) []string {
	ids := entries[:0]
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range entries {
		id, part, ok := strings.Cut(e, ":")
		if ok {
			p, err := strconv.Atoi(part)
			if err == nil && p >= 0 && p < kinehook.NumPartitions && !c.assigned[p] {
				continue
			}
		}
		ids = append(ids, id)
	}
	return ids
}

// AnnounceDeliveries notifies the other instances of new or reopened
// deliveries, in payloads under the NOTIFY size limit, in one statement.
func (c *Coordinator) AnnounceDeliveries(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	payloads := c.deliveryPayloads(ids, nil)
	c.mu.Lock()
	known := !c.lastRenew.IsZero()
	c.mu.Unlock()
	if !known {
		// Before our first heartbeat, others may not know we exist and so
		// skip the ordering sync on their ingests: register first.
		if err := c.d.Register(ctx, c.id); err != nil {
			return fmt.Errorf("cluster: announce: register instance: %w", err)
		}
	}
	if err := c.notify(ctx, ChannelDeliveries, payloads); err != nil {
		c.unsentMu.Lock()
		if len(c.unsent) < maxUnsent {
			c.unsent = append(c.unsent, ids...)
		}
		c.unsentMu.Unlock()
		return err
	}
	return nil
}

// maxUnsent bounds the announcements kept for retry; beyond it the owners'
// reload after the outage is what finds the deliveries.
const maxUnsent = 100000

// retryUnsent sends the announcements that failed earlier.
func (c *Coordinator) retryUnsent(ctx context.Context) {
	c.unsentMu.Lock()
	ids := c.unsent
	c.unsent = nil
	c.unsentMu.Unlock()
	if len(ids) == 0 {
		return
	}
	if err := c.AnnounceDeliveries(ctx, ids); err != nil {
		c.storeWarn("cluster: announce deliveries again", err, "n", len(ids))
		return
	}
	c.log.Info("cluster: announced deliveries after a failure", "n", len(ids))
}

// AnnounceEndpoint notifies the other instances that an endpoint changed.
func (c *Coordinator) AnnounceEndpoint(ctx context.Context, projectID, endpointID string) error {
	return c.notify(ctx, ChannelEndpoints, []string{c.id + " " + projectID + " " + endpointID})
}

// notify sends payloads, trying three times.
func (c *Coordinator) notify(ctx context.Context, channel string, payloads []string) error {
	var err error
	for try := range 3 {
		if try > 0 {
			select {
			case <-ctx.Done():
				return fmt.Errorf("cluster: notify %s: %w", channel, err)
			case <-time.After(time.Duration(try) * 100 * time.Millisecond):
			}
		}
		if err = c.d.Notify(ctx, channel, payloads); err == nil {
			return nil
		}
	}
	return fmt.Errorf("cluster: notify %s: %w", channel, err)
}

// Sync returns once this instance's listener has handled every notification
// committed before Sync was called. PostgreSQL delivers notifications in
// commit order, so Sync sends one to itself and waits for its echo.
//
// It closes a race between instances: event A of a resource is accepted by
// instance Z (which notifies the owner X), then event B of the same resource
// by X itself. If X queued B before handling Z's notification, B could
// overtake A. AfterCommit does this after every ingest while other
// instances are live.
func (c *Coordinator) Sync(ctx context.Context) error {
	if !c.listening.Load() {
		return errors.New("cluster: sync: LISTEN connection down")
	}
	token, ch := c.register()
	defer c.unregister(token)
	if err := c.notify(ctx, ChannelSync, []string{c.id + " " + token}); err != nil {
		return err
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("cluster: sync: %w", ctx.Err())
	}
}

func (c *Coordinator) register() (string, chan struct{}) {
	token := kinehook.NewID("s")
	ch := make(chan struct{})
	c.syncMu.Lock()
	if c.waiters == nil {
		c.waiters = map[string]chan struct{}{}
	}
	c.waiters[token] = ch
	c.syncMu.Unlock()
	return token, ch
}

func (c *Coordinator) unregister(token string) {
	c.syncMu.Lock()
	delete(c.waiters, token)
	c.syncMu.Unlock()
}

// echo wakes the Sync waiting for token.
func (c *Coordinator) echo(token string) {
	c.syncMu.Lock()
	if ch := c.waiters[token]; ch != nil {
		close(ch)
		delete(c.waiters, token)
	}
	c.syncMu.Unlock()
}
