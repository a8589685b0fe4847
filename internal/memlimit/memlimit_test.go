package memlimit

import (
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

// A live heap far over the base makes the collector run back to back: the
// limit rises; once the heap is freed and the collector idles, it returns to
// the base.
func TestAdaptiveRaisesWhenTheCollectorThrashes(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	const base = 4 << 20
	Adaptive(t.Context(), base, 20*time.Millisecond)
	if got := debug.SetMemoryLimit(-1); got != base {
		t.Fatalf("limit at start %d, want the base %d", got, base)
	}
	hold := make([][]byte, 0, 32)
	for range 32 {
		hold = append(hold, make([]byte, 1<<20)) // 32 MiB live, 8x the base
	}
	var sink []byte
	waitFor(t, func() bool {
		for range 2000 { // garbage: at the limit, each MiB triggers a collection
			sink = make([]byte, 4<<10)
		}
		return debug.SetMemoryLimit(-1) > base
	}, "limit to rise above the base")
	runtime.KeepAlive(hold)
	runtime.KeepAlive(sink)
	hold = nil
	runtime.GC()
	waitFor(t, func() bool {
		runtime.GC() // the CPU estimates move at collections
		return debug.SetMemoryLimit(-1) == base
	}, "limit to return to the base")
}

func waitFor(t *testing.T, ok func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for the %s (limit %d)", what, debug.SetMemoryLimit(-1))
		}
		time.Sleep(5 * time.Millisecond)
	}
}
