package kinehook

import "time"

// BreakerRecord is the delivery engine's breaker and pause state of an
// endpoint as last stored (Store.UpdateEndpointHealth with HealthBreaker),
// so that every instance's API answers the same. Times are zero when unset.
type BreakerRecord struct {
	// Open: the breaker is open; ProbeAt is when the next probe may go
	// (from then on the breaker is half open).
	Open    bool
	ProbeAt time.Time
	// ConsecutiveFailures counts the attempts failed in a row.
	ConsecutiveFailures int
	// PausedUntil is the end of a Retry-After or rate limit pause.
	PausedUntil time.Time
}

// Breaker states of EndpointHealth.
const (
	BreakerClosed   = "closed"
	BreakerOpen     = "open"
	BreakerHalfOpen = "half_open"
)

// EndpointHealth is an endpoint's health as the API shows it.
type EndpointHealth struct {
	// Breaker is closed, open (no delivery goes until ProbeAt) or
	// half_open (a probe may go or is under way).
	Breaker             string `json:"breaker"`
	ConsecutiveFailures int    `json:"consecutive_failures"`
	// FailingSince starts the current run of failures (null when healthy).
	FailingSince *time.Time `json:"failing_since"`
	// PausedUntil is the later of the breaker's next probe, a Retry-After
	// and a rate limit pause, null when none is ahead.
	PausedUntil    *time.Time `json:"paused_until"`
	DisabledReason string     `json:"disabled_reason"`
}

// Health is e's health at now.
func (e *Endpoint) Health(now time.Time) EndpointHealth {
	b := e.Breaker
	h := EndpointHealth{Breaker: BreakerClosed, ConsecutiveFailures: b.ConsecutiveFailures, DisabledReason: e.DisabledReason}
	if !e.FailingSince.IsZero() {
		t := e.FailingSince.UTC()
		h.FailingSince = &t
	}
	var until time.Time
	if b.Open {
		h.Breaker = BreakerHalfOpen
		if now.Before(b.ProbeAt) {
			h.Breaker = BreakerOpen
			until = b.ProbeAt
		}
	}
	if b.PausedUntil.After(until) && now.Before(b.PausedUntil) {
		until = b.PausedUntil
	}
	if !until.IsZero() {
		t := until.UTC()
		h.PausedUntil = &t
	}
	return h
}
