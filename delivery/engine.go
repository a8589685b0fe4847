package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kinehook/kinehook"
)

// Engine delivers webhooks. It implements kinehook.Dispatcher for the API and
// kinehook.PartitionOwner for the Coordinator.
type Engine struct {
	cfg         Config
	webhook     Transport // cfg.Transports[TransportWebhook], for the common case without a map lookup
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
		webhook:     c.Transports[TransportWebhook],
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
	abandoned := e.drainSends(ctx)

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
	// 5. Close the transports holding connections (brokers').
	for typ, t := range e.cfg.Transports {
		if c, ok := t.(TransportCloser); ok {
			if err := c.Close(); err != nil {
				e.log.Warn("delivery: close transport", "type", typ, "err", err)
			}
		}
	}
	return abandoned
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
