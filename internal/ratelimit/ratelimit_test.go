package ratelimit

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a Clock the test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestBucketBurstThenRate(t *testing.T) {
	clk := newFakeClock()
	b := NewBucket(10, 5, clk) // 10/s, burst 5
	for i := 0; i < 5; i++ {
		if ok, _ := b.Allow(); !ok {
			t.Fatalf("call %d refused within the burst", i)
		}
	}
	ok, wait := b.Allow()
	if ok {
		t.Fatal("6th call allowed beyond the burst")
	}
	if wait != 100*time.Millisecond {
		t.Fatalf("retryAfter = %v; want 100ms (one token at 10/s)", wait)
	}
	clk.Advance(99 * time.Millisecond)
	if ok, _ := b.Allow(); ok {
		t.Fatal("allowed before the token was due")
	}
	clk.Advance(time.Millisecond)
	if ok, _ := b.Allow(); !ok {
		t.Fatal("refused when the token was due")
	}
	// A long pause refills only up to the burst.
	clk.Advance(time.Hour)
	if got := b.Tokens(); got != 5 {
		t.Fatalf("tokens after an hour = %v; want the burst 5", got)
	}
}

func TestBucketTable(t *testing.T) {
	tests := []struct {
		name    string
		rate    float64
		burst   int
		step    time.Duration // between calls
		calls   int
		allowed int
	}{
		{"no limit", 0, 0, 0, 1000, 1000},
		{"negative rate is no limit", -1, 3, 0, 50, 50},
		{"burst only, no time passes", 100, 20, 0, 50, 20},
		{"default burst is one second", 7, 0, 0, 50, 7},
		{"fractional rate default burst 1", 0.5, 0, 0, 10, 1},
		{"steady at exactly the rate", 10, 1, 100 * time.Millisecond, 100, 100},
		{"twice the rate gets half", 10, 1, 50 * time.Millisecond, 100, 50},
		{"slow rate", 0.1, 1, time.Second, 30, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			b := NewBucket(tt.rate, tt.burst, clk)
			got := 0
			for i := 0; i < tt.calls; i++ {
				if ok, wait := b.Allow(); ok {
					got++
				} else if wait <= 0 {
					t.Fatalf("refused with retryAfter %v", wait)
				}
				clk.Advance(tt.step)
			}
			if got != tt.allowed {
				t.Fatalf("allowed %d of %d; want %d", got, tt.calls, tt.allowed)
			}
		})
	}
}

func TestBucketAllowN(t *testing.T) {
	clk := newFakeClock()
	b := NewBucket(2, 4, clk)
	if ok, _ := b.AllowN(3); !ok {
		t.Fatal("AllowN(3) refused with 4 tokens")
	}
	ok, wait := b.AllowN(3)
	if ok || wait != time.Second {
		t.Fatalf("AllowN(3) with 1 token = %v, %v; want refused, 1s", ok, wait)
	}
	if tok := b.Tokens(); tok != 1 {
		t.Fatalf("a refused AllowN took tokens: %v left", tok)
	}
	ok, wait = b.AllowN(10)
	if ok || wait != 1500*time.Millisecond {
		t.Fatalf("AllowN beyond burst = %v, %v; want refused, time to fill (1.5s)", ok, wait)
	}
}

func TestBucketSetLimit(t *testing.T) {
	clk := newFakeClock()
	b := NewBucket(0, 0, clk)
	if !math.IsInf(b.Tokens(), 1) {
		t.Fatal("unlimited bucket reports finite tokens")
	}
	b.SetLimit(1, 2)
	if tok := b.Tokens(); tok != 2 {
		t.Fatalf("first limit starts with %v tokens; want full (2)", tok)
	}
	b.Allow()
	b.Allow()
	if ok, _ := b.Allow(); ok {
		t.Fatal("allowed with an empty bucket")
	}
	// Raising the limit keeps the level (empty), then refills faster.
	b.SetLimit(100, 100)
	if ok, _ := b.Allow(); ok {
		t.Fatal("raising the limit refilled the bucket at once")
	}
	clk.Advance(10 * time.Millisecond)
	if ok, _ := b.Allow(); !ok {
		t.Fatal("new rate not applied")
	}
	// Lowering the burst caps the tokens in hand.
	clk.Advance(time.Second)
	b.SetLimit(1, 3)
	if tok := b.Tokens(); tok != 3 {
		t.Fatalf("tokens after lowering burst = %v; want 3", tok)
	}
	// Removing the limit allows everything.
	b.SetLimit(0, 0)
	for i := 0; i < 100; i++ {
		if ok, _ := b.Allow(); !ok {
			t.Fatal("refused without a limit")
		}
	}
}

func TestBucketClockBackwards(t *testing.T) {
	clk := newFakeClock()
	b := NewBucket(1, 1, clk)
	b.Allow()
	clk.Advance(-time.Hour)
	if ok, _ := b.Allow(); ok {
		t.Fatal("a clock going backwards refilled the bucket")
	}
}

func TestBucketConcurrent(t *testing.T) {
	clk := newFakeClock()
	b := NewBucket(1, 100, clk)
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				if ok, _ := b.Allow(); ok {
					allowed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if allowed.Load() != 100 {
		t.Fatalf("allowed %d concurrent calls; want exactly the burst, 100", allowed.Load())
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	for d, want := range map[time.Duration]int{0: 1, time.Nanosecond: 1, time.Second: 1, 1001 * time.Millisecond: 2, 59 * time.Second: 59} {
		if got := RetryAfterSeconds(d); got != want {
			t.Errorf("RetryAfterSeconds(%v) = %d; want %d", d, got, want)
		}
	}
}

func TestKeyedIndependentKeys(t *testing.T) {
	clk := newFakeClock()
	k := NewKeyed(KeyedConfig{Rate: 1, Burst: 2, Clock: clk})
	for _, key := range []string{"a", "b"} {
		for i := 0; i < 2; i++ {
			if ok, _ := k.Allow(key); !ok {
				t.Fatalf("key %s call %d refused", key, i)
			}
		}
	}
	ok, wait := k.Allow("a")
	if ok || wait != time.Second {
		t.Fatalf("key a over its burst = %v, %v; want refused, 1s", ok, wait)
	}
	if ok, _ := k.Allow("c"); !ok {
		t.Fatal("a new key is limited by other keys' use")
	}
	clk.Advance(time.Second)
	if ok, _ := k.Allow("a"); !ok {
		t.Fatal("key a not refilled")
	}
}

func TestKeyedEvictsIdleKeys(t *testing.T) {
	clk := newFakeClock()
	k := NewKeyed(KeyedConfig{Rate: 10, Burst: 10, Clock: clk}) // refills in 1s
	for i := 0; i < 1000; i++ {
		k.Allow(fmt.Sprintf("key-%d", i))
	}
	if n := k.Len(); n != 1000 {
		t.Fatalf("Len = %d; want 1000 active keys", n)
	}
	clk.Advance(2 * time.Second)
	// New traffic sweeps idle keys: each call drops up to two refilled
	// keys in its shard (1024 new keys reach every shard).
	for round := 0; round < 3; round++ {
		for i := 0; i < 1024; i++ {
			k.Allow(fmt.Sprintf("hot-%d", i))
		}
	}
	if n := k.Len(); n != 1024 {
		t.Fatalf("Len = %d after the idle keys refilled; want only the 1024 hot keys", n)
	}
	// A forgotten key comes back with a full bucket, as if remembered.
	for i := 0; i < 10; i++ {
		if ok, _ := k.Allow("key-1"); !ok {
			t.Fatalf("returning key refused at call %d", i)
		}
	}
	if ok, _ := k.Allow("key-1"); ok {
		t.Fatal("returning key got more than its burst")
	}
}

func TestKeyedMaxKeys(t *testing.T) {
	clk := newFakeClock()
	k := NewKeyed(KeyedConfig{Rate: 1, Burst: 1, MaxKeys: 64, Clock: clk})
	for i := 0; i < 10_000; i++ {
		k.Allow(fmt.Sprintf("k%d", i))
	}
	if n := k.Len(); n > 64 {
		t.Fatalf("Len = %d; want at most MaxKeys 64", n)
	}
}

func TestKeyedNoLimit(t *testing.T) {
	k := NewKeyed(KeyedConfig{})
	for i := 0; i < 100; i++ {
		if ok, _ := k.Allow("x"); !ok {
			t.Fatal("refused without a limit")
		}
	}
	if k.Len() != 0 {
		t.Fatal("an unlimited limiter remembers keys")
	}
}

func TestKeyedConcurrent(t *testing.T) {
	clk := newFakeClock()
	k := NewKeyed(KeyedConfig{Rate: 1, Burst: 50, Clock: clk})
	var allowed [4]atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				key := i % 4
				if ok, _ := k.Allow(fmt.Sprint(key)); ok {
					allowed[key].Add(1)
				}
			}
		}(g)
	}
	wg.Wait()
	for i := range allowed {
		if allowed[i].Load() != 50 {
			t.Errorf("key %d: %d allowed; want exactly its burst 50", i, allowed[i].Load())
		}
	}
}

func BenchmarkBucketAllow(b *testing.B) {
	bk := NewBucket(1e9, 1e9, nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			bk.Allow()
		}
	})
}

func BenchmarkKeyedAllow(b *testing.B) {
	k := NewKeyed(KeyedConfig{Rate: 1e9, Burst: 1e9})
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprintf("key-%d", i)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			k.Allow(keys[i%len(keys)])
			i++
		}
	})
}
