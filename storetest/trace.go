package storetest

import (
	"testing"

	"github.com/kinehook/kinehook"
)

// testTraceContext: an event's W3C trace context is stored with it, and
// every read the engine queues deliveries from (the ingest's result, the
// open deliveries, deliveries by id) carries it; an event without one
// reads back empty, and a repeated idempotency key answers the first
// event's.
func testTraceContext(t *testing.T, s kinehook.Store) {
	const (
		tp  = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
		ts  = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"
		tp2 = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"
	)
	ctx := t.Context()
	p, _ := NewProject(t, s, 2)
	traced := NewEvent(p.ID, "v1", now())
	traced.Trace = kinehook.NewTraceContext(tp, ts)
	traced.IdempotencyKey = "k1"
	plain := NewEvent(p.ID, "v2", now())
	// An event without trace context first: in one batch with a traced
	// one, each keeps its own.
	res := ingest(t, s, plain, traced)
	res[0], res[1] = res[1], res[0]
	if len(res[0].Deliveries) != 2 || len(res[1].Deliveries) != 2 {
		t.Fatalf("deliveries: %d and %d, want 2 each", len(res[0].Deliveries), len(res[1].Deliveries))
	}
	want := map[string][2]string{}
	for _, d := range res[0].Deliveries {
		want[d.ID] = [2]string{tp, ts}
	}
	for _, d := range res[1].Deliveries {
		want[d.ID] = [2]string{}
	}
	check := func(what string, ds []*kinehook.Delivery) {
		t.Helper()
		if len(ds) != len(want) {
			t.Fatalf("%s: %d deliveries, want %d", what, len(ds), len(want))
		}
		for _, d := range ds {
			if got := [2]string{d.Trace.TraceParent(), d.Trace.TraceState()}; got != want[d.ID] {
				t.Errorf("%s: delivery %s has trace %q, want %q", what, d.ID, got, want[d.ID])
			}
		}
	}
	check("ingest result", append(append([]*kinehook.Delivery{}, res[0].Deliveries...), res[1].Deliveries...))
	check("open deliveries", collectOpen(t, s, nil))
	byID, err := s.DeliveriesByID(ctx, sortedIDs(mapKeysOf(want)))
	requireNoErr(t, err, "DeliveriesByID")
	check("deliveries by id", byID)

	ev, err := s.GetEvent(ctx, p.ID, res[0].Event.ID)
	requireNoErr(t, err, "GetEvent")
	if ev.Trace.TraceParent() != tp || ev.Trace.TraceState() != ts {
		t.Errorf("GetEvent: trace %q %q, want %q %q", ev.Trace.TraceParent(), ev.Trace.TraceState(), tp, ts)
	}
	for _, e := range listAll(t, s, p.ID, kinehook.EventFilter{ResourceKey: "v1"}) {
		wantTP := ""
		if e.ID == res[0].Event.ID {
			wantTP = tp
		}
		if e.Trace.TraceParent() != wantTP {
			t.Errorf("ListEvents: event %s has traceparent %q, want %q", e.ID, e.Trace.TraceParent(), wantTP)
		}
	}

	// The reads of an operator's retry and recover carry it too.
	failed := res[0].Deliveries[0]
	requireNoErr(t, s.RecordAttempts(ctx, []kinehook.AttemptResult{result(failed, now(), kinehook.DeliveryFailed, 1, 500, "HTTP 500")}), "RecordAttempts")
	got, err := s.GetDelivery(ctx, p.ID, failed.ID)
	requireNoErr(t, err, "GetDelivery")
	fails, _, err := s.SearchDeliveries(ctx, p.ID, kinehook.DeliveryFilter{EndpointID: failed.EndpointID,
		Statuses: []kinehook.DeliveryStatus{kinehook.DeliveryFailed}, Oldest: true, Limit: 10})
	requireNoErr(t, err, "SearchDeliveries")
	reopened, err := s.ReopenDeliveries(ctx, p.ID, []string{failed.ID})
	requireNoErr(t, err, "ReopenDeliveries")
	for what, ds := range map[string][]*kinehook.Delivery{"GetDelivery": {got}, "SearchDeliveries": fails, "ReopenDeliveries": reopened} {
		if len(ds) != 1 || ds[0].ID != failed.ID || ds[0].Trace.TraceParent() != tp || ds[0].Trace.TraceState() != ts {
			t.Errorf("%s: %+v, want delivery %s with the event's trace context", what, ds, failed.ID)
		}
	}

	// A batch without any trace context reads back empty.
	bare := ingest(t, s, NewEvent(p.ID, "v3", now()), NewEvent(p.ID, "v4", now()))
	for _, r := range bare {
		if ev, err := s.GetEvent(ctx, p.ID, r.Event.ID); err != nil || ev.Trace.TraceParent() != "" || ev.Trace.TraceState() != "" {
			t.Errorf("untraced batch: event %s reads back trace %q %q (%v)", r.Event.ID, ev.Trace.TraceParent(), ev.Trace.TraceState(), err)
		}
		for _, d := range r.Deliveries {
			want[d.ID] = [2]string{}
		}
	}
	check("open deliveries after an untraced batch", collectOpen(t, s, nil))

	again := NewEvent(p.ID, "v1", now())
	again.Trace, again.IdempotencyKey = kinehook.NewTraceContext(tp2, ""), "k1"
	dup := ingest(t, s, again)
	if !dup[0].Duplicate || dup[0].Event.Trace.TraceParent() != tp {
		t.Errorf("repeated key: duplicate %v with traceparent %q, want the first event's %q", dup[0].Duplicate, dup[0].Event.Trace.TraceParent(), tp)
	}
}

func mapKeysOf[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
