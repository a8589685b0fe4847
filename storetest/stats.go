package storetest

import (
	"testing"
	"time"

	"github.com/kinehook/kinehook"
)

// testEndpointBreaker: HealthBreaker stores the engine's breaker state
// without touching UpdatedAt, reports a change only when there is one, and
// an update enabling a disabled endpoint resets it.
func testEndpointBreaker(t *testing.T, s kinehook.Store) {
	ctx := t.Context()
	p, eps := NewProject(t, s, 1)
	ep := eps[0]
	before, err := s.GetEndpoint(ctx, p.ID, ep.ID)
	requireNoErr(t, err, "GetEndpoint")
	if before.Breaker != (kinehook.BreakerRecord{}) {
		t.Fatalf("new endpoint's breaker = %+v, want zero", before.Breaker)
	}
	probe := time.Now().Add(time.Minute).UTC().Truncate(time.Millisecond)
	pause := probe.Add(time.Hour)
	rec := kinehook.BreakerRecord{Open: true, ProbeAt: probe, ConsecutiveFailures: 7, PausedUntil: pause}
	apply := func(r kinehook.BreakerRecord, want bool) {
		t.Helper()
		changed, err := s.UpdateEndpointHealth(ctx, p.ID, ep.ID, kinehook.HealthUpdate{Change: kinehook.HealthBreaker, Breaker: r, At: time.Now()})
		requireNoErr(t, err, "UpdateEndpointHealth(HealthBreaker)")
		if changed != want {
			t.Errorf("UpdateEndpointHealth(%+v) changed = %v, want %v", r, changed, want)
		}
	}
	apply(rec, true)
	apply(rec, false)
	got, err := s.GetEndpoint(ctx, p.ID, ep.ID)
	requireNoErr(t, err, "GetEndpoint")
	if !got.Breaker.Open || !got.Breaker.ProbeAt.Equal(probe) || got.Breaker.ConsecutiveFailures != 7 || !got.Breaker.PausedUntil.Equal(pause) {
		t.Errorf("stored breaker = %+v, want %+v", got.Breaker, rec)
	}
	if !got.UpdatedAt.Equal(before.UpdatedAt) {
		t.Errorf("UpdatedAt moved from %v to %v: a breaker change is no edit", before.UpdatedAt, got.UpdatedAt)
	}
	list, err := s.ListEndpoints(ctx, p.ID)
	requireNoErr(t, err, "ListEndpoints")
	if len(list) != 1 || list[0].Breaker.ConsecutiveFailures != 7 || !list[0].Breaker.Open {
		t.Errorf("ListEndpoints breaker = %+v", list[0].Breaker)
	}
	// An edit of an enabled endpoint keeps the engine's state.
	got.Description = "edited"
	got.Breaker = kinehook.BreakerRecord{}
	requireNoErr(t, s.UpdateEndpoint(ctx, got), "UpdateEndpoint")
	got, err = s.GetEndpoint(ctx, p.ID, ep.ID)
	requireNoErr(t, err, "GetEndpoint")
	if !got.Breaker.Open || got.Breaker.ConsecutiveFailures != 7 {
		t.Errorf("an edit changed the breaker state: %+v", got.Breaker)
	}
	// Disabled, then enabled: the breaker starts closed.
	_, err = s.UpdateEndpointHealth(ctx, p.ID, ep.ID, kinehook.HealthUpdate{Change: kinehook.HealthDisabled, Reason: "410", At: time.Now()})
	requireNoErr(t, err, "disable")
	got, err = s.GetEndpoint(ctx, p.ID, ep.ID)
	requireNoErr(t, err, "GetEndpoint")
	if !got.Breaker.Open {
		t.Errorf("disabling reset the breaker: %+v", got.Breaker)
	}
	got.Disabled, got.DisabledReason = false, ""
	got.UpdatedAt = got.UpdatedAt.Add(time.Second)
	requireNoErr(t, s.UpdateEndpoint(ctx, got), "enable")
	got, err = s.GetEndpoint(ctx, p.ID, ep.ID)
	requireNoErr(t, err, "GetEndpoint")
	if got.Breaker != (kinehook.BreakerRecord{}) {
		t.Errorf("enabled endpoint's breaker = %+v, want reset", got.Breaker)
	}
}

// testStatsRollups: RecordAttempts adds each attempt to one bucket of each
// resolution, counted by outcome with its latency; Stats reads them per
// endpoint or per project; PruneStats drops old rows.
func testStatsRollups(t *testing.T, s kinehook.Store) {
	ctx := t.Context()
	p, eps := NewProject(t, s, 2)
	other, otherEps := NewProject(t, s, 1)
	base := time.Now().UTC().Truncate(time.Hour).Add(-2 * time.Hour) // a whole hour ago, aligned
	var evs []*kinehook.Event
	for i := range 6 {
		evs = append(evs, NewEvent(p.ID, "r"+string(rune('a'+i)), base))
	}
	evs = append(evs, NewEvent(other.ID, "o", base))
	res, err := s.IngestEvents(ctx, evs)
	requireNoErr(t, err, "IngestEvents")
	deliveryOf := func(i int, ep string) string {
		for _, d := range res[i].Deliveries {
			if d.EndpointID == ep {
				return d.ID
			}
		}
		t.Fatalf("event %d has no delivery to %s", i, ep)
		return ""
	}
	at := func(min int) time.Time { return base.Add(time.Duration(min) * time.Minute).Add(10 * time.Second) }
	r := func(d string, st kinehook.DeliveryStatus, ms float64, when time.Time, withIDs bool, ep, pid string) kinehook.AttemptResult {
		out := kinehook.AttemptResult{Attempt: kinehook.Attempt{DeliveryID: d, AttemptedAt: when, StatusCode: 200, DurationMS: ms}, Status: st, Attempts: 1}
		if withIDs {
			out.EndpointID, out.ProjectID = ep, pid
		}
		return out
	}
	e0, e1 := eps[0].ID, eps[1].ID
	// Batch 1 (the engine's results carry the endpoint): minute 0.
	requireNoErr(t, s.RecordAttempts(ctx, []kinehook.AttemptResult{
		r(deliveryOf(0, e0), kinehook.DeliverySucceeded, 3, at(0), true, e0, p.ID),
		r(deliveryOf(1, e0), kinehook.DeliveryRetrying, 40, at(0), true, e0, p.ID),
		r(deliveryOf(0, e1), kinehook.DeliveryFailed, 900, at(0), true, e1, p.ID),
		r(deliveryOf(6, otherEps[0].ID), kinehook.DeliverySucceeded, 1, at(0), true, otherEps[0].ID, other.ID),
	}), "RecordAttempts 1")
	// Batch 2 (no endpoint given: the store finds it): minute 0 again, and minute 20.
	requireNoErr(t, s.RecordAttempts(ctx, []kinehook.AttemptResult{
		r(deliveryOf(1, e0), kinehook.DeliverySucceeded, 4, at(0), false, "", ""),
		r(deliveryOf(2, e0), kinehook.DeliverySucceeded, 8, at(20), false, "", ""),
	}), "RecordAttempts 2")

	q := func(ep string, size int64) []kinehook.StatsRow {
		t.Helper()
		rows, err := s.Stats(ctx, kinehook.StatsQuery{ProjectID: p.ID, EndpointID: ep, BucketSeconds: size, From: base.Add(-time.Hour), To: base.Add(2 * time.Hour)})
		requireNoErr(t, err, "Stats")
		return rows
	}
	type want struct {
		start            time.Time
		succ, fail, retr int64
		attempts         int64
		maxMS            float64
	}
	check := func(what string, rows []kinehook.StatsRow, w []want) {
		t.Helper()
		if len(rows) != len(w) {
			t.Fatalf("%s: %d rows %+v, want %d", what, len(rows), rows, len(w))
		}
		for i, r := range rows {
			c := r.Counts
			if !r.Start.Equal(w[i].start) || c.Succeeded != w[i].succ || c.Failed != w[i].fail || c.Retried != w[i].retr ||
				c.Attempts() != w[i].attempts || c.MaxMS != w[i].maxMS {
				t.Errorf("%s row %d = start %v %d/%d/%d attempts %d max %v, want %+v", what, i, r.Start, c.Succeeded, c.Failed, c.Retried, c.Attempts(), c.MaxMS, w[i])
			}
		}
	}
	check("endpoint 0 by minute", q(e0, 60), []want{{at(0).Truncate(time.Minute), 2, 0, 1, 3, 40}, {at(20).Truncate(time.Minute), 1, 0, 0, 1, 8}})
	check("endpoint 0 by quarter hour", q(e0, 900), []want{{base, 2, 0, 1, 3, 40}, {base.Add(15 * time.Minute), 1, 0, 0, 1, 8}})
	check("endpoint 0 by hour", q(e0, 3600), []want{{base, 3, 0, 1, 4, 40}})
	check("endpoint 1 by hour", q(e1, 3600), []want{{base, 0, 1, 0, 1, 900}})
	check("project by hour", q("", 3600), []want{{base, 3, 1, 1, 5, 900}})
	check("project by minute", q("", 60), []want{{base, 2, 1, 1, 4, 900}, {at(20).Truncate(time.Minute), 1, 0, 0, 1, 8}})
	rows := q(e0, 3600) // 3 and 4 ms share a bin
	if b := rows[0].Counts.Latency; b[kinehook.LatencyBin(3)] != 2 || b[kinehook.LatencyBin(40)] != 1 || b[kinehook.LatencyBin(8)] != 1 {
		t.Errorf("latency histogram = %v", b)
	}
	// The other project's attempt is its own.
	otherRows, err := s.Stats(ctx, kinehook.StatsQuery{ProjectID: other.ID, BucketSeconds: 60, From: base, To: base.Add(time.Hour)})
	requireNoErr(t, err, "Stats other")
	if len(otherRows) != 1 || otherRows[0].Counts.Succeeded != 1 {
		t.Errorf("other project's stats = %+v", otherRows)
	}
	// Outside the range: nothing.
	none, err := s.Stats(ctx, kinehook.StatsQuery{ProjectID: p.ID, BucketSeconds: 60, From: base.Add(time.Hour), To: base.Add(2 * time.Hour)})
	requireNoErr(t, err, "Stats later")
	if len(none) != 0 {
		t.Errorf("stats after the attempts = %+v", none)
	}

	pruner, ok := s.(kinehook.RetentionStore)
	if !ok {
		t.Fatal("the store is no kinehook.RetentionStore")
	}
	// Retention: at base+3h the minute rows (kept 3 h) of minute 0 go, the rest stays.
	n, err := pruner.PruneStats(ctx, base.Add(3*time.Hour+5*time.Minute))
	requireNoErr(t, err, "PruneStats")
	if n != 3 { // e0, e1 and the other project's endpoint at minute 0
		t.Errorf("PruneStats removed %d rows, want 3", n)
	}
	check("endpoint 0 by minute after pruning", q(e0, 60), []want{{at(20).Truncate(time.Minute), 1, 0, 0, 1, 8}})
	check("endpoint 0 by hour after pruning", q(e0, 3600), []want{{base, 3, 0, 1, 4, 40}})
	if _, err := pruner.PruneStats(ctx, base.Add(9*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if rows := q("", 3600); len(rows) != 0 {
		t.Errorf("hour rows after 9 days: %+v", rows)
	}
}
