package delivery

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/kinehook/kinehook"
)

// Pool shares the clients a destination transport keeps to its brokers (a
// connection, a client with its own connection pool): one per key (server
// and credentials), shared by every endpoint with that key, set up once
// however many attempts wait for it, bounded (at the bound the least
// recently used idle one goes), and closed when idle, when no endpoint uses
// it any more (Forget), or by Close. Every transport needs exactly this,
// and each had its own copy.
type Pool[K comparable, V any] struct {
	o PoolOptions[K, V]

	mu      sync.Mutex
	entries map[K]*PoolEntry[K, V]
	closed  bool
	stop    chan struct{}
	janitor sync.WaitGroup
}

// PoolOptions configures a Pool.
type PoolOptions[K comparable, V any] struct {
	// Open sets up the client of a key. It runs once per setup, on its own
	// goroutine, so an attempt whose deadline ends first leaves it going
	// for the next one. An error is the answer of the attempts waiting,
	// and the next attempt opens again.
	Open func(K) (V, error)
	// Close closes a client the pool drops. The pool calls it outside its
	// lock, on a goroutine of its own (closing may wait for the broker),
	// except in Pool.Close, which waits for every one.
	Close func(V)
	// Dead, when set, reports a client that can serve no more (a
	// connection that gave up reconnecting): the next attempt opens a new
	// one, and one in use is dropped when its last attempt ends.
	Dead func(V) bool
	// Max bounds the clients kept. At the bound the least recently used
	// idle one is closed; when none is idle the attempt fails, to be
	// retried on the schedule.
	Max int
	// IdleTimeout closes a client no attempt used for that long.
	IdleTimeout time.Duration
	// FullError words the refusal at the bound; its one %d is Max:
	// "nats: %d broker connections in use, the most this server keeps".
	FullError string
}

// PoolEntry is one client of a Pool, in use by an attempt between Acquire
// and Release.
type PoolEntry[K comparable, V any] struct {
	key   K
	ready chan struct{}
	v     V     // set before ready closes
	err   error // the setup's error, set before ready closes

	// Guarded by Pool.mu.
	users    map[string]bool // endpoint ids that used it
	inFlight int
	lastUsed time.Time
	p        *Pool[K, V]
}

// ErrPoolClosed is the answer of a Pool after Close (transports wrap it
// with their name: "nats: transport closed").
var ErrPoolClosed = errors.New("transport closed")

// NewPool returns a pool and starts its sweeper; Close stops it.
func NewPool[K comparable, V any](o PoolOptions[K, V]) *Pool[K, V] {
	p := &Pool[K, V]{o: o, entries: map[K]*PoolEntry[K, V]{}, stop: make(chan struct{})}
	p.janitor.Add(1)
	go p.sweep()
	return p
}

// Value is the entry's client.
func (e *PoolEntry[K, V]) Value() V { return e.v }

// Acquire returns the ready client of key, setting it up when there is
// none or the one kept is dead, and counts the attempt in flight on it
// until Release. endpointID is recorded as a user, for Forget.
func (p *Pool[K, V]) Acquire(ctx context.Context, key K, endpointID string) (*PoolEntry[K, V], error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrPoolClosed
	}
	e := p.entries[key]
	if e != nil && p.deadLocked(e) {
		delete(p.entries, key) // its last attempt closes it
		e = nil
	}
	if e == nil {
		if err := p.makeRoomLocked(); err != nil {
			p.mu.Unlock()
			return nil, err
		}
		e = &PoolEntry[K, V]{key: key, ready: make(chan struct{}), users: map[string]bool{}, p: p}
		p.entries[key] = e
		go p.open(e)
	}
	e.users[endpointID] = true
	e.inFlight++
	e.lastUsed = time.Now()
	p.mu.Unlock()

	select {
	case <-e.ready:
	case <-ctx.Done():
		e.Release()
		return nil, ctx.Err()
	}
	if e.err != nil {
		e.Release()
		return nil, e.err
	}
	return e, nil
}

// Release ends an attempt on e. A client left without users, one that
// failed or one that is dead goes.
func (e *PoolEntry[K, V]) Release() {
	p := e.p
	p.mu.Lock()
	e.inFlight--
	e.lastUsed = time.Now()
	drop := e.inFlight == 0 && isReady(e) && (e.err != nil || len(e.users) == 0 || p.deadLocked(e))
	if drop && p.entries[e.key] == e {
		delete(p.entries, e.key)
	}
	p.mu.Unlock()
	if drop {
		p.closeLater(e)
	}
}

// open sets e up and closes e.ready. A failed setup leaves the map, so the
// next attempt opens again.
func (p *Pool[K, V]) open(e *PoolEntry[K, V]) {
	v, err := p.o.Open(e.key)
	p.mu.Lock()
	e.v, e.err = v, err
	if err != nil && p.entries[e.key] == e {
		delete(p.entries, e.key)
	}
	closed := p.closed
	close(e.ready)
	p.mu.Unlock()
	if closed {
		p.closeLater(e) // Close ran while this one was being set up
	}
}

// deadLocked reports a ready client that can serve no more. p.mu is held.
func (p *Pool[K, V]) deadLocked(e *PoolEntry[K, V]) bool {
	return p.o.Dead != nil && isReady(e) && e.err == nil && p.o.Dead(e.v)
}

// makeRoomLocked closes the least recently used idle client when the bound
// is reached. p.mu is held.
func (p *Pool[K, V]) makeRoomLocked() error {
	if len(p.entries) < p.o.Max {
		return nil
	}
	var lru *PoolEntry[K, V]
	for _, e := range p.entries {
		if e.inFlight == 0 && isReady(e) && (lru == nil || e.lastUsed.Before(lru.lastUsed)) {
			lru = e
		}
	}
	if lru == nil {
		return fmt.Errorf(p.o.FullError, p.o.Max)
	}
	delete(p.entries, lru.key)
	p.closeLater(lru)
	return nil
}

// closeLater closes e's client, if it has one, without blocking the caller.
func (p *Pool[K, V]) closeLater(e *PoolEntry[K, V]) {
	if e.err == nil {
		go p.o.Close(e.v)
	}
}

// Forget implements the pool's part of delivery.TransportForgetter: the
// endpoint changed or is gone; a client no other endpoint uses is closed
// once idle.
func (p *Pool[K, V]) Forget(endpointID string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, e := range p.entries {
		if !e.users[endpointID] {
			continue
		}
		delete(e.users, endpointID)
		if len(e.users) == 0 && e.inFlight == 0 && isReady(e) {
			delete(p.entries, k)
			p.closeLater(e)
		}
	}
}

// sweep closes clients idle for IdleTimeout, until Close.
func (p *Pool[K, V]) sweep() {
	defer p.janitor.Done()
	tick := time.NewTicker(max(p.o.IdleTimeout/4, 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-p.stop:
			return
		case now := <-tick.C:
			p.mu.Lock()
			for k, e := range p.entries {
				if e.inFlight == 0 && isReady(e) && now.Sub(e.lastUsed) >= p.o.IdleTimeout {
					delete(p.entries, k)
					p.closeLater(e)
				}
			}
			p.mu.Unlock()
		}
	}
}

// Len is how many clients are open or being set up (tests, metrics).
func (p *Pool[K, V]) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.entries)
}

// Close closes every client, waiting for each, and fails later attempts.
// A client still being set up is closed when its setup ends.
func (p *Pool[K, V]) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	var drop []*PoolEntry[K, V]
	for k, e := range p.entries {
		delete(p.entries, k)
		if isReady(e) && e.err == nil {
			drop = append(drop, e)
		}
	}
	p.mu.Unlock()
	close(p.stop)
	p.janitor.Wait()
	var wg sync.WaitGroup
	for _, e := range drop {
		wg.Go(func() { p.o.Close(e.v) })
	}
	wg.Wait()
}

func isReady[K comparable, V any](e *PoolEntry[K, V]) bool {
	select {
	case <-e.ready:
		return true
	default:
		return false
	}
}

// EndpointCache keeps what a transport parsed from an endpoint's config,
// valid while the engine hands the same *kinehook.Endpoint (it hands a new
// one on any change), so that an attempt does not parse the config again.
// The zero value is ready to use.
type EndpointCache[T any] struct {
	mu sync.Mutex
	m  map[string]cachedEndpoint[T]
}

type cachedEndpoint[T any] struct {
	ep *kinehook.Endpoint
	v  T
}

// Get returns the value parsed from ep, calling parse when ep is not the
// endpoint the value was parsed from. An error is not kept.
func (c *EndpointCache[T]) Get(ep *kinehook.Endpoint, parse func(*kinehook.Endpoint) (T, error)) (T, error) {
	c.mu.Lock()
	ce, ok := c.m[ep.ID]
	c.mu.Unlock()
	if ok && ce.ep == ep {
		return ce.v, nil
	}
	v, err := parse(ep)
	if err != nil {
		return v, err
	}
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]cachedEndpoint[T]{}
	}
	c.m[ep.ID] = cachedEndpoint[T]{ep: ep, v: v}
	c.mu.Unlock()
	return v, nil
}

// Forget drops what was parsed from the endpoint.
func (c *EndpointCache[T]) Forget(endpointID string) {
	c.mu.Lock()
	delete(c.m, endpointID)
	c.mu.Unlock()
}
