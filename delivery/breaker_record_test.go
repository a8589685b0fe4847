package delivery

import (
	"net/http"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
)

// The breaker state the API shows is stored as it changes (open with its
// probe time and the failures counted, closed again after a good probe),
// and an engine restarted meanwhile takes an open breaker over instead of
// sending at once.
func TestBreakerStateStoredAndAdopted(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) {
		c.BreakerThreshold = 3
		c.BreakerBackoff = time.Minute
		c.RetrySchedule = []time.Duration{time.Hour, time.Hour}
	})
	s := newSink(t)
	s.status(500)
	ep := h.endpoint(s.srv.URL, func(e *kinehook.Endpoint) { e.MaxInFlight = 1 })
	opened := h.clock.Now()
	for _, r := range []string{"a", "b", "c", "d"} {
		h.publish(r)
	}
	s.take(t, 3)
	got := h.waitEndpoint(ep.ID, "the open breaker stored", func(e *kinehook.Endpoint) bool { return e.Breaker.Open })
	if got.Breaker.ConsecutiveFailures != 3 || !got.Breaker.ProbeAt.Equal(opened.Add(time.Minute)) {
		t.Errorf("stored breaker = %+v, want 3 failures and the probe at %v", got.Breaker, opened.Add(time.Minute))
	}
	if hl := got.Health(opened); hl.Breaker != kinehook.BreakerOpen || hl.PausedUntil == nil || !hl.PausedUntil.Equal(opened.Add(time.Minute)) {
		t.Errorf("health = %+v", hl)
	}
	if hl := got.Health(opened.Add(time.Minute)); hl.Breaker != kinehook.BreakerHalfOpen || hl.PausedUntil != nil {
		t.Errorf("health at the probe time = %+v, want half_open without a pause", hl)
	}

	// A restarted engine keeps sparing the endpoint until the probe time.
	h.idle()
	h.restart()
	s.status(200)
	s.none(t, 50*time.Millisecond)
	h.clock.AdvanceTo(opened.Add(time.Minute))
	s.next(t) // the probe, alone
	h.waitEndpoint(ep.ID, "the closed breaker stored", func(e *kinehook.Endpoint) bool {
		return !e.Breaker.Open && e.Breaker.ConsecutiveFailures == 0
	})
}

// A Retry-After pause is stored as the endpoint's paused_until.
func TestRetryAfterPauseStored(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	s := newSink(t)
	s.setHandler(func(w http.ResponseWriter, r sinkReq) {
		w.Header().Set("Retry-After", "120")
		w.WriteHeader(429)
	})
	ep := h.endpoint(s.srv.URL, nil)
	start := h.clock.Now()
	h.publish("a")
	s.next(t)
	got := h.waitEndpoint(ep.ID, "the pause stored", func(e *kinehook.Endpoint) bool { return !e.Breaker.PausedUntil.IsZero() })
	if d := got.Breaker.PausedUntil.Sub(start); d < 119*time.Second || d > 121*time.Second {
		t.Errorf("paused until start+%v, want 120 s", d)
	}
	if hl := got.Health(start); hl.Breaker != kinehook.BreakerClosed || hl.PausedUntil == nil || hl.ConsecutiveFailures != 0 {
		t.Errorf("health = %+v, want closed, paused, no failure (a back-off is no failure)", hl)
	}
}
