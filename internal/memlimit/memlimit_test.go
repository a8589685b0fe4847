package memlimit

import (
	"context"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestNext(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		name          string
		base, current int64
		share         float64
		want          int64
	}{
		{"quiet at the base", 100 * mib, 100 * mib, 0.01, 100 * mib},
		{"busy but not thrashing", 100 * mib, 100 * mib, 0.15, 100 * mib},
		{"thrashing: raise by half", 100 * mib, 100 * mib, 0.45, 150 * mib},
		{"still thrashing", 100 * mib, 150 * mib, 0.45, 225 * mib},
		{"raise stops at the cap", 100 * mib, 1500 * mib, 0.45, 1600 * mib},
		{"quiet again: fall by a tenth", 100 * mib, 200 * mib, 0.01, 180 * mib},
		{"never under the base", 100 * mib, 105 * mib, 0.01, 100 * mib},
		{"in between: hold", 100 * mib, 200 * mib, 0.10, 200 * mib},
	} {
		if got := Next(tc.base, tc.current, tc.share); got != tc.want {
			t.Errorf("%s: Next(%d, %d, %.2f) = %d, want %d", tc.name, tc.base, tc.current, tc.share, got, tc.want)
		}
	}
}

// The loop turns CPU readings into limits: raised while the collector's share
// is high, held in between, lowered back to the base while it is low.
func TestControl(t *testing.T) {
	const base = 100 << 20
	// Cumulative (gc, total) CPU seconds at each tick; the share of each
	// interval is what Next sees.
	readings := [][2]float64{
		{0, 0},
		{0.45, 1}, // 45%: raise to 150 MiB
		{0.9, 2},  // 45%: 225 MiB
		{0.9, 2},  // no new collection: hold
		{1.0, 3},  // 10%: hold
		{1.01, 4}, // 1%: lower by a tenth
		{1.02, 5}, // 1%
	}
	i := 0
	read := func() (float64, float64, bool) {
		defer func() { i++ }()
		if i < len(readings) {
			return readings[i][0], readings[i][1], true
		}
		return 1.02, float64(5 + i), true // then an idle collector: down to the base, not below
	}
	var set []int64
	ticks := make(chan time.Time)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		control(ctx, base, ticks, read, func(l int64) { set = append(set, l) })
		close(done)
	}()
	for range len(readings) - 1 + 20 {
		ticks <- time.Time{}
	}
	cancel()
	<-done
	const mib = 1 << 20
	want := []int64{150 * mib, 225 * mib, 2025 * mib / 10}
	if len(set) < len(want) {
		t.Fatalf("limits set %v, want at least %v", set, want)
	}
	for k, w := range want {
		if set[k] != w {
			t.Errorf("limit %d = %d, want %d (all: %v)", k, set[k], w, set)
		}
	}
	if last := set[len(set)-1]; last != base {
		t.Errorf("last limit %d, want the base %d once the collector is idle", last, base)
	}
	for _, l := range set {
		if l < base {
			t.Errorf("limit %d under the base", l)
		}
	}
}

// Adaptive starts at the base, and its readings come from this runtime.
func TestAdaptiveStartsAtTheBase(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	const base = 256 << 20
	Adaptive(t.Context(), base, time.Hour)
	if got := debug.SetMemoryLimit(-1); got != base {
		t.Fatalf("limit at start %d, want the base %d", got, base)
	}
	runtime.GC() // the estimates are updated by collections
	if _, total, ok := readCPU(); !ok || total <= 0 {
		t.Fatalf("readCPU: total %v, ok %v", total, ok)
	}
}
