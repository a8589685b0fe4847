package sqlite

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
)

// TestWALFramesSearchIndexes measures, in one run, the pages a commit of 8
// events and a commit of their results write to the WAL on the delivery
// indexes before migration 0006 and after it, with 1 and 4 endpoints: the
// cost of delivery search on the hot path, in the unit a busy machine does
// not blur. deliveries_endpoint_seq takes the place of an index written at
// ingest and again at the result, but each endpoint a commit writes to
// appends at its own place in it: about one leaf page, and a split of three
// siblings every few commits. Measured: 24.9 -> 25.7 frames with one
// endpoint, 34.8 -> 45.1 with four (ingest and results of 8 events). The
// test holds it to 3.5 frames per endpoint and commit.
func TestWALFramesSearchIndexes(t *testing.T) {
	type frames struct{ ingest, record float64 }
	measure := func(t *testing.T, before bool, fan int) frames {
		path := filepath.Join(t.TempDir(), "frames.db")
		s, err := Open(t.Context(), path, Options{Logger: slog.New(slog.DiscardHandler), CheckpointInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if before {
			if _, err := s.w.ExecContext(t.Context(), before0006); err != nil {
				t.Fatal(err)
			}
		}
		p := &kinehook.Project{ID: kinehook.NewID(kinehook.PrefixProject), Name: "frames"}
		if err := s.CreateProject(t.Context(), p, kinehook.HashKey(p.ID)); err != nil {
			t.Fatal(err)
		}
		for range fan {
			e := &kinehook.Endpoint{ID: kinehook.NewID(kinehook.PrefixEndpoint), ProjectID: p.ID, URL: "http://127.0.0.1:9/",
				Secrets: []kinehook.EndpointSecret{{Value: "whsec_c2VjcmV0"}}}
			if err := s.CreateEndpoint(t.Context(), e); err != nil {
				t.Fatal(err)
			}
		}
		wal := func() int64 {
			fi, err := os.Stat(path + "-wal")
			if os.IsNotExist(err) {
				return 0
			}
			if err != nil {
				t.Fatal(err)
			}
			return max(fi.Size()-32, 0) / (24 + 4096)
		}
		const warm, rounds = 100, 200
		var ingest, record int64
		for i := range warm + rounds {
			evs := make([]*kinehook.Event, 8)
			for k := range evs {
				evs[k] = &kinehook.Event{ID: kinehook.NewID(kinehook.PrefixEvent), ProjectID: p.ID, Type: kinehook.EventMediaUpdateStatus,
					Payload: []byte(`{"event":"media.update.status","data":{"id":"v","status":"done"}}`)}
			}
			f0 := wal()
			res, err := s.IngestEvents(t.Context(), evs)
			if err != nil {
				t.Fatal(err)
			}
			f1 := wal()
			var rs []kinehook.AttemptResult
			for _, r := range res {
				for _, d := range r.Deliveries {
					rs = append(rs, kinehook.AttemptResult{Attempt: kinehook.Attempt{DeliveryID: d.ID, AttemptedAt: time.Now(), StatusCode: 200},
						Status: kinehook.DeliverySucceeded, Attempts: 1})
				}
			}
			if err := s.RecordAttempts(t.Context(), rs); err != nil {
				t.Fatal(err)
			}
			if i >= warm {
				ingest += f1 - f0
				record += wal() - f1
			}
		}
		return frames{float64(ingest) / rounds, float64(record) / rounds}
	}
	for _, fan := range []int{1, 4} {
		t.Run(fmt.Sprintf("endpoints=%d", fan), func(t *testing.T) {
			b, a := measure(t, true, fan), measure(t, false, fan)
			t.Logf("WAL frames per commit of 8 events, then of their %d results: before 0006 %.1f + %.1f = %.1f, after %.1f + %.1f = %.1f",
				8*fan, b.ingest, b.record, b.ingest+b.record, a.ingest, a.record, a.ingest+a.record)
			if extra := a.ingest + a.record - b.ingest - b.record; extra > 3.5*float64(fan) {
				t.Errorf("0006 costs %.1f frames per commit, more than 3.5 per endpoint", extra)
			}
		})
	}
}
