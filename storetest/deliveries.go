package storetest

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
)

// fixture is a project with two endpoints and some events.
type fixture struct {
	p        *kinehook.Project
	e1, e2   *kinehook.Endpoint
	events   []*kinehook.Event
	byEvent  map[string][]*kinehook.Delivery
	all      []*kinehook.Delivery
	toE1     []*kinehook.Delivery // in acceptance order
	resource []string
}

func newFixture(t testing.TB, s kinehook.Store, n int) *fixture {
	t.Helper()
	f := &fixture{byEvent: map[string][]*kinehook.Delivery{}}
	f.p, _ = newProject(t, s, "fixture")
	f.e1 = newEndpoint(t, s, f.p.ID, nil)
	f.e2 = newEndpoint(t, s, f.p.ID, nil)
	var batch []*kinehook.Event
	for i := range n {
		res := fmt.Sprintf("video-%d", i%5)
		ev := newEvent(f.p.ID, kinehook.EventMediaUpdateStatus, res)
		f.resource = append(f.resource, res)
		batch = append(batch, ev)
		if len(batch) == 4 || i == n-1 {
			for _, r := range ingest(t, s, batch...) {
				f.events = append(f.events, r.Event)
				f.byEvent[r.Event.ID] = r.Deliveries
				f.all = append(f.all, r.Deliveries...)
				for _, d := range r.Deliveries {
					if d.EndpointID == f.e1.ID {
						f.toE1 = append(f.toE1, d)
					}
				}
			}
			batch = nil
		}
	}
	return f
}

func collectOpen(t testing.TB, s kinehook.Store, partitions []int) []*kinehook.Delivery {
	t.Helper()
	var out []*kinehook.Delivery
	requireNoErr(t, s.OpenDeliveries(t.Context(), partitions, func(d *kinehook.Delivery) error {
		out = append(out, d)
		return nil
	}), "OpenDeliveries")
	for i := 1; i < len(out); i++ {
		if out[i].Seq < out[i-1].Seq {
			t.Errorf("OpenDeliveries not in Seq order: %d after %d", out[i].Seq, out[i-1].Seq)
		}
	}
	return out
}

func result(d *kinehook.Delivery, at time.Time, st kinehook.DeliveryStatus, attempts, code int, errText string) kinehook.AttemptResult {
	r := kinehook.AttemptResult{
		Attempt: kinehook.Attempt{
			DeliveryID: d.ID, AttemptedAt: at, StatusCode: code, Error: errText, DurationMS: 2.5,
			ResponseBody:   fmt.Sprintf("answer %d", code),
			RequestHeaders: map[string]string{"webhook-id": d.EventID, "content-type": "application/json"},
		},
		Status:   st,
		Attempts: attempts,
	}
	if !st.Final() {
		r.NextAttemptAt = at.Add(5 * time.Second)
	}
	return r
}

func testDeliveries(t *testing.T, s kinehook.Store) {
	ctx := t.Context()
	f := newFixture(t, s, 6)
	other := newFixture(t, s, 2)

	// DeliveriesByID: any project, unknown ids skipped.
	ids := []string{f.all[0].ID, f.all[3].ID, other.all[1].ID, kinehook.NewID(kinehook.PrefixDelivery)}
	got, err := s.DeliveriesByID(ctx, ids)
	requireNoErr(t, err, "DeliveriesByID")
	if g, w := sortedIDs(deliveryIDs(got)), sortedIDs(ids[:3]); !equalStrings(g, w) {
		t.Errorf("DeliveriesByID = %v, want %v", g, w)
	}
	want := map[string]*kinehook.Delivery{f.all[0].ID: f.all[0], f.all[3].ID: f.all[3], other.all[1].ID: other.all[1]}
	for _, d := range got {
		if w := want[d.ID]; w != nil {
			compareDelivery(t, "DeliveriesByID entry", d, w)
		}
	}
	got, err = s.DeliveriesByID(ctx, nil)
	requireNoErr(t, err, "DeliveriesByID(nil)")
	if len(got) != 0 {
		t.Errorf("DeliveriesByID(nil) = %d deliveries", len(got))
	}

	// EventPayloads: keyed by id, unknown skipped.
	evIDs := []string{f.events[0].ID, other.events[1].ID, kinehook.NewID(kinehook.PrefixEvent)}
	payloads, err := s.EventPayloads(ctx, evIDs)
	requireNoErr(t, err, "EventPayloads")
	if len(payloads) != 2 || string(payloads[f.events[0].ID]) != string(f.events[0].Payload) ||
		string(payloads[other.events[1].ID]) != string(other.events[1].Payload) {
		t.Errorf("EventPayloads = %q", payloads)
	}

	// ListDeliveries per event.
	for _, ev := range f.events {
		ds, err := s.ListDeliveries(ctx, f.p.ID, ev.ID)
		requireNoErr(t, err, "ListDeliveries")
		if g, w := sortedIDs(deliveryIDs(ds)), sortedIDs(deliveryIDs(f.byEvent[ev.ID])); !equalStrings(g, w) {
			t.Errorf("ListDeliveries(%s) = %v, want %v", ev.ID, g, w)
		}
	}
}

func testOpenDeliveries(t *testing.T, s kinehook.Store) {
	f := newFixture(t, s, 12)
	open := collectOpen(t, s, nil)
	if g, w := sortedIDs(deliveryIDs(open)), sortedIDs(deliveryIDs(f.all)); !equalStrings(g, w) {
		t.Fatalf("OpenDeliveries(nil) = %d deliveries, want the %d created", len(g), len(w))
	}
	byID := map[string]*kinehook.Delivery{}
	for _, d := range f.all {
		byID[d.ID] = d
	}
	for _, d := range open {
		compareDelivery(t, "OpenDeliveries entry", d, byID[d.ID])
	}

	// Partition filter: exactly the deliveries in those partitions.
	parts := map[int]bool{f.all[0].Partition: true, f.all[5].Partition: true}
	want := []string{}
	for _, d := range f.all {
		if parts[d.Partition] {
			want = append(want, d.ID)
		}
	}
	got := collectOpen(t, s, slices.Collect(maps.Keys(parts)))
	if g := sortedIDs(deliveryIDs(got)); !equalStrings(g, sortedIDs(want)) {
		t.Errorf("OpenDeliveries(%v) = %v, want %v", slices.Collect(maps.Keys(parts)), g, sortedIDs(want))
	}
	// A partition nothing hashes to.
	used := map[int]bool{}
	for _, d := range f.all {
		used[d.Partition] = true
	}
	for p := range kinehook.NumPartitions {
		if !used[p] {
			if got := collectOpen(t, s, []int{p}); len(got) != 0 {
				t.Errorf("OpenDeliveries([%d]) = %d deliveries, want none", p, len(got))
			}
			break
		}
	}

	// Final deliveries leave the open set; retrying ones stay.
	at := now()
	requireNoErr(t, s.RecordAttempts(t.Context(), []kinehook.AttemptResult{
		result(f.all[0], at, kinehook.DeliverySucceeded, 1, 200, ""),
		result(f.all[1], at, kinehook.DeliveryFailed, 8, 500, ""),
		result(f.all[2], at, kinehook.DeliveryRetrying, 1, 0, "connection refused"),
	}), "RecordAttempts")
	open = collectOpen(t, s, nil)
	set := map[string]*kinehook.Delivery{}
	for _, d := range open {
		set[d.ID] = d
	}
	if set[f.all[0].ID] != nil || set[f.all[1].ID] != nil {
		t.Errorf("final deliveries still listed by OpenDeliveries")
	}
	if d := set[f.all[2].ID]; d == nil || d.Status != kinehook.DeliveryRetrying || d.Attempts != 1 {
		t.Errorf("retrying delivery in OpenDeliveries = %+v", d)
	}
	if len(open) != len(f.all)-2 {
		t.Errorf("OpenDeliveries = %d, want %d", len(open), len(f.all)-2)
	}

	// An error from fn stops the walk and comes back.
	stop := errors.New("stop here")
	calls := 0
	err := s.OpenDeliveries(t.Context(), nil, func(*kinehook.Delivery) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("OpenDeliveries with a failing fn: err %v after %d calls, want the fn's error after 1", err, calls)
	}
}

func testRecordAttempts(t *testing.T, s kinehook.Store) {
	ctx := t.Context()
	f := newFixture(t, s, 2)
	d1, d2 := f.byEvent[f.events[0].ID][0], f.byEvent[f.events[0].ID][1]
	t0 := now()
	body := strings.Repeat("é", 1000) + "<html>\x01</html>"

	first := kinehook.AttemptResult{
		Attempt: kinehook.Attempt{ID: "att_first", DeliveryID: d1.ID, AttemptedAt: t0, StatusCode: 503, Error: "", DurationMS: 12.5,
			ResponseBody: body, RequestHeaders: map[string]string{"webhook-id": d1.EventID, "webhook-timestamp": "1700000000", "X-Team": "video"}},
		Status: kinehook.DeliveryRetrying, Attempts: 1, NextAttemptAt: t0.Add(5 * time.Second),
	}
	ok := kinehook.AttemptResult{
		Attempt: kinehook.Attempt{DeliveryID: d2.ID, AttemptedAt: t0, StatusCode: 200, DurationMS: 0.75, ResponseBody: "ok"},
		Status:  kinehook.DeliverySucceeded, Attempts: 1,
	}
	requireNoErr(t, s.RecordAttempts(ctx, []kinehook.AttemptResult{first, ok}), "RecordAttempts batch 1")

	got, err := s.GetDelivery(ctx, f.p.ID, d1.ID)
	requireNoErr(t, err, "GetDelivery d1")
	if got.Status != kinehook.DeliveryRetrying || got.Attempts != 1 || got.LastStatusCode != 503 || got.LastError != "" {
		t.Errorf("d1 after a 503: %+v", got)
	}
	assertTimeEq(t, "d1.NextAttemptAt", got.NextAttemptAt, first.NextAttemptAt)
	got, err = s.GetDelivery(ctx, f.p.ID, d2.ID)
	requireNoErr(t, err, "GetDelivery d2")
	if got.Status != kinehook.DeliverySucceeded || got.Attempts != 1 || got.LastStatusCode != 200 {
		t.Errorf("d2 after a 200: %+v", got)
	}

	second := kinehook.AttemptResult{
		Attempt: kinehook.Attempt{ID: "att_second", DeliveryID: d1.ID, AttemptedAt: t0.Add(5 * time.Second), Error: "dial tcp 127.0.0.1:9: connection refused", DurationMS: 0.25},
		Status:  kinehook.DeliveryRetrying, Attempts: 2, NextAttemptAt: t0.Add(5*time.Minute + 5*time.Second),
	}
	requireNoErr(t, s.RecordAttempts(ctx, []kinehook.AttemptResult{second}), "RecordAttempts batch 2")
	third := kinehook.AttemptResult{
		Attempt: kinehook.Attempt{DeliveryID: d1.ID, AttemptedAt: t0.Add(5*time.Minute + 5*time.Second), StatusCode: 410, DurationMS: 3, ResponseBody: "gone"},
		Status:  kinehook.DeliveryFailed, Attempts: 3,
	}
	requireNoErr(t, s.RecordAttempts(ctx, []kinehook.AttemptResult{third}), "RecordAttempts batch 3")

	got, err = s.GetDelivery(ctx, f.p.ID, d1.ID)
	requireNoErr(t, err, "GetDelivery d1 final")
	if got.Status != kinehook.DeliveryFailed || got.Attempts != 3 || got.LastStatusCode != 410 || got.LastError != "" {
		t.Errorf("d1 after the last attempt: %+v", got)
	}
	// The error of the second attempt was the last error for a while.
	atts, err := s.ListAttempts(ctx, f.p.ID, d1.ID)
	requireNoErr(t, err, "ListAttempts")
	assertAttempts(t, atts, []kinehook.Attempt{first.Attempt, second.Attempt, third.Attempt})

	// The last error is the attempt's error.
	d3 := f.byEvent[f.events[1].ID][0]
	requireNoErr(t, s.RecordAttempts(ctx, []kinehook.AttemptResult{
		result(d3, t0, kinehook.DeliveryRetrying, 1, 0, "timeout after 15s"),
	}), "RecordAttempts d3")
	got, err = s.GetDelivery(ctx, f.p.ID, d3.ID)
	requireNoErr(t, err, "GetDelivery d3")
	if got.LastError != "timeout after 15s" || got.LastStatusCode != 0 {
		t.Errorf("d3 LastError = %q, code %d", got.LastError, got.LastStatusCode)
	}

	testListAttemptsEdges(t, s, f, d1.ID)
}

// testListAttemptsEdges checks ListAttempts on another project, an unknown
// delivery and an untried one, and RecordAttempts of nothing.
func testListAttemptsEdges(t *testing.T, s kinehook.Store, f *fixture, triedID string) {
	t.Helper()
	ctx := t.Context()
	_, err := s.ListAttempts(ctx, kinehook.NewID(kinehook.PrefixProject), triedID)
	assertNotFound(t, err, "ListAttempts(other project)")
	_, err = s.ListAttempts(ctx, f.p.ID, kinehook.NewID(kinehook.PrefixDelivery))
	assertNotFound(t, err, "ListAttempts(unknown delivery)")
	none, err := s.ListAttempts(ctx, f.p.ID, f.byEvent[f.events[1].ID][1].ID)
	requireNoErr(t, err, "ListAttempts(no attempts)")
	if len(none) != 0 {
		t.Errorf("ListAttempts of an untried delivery = %d", len(none))
	}
	requireNoErr(t, s.RecordAttempts(ctx, nil), "RecordAttempts(nil)")
}

// assertAttempts checks that the attempts listed are want, field by field.
func assertAttempts(t *testing.T, atts []*kinehook.Attempt, want []kinehook.Attempt) {
	t.Helper()
	if len(atts) != len(want) {
		t.Fatalf("ListAttempts = %d attempts, want %d", len(atts), len(want))
	}
	for i, w := range want {
		g := atts[i]
		if g.ID != w.ID || g.DeliveryID != w.DeliveryID || g.StatusCode != w.StatusCode || g.Error != w.Error ||
			g.DurationMS != w.DurationMS || g.ResponseBody != w.ResponseBody {
			t.Errorf("attempt %d = %+v, want %+v", i, *g, w)
		}
		assertTimeEq(t, fmt.Sprintf("attempt %d AttemptedAt", i), g.AttemptedAt, w.AttemptedAt)
		if len(g.RequestHeaders) != 0 || len(w.RequestHeaders) != 0 {
			if !maps.Equal(g.RequestHeaders, w.RequestHeaders) {
				t.Errorf("attempt %d RequestHeaders = %v, want %v", i, g.RequestHeaders, w.RequestHeaders)
			}
		}
	}
}

func testRecordAttemptsLargeBatch(t *testing.T, s kinehook.Store) {
	ctx := t.Context()
	p, _ := newProject(t, s, "big")
	newEndpoint(t, s, p.ID, nil)
	evs := make([]*kinehook.Event, 300)
	for i := range evs {
		evs[i] = newEvent(p.ID, kinehook.EventMediaUpdateStatus, fmt.Sprintf("v%d", i))
	}
	res := ingest(t, s, evs...)
	at := now()
	var batch []kinehook.AttemptResult
	for i, r := range res {
		st := kinehook.DeliverySucceeded
		if i%3 == 0 {
			st = kinehook.DeliveryRetrying
		}
		batch = append(batch, result(r.Deliveries[0], at, st, 1, 200, ""))
	}
	requireNoErr(t, s.RecordAttempts(ctx, batch), "RecordAttempts(300)")
	open := collectOpen(t, s, nil)
	if len(open) != 100 {
		t.Errorf("after a batch of 300 results, %d open deliveries, want 100", len(open))
	}
	for _, i := range []int{0, 1, 299} {
		atts, err := s.ListAttempts(ctx, p.ID, res[i].Deliveries[0].ID)
		requireNoErr(t, err, "ListAttempts")
		if len(atts) != 1 {
			t.Errorf("delivery %d has %d attempts, want 1", i, len(atts))
		}
	}
}

func testReopenDeliveries(t *testing.T, s kinehook.Store) {
	ctx := t.Context()
	f := newFixture(t, s, 3)
	other := newFixture(t, s, 1)
	at := now().Add(-time.Hour)
	failed, succeeded, pending := f.all[0], f.all[1], f.all[2]
	foreign := other.all[0]
	requireNoErr(t, s.RecordAttempts(ctx, []kinehook.AttemptResult{
		result(failed, at, kinehook.DeliveryFailed, 8, 500, ""),
		result(succeeded, at, kinehook.DeliverySucceeded, 1, 200, ""),
		result(foreign, at, kinehook.DeliveryFailed, 8, 500, ""),
	}), "RecordAttempts")

	before := now()
	got, err := s.ReopenDeliveries(ctx, f.p.ID, []string{failed.ID, succeeded.ID, foreign.ID, kinehook.NewID(kinehook.PrefixDelivery)})
	requireNoErr(t, err, "ReopenDeliveries")
	if g, w := sortedIDs(deliveryIDs(got)), sortedIDs([]string{failed.ID, succeeded.ID}); !equalStrings(g, w) {
		t.Errorf("ReopenDeliveries returned %v, want %v (other project's and unknown ids skipped)", g, w)
	}
	for _, d := range got {
		if d.Status != kinehook.DeliveryPending {
			t.Errorf("reopened %s has status %s, want pending", d.ID, d.Status)
		}
		assertTimeNear(t, "reopened NextAttemptAt", d.NextAttemptAt, before, 5*time.Second)
		stored, err := s.GetDelivery(ctx, f.p.ID, d.ID)
		requireNoErr(t, err, "GetDelivery")
		compareDelivery(t, "reopened delivery as stored", stored, d)
	}
	st, err := s.GetDelivery(ctx, other.p.ID, foreign.ID)
	requireNoErr(t, err, "GetDelivery foreign")
	if st.Status != kinehook.DeliveryFailed {
		t.Errorf("another project's delivery was reopened: %s", st.Status)
	}
	open := map[string]bool{}
	for _, d := range collectOpen(t, s, nil) {
		open[d.ID] = true
	}
	if !open[failed.ID] || !open[succeeded.ID] || !open[pending.ID] || open[foreign.ID] {
		t.Errorf("open set after reopen = %v", open)
	}
	// Attempts made before stay listed.
	atts, err := s.ListAttempts(ctx, f.p.ID, failed.ID)
	requireNoErr(t, err, "ListAttempts")
	if len(atts) != 1 {
		t.Errorf("reopened delivery lost its attempts: %d", len(atts))
	}
}

func testDeleteEndpoint(t *testing.T, s kinehook.Store) {
	ctx := t.Context()
	f := newFixture(t, s, 4)
	at := now()
	// On e1: event 0 succeeded, event 1 retrying, events 2-3 pending.
	requireNoErr(t, s.RecordAttempts(ctx, []kinehook.AttemptResult{
		result(f.toE1[0], at, kinehook.DeliverySucceeded, 1, 200, ""),
		result(f.toE1[1], at, kinehook.DeliveryRetrying, 1, 500, ""),
	}), "RecordAttempts")
	requireNoErr(t, s.DeleteEndpoint(ctx, f.p.ID, f.e1.ID), "DeleteEndpoint")

	wantStatus := []kinehook.DeliveryStatus{kinehook.DeliverySucceeded, kinehook.DeliveryFailed, kinehook.DeliveryFailed, kinehook.DeliveryFailed}
	for i, d := range f.toE1 {
		got, err := s.GetDelivery(ctx, f.p.ID, d.ID)
		requireNoErr(t, err, "GetDelivery of a deleted endpoint's delivery")
		if got.Status != wantStatus[i] {
			t.Errorf("delivery %d of the deleted endpoint: %s, want %s", i, got.Status, wantStatus[i])
		}
	}
	for _, d := range collectOpen(t, s, nil) {
		if d.EndpointID == f.e1.ID {
			t.Errorf("OpenDeliveries still lists %s of the deleted endpoint", d.ID)
		}
	}
	// The other endpoint is untouched; new events no longer go to the deleted one.
	open := collectOpen(t, s, nil)
	if len(open) != 4 {
		t.Errorf("%d open deliveries after delete, want the other endpoint's 4", len(open))
	}
	r := ingest(t, s, newEvent(f.p.ID, kinehook.EventLiveCreated, "l"))
	if len(r[0].Deliveries) != 1 || r[0].Deliveries[0].EndpointID != f.e2.ID {
		t.Errorf("after delete, an event goes to %v, want only %s", endpointIDsOf(r[0].Deliveries), f.e2.ID)
	}
	// The event's history still lists the deleted endpoint's deliveries.
	ds, err := s.ListDeliveries(ctx, f.p.ID, f.events[0].ID)
	requireNoErr(t, err, "ListDeliveries")
	if len(ds) != 2 {
		t.Errorf("event history lists %d deliveries after delete, want 2", len(ds))
	}
}

func testConsistency(t *testing.T, s kinehook.Store) {
	f := newFixture(t, s, 9)
	at := now()
	requireNoErr(t, s.RecordAttempts(t.Context(), []kinehook.AttemptResult{
		result(f.all[0], at, kinehook.DeliverySucceeded, 1, 200, ""),
		result(f.all[1], at, kinehook.DeliveryRetrying, 1, 500, ""),
		result(f.all[2], at, kinehook.DeliveryFailed, 8, 0, "refused"),
	}), "RecordAttempts")
	c := CheckConsistency(t, s)
	want := Counts{Projects: 1, Endpoints: 2, Events: 9, Deliveries: 18, OpenDeliveries: 16, Attempts: 3}
	if c != want {
		t.Errorf("CheckConsistency counts = %+v, want %+v", c, want)
	}
}
