package sqlite

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/internal/cputime"
	"github.com/kinehook/kinehook/storetest"
)

// scaleStore is the store BenchmarkSearchScale fills once per run.
var scaleStore struct {
	once sync.Once
	s    *Store
	sc   *storetest.SearchScale
	dir  string
	err  error
}

// BenchmarkSearchScale fills a store with a million deliveries
// (KINEHOOK_SEARCH_DELIVERIES to change it), sets their statuses (1 in 97
// failed, 1 in 89 retrying, the last 2,000 events' pending, the rest
// succeeded) and times the first page of typical searches:
//
//	go test -run '^$' -bench BenchmarkSearchScale -benchtime 200x ./sqlite
func BenchmarkSearchScale(b *testing.B) {
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("KINEHOOK_SEARCH_DELIVERIES")); err == nil && v > 0 {
		n = v
	}
	scaleStore.once.Do(func() {
		dir, err := os.MkdirTemp("", "kinehook-search-scale")
		if err != nil {
			scaleStore.err = err
			return
		}
		scaleStore.dir = dir
		s, err := Open(context.Background(), filepath.Join(dir, "scale.db"), Options{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			scaleStore.err = err
			return
		}
		start := time.Now()
		sc := storetest.FillSearchScale(b, s, n)
		filled := time.Since(start)
		if _, err := s.w.ExecContext(context.Background(), `UPDATE deliveries SET status = CASE
			WHEN event_seq % 97 = 0 THEN 'failed' WHEN event_seq % 89 = 0 THEN 'retrying'
			WHEN event_seq > (SELECT max(seq) - 2000 FROM events) THEN 'pending' ELSE 'succeeded' END`); err != nil {
			scaleStore.err = err
			return
		}
		fmt.Printf("search scale: %d deliveries of %d events in the project (%.0f%% more elsewhere), filled in %s, statuses set in %s\n",
			sc.Deliveries, sc.Events, 10.0, filled.Round(time.Second), (time.Since(start) - filled).Round(time.Second))
		scaleStore.s, scaleStore.sc = s, sc
	})
	if scaleStore.err != nil {
		b.Fatal(scaleStore.err)
	}
	b.Cleanup(func() {}) // the store lives for the run: several -count rounds share it
	storetest.BenchSearch(b, scaleStore.s, scaleStore.sc)
}

// TestMain removes the scale benchmark's store after the run.
func TestMain(m *testing.M) {
	code := m.Run()
	if scaleStore.s != nil {
		scaleStore.s.Close()
	}
	if scaleStore.dir != "" {
		os.RemoveAll(scaleStore.dir)
	}
	os.Exit(code)
}

// prefill is how many deliveries BenchmarkIngestSearchIndexes stores first.
const prefill = 100_000

// before0006 puts back the delivery indexes migration 0006 replaced: the
// schema before delivery search, for a same-run comparison.
const before0006 = `DROP INDEX deliveries_endpoint_seq;
DROP INDEX deliveries_failed;
DROP INDEX deliveries_failed_project;
CREATE INDEX deliveries_open_endpoint ON deliveries (endpoint_id) WHERE status IN ('pending', 'retrying');
CREATE INDEX deliveries_failed ON deliveries (endpoint_id, created_at) WHERE status = 'failed';`

// BenchmarkIngestSearchIndexes compares the hot path on the indexes before
// and after migration 0006 in one run: commits of 100 events to 1 and to 4
// endpoints, then a commit of those deliveries' results, on a store that
// already holds 100,000 deliveries. The pages each commit writes to the WAL,
// the figure a busy machine does not blur, are TestWALFramesPerCommit's.
//
//	go test -run '^$' -bench BenchmarkIngestSearchIndexes -benchtime 300x ./sqlite
func BenchmarkIngestSearchIndexes(b *testing.B) {
	for _, schema := range []string{"before_0006", "after_0006"} {
		for _, fan := range []int{1, 4} {
			b.Run(fmt.Sprintf("%s/endpoints=%d", schema, fan), func(b *testing.B) {
				s, err := Open(b.Context(), filepath.Join(b.TempDir(), "ingest.db"), Options{Logger: slog.New(slog.DiscardHandler)})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				if schema == "before_0006" {
					if _, err := s.w.ExecContext(b.Context(), before0006); err != nil {
						b.Fatal(err)
					}
				}
				p := &kinehook.Project{ID: kinehook.NewID(kinehook.PrefixProject), Name: "bench"}
				if err := s.CreateProject(b.Context(), p, kinehook.HashKey(p.ID)); err != nil {
					b.Fatal(err)
				}
				for range fan {
					e := &kinehook.Endpoint{ID: kinehook.NewID(kinehook.PrefixEndpoint), ProjectID: p.ID, URL: "http://127.0.0.1:9/",
						Secrets: []kinehook.EndpointSecret{{Value: "whsec_c2VjcmV0"}}}
					if err := s.CreateEndpoint(b.Context(), e); err != nil {
						b.Fatal(err)
					}
				}
				const batch = 100
				seq := 0
				ingest := func() []kinehook.IngestResult {
					evs := make([]*kinehook.Event, batch)
					for i := range evs {
						id := fmt.Sprintf("video-%d", seq%1000)
						seq++
						evs[i] = &kinehook.Event{ID: kinehook.NewID(kinehook.PrefixEvent), ProjectID: p.ID, Type: kinehook.EventMediaUpdateStatus,
							ResourceKey: id, Payload: fmt.Appendf(nil, `{"event":"media.update.status","data":{"id":%q,"status":"done"}}`, id)}
					}
					res, err := s.IngestEvents(b.Context(), evs)
					if err != nil {
						b.Fatal(err)
					}
					return res
				}
				succeed := func(res []kinehook.IngestResult) {
					var rs []kinehook.AttemptResult
					now := time.Now()
					for _, r := range res {
						for _, d := range r.Deliveries {
							rs = append(rs, kinehook.AttemptResult{Attempt: kinehook.Attempt{DeliveryID: d.ID, AttemptedAt: now, StatusCode: 200, DurationMS: 1},
								Status: kinehook.DeliverySucceeded, Attempts: 1})
						}
					}
					if err := s.RecordAttempts(b.Context(), rs); err != nil {
						b.Fatal(err)
					}
				}
				for range prefill / batch / fan {
					succeed(ingest())
				}
				var ingestT, recordT time.Duration
				cpu0 := cputime.Self()
				for b.Loop() {
					t0 := time.Now()
					res := ingest()
					t1 := time.Now()
					succeed(res)
					ingestT, recordT = ingestT+t1.Sub(t0), recordT+time.Since(t1)
				}
				events := float64(b.N * batch)
				b.ReportMetric(events/ingestT.Seconds(), "events/s")
				b.ReportMetric(events*float64(fan)/recordT.Seconds(), "results/s")
				b.ReportMetric(float64(cputime.Self()-cpu0)/(events*float64(fan))/1e3, "cpu-µs/delivery")
			})
		}
	}
}
