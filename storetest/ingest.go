package storetest

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
)

func testIngestFanOut(t *testing.T, s kinehook.Store) {
	ctx := t.Context()
	p1, _ := newProject(t, s, "p1")
	p2, _ := newProject(t, s, "p2")
	eAll := newEndpoint(t, s, p1.ID, nil)
	eLive := newEndpoint(t, s, p1.ID, func(e *kinehook.Endpoint) { e.EventTypes = []string{"live.*"} })
	eMedia := newEndpoint(t, s, p1.ID, func(e *kinehook.Endpoint) { e.EventTypes = []string{"media.update.status"} })
	eTwo := newEndpoint(t, s, p1.ID, func(e *kinehook.Endpoint) { e.EventTypes = []string{"live.finished", "live.created"} })
	eStar := newEndpoint(t, s, p1.ID, func(e *kinehook.Endpoint) { e.EventTypes = []string{"*"} })
	newEndpoint(t, s, p1.ID, func(e *kinehook.Endpoint) { e.Disabled = true; e.DisabledReason = "by user" })
	eOther := newEndpoint(t, s, p2.ID, nil)

	media := newEvent(p1.ID, kinehook.EventMediaUpdateStatus, "video-1")
	connected := newEvent(p1.ID, kinehook.EventLiveConnected, "live-1")
	finished := newEvent(p1.ID, kinehook.EventLiveFinished, "live-1")
	foreign := newEvent(p2.ID, kinehook.EventLiveFinished, "live-9")

	before := now()
	res := ingest(t, s, media, connected, finished, foreign)
	after := now()

	want := map[string][]string{
		media.ID:     {eAll.ID, eMedia.ID, eStar.ID},
		connected.ID: {eAll.ID, eLive.ID, eStar.ID},
		finished.ID:  {eAll.ID, eLive.ID, eTwo.ID, eStar.ID},
		foreign.ID:   {eOther.ID},
	}
	seenDelivery := map[string]bool{}
	for i, r := range res {
		ev := []*kinehook.Event{media, connected, finished, foreign}[i]
		if r.Duplicate {
			t.Errorf("event %d: Duplicate without an idempotency key", i)
		}
		if r.Event == nil || r.Event.ID != ev.ID {
			t.Fatalf("result %d: event %+v, want id %s (results in input order)", i, r.Event, ev.ID)
		}
		if r.Event.Seq <= 0 {
			t.Errorf("result %d: Seq = %d, want > 0", i, r.Event.Seq)
		}
		if got, w := endpointIDsOf(r.Deliveries), sortedIDs(want[ev.ID]); !equalStrings(got, w) {
			t.Errorf("%s deliveries go to %v, want %v", ev.Type, got, w)
		}
		for _, d := range r.Deliveries {
			if !strings.HasPrefix(d.ID, kinehook.PrefixDelivery+"_") || seenDelivery[d.ID] {
				t.Errorf("delivery id %q: want a fresh %s_ id", d.ID, kinehook.PrefixDelivery)
			}
			seenDelivery[d.ID] = true
			if d.ProjectID != ev.ProjectID || d.EventID != ev.ID || d.EventType != ev.Type || d.ResourceKey != ev.ResourceKey {
				t.Errorf("delivery %+v does not describe event %+v", d, ev)
			}
			if d.Seq != r.Event.Seq {
				t.Errorf("delivery Seq = %d, want the event's %d", d.Seq, r.Event.Seq)
			}
			if d.Partition != kinehook.PartitionOf(d.EndpointID, ev.ResourceKey) {
				t.Errorf("delivery Partition = %d, want PartitionOf = %d", d.Partition, kinehook.PartitionOf(d.EndpointID, ev.ResourceKey))
			}
			if d.Status != kinehook.DeliveryPending || d.Attempts != 0 || d.LastStatusCode != 0 || d.LastError != "" {
				t.Errorf("new delivery %+v: want pending, no attempts", d)
			}
			if d.NextAttemptAt.Before(before.Add(-time.Second)) || d.NextAttemptAt.After(after.Add(time.Second)) {
				t.Errorf("new delivery NextAttemptAt = %v, want now (%v..%v)", d.NextAttemptAt, before, after)
			}
			assertTimeEq(t, "delivery CreatedAt (= event's)", d.CreatedAt, ev.CreatedAt)

			got, err := s.GetDelivery(ctx, ev.ProjectID, d.ID)
			requireNoErr(t, err, "GetDelivery")
			compareDelivery(t, "GetDelivery", got, d)
		}
		listed, err := s.ListDeliveries(ctx, ev.ProjectID, ev.ID)
		requireNoErr(t, err, "ListDeliveries")
		if got, w := sortedIDs(deliveryIDs(listed)), sortedIDs(deliveryIDs(r.Deliveries)); !equalStrings(got, w) {
			t.Errorf("ListDeliveries(%s) = %v, want %v", ev.ID, got, w)
		}
	}
	// Projects do not see each other's events and deliveries.
	_, err := s.GetEvent(ctx, p2.ID, media.ID)
	assertNotFound(t, err, "GetEvent(other project)")
	_, err = s.ListDeliveries(ctx, p2.ID, media.ID)
	assertNotFound(t, err, "ListDeliveries(other project's event)")
	_, err = s.ListDeliveries(ctx, p1.ID, kinehook.NewID(kinehook.PrefixEvent))
	assertNotFound(t, err, "ListDeliveries(unknown event)")
	_, err = s.GetDelivery(ctx, p2.ID, res[0].Deliveries[0].ID)
	assertNotFound(t, err, "GetDelivery(other project)")
	_, err = s.GetDelivery(ctx, p1.ID, kinehook.NewID(kinehook.PrefixDelivery))
	assertNotFound(t, err, "GetDelivery(unknown)")
	_, err = s.GetEvent(ctx, p1.ID, kinehook.NewID(kinehook.PrefixEvent))
	assertNotFound(t, err, "GetEvent(unknown)")
}

func testIngestPayloadAndSeq(t *testing.T, s kinehook.Store) {
	ctx := t.Context()
	p, _ := newProject(t, s, "p")
	newEndpoint(t, s, p.ID, nil)

	// Odd whitespace, key order, escapes and non-ASCII must survive byte for byte.
	odd := newEvent(p.ID, kinehook.EventMediaUpdateStatus, "vid-ü")
	odd.Payload = []byte("{ \"data\" : {\"status\":\"error\",\"id\":\"vid-ü\",\n\t\"message\":\"import error: \\u0022x\\u0022 <&> ✓\"},\"event\":\"media.update.status\"}\n")
	// No id and no time: the store assigns them.
	bare := newEvent(p.ID, kinehook.EventLiveCreated, "live-1")
	bare.ID = ""
	bare.CreatedAt = time.Time{}
	third := newEvent(p.ID, kinehook.EventLiveConnected, "live-1")

	before := now()
	r1 := ingest(t, s, odd, bare)
	r2 := ingest(t, s, third)
	results := append(r1, r2...)

	if !bytes.Equal(results[0].Event.Payload, odd.Payload) {
		t.Errorf("IngestEvents payload = %q, want %q", results[0].Event.Payload, odd.Payload)
	}
	assignedID := results[1].Event.ID
	if !strings.HasPrefix(assignedID, kinehook.PrefixEvent+"_") {
		t.Errorf("assigned event id = %q, want a %s_ id", assignedID, kinehook.PrefixEvent)
	}
	assertTimeNear(t, "assigned CreatedAt", results[1].Event.CreatedAt, before, 5*time.Second)
	for i := 1; i < len(results); i++ {
		if results[i].Event.Seq <= results[i-1].Event.Seq {
			t.Errorf("Seq not increasing in acceptance order: %d then %d", results[i-1].Event.Seq, results[i].Event.Seq)
		}
	}

	want := []*kinehook.Event{odd, {ID: assignedID, ProjectID: p.ID, Type: bare.Type, Payload: bare.Payload,
		ResourceKey: bare.ResourceKey, CreatedAt: results[1].Event.CreatedAt}, third}
	for i, w := range want {
		got, err := s.GetEvent(ctx, p.ID, w.ID)
		requireNoErr(t, err, "GetEvent")
		if got.ID != w.ID || got.ProjectID != p.ID || got.Type != w.Type || got.ResourceKey != w.ResourceKey || got.Seq != results[i].Event.Seq {
			t.Errorf("GetEvent = %+v, want %+v (seq %d)", got, w, results[i].Event.Seq)
		}
		if !bytes.Equal(got.Payload, w.Payload) {
			t.Errorf("GetEvent payload = %q, want %q", got.Payload, w.Payload)
		}
		assertTimeEq(t, "GetEvent CreatedAt", got.CreatedAt, w.CreatedAt)
	}
	listed, _, err := s.ListEvents(ctx, p.ID, kinehook.EventFilter{Limit: 10})
	requireNoErr(t, err, "ListEvents")
	if len(listed) != 3 || listed[2].ID != odd.ID || !bytes.Equal(listed[2].Payload, odd.Payload) {
		t.Errorf("ListEvents does not return the exact payload of the oldest event")
	}
	payloads, err := s.EventPayloads(ctx, []string{odd.ID, third.ID, kinehook.NewID(kinehook.PrefixEvent)})
	requireNoErr(t, err, "EventPayloads")
	if len(payloads) != 2 || !bytes.Equal(payloads[odd.ID], odd.Payload) || !bytes.Equal(payloads[third.ID], third.Payload) {
		t.Errorf("EventPayloads = %q, want the two known payloads exactly", payloads)
	}
}

func testIngestIdempotency(t *testing.T, s kinehook.Store) {
	ctx := t.Context()
	p1, _ := newProject(t, s, "p1")
	p2, _ := newProject(t, s, "p2")
	newEndpoint(t, s, p1.ID, nil)
	newEndpoint(t, s, p2.ID, nil)

	first := newEvent(p1.ID, kinehook.EventMediaUpdateStatus, "video-1")
	first.IdempotencyKey = "key-1"
	r := ingest(t, s, first)
	if r[0].Duplicate || len(r[0].Deliveries) != 1 {
		t.Fatalf("first event: Duplicate=%v deliveries=%d, want false and 1", r[0].Duplicate, len(r[0].Deliveries))
	}

	// Same key, different body and id: the first event comes back, nothing is created.
	again := newEvent(p1.ID, kinehook.EventLiveFinished, "other")
	again.IdempotencyKey = "key-1"
	fresh := newEvent(p1.ID, kinehook.EventLiveCreated, "live-2")
	r = ingest(t, s, again, fresh)
	if !r[0].Duplicate {
		t.Errorf("repeated key: Duplicate = false")
	}
	if r[0].Event.ID != first.ID || r[0].Event.Type != first.Type || !bytes.Equal(r[0].Event.Payload, first.Payload) {
		t.Errorf("repeated key returned %+v, want the first event %s", r[0].Event, first.ID)
	}
	assertTimeEq(t, "duplicate CreatedAt", r[0].Event.CreatedAt, first.CreatedAt)
	if r[1].Duplicate || len(r[1].Deliveries) != 1 {
		t.Errorf("event after a duplicate in the same batch: Duplicate=%v deliveries=%d", r[1].Duplicate, len(r[1].Deliveries))
	}
	_, err := s.GetEvent(ctx, p1.ID, again.ID)
	assertNotFound(t, err, "GetEvent(duplicate's own id)")
	ds, err := s.ListDeliveries(ctx, p1.ID, first.ID)
	requireNoErr(t, err, "ListDeliveries(first)")
	if len(ds) != 1 {
		t.Errorf("first event has %d deliveries after a duplicate, want 1", len(ds))
	}

	// Two events with one key in the same batch: the second is a duplicate of the first.
	a := newEvent(p1.ID, kinehook.EventLiveConnected, "live-3")
	a.IdempotencyKey = "key-2"
	b := newEvent(p1.ID, kinehook.EventLiveDisconnected, "live-3")
	b.IdempotencyKey = "key-2"
	r = ingest(t, s, a, b)
	if r[0].Duplicate || !r[1].Duplicate {
		t.Errorf("same key twice in one batch: Duplicate = %v, %v; want false, true", r[0].Duplicate, r[1].Duplicate)
	}
	if r[1].Event.ID != a.ID || r[1].Event.Seq != r[0].Event.Seq || !bytes.Equal(r[1].Event.Payload, a.Payload) {
		t.Errorf("in-batch duplicate returned %+v, want event %s", r[1].Event, a.ID)
	}
	_, err = s.GetEvent(ctx, p1.ID, b.ID)
	assertNotFound(t, err, "GetEvent(in-batch duplicate's own id)")

	// The same key in another project is not a duplicate.
	c := newEvent(p2.ID, kinehook.EventMediaUpdateStatus, "video-1")
	c.IdempotencyKey = "key-1"
	r = ingest(t, s, c)
	if r[0].Duplicate || r[0].Event.ID != c.ID || len(r[0].Deliveries) != 1 {
		t.Errorf("same key in another project: Duplicate=%v id=%s deliveries=%d", r[0].Duplicate, r[0].Event.ID, len(r[0].Deliveries))
	}

	events, _, err := s.ListEvents(ctx, p1.ID, kinehook.EventFilter{Limit: 100})
	requireNoErr(t, err, "ListEvents")
	if len(events) != 3 { // first, fresh, a
		t.Errorf("project 1 has %d events, want 3", len(events))
	}
}

func testIngestIdempotencyExpiry(t *testing.T, s kinehook.Store) {
	p, _ := newProject(t, s, "p")
	newEndpoint(t, s, p.ID, nil)
	ts := now()

	old := newEvent(p.ID, kinehook.EventMediaUpdateStatus, "v")
	old.IdempotencyKey = "k"
	old.CreatedAt = ts.Add(-25 * time.Hour)
	recent := newEvent(p.ID, kinehook.EventMediaUpdateStatus, "v")
	recent.IdempotencyKey = "k2"
	recent.CreatedAt = ts.Add(-23 * time.Hour)
	ingest(t, s, old, recent)

	reuse := newEvent(p.ID, kinehook.EventMediaUpdateStatus, "v")
	reuse.IdempotencyKey = "k"
	within := newEvent(p.ID, kinehook.EventMediaUpdateStatus, "v")
	within.IdempotencyKey = "k2"
	r := ingest(t, s, reuse, within)
	if r[0].Duplicate || r[0].Event.ID != reuse.ID {
		t.Errorf("key older than 24 h: Duplicate=%v id=%s, want a new event %s", r[0].Duplicate, r[0].Event.ID, reuse.ID)
	}
	if !r[1].Duplicate || r[1].Event.ID != recent.ID {
		t.Errorf("key 23 h old: Duplicate=%v id=%s, want duplicate of %s", r[1].Duplicate, r[1].Event.ID, recent.ID)
	}
	// The reused key now points at the new event.
	again := newEvent(p.ID, kinehook.EventMediaUpdateStatus, "v")
	again.IdempotencyKey = "k"
	r = ingest(t, s, again)
	if !r[0].Duplicate || r[0].Event.ID != reuse.ID {
		t.Errorf("reused key: Duplicate=%v id=%s, want duplicate of %s", r[0].Duplicate, r[0].Event.ID, reuse.ID)
	}
}

// testIngestAtomic: one call is one commit, so a batch that fails leaves
// nothing behind (an event whose id already exists makes it fail).
func testIngestAtomic(t *testing.T, s kinehook.Store) {
	ctx := t.Context()
	p, _ := newProject(t, s, "p")
	newEndpoint(t, s, p.ID, nil)
	first := newEvent(p.ID, kinehook.EventMediaUpdateStatus, "v1")
	ingest(t, s, first)

	fresh := newEvent(p.ID, kinehook.EventMediaUpdateStatus, "v2")
	fresh.IdempotencyKey = "atomic-key"
	clash := newEvent(p.ID, kinehook.EventMediaUpdateStatus, "v3")
	clash.ID = first.ID
	if _, err := s.IngestEvents(ctx, []*kinehook.Event{fresh, clash}); err == nil {
		t.Fatal("IngestEvents accepted an event whose id is already stored")
	}
	_, err := s.GetEvent(ctx, p.ID, fresh.ID)
	assertNotFound(t, err, "GetEvent(event of a failed batch)")
	if open := collectOpen(t, s, nil); len(open) != 1 {
		t.Errorf("%d open deliveries after a failed batch, want the first event's 1", len(open))
	}
	// The store goes on, and the failed batch's idempotency key was not taken.
	again := newEvent(p.ID, kinehook.EventMediaUpdateStatus, "v2")
	again.IdempotencyKey = "atomic-key"
	r := ingest(t, s, again)
	if r[0].Duplicate || r[0].Event.ID != again.ID || len(r[0].Deliveries) != 1 {
		t.Errorf("after a failed batch: Duplicate=%v id=%s deliveries=%d", r[0].Duplicate, r[0].Event.ID, len(r[0].Deliveries))
	}
}

func testIngestEmptyAndNoEndpoints(t *testing.T, s kinehook.Store) {
	res, err := s.IngestEvents(t.Context(), nil)
	requireNoErr(t, err, "IngestEvents(nil)")
	if len(res) != 0 {
		t.Errorf("IngestEvents(nil) = %d results", len(res))
	}
	p, _ := newProject(t, s, "lonely")
	newEndpoint(t, s, p.ID, func(e *kinehook.Endpoint) { e.Disabled = true })
	r := ingest(t, s, newEvent(p.ID, kinehook.EventLiveCreated, "l"))
	if len(r[0].Deliveries) != 0 {
		t.Errorf("event with only a disabled endpoint got %d deliveries", len(r[0].Deliveries))
	}
	if _, err := s.GetEvent(t.Context(), p.ID, r[0].Event.ID); err != nil {
		t.Errorf("event without deliveries is not stored: %v", err)
	}
}

// testConcurrentIngest: many goroutines ingest at once; every result is
// durable and distinct.
func testConcurrentIngest(t *testing.T, s kinehook.Store) {
	ctx := t.Context()
	p, _ := newProject(t, s, "busy")
	ep := newEndpoint(t, s, p.ID, nil)
	const workers, calls, perCall = 8, 6, 5
	var (
		mu      sync.Mutex
		results []kinehook.IngestResult
		wg      sync.WaitGroup
		errs    = make(chan error, workers*calls)
	)
	for w := range workers {
		wg.Go(func() {
			for c := range calls {
				evs := make([]*kinehook.Event, perCall)
				for i := range evs {
					evs[i] = newEvent(p.ID, kinehook.EventMediaUpdateStatus, fmt.Sprintf("v-%d-%d", w, i))
					if i == 0 {
						evs[i].IdempotencyKey = fmt.Sprintf("w%d-c%d", w, c)
					}
				}
				res, err := s.IngestEvents(ctx, evs)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				results = append(results, res...)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent IngestEvents: %v", err)
	}
	const total = workers * calls * perCall
	if len(results) != total {
		t.Fatalf("%d results, want %d", len(results), total)
	}
	ids, seqs, dids := map[string]bool{}, map[int64]bool{}, map[string]bool{}
	for _, r := range results {
		if r.Duplicate || ids[r.Event.ID] || seqs[r.Event.Seq] || len(r.Deliveries) != 1 {
			t.Fatalf("result not distinct or incomplete: %+v", r)
		}
		ids[r.Event.ID], seqs[r.Event.Seq], dids[r.Deliveries[0].ID] = true, true, true
	}
	var listed []*kinehook.Event
	f := kinehook.EventFilter{Limit: 100}
	for {
		page, next, err := s.ListEvents(ctx, p.ID, f)
		requireNoErr(t, err, "ListEvents")
		listed = append(listed, page...)
		if next == "" {
			break
		}
		f.Cursor = next
	}
	if len(listed) != total {
		t.Errorf("ListEvents sees %d events, want %d", len(listed), total)
	}
	for _, e := range listed {
		if !ids[e.ID] {
			t.Errorf("listed event %s was not in any result", e.ID)
		}
	}
	var open []string
	requireNoErr(t, s.OpenDeliveries(ctx, nil, func(d *kinehook.Delivery) error {
		if d.EndpointID == ep.ID {
			open = append(open, d.ID)
		}
		return nil
	}), "OpenDeliveries")
	if len(open) != total {
		t.Errorf("OpenDeliveries sees %d deliveries, want %d", len(open), total)
	}
	for _, id := range open {
		if !dids[id] {
			t.Errorf("open delivery %s was not in any result", id)
		}
	}
	CheckConsistency(t, s)
}
