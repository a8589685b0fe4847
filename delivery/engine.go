package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kinehook/kinehook"
)

// Engine delivers webhooks. It implements kinehook.Dispatcher for the API and
// kinehook.PartitionOwner for the Coordinator.
type Engine struct {
	cfg         Config
	store       kinehook.Store
	clock       Clock
	obs         Observer
	log         *slog.Logger
	maxAttempts int32

	randMu sync.Mutex
	rnd    *rand.Rand

	epMu sync.RWMutex
	eps  map[string]*epState

	owned    [kinehook.NumPartitions]atomic.Bool
	partBusy [kinehook.NumPartitions]atomic.Int32
	// assignMu makes Assign (mark owned, load, enqueue) atomic with respect
	// to scheduling fresh deliveries and Wake: otherwise a new delivery could
	// be enqueued and sent between the flag and the load of an older one of
	// the same resource, overtaking it.
	assignMu sync.RWMutex
	// assignGen grows by one when an Assign starts and again when it ends
	// (odd while one runs). A caller that writes deliveries to the store
	// reads it first; finding it unchanged and even once it holds assignMu
	// shared, it knows no Assign can have loaded those deliveries (and
	// perhaps sent and finished them) meanwhile. See assignedSince.
	assignGen atomic.Uint64

	// loads are the reads of open deliveries from the store under way
	// (Assign, Wake), each with the deliveries that finished since it
	// began (see beginLoad); nLoads is len(loads) for the hot path.
	finMu  sync.Mutex
	loads  []*loadWindow
	nLoads atomic.Int32

	// Global in-flight cap; endpoints waiting for a slot, in turn.
	gMu       sync.Mutex
	gInFlight int
	gWaiters  []*epState

	payloadBytes atomic.Int64

	// Publish / group commit.
	pubMu     sync.RWMutex
	pubClosed bool
	ingestCh  chan *ingestReq
	ingestEnd chan struct{}

	// Attempt results.
	resultCh  chan pendingResult
	writerEnd chan struct{}

	// Endpoint updates (health) and operational events, in order.
	hMu       sync.Mutex
	hQueue    []func(context.Context)
	hClosed   bool
	hSignal   chan struct{}
	hStop     chan struct{}
	healthEnd chan struct{}

	stopping atomic.Bool
	started  atomic.Bool
	sendCtx  context.Context
	sendStop context.CancelFunc
	// Attempts begun and not yet finished; once sendStopped, none may begin.
	sendMu      sync.Mutex
	sendN       int
	sendStopped bool
	sendDrained chan struct{}
	bg          sync.WaitGroup
	runCancel   context.CancelFunc
	runEnd      chan struct{}
	recovered   chan struct{}
	recOnce     sync.Once
}

var (
	_ kinehook.Dispatcher     = (*Engine)(nil)
	_ kinehook.PartitionOwner = (*Engine)(nil)
)

// ErrStopped is returned by Publish after Shutdown has begun.
var ErrStopped = kinehook.Errorf(kinehook.EUNAVAILABLE, "the delivery engine is shutting down")

// New returns an engine; Start must be called before Publish.
func New(cfg Config) (*Engine, error) {
	if cfg.Store == nil {
		return nil, errors.New("delivery: Config.Store is required")
	}
	if cfg.Transports[TransportWebhook] == nil {
		return nil, errors.New("delivery: Config.Transports needs the HTTP transport under TransportWebhook (webhook.New)")
	}
	for _, d := range cfg.RetrySchedule {
		if d < 0 {
			return nil, fmt.Errorf("delivery: negative retry delay %s", d)
		}
	}
	c := cfg.withDefaults()
	e := &Engine{
		cfg:         c,
		store:       c.Store,
		clock:       c.Clock,
		obs:         c.Observer,
		log:         c.Logger,
		maxAttempts: int32(len(c.RetrySchedule) + 1),
		eps:         map[string]*epState{},
		ingestCh:    make(chan *ingestReq, 4*c.IngestBatch),
		ingestEnd:   make(chan struct{}),
		resultCh:    make(chan pendingResult, 4*c.ResultBatch),
		writerEnd:   make(chan struct{}),
		hSignal:     make(chan struct{}, 1),
		hStop:       make(chan struct{}),
		healthEnd:   make(chan struct{}),
		runEnd:      make(chan struct{}),
		recovered:   make(chan struct{}),
		sendDrained: make(chan struct{}),
	}
	if c.Rand != nil {
		e.rnd = rand.New(c.Rand)
	}
	e.sendCtx, e.sendStop = context.WithCancel(context.Background())
	return e, nil
}

// Start loads the endpoints, starts the committer, the result writer and the
// coordinator, which assigns partitions: their open deliveries are recovered
// from the store. Start returns once the endpoints are loaded; Recovered
// tells when the first assignment has been loaded.
func (e *Engine) Start(ctx context.Context) error {
	if !e.started.CompareAndSwap(false, true) {
		return errors.New("delivery: engine already started")
	}
	eps, err := e.store.AllEndpoints(ctx)
	if err != nil {
		return fmt.Errorf("delivery: load endpoints: %w", err)
	}
	e.epMu.Lock()
	for _, ep := range eps {
		es := newEPState(ep.ProjectID, ep.ID)
		e.setEndpointLocked(es, ep)
		e.eps[ep.ID] = es
	}
	e.epMu.Unlock()

	e.bg.Add(3)
	go e.committer()
	go e.writer()
	go e.healthLoop()

	runCtx, cancel := context.WithCancel(context.Background())
	e.runCancel = cancel
	go e.runCoordinator(runCtx)
	return nil
}

// Recovered is closed when the first partition assignment has been loaded
// from the store (for the local coordinator: every open delivery).
func (e *Engine) Recovered() <-chan struct{} { return e.recovered }

func (e *Engine) runCoordinator(ctx context.Context) {
	defer close(e.runEnd)
	delay := 100 * time.Millisecond
	for {
		err := e.cfg.Coordinator.Run(ctx, e)
		if ctx.Err() != nil {
			return
		}
		e.storeError("delivery: coordinator stopped; restarting", err, "in", delay)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, 10*time.Second)
	}
}

// Shutdown stops starting attempts, waits for those in flight (until ctx
// ends, then cancels them without recording them), and flushes the result
// batches. Everything unfinished stays pending in the store for the next
// start (or another instance) to pick up.
func (e *Engine) Shutdown(ctx context.Context) error {
	if !e.started.Load() {
		return nil
	}
	// 1. No new events; let the committer finish what it has.
	e.pubMu.Lock()
	already := e.pubClosed
	e.pubClosed = true
	e.pubMu.Unlock()
	if already {
		return errors.New("delivery: engine already shut down")
	}
	close(e.ingestCh)
	<-e.ingestEnd

	// 2. No new attempts; stop the coordinator.
	e.stopping.Store(true)
	e.runCancel()
	<-e.runEnd

	// 3. Wait for in-flight attempts, cancelling them if ctx ends first.
	e.sendMu.Lock()
	e.sendStopped = true
	if e.sendN == 0 {
		close(e.sendDrained)
	}
	e.sendMu.Unlock()
	done := e.sendDrained
	var abandoned error
	select {
	case <-done:
	case <-ctx.Done():
		abandoned = fmt.Errorf("delivery: shutdown: in-flight attempts cancelled and handed back: %w", ctx.Err())
		e.sendStop()
		<-done
	}
	e.sendStop()

	// 4. Flush attempt results, then endpoint updates.
	close(e.resultCh)
	<-e.writerEnd
	e.hMu.Lock()
	e.hClosed = true
	e.hMu.Unlock()
	close(e.hStop)
	<-e.healthEnd

	e.epMu.Lock()
	for _, es := range e.eps {
		es.mu.Lock()
		if es.timer != nil {
			es.timer.Stop()
			es.timer = nil
		}
		es.mu.Unlock()
	}
	e.epMu.Unlock()
	return abandoned
}

// endpointStates is a snapshot of the endpoints' states, to walk without
// holding epMu while each one's own lock is taken.
func (e *Engine) endpointStates() []*epState {
	e.epMu.RLock()
	defer e.epMu.RUnlock()
	all := make([]*epState, 0, len(e.eps))
	for _, es := range e.eps {
		all = append(all, es)
	}
	return all
}

// endpointState returns the state of an endpoint, creating it (and loading
// the endpoint in the background) when unknown.
func (e *Engine) endpointState(projectID, id string) *epState {
	e.epMu.RLock()
	es := e.eps[id]
	e.epMu.RUnlock()
	if es != nil {
		return es
	}
	e.epMu.Lock()
	es = e.eps[id]
	if es == nil {
		es = newEPState(projectID, id)
		e.eps[id] = es
		go e.loadEndpoint(projectID, id)
	}
	e.epMu.Unlock()
	return es
}

// loadEndpoint loads an endpoint first seen in a delivery, retrying while
// the store fails (its deliveries wait meanwhile).
func (e *Engine) loadEndpoint(projectID, id string) {
	delay := 100 * time.Millisecond
	for try := 0; try < 10 && !e.stopping.Load(); try++ {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		e.refresh(ctx, projectID, id)
		cancel()
		e.epMu.RLock()
		es := e.eps[id]
		e.epMu.RUnlock()
		if es == nil {
			return // deleted
		}
		es.mu.Lock()
		loaded := es.ep != nil
		es.mu.Unlock()
		if loaded {
			return
		}
		time.Sleep(delay)
		delay = min(2*delay, 10*time.Second)
	}
}

// setEndpointLocked installs a new version of the endpoint; es.mu must be held.
func (e *Engine) setEndpointLocked(es *epState, ep *kinehook.Endpoint) {
	old := es.ep
	es.ep = ep
	es.projectID = ep.ProjectID
	if old == nil {
		if !ep.FailingSince.IsZero() {
			es.failingSince = ep.FailingSince.UnixNano()
		}
		return
	}
	if old.Disabled && !ep.Disabled {
		// Re-enabled: start healthy, with a clean failure history.
		es.consecFail = 0
		es.breakerOpen = false
		es.probeInFlight = false
		es.backoff = 0
		es.failingSince = 0
		es.pausedUntil = 0
		es.disabling = false
		if !ep.FailingSince.IsZero() {
			e.persistHealth(es, kinehook.HealthUpdate{Change: kinehook.HealthRecovered})
		}
	}
	if ep.RateLimit != old.RateLimit {
		es.tokens, es.lastRefill = 0, 0
	}
}

// EndpointChanged reloads an endpoint after the API changed it and tells the
// other instances.
func (e *Engine) EndpointChanged(ctx context.Context, projectID, endpointID string) {
	e.refresh(ctx, projectID, endpointID)
	if err := e.cfg.Coordinator.AnnounceEndpoint(ctx, projectID, endpointID); err != nil {
		e.storeWarn("delivery: announce endpoint", err, "endpoint_id", endpointID)
	}
}

// RefreshEndpoint reloads an endpoint changed by another instance.
func (e *Engine) RefreshEndpoint(ctx context.Context, projectID, endpointID string) {
	e.refresh(ctx, projectID, endpointID)
}

func (e *Engine) refresh(ctx context.Context, projectID, id string) {
	ep, err := e.store.GetEndpoint(ctx, projectID, id)
	if errors.Is(err, kinehook.ErrNotFound) || (err != nil && kinehook.ErrorCode(err) == kinehook.ENOTFOUND) {
		e.epMu.Lock()
		es := e.eps[id]
		delete(e.eps, id)
		e.epMu.Unlock()
		if es != nil {
			e.forget(es)
		}
		return
	}
	if err != nil {
		e.storeError("delivery: reload endpoint", err, "endpoint_id", id)
		return
	}
	es := e.endpointStateNoLoad(ep)
	es.mu.Lock()
	e.setEndpointLocked(es, ep)
	send := e.pumpLocked(es)
	es.mu.Unlock()
	e.dispatch(es, send)
}

func (e *Engine) endpointStateNoLoad(ep *kinehook.Endpoint) *epState {
	e.epMu.Lock()
	defer e.epMu.Unlock()
	es := e.eps[ep.ID]
	if es == nil {
		es = newEPState(ep.ProjectID, ep.ID)
		e.eps[ep.ID] = es
	}
	return es
}

// forget drops a deleted endpoint's queues (the store has failed its
// deliveries); attempts in flight still get recorded.
func (e *Engine) forget(es *epState) {
	es.mu.Lock()
	es.deleted = true
	var pls []*payload
	for _, q := range es.queues {
		pls = append(pls, es.dropQueue(q, true)...)
	}
	if es.timer != nil {
		es.timer.Stop()
		es.timer = nil
	}
	es.mu.Unlock()
	e.obs.EndpointDeleted(es.id)
	e.releasePayloads(pls)
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
		if err := e.cfg.Coordinator.AnnounceDeliveries(ctx, foreign); err != nil {
			e.storeWarn("delivery: announce deliveries", err, "n", len(foreign))
		}
	}
}

// assignedSince reports whether an Assign ran, or was running, since
// assignGen read gen. assignMu must be held shared.
func (e *Engine) assignedSince(gen uint64) bool {
	return gen%2 == 1 || e.assignGen.Load() != gen
}

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
	// not queued again (see Engine.loaded).
	enqReload
	// enqWake: read from the store by Wake (made or reopened by another
	// instance); due no later than the store says.
	enqWake
)

// enqueueAll queues deliveries of one endpoint and starts what can start.
// Deliveries read from the store come with their load window w.
func (e *Engine) enqueueAll(es *epState, ds []*kinehook.Delivery, how enqueueHow, pls []*payload, w *loadWindow) {
	t := e.clock.Now().UnixNano()
	var drop []*payload
	es.mu.Lock()
	if es.deleted {
		es.mu.Unlock()
		e.releasePayloads(pls)
		return
	}
	for i, d := range ds {
		var pl *payload
		if pls != nil {
			pl = pls[i]
		}
		next := int64(0) // new and pending deliveries are due at once
		if (how == enqReload || how == enqWake) && d.Status == kinehook.DeliveryRetrying && !d.NextAttemptAt.IsZero() {
			next = d.NextAttemptAt.UnixNano()
		}
		if !e.owned[d.Partition].Load() || e.finishedDuring(w, d.ID) ||
			!es.enqueue(d, next, pl, t, how != enqReload) {
			if pl != nil {
				drop = append(drop, pl)
			}
		}
		if how == enqOperator && es.breakerOpen {
			e.probeWithLocked(es, d.ID, t)
		}
	}
	send := e.pumpLocked(es)
	es.mu.Unlock()
	e.releasePayloads(drop)
	e.dispatch(es, send)
}

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

// OpenCounts returns, per endpoint, the open deliveries this instance holds:
// pending (never attempted) and retrying (attempted, waiting for another
// try). It walks the queues, so it is meant for a metrics scrape, not a hot path.
func (e *Engine) OpenCounts() (pending, retrying map[string]int) {
	pending, retrying = map[string]int{}, map[string]int{}
	for _, es := range e.endpointStates() {
		es.mu.Lock()
		for _, it := range es.byID {
			if it.attempts > 0 {
				retrying[es.id]++
			} else {
				pending[es.id]++
			}
		}
		es.mu.Unlock()
	}
	return pending, retrying
}

// InFlight returns the number of attempts under way (for the in-flight gauge).
func (e *Engine) InFlight() int {
	e.sendMu.Lock()
	defer e.sendMu.Unlock()
	return e.sendN
}

// beginSend counts an attempt about to start; false once Shutdown has begun.
func (e *Engine) beginSend() bool {
	e.sendMu.Lock()
	defer e.sendMu.Unlock()
	if e.sendStopped {
		return false
	}
	e.sendN++
	return true
}

// endSend counts an attempt finished (recorded, requeued or abandoned).
func (e *Engine) endSend() {
	e.sendMu.Lock()
	e.sendN--
	if e.sendN == 0 && e.sendStopped {
		close(e.sendDrained)
	}
	e.sendMu.Unlock()
}

func (e *Engine) releasePayloads(pls []*payload) {
	for _, p := range pls {
		e.releasePayload(p)
	}
}

func (e *Engine) releasePayload(p *payload) {
	if p != nil && p.refs.Add(-1) == 0 {
		e.payloadBytes.Add(-int64(len(p.b)))
	}
}

// jitter returns d changed by a random factor in [-10%, +10%].
func (e *Engine) jitter(d time.Duration) time.Duration {
	var f float64
	if e.rnd != nil {
		e.randMu.Lock()
		f = e.rnd.Float64()
		e.randMu.Unlock()
	} else {
		f = rand.Float64()
	}
	return d + time.Duration(float64(d)*(f*0.2-0.1))
}
