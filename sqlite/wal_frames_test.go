package sqlite_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/sqlite"
)

// TestWALFramesPerCommit bounds the pages the hot path writes: each page a
// commit touched is one WAL frame (two pwrites), the largest part of the
// server's CPU per delivery. Commits of 8 events (one endpoint, no resource
// key) and of their 8 results wrote 22.9 and 11.1 frames before migration
// 0005 narrowed the indexes, 18.3 and 8.1 after. Migration 0006 (delivery
// search) swapped deliveries_open_endpoint, written at ingest and again at
// the final result, for deliveries_endpoint_seq, written at ingest only:
// 20.0 and 7.1 (27.1 frames per 8 deliveries' life, from 26.4).
func TestWALFramesPerCommit(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "frames.db")
	s, err := sqlite.Open(ctx, path, sqlite.Options{Logger: quiet, CheckpointInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p := &kinehook.Project{ID: kinehook.NewID(kinehook.PrefixProject), Name: "frames"}
	if err := s.CreateProject(ctx, p, kinehook.HashKey(p.ID)); err != nil {
		t.Fatal(err)
	}
	e := &kinehook.Endpoint{ID: kinehook.NewID(kinehook.PrefixEndpoint), ProjectID: p.ID, URL: "http://127.0.0.1:9/",
		Secrets: []kinehook.EndpointSecret{{Value: "whsec_c2VjcmV0"}}}
	if err := s.CreateEndpoint(ctx, e); err != nil {
		t.Fatal(err)
	}
	const warm, rounds = 100, 200
	var ingest, record int64
	for i := range warm + rounds {
		f0 := walFrames(t, path)
		res, err := s.IngestEvents(ctx, keylessEvents(p.ID, 8, i*8))
		if err != nil {
			t.Fatal(err)
		}
		f1 := walFrames(t, path)
		if err := s.RecordAttempts(ctx, successes(res)); err != nil {
			t.Fatal(err)
		}
		if i >= warm {
			ingest += f1 - f0
			record += walFrames(t, path) - f1
		}
	}
	perIngest, perRecord := float64(ingest)/rounds, float64(record)/rounds
	t.Logf("WAL frames per commit: ingest %.1f, results %.1f", perIngest, perRecord)
	if perIngest > 22 || perRecord > 8.6 {
		t.Errorf("WAL frames per commit: ingest %.1f (want <= 22), results %.1f (want <= 8.6)", perIngest, perRecord)
	}
}

// walFrames is the number of frames in the WAL file (never checkpointed here).
func walFrames(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path + "-wal")
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	const header, frame = 32, 24 + 4096
	return max(fi.Size()-header, 0) / frame
}

func keylessEvents(projectID string, n, offset int) []*kinehook.Event {
	evs := benchEvents(projectID, n, offset)
	for _, ev := range evs {
		ev.ResourceKey = ""
	}
	return evs
}

// successes answers every delivery of res with a 200, as the engine records it.
func successes(res []kinehook.IngestResult) []kinehook.AttemptResult {
	var out []kinehook.AttemptResult
	for _, r := range res {
		for _, d := range r.Deliveries {
			out = append(out, kinehook.AttemptResult{
				Attempt: kinehook.Attempt{DeliveryID: d.ID, AttemptedAt: time.Now(), StatusCode: 200, DurationMS: 1.2, ResponseBody: "ok",
					RequestHeaders: map[string]string{"Content-Type": "application/json", "Webhook-Id": d.EventID,
						"Webhook-Signature": "v1,abcdefghijklmnopqrstuvwxyzabcdefghijklmnopq="}},
				Status: kinehook.DeliverySucceeded, Attempts: 1,
			})
		}
	}
	return out
}
