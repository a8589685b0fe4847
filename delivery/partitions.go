package delivery

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/kinehook/kinehook"
)

// loadWindow is one read of open deliveries from the store and their
// queueing. finished holds the deliveries whose final result was committed
// while it ran: it may have read them still open, and must not queue them
// again (they would be sent twice, the second time after newer deliveries
// of their resource).
type loadWindow struct {
	finished map[string]struct{}
}

// beginLoad opens a load window; endLoad closes it. A delivery that
// finished before beginLoad is final in the store before the read starts
// (a result is committed before its queue advances), so only those
// finishing inside the window need remembering, and only for this window:
// one reopened later (a manual retry) is read again by a later load.
func (e *Engine) beginLoad() *loadWindow {
	w := &loadWindow{finished: map[string]struct{}{}}
	e.finMu.Lock()
	e.loads = append(e.loads, w)
	e.nLoads.Store(int32(len(e.loads)))
	e.finMu.Unlock()
	return w
}

func (e *Engine) endLoad(w *loadWindow) {
	e.finMu.Lock()
	if i := slices.Index(e.loads, w); i >= 0 {
		e.loads = slices.Delete(e.loads, i, i+1)
	}
	e.nLoads.Store(int32(len(e.loads)))
	e.finMu.Unlock()
}

// markFinished tells the open load windows that a delivery's final result
// was committed; with none open it costs one atomic load.
func (e *Engine) markFinished(id string) {
	if e.nLoads.Load() == 0 {
		return
	}
	e.finMu.Lock()
	for _, w := range e.loads {
		w.finished[id] = struct{}{}
	}
	e.finMu.Unlock()
}

// finishedDuring reports whether a delivery finished inside window w.
func (e *Engine) finishedDuring(w *loadWindow, id string) bool {
	if w == nil {
		return false
	}
	e.finMu.Lock()
	defer e.finMu.Unlock()
	_, ok := w.finished[id]
	return ok
}

// Assign loads the open deliveries of the given partitions and delivers them.
func (e *Engine) Assign(ctx context.Context, partitions []int) error {
	e.assignMu.Lock()
	defer e.assignMu.Unlock()
	e.assignGen.Add(1)
	defer e.assignGen.Add(1)
	for _, p := range partitions {
		if p >= 0 && p < kinehook.NumPartitions {
			e.owned[p].Store(true)
		}
	}
	w := e.beginLoad()
	defer e.endLoad(w)
	batch := map[*epState][]*kinehook.Delivery{}
	n := 0
	flush := func() {
		for es, ds := range batch {
			e.enqueueAll(es, ds, enqReload, nil, w)
		}
		clear(batch)
		n = 0
	}
	err := e.store.OpenDeliveries(ctx, partitions, func(d *kinehook.Delivery) error {
		es := e.endpointState(d.ProjectID, d.EndpointID)
		batch[es] = append(batch[es], d)
		if n++; n >= 1000 {
			flush()
		}
		return nil
	})
	flush()
	e.recOnce.Do(func() { close(e.recovered) })
	if err != nil {
		return fmt.Errorf("assign partitions: load open deliveries: %w", err)
	}
	return nil
}

// Revoke stops work in the given partitions: their queued deliveries are
// forgotten (they stay open in the store) and Revoke waits until the
// attempts in flight there are recorded.
func (e *Engine) Revoke(ctx context.Context, partitions []int) error {
	var set [kinehook.NumPartitions]bool
	for _, p := range partitions {
		if p >= 0 && p < kinehook.NumPartitions {
			set[p] = true
			e.owned[p].Store(false)
		}
	}
	for _, es := range e.endpointStates() {
		var pls []*payload
		es.mu.Lock()
		for _, q := range es.queues {
			if set[q.partition] {
				pls = append(pls, es.dropQueue(q, true)...)
			}
		}
		depth := es.queued
		es.mu.Unlock()
		e.obs.QueueDepth(es.id, depth)
		e.releasePayloads(pls)
	}
	return e.waitIdle(ctx, &set)
}

// waitIdle waits until no attempt is in flight in the partitions of set
// (each one's result recorded), polling.
func (e *Engine) waitIdle(ctx context.Context, set *[kinehook.NumPartitions]bool) error {
	for {
		busy := false
		for p := range set {
			if set[p] && e.partBusy[p].Load() > 0 {
				busy = true
				break
			}
		}
		if !busy {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("revoke partitions: %w", ctx.Err())
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// Wake loads deliveries created or reopened by another instance that fall in
// partitions this instance owns.
func (e *Engine) Wake(ctx context.Context, ids []string) error {
	e.assignMu.RLock()
	defer e.assignMu.RUnlock()
	return e.rereadLocked(ctx, ids, enqWake)
}
