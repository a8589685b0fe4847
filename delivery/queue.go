package delivery

import (
	"container/heap"
	"sync"
	"sync/atomic"

	"github.com/kinehook/kinehook"
)

// payload is an event body shared by the deliveries of one fan-out. It is
// charged to the engine's payload budget until the last reference drops.
type payload struct {
	b    []byte
	refs atomic.Int32
}

// item is one open delivery, kept small: a 100,000-delivery backlog must fit
// in a few tens of megabytes.
type item struct {
	id, eventID string
	seq         int64
	createdAt   int64 // event acceptance, unix ns (latency metric)
	nextAt      int64 // unix ns; 0 = due now
	attempts    int32
	etype       uint8 // eventTypeIndex of the event's type (in padding: no extra memory)
	q           *resQueue
	payload     *payload
	trace       *kinehook.TraceContext // its event's, shared with the event's other deliveries; nil for none
}

// resQueue holds one (endpoint, resource key)'s open deliveries in Seq order.
// Only the head is ever in flight or waiting for its retry.
type resQueue struct {
	key       string
	partition int
	items     []*item
	// busy: the head is being sent, or its result is being committed.
	busy    bool
	inReady bool
	heapIdx int // index in the waiting heap, -1 when absent
}

func (q *resQueue) head() *item { return q.items[0] }

// waitHeap orders resource queues by their head's nextAt.
type waitHeap []*resQueue

func (h waitHeap) Len() int           { return len(h) }
func (h waitHeap) Less(i, j int) bool { return h[i].head().nextAt < h[j].head().nextAt }
func (h waitHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx = i
	h[j].heapIdx = j
}
func (h *waitHeap) Push(x any) {
	q := x.(*resQueue)
	q.heapIdx = len(*h)
	*h = append(*h, q)
}
func (h *waitHeap) Pop() any {
	old := *h
	n := len(old)
	q := old[n-1]
	old[n-1] = nil
	q.heapIdx = -1
	*h = old[:n-1]
	return q
}

// ring is a FIFO of resource queues ready to send.
type ring struct {
	buf        []*resQueue
	head, size int
}

func (r *ring) push(q *resQueue) {
	if r.size == len(r.buf) {
		n := make([]*resQueue, max(16, 2*len(r.buf)))
		for i := range r.size {
			n[i] = r.buf[(r.head+i)%len(r.buf)]
		}
		r.buf, r.head = n, 0
	}
	r.buf[(r.head+r.size)%len(r.buf)] = q
	r.size++
}

func (r *ring) pop() *resQueue {
	q := r.buf[r.head]
	r.buf[r.head] = nil
	r.head = (r.head + 1) % len(r.buf)
	r.size--
	if r.size == 0 && len(r.buf) > 1024 {
		r.buf, r.head = nil, 0 // give a drained backlog's memory back
	}
	return q
}

func (r *ring) peek(i int) *resQueue { return r.buf[(r.head+i)%len(r.buf)] }

// pushFront puts q first. An entry of q further back becomes stale and is
// dropped when reached (see epState.place).
func (r *ring) pushFront(q *resQueue) {
	r.push(q) // grows the buffer when full
	r.size--
	r.buf[(r.head+r.size)%len(r.buf)] = nil
	r.head = (r.head - 1 + len(r.buf)) % len(r.buf)
	r.buf[r.head] = q
	r.size++
}

// epState is everything the engine knows about one endpoint. mu guards all
// fields; ep is replaced, never modified, so senders may read it unlocked.
type epState struct {
	mu        sync.Mutex
	id        string
	projectID string
	ep        *kinehook.Endpoint // nil while loading
	deleted   bool

	queues  map[string]*resQueue
	byID    map[string]*item
	ready   ring
	waiting waitHeap
	queued  int

	inFlight int
	// gWaiting: queued for a global in-flight slot; gGrant: slots handed
	// over by releaseGlobal. Both guarded by Engine.gMu.
	gWaiting bool
	gGrant   int

	timer   Timer
	timerAt int64

	// Rate limiting (token bucket).
	tokens     float64
	lastRefill int64

	// pausedUntil: Retry-After from the endpoint (unix ns).
	pausedUntil int64

	// Circuit breaker.
	consecFail    int
	breakerOpen   bool
	probeAt       int64
	probeInFlight bool
	backoff       int64
	failingSince  int64 // in-memory mirror of ep.FailingSince (unix ns)
	disabling     bool

	// The health the API shows (breaker_record.go): the record last queued
	// for the store, whether its write is queued, and the end of the last
	// rate limit pause worth showing (unix ns).
	hSaved          breakerRec
	hQueued         bool
	ratePausedUntil int64
}

func newEPState(projectID, id string) *epState {
	return &epState{id: id, projectID: projectID, queues: map[string]*resQueue{}, byID: map[string]*item{}}
}

// place puts q where its head belongs: nowhere when it is busy or empty, the
// ready ring when due, the waiting heap otherwise. Ring entries are removed
// lazily (inReady false), so a queue may appear there more than once.
func (es *epState) place(q *resQueue, now int64) {
	if q.busy || len(q.items) == 0 {
		if q.heapIdx >= 0 {
			heap.Remove(&es.waiting, q.heapIdx)
		}
		q.inReady = false
		return
	}
	if q.head().nextAt <= now {
		if q.heapIdx >= 0 {
			heap.Remove(&es.waiting, q.heapIdx)
		}
		if !q.inReady {
			q.inReady = true
			es.ready.push(q)
		}
		return
	}
	q.inReady = false
	if q.heapIdx >= 0 {
		heap.Fix(&es.waiting, q.heapIdx)
	} else {
		heap.Push(&es.waiting, q)
	}
}

// enqueue adds a delivery in Seq order (never before a busy head). It
// returns false when the delivery is already queued; with hurry, a queued
// one that is not in flight is then made due no later than nextAt.
func (es *epState) enqueue(d *kinehook.Delivery, nextAt int64, pl *payload, now int64, hurry bool) bool {
	if it, ok := es.byID[d.ID]; ok {
		if hurry && it.nextAt > nextAt && !(it.q.busy && it.q.head() == it) {
			it.nextAt = nextAt
			es.place(it.q, now)
		}
		return false
	}
	q := es.queues[d.ResourceKey]
	if q == nil {
		q = &resQueue{key: d.ResourceKey, partition: d.Partition, heapIdx: -1}
		es.queues[d.ResourceKey] = q
	}
	it := &item{
		id: d.ID, eventID: d.EventID, seq: d.Seq, nextAt: nextAt,
		attempts: int32(d.Attempts), q: q, payload: pl, trace: d.Trace, etype: eventTypeIndex(d.EventType),
	}
	if !d.CreatedAt.IsZero() {
		it.createdAt = d.CreatedAt.UnixNano()
	}
	q.items = append(q.items, it)
	i := len(q.items) - 1
	lo := 0
	if q.busy {
		lo = 1
	}
	for i > lo && q.items[i-1].seq > it.seq {
		q.items[i], q.items[i-1] = q.items[i-1], q.items[i]
		i--
	}
	es.byID[d.ID] = it
	es.queued++
	if i == 0 || len(q.items) == 1 {
		es.place(q, now)
	}
	return true
}

// dropQueue forgets a resource queue's deliveries except a busy head, whose
// result is still to be recorded. It returns the payloads to release.
func (es *epState) dropQueue(q *resQueue, keepHead bool) []*payload {
	var pls []*payload
	start := 0
	if keepHead && q.busy {
		start = 1
	}
	for _, it := range q.items[start:] {
		delete(es.byID, it.id)
		es.queued--
		if it.payload != nil {
			pls = append(pls, it.payload)
			it.payload = nil
		}
	}
	q.items = q.items[:start]
	if q.heapIdx >= 0 {
		heap.Remove(&es.waiting, q.heapIdx)
	}
	q.inReady = false
	if len(q.items) == 0 {
		delete(es.queues, q.key)
	}
	return pls
}

// eventTypes are the types an item's etype indexes (from 1; 0 is a type
// outside them, which no validated event has).
var eventTypes = append(append([]kinehook.EventType{""}, kinehook.EventTypes...), kinehook.OperationalEventTypes...)

// eventTypeIndex is t's index in eventTypes, 0 for none.
func eventTypeIndex(t kinehook.EventType) uint8 {
	for i := 1; i < len(eventTypes) && i < 256; i++ {
		if eventTypes[i] == t {
			return uint8(i)
		}
	}
	return 0
}
