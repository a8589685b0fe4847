package postgres

import (
	"strings"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/internal/pgtest"
	"github.com/kinehook/kinehook/storetest"
)

// TestKeysMigrated opens a database of schema 4 (one key per project, in
// projects.api_key_hash): each project's key becomes its first API key,
// "default" with scope full, and the old column is gone.
func TestKeysMigrated(t *testing.T) {
	ctx := t.Context()
	dsn, conn := freshDB(t)
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.version > 4 {
			break
		}
		if _, err := conn.Exec(ctx, m.sql); err != nil {
			t.Fatalf("migration %s: %v", m.name, err)
		}
		if _, err := conn.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.version, m.name); err != nil {
			t.Fatal(err)
		}
	}
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for pid, key := range map[string]string{"prj_a": "kh_legacyA", "prj_b": "kh_legacyB"} {
		if _, err := conn.Exec(ctx, `INSERT INTO projects (id, name, api_key_hash, created_at) VALUES ($1, 'p', $2, $3)`,
			pid, kinehook.HashKey(key), created); err != nil {
			t.Fatal(err)
		}
	}
	s, err := Open(ctx, dsn, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	ids := map[string]bool{}
	for pid, key := range map[string]string{"prj_a": "kh_legacyA", "prj_b": "kh_legacyB"} {
		k, p, err := s.KeyByHash(ctx, kinehook.HashKey(key))
		if err != nil {
			t.Fatalf("KeyByHash(%s): %v", key, err)
		}
		if p.ID != pid || k.Name != "default" || k.Scope != kinehook.ScopeFull || k.Prefix != "" || !k.CreatedAt.Equal(created) ||
			!strings.HasPrefix(k.ID, "key_") || len(k.ID) != len("key_")+26 {
			t.Errorf("migrated key of %s = %+v (project %s)", pid, k, p.ID)
		}
		ids[k.ID] = true
	}
	if len(ids) != 2 {
		t.Errorf("migrated keys share an id: %v", ids)
	}
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM information_schema.columns WHERE table_name = 'projects' AND column_name = 'api_key_hash'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("projects.api_key_hash still exists (%d, %v)", n, err)
	}
}

// TestDeleteProjectLeavesNoAttempt: a result in flight when its project was
// deleted leaves no attempt row behind (attempts have no foreign key here).
func TestDeleteProjectLeavesNoAttempt(t *testing.T) {
	requirePG(t)
	ctx := t.Context()
	s, err := Open(ctx, pgtest.New(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p, _ := storetest.NewProject(t, s, 1)
	res, err := s.IngestEvents(ctx, []*kinehook.Event{storetest.NewEvent(p.ID, "v1", time.Now())})
	if err != nil {
		t.Fatal(err)
	}
	d := res[0].Deliveries[0]
	if err := s.DeleteProject(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordAttempts(ctx, []kinehook.AttemptResult{{Attempt: kinehook.Attempt{DeliveryID: d.ID, AttemptedAt: time.Now(), StatusCode: 200},
		Status: kinehook.DeliverySucceeded, Attempts: 1}}); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM attempts WHERE delivery_id = $1`, d.ID).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d attempts of a deleted project's delivery (%v), want none", n, err)
	}
}
