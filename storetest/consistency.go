package storetest

import (
	"bytes"
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
	ctx := t.Context()
	var c Counts
	projects, err := s.ListProjects(ctx)
	requireNoErr(t, err, "consistency: ListProjects")
	c.Projects = len(projects)

	seqs := map[int64]string{}
	allDeliveries := map[string]*kinehook.Delivery{}
	var eventIDs []string
	payloads := map[string][]byte{}
	for _, p := range projects {
		gp, err := s.GetProject(ctx, p.ID)
		requireNoErr(t, err, "consistency: GetProject")
		if gp.Name != p.Name {
			t.Errorf("consistency: project %s named %q by GetProject, %q by ListProjects", p.ID, gp.Name, p.Name)
		}
		eps, err := s.ListEndpoints(ctx, p.ID)
		requireNoErr(t, err, "consistency: ListEndpoints")
		c.Endpoints += len(eps)
		for _, e := range eps {
			if e.ProjectID != p.ID {
				t.Errorf("consistency: endpoint %s of project %s listed under %s", e.ID, e.ProjectID, p.ID)
			}
			if len(e.Secrets) == 0 {
				t.Errorf("consistency: endpoint %s has no secret", e.ID)
			}
		}

		events := listAll(t, s, p.ID, kinehook.EventFilter{Limit: 500})
		c.Events += len(events)
		for i, ev := range events {
			if i > 0 && ev.Seq >= events[i-1].Seq {
				t.Errorf("consistency: events of %s not newest first: seq %d after %d", p.ID, ev.Seq, events[i-1].Seq)
			}
			if other, dup := seqs[ev.Seq]; dup {
				t.Errorf("consistency: events %s and %s share Seq %d", other, ev.ID, ev.Seq)
			}
			seqs[ev.Seq] = ev.ID
			if ev.ProjectID != p.ID {
				t.Errorf("consistency: event %s of project %q listed under %s", ev.ID, ev.ProjectID, p.ID)
			}
			var env kinehook.Envelope
			if err := json.Unmarshal(ev.Payload, &env); err != nil || env.Event != ev.Type {
				t.Errorf("consistency: event %s payload %q does not match its type %s (%v)", ev.ID, ev.Payload, ev.Type, err)
			}
			eventIDs = append(eventIDs, ev.ID)
			payloads[ev.ID] = ev.Payload

			ds, err := s.ListDeliveries(ctx, p.ID, ev.ID)
			requireNoErr(t, err, "consistency: ListDeliveries")
			for _, d := range ds {
				c.Deliveries++
				allDeliveries[d.ID] = d
				if d.ProjectID != p.ID || d.EventID != ev.ID || d.EventType != ev.Type || d.ResourceKey != ev.ResourceKey || d.Seq != ev.Seq {
					t.Errorf("consistency: delivery %+v disagrees with its event %+v", d, ev)
				}
				if d.Partition != kinehook.PartitionOf(d.EndpointID, d.ResourceKey) {
					t.Errorf("consistency: delivery %s in partition %d, want %d", d.ID, d.Partition, kinehook.PartitionOf(d.EndpointID, d.ResourceKey))
				}
				switch d.Status {
				case kinehook.DeliveryPending, kinehook.DeliveryRetrying:
					c.OpenDeliveries++
					if d.NextAttemptAt.IsZero() {
						t.Errorf("consistency: open delivery %s has no NextAttemptAt", d.ID)
					}
				case kinehook.DeliverySucceeded, kinehook.DeliveryFailed:
				default:
					t.Errorf("consistency: delivery %s has status %q", d.ID, d.Status)
				}
				atts, err := s.ListAttempts(ctx, p.ID, d.ID)
				requireNoErr(t, err, "consistency: ListAttempts")
				c.Attempts += len(atts)
				ok := false
				for j, a := range atts {
					if a.DeliveryID != d.ID {
						t.Errorf("consistency: attempt of %s listed under %s", a.DeliveryID, d.ID)
					}
					if j > 0 && a.AttemptedAt.Before(atts[j-1].AttemptedAt) {
						t.Errorf("consistency: attempts of %s not in time order", d.ID)
					}
					ok = ok || (a.StatusCode >= 200 && a.StatusCode < 300)
				}
				if d.Status == kinehook.DeliverySucceeded && !ok {
					t.Errorf("consistency: delivery %s succeeded without a 2xx attempt", d.ID)
				}
				if d.Attempts < 0 {
					t.Errorf("consistency: delivery %s has %d attempts", d.ID, d.Attempts)
				}
			}
		}
	}

	// Open deliveries are exactly the non-final ones, each once, in Seq order.
	seen := map[string]bool{}
	var last int64
	requireNoErr(t, s.OpenDeliveries(ctx, nil, func(d *kinehook.Delivery) error {
		if d.Seq < last {
			t.Errorf("consistency: OpenDeliveries not in Seq order at %s", d.ID)
		}
		last = d.Seq
		if seen[d.ID] {
			t.Errorf("consistency: OpenDeliveries lists %s twice", d.ID)
		}
		seen[d.ID] = true
		listed := allDeliveries[d.ID]
		if listed == nil {
			t.Errorf("consistency: open delivery %s belongs to no listed event", d.ID)
		} else if listed.Status != d.Status || d.Status.Final() {
			t.Errorf("consistency: open delivery %s has status %s (listed as %s)", d.ID, d.Status, listed.Status)
		}
		return nil
	}), "consistency: OpenDeliveries")
	if len(seen) != c.OpenDeliveries {
		t.Errorf("consistency: OpenDeliveries lists %d deliveries, events hold %d open ones", len(seen), c.OpenDeliveries)
	}

	// Bulk reads agree with the per-record ones.
	ids := make([]string, 0, len(allDeliveries))
	for id := range allDeliveries {
		ids = append(ids, id)
	}
	for start := 0; start < len(ids); start += 500 {
		chunk := ids[start:min(start+500, len(ids))]
		got, err := s.DeliveriesByID(ctx, chunk)
		requireNoErr(t, err, "consistency: DeliveriesByID")
		if len(got) != len(chunk) {
			t.Errorf("consistency: DeliveriesByID found %d of %d", len(got), len(chunk))
		}
		for _, d := range got {
			if w := allDeliveries[d.ID]; w != nil && (w.Status != d.Status || w.Attempts != d.Attempts) {
				t.Errorf("consistency: DeliveriesByID(%s) = %s/%d, listed %s/%d", d.ID, d.Status, d.Attempts, w.Status, w.Attempts)
			}
		}
	}
	for start := 0; start < len(eventIDs); start += 500 {
		chunk := eventIDs[start:min(start+500, len(eventIDs))]
		got, err := s.EventPayloads(ctx, chunk)
		requireNoErr(t, err, "consistency: EventPayloads")
		for _, id := range chunk {
			if !bytes.Equal(got[id], payloads[id]) {
				t.Errorf("consistency: EventPayloads(%s) = %q, ListEvents gave %q", id, got[id], payloads[id])
			}
		}
	}
	return c
}
