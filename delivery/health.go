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
	nowNs := now.UnixNano()
	var ops []OperationalEvent
	var breaker BreakerState

	es.mu.Lock()
	es.inFlight--
	if j.probe {
		es.probeInFlight = false
	}
	ep := es.ep
	if ep == nil {
		ep = j.ep
	}
	attempts := it.attempts
	status := kinehook.DeliveryRetrying
	var next int64
	switch out.Outcome {
	case OutcomeSuccess:
		attempts++
		status = kinehook.DeliverySucceeded
		es.consecFail = 0
		if es.breakerOpen {
			es.breakerOpen, es.backoff = false, 0
			breaker = BreakerClosed
			ops = append(ops, e.opEvent(OpEndpointRecovered, ep, "a delivery succeeded after the circuit breaker opened", es.failingSince, now))
		}
		if es.failingSince != 0 {
			es.failingSince = 0
			e.persistHealth(es, kinehook.HealthUpdate{Change: kinehook.HealthRecovered})
		}
	case OutcomeBackoff:
		// The endpoint asked us to slow down: not a failure, no attempt used.
		next = nowNs + int64(out.RetryAfter)
		es.pausedUntil = max(es.pausedUntil, next)
	default:
		attempts++
		if out.final {
			// Not the endpoint's fault (the event is gone): no health accounting.
			status = kinehook.DeliveryFailed
			break
		}
		if attempts >= e.maxAttempts {
			status = kinehook.DeliveryFailed
		} else {
			next = nowNs + int64(e.jitter(e.cfg.RetrySchedule[attempts-1]))
		}
		es.consecFail++
		if es.failingSince == 0 {
			es.failingSince = nowNs
			since := now
			e.persistHealth(es, kinehook.HealthUpdate{Change: kinehook.HealthFailing, FailingSince: since})
		}
		reason := ""
		switch {
		case out.Outcome == OutcomeGone:
			reason = "endpoint answered 410 Gone"
		case e.cfg.DisableAfter > 0 && nowNs-es.failingSince >= int64(e.cfg.DisableAfter):
			reason = fmt.Sprintf("endpoint failing continuously since %s", time.Unix(0, es.failingSince).UTC().Format(time.RFC3339))
		}
		if reason != "" && !ep.Disabled {
			ops = append(ops, e.disableLocked(es, reason, now))
		}
		switch {
		case e.cfg.BreakerThreshold > 0 && !es.breakerOpen && es.consecFail >= e.cfg.BreakerThreshold:
			es.breakerOpen = true
			es.backoff = int64(e.cfg.BreakerBackoff)
			es.probeAt = nowNs + es.backoff
			breaker = BreakerOpen
			e.log.Warn("delivery: circuit breaker open", "endpoint_id", es.id, "consecutive_failures", es.consecFail)
		case es.breakerOpen && j.probe:
			es.backoff = min(2*es.backoff, int64(e.cfg.BreakerMaxBackoff))
			es.probeAt = nowNs + es.backoff
		}
	}
	// Keep the in-memory time equal to what any store keeps (milliseconds).
	next -= next % int64(time.Millisecond)
	it.attempts = attempts
	if status == kinehook.DeliveryRetrying {
		it.nextAt = next
	}
	jobs := e.pumpLocked(es)
	es.mu.Unlock()

	if breaker != "" {
		e.obs.BreakerChanged(es.id, breaker)
	}
	for _, op := range ops {
		e.emit(op)
	}

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
		Status:   status,
		Attempts: int(attempts),
	}
	if next != 0 {
		res.NextAttemptAt = time.Unix(0, next).UTC()
	}
	if status.Final() {
		var lat time.Duration
		if it.createdAt != 0 {
			lat = time.Duration(nowNs - it.createdAt)
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
