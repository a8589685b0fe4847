package postgres

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/internal/cputime"
	"github.com/kinehook/kinehook/storetest"
)

func TestDeleteBefore(t *testing.T) {
	s := openTestStore(t, Options{})
	ctx := t.Context()
	p, _ := storetest.NewProject(t, s, 1)
	other, _ := storetest.NewProject(t, s, 1)
	old := time.Now().Add(-48 * time.Hour)

	// 7 old events: 5 delivered, 1 still retrying, 1 pending; 2 recent ones.
	var evs []*kinehook.Event
	for i := range 7 {
		e := storetest.NewEvent(p.ID, fmt.Sprintf("v%d", i), old.Add(time.Duration(i)*time.Minute))
		e.IdempotencyKey = fmt.Sprintf("key-%d", i)
		evs = append(evs, e)
	}
	evs = append(evs, storetest.NewEvent(p.ID, "new-1", time.Now()), storetest.NewEvent(p.ID, "new-2", time.Now()))
	res, err := s.IngestEvents(ctx, evs)
	if err != nil {
		t.Fatal(err)
	}
	otherRes, err := s.IngestEvents(ctx, []*kinehook.Event{storetest.NewEvent(other.ID, "x", old)})
	if err != nil {
		t.Fatal(err)
	}
	var results []kinehook.AttemptResult
	for i := range 6 {
		st := kinehook.DeliverySucceeded
		if i == 5 {
			st = kinehook.DeliveryRetrying
		}
		r := kinehook.AttemptResult{Attempt: kinehook.Attempt{DeliveryID: res[i].Deliveries[0].ID, AttemptedAt: time.Now(), StatusCode: 200},
			Status: st, Attempts: 1}
		if st == kinehook.DeliveryRetrying {
			r.Attempt.StatusCode, r.NextAttemptAt = 500, time.Now().Add(time.Minute)
		}
		results = append(results, r)
	}
	results = append(results, kinehook.AttemptResult{Attempt: kinehook.Attempt{DeliveryID: otherRes[0].Deliveries[0].ID, AttemptedAt: time.Now(), StatusCode: 200},
		Status: kinehook.DeliverySucceeded, Attempts: 1})
	if err := s.RecordAttempts(ctx, results); err != nil {
		t.Fatal(err)
	}

	n, err := s.DeleteBefore(ctx, p.ID, time.Now().Add(-24*time.Hour), 2)
	if err != nil {
		t.Fatalf("DeleteBefore: %v", err)
	}
	if n != 5 {
		t.Errorf("DeleteBefore removed %d events, want the 5 old delivered ones", n)
	}
	for i, r := range res {
		_, err := s.GetEvent(ctx, p.ID, r.Event.ID)
		gone := kinehook.ErrorCode(err) == kinehook.ENOTFOUND
		if wantGone := i < 5; gone != wantGone {
			t.Errorf("event %d: gone = %v, want %v (err %v)", i, gone, wantGone, err)
		}
		if i < 5 {
			if _, err := s.GetDelivery(ctx, p.ID, r.Deliveries[0].ID); kinehook.ErrorCode(err) != kinehook.ENOTFOUND {
				t.Errorf("delivery of removed event %d still there (%v)", i, err)
			}
		}
	}
	var attempts, keys int
	if err := s.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM attempts), (SELECT count(*) FROM idempotency_keys)`).Scan(&attempts, &keys); err != nil {
		t.Fatal(err)
	}
	if attempts != 2 || keys != 2 {
		t.Errorf("after retention: %d attempts, %d idempotency keys; want 2 (retrying + other project) and 2 (kept events)", attempts, keys)
	}
	// Another project's old event is untouched.
	if _, err := s.GetEvent(ctx, other.ID, otherRes[0].Event.ID); err != nil {
		t.Errorf("another project's event was removed: %v", err)
	}
	// A released key can be used again.
	again := storetest.NewEvent(p.ID, "v0", time.Now())
	again.IdempotencyKey = "key-0"
	r, err := s.IngestEvents(ctx, []*kinehook.Event{again})
	if err != nil || r[0].Duplicate {
		t.Errorf("reusing a removed event's key: duplicate=%v err=%v", r[0].Duplicate, err)
	}
}

// TestIngestConcurrentSameKey races many batches carrying one idempotency
// key: exactly one event is created and every caller gets it.
func TestIngestConcurrentSameKey(t *testing.T) {
	s := openTestStore(t, Options{})
	p, _ := storetest.NewProject(t, s, 2)
	const n = 8
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		ids = map[string]int{}
		dup int
	)
	for i := range n {
		wg.Go(func() {
			a := storetest.NewEvent(p.ID, "v", time.Now())
			a.IdempotencyKey = "same"
			b := storetest.NewEvent(p.ID, fmt.Sprintf("own-%d", i), time.Now())
			b.IdempotencyKey = fmt.Sprintf("own-%d", i)
			// Opposite key orders in the input must not deadlock.
			batch := []*kinehook.Event{a, b}
			if i%2 == 1 {
				batch = []*kinehook.Event{b, a}
			}
			res, err := s.IngestEvents(context.Background(), batch)
			if err != nil {
				t.Errorf("IngestEvents: %v", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, r := range res {
				if r.Event.IdempotencyKey == "same" || r.Event.ResourceKey == "v" {
					ids[r.Event.ID]++
					if r.Duplicate {
						dup++
					}
				}
			}
		})
	}
	wg.Wait()
	if len(ids) != 1 || dup != n-1 {
		t.Errorf("one key from %d batches: events %v, %d duplicates; want one event and %d duplicates", n, ids, dup, n-1)
	}
}

// BenchmarkIngest measures IngestEvents with batches of 100 events fanned
// out to one endpoint (one commit per batch), from 4 concurrent writers as
// the group-commit writer and API produce them. Reports events/s.
func BenchmarkIngest(b *testing.B) {
	s := openTestStore(b, Options{})
	p, _ := storetest.NewProject(b, s, 1)
	const batch = 100
	b.ResetTimer()
	start := time.Now()
	b.SetParallelism(2) // 2 x GOMAXPROCS writers
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			evs := make([]*kinehook.Event, batch)
			for j := range evs {
				evs[j] = storetest.NewEvent(p.ID, fmt.Sprintf("video-%d", (i*batch+j)%1000), time.Time{})
			}
			i++
			res, err := s.IngestEvents(context.Background(), evs)
			if err != nil || len(res) != batch || len(res[0].Deliveries) != 1 {
				b.Errorf("IngestEvents: %v", err)
				return
			}
		}
	})
	el := time.Since(start)
	b.ReportMetric(float64(b.N*batch)/el.Seconds(), "events/s")
	b.ReportMetric(float64(el.Microseconds())/float64(b.N), "us/batch")
}

// BenchmarkRecordAttempts measures writing results in batches of 100.
func BenchmarkRecordAttempts(b *testing.B) {
	s := openTestStore(b, Options{})
	p, _ := storetest.NewProject(b, s, 1)
	const batch = 100
	var ds []*kinehook.Delivery
	for len(ds) < b.N*batch {
		evs := make([]*kinehook.Event, 500)
		for j := range evs {
			evs[j] = storetest.NewEvent(p.ID, fmt.Sprintf("v%d", j), time.Time{})
		}
		res, err := s.IngestEvents(context.Background(), evs)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range res {
			ds = append(ds, r.Deliveries...)
		}
	}
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		rs := make([]kinehook.AttemptResult, batch)
		for j := range rs {
			d := ds[i*batch+j]
			rs[j] = kinehook.AttemptResult{EndpointID: d.EndpointID, ProjectID: d.ProjectID, // as the engine sends them
				Attempt: kinehook.Attempt{DeliveryID: d.ID, AttemptedAt: time.Now(), StatusCode: 200,
					DurationMS: 1, ResponseBody: "ok"}, Status: kinehook.DeliverySucceeded, Attempts: 1}
		}
		if err := s.RecordAttempts(context.Background(), rs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/time.Since(start).Seconds(), "results/s")
}

// BenchmarkWriteCycle is the engine's steady state at the batch sizes seen
// end to end: each op records the first attempts of the previous op's 8
// deliveries, then ingests 8 events, on a table that grows as it runs. It
// reports the CPU of the whole machine besides this process per delivery
// (PostgreSQL's, on an otherwise idle machine): a plan that scans the
// deliveries table shows here as a cost that grows with -benchtime.
func BenchmarkWriteCycle(b *testing.B) {
	s := openTestStore(b, Options{})
	p, _ := storetest.NewProject(b, s, 1)
	const batch = 8
	var prev []*kinehook.Delivery
	sys0, sysOK := cputime.Machine()
	own0 := cputime.Self()
	start := time.Now()
	for i := 0; b.Loop(); i++ {
		if len(prev) > 0 {
			rs := make([]kinehook.AttemptResult, len(prev))
			for j, d := range prev {
				rs[j] = kinehook.AttemptResult{EndpointID: d.EndpointID, ProjectID: d.ProjectID, Attempt: kinehook.Attempt{DeliveryID: d.ID, AttemptedAt: time.Now(), StatusCode: 200,
					DurationMS: 1, ResponseBody: "ok", RequestHeaders: map[string]string{"webhook-id": d.EventID}},
					Status: kinehook.DeliverySucceeded, Attempts: 1}
			}
			if err := s.RecordAttempts(context.Background(), rs); err != nil {
				b.Fatal(err)
			}
		}
		evs := make([]*kinehook.Event, batch)
		for j := range evs {
			evs[j] = storetest.NewEvent(p.ID, fmt.Sprintf("video-%d", i*batch+j), time.Time{})
		}
		res, err := s.IngestEvents(context.Background(), evs)
		if err != nil {
			b.Fatal(err)
		}
		prev = prev[:0]
		for _, r := range res {
			prev = append(prev, r.Deliveries...)
		}
	}
	n := float64(b.N * batch)
	own := float64(cputime.Self()-own0) / 1e3 / n
	b.ReportMetric(n/time.Since(start).Seconds(), "deliveries/s")
	b.ReportMetric(own, "own-cpu-us/delivery")
	if sys1, ok := cputime.Machine(); ok && sysOK && sys1 > sys0 {
		sys := sys1 - sys0
		b.ReportMetric(float64(sys)/1e3/n-own, "other-cpu-us/delivery")
	}
}

// TestStateReadCustomPlans: the ingest's read of the current video states
// (by a list of keys) is planned for its arguments each time. A generic plan
// cached on the connection while resource_state was small scanned the whole
// table on every commit as it grew: on a fresh database that read took 20-165
// ms per commit after 10,000 videos, and the one-endpoint throughput fell to
// about half of the pre-redesign binary's.
func TestStateReadCustomPlans(t *testing.T) {
	s := openTestStore(t, Options{MaxConns: 1}) // one connection: its prepared statements are the ingest's
	p, _ := storetest.NewProject(t, s, 1)
	const n = 12 // PostgreSQL may switch to a generic plan after 5 executions
	for i := range n {
		ev := storetest.NewEvent(p.ID, fmt.Sprintf("video-%d", i), time.Now())
		if _, err := s.IngestEvents(t.Context(), []*kinehook.Event{ev}); err != nil {
			t.Fatal(err)
		}
	}
	var generic, custom int64
	if err := s.pool.QueryRow(t.Context(), `SELECT COALESCE(sum(generic_plans), 0), COALESCE(sum(custom_plans), 0)
		FROM pg_prepared_statements WHERE statement LIKE 'SELECT project_id, kind, id, status%FROM resource_state%unnest%'`).Scan(&generic, &custom); err != nil {
		t.Fatal(err)
	}
	if generic != 0 || custom < n {
		t.Errorf("the state read ran %d generic and %d custom plans, want 0 and %d", generic, custom, n)
	}
	// Only the reads: the inserts after them may use their cached plans.
	if err := s.pool.QueryRow(t.Context(), `SELECT COALESCE(sum(generic_plans), 0), COALESCE(sum(custom_plans), 0)
		FROM pg_prepared_statements WHERE statement LIKE 'INSERT INTO deliveries%'`).Scan(&generic, &custom); err != nil {
		t.Fatal(err)
	}
	if generic == 0 {
		t.Errorf("the deliveries insert ran %d custom plans and no generic one: custom plans outlived the reads", custom)
	}
}
