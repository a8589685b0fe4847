package app

import (
	"context"
	"fmt"

	"github.com/kinehook/kinehook"
)

// EndpointStats answers an endpoint's delivery statistics over the named
// window ("1h", "24h", "7d"; "" is 24h), read from the rollups the store
// keeps with the attempt results.
func (a *App) EndpointStats(ctx context.Context, pid, eid, window string) (*kinehook.Stats, error) {
	w, err := kinehook.ParseStatsWindow(window)
	if err != nil {
		return nil, err
	}
	if _, err := a.store.GetEndpoint(ctx, pid, eid); err != nil {
		return nil, fmt.Errorf("get endpoint: %w", err)
	}
	return a.stats(ctx, w, pid, eid)
}

// ProjectStats answers a project's delivery statistics over the named
// window, every endpoint together (deleted ones too, while their rollups
// are kept).
func (a *App) ProjectStats(ctx context.Context, pid, window string) (*kinehook.Stats, error) {
	w, err := kinehook.ParseStatsWindow(window)
	if err != nil {
		return nil, err
	}
	if _, err := a.store.GetProject(ctx, pid); err != nil {
		return nil, fmt.Errorf("get project: %w", err)
	}
	return a.stats(ctx, w, pid, "")
}

func (a *App) stats(ctx context.Context, w kinehook.StatsWindow, pid, eid string) (*kinehook.Stats, error) {
	now := a.now()
	from, to := kinehook.StatsRange(w, now)
	rows, err := a.store.Stats(ctx, kinehook.StatsQuery{ProjectID: pid, EndpointID: eid, BucketSeconds: w.BucketSeconds, From: from, To: to})
	if err != nil {
		return nil, fmt.Errorf("read statistics: %w", err)
	}
	return kinehook.BuildStats(w, now, rows), nil
}

// TestEndpoint sends a signed sample event to one endpoint alone, through
// the normal delivery path (it is stored, retried and shown like any
// event, but no other endpoint gets it), and returns its delivery. The
// type is t, or when empty the first catalog type the endpoint's filter
// selects.
func (a *App) TestEndpoint(ctx context.Context, pid, eid string, t kinehook.EventType) (*kinehook.Delivery, error) {
	e, err := a.store.GetEndpoint(ctx, pid, eid)
	if err != nil {
		return nil, fmt.Errorf("get endpoint: %w", err)
	}
	if t == "" {
		for _, c := range kinehook.EventTypes {
			if e.Matches(c) {
				t = c
				break
			}
		}
		if t == "" {
			return nil, &kinehook.Error{Code: kinehook.EINVALID, Field: FieldTestFilter, Message: "the endpoint's filter selects no catalog event type to send as a test"}
		}
	}
	switch {
	case !t.Known():
		return nil, &kinehook.Error{Code: kinehook.EINVALID, Field: "event_type", Message: fmt.Sprintf("unknown event type %q; expected one of %v", t, kinehook.EventTypes)}
	case !e.Matches(t):
		return nil, &kinehook.Error{Code: kinehook.EINVALID, Field: "event_type", Message: fmt.Sprintf("the endpoint's filter does not select %s", t)}
	case e.Disabled:
		return nil, &kinehook.Error{Code: kinehook.ECONFLICT, Field: FieldTestDisabled, Message: "the endpoint is disabled; enable it first"}
	}
	ev, err := sampleEvent(pid, t, a.now())
	if err != nil {
		return nil, err
	}
	ev.OnlyEndpoint = eid
	res, err := a.disp.Publish(ctx, ev)
	if err != nil {
		return nil, fmt.Errorf("publish test event: %w", err)
	}
	if len(res.Deliveries) != 1 {
		// Disabled or deleted between the check and the commit.
		return nil, &kinehook.Error{Code: kinehook.ECONFLICT, Message: "the endpoint was disabled or deleted meanwhile; nothing was sent"}
	}
	return res.Deliveries[0], nil
}
