package sqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/sqlite"
	"github.com/kinehook/kinehook/storetest"
)

var quiet = slog.New(slog.DiscardHandler)

func openAt(t *testing.T, path string, box kinehook.SecretBox) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), path, sqlite.Options{SecretBox: box, Logger: quiet})
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStoreSuite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) kinehook.Store {
		return openAt(t, filepath.Join(t.TempDir(), "kinehook.db"), nil)
	})
}

func TestSecretsAtRest(t *testing.T) {
	storetest.RunSecretsAtRest(t, func(t *testing.T, box kinehook.SecretBox) (kinehook.Store, func() []byte) {
		path := filepath.Join(t.TempDir(), "kinehook.db")
		s := openAt(t, path, box)
		return s, func() []byte {
			var all []byte
			for _, p := range []string{path, path + "-wal"} {
				b, err := os.ReadFile(p)
				if err != nil && !os.IsNotExist(err) {
					t.Fatalf("read %s: %v", p, err)
				}
				all = append(all, b...)
			}
			return all
		}
	})
}

// fill makes a project with two endpoints and n events, settles some
// deliveries, and returns the project.
func fill(t *testing.T, s kinehook.Store, n int, createdAt time.Time) (*kinehook.Project, []kinehook.IngestResult) {
	t.Helper()
	ctx := t.Context()
	p := &kinehook.Project{ID: kinehook.NewID(kinehook.PrefixProject), Name: "p", CreatedAt: createdAt}
	if err := s.CreateProject(ctx, p, kinehook.HashKey(p.ID)); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		e := &kinehook.Endpoint{ID: kinehook.NewID(kinehook.PrefixEndpoint), ProjectID: p.ID, URL: "https://example.com/h",
			Secrets: []kinehook.EndpointSecret{{Value: "whsec_c2VjcmV0"}}, Password: "pw"}
		if err := s.CreateEndpoint(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	evs := make([]*kinehook.Event, n)
	for i := range evs {
		evs[i] = &kinehook.Event{ProjectID: p.ID, Type: kinehook.EventMediaUpdateStatus, ResourceKey: fmt.Sprintf("v%d", i%7),
			Payload: fmt.Appendf(nil, `{"event":"media.update.status","data":{"id":"v%d","status":"done"}}`, i%7), CreatedAt: createdAt}
	}
	res, err := s.IngestEvents(ctx, evs)
	if err != nil {
		t.Fatal(err)
	}
	var results []kinehook.AttemptResult
	for i, r := range res {
		if i%2 == 0 { // even events: both deliveries succeed
			for _, d := range r.Deliveries {
				results = append(results, kinehook.AttemptResult{Attempt: kinehook.Attempt{DeliveryID: d.ID, AttemptedAt: createdAt,
					StatusCode: 200, ResponseBody: "ok"}, Status: kinehook.DeliverySucceeded, Attempts: 1})
			}
		}
	}
	if err := s.RecordAttempts(ctx, results); err != nil {
		t.Fatal(err)
	}
	return p, res
}

func TestReopenKeepsEverything(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kinehook.db")
	box := storetest.NewTestSecretBox(t)
	s, err := sqlite.Open(t.Context(), path, sqlite.Options{SecretBox: box, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	p, res := fill(t, s, 20, time.Now())
	if err := s.SetAdminKeyHash(t.Context(), kinehook.HashKey("admin")); err != nil {
		t.Fatal(err)
	}
	before := storetest.CheckConsistency(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2 := openAt(t, path, box)
	after := storetest.CheckConsistency(t, s2)
	if before != after || after.Events != 20 || after.OpenDeliveries != 20 {
		t.Errorf("after reopen: %+v, before: %+v", after, before)
	}
	h, err := s2.AdminKeyHash(t.Context())
	if err != nil || string(h) != string(kinehook.HashKey("admin")) {
		t.Errorf("admin key after reopen: %x, %v", h, err)
	}
	eps, err := s2.ListEndpoints(t.Context(), p.ID)
	if err != nil || len(eps) != 2 || eps[0].Password != "pw" || eps[0].Secrets[0].Value != "whsec_c2VjcmV0" {
		t.Errorf("endpoints after reopen: %+v, %v", eps, err)
	}
	// Seq keeps increasing across a restart.
	r, err := s2.IngestEvents(t.Context(), []*kinehook.Event{{ProjectID: p.ID, Type: kinehook.EventLiveCreated,
		Payload: []byte(`{"event":"live.created","data":{"event_id":"x"}}`), ResourceKey: "x"}})
	if err != nil || r[0].Event.Seq <= res[len(res)-1].Event.Seq {
		t.Errorf("seq after reopen %d, last before %d (%v)", r[0].Event.Seq, res[len(res)-1].Event.Seq, err)
	}

	// Sealed secrets need the key.
	s2.Close()
	s3 := openAt(t, path, nil)
	if _, err := s3.ListEndpoints(t.Context(), p.ID); err == nil || !strings.Contains(err.Error(), "encryption key") {
		t.Errorf("reading sealed secrets without a key: %v, want an error naming the key", err)
	}
}

func TestPlainSecretsReadWithBox(t *testing.T) {
	// A store written without a key stays readable once a key is configured;
	// Open seals what it holds (TestSealsRowsOfSchema2 reads the raw rows).
	path := filepath.Join(t.TempDir(), "kinehook.db")
	s := openAt(t, path, nil)
	p, _ := fill(t, s, 1, time.Now())
	s.Close()
	s2 := openAt(t, path, storetest.NewTestSecretBox(t))
	eps, err := s2.ListEndpoints(t.Context(), p.ID)
	if err != nil || len(eps) != 2 || eps[0].Password != "pw" {
		t.Fatalf("plain endpoints read with a box: %+v, %v", eps, err)
	}
}

func TestMigrationsIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kinehook.db")
	files, _ := filepath.Glob("migrations/*.sql")
	for i := range 3 {
		var logs bytes.Buffer
		s, err := sqlite.Open(t.Context(), path, sqlite.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatalf("open #%d: %v", i, err)
		}
		// A new store logs its migrations in one line; a reopen, none.
		lines := strings.Count(logs.String(), "migration")
		if i == 0 {
			fill(t, s, 3, time.Now())
			if lines != 1 || !strings.Contains(logs.String(), fmt.Sprintf(" %d]", len(files))) {
				t.Errorf("a new store logged:\n%s\nwant one line listing versions up to %d", logs.String(), len(files))
			}
		} else if lines != 0 {
			t.Errorf("reopen #%d logged migrations:\n%s", i, logs.String())
		}
		if c := storetest.CheckConsistency(t, s); c.Events != 3 {
			t.Errorf("open #%d: %d events", i, c.Events)
		}
		s.Close()
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n, maxV int
	if err := db.QueryRow(`SELECT count(*), max(version) FROM schema_migrations`).Scan(&n, &maxV); err != nil {
		t.Fatal(err)
	}
	if n != len(files) || n == 0 {
		t.Errorf("schema_migrations has %d rows, want one per file (%d)", n, len(files))
	}
	// A file from a newer kinehook (an unknown migration applied) is refused.
	if _, err := db.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, '9999_future.sql', 0)`); err != nil {
		t.Fatal(err)
	}
	if s, err := sqlite.Open(t.Context(), path, sqlite.Options{Logger: quiet}); err == nil {
		s.Close()
		t.Error("Open accepted a database with a newer schema version")
	} else if !strings.Contains(err.Error(), "newer") {
		t.Errorf("Open of a newer schema: %v", err)
	}
	var mode int
	if err := db.QueryRow(`PRAGMA auto_vacuum`).Scan(&mode); err != nil || mode != 2 {
		t.Errorf("auto_vacuum = %d (%v), want 2 (incremental)", mode, err)
	}
	var jm string
	if err := db.QueryRow(`PRAGMA journal_mode`).Scan(&jm); err != nil || jm != "wal" {
		t.Errorf("journal_mode = %q (%v), want wal", jm, err)
	}
}

// TestUpgradeFromVersion1: a store made before attempts had ids (schema
// version 1) opens with its history intact; old attempts read with an empty
// id, new ones keep theirs.
func TestUpgradeFromVersion1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kinehook.db")
	s, err := sqlite.Open(t.Context(), path, sqlite.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	p, res := fill(t, s, 2, time.Now())
	s.Close()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`ALTER TABLE attempts DROP COLUMN request_id`, `DELETE FROM schema_migrations WHERE version = 2`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()

	s, err = sqlite.Open(t.Context(), path, sqlite.Options{Logger: quiet})
	if err != nil {
		t.Fatalf("open a version-1 store: %v", err)
	}
	defer s.Close()
	old := res[0].Deliveries[0]
	atts, err := s.ListAttempts(t.Context(), p.ID, old.ID)
	if err != nil || len(atts) != 1 || atts[0].ID != "" || atts[0].StatusCode != 200 {
		t.Fatalf("an attempt from before the upgrade: %v, %v", atts, err)
	}
	next := res[1].Deliveries[0]
	if err := s.RecordAttempts(t.Context(), []kinehook.AttemptResult{{Attempt: kinehook.Attempt{ID: "att_new", DeliveryID: next.ID,
		AttemptedAt: time.Now(), StatusCode: 200}, Status: kinehook.DeliverySucceeded, Attempts: 1}}); err != nil {
		t.Fatal(err)
	}
	if atts, err := s.ListAttempts(t.Context(), p.ID, next.ID); err != nil || len(atts) != 1 || atts[0].ID != "att_new" {
		t.Fatalf("an attempt after the upgrade: %v, %v", atts, err)
	}
}

func TestBackup(t *testing.T) {
	dir := t.TempDir()
	s := openAt(t, filepath.Join(dir, "live.db"), nil)
	fill(t, s, 30, time.Now())

	// Back up while another goroutine keeps ingesting.
	p, _ := fill(t, s, 1, time.Now())
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			ev := &kinehook.Event{ProjectID: p.ID, Type: kinehook.EventLiveCreated, ResourceKey: "l",
				Payload: []byte(`{"event":"live.created","data":{"event_id":"l"}}`)}
			if _, err := s.IngestEvents(context.Background(), []*kinehook.Event{ev}); err != nil {
				done <- err
				return
			}
		}
	}()
	dest := filepath.Join(dir, "backup.db")
	err := s.Backup(t.Context(), dest)
	close(stop)
	if gerr := <-done; gerr != nil {
		t.Fatalf("ingest during backup: %v", gerr)
	}
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	// The copy holds payloads and sealed secrets: owner-only, whatever the umask.
	if fi, err := os.Stat(dest); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("backup file mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	b := openAt(t, dest, nil)
	c := storetest.CheckConsistency(t, b)
	if c.Projects != 2 || c.Events < 31 || c.Endpoints != 4 {
		t.Errorf("backup holds %+v", c)
	}
	// The restored copy is a working store.
	r, err := b.IngestEvents(t.Context(), []*kinehook.Event{{ProjectID: p.ID, Type: kinehook.EventLiveCreated, ResourceKey: "l",
		Payload: []byte(`{"event":"live.created","data":{"event_id":"l"}}`)}})
	if err != nil || len(r[0].Deliveries) != 2 {
		t.Errorf("ingest into the restored copy: %v", err)
	}
	// A second backup replaces the first; the live file is refused.
	if err := s.Backup(t.Context(), dest); err != nil {
		t.Errorf("second backup: %v", err)
	}
	if err := s.Backup(t.Context(), s.Path()); err == nil {
		t.Error("backup over the live database succeeded")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*.partial-*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestRetention(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "kinehook.db")
	s := openAt(t, path, nil)
	old := time.Now().Add(-40 * 24 * time.Hour)
	pOld, oldRes := fill(t, s, 100, old) // even events settled, odd ones still pending
	// Bulk up the old events so the vacuum has pages to free.
	big := make([]*kinehook.Event, 50)
	for i := range big {
		big[i] = &kinehook.Event{ProjectID: pOld.ID, Type: kinehook.EventMediaUpdateStatus, ResourceKey: "big", CreatedAt: old,
			Payload: []byte(`{"event":"media.update.status","data":{"id":"big","status":"error","message":"` + strings.Repeat("x", 4000) + `"}}`)}
	}
	bigRes, err := s.IngestEvents(ctx, big)
	if err != nil {
		t.Fatal(err)
	}
	var done []kinehook.AttemptResult
	for _, r := range bigRes {
		for _, d := range r.Deliveries {
			done = append(done, kinehook.AttemptResult{Attempt: kinehook.Attempt{DeliveryID: d.ID, AttemptedAt: old, StatusCode: 500},
				Status: kinehook.DeliveryFailed, Attempts: 8})
		}
	}
	if err := s.RecordAttempts(ctx, done); err != nil {
		t.Fatal(err)
	}
	pNew, _ := fill(t, s, 10, time.Now())
	// A retrying delivery is open too.
	retrying := oldRes[1].Deliveries[0]
	if err := s.RecordAttempts(ctx, []kinehook.AttemptResult{{Attempt: kinehook.Attempt{DeliveryID: retrying.ID, AttemptedAt: old, StatusCode: 503},
		Status: kinehook.DeliveryRetrying, Attempts: 1, NextAttemptAt: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	before := storetest.CheckConsistency(t, s)
	if err := s.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	sizeBefore := fileSize(t, path)

	cutoff := time.Now().Add(-30 * 24 * time.Hour)
	// Another project's scope removes nothing of pOld.
	if n, err := s.DeleteBefore(ctx, pNew.ID, cutoff, 50); err != nil || n != 0 {
		t.Errorf("DeleteBefore(new project) = %d, %v; want 0", n, err)
	}
	total, err := s.DeleteBefore(ctx, pOld.ID, cutoff, 30)
	if err != nil {
		t.Fatal(err)
	}
	// 50 settled small events + 50 big failed ones go; 50 with open deliveries stay.
	if total != 100 {
		t.Errorf("retention removed %d events, want 100", total)
	}
	after := storetest.CheckConsistency(t, s)
	if after.Events != before.Events-100 || after.OpenDeliveries != before.OpenDeliveries {
		t.Errorf("after retention %+v, before %+v", after, before)
	}
	if d, err := s.GetDelivery(ctx, pOld.ID, retrying.ID); err != nil || d.Status != kinehook.DeliveryRetrying {
		t.Errorf("retrying delivery after retention: %+v, %v", d, err)
	}
	if _, err := s.GetEvent(ctx, pOld.ID, oldRes[0].Event.ID); !errors.Is(err, kinehook.ErrNotFound) {
		t.Errorf("settled old event still there: %v", err)
	}
	freed, err := s.IncrementalVacuum(ctx)
	if err != nil || freed == 0 {
		t.Errorf("IncrementalVacuum freed %d pages (%v)", freed, err)
	}
	if sizeAfter := fileSize(t, path); sizeAfter >= sizeBefore {
		t.Errorf("file did not shrink: %d -> %d bytes", sizeBefore, sizeAfter)
	}
	// An old idempotency key is gone with its event: the key is free again.
	ev := &kinehook.Event{ProjectID: pNew.ID, Type: kinehook.EventLiveCreated, ResourceKey: "k", IdempotencyKey: "once",
		CreatedAt: old, Payload: []byte(`{"event":"live.created","data":{"event_id":"k"}}`)}
	once, err := s.IngestEvents(ctx, []*kinehook.Event{ev})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := s.DeleteBefore(ctx, "", cutoff, 1000); err != nil || n != 0 {
		t.Errorf("DeleteBefore removed %d events with pending deliveries (%v)", n, err)
	}
	var settle []kinehook.AttemptResult
	for _, d := range once[0].Deliveries {
		settle = append(settle, kinehook.AttemptResult{Attempt: kinehook.Attempt{DeliveryID: d.ID, AttemptedAt: old, StatusCode: 200},
			Status: kinehook.DeliverySucceeded, Attempts: 1})
	}
	if err := s.RecordAttempts(ctx, settle); err != nil {
		t.Fatal(err)
	}
	if n, err := s.DeleteBefore(ctx, "", cutoff, 1000); err != nil || n != 1 {
		t.Errorf("DeleteBefore(all projects) = %d, %v; want 1", n, err)
	}
	ev2 := *ev
	ev2.ID, ev2.CreatedAt = "", time.Time{}
	r, err := s.IngestEvents(ctx, []*kinehook.Event{&ev2})
	if err != nil || r[0].Duplicate {
		t.Errorf("key of a removed event: duplicate=%v, %v", r[0].Duplicate, err)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// rotatingBox opens with old and seals with new, like a key set whose
// primary key changed.
type rotatingBox struct{ old, new kinehook.SecretBox }

func (b rotatingBox) Seal(p []byte) ([]byte, error) { return b.new.Seal(p) }
func (b rotatingBox) Open(c []byte) ([]byte, error) {
	if p, err := b.new.Open(c); err == nil {
		return p, nil
	}
	return b.old.Open(c)
}
func (b rotatingBox) reseal(c []byte) ([]byte, error) {
	p, err := b.old.Open(c)
	if err != nil {
		return c, nil // already under the new key
	}
	return b.new.Seal(p)
}

func TestResealSecrets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kinehook.db")
	oldKey, newKey := storetest.NewTestSecretBox(t), storetest.NewTestSecretBox(t)
	s, err := sqlite.Open(t.Context(), path, sqlite.Options{SecretBox: oldKey, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := fill(t, s, 1, time.Now())
	dest := &kinehook.Endpoint{ID: kinehook.NewID(kinehook.PrefixEndpoint), ProjectID: p.ID, Type: kinehook.EndpointNATS,
		Config:      json.RawMessage(`{"subject":"s","url":"nats://n:4222"}`),
		Credentials: map[string]string{"token": "nats-token"}, Secrets: []kinehook.EndpointSecret{{Value: "whsec_c2VjcmV0"}},
		CreatedAt: time.Now().Add(time.Hour)}
	if err := s.CreateEndpoint(t.Context(), dest); err != nil {
		t.Fatal(err)
	}
	s.Close()

	both := rotatingBox{old: oldKey, new: newKey}
	s = openAt(t, path, both)
	// 2 endpoints x (secrets, password), logins are empty; the destination's
	// secrets and credentials.
	if n, err := s.ResealSecrets(t.Context(), both.reseal); err != nil || n != 6 {
		t.Fatalf("ResealSecrets = %d, %v; want 6 values", n, err)
	}
	if n, err := s.ResealSecrets(t.Context(), both.reseal); err != nil || n != 0 {
		t.Errorf("second ResealSecrets = %d, %v; want 0 (nothing left under the old key)", n, err)
	}
	failing := func([]byte) ([]byte, error) { return nil, errors.New("no such key") }
	if _, err := s.ResealSecrets(t.Context(), failing); err == nil {
		t.Error("ResealSecrets with a failing reseal returned no error")
	}
	s.Close()

	tests := []struct {
		name    string
		box     kinehook.SecretBox
		wantErr bool
	}{
		{"new key reads", newKey, false},
		{"old key fails", oldKey, true},
		{"no key fails", nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openAt(t, path, tc.box)
			eps, err := s.ListEndpoints(t.Context(), p.ID)
			if (err != nil) != tc.wantErr {
				t.Fatalf("ListEndpoints: %v, want error %v", err, tc.wantErr)
			}
			if err == nil && (len(eps) != 3 || eps[0].Password != "pw" || eps[1].Secrets[0].Value != "whsec_c2VjcmV0" ||
				eps[2].Credentials["token"] != "nats-token") {
				t.Errorf("endpoints after reseal: %+v", eps)
			}
			s.Close()
		})
	}
}

func TestRecordAttemptsEdgeCases(t *testing.T) {
	ctx := t.Context()
	s := openAt(t, filepath.Join(t.TempDir(), "kinehook.db"), nil)
	p, res := fill(t, s, 2, time.Now())
	d := res[1].Deliveries[0] // still pending
	t0 := time.Now().UTC().Truncate(time.Microsecond)
	batch := []kinehook.AttemptResult{
		// A delivery removed meanwhile is skipped, not an error.
		{Attempt: kinehook.Attempt{DeliveryID: kinehook.NewID(kinehook.PrefixDelivery), AttemptedAt: t0, StatusCode: 200},
			Status: kinehook.DeliverySucceeded, Attempts: 1},
		// Two results for one delivery in one batch: both attempts kept, the last state wins.
		{Attempt: kinehook.Attempt{DeliveryID: d.ID, AttemptedAt: t0, StatusCode: 500}, Status: kinehook.DeliveryRetrying,
			Attempts: 1, NextAttemptAt: t0.Add(time.Minute)},
		{Attempt: kinehook.Attempt{DeliveryID: d.ID, AttemptedAt: t0.Add(time.Millisecond), StatusCode: 204},
			Status: kinehook.DeliverySucceeded, Attempts: 2},
	}
	if err := s.RecordAttempts(ctx, batch); err != nil {
		t.Fatalf("RecordAttempts: %v", err)
	}
	got, err := s.GetDelivery(ctx, p.ID, d.ID)
	if err != nil || got.Status != kinehook.DeliverySucceeded || got.Attempts != 2 || got.LastStatusCode != 204 || !got.NextAttemptAt.IsZero() {
		t.Errorf("delivery after two results: %+v, %v", got, err)
	}
	atts, err := s.ListAttempts(ctx, p.ID, d.ID)
	if err != nil || len(atts) != 2 || atts[0].StatusCode != 500 || atts[1].StatusCode != 204 {
		t.Errorf("attempts: %+v, %v", atts, err)
	}
	// fill recorded 2 attempts (both deliveries of event 0); these add 2.
	if c := storetest.CheckConsistency(t, s); c.Attempts != 4 {
		t.Errorf("store holds %d attempts, want 4", c.Attempts)
	}
}

func TestBackgroundCheckpoint(t *testing.T) {
	tests := []struct {
		name     string
		interval time.Duration
		copied   bool
	}{
		{"disabled", -1, false},
		{"every 20ms", 20 * time.Millisecond, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "kinehook.db")
			s, err := sqlite.Open(t.Context(), path, sqlite.Options{Logger: quiet, CheckpointInterval: tc.interval})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			initial := fileSize(t, path)
			fill(t, s, 300, time.Now())
			// The commits are in the WAL; only a checkpoint copies them to the main file.
			wait := 3 * time.Second
			if !tc.copied {
				wait = 500 * time.Millisecond
			}
			deadline := time.Now().Add(wait)
			for time.Now().Before(deadline) && fileSize(t, path) <= initial {
				time.Sleep(20 * time.Millisecond)
			}
			if tc.copied == (fileSize(t, path) <= initial) {
				t.Errorf("main file %d -> %d bytes; want copied=%v", initial, fileSize(t, path), tc.copied)
			}
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
}
