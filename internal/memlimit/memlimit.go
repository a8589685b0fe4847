// Package memlimit keeps the Go runtime's soft memory limit a floor rather
// than a wall.
//
// A fixed soft limit keeps a long backlog's memory tight (the collector runs
// before the heap doubles its live set), but once the live heap itself
// approaches the limit, as with thousands of deliveries in flight, the
// collector runs back to back and takes up to half the CPU. Adaptive raises
// the limit above the live heap as it grows (and lowers it back to the base
// when the heap shrinks), so memory stays bounded by the live set and the
// collector's work stays proportional to allocation.
package memlimit

import (
	"context"
	"math"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Headroom is the limit's margin over the live heap once the live heap is
// past the base: the collector then runs each time the program allocates a
// quarter of its live heap anew (like GOGC=25), not continuously.
const Headroom = 1.25

// Target is the limit for a live heap of live bytes and nonHeap bytes of
// other memory the limit counts (goroutine stacks, runtime metadata, heap
// spans not holding objects), with base as the floor.
func Target(base, live, nonHeap int64) int64 {
	if base <= 0 {
		return math.MaxInt64
	}
	want := int64(float64(live)*Headroom) + nonHeap
	return max(base, want)
}

// Adaptive sets the soft limit to base and then, every interval until ctx
// ends, to Target(base, live heap). It returns at once; the work runs in a
// goroutine. At the end the limit is left where it is.
func Adaptive(ctx context.Context, base int64, interval time.Duration) {
	debug.SetMemoryLimit(base)
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		sample := []metrics.Sample{
			{Name: "/gc/heap/live:bytes"},
			{Name: "/memory/classes/total:bytes"},
			{Name: "/memory/classes/heap/objects:bytes"},
			{Name: "/memory/classes/heap/released:bytes"},
		}
		current := base
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			metrics.Read(sample)
			var v [4]int64
			for i, s := range sample {
				if s.Value.Kind() != metrics.KindUint64 {
					return // a runtime without the metric: keep the fixed limit
				}
				v[i] = int64(s.Value.Uint64())
			}
			// Everything the limit counts besides heap objects: stacks,
			// runtime metadata, and heap spans unused or free but not yet
			// returned to the OS (after a burst of connections they can
			// be tens of MB, and a limit blind to them binds at once).
			live, nonHeap := v[0], v[1]-v[2]-v[3]
			if next := Target(base, live, max(nonHeap, 0)); next != current {
				debug.SetMemoryLimit(next)
				current = next
			}
		}
	}()
}
