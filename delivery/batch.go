package delivery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/kinehook/kinehook"
)

// ingestReq is one Publish or PublishBatch call waiting for its commit. Its
// events are committed together, never split across transactions.
type ingestReq struct {
	evs  []*kinehook.Event
	res  []kinehook.IngestResult
	err  error
	done chan struct{}
	one  [1]*kinehook.Event // backing array of evs for Publish
}

var ingestReqPool = sync.Pool{New: func() any { return &ingestReq{done: make(chan struct{}, 1)} }}

// committer is the single goroutine that turns concurrent Publish calls into
// group commits and schedules the deliveries they create.
func (e *Engine) committer() {
	defer e.bg.Done()
	defer close(e.ingestEnd)
	batch := make([]*ingestReq, 0, e.cfg.IngestBatch)
	events := make([]*kinehook.Event, 0, e.cfg.IngestBatch)
	for {
		r, ok := <-e.ingestCh
		if !ok {
			return
		}
		batch = append(batch[:0], r)
		batch = e.fill(batch, len(r.evs))
		events = events[:0]
		for _, r := range batch {
			events = append(events, r.evs...)
		}
		e.commit(batch, events)
		clear(events)
	}
}

// fill adds the requests already waiting, or those arriving within the
// window, until the batch holds IngestBatch events (a request is never split:
// the last one may take the batch past that size).
func (e *Engine) fill(batch []*ingestReq, n int) []*ingestReq {
	var deadline <-chan time.Time
	if e.cfg.IngestWindow > 0 {
		t := time.NewTimer(e.cfg.IngestWindow)
		defer t.Stop()
		deadline = t.C
	}
	for n < e.cfg.IngestBatch {
		if deadline == nil {
			select {
			case r, ok := <-e.ingestCh:
				if !ok {
					return batch
				}
				batch = append(batch, r)
				n += len(r.evs)
			default:
				return batch
			}
			continue
		}
		select {
		case r, ok := <-e.ingestCh:
			if !ok {
				return batch
			}
			batch = append(batch, r)
			n += len(r.evs)
		case <-deadline:
			return batch
		}
	}
	return batch
}

func (e *Engine) commit(batch []*ingestReq, events []*kinehook.Event) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	gen := e.assignGen.Load()
	results, err := e.store.IngestEvents(ctx, events)
	if err == nil && len(results) != len(events) {
		err = errors.New("store returned a wrong number of ingest results")
	}
	if err == nil {
		// Part of the commit's latency: the coordinator's ordering wait,
		// which marks Deferred what it cannot yet queue in order.
		e.cfg.Coordinator.AfterCommit(ctx, results)
	}
	storeDown := false
	if err != nil {
		storeDown = errors.Is(err, context.DeadlineExceeded) || e.store.Ping(ctx) != nil
	}
	if err != nil && len(batch) > 1 && !storeDown {
		// The store answers, so the batch may hold one bad request: it must
		// not fail its neighbours. Commit request by request.
		// (r is its caller's again once committed: read its size first.)
		off := 0
		for i, r := range batch {
			n := len(r.evs)
			e.commit(batch[i:i+1], events[off:off+n])
			off += n
		}
		return
	}
	e.obs.IngestCommitted(len(events), time.Since(start))
	if err != nil {
		if storeDown {
			// Callers (the API) answer 503: the client may retry later.
			err = fmt.Errorf("%w: %w", kinehook.Errorf(kinehook.EUNAVAILABLE, "the store is unavailable"), err)
		} else {
			err = fmt.Errorf("publish: store the event: %w", err)
		}
		for _, r := range batch {
			r.err = err
			r.done <- struct{}{}
		}
		return
	}
	e.schedule(results, gen)
	for i := range events {
		e.obs.EventAccepted(events[i].ProjectID, events[i].Type, results[i].Duplicate)
	}
	off := 0
	for _, r := range batch {
		n := len(r.evs)
		r.res = append(r.res[:0], results[off:off+n]...)
		off += n
		r.done <- struct{}{}
	}
}

// schedule queues freshly created deliveries, each at once, and announces
// those whose partition another instance owns. gen is assignGen as read
// before the commit: when an Assign ran since, it may have loaded these
// deliveries from the store and even finished them, so they are read again
// (rereadLocked) instead of queued from memory.
func (e *Engine) schedule(results []kinehook.IngestResult, gen uint64) {
	type group struct {
		ds  []*kinehook.Delivery
		pls []*payload
	}
	groups := map[*epState]*group{}
	var order []*epState
	var foreign []string
	var again []*kinehook.Delivery
	e.assignMu.RLock()
	reread := e.assignedSince(gen)
	for _, res := range results {
		if res.Duplicate || len(res.Deliveries) == 0 {
			continue
		}
		var pl *payload
		if body := res.Event.Payload; len(body) > 0 &&
			e.payloadBytes.Load()+int64(len(body)) <= e.cfg.PayloadBudget {
			// A copy of exact size: the request's read buffer is often
			// twice the body, and the budget counts len, not cap.
			pl = &payload{b: bytes.Clone(body)}
		}
		for _, d := range res.Deliveries {
			if d.Seq == 0 {
				d.Seq = res.Event.Seq
			}
			if d.CreatedAt.IsZero() {
				d.CreatedAt = res.Event.CreatedAt
			}
			if !e.owned[d.Partition].Load() {
				if !res.Announced {
					foreign = append(foreign, d.ID)
				}
				continue
			}
			if res.Deferred {
				continue // the coordinator's reload queues it in order
			}
			if reread {
				again = append(again, d)
				continue
			}
			es := e.endpointState(d.ProjectID, d.EndpointID)
			g := groups[es]
			if g == nil {
				g = &group{}
				groups[es] = g
				order = append(order, es)
			}
			g.ds = append(g.ds, d)
			g.pls = append(g.pls, pl)
			if pl != nil {
				if pl.refs.Add(1) == 1 {
					e.payloadBytes.Add(int64(len(pl.b)))
				}
			}
		}
	}
	for _, es := range order {
		g := groups[es]
		e.enqueueAll(es, g.ds, enqNew, g.pls, nil)
	}
	if len(again) > 0 {
		e.reread(again, enqNew)
	}
	e.assignMu.RUnlock()
	if len(foreign) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.cfg.Coordinator.AnnounceDeliveries(ctx, foreign); err != nil {
			e.storeWarn("delivery: announce deliveries", err, "n", len(foreign))
		}
	}
}

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
	batch := make([]pendingResult, 0, e.cfg.ResultBatch)
	results := make([]kinehook.AttemptResult, 0, e.cfg.ResultBatch)
	for {
		r, ok := <-e.resultCh
		if !ok {
			return
		}
		batch = append(batch[:0], r)
		var deadline <-chan time.Time
		var t *time.Timer
		if e.cfg.ResultWindow > 0 {
			t = time.NewTimer(e.cfg.ResultWindow)
			deadline = t.C
		}
	fill:
		for len(batch) < e.cfg.ResultBatch {
			if deadline == nil {
				select {
				case r, ok := <-e.resultCh:
					if !ok {
						break fill
					}
					batch = append(batch, r)
				default:
					break fill
				}
				continue
			}
			select {
			case r, ok := <-e.resultCh:
				if !ok {
					break fill
				}
				batch = append(batch, r)
			case <-deadline:
				break fill
			}
		}
		if t != nil {
			t.Stop()
		}
		results = results[:0]
		for _, p := range batch {
			results = append(results, p.res)
		}
		e.record(results)
		for _, p := range batch {
			p.done()
		}
		clear(batch)
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
