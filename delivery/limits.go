package delivery

import (
	"context"
	"fmt"
	"math"

	"github.com/kinehook/kinehook"
)

// beginSend counts an attempt about to start; false once Shutdown has begun.
func (e *Engine) beginSend() bool {
	e.sendMu.Lock()
	defer e.sendMu.Unlock()
	if e.sendStopped {
		return false
	}
	e.sendN++
	return true
}

// endSend counts an attempt finished (recorded, requeued or abandoned).
func (e *Engine) endSend() {
	e.sendMu.Lock()
	e.sendN--
	if e.sendN == 0 && e.sendStopped {
		close(e.sendDrained)
	}
	e.sendMu.Unlock()
}

// acquireGlobal takes a global in-flight slot, or queues the endpoint for
// the next free one. A slot handed over by releaseGlobal (gGrant) comes first.
func (e *Engine) acquireGlobal(es *epState) bool {
	e.gMu.Lock()
	defer e.gMu.Unlock()
	if es.gGrant > 0 {
		es.gGrant--
		return true
	}
	if e.gInFlight < e.cfg.MaxInFlight && len(e.gWaiters) == 0 {
		e.gInFlight++
		return true
	}
	if !es.gWaiting {
		es.gWaiting = true
		e.gWaiters = append(e.gWaiters, es)
	}
	return false
}

// releaseSlot gives back a slot that was never used (shutdown).
func (e *Engine) releaseSlot() {
	e.gMu.Lock()
	e.gInFlight--
	e.gMu.Unlock()
}

// releaseGlobal frees a slot: when endpoints wait for one, it goes to the
// first in line (round robin); if that one no longer needs it, to the next.
func (e *Engine) releaseGlobal() {
	for {
		e.gMu.Lock()
		if len(e.gWaiters) == 0 {
			e.gInFlight--
			e.gMu.Unlock()
			return
		}
		next := e.gWaiters[0]
		e.gWaiters[0] = nil
		e.gWaiters = e.gWaiters[1:]
		next.gWaiting = false
		next.gGrant++
		e.gMu.Unlock()

		e.withEndpoint(next, nil)

		e.gMu.Lock()
		if next.gGrant == 0 {
			e.gMu.Unlock()
			return
		}
		next.gGrant-- // not used: pass it on
		e.gMu.Unlock()
	}
}

// drainSends lets no attempt begin any more and waits for those in flight,
// cancelling them (they are handed back, not recorded) if ctx ends first.
func (e *Engine) drainSends(ctx context.Context) error {
	e.sendMu.Lock()
	e.sendStopped = true
	if e.sendN == 0 {
		close(e.sendDrained)
	}
	e.sendMu.Unlock()
	done := e.sendDrained
	var abandoned error
	select {
	case <-done:
	case <-ctx.Done():
		abandoned = fmt.Errorf("delivery: shutdown: in-flight attempts cancelled and handed back: %w", ctx.Err())
		e.sendStop()
		<-done
	}
	e.sendStop()
	return abandoned
}

// gateLocked applies the endpoint-wide limits before anything is taken. A
// Retry-After pause, or an open breaker with its probe in flight or not yet
// due, stops the endpoint (ok false; the timer is armed for the pause's or
// the probe's time). Otherwise it returns the in-flight bound: the
// endpoint's max_in_flight, else MaxInFlightPerEndpoint, and for a probe
// (probe true) one more than in flight. es.mu must be held.
func (e *Engine) gateLocked(es *epState, ep *kinehook.Endpoint, now int64) (limit int, probe, ok bool) {
	if es.pausedUntil > now {
		e.armLocked(es, es.pausedUntil)
		return 0, false, false
	}
	limit = ep.MaxInFlight
	if limit <= 0 {
		limit = e.cfg.MaxInFlightPerEndpoint
	}
	if !es.breakerOpen {
		return limit, false, true
	}
	if es.probeInFlight {
		return 0, false, false
	}
	if now < es.probeAt {
		e.armLocked(es, es.probeAt)
		return 0, false, false
	}
	return es.inFlight + 1, true, true
}

// tokenLocked refills the endpoint's rate-limit token bucket (a burst of
// max(1, rate), refilled continuously) and returns when the next token is
// due, or 0 when one is there now or the endpoint has no rate limit;
// startLocked spends it. es.mu must be held.
func (es *epState) tokenLocked(ep *kinehook.Endpoint, now int64) int64 {
	if ep.RateLimit <= 0 {
		return 0
	}
	burst := max(1, ep.RateLimit)
	if es.lastRefill == 0 {
		es.tokens, es.lastRefill = burst, now
	}
	es.tokens = min(burst, es.tokens+float64(now-es.lastRefill)/1e9*ep.RateLimit)
	es.lastRefill = now
	if es.tokens < 1-1e-9 { // tolerate float rounding at the exact refill time
		return now + int64(math.Ceil((1-es.tokens)/ep.RateLimit*1e9))
	}
	return 0
}
