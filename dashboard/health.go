package dashboard

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kinehook/kinehook"
)

// health summarises an endpoint's recent deliveries: the share of HTTP
// attempts that succeeded and the latest failure. It is computed from the
// deliveries of the project's latest events (Config.HealthWindow of them), so
// it needs nothing beyond the Store interface.
type health struct {
	Deliveries int
	Attempts   int
	Successes  int
	// Open counts deliveries still pending or retrying; Failed those that gave up.
	Open, Failed  int
	LastFailureAt time.Time
	LastFailure   string
	LastSuccessAt time.Time
}

// HasData reports whether any attempt was made in the window.
func (h *health) HasData() bool { return h.Attempts > 0 }

// Rate is the share of attempts that succeeded.
func (h *health) Rate() float64 {
	if h.Attempts == 0 {
		return 0
	}
	return float64(h.Successes) / float64(h.Attempts)
}

// Level grades the rate for colouring: ok, warn or bad.
func (h *health) Level() string {
	switch r := h.Rate(); {
	case !h.HasData():
		return "info"
	case r >= 0.95:
		return "ok"
	case r >= 0.7:
		return "warn"
	}
	return "bad"
}

// failureText describes a failed attempt or delivery in a few words.
func failureText(code int, errText string) string {
	switch {
	case errText != "" && code != 0 && !strings.Contains(errText, strconv.Itoa(code)):
		return fmt.Sprintf("HTTP %d: %s", code, errText)
	case errText != "":
		return errText
	case code != 0:
		return fmt.Sprintf("HTTP %d", code)
	}
	return "failed"
}

// recentEvents returns up to n of the project's newest events matching f.
func (h *Handler) recentEvents(ctx context.Context, projectID string, f kinehook.EventFilter, n int) ([]*kinehook.Event, error) {
	var out []*kinehook.Event
	for len(out) < n {
		f.Limit = min(n-len(out), 100)
		evs, next, err := h.store.ListEvents(ctx, projectID, f)
		if err != nil {
			return nil, fmt.Errorf("list events: %w", err)
		}
		out = append(out, evs...)
		if next == "" || len(evs) == 0 {
			break
		}
		f.Cursor = next
	}
	return out, nil
}

// projectHealth computes every endpoint's health over the latest events.
func (h *Handler) projectHealth(ctx context.Context, projectID string) (map[string]*health, error) {
	evs, err := h.recentEvents(ctx, projectID, kinehook.EventFilter{}, h.cfg.HealthWindow)
	if err != nil {
		return nil, err
	}
	out := map[string]*health{}
	// The latest failure candidate per endpoint; a succeeded delivery that
	// needed retries is looked into only if it is the latest candidate.
	latest := map[string]*kinehook.Delivery{}
	for _, ev := range evs {
		ds, err := h.store.ListDeliveries(ctx, projectID, ev.ID)
		if err != nil {
			return nil, fmt.Errorf("list deliveries of %s: %w", ev.ID, err)
		}
		for _, d := range ds {
			hl := out[d.EndpointID]
			if hl == nil {
				hl = &health{}
				out[d.EndpointID] = hl
			}
			hl.Deliveries++
			hl.Attempts += d.Attempts
			switch d.Status {
			case kinehook.DeliverySucceeded:
				hl.Successes++
				if d.UpdatedAt.After(hl.LastSuccessAt) {
					hl.LastSuccessAt = d.UpdatedAt
				}
			case kinehook.DeliveryFailed:
				hl.Failed++
			default:
				hl.Open++
			}
			failedOnce := d.Attempts > 1 || (d.Status != kinehook.DeliverySucceeded && d.Attempts > 0)
			if failedOnce {
				if c := latest[d.EndpointID]; c == nil || d.UpdatedAt.After(c.UpdatedAt) {
					latest[d.EndpointID] = d
				}
			}
		}
	}
	for epID, d := range latest {
		hl := out[epID]
		if d.Status != kinehook.DeliverySucceeded {
			hl.LastFailureAt, hl.LastFailure = d.UpdatedAt, failureText(d.LastStatusCode, d.LastError)
			continue
		}
		as, err := h.store.ListAttempts(ctx, projectID, d.ID)
		if err != nil {
			return nil, fmt.Errorf("list attempts of %s: %w", d.ID, err)
		}
		for _, a := range as {
			if a.StatusCode < 200 || a.StatusCode > 299 {
				if a.AttemptedAt.After(hl.LastFailureAt) {
					hl.LastFailureAt, hl.LastFailure = a.AttemptedAt, failureText(a.StatusCode, a.Error)
				}
			}
		}
	}
	return out, nil
}
