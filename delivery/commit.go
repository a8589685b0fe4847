package delivery

import (
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
	g := newGatherer(e.ingestCh, func(r *ingestReq) int { return len(r.evs) }, e.cfg.IngestBatch, e.cfg.IngestWindow, e.cfg.IngestLinger)
	batch := make([]*ingestReq, 0, e.cfg.IngestBatch)
	events := make([]*kinehook.Event, 0, e.cfg.IngestBatch)
	for {
		r, ok := <-e.ingestCh
		if !ok {
			return
		}
		batch, ok = g.fill(append(batch[:0], r), len(r.evs))
		events = events[:0]
		for _, r := range batch {
			events = append(events, r.evs...)
		}
		e.commit(batch, events)
		clear(events)
		if !ok {
			return
		}
	}
}

// commit stores one batch of requests in one transaction, schedules the
// deliveries it created and answers the requests. When the store answers
// but refuses the batch, each request is committed on its own, so that one
// bad request does not fail its neighbours.
func (e *Engine) commit(batch []*ingestReq, events []*kinehook.Event) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	gen := e.assignGen.Load()
	var endSpan func(error)
	if e.cfg.Tracer != nil {
		endSpan = e.cfg.Tracer.StartCommit(events)
	}
	results, err := e.ingest(ctx, events)
	if endSpan != nil {
		endSpan(err)
	}
	storeDown := false
	if err != nil {
		storeDown = errors.Is(err, context.DeadlineExceeded) || e.store.Ping(ctx) != nil
	}
	if err != nil && len(batch) > 1 && !storeDown {
		e.commitEach(batch, events)
		return
	}
	e.obs.IngestCommitted(len(events), time.Since(start))
	if err != nil {
		failBatch(batch, err, storeDown)
		return
	}
	e.schedule(results, gen)
	for i := range events {
		e.obs.EventAccepted(events[i].ProjectID, events[i].Type, results[i].Duplicate)
		if c := results[i].State; c != nil && !results[i].Duplicate {
			e.obs.StateChanged(events[i].ProjectID, c)
		}
	}
	off := 0
	for _, r := range batch {
		n := len(r.evs)
		r.res = append(r.res[:0], results[off:off+n]...)
		off += n
		r.done <- struct{}{}
	}
}

// ingest stores the events and their deliveries and, once they are
// committed, runs the coordinator's ordering wait, which marks Deferred what
// it cannot yet queue in order (part of the commit's latency).
func (e *Engine) ingest(ctx context.Context, events []*kinehook.Event) ([]kinehook.IngestResult, error) {
	results, err := e.store.IngestEvents(ctx, events)
	if err == nil && len(results) != len(events) {
		err = errors.New("store returned a wrong number of ingest results")
	}
	if err == nil {
		e.cfg.Coordinator.AfterCommit(ctx, results)
	}
	return results, err
}

// commitEach commits a refused batch request by request.
func (e *Engine) commitEach(batch []*ingestReq, events []*kinehook.Event) {
	// (r is its caller's again once committed: read its size first.)
	off := 0
	for i, r := range batch {
		n := len(r.evs)
		e.commit(batch[i:i+1], events[off:off+n])
		off += n
	}
}

// failBatch answers every request of a batch that could not be stored.
func failBatch(batch []*ingestReq, err error, storeDown bool) {
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
}

// Publish stores the event and its deliveries through group commit and
// schedules them at once. It returns after the commit.
func (e *Engine) Publish(ctx context.Context, ev *kinehook.Event) (kinehook.IngestResult, error) {
	r := ingestReqPool.Get().(*ingestReq)
	r.one[0] = ev
	r.evs = r.one[:]
	err := e.publish(ctx, r)
	var res kinehook.IngestResult
	if err == nil {
		res = r.res[0]
	}
	r.one[0] = nil
	clear(r.res)
	r.evs, r.res, r.err = nil, r.res[:0], nil
	ingestReqPool.Put(r)
	return res, err
}

// PublishBatch stores events and their deliveries in one transaction (shared
// with concurrent calls) and schedules them at once, in slice order: all are
// stored or none. The results are in the same order as evs.
func (e *Engine) PublishBatch(ctx context.Context, evs []*kinehook.Event) ([]kinehook.IngestResult, error) {
	if len(evs) == 0 {
		return nil, nil
	}
	r := &ingestReq{evs: evs, done: make(chan struct{}, 1)}
	if err := e.publish(ctx, r); err != nil {
		return nil, err
	}
	return r.res, nil
}

// publish hands r to the committer and waits for its commit.
func (e *Engine) publish(ctx context.Context, r *ingestReq) error {
	e.pubMu.RLock()
	if e.pubClosed || !e.started.Load() {
		e.pubMu.RUnlock()
		return ErrStopped
	}
	select {
	case e.ingestCh <- r:
	case <-ctx.Done():
		e.pubMu.RUnlock()
		return fmt.Errorf("publish: %w", ctx.Err())
	}
	e.pubMu.RUnlock()
	<-r.done
	return r.err
}
