// Package memlimit keeps the Go runtime's soft memory limit a floor rather
// than a wall.
//
// A fixed soft limit keeps a long backlog's memory tight (the collector runs
// before the heap doubles its live set). But when the memory the program
// really needs outgrows it, as with thousands of deliveries in flight, the
// collector runs back to back and takes up to half the CPU. Adaptive watches
// the collector's share of the CPU: above RaiseAbove it raises the limit,
// below LowerBelow it lets the limit fall back towards the base. Workloads
// that fit under the base (the backlog among them: the collector takes ~3%
// there) see a fixed limit.
package memlimit

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

const (
	// RaiseAbove is the collector's share of the CPU over an interval above
	// which the limit is raised (by half). Back-to-back collections at the
	// limit take 40-50%; an ordinary heavy load under it stays below 10%.
	RaiseAbove = 0.25
	// LowerBelow is the share under which a raised limit falls back by a
	// tenth per interval, never below the base.
	LowerBelow = 0.05
	// MaxFactor bounds the raised limit to this many times the base; past
	// it the runtime's own cap (half the CPU to the collector) applies.
	MaxFactor = 16
)

// Next is the limit after an interval in which the collector took gcShare
// of the CPU, given the base and the current limit.
func Next(base, current int64, gcShare float64) int64 {
	switch {
	case gcShare > RaiseAbove:
		return min(current+current/2, base*MaxFactor)
	case gcShare < LowerBelow && current > base:
		return max(base, current-current/10)
	default:
		return current
	}
}

// Adaptive sets the soft limit to base and then adjusts it every interval
// with Next until ctx ends (the limit is left where it is then). It returns
// at once; the work runs in a goroutine.
func Adaptive(ctx context.Context, base int64, interval time.Duration) {
	debug.SetMemoryLimit(base)
	ticks := time.NewTicker(interval)
	go func() {
		defer ticks.Stop()
		control(ctx, base, ticks.C, readCPU, func(limit int64) { debug.SetMemoryLimit(limit) })
	}()
}

// control is Adaptive's loop: at each tick it reads the collector's and the
// total CPU time (seconds) and sets the next limit when it changes.
func control(ctx context.Context, base int64, ticks <-chan time.Time, read func() (gc, total float64, ok bool), set func(int64)) {
	gc0, total0, ok := read()
	if !ok {
		return // a runtime without these metrics: keep the fixed limit
	}
	current := base
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticks:
		}
		gc, total, ok := read()
		if !ok || total <= total0 {
			continue // the CPU estimates move at collections only
		}
		share := (gc - gc0) / (total - total0)
		gc0, total0 = gc, total
		if next := Next(base, current, share); next != current {
			set(next)
			current = next
		}
	}
}

// readCPU reads the runtime's estimates of the collector's CPU time and of
// the CPU time available (GOMAXPROCS x wall time) so far.
func readCPU() (gc, total float64, ok bool) {
	samples := []metrics.Sample{
		{Name: "/cpu/classes/gc/total:cpu-seconds"},
		{Name: "/cpu/classes/total:cpu-seconds"},
	}
	metrics.Read(samples)
	for _, s := range samples {
		if s.Value.Kind() != metrics.KindFloat64 {
			return 0, 0, false
		}
	}
	return samples[0].Value.Float64(), samples[1].Value.Float64(), true
}
