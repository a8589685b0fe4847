// Package ratelimit provides the token buckets kinehook uses to keep one
// party from taking more than its share: a Bucket per endpoint (the
// endpoint's rate_limit, deliveries per second, enforced by the delivery
// engine) and a Keyed limiter per API key (requests per second, answered
// with 429 and Retry-After by the API). Both tell the caller how long to
// wait, take a Clock so tests can drive time, and are safe for concurrent use.
package ratelimit

import (
	"math"
	"sync"
	"time"
)

// Clock is the time source. The delivery engine's Clock satisfies it.
type Clock interface {
	Now() time.Time
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// RealClock is the wall clock (monotonic readings, so a clock step does not
// refill or drain buckets).
var RealClock Clock = realClock{}

// Bucket is a token bucket: it holds up to burst tokens, refills at rate
// tokens per second, and each event takes one. A rate of zero or less means
// no limit. Safe for concurrent use.
type Bucket struct {
	mu     sync.Mutex
	clock  Clock
	state  bucketState
	limit  limit
	nolim  bool
	inited bool
}

// limit is a rate and a burst, normalised.
type limit struct {
	rate  float64 // tokens per second
	burst float64
}

func newLimit(rate float64, burst int) limit {
	b := float64(burst)
	if burst <= 0 {
		// One second's worth, at least one token.
		b = math.Max(1, math.Ceil(rate))
	}
	return limit{rate: rate, burst: b}
}

// bucketState is the level of a bucket at a moment.
type bucketState struct {
	tokens float64
	last   time.Time
}

// refill brings s to now under l.
func (s *bucketState) refill(l limit, now time.Time) {
	if el := now.Sub(s.last); el > 0 {
		s.tokens = math.Min(l.burst, s.tokens+el.Seconds()*l.rate)
	}
	s.last = now
}

// take removes n tokens if there are enough and reports how long until
// there will be otherwise.
func (s *bucketState) take(l limit, now time.Time, n float64) (bool, time.Duration) {
	s.refill(l, now)
	if s.tokens >= n {
		s.tokens -= n
		return true, 0
	}
	if n > l.burst {
		// Never possible at once; report the time to fill the whole bucket.
		n = l.burst
	}
	wait := time.Duration(math.Ceil((n - s.tokens) / l.rate * float64(time.Second)))
	if wait <= 0 {
		wait = time.Nanosecond
	}
	return false, wait
}

// NewBucket returns a full bucket refilling at rate tokens per second up to
// burst tokens (burst <= 0: one second's worth, at least 1). A nil clock is
// RealClock.
func NewBucket(rate float64, burst int, clock Clock) *Bucket {
	if clock == nil {
		clock = RealClock
	}
	b := &Bucket{clock: clock}
	b.SetLimit(rate, burst)
	return b
}

// SetLimit changes the rate and burst (an endpoint's rate_limit was
// updated). Tokens in hand are kept, capped at the new burst.
func (b *Bucket) SetLimit(rate float64, burst int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.clock.Now()
	b.nolim = rate <= 0 || math.IsNaN(rate) || math.IsInf(rate, 1)
	if b.nolim {
		return
	}
	l := newLimit(rate, burst)
	if !b.inited {
		b.state = bucketState{tokens: l.burst, last: now}
		b.inited = true
	} else {
		b.state.refill(b.limit, now)
		b.state.tokens = math.Min(b.state.tokens, l.burst)
	}
	b.limit = l
}

// Allow takes one token if one is available. Otherwise it takes nothing
// and returns how long until one will be.
func (b *Bucket) Allow() (ok bool, retryAfter time.Duration) {
	return b.AllowN(1)
}

// AllowN takes n tokens at once if available (all or nothing). When n is
// more than the burst, it can never succeed and retryAfter is the time to
// fill the bucket.
func (b *Bucket) AllowN(n int) (ok bool, retryAfter time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.nolim {
		return true, 0
	}
	return b.state.take(b.limit, b.clock.Now(), float64(n))
}

// Tokens returns the tokens available now (for metrics and tests);
// +Inf without a limit.
func (b *Bucket) Tokens() float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.nolim {
		return math.Inf(1)
	}
	b.state.refill(b.limit, b.clock.Now())
	return b.state.tokens
}

// RetryAfterSeconds converts a wait into the value of a Retry-After header:
// whole seconds, rounded up, at least 1.
func RetryAfterSeconds(d time.Duration) int {
	s := int(math.Ceil(d.Seconds()))
	if s < 1 {
		return 1
	}
	return s
}
