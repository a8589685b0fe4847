package sqlite_test

import (
	"bytes"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
)

// TestKeysMigrated opens a database of schema 5 (one key per project, in
// projects.api_key_hash): each project's key becomes its first API key,
// "default" with scope full, and the old column no longer holds the hash.
func TestKeysMigrated(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kinehook.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.Exec(q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`)
	for _, name := range []string{"0001_init.sql", "0002_attempt_ids.sql", "0003_sealed_headers.sql", "0004_endpoints_page.sql", "0005_lean_indexes.sql"} {
		body, err := os.ReadFile(filepath.Join("migrations", name))
		if err != nil {
			t.Fatal(err)
		}
		exec(string(body))
		exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, 0)`, int(name[3]-'0'), name)
	}
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	exec(`INSERT INTO projects (id, name, api_key_hash, created_at) VALUES ('prj_a', 'a', ?, ?)`, kinehook.HashKey("kh_legacyA"), created.UnixMicro())
	exec(`INSERT INTO projects (id, name, api_key_hash, created_at) VALUES ('prj_b', 'b', ?, ?)`, kinehook.HashKey("kh_legacyB"), created.UnixMicro())
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s := openAt(t, path, nil)
	ids := map[string]bool{}
	for pid, key := range map[string]string{"prj_a": "kh_legacyA", "prj_b": "kh_legacyB"} {
		k, p, err := s.KeyByHash(t.Context(), kinehook.HashKey(key))
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
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	rows, err := raw.Query(`SELECT api_key_hash FROM projects`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var h []byte
		if err := rows.Scan(&h); err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(h, kinehook.HashKey("kh_legacyA")) || bytes.Equal(h, kinehook.HashKey("kh_legacyB")) {
			t.Errorf("projects.api_key_hash still holds a key's hash")
		}
	}
}
