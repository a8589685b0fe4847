package delivery

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/kinehook/kinehook"
)

// enqueueHow says where deliveries handed to enqueueAll come from, which
// decides when they are due and how they meet what is already queued.
type enqueueHow int

const (
	// enqNew: freshly committed deliveries, due at once.
	enqNew enqueueHow = iota
	// enqOperator: an operator's retry or recover, due at once; an open
	// breaker sends it as its probe (probeWithLocked).
	enqOperator
	// enqReload: read from the store by Assign. What is queued in memory
	// is the truth and stays as it is; what finished since the read is
	// not queued again (see loadWindow).
	enqReload
	// enqWake: read from the store by Wake (made or reopened by another
	// instance); due no later than the store says.
	enqWake
)

// enqueueAll queues deliveries of one endpoint and starts what can start.
// It is the scheduler's one entry point: every delivery queued in memory
// comes through it, fresh (schedule), reopened by an operator (scheduleNow)
// or read from the store (Assign, Wake, reread). Deliveries read from the
// store come with their load window w.
func (e *Engine) enqueueAll(es *epState, ds []*kinehook.Delivery, how enqueueHow, pls []*payload, w *loadWindow) {
	t := e.clock.Now().UnixNano()
	e.withEndpoint(es, func() {
		if es.deleted {
			e.releasePayloads(pls)
			return
		}
		for i, d := range ds {
			var pl *payload
			if pls != nil {
				pl = pls[i]
			}
			if !e.owned[d.Partition].Load() || e.finishedDuring(w, d.ID) ||
				!es.enqueue(d, dueAt(d, how), pl, t, how != enqReload) {
				// Released under es.mu: the jobs dispatched next see the budget freed.
				e.releasePayload(pl)
			}
			if how == enqOperator && es.breakerOpen {
				e.probeWithLocked(es, d.ID, t)
			}
		}
	})
}

// dueAt is when a delivery handed to enqueueAll is due: at once (0) when
// new, pending or an operator's, else when the store says it is.
func dueAt(d *kinehook.Delivery, how enqueueHow) int64 {
	if (how == enqReload || how == enqWake) && d.Status == kinehook.DeliveryRetrying && !d.NextAttemptAt.IsZero() {
		return d.NextAttemptAt.UnixNano()
	}
	return 0
}

// schedule queues freshly created deliveries, each at once, and announces
// those whose partition another instance owns. gen is assignGen as read
// before the commit: when an Assign ran since, it may have loaded these
// deliveries from the store and even finished them, so they are read again
// (rereadLocked) instead of queued from memory.
func (e *Engine) schedule(results []kinehook.IngestResult, gen uint64) {
	// Locals, not a struct handed around: they stay on the stack.
	groups := map[*epState]*freshGroup{}
	var order []*epState
	var foreign []string
	var again []*kinehook.Delivery
	e.assignMu.RLock()
	reread := e.assignedSince(gen)
	for i := range results {
		res := &results[i]
		if res.Duplicate || len(res.Deliveries) == 0 {
			continue
		}
		// The body is copied for the first delivery queued here, not for
		// events whose deliveries all go elsewhere (foreign, deferred, read
		// again): with several instances that is half of them.
		var pl *payload
		copied := false
		for _, d := range res.Deliveries {
			switch e.placeFresh(res, d, reread) {
			case placeForeign:
				foreign = append(foreign, d.ID)
			case placeAgain:
				again = append(again, d)
			case placeHere:
				if !copied {
					pl, copied = e.freshPayload(res.Event.Payload), true
				}
				es := e.endpointState(d.ProjectID, d.EndpointID)
				g := groups[es]
				if g == nil {
					g = &freshGroup{}
					groups[es] = g
					order = append(order, es)
				}
				e.addFresh(g, d, pl)
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
		e.announce(ctx, foreign)
	}
}

// freshPlace is where schedule puts a new delivery.
type freshPlace int

const (
	// placeNone: nowhere. The coordinator deferred it (its reload queues
	// it in order), or it belongs elsewhere and was announced already.
	placeNone freshPlace = iota
	// placeHere: queued here at once.
	placeHere
	// placeAgain: read again from the store (an Assign ran since the commit).
	placeAgain
	// placeForeign: announced to the instance owning its partition.
	placeForeign
)

// placeFresh completes a new delivery of res from its event (Seq, creation
// time) and says where it goes.
func (e *Engine) placeFresh(res *kinehook.IngestResult, d *kinehook.Delivery, reread bool) freshPlace {
	if d.Seq == 0 {
		d.Seq = res.Event.Seq
	}
	if d.CreatedAt.IsZero() {
		d.CreatedAt = res.Event.CreatedAt
	}
	switch {
	case !e.owned[d.Partition].Load():
		if res.Announced {
			return placeNone
		}
		return placeForeign
	case res.Deferred:
		return placeNone
	case reread:
		return placeAgain
	}
	return placeHere
}

// freshGroup is a commit's deliveries for one endpoint, with their payloads.
type freshGroup struct {
	ds  []*kinehook.Delivery
	pls []*payload
}

// addFresh adds a delivery and its payload (nil when not kept) to g; the
// payload counts against the budget from its first delivery on.
func (e *Engine) addFresh(g *freshGroup, d *kinehook.Delivery, pl *payload) {
	g.ds = append(g.ds, d)
	g.pls = append(g.pls, pl)
	if pl != nil && pl.refs.Add(1) == 1 {
		e.payloadBytes.Add(int64(len(pl.b)))
	}
}

// freshPayload keeps a copy of a new event's body for its deliveries when it
// fits in PayloadBudget; nil otherwise (it is read from the store when sent).
func (e *Engine) freshPayload(body []byte) *payload {
	if len(body) > 0 && e.payloadBytes.Load()+int64(len(body)) <= e.cfg.PayloadBudget {
		// A copy of exact size: the request's read buffer is often
		// twice the body, and the budget counts len, not cap.
		return &payload{b: bytes.Clone(body)}
	}
	return nil
}

// announce tells the instances owning the deliveries' partitions about them.
func (e *Engine) announce(ctx context.Context, ids []string) {
	if err := e.cfg.Coordinator.AnnounceDeliveries(ctx, ids); err != nil {
		e.storeWarn("delivery: announce deliveries", err, "n", len(ids))
	}
}

// Retry sends a delivery again now, whatever its state (ordering still
// applies: it goes after an earlier delivery of its resource in flight).
func (e *Engine) Retry(ctx context.Context, projectID, deliveryID string) (*kinehook.Delivery, error) {
	d, err := e.store.GetDelivery(ctx, projectID, deliveryID)
	if err != nil {
		return nil, fmt.Errorf("retry delivery: %w", err)
	}
	// A deleted endpoint's deliveries have nowhere to go: reopened, one
	// would stay pending for good (and keep its event from retention).
	ep, err := e.store.GetEndpoint(ctx, projectID, d.EndpointID)
	switch {
	case kinehook.ErrorCode(err) == kinehook.ENOTFOUND:
		return nil, &kinehook.Error{Code: kinehook.ECONFLICT, Message: fmt.Sprintf("delivery %s cannot be sent again: its endpoint %s was deleted", deliveryID, d.EndpointID)}
	case err != nil:
		return nil, fmt.Errorf("retry delivery: %w", err)
	case ep.Disabled: // "now" would be a promise the engine cannot keep
		return nil, &kinehook.Error{Code: kinehook.ECONFLICT, Message: fmt.Sprintf("delivery %s cannot be sent now: its endpoint %s is disabled (%s); enable it first", deliveryID, d.EndpointID, ep.DisabledReason)}
	}
	// A final delivery is reopened; an open one comes back as it is and is
	// made due now. None back: retention removed it since the read.
	gen := e.assignGen.Load()
	ds, err := e.store.ReopenDeliveries(ctx, projectID, []string{deliveryID})
	if err != nil {
		return nil, fmt.Errorf("retry delivery: %w", err)
	}
	if len(ds) == 0 {
		return nil, fmt.Errorf("retry delivery %s: %w", deliveryID, kinehook.ErrNotFound)
	}
	e.scheduleNow(ctx, ds, gen)
	return ds[0], nil
}

// Recover re-sends an endpoint's failed deliveries created since t.
func (e *Engine) Recover(ctx context.Context, projectID, endpointID string, since time.Time) (int, error) {
	failed, err := e.store.FailedDeliveries(ctx, projectID, endpointID, since)
	if err != nil {
		return 0, fmt.Errorf("recover endpoint %s: %w", endpointID, err)
	}
	if len(failed) == 0 {
		return 0, nil
	}
	n := 0
	for chunk := range chunks(failed, 500) {
		ids := make([]string, len(chunk))
		for i, d := range chunk {
			ids[i] = d.ID
		}
		gen := e.assignGen.Load()
		ds, err := e.store.ReopenDeliveries(ctx, projectID, ids)
		if err != nil {
			return n, fmt.Errorf("recover endpoint %s: %w", endpointID, err)
		}
		e.scheduleNow(ctx, ds, gen)
		n += len(ds)
	}
	return n, nil
}

func chunks[T any](s []T, n int) func(func([]T) bool) {
	return func(yield func([]T) bool) {
		for len(s) > 0 {
			k := min(n, len(s))
			if !yield(s[:k]) {
				return
			}
			s = s[k:]
		}
	}
}

// scheduleNow queues reopened deliveries due now, or announces those in
// partitions owned elsewhere. gen is assignGen as read before the reopen.
func (e *Engine) scheduleNow(ctx context.Context, ds []*kinehook.Delivery, gen uint64) {
	var foreign []string
	var again []*kinehook.Delivery
	byEP := map[*epState][]*kinehook.Delivery{}
	e.assignMu.RLock()
	reread := e.assignedSince(gen)
	for _, d := range ds {
		if d.Status.Final() {
			continue
		}
		switch {
		case !e.owned[d.Partition].Load():
			foreign = append(foreign, d.ID)
		case reread:
			again = append(again, d)
		default:
			es := e.endpointState(d.ProjectID, d.EndpointID)
			byEP[es] = append(byEP[es], d)
		}
	}
	for es, list := range byEP {
		e.enqueueAll(es, list, enqOperator, nil, nil)
	}
	if len(again) > 0 {
		e.reread(again, enqOperator)
	}
	e.assignMu.RUnlock()
	if len(foreign) > 0 {
		e.announce(ctx, foreign)
	}
}

// assignedSince reports whether an Assign ran, or was running, since
// assignGen read gen. assignMu must be held shared.
func (e *Engine) assignedSince(gen uint64) bool {
	return gen%2 == 1 || e.assignGen.Load() != gen
}

// probeWithLocked serves an operator's retry (or recover) while the
// endpoint's breaker is open: the probe is due at once and takes the retried
// delivery's resource queue first (its head: an earlier delivery of the same
// resource still goes before it). Success closes the breaker as any probe's
// does; failure keeps it open. es.mu must be held.
func (e *Engine) probeWithLocked(es *epState, deliveryID string, now int64) {
	it := es.byID[deliveryID]
	if it == nil {
		return
	}
	q := it.q
	if q.busy || len(q.items) == 0 || q.head().nextAt > now {
		return
	}
	es.probeAt = min(es.probeAt, now)
	q.inReady = true
	es.ready.pushFront(q)
}

// reread queues deliveries written to the store while an Assign ran (or
// since one did): it may have loaded them, and sent and finished them, so
// their state is read again (rereadLocked). If the store cannot be read they
// are queued as they are: a delivery sent twice rather than one never sent.
// assignMu must be held shared.
func (e *Engine) reread(ds []*kinehook.Delivery, how enqueueHow) {
	ids := make([]string, len(ds))
	for i, d := range ds {
		ids[i] = d.ID
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := e.rereadLocked(ctx, ids, how)
	if err == nil {
		return
	}
	e.log.Warn("delivery: read deliveries again after a partition load; queueing them as they are", "n", len(ds), "err", err)
	byEP := map[*epState][]*kinehook.Delivery{}
	for _, d := range ds {
		es := e.endpointState(d.ProjectID, d.EndpointID)
		byEP[es] = append(byEP[es], d)
	}
	for es, list := range byEP {
		e.enqueueAll(es, list, how, nil, nil)
	}
}

// rereadLocked reads deliveries from the store in a load window and queues
// those still open in partitions owned here. assignMu must be held shared.
func (e *Engine) rereadLocked(ctx context.Context, ids []string, how enqueueHow) error {
	w := e.beginLoad()
	defer e.endLoad(w)
	ds, err := e.store.DeliveriesByID(ctx, ids)
	if err != nil {
		return fmt.Errorf("wake: load deliveries: %w", err)
	}
	byEP := map[*epState][]*kinehook.Delivery{}
	for _, d := range ds {
		if d.Status.Final() || !e.owned[d.Partition].Load() {
			continue
		}
		es := e.endpointState(d.ProjectID, d.EndpointID)
		byEP[es] = append(byEP[es], d)
	}
	for es, list := range byEP {
		e.enqueueAll(es, list, how, nil, w)
	}
	return nil
}
