package storetest

import (
	"cmp"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
)

// searchFixture is a project whose deliveries have every status, type and
// resource the search tells apart, beside another project's, with the
// model SearchDeliveries is checked against.
type searchFixture struct {
	p, other *kinehook.Project
	e1, e2   *kinehook.Endpoint
	all      []*kinehook.Delivery // the project's, as stored now
	events   []*kinehook.Event
	base     time.Time
}

// newSearchFixture ingests 24 events a minute apart (from base) into p:
// media.update.status to e1 and e2, live.created to e1 only, on three
// resources; and sets the statuses: by event index, failed, succeeded,
// retrying or pending on e1, and the reverse order on e2.
func newSearchFixture(t *testing.T, s kinehook.Store) *searchFixture {
	t.Helper()
	ctx := t.Context()
	f := &searchFixture{base: now().Add(-2 * time.Hour).Truncate(time.Second)}
	f.p, _ = newProject(t, s, "search")
	f.other, _ = newProject(t, s, "other")
	f.e1 = newEndpoint(t, s, f.p.ID, nil)
	f.e2 = newEndpoint(t, s, f.p.ID, func(e *kinehook.Endpoint) { e.EventTypes = []string{"media.*"} })
	oe := newEndpoint(t, s, f.other.ID, nil)
	statuses := []kinehook.DeliveryStatus{kinehook.DeliveryFailed, kinehook.DeliverySucceeded, kinehook.DeliveryRetrying, kinehook.DeliveryPending}
	var results []kinehook.AttemptResult
	for i := range 24 {
		typ := kinehook.EventMediaUpdateStatus
		if i%3 == 2 {
			typ = kinehook.EventType("live.created")
		}
		ev := newEvent(f.p.ID, typ, fmt.Sprintf("res-%d", i%3))
		ev.CreatedAt = f.base.Add(time.Duration(i) * time.Minute)
		// Another project's event of the same resource and time, in
		// the same commit: never found in p.
		oev := newEvent(f.other.ID, typ, ev.ResourceKey)
		oev.CreatedAt = ev.CreatedAt
		res := ingest(t, s, ev, oev)
		f.events = append(f.events, res[0].Event)
		for _, d := range res[1].Deliveries {
			results = append(results, result(d, now(), kinehook.DeliveryFailed, 1, 500, "boom"))
			if d.EndpointID != oe.ID {
				t.Fatalf("other project's delivery to %s", d.EndpointID)
			}
		}
		for _, d := range res[0].Deliveries {
			k := i % 4
			if d.EndpointID == f.e2.ID {
				k = 3 - k
			}
			if st := statuses[k]; st != kinehook.DeliveryPending {
				results = append(results, result(d, now(), st, 1, 500, ""))
			}
		}
	}
	requireNoErr(t, s.RecordAttempts(ctx, results), "RecordAttempts")
	for _, ev := range f.events {
		ds, err := s.ListDeliveries(ctx, f.p.ID, ev.ID)
		requireNoErr(t, err, "ListDeliveries")
		f.all = append(f.all, ds...)
	}
	return f
}

// want is the model's answer: the project's deliveries that match, newest
// first by (Seq, id), or oldest first.
func (f *searchFixture) want(fl kinehook.DeliveryFilter) []string {
	var out []*kinehook.Delivery
	for _, d := range f.all {
		switch {
		case fl.EndpointID != "" && d.EndpointID != fl.EndpointID,
			len(fl.Statuses) > 0 && !slices.Contains(fl.Statuses, d.Status),
			fl.EventType != "" && d.EventType != fl.EventType,
			fl.ResourceKey != "" && d.ResourceKey != fl.ResourceKey,
			fl.EventID != "" && d.EventID != fl.EventID,
			!fl.Since.IsZero() && d.CreatedAt.Before(fl.Since),
			!fl.Until.IsZero() && !d.CreatedAt.Before(fl.Until):
			continue
		}
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b *kinehook.Delivery) int {
		c := cmp.Or(cmp.Compare(a.Seq, b.Seq), cmp.Compare(a.ID, b.ID))
		if fl.Oldest {
			return c
		}
		return -c
	})
	return deliveryIDs(out)
}

// searchAll pages through a search with the given page size, checking
// each page's size and that the last page has no cursor.
func searchAll(t *testing.T, s kinehook.Store, projectID string, fl kinehook.DeliveryFilter, limit int) []*kinehook.Delivery {
	t.Helper()
	fl.Limit = limit
	var out []*kinehook.Delivery
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatal("SearchDeliveries never ends")
		}
		ds, next, err := s.SearchDeliveries(t.Context(), projectID, fl)
		requireNoErr(t, err, "SearchDeliveries")
		if len(ds) > limit {
			t.Fatalf("SearchDeliveries(limit %d) returned %d", limit, len(ds))
		}
		out = append(out, ds...)
		if next == "" {
			return out
		}
		if len(ds) != limit {
			t.Errorf("a page with a next cursor has %d deliveries, want %d", len(ds), limit)
		}
		fl.Cursor = next
	}
}

func testSearchDeliveries(t *testing.T, s kinehook.Store) {
	f := newSearchFixture(t, s)
	failed := []kinehook.DeliveryStatus{kinehook.DeliveryFailed}
	tests := []struct {
		name string
		fl   kinehook.DeliveryFilter
	}{
		{"all", kinehook.DeliveryFilter{}},
		{"endpoint", kinehook.DeliveryFilter{EndpointID: f.e1.ID}},
		{"endpoint failed", kinehook.DeliveryFilter{EndpointID: f.e2.ID, Statuses: failed}},
		{"endpoint open", kinehook.DeliveryFilter{EndpointID: f.e1.ID, Statuses: []kinehook.DeliveryStatus{kinehook.DeliveryPending, kinehook.DeliveryRetrying}}},
		{"endpoint pending", kinehook.DeliveryFilter{EndpointID: f.e1.ID, Statuses: []kinehook.DeliveryStatus{kinehook.DeliveryPending}}},
		{"endpoint failed or succeeded", kinehook.DeliveryFilter{EndpointID: f.e1.ID, Statuses: []kinehook.DeliveryStatus{kinehook.DeliveryFailed, kinehook.DeliverySucceeded}}},
		{"failed", kinehook.DeliveryFilter{Statuses: failed}},
		{"retrying", kinehook.DeliveryFilter{Statuses: []kinehook.DeliveryStatus{kinehook.DeliveryRetrying}}},
		{"succeeded", kinehook.DeliveryFilter{Statuses: []kinehook.DeliveryStatus{kinehook.DeliverySucceeded}}},
		{"type", kinehook.DeliveryFilter{EventType: "live.created"}},
		{"type and endpoint", kinehook.DeliveryFilter{EventType: kinehook.EventMediaUpdateStatus, EndpointID: f.e2.ID}},
		{"type of no delivery", kinehook.DeliveryFilter{EventType: "live.created", EndpointID: f.e2.ID}},
		{"resource", kinehook.DeliveryFilter{ResourceKey: "res-1"}},
		{"resource, endpoint and status", kinehook.DeliveryFilter{ResourceKey: "res-0", EndpointID: f.e1.ID, Statuses: failed}},
		{"unknown resource", kinehook.DeliveryFilter{ResourceKey: "res-9"}},
		{"event", kinehook.DeliveryFilter{EventID: f.events[5].ID}},
		{"event and endpoint", kinehook.DeliveryFilter{EventID: f.events[5].ID, EndpointID: f.e2.ID}},
		{"other project's event", kinehook.DeliveryFilter{EventID: kinehook.NewID(kinehook.PrefixEvent)}},
		{"since", kinehook.DeliveryFilter{Since: f.base.Add(17*time.Minute + time.Second)}},
		{"until", kinehook.DeliveryFilter{Until: f.base.Add(5*time.Minute + time.Second)}},
		{"since and until, endpoint failed", kinehook.DeliveryFilter{Since: f.base.Add(3*time.Minute + time.Second),
			Until: f.base.Add(20*time.Minute + time.Second), EndpointID: f.e1.ID, Statuses: failed}},
		{"empty time range", kinehook.DeliveryFilter{Since: f.base.Add(3*time.Minute + time.Second), Until: f.base.Add(3*time.Minute + 2*time.Second)}},
		{"future", kinehook.DeliveryFilter{Since: now().Add(time.Hour)}},
		{"unknown endpoint", kinehook.DeliveryFilter{EndpointID: kinehook.NewID(kinehook.PrefixEndpoint)}},
	}
	for _, tc := range tests {
		for _, oldest := range []bool{false, true} {
			fl := tc.fl
			fl.Oldest = oldest
			want := f.want(fl)
			if tc.name == "all" && len(want) != 40 {
				t.Fatalf("model has %d deliveries, want 40", len(want))
			}
			if g := deliveryIDs(searchAll(t, s, f.p.ID, fl, 1000)); !equalStrings(g, want) {
				t.Errorf("%s (oldest %v): SearchDeliveries = %v, want %v", tc.name, oldest, g, want)
			}
			if g := deliveryIDs(searchAll(t, s, f.p.ID, fl, 3)); !equalStrings(g, want) {
				t.Errorf("%s (oldest %v) in pages of 3: SearchDeliveries = %v, want %v", tc.name, oldest, g, want)
			}
		}
	}
	// Each item is the delivery as stored, with its event's type,
	// resource and time.
	byID := map[string]*kinehook.Delivery{}
	for _, d := range f.all {
		byID[d.ID] = d
	}
	for _, d := range searchAll(t, s, f.p.ID, kinehook.DeliveryFilter{}, 100) {
		compareDelivery(t, "SearchDeliveries item", d, byID[d.ID])
		if d.EventType == "" || d.ResourceKey == "" || d.CreatedAt.IsZero() || d.EventID == "" {
			t.Errorf("SearchDeliveries item lacks its event's fields: %+v", d)
		}
	}
	// The other project's deliveries are its own.
	if got := searchAll(t, s, f.other.ID, kinehook.DeliveryFilter{EndpointID: f.e1.ID}, 100); len(got) != 0 {
		t.Errorf("another project's search finds %d deliveries of this project's endpoint", len(got))
	}
	if got := searchAll(t, s, f.other.ID, kinehook.DeliveryFilter{}, 100); len(got) != 24 {
		t.Errorf("the other project's search finds %d deliveries, want 24", len(got))
	}
}

func testSearchDeliveriesPaging(t *testing.T, s kinehook.Store) {
	ctx := t.Context()
	f := newSearchFixture(t, s)
	// The default page and the store's own bound.
	ds, next, err := s.SearchDeliveries(ctx, f.p.ID, kinehook.DeliveryFilter{})
	requireNoErr(t, err, "SearchDeliveries")
	if len(ds) != 40 || next != "" {
		t.Errorf("SearchDeliveries without a limit = %d deliveries, next %q; want 40 and no cursor", len(ds), next)
	}
	// A page boundary inside one event's deliveries keeps the rest.
	for limit := 1; limit <= 7; limit++ {
		if g, w := deliveryIDs(searchAll(t, s, f.p.ID, kinehook.DeliveryFilter{}, limit)), f.want(kinehook.DeliveryFilter{}); !equalStrings(g, w) {
			t.Errorf("pages of %d = %v, want %v", limit, g, w)
		}
	}
	// Deliveries made after the first page do not shift the next one.
	ds, next, err = s.SearchDeliveries(ctx, f.p.ID, kinehook.DeliveryFilter{Limit: 5})
	requireNoErr(t, err, "SearchDeliveries")
	ingest(t, s, newEvent(f.p.ID, kinehook.EventMediaUpdateStatus, "res-0"))
	rest := searchAll(t, s, f.p.ID, kinehook.DeliveryFilter{Cursor: next}, 100)
	if g, w := append(deliveryIDs(ds), deliveryIDs(rest)...), f.want(kinehook.DeliveryFilter{}); !equalStrings(g, w) {
		t.Errorf("pages around a new event = %v, want %v", g, w)
	}
	// Bad cursors, and a cursor of the other order.
	_, oldNext, err := s.SearchDeliveries(ctx, f.p.ID, kinehook.DeliveryFilter{Limit: 2, Oldest: true})
	requireNoErr(t, err, "SearchDeliveries(oldest)")
	for _, c := range []string{"garbage!", "czE6MTI", kinehook.EncodeDeliveryCursor(0, "x", false), oldNext} {
		_, _, err := s.SearchDeliveries(ctx, f.p.ID, kinehook.DeliveryFilter{Cursor: c})
		if kinehook.ErrorCode(err) != kinehook.EINVALID {
			t.Errorf("SearchDeliveries(cursor %q) = %v, want EINVALID", c, err)
		}
	}
	// An unknown project has nothing.
	ds, next, err = s.SearchDeliveries(ctx, kinehook.NewID(kinehook.PrefixProject), kinehook.DeliveryFilter{})
	requireNoErr(t, err, "SearchDeliveries(unknown project)")
	if len(ds) != 0 || next != "" {
		t.Errorf("SearchDeliveries of an unknown project = %d, %q", len(ds), next)
	}
}

// testSearchDeliveriesTimeRange checks time bounds far from the events'
// times and across a long history: the Seq range a store may derive from
// them must never lose a delivery.
func testSearchDeliveriesTimeRange(t *testing.T, s kinehook.Store) {
	p, _ := newProject(t, s, "times")
	e := newEndpoint(t, s, p.ID, nil)
	start := now().Add(-30 * 24 * time.Hour)
	var all []*kinehook.Delivery
	// One event every 6 hours over 30 days, in batches.
	var batch []*kinehook.Event
	for i := range 120 {
		ev := newEvent(p.ID, kinehook.EventMediaUpdateStatus, "v")
		ev.CreatedAt = start.Add(time.Duration(i) * 6 * time.Hour)
		batch = append(batch, ev)
		if len(batch) == 16 || i == 119 {
			for _, r := range ingest(t, s, batch...) {
				all = append(all, r.Deliveries...)
			}
			batch = nil
		}
	}
	f := &searchFixture{all: all}
	for _, tc := range []struct{ since, until time.Time }{
		{start.Add(24 * time.Hour), time.Time{}},
		{start.Add(29*24*time.Hour + time.Minute), time.Time{}},
		{time.Time{}, start.Add(time.Minute)},
		{time.Time{}, start.Add(12*time.Hour + time.Minute)},
		{start.Add(10*24*time.Hour - time.Minute), start.Add(10*24*time.Hour + time.Minute)},
		{start.Add(-time.Hour), now().Add(time.Hour)},
		{start.Add(-48 * time.Hour), start.Add(-24 * time.Hour)},
	} {
		fl := kinehook.DeliveryFilter{EndpointID: e.ID, Since: tc.since, Until: tc.until}
		want := f.want(fl)
		if g := deliveryIDs(searchAll(t, s, p.ID, fl, 7)); !equalStrings(g, want) {
			t.Errorf("since %v until %v: %d deliveries, want %d", tc.since, tc.until, len(g), len(want))
		}
		fl.EndpointID = ""
		if g := deliveryIDs(searchAll(t, s, p.ID, fl, 1000)); !equalStrings(g, want) {
			t.Errorf("project since %v until %v: %d deliveries, want %d", tc.since, tc.until, len(g), len(want))
		}
	}
}
