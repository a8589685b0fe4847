package cluster

import (
	"context"
	"time"

	"github.com/kinehook/kinehook"
)

// syncWait bounds the ordering waits after an ingest, so ingest never
// stalls on a slow or broken listener (lost notifications are then made up
// by the reload after the reconnect).
const syncWait = 2 * time.Second

// AfterCommit keeps acceptance order across instances; the engine calls it
// after each ingest commit, before it queues the new deliveries. It first
// wakes the open deliveries of repeated events (wakeOpen). Then, if the
// commit created deliveries, it waits until every delivery another
// instance announced before the commit has been handed to the owner, and
// for partition loads in progress (ordered). When it cannot confirm that
// within syncWait, it marks the new results Deferred and reloads the owned
// partitions, which reads them from the store in acceptance order. It does
// nothing while Run does not run.
func (c *Coordinator) AfterCommit(ctx context.Context, results []kinehook.IngestResult) {
	if !c.running.Load() {
		return // not sharing: the store neither announced nor was asked to
	}
	var reopen []string
	created, announced := false, false
	for i := range results {
		r := &results[i]
		reopen = append(reopen, r.OpenDeliveries...)
		if !r.Duplicate {
			created = created || len(r.Deliveries) > 0
			announced = announced || r.Announced
		}
	}
	c.wakeOpen(ctx, reopen)
	if !created || c.ordered(ctx, announced) {
		return
	}
	// Older deliveries of these resources may not be queued yet: the
	// reload queues these after them, in acceptance order.
	for i := range results {
		if !results[i].Duplicate {
			results[i].Deferred = true
		}
	}
	c.reloadSoon()
}

// ordered reports whether every older delivery of the committed resources
// is known here: with others live (the store announced the commit, which it
// does only then) it waits for a Sync, so every delivery another instance
// announced before the commit has been handed to the owner. Then it waits
// for partitions claimed but not loaded and for a load in progress, which
// may bring older deliveries of the same resources. It reports false when
// it could not confirm that within syncWait.
func (c *Coordinator) ordered(ctx context.Context, others bool) bool {
	ctx, cancel := context.WithTimeout(ctx, syncWait)
	defer cancel()
	// While the LISTEN connection is down, and until the reload after it,
	// older deliveries may be unknown here: wait for the reload.
	if !c.await(ctx, 5*time.Millisecond, func() bool { return !c.gap.Load() && c.listening.Load() }) {
		c.log.Warn("cluster: ingest: LISTEN connection down; these deliveries wait for a reload of the partitions")
		return false
	}
	if others {
		if err := c.Sync(ctx); err != nil {
			c.log.Warn("cluster: ingest: no sync with the LISTEN connection; these deliveries wait for a reload of the partitions", "err", err)
			return false
		}
	}
	if !c.await(ctx, 2*time.Millisecond, func() bool { return c.pendingAssign.Load() <= 0 }) {
		c.log.Warn("cluster: ingest: a partition assignment is taking long; these deliveries wait for a reload of the partitions")
		return false
	}
	if !c.loadDone(ctx) {
		c.log.Warn("cluster: ingest: a partition load is taking long; these deliveries wait for a reload of the partitions")
		return false
	}
	return true
}

// await polls cond every interval until it holds (true) or ctx ends.
func (c *Coordinator) await(ctx context.Context, interval time.Duration, cond func() bool) bool {
	for !cond() {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(interval):
		}
	}
	return true
}

// loadDone waits for a partition load in progress (Assign under loadMu).
func (c *Coordinator) loadDone(ctx context.Context) bool {
	if c.loadMu.TryLock() {
		c.loadMu.Unlock()
		return true
	}
	loaded := make(chan struct{})
	go func() {
		c.loadMu.Lock()
		c.loadMu.Unlock() //nolint:staticcheck // waiting for the holder, not guarding anything
		close(loaded)
	}()
	select {
	case <-loaded:
		return true
	case <-ctx.Done():
		return false
	}
}

// wakeOpen makes sure open deliveries found again (an idempotent retry of an
// event whose first instance may have died before announcing it) reach
// their owner before the retry is answered: announced to the others, and
// handed to this instance's own engine, which keeps those it owns.
func (c *Coordinator) wakeOpen(ctx context.Context, ids []string) {
	if len(ids) == 0 {
		return
	}
	if err := c.AnnounceDeliveries(ctx, ids); err != nil {
		c.storeWarn("cluster: ingest: announce deliveries of a repeated event", err)
	}
	c.ownerMu.Lock()
	owner := c.owner
	c.ownerMu.Unlock()
	if owner == nil {
		return
	}
	c.loadMu.Lock()
	err := owner.Wake(ctx, ids)
	c.loadMu.Unlock()
	if err != nil {
		c.storeWarn("cluster: ingest: wake deliveries of a repeated event", err)
	}
}
