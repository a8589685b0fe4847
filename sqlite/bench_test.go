package sqlite_test

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/internal/cputime"
	"github.com/kinehook/kinehook/sqlite"
	"github.com/kinehook/kinehook/storetest"
)

func benchStore(b *testing.B) (*sqlite.Store, *kinehook.Project, *kinehook.Endpoint) {
	b.Helper()
	// KINEHOOK_BENCH_CHECKPOINT sets Options.CheckpointInterval (e.g. -1s to
	// compare with checkpoints inside commits).
	ci, _ := time.ParseDuration(os.Getenv("KINEHOOK_BENCH_CHECKPOINT"))
	s, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "bench.db"), sqlite.Options{Logger: quiet, CheckpointInterval: ci})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	p := &kinehook.Project{ID: kinehook.NewID(kinehook.PrefixProject), Name: "bench"}
	if err := s.CreateProject(b.Context(), p, kinehook.HashKey(p.ID)); err != nil {
		b.Fatal(err)
	}
	e := &kinehook.Endpoint{ID: kinehook.NewID(kinehook.PrefixEndpoint), ProjectID: p.ID, URL: "http://127.0.0.1:9/",
		Secrets: []kinehook.EndpointSecret{{Value: "whsec_c2VjcmV0"}}}
	if err := s.CreateEndpoint(b.Context(), e); err != nil {
		b.Fatal(err)
	}
	return s, p, e
}

func benchEvents(projectID string, n, offset int) []*kinehook.Event {
	evs := make([]*kinehook.Event, n)
	for i := range evs {
		id := fmt.Sprintf("7127f2d7-0e96-40d0-9a03-%012d", (offset+i)%1000)
		evs[i] = &kinehook.Event{
			ID:          kinehook.NewID(kinehook.PrefixEvent),
			ProjectID:   projectID,
			Type:        kinehook.EventMediaUpdateStatus,
			ResourceKey: id,
			Payload:     fmt.Appendf(nil, `{"event":"media.update.status","data":{"id":%q,"status":"done"}}`, id),
		}
	}
	return evs
}

// BenchmarkIngest stores batches of 100 events fanned out to one endpoint
// (100 events + 100 deliveries per op, one commit).
func BenchmarkIngest(b *testing.B) {
	const batch = 100
	s, p, _ := benchStore(b)
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu0 := time.Now(), cputime.Self()
	for i := 0; b.Loop(); i++ {
		if _, err := s.IngestEvents(b.Context(), benchEvents(p.ID, batch, i*batch)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/time.Since(start).Seconds(), "events/s")
	b.ReportMetric(float64(cputime.Self()-cpu0)/float64(b.N*batch)/1e3, "cpu-µs/event")
}

// BenchmarkRecordAttempts records batches of 100 successful attempts
// (100 delivery updates + 100 attempt rows + the statistics upsert per op,
// one commit).
func BenchmarkRecordAttempts(b *testing.B) {
	const batch = 100
	s, p, _ := benchStore(b)
	var ds []*kinehook.Delivery
	for range 50 {
		res, err := s.IngestEvents(b.Context(), benchEvents(p.ID, 200, 0))
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range res {
			ds = append(ds, r.Deliveries...)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu0 := time.Now(), cputime.Self()
	for i := 0; b.Loop(); i++ {
		results := make([]kinehook.AttemptResult, batch)
		now := time.Now()
		for j := range results {
			d := ds[(i*batch+j)%len(ds)]
			results[j] = kinehook.AttemptResult{
				EndpointID: d.EndpointID, ProjectID: d.ProjectID, // as the engine sends them (for the statistics)
				Attempt: kinehook.Attempt{DeliveryID: d.ID, AttemptedAt: now, StatusCode: 200, DurationMS: 1.2, ResponseBody: "ok",
					RequestHeaders: map[string]string{"webhook-id": d.EventID}},
				Status: kinehook.DeliverySucceeded, Attempts: 1,
			}
		}
		if err := s.RecordAttempts(b.Context(), results); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/time.Since(start).Seconds(), "attempts/s")
	b.ReportMetric(float64(cputime.Self()-cpu0)/float64(b.N*batch)/1e3, "cpu-µs/attempt")
}

// BenchmarkBaselineInsert inserts one-column rows one statement at a time
// through the same driver and settings: a yardstick for how fast this machine
// runs SQLite right now (the figures above mean more as a ratio to it).
func BenchmarkBaselineInsert(b *testing.B) {
	db, err := sql.Open("sqlite", "file:"+filepath.Join(b.TempDir(), "base.db")+"?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)`); err != nil {
		b.Fatal(err)
	}
	st, err := db.Prepare(`INSERT INTO t (v) VALUES (?)`)
	if err != nil {
		b.Fatal(err)
	}
	tx, err := db.Begin()
	if err != nil {
		b.Fatal(err)
	}
	ins := tx.Stmt(st)
	for b.Loop() {
		if _, err := ins.Exec("hello world"); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkIngestSingle commits one event (and its delivery) per call: the
// commit latency a lone request sees when nothing else is being ingested.
func BenchmarkIngestSingle(b *testing.B) {
	s, p, _ := benchStore(b)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := s.IngestEvents(b.Context(), benchEvents(p.ID, 1, i)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIngestFanOut10 stores batches of 100 events fanned out to 10
// endpoints (100 events + 1000 deliveries per op, one commit).
func BenchmarkIngestFanOut10(b *testing.B) {
	const batch = 100
	s, p, _ := benchStore(b)
	for range 9 {
		e := &kinehook.Endpoint{ID: kinehook.NewID(kinehook.PrefixEndpoint), ProjectID: p.ID, URL: "http://127.0.0.1:9/",
			Secrets: []kinehook.EndpointSecret{{Value: "whsec_c2VjcmV0"}}}
		if err := s.CreateEndpoint(b.Context(), e); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	start, cpu0 := time.Now(), cputime.Self()
	for i := 0; b.Loop(); i++ {
		res, err := s.IngestEvents(b.Context(), benchEvents(p.ID, batch, i*batch))
		if err != nil {
			b.Fatal(err)
		}
		if len(res[0].Deliveries) != 10 {
			b.Fatalf("%d deliveries per event, want 10", len(res[0].Deliveries))
		}
	}
	b.ReportMetric(float64(b.N*batch*10)/time.Since(start).Seconds(), "deliveries/s")
	b.ReportMetric(float64(cputime.Self()-cpu0)/float64(b.N*batch*10)/1e3, "cpu-µs/delivery")
}

// BenchmarkStateMillion measures the state API on a project with a
// million videos (KINEHOOK_STATE_VIDEOS overrides the count).
func BenchmarkStateMillion(b *testing.B) {
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("KINEHOOK_STATE_VIDEOS")); err == nil && v > 0 {
		n = v
	}
	s, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "million.db"), sqlite.Options{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	storetest.BenchStateAPI(b, s, n)
}
