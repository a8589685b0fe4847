package delivery

import (
	"context"
	"time"

	"github.com/kinehook/kinehook"
)

// pendingResult is an attempt result waiting to be written; done runs after
// the commit (it advances the resource queue).
type pendingResult struct {
	res  kinehook.AttemptResult
	done func()
}

// writer batches attempt results into RecordAttempts commits.
func (e *Engine) writer() {
	defer e.bg.Done()
	defer close(e.writerEnd)
	g := newGatherer(e.resultCh, func(pendingResult) int { return 1 }, e.cfg.ResultBatch, e.cfg.ResultWindow, e.cfg.ResultLinger)
	batch := make([]pendingResult, 0, e.cfg.ResultBatch)
	results := make([]kinehook.AttemptResult, 0, e.cfg.ResultBatch)
	for {
		r, ok := <-e.resultCh
		if !ok {
			return
		}
		batch, ok = g.fill(append(batch[:0], r), 1)
		results = results[:0]
		for _, p := range batch {
			results = append(results, p.res)
		}
		e.record(results)
		for _, p := range batch {
			p.done()
		}
		clear(batch)
		if !ok {
			return
		}
	}
}

// record writes results, retrying on store errors. A batch that keeps
// failing is split so that one bad row (say, a delivery deleted meanwhile)
// cannot hold back the others.
func (e *Engine) record(results []kinehook.AttemptResult) {
	delay := 50 * time.Millisecond
	for try := 0; ; try++ {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := e.store.RecordAttempts(ctx, results)
		cancel()
		if err == nil {
			return
		}
		if kinehook.ErrorCode(err) == kinehook.ENOTFOUND && len(results) == 1 {
			e.log.Warn("delivery: attempt of a vanished delivery not recorded", "delivery", results[0].Attempt.DeliveryID)
			return
		}
		if len(results) > 1 && try >= 1 {
			for i := range results {
				e.record(results[i : i+1])
			}
			return
		}
		e.storeError("delivery: record attempts", err, "n", len(results), "retry_in", delay)
		if e.stopping.Load() && try >= 3 {
			e.log.Error("delivery: giving up recording attempts at shutdown; the deliveries stay open", "n", len(results))
			return
		}
		time.Sleep(delay)
		delay = min(2*delay, 5*time.Second)
	}
}

// afterRecord advances a resource queue once its head's result is durable.
func (e *Engine) afterRecord(es *epState, it *item, final bool) {
	q := it.q
	jobs := e.pumpWith(es, func() {
		q.busy = false
		if final {
			// Under es.mu, so a load queueing this endpoint's deliveries sees
			// either the item still queued or the mark.
			e.markFinished(it.id)
		}
		if !es.deleted { // (a deleted endpoint pumps nothing)
			e.advanceLocked(es, it, final)
		}
	})
	// Not busy until the queue has moved on and the endpoint's timer is
	// armed for its next turn: whoever waits for the partition to be idle
	// (a revocation, a test about to move the clock) sees the retry's timer.
	e.partBusy[q.partition].Add(-1)
	e.dispatch(es, jobs)
}

// advanceLocked moves a resource queue on after its head's result: a final
// head leaves the queue, the rest waits for its turn (or is dropped when the
// partition went elsewhere meanwhile). es.mu must be held.
func (e *Engine) advanceLocked(es *epState, it *item, final bool) {
	q := it.q
	now := e.clock.Now().UnixNano()
	if final && len(q.items) > 0 && q.items[0] == it {
		q.items[0] = nil
		q.items = q.items[1:]
		delete(es.byID, it.id)
		es.queued--
		if len(q.items) == 0 {
			q.items = nil
			es.place(q, now)
			if es.queues[q.key] == q {
				delete(es.queues, q.key)
			}
		}
	}
	if len(q.items) > 0 {
		if e.owned[q.partition].Load() {
			es.place(q, now)
		} else {
			// Released under es.mu: the jobs dispatched next see the budget freed.
			e.releasePayloads(es.dropQueue(q, false))
		}
	}
}
