package delivery

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
)

// 429/503 with Retry-After: honoured (capped at 1 h), no attempt used up, the
// whole endpoint backs off.
func TestRetryAfter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		status int
		header string
		wait   time.Duration
	}{
		{"429 seconds", 429, "120", 120 * time.Second},
		{"503 capped at 1h", 503, "86400", time.Hour},
		{"429 http date", 429, "", 90 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			s := newSink(t)
			first := true
			s.setHandler(func(w http.ResponseWriter, r sinkReq) {
				if first {
					first = false
					v := tc.header
					if v == "" {
						v = h.clock.Now().Add(tc.wait).UTC().Format(http.TimeFormat)
					}
					w.Header().Set("Retry-After", v)
					w.WriteHeader(tc.status)
					return
				}
				w.WriteHeader(200)
			})
			h.endpoint(s.srv.URL, nil)
			res := h.publish("A")
			start := h.clock.Now()
			s.next(t)
			d := h.waitFor(res.Deliveries[0].ID, "retrying after Retry-After", func(d *kinehook.Delivery) bool {
				return d.Status == kinehook.DeliveryRetrying && d.LastStatusCode == tc.status
			})
			if d.Attempts != 0 {
				t.Errorf("Attempts = %d after a Retry-After answer, want 0 (backoff is not failure)", d.Attempts)
			}
			if got := d.NextAttemptAt.Sub(start); got < tc.wait-time.Second || got > tc.wait+time.Second {
				t.Errorf("NextAttemptAt in %v, want %v", got, tc.wait)
			}
			h.idle()
			other := h.publish("B") // another resource waits too: the endpoint asked to slow down
			s.none(t, 20*time.Millisecond)
			h.clock.Advance(tc.wait + time.Second)
			s.take(t, 2)
			h.waitStatus(res.Deliveries[0].ID, kinehook.DeliverySucceeded, 1)
			h.waitStatus(other.Deliveries[0].ID, kinehook.DeliverySucceeded, 1)
			if a := h.attempts(res.Deliveries[0].ID); len(a) != 2 {
				t.Errorf("recorded attempts = %d, want 2 (the backoff is recorded)", len(a))
			}
		})
	}
}

// 410 disables the endpoint at once with the reason; its queue waits and
// resumes when re-enabled; endpoint.disabled is recorded as an event of the
// project and delivered, signed, to the endpoint that subscribes to it.
func TestGoneDisablesEndpoint(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	ops := newSink(t)
	opsEP := h.endpoint(ops.srv.URL+"/ops", func(e *kinehook.Endpoint) {
		e.ID, e.EventTypes = kinehook.OperationsEndpointID(h.proj.ID), []string{"endpoint.*"}
	})
	s := newSink(t)
	s.status(http.StatusGone)
	ep := h.endpoint(s.srv.URL, nil)
	first := h.publish("A")
	s.next(t)
	op := ops.next(t)
	var body OperationalEvent
	if err := json.Unmarshal(op.body, &body); err != nil {
		t.Fatalf("operational event body %s: %v", op.body, err)
	}
	if body.Event != OpEndpointDisabled || body.Data.EndpointID != ep.ID || !strings.Contains(body.Data.Reason, "410") {
		t.Errorf("operational event = %+v", body)
	}
	if err := kinehook.Verify([]string{testSecret}, op.header, op.body, h.clock.Now()); err != nil {
		t.Errorf("operational event signature: %v", err)
	}
	// Recorded: an event of the project, with its delivery like any other.
	evs, _, err := h.store.ListEvents(t.Context(), h.proj.ID, kinehook.EventFilter{Type: kinehook.EventEndpointDisabled})
	if err != nil || len(evs) != 1 || evs[0].ID != op.id || evs[0].ResourceKey != ep.ID || string(evs[0].Payload) != string(op.body) {
		t.Fatalf("recorded operational events %+v (%v), want the one delivered (%s)", evs, err, op.id)
	}
	ds, err := h.store.ListDeliveries(t.Context(), h.proj.ID, evs[0].ID)
	if err != nil || len(ds) != 1 || ds[0].EndpointID != opsEP.ID {
		t.Fatalf("deliveries of the operational event %+v (%v), want one to %s", ds, err, opsEP.ID)
	}
	h.waitStatus(ds[0].ID, kinehook.DeliverySucceeded, 1)
	deadline := time.Now().Add(waitLimit)
	for {
		got, err := h.store.GetEndpoint(t.Context(), h.proj.ID, ep.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Disabled {
			if !strings.Contains(got.DisabledReason, "410") {
				t.Errorf("DisabledReason = %q", got.DisabledReason)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("endpoint not disabled in the store after a 410")
		}
		time.Sleep(2 * time.Millisecond)
	}
	h.waitStatus(first.Deliveries[0].ID, kinehook.DeliveryRetrying, 1)
	// Deliveries created before the store saw the disable wait in memory.
	h.idle()
	h.clock.Advance(time.Hour)
	s.none(t, 30*time.Millisecond)

	s.status(200)
	h.updateEndpoint(ep.ID, func(e *kinehook.Endpoint) { e.Disabled, e.DisabledReason = false, "" })
	s.next(t)
	h.waitStatus(first.Deliveries[0].ID, kinehook.DeliverySucceeded, 2)
	_, seen := h.obs.snapshot()
	if len(seen) != 1 || seen[0].Event != OpEndpointDisabled {
		t.Errorf("observer saw %+v", seen)
	}
}

// A disabled endpoint's queued deliveries wait and resume on enable; a
// deleted endpoint's are not sent.
func TestDisabledAndDeletedEndpoints(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	s := newSink(t)
	s.status(500)
	ep := h.endpoint(s.srv.URL, nil)
	res := h.publish("A")
	s.next(t)
	h.waitStatus(res.Deliveries[0].ID, kinehook.DeliveryRetrying, 1)
	h.idle()
	h.updateEndpoint(ep.ID, func(e *kinehook.Endpoint) { e.Disabled = true })
	if _, err := h.eng.Retry(t.Context(), h.proj.ID, res.Deliveries[0].ID); kinehook.ErrorCode(err) != kinehook.ECONFLICT {
		t.Errorf("retry while the endpoint is disabled: %v, want a conflict", err)
	}
	h.clock.Advance(10 * time.Minute)
	s.none(t, 30*time.Millisecond)
	s.status(200)
	h.updateEndpoint(ep.ID, func(e *kinehook.Endpoint) { e.Disabled = false })
	s.next(t)
	h.waitStatus(res.Deliveries[0].ID, kinehook.DeliverySucceeded, 2)

	s.status(500)
	res2 := h.publish("B")
	s.next(t)
	h.waitStatus(res2.Deliveries[0].ID, kinehook.DeliveryRetrying, 1)
	h.idle()
	if err := h.store.DeleteEndpoint(t.Context(), h.proj.ID, ep.ID); err != nil {
		t.Fatal(err)
	}
	h.eng.EndpointChanged(t.Context(), h.proj.ID, ep.ID)
	h.eng.epMu.RLock()
	_, known := h.eng.eps[ep.ID]
	h.eng.epMu.RUnlock()
	if known {
		t.Error("the engine still tracks a deleted endpoint")
	}
	h.obs.mu.Lock()
	deleted := slices.Clone(h.obs.deleted)
	h.obs.mu.Unlock()
	if !slices.Equal(deleted, []string{ep.ID}) {
		t.Errorf("observer told of deleted endpoints %v, want [%s]", deleted, ep.ID)
	}
	h.clock.Advance(10 * time.Minute)
	s.none(t, 30*time.Millisecond)
	if d := h.delivery(res2.Deliveries[0].ID); d.Status != kinehook.DeliveryFailed {
		t.Errorf("deleted endpoint's delivery is %s, want failed (by the store)", d.Status)
	}
	// Disabled, or deleted: a retry cannot go now and is refused.
	if _, err := h.eng.Retry(t.Context(), h.proj.ID, res2.Deliveries[0].ID); kinehook.ErrorCode(err) != kinehook.ECONFLICT {
		t.Errorf("retry of a deleted endpoint's delivery: %v, want a conflict", err)
	}
	if d := h.delivery(res2.Deliveries[0].ID); d.Status != kinehook.DeliveryFailed {
		t.Errorf("after the refused retry the delivery is %s, want failed", d.Status)
	}
}

// An operator's retry while the breaker is open is not left to the probe
// schedule: it goes at once, as the probe, ahead of deliveries queued before
// it; its success closes the breaker and the rest follow.
func TestRetryWhileBreakerOpen(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) {
		c.BreakerThreshold = 2
		c.BreakerBackoff = time.Hour
		c.RetrySchedule = []time.Duration{time.Hour}
	})
	s := newSink(t)
	s.status(500)
	h.endpoint(s.srv.URL, func(e *kinehook.Endpoint) { e.MaxInFlight = 1 })
	var dids []string
	for _, r := range []string{"a", "b", "c", "d", "e"} {
		dids = append(dids, h.publish(r).Deliveries[0].ID)
	}
	s.take(t, 2)
	h.waitStatus(dids[1], kinehook.DeliveryRetrying, 1)
	h.idle()
	s.none(t, 30*time.Millisecond) // open: c, d and e wait for a probe an hour away
	s.status(200)
	last := h.publish("f").Deliveries[0]
	if _, err := h.eng.Retry(t.Context(), h.proj.ID, last.ID); err != nil {
		t.Fatal(err)
	}
	if r := s.next(t); r.resource != "f" {
		t.Fatalf("the first request after the retry is for %q, want the retried f", r.resource)
	}
	h.waitStatus(last.ID, kinehook.DeliverySucceeded, 1)
	// The probe succeeded: the breaker closed and the waiting ones flow.
	s.take(t, 3)
	for _, id := range dids[2:] {
		h.waitStatus(id, kinehook.DeliverySucceeded, 1)
	}
}

// The breaker opens after N consecutive failures, lets one probe through at
// backoff (doubling), and closes on success; queued deliveries then flow.
func TestCircuitBreaker(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) {
		c.BreakerThreshold = 3
		c.BreakerBackoff = time.Minute
		c.RetrySchedule = []time.Duration{time.Hour, time.Hour}
	})
	ops := newSink(t)
	h.endpoint(ops.srv.URL, func(e *kinehook.Endpoint) { e.EventTypes = []string{"endpoint.recovered"} })
	s := newSink(t)
	s.status(500)
	h.endpoint(s.srv.URL, func(e *kinehook.Endpoint) { e.MaxInFlight = 1 })
	var dids []string
	for i := range 8 {
		dids = append(dids, h.publish(string(rune('a' + i))).Deliveries[0].ID)
	}
	s.take(t, 3)
	for _, id := range dids[:3] {
		h.waitStatus(id, kinehook.DeliveryRetrying, 1)
	}
	h.idle()
	s.none(t, 30*time.Millisecond)
	for _, id := range dids[3:] {
		if d := h.delivery(id); d.Attempts != 0 {
			t.Fatalf("delivery %s burned %d attempts behind an open breaker", id, d.Attempts)
		}
	}
	if b, _ := h.obs.snapshot(); len(b) != 1 || b[0] != BreakerOpen {
		t.Fatalf("breaker changes = %v, want [open]", b)
	}
	h.clock.Advance(59 * time.Second)
	s.none(t, 20*time.Millisecond)
	h.clock.Advance(time.Second)
	s.next(t) // the probe
	h.idle()
	s.none(t, 20*time.Millisecond)
	// The failed probe doubles the backoff: nothing at +1m, one probe at +2m.
	h.clock.Advance(time.Minute)
	s.none(t, 20*time.Millisecond)
	s.status(200)
	h.clock.Advance(time.Minute)
	s.next(t)
	// Closed: the remaining due deliveries flow at once.
	s.take(t, 3)
	h.idle()
	b, evs := h.obs.snapshot()
	if len(b) != 2 || b[1] != BreakerClosed {
		t.Errorf("breaker changes = %v, want [open closed]", b)
	}
	if len(evs) != 1 || evs[0].Event != OpEndpointRecovered {
		t.Errorf("operational events = %+v, want endpoint.recovered", evs)
	}
	if r := ops.next(t); !strings.Contains(string(r.body), string(OpEndpointRecovered)) {
		t.Errorf("operations URL got %s", r.body)
	}
	succeeded := 0
	for _, id := range dids {
		if h.delivery(id).Status == kinehook.DeliverySucceeded {
			succeeded++
		}
	}
	// a, b, c failed before the breaker opened and d was the failed first
	// probe: they wait for their retries. e (second probe), f, g, h succeeded.
	if succeeded != 4 {
		t.Errorf("%d deliveries succeeded after the breaker closed, want 4", succeeded)
	}
	for _, id := range dids[:4] {
		if d := h.delivery(id); d.Status != kinehook.DeliveryRetrying || d.Attempts != 1 {
			t.Errorf("delivery %s = %s/%d, want retrying after one attempt", id, d.Status, d.Attempts)
		}
	}
}

// An endpoint failing continuously for DisableAfter is disabled.
func TestAutoDisable(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) {
		c.DisableAfter = 150 * time.Minute // between the 3rd (<= 2.2 h) and 4th (>= 2.7 h) attempt, whatever the jitter
		c.RetrySchedule = []time.Duration{time.Hour, time.Hour, time.Hour, time.Hour}
	})
	s := newSink(t)
	s.status(500)
	ep := h.endpoint(s.srv.URL, nil)
	res := h.publish("A")
	did := res.Deliveries[0].ID
	for i := 1; i <= 3; i++ {
		s.next(t)
		d := h.waitStatus(did, kinehook.DeliveryRetrying, i)
		h.idle()
		if i == 1 {
			h.waitEndpoint(ep.ID, "FailingSince set", func(e *kinehook.Endpoint) bool { return !e.FailingSince.IsZero() })
		}
		h.clock.AdvanceTo(d.NextAttemptAt)
	}
	s.next(t)
	h.waitStatus(did, kinehook.DeliveryRetrying, 4)
	h.waitEndpoint(ep.ID, "auto-disabled", func(e *kinehook.Endpoint) bool {
		return e.Disabled && strings.Contains(e.DisabledReason, "failing continuously")
	})
	h.idle()
	h.clock.Advance(2 * time.Hour)
	s.none(t, 20*time.Millisecond)
}

// A success clears FailingSince.
func TestSuccessClearsFailingSince(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	s := newSink(t)
	s.status(500)
	ep := h.endpoint(s.srv.URL, nil)
	res := h.publish("A")
	s.next(t)
	d := h.waitStatus(res.Deliveries[0].ID, kinehook.DeliveryRetrying, 1)
	h.waitEndpoint(ep.ID, "FailingSince set", func(e *kinehook.Endpoint) bool { return !e.FailingSince.IsZero() })
	h.idle()
	s.status(200)
	h.clock.AdvanceTo(d.NextAttemptAt)
	s.next(t)
	h.waitStatus(res.Deliveries[0].ID, kinehook.DeliverySucceeded, 2)
	h.waitEndpoint(ep.ID, "FailingSince cleared", func(e *kinehook.Endpoint) bool { return e.FailingSince.IsZero() })
}

// rate_limit: a token bucket of deliveries/s (burst: one second's worth).
func TestRateLimit(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	s := newSink(t)
	h.endpoint(s.srv.URL, func(e *kinehook.Endpoint) { e.RateLimit = 2 })
	for i := range 6 {
		h.publish(string(rune('a' + i)))
	}
	s.take(t, 2)
	s.none(t, 30*time.Millisecond)
	h.clock.Advance(500 * time.Millisecond)
	s.take(t, 1)
	s.none(t, 20*time.Millisecond)
	h.clock.Advance(500 * time.Millisecond)
	s.take(t, 1)
	h.clock.Advance(time.Second)
	s.take(t, 2)
}

// max_in_flight bounds concurrent requests to an endpoint; a hanging endpoint
// does not delay another one.
func TestMaxInFlightAndIsolation(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	slow := newSink(t)
	release := make(chan struct{})
	slow.setHandler(func(w http.ResponseWriter, r sinkReq) { <-release })
	fast := newSink(t)
	h.endpoint(slow.srv.URL, func(e *kinehook.Endpoint) { e.MaxInFlight = 2 })
	for i := range 5 {
		h.publish(string(rune('a' + i)))
	}
	slow.take(t, 2)
	slow.none(t, 30*time.Millisecond)
	if n := slow.active.Load(); n != 2 {
		t.Errorf("slow endpoint has %d requests in flight, want max_in_flight 2", n)
	}
	h.endpoint(fast.srv.URL, nil)
	start := time.Now()
	z := h.publish("z")
	if r := fast.next(t); r.id != z.Event.ID {
		t.Errorf("healthy endpoint got %s", r.id)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("healthy endpoint waited %v behind a hanging one", el)
	}
	close(release)
	slow.take(t, 4) // the 3 left plus "z"
	if m := slow.maxConc.Load(); m > 2 {
		t.Errorf("max concurrency at the slow endpoint = %d, want <= 2", m)
	}
}

// A global cap smaller than the work still serves every endpoint in turn.
func TestGlobalCap(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) { c.MaxInFlight = 1 })
	a, b := newSink(t), newSink(t)
	h.endpoint(a.srv.URL, nil)
	h.endpoint(b.srv.URL, nil)
	for i := range 10 {
		h.publish(string(rune('a' + i)))
	}
	a.take(t, 10)
	b.take(t, 10)
	if a.maxConc.Load()+b.maxConc.Load() > 2 {
		t.Errorf("more than one request at a time under a global cap of 1")
	}
}

// Restart: what was open in the store is delivered by the next engine.
func TestRestartRecovery(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	s := newSink(t)
	s.status(500)
	h.endpoint(s.srv.URL, nil)
	res := h.publish("A")
	pending := h.publish("B")
	s.take(t, 2)
	h.waitStatus(res.Deliveries[0].ID, kinehook.DeliveryRetrying, 1)
	h.waitStatus(pending.Deliveries[0].ID, kinehook.DeliveryRetrying, 1)
	h.restart()
	s.status(200)
	h.clock.Advance(2 * time.Minute)
	got := map[string]bool{}
	for _, r := range s.take(t, 2) {
		got[r.id] = true
	}
	if !got[res.Event.ID] || !got[pending.Event.ID] {
		t.Errorf("after restart delivered %v", got)
	}
	h.waitStatus(res.Deliveries[0].ID, kinehook.DeliverySucceeded, 2)
}

// Shutdown hands back what is in flight: nothing is recorded for it and the
// next start sends it.
func TestShutdownHandsBack(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	s := newSink(t)
	hang := make(chan struct{})
	s.setHandler(func(w http.ResponseWriter, r sinkReq) {
		select {
		case <-hang:
		case <-time.After(3 * time.Second):
		}
	})
	h.endpoint(s.srv.URL, nil)
	res := h.publish("A")
	s.next(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	err := h.eng.Shutdown(ctx)
	cancel()
	if err == nil {
		t.Error("Shutdown with an attempt still in flight returned nil, want a hand-back error")
	}
	if _, err := h.eng.Publish(t.Context(), h.event("x")); err == nil {
		t.Error("Publish after Shutdown succeeded")
	}
	h.eng = nil
	close(hang)
	if d := h.delivery(res.Deliveries[0].ID); d.Status != kinehook.DeliveryPending || d.Attempts != 0 {
		t.Fatalf("handed-back delivery = %s/%d, want pending/0", d.Status, d.Attempts)
	}
	if a := h.attempts(res.Deliveries[0].ID); len(a) != 0 {
		t.Errorf("cancelled attempt was recorded: %+v", a)
	}
	s.status(200)
	h.restart()
	if r := s.next(t); r.id != res.Event.ID {
		t.Errorf("after restart got %s", r.id)
	}
	h.waitStatus(res.Deliveries[0].ID, kinehook.DeliverySucceeded, 1)
}

// Retry and RetryFailed reopen final deliveries and send them.
func TestRetryAndRecover(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) { c.RetrySchedule = []time.Duration{} })
	s := newSink(t)
	s.status(500)
	ep := h.endpoint(s.srv.URL, nil)
	a := h.publish("A")
	b := h.publish("B")
	s.take(t, 2)
	h.waitStatus(a.Deliveries[0].ID, kinehook.DeliveryFailed, 1)
	h.waitStatus(b.Deliveries[0].ID, kinehook.DeliveryFailed, 1)
	h.idle()
	s.status(200)
	d, err := h.eng.Retry(t.Context(), h.proj.ID, a.Deliveries[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if d.ID != a.Deliveries[0].ID {
		t.Errorf("Retry returned %s", d.ID)
	}
	if r := s.next(t); r.id != a.Event.ID {
		t.Errorf("retry sent %s", r.id)
	}
	h.waitStatus(a.Deliveries[0].ID, kinehook.DeliverySucceeded, 2)
	n, err := h.eng.RetryFailed(t.Context(), h.proj.ID, kinehook.DeliveryFilter{EndpointID: ep.ID, Since: time.Now().Add(-time.Hour)})
	if err != nil || n != 1 {
		t.Fatalf("RetryFailed = %d, %v; want 1", n, err)
	}
	if r := s.next(t); r.id != b.Event.ID {
		t.Errorf("RetryFailed sent %s", r.id)
	}
	h.waitStatus(b.Deliveries[0].ID, kinehook.DeliverySucceeded, 2)
	if _, err := h.eng.Retry(t.Context(), h.proj.ID, "dlv_unknown"); kinehook.ErrorCode(err) != kinehook.ENOTFOUND {
		t.Errorf("Retry(unknown) = %v, want not found", err)
	}
}

// RetryFailed re-sends thousands of failed deliveries, more than one page,
// each resource in acceptance order, only those the filter matches, and
// none of a deleted endpoint.
func TestRetryFailedKeepsOrder(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	ctx := t.Context()
	s := newSink(t)
	s.status(200)
	ep := h.endpoint(s.srv.URL, nil)
	gone := h.endpoint(s.srv.URL+"/gone", nil)
	// Stored behind the engine's back, then failed: nothing is queued.
	const perResource = 400
	order := map[string][]string{} // resource -> event ids in acceptance order
	var failed []kinehook.AttemptResult
	for b := range 3 * perResource / 100 {
		var evs []*kinehook.Event
		for i := range 100 {
			evs = append(evs, h.event(fmt.Sprintf("r%d", (b*100+i)%3)))
		}
		res, err := h.store.IngestEvents(ctx, evs)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			order[r.Event.ResourceKey] = append(order[r.Event.ResourceKey], r.Event.ID)
			for _, d := range r.Deliveries {
				failed = append(failed, kinehook.AttemptResult{Attempt: kinehook.Attempt{DeliveryID: d.ID, AttemptedAt: time.Now(), StatusCode: 500},
					Status: kinehook.DeliveryFailed, Attempts: 1})
			}
		}
	}
	if err := h.store.RecordAttempts(ctx, failed); err != nil {
		t.Fatal(err)
	}
	if err := h.store.DeleteEndpoint(ctx, h.proj.ID, gone.ID); err != nil {
		t.Fatal(err)
	}
	h.eng.EndpointChanged(ctx, h.proj.ID, gone.ID)
	check := func(reqs []sinkReq, resources ...string) {
		t.Helper()
		got := map[string][]string{}
		for _, r := range reqs {
			if r.url != "/" {
				t.Fatalf("a delivery of the deleted endpoint was sent: %s", r.url)
			}
			got[r.resource] = append(got[r.resource], r.id)
		}
		if len(got) != len(resources) {
			t.Errorf("sent resources %d, want %v", len(got), resources)
		}
		for _, res := range resources {
			if !slices.Equal(got[res], order[res]) {
				t.Errorf("resource %s: %d sent, out of acceptance order or incomplete", res, len(got[res]))
			}
		}
	}
	n, err := h.eng.RetryFailed(ctx, h.proj.ID, kinehook.DeliveryFilter{EndpointID: ep.ID, ResourceKey: "r1"})
	if err != nil || n != perResource {
		t.Fatalf("RetryFailed(r1) = %d, %v; want %d", n, err, perResource)
	}
	check(s.take(t, perResource), "r1")
	// Statuses in the filter do not widen it: only failed ones go.
	n, err = h.eng.RetryFailed(ctx, h.proj.ID, kinehook.DeliveryFilter{Statuses: []kinehook.DeliveryStatus{kinehook.DeliverySucceeded, kinehook.DeliveryFailed}})
	if err != nil || n != 2*perResource {
		t.Fatalf("RetryFailed(project) = %d, %v; want %d", n, err, 2*perResource)
	}
	check(s.take(t, 2*perResource), "r0", "r2")
	s.none(t, 200*time.Millisecond)
	still := 0
	for f := (kinehook.DeliveryFilter{EndpointID: gone.ID, Statuses: []kinehook.DeliveryStatus{kinehook.DeliveryFailed}, Limit: 1000}); ; {
		ds, next, err := h.store.SearchDeliveries(ctx, h.proj.ID, f)
		if err != nil {
			t.Fatal(err)
		}
		still += len(ds)
		if f.Cursor = next; next == "" {
			break
		}
	}
	if still != 3*perResource {
		t.Errorf("the deleted endpoint's failed deliveries: %d still failed, want %d", still, 3*perResource)
	}
}

// With no or a tiny payload budget, payloads come from the store in batches
// (with prefetch of the deliveries next in line) and are still sent byte for
// byte; the budget is given back.
func TestPayloadsLoadedFromStore(t *testing.T) {
	t.Parallel()
	for _, budget := range []int64{-1, 400} {
		t.Run(fmt.Sprintf("budget=%d", budget), func(t *testing.T) {
			h := newHarness(t, func(c *Config) { c.PayloadBudget = budget; c.Prefetch = 4 })
			s := newSink(t)
			release := make(chan struct{})
			first := true
			s.setHandler(func(w http.ResponseWriter, r sinkReq) {
				if first {
					first = false
					<-release // hold the queue so the rest pile up without payloads
				}
			})
			ep := h.endpoint(s.srv.URL, func(e *kinehook.Endpoint) { e.MaxInFlight = 1 })
			want := map[string]string{}
			for i := range 20 {
				ev := h.event(string(rune('a' + i)))
				if _, err := h.eng.Publish(t.Context(), ev); err != nil {
					t.Fatal(err)
				}
				want[ev.ID] = string(ev.Payload)
			}
			s.next(t)
			close(release)
			for _, r := range s.take(t, 19) {
				if want[r.id] != string(r.body) {
					t.Errorf("%s: body %s, want %s", r.id, r.body, want[r.id])
				}
			}
			h.idle()
			if n := h.eng.payloadBytes.Load(); n != 0 {
				t.Errorf("payload bytes held = %d, want 0", n)
			}
			_ = ep
		})
	}
}

// Revoke forgets a partition's queue (it stays open in the store); Assign
// brings it back.
func TestRevokeAndAssign(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	s := newSink(t)
	s.status(500)
	ep := h.endpoint(s.srv.URL, nil)
	res := h.publish("A")
	s.next(t)
	h.waitStatus(res.Deliveries[0].ID, kinehook.DeliveryRetrying, 1)
	h.idle()
	p := kinehook.PartitionOf(ep.ID, "A")
	if err := h.eng.Revoke(t.Context(), []int{p}); err != nil {
		t.Fatal(err)
	}
	s.status(200)
	h.clock.Advance(2 * time.Minute)
	s.none(t, 30*time.Millisecond)
	if err := h.eng.Assign(t.Context(), []int{p}); err != nil {
		t.Fatal(err)
	}
	if r := s.next(t); r.id != res.Event.ID {
		t.Errorf("after Assign got %s", r.id)
	}
	h.waitStatus(res.Deliveries[0].ID, kinehook.DeliverySucceeded, 2)
}

// partialCoordinator owns every partition but one and records announcements.
type partialCoordinator struct {
	skip      int
	mu        sync.Mutex
	announced []string
	endpoints []string
}

func (c *partialCoordinator) Run(ctx context.Context, owner kinehook.PartitionOwner) error {
	var ps []int
	for _, p := range AllPartitions() {
		if p != c.skip {
			ps = append(ps, p)
		}
	}
	if err := owner.Assign(ctx, ps); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

func (c *partialCoordinator) AnnounceDeliveries(_ context.Context, ids []string) error {
	c.mu.Lock()
	c.announced = append(c.announced, ids...)
	c.mu.Unlock()
	return nil
}

func (c *partialCoordinator) AfterCommit(context.Context, []kinehook.IngestResult) {}

func (c *partialCoordinator) AnnounceEndpoint(_ context.Context, _, id string) error {
	c.mu.Lock()
	c.endpoints = append(c.endpoints, id)
	c.mu.Unlock()
	return nil
}

// Deliveries in a partition owned elsewhere are announced, not sent; Wake
// with a partition owned here sends them.
func TestForeignPartitionsAndWake(t *testing.T) {
	t.Parallel()
	epID := kinehook.NewID(kinehook.PrefixEndpoint)
	coord := &partialCoordinator{skip: kinehook.PartitionOf(epID, "A")}
	h := newHarness(t, func(c *Config) { c.Coordinator = coord })
	s := newSink(t)
	h.endpoint(s.srv.URL, func(e *kinehook.Endpoint) { e.ID = epID })
	foreign := h.publish("A")
	local := h.publish("B")
	if r := s.next(t); r.id != local.Event.ID {
		t.Fatalf("sent %s, want only the owned partition's delivery", r.id)
	}
	s.none(t, 30*time.Millisecond)
	coord.mu.Lock()
	announced := append([]string(nil), coord.announced...)
	endpoints := append([]string(nil), coord.endpoints...)
	coord.mu.Unlock()
	if len(announced) != 1 || announced[0] != foreign.Deliveries[0].ID {
		t.Errorf("announced %v, want [%s]", announced, foreign.Deliveries[0].ID)
	}
	if len(endpoints) != 1 || endpoints[0] != epID {
		t.Errorf("announced endpoints %v, want the created one", endpoints)
	}
	// Wake ignores partitions owned elsewhere...
	if err := h.eng.Wake(t.Context(), announced); err != nil {
		t.Fatal(err)
	}
	s.none(t, 30*time.Millisecond)
	// ...and loads them once this instance owns the partition.
	if err := h.eng.Assign(t.Context(), []int{coord.skip}); err != nil {
		t.Fatal(err)
	}
	if r := s.next(t); r.id != foreign.Event.ID {
		t.Errorf("after Assign sent %s", r.id)
	}
	h.waitStatus(foreign.Deliveries[0].ID, kinehook.DeliverySucceeded, 1)
}

// Wake loads deliveries another instance created.
func TestWake(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	s := newSink(t)
	h.endpoint(s.srv.URL, nil)
	res, err := h.store.IngestEvents(t.Context(), []*kinehook.Event{h.event("A")})
	if err != nil {
		t.Fatal(err)
	}
	s.none(t, 20*time.Millisecond)
	if err := h.eng.Wake(t.Context(), []string{res[0].Deliveries[0].ID, "dlv_unknown"}); err != nil {
		t.Fatal(err)
	}
	if r := s.next(t); r.id != res[0].Event.ID {
		t.Errorf("Wake sent %s", r.id)
	}
	h.waitStatus(res[0].Deliveries[0].ID, kinehook.DeliverySucceeded, 1)
}

// When the store is down, Publish fails fast with "unavailable" (the API
// answers 503) and nothing is scheduled.
func TestPublishStoreDown(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	s := newSink(t)
	h.endpoint(s.srv.URL, nil)
	if err := h.store.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := h.eng.Publish(t.Context(), h.event("A"))
	if code := kinehook.ErrorCode(err); code != kinehook.EUNAVAILABLE {
		t.Fatalf("Publish with the store closed: %v (code %q), want unavailable", err, code)
	}
	s.none(t, 20*time.Millisecond)
}
