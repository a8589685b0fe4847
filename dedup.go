package kinehook

import (
	"container/list"
	"context"
	"fmt"
	"sync"
	"time"
)

// Deduper remembers which deliveries were handled, so that a retry of one
// already handled is answered 200 without calling the application again.
//
// A key is claimed before the callback runs and then either committed (the
// callback succeeded: later claims within the TTL report seen) or released
// (it failed: the next claim processes the delivery again). While a key is
// claimed, a concurrent Claim of the same key waits for the outcome, so two
// copies of one delivery arriving together call the application once, and a
// copy that arrives while the first fails is processed rather than dropped.
// An implementation backed by a shared store (Redis SET NX with a lease, a
// SQL row) makes this hold across several receiver instances.
type Deduper interface {
	// Claim reserves key. seen reports that key was committed within the
	// TTL: the caller must not process it. Otherwise the caller owns key
	// until Commit or Release. attempt counts the claims of key within the
	// TTL, this one included (1 the first time).
	Claim(ctx context.Context, key string) (attempt int, seen bool, err error)
	// Commit marks key handled for the TTL.
	Commit(ctx context.Context, key string) error
	// Release gives up a claim without marking key handled.
	Release(ctx context.Context, key string) error
}

// DefaultDedupTTL is how long a handled delivery is remembered: 24 h covers
// the retry schedules of Kinescope, Svix, Mux and kinehook's first day.
const DefaultDedupTTL = 24 * time.Hour

// DefaultDedupCapacity bounds the in-memory deduper (about 100 bytes each).
const DefaultDedupCapacity = 100_000

type dedupState uint8

const (
	stateInFlight dedupState = iota
	stateCommitted
	stateReleased
)

type dedupEntry struct {
	key      string
	state    dedupState
	attempts int
	expires  time.Time
	done     chan struct{} // closed when an in-flight claim ends
	elem     *list.Element
}

// MemoryDeduper is the default Deduper: an in-process map bounded by an LRU
// of at most Capacity keys, each kept for TTL after its last use. Keys being
// processed are never evicted. It is safe for concurrent use; it does not
// survive a restart nor span several processes.
type MemoryDeduper struct {
	mu       sync.Mutex
	capacity int
	ttl      time.Duration
	entries  map[string]*dedupEntry
	lru      *list.List // front = most recently used
	now      func() time.Time
}

// NewMemoryDeduper returns a deduper of at most capacity keys remembered for
// ttl; zero or negative values select DefaultDedupCapacity and DefaultDedupTTL.
func NewMemoryDeduper(capacity int, ttl time.Duration) *MemoryDeduper {
	if capacity <= 0 {
		capacity = DefaultDedupCapacity
	}
	if ttl <= 0 {
		ttl = DefaultDedupTTL
	}
	return &MemoryDeduper{capacity: capacity, ttl: ttl, entries: map[string]*dedupEntry{}, lru: list.New(), now: time.Now}
}

// Len returns the number of keys remembered.
func (m *MemoryDeduper) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.entries)
}

// Claim implements Deduper.
func (m *MemoryDeduper) Claim(ctx context.Context, key string) (int, bool, error) {
	m.mu.Lock()
	for {
		now := m.now()
		e := m.entries[key]
		if e != nil && e.state != stateInFlight && now.After(e.expires) {
			m.remove(e)
			e = nil
		}
		if e == nil {
			e = &dedupEntry{key: key, state: stateInFlight, attempts: 1, expires: now.Add(m.ttl), done: make(chan struct{})}
			e.elem = m.lru.PushFront(e)
			m.entries[key] = e
			m.evict()
			m.mu.Unlock()
			return 1, false, nil
		}
		switch e.state {
		case stateCommitted:
			e.attempts++
			e.expires = now.Add(m.ttl)
			m.lru.MoveToFront(e.elem)
			n := e.attempts
			m.mu.Unlock()
			return n, true, nil
		case stateReleased:
			e.attempts++
			e.state = stateInFlight
			e.expires = now.Add(m.ttl)
			e.done = make(chan struct{})
			m.lru.MoveToFront(e.elem)
			n := e.attempts
			m.mu.Unlock()
			return n, false, nil
		}
		done := e.done
		m.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			return 0, false, fmt.Errorf("dedup: waiting for a concurrent copy of %q: %w", key, ctx.Err())
		}
		m.mu.Lock()
	}
}

// Commit implements Deduper.
func (m *MemoryDeduper) Commit(_ context.Context, key string) error {
	return m.finish(key, stateCommitted)
}

// Release implements Deduper.
func (m *MemoryDeduper) Release(_ context.Context, key string) error {
	return m.finish(key, stateReleased)
}

func (m *MemoryDeduper) finish(key string, to dedupState) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.entries[key]
	if e == nil || e.state != stateInFlight {
		return fmt.Errorf("dedup: %q is not claimed", key)
	}
	e.state = to
	e.expires = m.now().Add(m.ttl)
	close(e.done)
	m.evict()
	return nil
}

// evict drops least recently used keys that are not in flight until the map
// fits its capacity. Called with m.mu held.
func (m *MemoryDeduper) evict() {
	for el := m.lru.Back(); el != nil && len(m.entries) > m.capacity; {
		prev := el.Prev()
		if e := el.Value.(*dedupEntry); e.state != stateInFlight {
			m.remove(e)
		}
		el = prev
	}
}

func (m *MemoryDeduper) remove(e *dedupEntry) {
	m.lru.Remove(e.elem)
	delete(m.entries, e.key)
}
