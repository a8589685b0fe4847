package ratelimit

import (
	"container/list"
	"hash/maphash"
	"math"
	"sync"
	"time"
)

// DefaultMaxKeys bounds the keys a Keyed limiter remembers.
const DefaultMaxKeys = 100_000

const shardCount = 32

// KeyedConfig configures a Keyed limiter.
type KeyedConfig struct {
	// Rate is each key's sustained rate, events per second (<= 0: no limit).
	Rate float64
	// Burst is each key's bucket size (<= 0: one second's worth, at least 1).
	Burst int
	// MaxKeys bounds memory (0: DefaultMaxKeys; kept per shard, so rounded
	// up to a multiple of 32). Beyond it the least
	// recently used key is forgotten, which gives it a full bucket again:
	// under normal load only idle keys are forgotten, and those have
	// refilled anyway.
	MaxKeys int
	// Clock (nil: RealClock).
	Clock Clock
}

// Keyed is a token bucket per key (an API key's hash, a project id) with
// bounded memory: a key whose bucket has refilled is indistinguishable from
// a key never seen, so idle keys are dropped as the limiter is used, and a
// hard cap drops the least recently used beyond MaxKeys. Safe for
// concurrent use; keys are spread over shards to keep lock contention low.
type Keyed struct {
	limit  limit
	nolim  bool
	clock  Clock
	idle   time.Duration // time for an empty bucket to refill
	seed   maphash.Seed
	shards [shardCount]keyedShard
}

type keyedShard struct {
	mu      sync.Mutex
	max     int
	entries map[string]*list.Element
	lru     list.List // front: most recently used; values are *keyedEntry
}

type keyedEntry struct {
	key   string
	state bucketState
}

// NewKeyed returns a Keyed limiter.
func NewKeyed(c KeyedConfig) *Keyed {
	if c.Clock == nil {
		c.Clock = RealClock
	}
	if c.MaxKeys <= 0 {
		c.MaxKeys = DefaultMaxKeys
	}
	k := &Keyed{
		clock: c.Clock,
		nolim: c.Rate <= 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 1),
		seed:  maphash.MakeSeed(),
	}
	if !k.nolim {
		k.limit = newLimit(c.Rate, c.Burst)
		k.idle = time.Duration(math.Ceil(k.limit.burst / k.limit.rate * float64(time.Second)))
	}
	per := (c.MaxKeys + shardCount - 1) / shardCount
	for i := range k.shards {
		k.shards[i].max = per
		k.shards[i].entries = make(map[string]*list.Element)
	}
	return k
}

// Allow takes one token from key's bucket if one is available; otherwise
// it returns how long until one will be (for Retry-After).
func (k *Keyed) Allow(key string) (ok bool, retryAfter time.Duration) {
	if k.nolim {
		return true, 0
	}
	s := &k.shards[maphash.String(k.seed, key)%shardCount]
	s.mu.Lock()
	defer s.mu.Unlock()
	now := k.clock.Now()
	var e *keyedEntry
	if el, found := s.entries[key]; found {
		e = el.Value.(*keyedEntry)
		s.lru.MoveToFront(el)
	} else {
		e = &keyedEntry{key: key, state: bucketState{tokens: k.limit.burst, last: now}}
		s.entries[key] = s.lru.PushFront(e)
	}
	ok, retryAfter = e.state.take(k.limit, now, 1)
	s.evict(now, k.idle)
	return ok, retryAfter
}

// evict drops entries from the cold end: any beyond the shard's cap, then
// up to two whose buckets have refilled (amortised constant work per call).
func (s *keyedShard) evict(now time.Time, idle time.Duration) {
	for s.lru.Len() > s.max {
		s.remove(s.lru.Back())
	}
	for i := 0; i < 2; i++ {
		el := s.lru.Back()
		if el == nil || el == s.lru.Front() {
			return
		}
		if now.Sub(el.Value.(*keyedEntry).state.last) < idle {
			return
		}
		s.remove(el)
	}
}

func (s *keyedShard) remove(el *list.Element) {
	delete(s.entries, el.Value.(*keyedEntry).key)
	s.lru.Remove(el)
}

// Len returns the number of keys remembered (for metrics and tests).
func (k *Keyed) Len() int {
	n := 0
	for i := range k.shards {
		s := &k.shards[i]
		s.mu.Lock()
		n += s.lru.Len()
		s.mu.Unlock()
	}
	return n
}
