package storetest

import (
	"strings"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
)

// listAll pages through ListEvents and fails on duplicates or a page over the limit.
func listAll(t testing.TB, s kinehook.Store, projectID string, f kinehook.EventFilter) []*kinehook.Event {
	t.Helper()
	var out []*kinehook.Event
	seen := map[string]bool{}
	for pages := 0; ; pages++ {
		if pages > 10000 {
			t.Fatal("ListEvents never returns an empty cursor")
		}
		page, next, err := s.ListEvents(t.Context(), projectID, f)
		requireNoErr(t, err, "ListEvents")
		if f.Limit > 0 && len(page) > f.Limit {
			t.Fatalf("ListEvents returned %d events with limit %d", len(page), f.Limit)
		}
		for _, e := range page {
			if seen[e.ID] {
				t.Fatalf("ListEvents returned %s twice while paging", e.ID)
			}
			seen[e.ID] = true
		}
		out = append(out, page...)
		if next == "" {
			return out
		}
		if len(page) == 0 {
			t.Fatal("ListEvents returned an empty page with a next cursor")
		}
		f.Cursor = next
	}
}

func eventIDs(es []*kinehook.Event) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

func testListEventsPaging(t *testing.T, s kinehook.Store) {
	ctx := t.Context()
	p, _ := newProject(t, s, "p")
	other, _ := newProject(t, s, "other")
	var want []string // newest first
	for i := range 7 {
		e := newEvent(p.ID, kinehook.EventMediaUpdateStatus, "v")
		ingest(t, s, e)
		want = append([]string{e.ID}, want...)
		if i == 3 {
			ingest(t, s, newEvent(other.ID, kinehook.EventMediaUpdateStatus, "v"))
		}
	}
	for _, limit := range []int{1, 2, 3, 7, 100} {
		got := eventIDs(listAll(t, s, p.ID, kinehook.EventFilter{Limit: limit}))
		if !equalStrings(got, want) {
			t.Errorf("limit %d: ListEvents = %v, want newest first %v", limit, got, want)
		}
	}
	// Events accepted while paging do not shift pages: no gaps, no repeats.
	page1, next, err := s.ListEvents(ctx, p.ID, kinehook.EventFilter{Limit: 3})
	requireNoErr(t, err, "ListEvents page 1")
	if next == "" {
		t.Fatal("no next cursor after the first page of 7 events")
	}
	for range 4 {
		ingest(t, s, newEvent(p.ID, kinehook.EventMediaUpdateStatus, "v"))
	}
	rest := listAll(t, s, p.ID, kinehook.EventFilter{Limit: 3, Cursor: next})
	got := append(eventIDs(page1), eventIDs(rest)...)
	if !equalStrings(got, want) {
		t.Errorf("paging while ingesting = %v, want %v", got, want)
	}
	// A default limit applies when Limit is 0.
	all, _, err := s.ListEvents(ctx, p.ID, kinehook.EventFilter{})
	requireNoErr(t, err, "ListEvents without limit")
	if len(all) != 11 {
		t.Errorf("ListEvents without limit returned %d events, want all 11", len(all))
	}
	// A malformed cursor is invalid input.
	_, _, err = s.ListEvents(ctx, p.ID, kinehook.EventFilter{Cursor: "%%%not-a-cursor%%%"})
	if kinehook.ErrorCode(err) != kinehook.EINVALID {
		t.Errorf("ListEvents with a malformed cursor: err %v, want code %q", err, kinehook.EINVALID)
	}
	// Events of a project with none.
	none, next, err := s.ListEvents(ctx, kinehook.NewID(kinehook.PrefixProject), kinehook.EventFilter{Limit: 5})
	requireNoErr(t, err, "ListEvents unknown project")
	if len(none) != 0 || next != "" {
		t.Errorf("ListEvents of an empty project = %d events, cursor %q", len(none), next)
	}
}

func testListEventsFilters(t *testing.T, s kinehook.Store) {
	p, _ := newProject(t, s, "p")
	ep := newEndpoint(t, s, p.ID, nil)
	base := now().Add(-10 * time.Hour)
	type spec struct {
		typ      kinehook.EventType
		resource string
	}
	specs := []spec{
		{kinehook.EventMediaUpdateStatus, "video-a"},
		{kinehook.EventLiveCreated, "live-a"},
		{kinehook.EventMediaUpdateStatus, "video-b"},
		{kinehook.EventLiveConnected, "live-a"},
		{kinehook.EventMediaUpdateStatus, "video-a"},
		{kinehook.EventLiveFinished, "live-a"},
		{kinehook.EventMediaUpdateStatus, "video-a"},
	}
	events := make([]*kinehook.Event, len(specs))
	deliveries := make([]*kinehook.Delivery, len(specs))
	for i, sp := range specs {
		events[i] = newEvent(p.ID, sp.typ, sp.resource)
		events[i].CreatedAt = base.Add(time.Duration(i) * time.Hour)
		deliveries[i] = ingest(t, s, events[i])[0].Deliveries[0]
		if deliveries[i].EndpointID != ep.ID {
			t.Fatalf("delivery to %s, want %s", deliveries[i].EndpointID, ep.ID)
		}
	}
	// Settle some deliveries: 0 and 4 succeeded, 2 failed, 5 retrying; others pending.
	at := now()
	settle := func(i int, st kinehook.DeliveryStatus, code int) kinehook.AttemptResult {
		return kinehook.AttemptResult{
			Attempt:  kinehook.Attempt{DeliveryID: deliveries[i].ID, AttemptedAt: at, StatusCode: code, DurationMS: 1},
			Status:   st,
			Attempts: 1,
			NextAttemptAt: func() time.Time {
				if st.Final() {
					return time.Time{}
				}
				return at.Add(time.Minute)
			}(),
		}
	}
	requireNoErr(t, s.RecordAttempts(t.Context(), []kinehook.AttemptResult{
		settle(0, kinehook.DeliverySucceeded, 200),
		settle(4, kinehook.DeliverySucceeded, 204),
		settle(2, kinehook.DeliveryFailed, 500),
		settle(5, kinehook.DeliveryRetrying, 503),
	}), "RecordAttempts")

	ids := func(idx ...int) []string { // newest first
		out := make([]string, len(idx))
		for i, j := range idx {
			out[len(idx)-1-i] = events[j].ID
		}
		return out
	}
	tests := []struct {
		name string
		f    kinehook.EventFilter
		want []string
	}{
		{"type", kinehook.EventFilter{Type: kinehook.EventMediaUpdateStatus}, ids(0, 2, 4, 6)},
		{"type live.finished", kinehook.EventFilter{Type: kinehook.EventLiveFinished}, ids(5)},
		{"resource", kinehook.EventFilter{ResourceKey: "video-a"}, ids(0, 4, 6)},
		{"type and resource", kinehook.EventFilter{Type: kinehook.EventLiveConnected, ResourceKey: "live-a"}, ids(3)},
		{"succeeded", kinehook.EventFilter{DeliveryStatus: kinehook.DeliverySucceeded}, ids(0, 4)},
		{"failed", kinehook.EventFilter{DeliveryStatus: kinehook.DeliveryFailed}, ids(2)},
		{"retrying", kinehook.EventFilter{DeliveryStatus: kinehook.DeliveryRetrying}, ids(5)},
		{"pending", kinehook.EventFilter{DeliveryStatus: kinehook.DeliveryPending}, ids(1, 3, 6)},
		{"since", kinehook.EventFilter{Since: base.Add(4*time.Hour + 30*time.Minute)}, ids(5, 6)},
		{"until", kinehook.EventFilter{Until: base.Add(90 * time.Minute)}, ids(0, 1)},
		{"window", kinehook.EventFilter{Since: base.Add(90 * time.Minute), Until: base.Add(270 * time.Minute)}, ids(2, 3, 4)},
		{"window and type", kinehook.EventFilter{Since: base.Add(90 * time.Minute), Until: base.Add(270 * time.Minute), Type: kinehook.EventMediaUpdateStatus}, ids(2, 4)},
		{"resource and succeeded", kinehook.EventFilter{ResourceKey: "video-a", DeliveryStatus: kinehook.DeliverySucceeded}, ids(0, 4)},
		{"no match", kinehook.EventFilter{ResourceKey: "nothing"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, limit := range []int{1, 2, 50} {
				f := tc.f
				f.Limit = limit
				got := eventIDs(listAll(t, s, p.ID, f))
				if !equalStrings(got, tc.want) {
					t.Errorf("limit %d: got %v, want %v", limit, got, tc.want)
				}
			}
		})
	}
}

// testListEndpointsPaging: pages follow ListEndpoints' order (oldest first,
// ties by id) without gaps or repeats, whatever the page size; endpoints
// created or deleted between pages never shift one; other projects' never
// show; a cursor not from the store is invalid.
func testListEndpointsPaging(t *testing.T, s kinehook.Store) {
	ctx := t.Context()
	p, _ := newProject(t, s, "paged")
	other, _ := newProject(t, s, "other")
	newEndpoint(t, s, other.ID, nil)
	same := now() // several endpoints created in the same microsecond: ordered by id
	var want []string
	for i := range 7 {
		e := newEndpoint(t, s, p.ID, func(e *kinehook.Endpoint) {
			if i >= 2 && i < 5 {
				e.CreatedAt, e.UpdatedAt = same, same
			}
		})
		want = append(want, e.ID)
	}
	all, err := s.ListEndpoints(ctx, p.ID)
	requireNoErr(t, err, "ListEndpoints")
	want = endpointIDs(all) // the order of the unpaged list
	for _, limit := range []int{1, 2, 3, 7, 8, 1000} {
		var got []string
		cursor := ""
		for pages := 0; ; pages++ {
			if pages > len(want)+1 {
				t.Fatalf("limit %d: the cursor never ends", limit)
			}
			page, next, err := s.ListEndpointsPage(ctx, p.ID, cursor, limit)
			requireNoErr(t, err, "ListEndpointsPage")
			if len(page) > limit {
				t.Fatalf("limit %d: a page of %d", limit, len(page))
			}
			got = append(got, endpointIDs(page)...)
			if next == "" {
				break
			}
			cursor = next
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("limit %d: pages %v, want %v", limit, got, want)
		}
	}
	// The last page of an exact multiple ends with an empty cursor or an empty page.
	page, next, err := s.ListEndpointsPage(ctx, p.ID, "", 7)
	requireNoErr(t, err, "ListEndpointsPage")
	if len(page) != 7 || next != "" {
		t.Errorf("one full page: %d endpoints, next %q; want 7 and no cursor", len(page), next)
	}
	// Deleting the endpoint a cursor points after, and creating one, shift nothing.
	page, next, err = s.ListEndpointsPage(ctx, p.ID, "", 3)
	requireNoErr(t, err, "ListEndpointsPage")
	requireNoErr(t, s.DeleteEndpoint(ctx, p.ID, page[2].ID), "DeleteEndpoint")
	late := newEndpoint(t, s, p.ID, nil)
	rest, _, err := s.ListEndpointsPage(ctx, p.ID, next, 1000)
	requireNoErr(t, err, "ListEndpointsPage")
	if got, wantRest := endpointIDs(rest), append(append([]string{}, want[3:]...), late.ID); strings.Join(got, ",") != strings.Join(wantRest, ",") {
		t.Errorf("after a delete and a create: %v, want %v", got, wantRest)
	}
	for _, bad := range []string{"nope", "czE6MTI", kinehook.EncodeEndpointCursor(time.Now(), "")} {
		if _, _, err := s.ListEndpointsPage(ctx, p.ID, bad, 10); kinehook.ErrorCode(err) != kinehook.EINVALID {
			t.Errorf("cursor %q: %v, want invalid", bad, err)
		}
	}
	if page, next, err := s.ListEndpointsPage(ctx, "prj_none", "", 10); err != nil || len(page) != 0 || next != "" {
		t.Errorf("unknown project: %v %q %v", endpointIDs(page), next, err)
	}
}
