package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/kinehook/kinehook"
)

// Counts summarises a store, so a caller can compare a store with its backup.
type Counts struct {
	Projects, Endpoints, Events, Deliveries, OpenDeliveries, Attempts int
}

// CheckConsistency walks the whole store through the Store interface and
// checks its invariants: every delivery belongs to a listed event of its
// project and agrees with it (type, resource, Seq, partition), events page
// newest first with distinct Seq, payloads agree between reads, open
// deliveries are exactly the non-final ones, succeeded deliveries have a 2xx
// attempt, and attempts are in time order. It returns what it counted.
// Backup/restore and retention tests reuse it.
func CheckConsistency(t testing.TB, s kinehook.Store) Counts {
	t.Helper()
	w := &consistencyWalk{
		t: t, s: s, ctx: t.Context(),
		seqs: map[int64]string{}, deliveries: map[string]*kinehook.Delivery{}, payloads: map[string][]byte{},
	}
	projects, err := s.ListProjects(w.ctx)
	requireNoErr(t, err, "consistency: ListProjects")
	w.c.Projects = len(projects)
	for _, p := range projects {
		w.project(p)
	}
	w.openDeliveries()
	w.bulkDeliveries()
	w.bulkPayloads()
	return w.c
}

// consistencyWalk is one CheckConsistency: what it counted and what it saw,
// for the checks that compare one read with another.
type consistencyWalk struct {
	t   testing.TB
	s   kinehook.Store
	ctx context.Context
	c   Counts

	seqs       map[int64]string              // event id by Seq, over every project
	deliveries map[string]*kinehook.Delivery // every listed delivery by id
	eventIDs   []string                      // every listed event, in order
	payloads   map[string][]byte             // each event's payload as listed
}

// project checks a project, its endpoints and its events.
func (w *consistencyWalk) project(p *kinehook.Project) {
	t := w.t
	t.Helper()
	gp, err := w.s.GetProject(w.ctx, p.ID)
	requireNoErr(t, err, "consistency: GetProject")
	if gp.Name != p.Name {
		t.Errorf("consistency: project %s named %q by GetProject, %q by ListProjects", p.ID, gp.Name, p.Name)
	}
	eps, err := w.s.ListEndpoints(w.ctx, p.ID)
	requireNoErr(t, err, "consistency: ListEndpoints")
	w.c.Endpoints += len(eps)
	for _, e := range eps {
		if e.ProjectID != p.ID {
			t.Errorf("consistency: endpoint %s of project %s listed under %s", e.ID, e.ProjectID, p.ID)
		}
		if len(e.Secrets) == 0 {
			t.Errorf("consistency: endpoint %s has no secret", e.ID)
		}
	}
	events := listAll(t, w.s, p.ID, kinehook.EventFilter{Limit: 500})
	w.c.Events += len(events)
	for i, ev := range events {
		if i > 0 && ev.Seq >= events[i-1].Seq {
			t.Errorf("consistency: events of %s not newest first: seq %d after %d", p.ID, ev.Seq, events[i-1].Seq)
		}
		w.event(p.ID, ev)
	}
}

// event checks one event of project pid and its deliveries.
func (w *consistencyWalk) event(pid string, ev *kinehook.Event) {
	t := w.t
	t.Helper()
	if other, dup := w.seqs[ev.Seq]; dup {
		t.Errorf("consistency: events %s and %s share Seq %d", other, ev.ID, ev.Seq)
	}
	w.seqs[ev.Seq] = ev.ID
	if ev.ProjectID != pid {
		t.Errorf("consistency: event %s of project %q listed under %s", ev.ID, ev.ProjectID, pid)
	}
	var env kinehook.Envelope
	if err := json.Unmarshal(ev.Payload, &env); err != nil || env.Event != ev.Type {
		t.Errorf("consistency: event %s payload %q does not match its type %s (%v)", ev.ID, ev.Payload, ev.Type, err)
	}
	w.eventIDs = append(w.eventIDs, ev.ID)
	w.payloads[ev.ID] = ev.Payload

	ds, err := w.s.ListDeliveries(w.ctx, pid, ev.ID)
	requireNoErr(t, err, "consistency: ListDeliveries")
	for _, d := range ds {
		w.delivery(pid, ev, d)
	}
}

// delivery checks one delivery of ev: that it agrees with its event, its
// status and its attempts.
func (w *consistencyWalk) delivery(pid string, ev *kinehook.Event, d *kinehook.Delivery) {
	t := w.t
	t.Helper()
	w.c.Deliveries++
	w.deliveries[d.ID] = d
	if d.ProjectID != pid || d.EventID != ev.ID || d.EventType != ev.Type || d.ResourceKey != ev.ResourceKey || d.Seq != ev.Seq {
		t.Errorf("consistency: delivery %+v disagrees with its event %+v", d, ev)
	}
	if d.Partition != kinehook.PartitionOf(d.EndpointID, d.ResourceKey) {
		t.Errorf("consistency: delivery %s in partition %d, want %d", d.ID, d.Partition, kinehook.PartitionOf(d.EndpointID, d.ResourceKey))
	}
	switch d.Status {
	case kinehook.DeliveryPending, kinehook.DeliveryRetrying:
		w.c.OpenDeliveries++
		if d.NextAttemptAt.IsZero() {
			t.Errorf("consistency: open delivery %s has no NextAttemptAt", d.ID)
		}
	case kinehook.DeliverySucceeded, kinehook.DeliveryFailed:
	default:
		t.Errorf("consistency: delivery %s has status %q", d.ID, d.Status)
	}
	ok := w.attempts(pid, d)
	if d.Status == kinehook.DeliverySucceeded && !ok {
		t.Errorf("consistency: delivery %s succeeded without a 2xx attempt", d.ID)
	}
	if d.Attempts < 0 {
		t.Errorf("consistency: delivery %s has %d attempts", d.ID, d.Attempts)
	}
}

// attempts checks the attempts of d and reports whether one of them was a 2xx.
func (w *consistencyWalk) attempts(pid string, d *kinehook.Delivery) (ok bool) {
	t := w.t
	t.Helper()
	atts, err := w.s.ListAttempts(w.ctx, pid, d.ID)
	requireNoErr(t, err, "consistency: ListAttempts")
	w.c.Attempts += len(atts)
	for j, a := range atts {
		if a.DeliveryID != d.ID {
			t.Errorf("consistency: attempt of %s listed under %s", a.DeliveryID, d.ID)
		}
		if j > 0 && a.AttemptedAt.Before(atts[j-1].AttemptedAt) {
			t.Errorf("consistency: attempts of %s not in time order", d.ID)
		}
		ok = ok || (a.StatusCode >= 200 && a.StatusCode < 300)
	}
	return ok
}

// openDeliveries checks that the open deliveries are exactly the non-final
// ones, each once, in Seq order.
func (w *consistencyWalk) openDeliveries() {
	t := w.t
	t.Helper()
	seen := map[string]bool{}
	var last int64
	requireNoErr(t, w.s.OpenDeliveries(w.ctx, nil, func(d *kinehook.Delivery) error {
		if d.Seq < last {
			t.Errorf("consistency: OpenDeliveries not in Seq order at %s", d.ID)
		}
		last = d.Seq
		if seen[d.ID] {
			t.Errorf("consistency: OpenDeliveries lists %s twice", d.ID)
		}
		seen[d.ID] = true
		listed := w.deliveries[d.ID]
		if listed == nil {
			t.Errorf("consistency: open delivery %s belongs to no listed event", d.ID)
		} else if listed.Status != d.Status || d.Status.Final() {
			t.Errorf("consistency: open delivery %s has status %s (listed as %s)", d.ID, d.Status, listed.Status)
		}
		return nil
	}), "consistency: OpenDeliveries")
	if len(seen) != w.c.OpenDeliveries {
		t.Errorf("consistency: OpenDeliveries lists %d deliveries, events hold %d open ones", len(seen), w.c.OpenDeliveries)
	}
}

// bulkDeliveries checks that DeliveriesByID agrees with the per-event lists.
func (w *consistencyWalk) bulkDeliveries() {
	t := w.t
	t.Helper()
	ids := make([]string, 0, len(w.deliveries))
	for id := range w.deliveries {
		ids = append(ids, id)
	}
	for start := 0; start < len(ids); start += 500 {
		chunk := ids[start:min(start+500, len(ids))]
		got, err := w.s.DeliveriesByID(w.ctx, chunk)
		requireNoErr(t, err, "consistency: DeliveriesByID")
		if len(got) != len(chunk) {
			t.Errorf("consistency: DeliveriesByID found %d of %d", len(got), len(chunk))
		}
		for _, d := range got {
			if l := w.deliveries[d.ID]; l != nil && (l.Status != d.Status || l.Attempts != d.Attempts) {
				t.Errorf("consistency: DeliveriesByID(%s) = %s/%d, listed %s/%d", d.ID, d.Status, d.Attempts, l.Status, l.Attempts)
			}
		}
	}
}

// bulkPayloads checks that EventPayloads agrees with the listed events.
func (w *consistencyWalk) bulkPayloads() {
	t := w.t
	t.Helper()
	for start := 0; start < len(w.eventIDs); start += 500 {
		chunk := w.eventIDs[start:min(start+500, len(w.eventIDs))]
		got, err := w.s.EventPayloads(w.ctx, chunk)
		requireNoErr(t, err, "consistency: EventPayloads")
		for _, id := range chunk {
			if !bytes.Equal(got[id], w.payloads[id]) {
				t.Errorf("consistency: EventPayloads(%s) = %q, ListEvents gave %q", id, got[id], w.payloads[id])
			}
		}
	}
}
