package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
)

// SearchScale is a project with millions of deliveries, filled by
// FillSearchScale for BenchSearch.
type SearchScale struct {
	Project *kinehook.Project
	// All, Live and Media receive every event, live events only and
	// media events only.
	All, Live, Media *kinehook.Endpoint
	// Events is how many events the project holds, Deliveries how many
	// deliveries.
	Events, Deliveries int
	// Start is the first event's time; events come Step apart.
	Start time.Time
	Step  time.Duration
	// AnEvent and AResource name one event and one resource of the middle.
	AnEvent, AResource string
}

// FillSearchScale ingests events in commits of 500 until the project holds
// about deliveries deliveries (two per event: to All, and to Media or to
// Live; one event in ten is live; 5,000 resources), a tenth as many into another
// project, with times ending now. The deliveries stay pending: finish sets
// the statuses a store's own SQL can set fast (see SearchScale statuses).
func FillSearchScale(tb testing.TB, s kinehook.Store, deliveries int) *SearchScale {
	tb.Helper()
	ctx := tb.Context()
	sc := &SearchScale{Step: 2 * time.Second}
	sc.Project, _ = newProject(tb, s, "scale")
	other, _ := newProject(tb, s, "other")
	sc.All = newEndpoint(tb, s, sc.Project.ID, nil)
	sc.Live = newEndpoint(tb, s, sc.Project.ID, func(e *kinehook.Endpoint) { e.EventTypes = []string{"live.*"} })
	sc.Media = newEndpoint(tb, s, sc.Project.ID, func(e *kinehook.Endpoint) { e.EventTypes = []string{"media.*"} })
	newEndpoint(tb, s, other.ID, nil)
	events := deliveries * 11 / 20 // 2 deliveries an event, 1 event in 11 elsewhere
	sc.Start = now().Add(-time.Duration(events) * sc.Step)
	batch := make([]*kinehook.Event, 0, 500)
	for i := 0; i < events; i++ {
		typ, res := kinehook.EventMediaUpdateStatus, fmt.Sprintf("video-%d", i%5000)
		if i%10 == 9 {
			typ, res = kinehook.EventType("live.created"), fmt.Sprintf("live-%d", i%5000)
		}
		pid := sc.Project.ID
		if i%11 == 10 {
			pid = other.ID
		}
		ev := newEvent(pid, typ, res)
		ev.CreatedAt = sc.Start.Add(time.Duration(i) * sc.Step)
		batch = append(batch, ev)
		if len(batch) == cap(batch) || i == events-1 {
			rs, err := s.IngestEvents(ctx, batch)
			if err != nil {
				tb.Fatalf("fill: %v", err)
			}
			for _, r := range rs {
				if r.Event.ProjectID == sc.Project.ID {
					sc.Events++
					sc.Deliveries += len(r.Deliveries)
					if sc.AnEvent == "" && i >= events/2 {
						sc.AnEvent, sc.AResource = r.Event.ID, r.Event.ResourceKey
					}
				}
			}
			batch = batch[:0]
		}
	}
	return sc
}

// SearchCases are the searches BenchSearch times: the typical ones of an
// operator (an endpoint's log, its failures, a resource, an event, the
// last hour) and the sparse ones that find little in much.
func (sc *SearchScale) SearchCases() []struct {
	Name string
	F    kinehook.DeliveryFilter
} {
	failed := []kinehook.DeliveryStatus{kinehook.DeliveryFailed}
	end := sc.Start.Add(time.Duration(sc.Events*11/10) * sc.Step)
	return []struct {
		Name string
		F    kinehook.DeliveryFilter
	}{
		{"project", kinehook.DeliveryFilter{}},
		{"endpoint", kinehook.DeliveryFilter{EndpointID: sc.All.ID}},
		{"endpoint_failed", kinehook.DeliveryFilter{EndpointID: sc.All.ID, Statuses: failed}},
		{"endpoint_pending", kinehook.DeliveryFilter{EndpointID: sc.Media.ID, Statuses: []kinehook.DeliveryStatus{kinehook.DeliveryPending}}},
		{"endpoint_failed_or_retrying", kinehook.DeliveryFilter{EndpointID: sc.All.ID, Statuses: []kinehook.DeliveryStatus{kinehook.DeliveryFailed, kinehook.DeliveryRetrying}}},
		{"failed", kinehook.DeliveryFilter{Statuses: failed}},
		{"resource", kinehook.DeliveryFilter{ResourceKey: sc.AResource}},
		{"resource_endpoint", kinehook.DeliveryFilter{ResourceKey: sc.AResource, EndpointID: sc.All.ID}},
		{"event", kinehook.DeliveryFilter{EventID: sc.AnEvent}},
		{"type_live", kinehook.DeliveryFilter{EventType: "live.created"}},
		{"type_live_endpoint", kinehook.DeliveryFilter{EventType: "live.created", EndpointID: sc.All.ID}},
		{"endpoint_live_only", kinehook.DeliveryFilter{EndpointID: sc.Live.ID}},
		{"last_hour", kinehook.DeliveryFilter{Since: end.Add(-time.Hour)}},
		{"endpoint_last_hour_failed", kinehook.DeliveryFilter{EndpointID: sc.All.ID, Since: end.Add(-time.Hour), Statuses: failed}},
		{"endpoint_an_old_hour", kinehook.DeliveryFilter{EndpointID: sc.All.ID, Since: sc.Start.Add(time.Hour), Until: sc.Start.Add(2 * time.Hour)}},
		{"endpoint_page_200_deep", kinehook.DeliveryFilter{EndpointID: sc.All.ID}},
	}
}

// BenchSearch times the first page (50 deliveries) of each of sc's
// searches, one sub-benchmark each; "…_page_200_deep" times the 200th page.
func BenchSearch(b *testing.B, s kinehook.Store, sc *SearchScale) {
	for _, tc := range sc.SearchCases() {
		b.Run(tc.Name, func(b *testing.B) {
			f := tc.F
			f.Limit = 50
			if tc.Name == "endpoint_page_200_deep" {
				for range 199 {
					_, next, err := s.SearchDeliveries(b.Context(), sc.Project.ID, f)
					if err != nil || next == "" {
						b.Fatalf("paging: %v (next %q)", err, next)
					}
					f.Cursor = next
				}
			}
			n := 0
			for b.Loop() {
				ds, _, err := s.SearchDeliveries(b.Context(), sc.Project.ID, f)
				if err != nil {
					b.Fatal(err)
				}
				n = len(ds)
			}
			b.ReportMetric(float64(n), "rows")
		})
	}
}

// BenchStateAPI fills a project with n videos through IngestEvents (1% in
// error, 10% processing, the rest done; each its own event) and measures
// the state API's queries on it: one video, the videos in error, those
// updated since a time, and a deep page.
func BenchStateAPI(b *testing.B, s kinehook.Store, n int) {
	ctx := b.Context()
	p := &kinehook.Project{ID: kinehook.NewID(kinehook.PrefixProject), Name: "million", CreatedAt: now()}
	requireNoErr(b, s.CreateProject(ctx, p, kinehook.HashKey(p.ID)), "CreateProject")
	t0 := now().Add(-time.Duration(n) * time.Millisecond)
	const batch = 1000
	start := time.Now()
	for i := 0; i < n; i += batch {
		evs := make([]*kinehook.Event, 0, batch)
		for j := i; j < min(i+batch, n); j++ {
			status, msg := "done", ""
			switch {
			case j%100 == 7:
				status, msg = "error", "import error: code=610100"
			case j%10 == 3:
				status = "processing"
			}
			id := fmt.Sprintf("video-%08d", j)
			evs = append(evs, &kinehook.Event{ID: kinehook.NewID(kinehook.PrefixEvent), ProjectID: p.ID, Type: kinehook.EventMediaUpdateStatus,
				Payload:     fmt.Appendf(nil, `{"event":"media.update.status","data":{"id":%q,"status":%q,"message":%q}}`, id, status, msg),
				ResourceKey: id, CreatedAt: t0.Add(time.Duration(j) * time.Millisecond),
				State: &kinehook.StateUpdate{Kind: kinehook.StateMedia, ID: id, Status: status, Message: msg}})
		}
		if _, err := s.IngestEvents(ctx, evs); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("filled %d videos in %v", n, time.Since(start).Round(time.Second))
	mid := fmt.Sprintf("video-%08d", n/2)
	b.Run("GetMedia", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.GetState(ctx, p.ID, kinehook.StateMedia, mid); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ListErrors50", func(b *testing.B) {
		for b.Loop() {
			page, _, err := s.ListStates(ctx, p.ID, kinehook.StateMedia, kinehook.StateFilter{Status: "error", Limit: 50})
			if err != nil || len(page) != 50 {
				b.Fatal(len(page), err)
			}
		}
	})
	b.Run("ListErrorsSinceHalf50", func(b *testing.B) {
		since := t0.Add(time.Duration(n/2) * time.Millisecond)
		for b.Loop() {
			page, _, err := s.ListStates(ctx, p.ID, kinehook.StateMedia, kinehook.StateFilter{Status: "error", Since: since, Limit: 50})
			if err != nil || len(page) != 50 {
				b.Fatal(len(page), err)
			}
		}
	})
	b.Run("ListAll50Page100", func(b *testing.B) {
		// The 100th page of all videos: the cursor keeps it an index seek.
		_, next, err := s.ListStates(ctx, p.ID, kinehook.StateMedia, kinehook.StateFilter{Limit: 1000})
		if err != nil {
			b.Fatal(err)
		}
		for range 4 {
			_, next, err = s.ListStates(ctx, p.ID, kinehook.StateMedia, kinehook.StateFilter{Limit: 1000, Cursor: next})
			if err != nil {
				b.Fatal(err)
			}
		}
		for b.Loop() {
			page, _, err := s.ListStates(ctx, p.ID, kinehook.StateMedia, kinehook.StateFilter{Limit: 50, Cursor: next})
			if err != nil || len(page) != 50 {
				b.Fatal(len(page), err)
			}
		}
	})
	b.Run("CountByStatus", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.CountStates(ctx, p.ID, kinehook.StateMedia); err != nil {
				b.Fatal(err)
			}
		}
	})
}
