package delivery

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/kinehook/kinehook"
)

// Operational event names.
const (
	OpEndpointDisabled  = kinehook.EventEndpointDisabled
	OpEndpointRecovered = kinehook.EventEndpointRecovered
)

// OperationalEvent tells a project's operators about an endpoint's health;
// it is published as an event of the project (see emit).
type OperationalEvent = kinehook.OperationalEvent

// OperationalData is the data of an OperationalEvent.
type OperationalData = kinehook.OperationalData

// finish applies an attempt's outcome to the delivery and the endpoint's
// health, hands the result to the writer, then frees the global slot; the
// resource queue advances once the result is committed.
func (e *Engine) finish(es *epState, j job, out attemptOutcome, at time.Time) {
	defer e.endSend()
	e.releasePayload(j.pl)
	it := j.it
	now := e.clock.Now()
	var v verdict
	jobs := e.pumpWith(es, func() { v = e.judgeLocked(es, j, &out, now) })

	if v.breaker != "" {
		e.obs.BreakerChanged(es.id, v.breaker)
	}
	for _, op := range v.ops {
		e.emit(op)
	}
	res := attemptResult(it, &out, at, v)
	res.EndpointID, res.ProjectID = es.id, j.ep.ProjectID // for the statistics
	status := v.status
	if status.Final() {
		var lat time.Duration
		if it.createdAt != 0 {
			lat = time.Duration(now.UnixNano() - it.createdAt)
		}
		e.obs.DeliveryFinished(es.id, status, lat)
	}
	e.resultCh <- pendingResult{res: res, done: func() { e.afterRecord(es, it, status.Final()) }}
	// The global slot is held until the result is queued: when the writer
	// falls behind, attempts wait for it instead of piling up as goroutines
	// parked on resultCh (each with its stack), which bounds memory.
	e.releaseGlobal()
	e.dispatch(es, jobs)
}

// verdict is what an attempt's outcome makes of its delivery (status,
// attempts used, next try) and of its endpoint (breaker change, operational
// events to emit).
type verdict struct {
	status   kinehook.DeliveryStatus
	attempts int32
	next     int64 // unix ns of the next try; 0 for none
	breaker  BreakerState
	ops      []OperationalEvent
}

// judgeLocked is the attempt outcome state machine: it ends the attempt in
// memory and applies its outcome to the delivery and the endpoint's health.
// es.mu must be held.
func (e *Engine) judgeLocked(es *epState, j job, out *attemptOutcome, now time.Time) verdict {
	es.inFlight--
	if j.probe {
		es.probeInFlight = false
	}
	ep := es.ep
	if ep == nil {
		ep = j.ep
	}
	it := j.it
	v := verdict{status: kinehook.DeliveryRetrying, attempts: it.attempts}
	switch out.Outcome {
	case OutcomeSuccess:
		e.succeededLocked(es, ep, now, &v)
	case OutcomeBackoff:
		// The endpoint asked us to slow down: not a failure, no attempt used.
		v.next = now.UnixNano() + int64(out.RetryAfter)
		es.pausedUntil = max(es.pausedUntil, v.next)
	default:
		e.failedLocked(es, ep, j.probe, out, now, &v)
	}
	// Keep the in-memory time equal to what any store keeps (milliseconds).
	v.next -= v.next % int64(time.Millisecond)
	it.attempts = v.attempts
	if v.status == kinehook.DeliveryRetrying {
		it.nextAt = v.next
	}
	e.noteBreakerLocked(es)
	return v
}

// succeededLocked: the delivery succeeded; the endpoint is healthy again,
// closing its breaker. es.mu must be held.
func (e *Engine) succeededLocked(es *epState, ep *kinehook.Endpoint, now time.Time, v *verdict) {
	v.attempts++
	v.status = kinehook.DeliverySucceeded
	es.consecFail = 0
	if es.breakerOpen {
		es.breakerOpen, es.backoff = false, 0
		v.breaker = BreakerClosed
		v.ops = append(v.ops, e.opEvent(OpEndpointRecovered, ep, "a delivery succeeded after the circuit breaker opened", es.failingSince, now))
	}
	if es.failingSince != 0 {
		es.failingSince = 0
		e.persistHealth(es, kinehook.HealthUpdate{Change: kinehook.HealthRecovered})
	}
}

// failedLocked: the attempt failed. The delivery is retried on the schedule
// or fails for good; the endpoint counts the failure (failing since,
// auto-disable, breaker) unless the failure was not its own. es.mu must be held.
func (e *Engine) failedLocked(es *epState, ep *kinehook.Endpoint, probe bool, out *attemptOutcome, now time.Time, v *verdict) {
	v.attempts++
	if out.final {
		// Not the endpoint's fault (the event is gone): no health accounting.
		v.status = kinehook.DeliveryFailed
		return
	}
	nowNs := now.UnixNano()
	if v.attempts >= e.maxAttempts {
		v.status = kinehook.DeliveryFailed
	} else {
		v.next = nowNs + int64(e.jitter(e.cfg.RetrySchedule[v.attempts-1]))
	}
	es.consecFail++
	if es.failingSince == 0 {
		es.failingSince = nowNs
		e.persistHealth(es, kinehook.HealthUpdate{Change: kinehook.HealthFailing, FailingSince: now})
	}
	if reason := e.disableReason(es, out.Outcome, nowNs); reason != "" && !ep.Disabled {
		v.ops = append(v.ops, e.disableLocked(es, reason, now))
	}
	v.breaker = e.breakerLocked(es, probe, nowNs)
}

// disableReason says why a failing endpoint is to be disabled: it answered
// 410 Gone, or it has been failing for DisableAfter; "" to keep it.
func (e *Engine) disableReason(es *epState, outcome Outcome, nowNs int64) string {
	switch {
	case outcome == OutcomeGone:
		return "endpoint answered 410 Gone"
	case e.cfg.DisableAfter > 0 && nowNs-es.failingSince >= int64(e.cfg.DisableAfter):
		return fmt.Sprintf("endpoint failing continuously since %s", time.Unix(0, es.failingSince).UTC().Format(time.RFC3339))
	}
	return ""
}

// breakerLocked opens the breaker at BreakerThreshold consecutive failures
// (BreakerOpen), or doubles its wait after a failed probe (no change to
// report: ""). es.mu must be held.
func (e *Engine) breakerLocked(es *epState, probe bool, nowNs int64) BreakerState {
	switch {
	case e.cfg.BreakerThreshold > 0 && !es.breakerOpen && es.consecFail >= e.cfg.BreakerThreshold:
		es.breakerOpen = true
		es.backoff = int64(e.cfg.BreakerBackoff)
		es.probeAt = nowNs + es.backoff
		e.log.Warn("delivery: circuit breaker open", "endpoint_id", es.id, "consecutive_failures", es.consecFail)
		return BreakerOpen
	case es.breakerOpen && probe:
		es.backoff = min(2*es.backoff, int64(e.cfg.BreakerMaxBackoff))
		es.probeAt = nowNs + es.backoff
	}
	return ""
}

// attemptResult is the row the writer records for an attempt and its verdict.
func attemptResult(it *item, out *attemptOutcome, at time.Time, v verdict) kinehook.AttemptResult {
	res := kinehook.AttemptResult{
		Attempt: kinehook.Attempt{
			ID:             out.id,
			DeliveryID:     it.id,
			AttemptedAt:    at,
			StatusCode:     out.StatusCode,
			Error:          out.Err,
			DurationMS:     float64(out.Duration.Microseconds()) / 1000,
			ResponseBody:   out.Response,
			RequestHeaders: out.Headers,
		},
		Status:   v.status,
		Attempts: int(v.attempts),
	}
	if v.next != 0 {
		res.NextAttemptAt = time.Unix(0, v.next).UTC()
	}
	return res
}

// disableLocked disables the endpoint in memory at once (its queue stops)
// and in the store in the background. es.mu must be held.
func (e *Engine) disableLocked(es *epState, reason string, now time.Time) OperationalEvent {
	cp := *es.ep
	cp.Disabled = true
	cp.DisabledReason = reason
	es.ep = &cp
	es.disabling = true
	e.log.Warn("delivery: endpoint disabled", "endpoint_id", es.id, "reason", reason)
	e.persistHealth(es, kinehook.HealthUpdate{Change: kinehook.HealthDisabled, Reason: reason})
	return e.opEvent(OpEndpointDisabled, &cp, reason, es.failingSince, now)
}

func (e *Engine) opEvent(name kinehook.EventType, ep *kinehook.Endpoint, reason string, failingSince int64, now time.Time) OperationalEvent {
	op := OperationalEvent{Event: name, Data: OperationalData{
		ProjectID: ep.ProjectID, EndpointID: ep.ID, URL: ep.URL, Reason: reason, At: now.UTC().Truncate(time.Millisecond),
	}}
	if failingSince != 0 { // milliseconds, as the API's other times
		op.Data.FailingSince = time.Unix(0, failingSince).UTC().Truncate(time.Millisecond)
	}
	return op
}

// persistHealth queues a change of the stored endpoint's health fields; the
// health loop applies changes in order, each as a narrow update of those
// fields alone (an API edit made meanwhile is kept), and tells the other
// instances when the endpoint changed.
func (e *Engine) persistHealth(es *epState, u kinehook.HealthUpdate) {
	projectID, id := es.projectID, es.id
	e.enqueueHealth(func(ctx context.Context) {
		u.At = e.clock.Now().UTC()
		changed, err := e.store.UpdateEndpointHealth(ctx, projectID, id, u)
		if err != nil {
			e.storeError("delivery: store endpoint health", err, "endpoint_id", id)
			return
		}
		if !changed {
			return
		}
		if err := e.cfg.Coordinator.AnnounceEndpoint(ctx, projectID, id); err != nil {
			e.storeWarn("delivery: announce endpoint", err, "endpoint_id", id)
		}
	})
}

func (e *Engine) enqueueHealth(f func(context.Context)) {
	e.hMu.Lock()
	if e.hClosed {
		e.hMu.Unlock()
		return
	}
	e.hQueue = append(e.hQueue, f)
	e.hMu.Unlock()
	select {
	case e.hSignal <- struct{}{}:
	default:
	}
}

// healthLoop applies endpoint updates in order until Shutdown.
func (e *Engine) healthLoop() {
	defer e.bg.Done()
	defer close(e.healthEnd)
	for {
		select {
		case <-e.hSignal:
		case <-e.hStop:
		}
		e.hMu.Lock()
		q := e.hQueue
		e.hQueue = nil
		closed := e.hClosed
		e.hMu.Unlock()
		for _, f := range q {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			f(ctx)
			cancel()
		}
		if closed && len(q) == 0 {
			return
		}
	}
}

// emit logs an operational event, tells the observer and publishes it as an
// event of the project (type endpoint.disabled or endpoint.recovered, the
// affected endpoint as its resource): it is recorded in the event log and
// delivered, like any webhook, to the endpoints that name it in their
// filter, such as the one the project's operations_url makes.
func (e *Engine) emit(op OperationalEvent) {
	e.log.Info("delivery: operational event", "event", op.Event, "endpoint_id", op.Data.EndpointID, "reason", op.Data.Reason)
	e.obs.OperationalEvent(op)
	body, err := json.Marshal(op)
	if err != nil {
		e.log.Error("delivery: encode operational event", "err", err)
		return
	}
	e.enqueueHealth(func(ctx context.Context) {
		ev := &kinehook.Event{ID: kinehook.NewID(kinehook.PrefixEvent), ProjectID: op.Data.ProjectID,
			Type: op.Event, ResourceKey: op.Data.EndpointID, Payload: body}
		if _, err := e.Publish(ctx, ev); err != nil {
			e.storeWarn("delivery: operational event not recorded", err, "event", op.Event, "endpoint_id", op.Data.EndpointID)
		}
	})
}
