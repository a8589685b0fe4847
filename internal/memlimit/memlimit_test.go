package memlimit

import (
	"math"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestTarget(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		base, live, nonHeap, want int64
	}{
		{100 * mib, 0, 0, 100 * mib},
		{100 * mib, 40 * mib, 10 * mib, 100 * mib}, // small live heap: the base holds
		{100 * mib, 72 * mib, 10 * mib, 100 * mib}, // 72 * 1.25 + 10 = 100: still the base
		{100 * mib, 80 * mib, 0, 100 * mib},        // 80 * 1.25 = 100
		{100 * mib, 80 * mib, 20 * mib, 120 * mib}, // past the base: live * 1.25 + the rest
		{100 * mib, 60 * mib, 70 * mib, 145 * mib}, // many goroutine stacks count too
		{100 * mib, 200 * mib, 0, 250 * mib},       // never under the live heap
		{0, 50 * mib, 0, math.MaxInt64},            // no base: no limit
	} {
		if got := Target(tc.base, tc.live, tc.nonHeap); got != tc.want {
			t.Errorf("Target(%d, %d, %d) = %d, want %d", tc.base, tc.live, tc.nonHeap, got, tc.want)
		}
	}
}

// With a live heap larger than the base, the limit rises above it within a
// few intervals, and comes back to the base once the heap is freed.
func TestAdaptiveFollowsTheLiveHeap(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	const base = 8 << 20
	Adaptive(t.Context(), base, 10*time.Millisecond)
	if got := debug.SetMemoryLimit(-1); got != base {
		t.Fatalf("limit at start %d, want the base %d", got, base)
	}
	hold := make([][]byte, 0, 64)
	for range 64 {
		hold = append(hold, make([]byte, 1<<20)) // 64 MiB live
	}
	waitFor(t, func() bool {
		runtime.GC() // the live-heap metric is updated by collections
		return debug.SetMemoryLimit(-1) >= 64<<20
	}, "limit to rise above a 64 MiB live heap")
	runtime.KeepAlive(hold)
	hold = nil
	waitFor(t, func() bool {
		runtime.GC()
		return debug.SetMemoryLimit(-1) == base
	}, "limit to return to the base")
}

func waitFor(t *testing.T, ok func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for the %s (limit %d)", what, debug.SetMemoryLimit(-1))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
