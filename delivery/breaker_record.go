package delivery

import (
	"context"
	"time"

	"github.com/kinehook/kinehook"
)

// breakerRec is the part of an endpoint's state that the API shows as its
// health (kinehook.BreakerRecord), in the engine's units (unix ns).
type breakerRec struct {
	open        bool
	probeAt     int64
	consec      int
	pausedUntil int64
}

// minRatePause is the shortest rate limit pause worth storing: shorter ones
// come and go with every delivery of a busy endpoint.
const minRatePause = int64(time.Second)

// breakerRecLocked is the endpoint's current record. es.mu must be held.
func (es *epState) breakerRecLocked() breakerRec {
	r := breakerRec{open: es.breakerOpen, consec: es.consecFail, pausedUntil: max(es.pausedUntil, es.ratePausedUntil)}
	if r.open {
		r.probeAt = es.probeAt
	}
	return r
}

func (r breakerRec) record() kinehook.BreakerRecord {
	out := kinehook.BreakerRecord{Open: r.open, ConsecutiveFailures: r.consec}
	if r.probeAt != 0 {
		out.ProbeAt = time.Unix(0, r.probeAt).UTC()
	}
	if r.pausedUntil != 0 {
		out.PausedUntil = time.Unix(0, r.pausedUntil).UTC()
	}
	return out
}

func recOf(b kinehook.BreakerRecord) breakerRec {
	r := breakerRec{open: b.Open, consec: b.ConsecutiveFailures}
	if !b.ProbeAt.IsZero() {
		r.probeAt = b.ProbeAt.UnixNano()
	}
	if !b.PausedUntil.IsZero() {
		r.pausedUntil = b.PausedUntil.UnixNano()
	}
	return r
}

// noteBreakerLocked stores the endpoint's breaker and pause state when it
// changed, so that the API of every instance shows it. Writes are
// coalesced: while one is queued, later changes only update what it will
// write, so a storm of failures costs one write per health loop turn, and
// the attempt path never waits for the store. es.mu must be held.
func (e *Engine) noteBreakerLocked(es *epState) {
	rec := es.breakerRecLocked()
	if rec == es.hSaved {
		return
	}
	es.hSaved = rec
	if es.hQueued {
		return
	}
	es.hQueued = true
	projectID, id := es.projectID, es.id
	e.enqueueHealth(func(ctx context.Context) {
		es.mu.Lock()
		rec := es.hSaved
		es.hQueued = false
		es.mu.Unlock()
		u := kinehook.HealthUpdate{Change: kinehook.HealthBreaker, Breaker: rec.record()}
		if _, err := e.store.UpdateEndpointHealth(ctx, projectID, id, u); err != nil {
			e.storeError("delivery: store endpoint breaker state", err, "endpoint_id", id)
		}
	})
}

// notePauseLocked notes a rate limit pause until at (unix ns) when it is
// long enough to show. es.mu must be held.
func (e *Engine) notePauseLocked(es *epState, at, now int64) {
	if at-now >= minRatePause && at > es.ratePausedUntil {
		es.ratePausedUntil = at
		e.noteBreakerLocked(es)
	}
}

// adoptBreakerLocked takes over the breaker state stored for an endpoint
// this engine loads for the first time (another instance, or this one
// before a restart, opened its breaker): the endpoint keeps being spared
// until its next probe, and the API keeps showing what is true. es.mu must
// be held.
func (e *Engine) adoptBreakerLocked(es *epState, ep *kinehook.Endpoint) {
	rec := recOf(ep.Breaker)
	es.hSaved = rec
	if ep.Disabled {
		return
	}
	es.consecFail = rec.consec
	if rec.open && e.cfg.BreakerThreshold > 0 {
		es.breakerOpen = true
		es.probeAt = rec.probeAt
		es.backoff = int64(e.cfg.BreakerBackoff)
	}
	if rec.pausedUntil > e.clock.Now().UnixNano() {
		es.pausedUntil = rec.pausedUntil
	}
}
