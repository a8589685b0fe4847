package cluster

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"time"

	"github.com/kinehook/kinehook"
)

type opKind int

const (
	opAssign opKind = iota
	opRevoke
	opReassign
)

// op is one call into the owner, queued by step for the worker.
type op struct {
	kind    opKind
	parts   []int
	release bool // after Revoke, release the leases
	pending bool // counted in pendingAssign
}

// Run takes part in the partition sharing until ctx ends, calling Assign and
// Revoke on owner; it never gives up on database errors (it retries every
// heartbeat). At ctx end it revokes its partitions, releases their leases so
// others take them at once, and leaves the instances table.
func (c *Coordinator) Run(ctx context.Context, owner kinehook.PartitionOwner) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("cluster: coordinator already running")
	}
	defer c.running.Store(false)
	c.reset(owner)
	c.d.ShareIngests(c.id, c.ttl, ChannelDeliveries, c.deliveryPayloads)
	defer c.d.ShareIngests(c.id, c.ttl, ChannelDeliveries, nil)
	defer c.setOwner(nil)

	ops := make(chan op, 4*kinehook.NumPartitions)
	wctx, wcancel := context.WithCancel(context.Background())
	defer wcancel()
	var crashed atomic.Bool
	workerDone := make(chan struct{})
	go c.worker(wctx, owner, ops, &crashed, workerDone)

	lctx, lcancel := context.WithCancel(ctx)
	listenDone := make(chan struct{})
	go c.listen(lctx, owner, listenDone)
	c.beat(ctx, ops)
	lcancel()
	<-listenDone

	if c.crashOnStop {
		crashed.Store(true)
		wcancel()
		close(ops)
		<-workerDone
		return nil
	}
	c.handBack(ops, wcancel, workerDone)
	return nil
}

// reset forgets the state of an earlier Run and sets the owner.
func (c *Coordinator) reset(owner kinehook.PartitionOwner) {
	c.mu.Lock()
	c.held, c.assigned, c.releasing = [kinehook.NumPartitions]bool{}, [kinehook.NumPartitions]bool{}, [kinehook.NumPartitions]bool{}
	c.lastRenew = time.Time{}
	c.mu.Unlock()
	c.needReassign.Store(false)
	c.gap.Store(false)
	c.pendingAssign.Store(0)
	c.setOwner(owner)
}

func (c *Coordinator) setOwner(owner kinehook.PartitionOwner) {
	c.ownerMu.Lock()
	c.owner = owner
	c.ownerMu.Unlock()
}

// beat runs a step at once, then every heartbeat or when kicked, until ctx
// ends.
func (c *Coordinator) beat(ctx context.Context, ops chan<- op) {
	tick := time.NewTicker(c.hb)
	defer tick.Stop()
	c.step(ctx, ops)
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-tick.C:
			c.step(ctx, ops)
		case <-c.kick:
			c.step(ctx, ops)
		}
	}
}

// handBack is the graceful stop: revoke everything, release the leases
// (bounded by the stop timeout) and leave the instances table.
func (c *Coordinator) handBack(ops chan op, wcancel context.CancelFunc, workerDone <-chan struct{}) {
	c.mu.Lock()
	var parts []int
	for p := range c.held {
		if c.held[p] && !c.releasing[p] {
			parts = append(parts, p)
			c.releasing[p] = true
			c.assigned[p] = false
		}
	}
	c.mu.Unlock()
	if len(parts) > 0 {
		ops <- op{kind: opRevoke, parts: parts, release: true}
	}
	close(ops)
	stopTimer := time.AfterFunc(c.stopTO, wcancel)
	<-workerDone
	stopTimer.Stop()
	dctx, dcancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer dcancel()
	if err := c.d.Leave(dctx, c.id); err != nil {
		c.storeWarn("cluster: leave instances table", err)
	}
	c.log.Info("cluster: coordinator stopped", "released", len(parts))
}

// step renews the heartbeat and leases, gives up lost partitions, and moves
// toward this instance's fair share. It only talks to the database; calls
// into the owner (which may be slow) are queued for the worker.
func (c *Coordinator) step(ctx context.Context, ops chan<- op) {
	c.mu.Lock()
	var held []int
	for p, h := range c.held {
		if h {
			held = append(held, p)
		}
	}
	c.mu.Unlock()

	sent := time.Now()
	qctx, cancel := context.WithTimeout(ctx, max(c.ttl/3, c.hb))
	defer cancel()
	renewed, live, stale, err := c.d.Heartbeat(qctx, c.id, held, c.ttl)
	if err != nil {
		c.heartbeatFailed(ctx, ops, err)
		return
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	c.lastRenew = sent
	c.dropLostLocked(ops, renewed)
	c.rebalanceLocked(qctx, ops, live)
	c.noteDeadLocked(stale)
	if c.needReassign.Swap(false) {
		c.queue(ops, op{kind: opReassign})
	}
	go c.retryUnsent(ctx)
}

// heartbeatFailed fences: it stops delivering before the leases can
// expire, so that no partition is ever delivered by two instances.
func (c *Coordinator) heartbeatFailed(ctx context.Context, ops chan<- op, err error) {
	if ctx.Err() != nil {
		return
	}
	c.storeWarn("cluster: heartbeat failed", err)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.lastRenew.IsZero() && time.Since(c.lastRenew) > c.ttl-c.hb {
		c.dropAllLocked(ops, "leases about to expire")
	}
}

// dropLostLocked revokes the partitions whose lease the heartbeat did not
// renew (another instance took an expired lease).
func (c *Coordinator) dropLostLocked(ops chan<- op, renewed []int) {
	var keep [kinehook.NumPartitions]bool
	for _, p := range renewed {
		keep[p] = true
	}
	var lost []int
	for p := range c.held {
		if c.held[p] && !keep[p] {
			c.held[p] = false
			if c.assigned[p] {
				c.assigned[p] = false
				lost = append(lost, p)
			}
		}
	}
	if len(lost) > 0 {
		c.log.Warn("cluster: leases lost", "partitions", len(lost))
		c.queue(ops, op{kind: opRevoke, parts: lost})
	}
}

// fairShare is this instance's share of the partitions: NumPartitions split
// over the live instances in id order (this one counted live).
func fairShare(self string, live []string) (target, instances int) {
	idx := slices.Index(live, self)
	if idx < 0 {
		live = append(slices.Clone(live), self)
		slices.Sort(live)
		idx = slices.Index(live, self)
	}
	target = kinehook.NumPartitions / len(live)
	if idx < kinehook.NumPartitions%len(live) {
		target++
	}
	return target, len(live)
}

// rebalanceLocked hands partitions back above the fair share, or claims
// free ones below it.
func (c *Coordinator) rebalanceLocked(ctx context.Context, ops chan<- op, live []string) {
	target, n := fairShare(c.id, live)
	mine, releasing := 0, 0
	for p := range c.held {
		switch {
		case !c.held[p]:
		case c.releasing[p]:
			releasing++
		default:
			mine++
		}
	}
	switch {
	case mine > target && releasing == 0:
		c.giveBackLocked(ops, mine-target, target, n)
	case mine < target && c.listening.Load():
		// Claim only while listening: news about claimed partitions must
		// reach us. Released and expired leases are free.
		c.claimLocked(ctx, ops, target-mine, target, n)
	}
}

// giveBackLocked revokes and then releases the highest n partitions held.
func (c *Coordinator) giveBackLocked(ops chan<- op, n, target, instances int) {
	var give []int
	for p := kinehook.NumPartitions - 1; p >= 0 && len(give) < n; p-- {
		if c.held[p] && !c.releasing[p] {
			give = append(give, p)
			c.releasing[p] = true
			c.assigned[p] = false
		}
	}
	c.log.Info("cluster: handing partitions back", "n", len(give), "target", target, "instances", instances, "partitions", give)
	c.queue(ops, op{kind: opRevoke, parts: give, release: true})
}

// claimLocked leases up to n free partitions and queues their Assign.
func (c *Coordinator) claimLocked(ctx context.Context, ops chan<- op, n, target, instances int) {
	parts, err := c.d.Claim(ctx, c.id, n, c.ttl)
	if err != nil {
		c.storeWarn("cluster: claim partitions", err)
		return
	}
	if len(parts) == 0 {
		return
	}
	parts = slices.Clone(parts)
	slices.Sort(parts)
	for _, p := range parts {
		c.held[p], c.assigned[p] = true, true
	}
	c.log.Info("cluster: claimed partitions", "n", len(parts), "target", target, "instances", instances, "partitions", parts)
	c.pendingAssign.Add(1)
	c.queue(ops, op{kind: opAssign, parts: parts, pending: true})
}

// noteDeadLocked asks for a reload when an instance newly died: it may
// have committed deliveries it never announced.
func (c *Coordinator) noteDeadLocked(stale []string) {
	if c.dead == nil {
		c.dead = map[string]bool{}
	}
	newlyDead := false
	for _, id := range stale {
		if !c.dead[id] {
			c.dead[id] = true
			newlyDead = true
		}
	}
	if newlyDead && len(c.assignedLocked()) > 0 {
		c.log.Info("cluster: an instance died; reloading owned partitions for deliveries it never announced", "dead", stale)
		c.needReassign.Store(true)
	}
}

// dropAllLocked revokes every partition without releasing the leases (they
// will expire): used when the database cannot be reached.
func (c *Coordinator) dropAllLocked(ops chan<- op, why string) {
	var parts []int
	for p := range c.held {
		if c.assigned[p] {
			parts = append(parts, p)
		}
		c.held[p], c.assigned[p] = false, false
	}
	if len(parts) > 0 {
		c.log.Warn("cluster: stopping delivery", "why", why, "partitions", len(parts))
		c.queue(ops, op{kind: opRevoke, parts: parts})
	}
}

func (c *Coordinator) queue(ops chan<- op, o op) {
	// The buffer holds far more than the ops a few steps can make; never
	// block the heartbeat on the worker.
	select {
	case ops <- o:
	default:
		go func() {
			defer func() { _ = recover() }() // ops closed at stop: the op is moot
			ops <- o
		}()
	}
}

// worker makes the owner calls in order, so a partition's Revoke never
// overtakes its Assign, while step keeps renewing leases meanwhile.
func (c *Coordinator) worker(ctx context.Context, owner kinehook.PartitionOwner, ops <-chan op, crashed *atomic.Bool, done chan<- struct{}) {
	defer close(done)
	for o := range ops {
		if !crashed.Load() {
			c.runOp(ctx, owner, o)
		}
		if o.pending {
			c.pendingAssign.Add(-1)
		}
	}
}

func (c *Coordinator) runOp(ctx context.Context, owner kinehook.PartitionOwner, o op) {
	if o.kind == opRevoke {
		c.revoke(ctx, owner, o)
		return
	}
	c.assign(ctx, owner, o)
}

// assign hands claimed partitions (opAssign) or every owned one (opReassign,
// a reload) to the owner, with Wake kept out meanwhile.
func (c *Coordinator) assign(ctx context.Context, owner kinehook.PartitionOwner, o op) {
	reload := o.kind == opReassign
	c.mu.Lock()
	var parts []int
	if reload {
		parts = c.assignedLocked()
	} else {
		parts = slices.DeleteFunc(slices.Clone(o.parts), func(p int) bool { return !c.assigned[p] })
	}
	c.mu.Unlock()
	if len(parts) == 0 || ctx.Err() != nil {
		if reload {
			c.gap.Store(false)
		}
		return
	}
	c.ownerCalls.Add(1)
	c.loadMu.Lock()
	err := owner.Assign(ctx, parts)
	c.loadMu.Unlock()
	c.log.Debug("cluster: assigned", "partitions", parts, "reload", reload, "err", err)
	if err != nil {
		c.storeWarn("cluster: assign failed; reloading at the next heartbeat", err)
		c.needReassign.Store(true)
	} else if reload {
		c.gap.Store(false)
	}
}

// revoke takes partitions from the owner and, for a hand-back, releases
// their leases once the owner has let go.
func (c *Coordinator) revoke(ctx context.Context, owner kinehook.PartitionOwner, o op) {
	c.ownerCalls.Add(1)
	err := owner.Revoke(ctx, o.parts)
	c.log.Debug("cluster: revoked", "partitions", o.parts, "release", o.release, "err", err)
	if err != nil {
		c.log.Warn("cluster: revoke did not finish; leases left to expire", "err", err)
	} else if o.release {
		c.release(o.parts)
	}
	c.mu.Lock()
	for _, p := range o.parts {
		if o.release {
			c.held[p] = false
		}
		c.releasing[p] = false
	}
	c.mu.Unlock()
}

// release frees leases right away so other instances need not wait for
// them to expire; on failure they simply expire.
func (c *Coordinator) release(parts []int) {
	ctx, cancel := context.WithTimeout(context.Background(), c.ttl)
	defer cancel()
	if err := c.d.Release(ctx, c.id, parts); err != nil {
		c.storeWarn("cluster: release leases; they will expire", err)
	}
}
