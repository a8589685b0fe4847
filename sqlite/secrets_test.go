package sqlite_test

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kinehook/kinehook/storetest"
)

// TestSealsRowsOfSchema2 opens a database an older binary (schema version 2)
// wrote: custom headers in the plain headers column, an endpoint stored
// before a key was configured (every value tagged plain), attempts
// recording a custom header's value. After Open with a key, the raw rows
// hold none of these in plain text, the endpoints read back whole, and
// attempts hold the masked value.
func TestSealsRowsOfSchema2(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kinehook.db")
	box := storetest.NewTestSecretBox(t)
	const (
		login  = "legacy-login-7f3a9c"
		token  = "Bearer legacy-token-5e8d21b4"
		apiKey = "legacy-key-0123456789abcdef"
		secret = "whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"
	)
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
	for v, name := range []string{"0001_init.sql", "0002_attempt_ids.sql"} {
		body, err := os.ReadFile(filepath.Join("migrations", name))
		if err != nil {
			t.Fatal(err)
		}
		exec(string(body))
		exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, 0)`, v+1, name)
	}
	// The rows as the version-2 code wrote them: tag byte 0 plain, 1 sealed.
	sealed := func(p string) []byte {
		c, err := box.Seal([]byte(p))
		if err != nil {
			t.Fatal(err)
		}
		return append([]byte{1}, c...)
	}
	plain := func(p string) []byte { return append([]byte{0}, p...) }
	secrets := `[{"value":"` + secret + `"}]`
	headers, _ := json.Marshal(map[string]string{"Authorization": token, "X-Api-Key": apiKey})
	now := time.Now().UnixMicro()
	exec(`INSERT INTO projects (id, name, api_key_hash, created_at) VALUES ('prj_1', 'p', x'01', ?)`, now)
	exec(`INSERT INTO endpoints (id, project_id, url, headers, secrets, login, password, created_at, updated_at)
		VALUES ('ep_1', 'prj_1', 'https://example.com/h', ?, ?, ?, ?, ?, ?)`, string(headers), sealed(secrets), sealed(login), sealed("legacy-password"), now, now)
	exec(`INSERT INTO endpoints (id, project_id, url, headers, secrets, login, password, created_at, updated_at)
		VALUES ('ep_2', 'prj_1', 'https://example.com/nokey', ?, ?, ?, ?, ?, ?)`, string(headers), plain(secrets), plain(login+"-2"), plain("nokey-password"), now, now)
	exec(`INSERT INTO attempts (delivery_id, attempted_at, status_code, error, duration_ms, response_body, request_headers)
		VALUES ('dlv_1', ?, 200, '', 1, x'', ?)`, now, `{"Content-Type":"application/json","Authorization":"Bearer [redacted]","Webhook-Id":"msg_1","X-Api-Key":"`+apiKey+`","X-Tenant":"42"}`)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	for round := range 2 { // the second Open finds nothing left to seal
		s := openAt(t, path, box)
		raw, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := raw.Query(`SELECT id, headers, secrets, login, password, headers_sealed FROM endpoints`)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for rows.Next() {
			var id, h string
			var cols [4][]byte
			if err := rows.Scan(&id, &h, &cols[0], &cols[1], &cols[2], &cols[3]); err != nil {
				t.Fatal(err)
			}
			n++
			if h != "{}" {
				t.Errorf("round %d: %s: plain headers column holds %s", round, id, h)
			}
			for i, c := range cols {
				if len(c) == 0 || c[0] != 1 {
					t.Errorf("round %d: %s: column %d not sealed: % x", round, id, i, c[:min(len(c), 8)])
				}
				for _, v := range []string{login, "legacy-token-5e8d21b4", "0123456789abcdef", "password", "c2VjcmV0"} {
					if bytes.Contains(c, []byte(v)) {
						t.Errorf("round %d: %s: %q in plain text in column %d", round, id, v, i)
					}
				}
			}
		}
		rows.Close()
		if n != 2 {
			t.Fatalf("%d endpoints", n)
		}
		for id, want := range map[string][2]string{"ep_1": {login, "legacy-password"}, "ep_2": {login + "-2", "nokey-password"}} {
			e, err := s.GetEndpoint(t.Context(), "prj_1", id)
			if err != nil {
				t.Fatal(err)
			}
			if wantH := map[string]string{"Authorization": token, "X-Api-Key": apiKey}; e.Login != want[0] || e.Password != want[1] ||
				!maps.Equal(e.Headers, wantH) || len(e.Secrets) != 1 || e.Secrets[0].Value != secret {
				t.Errorf("round %d: %s reads back %+v", round, id, e)
			}
		}
		var recorded string
		if err := raw.QueryRow(`SELECT request_headers FROM attempts`).Scan(&recorded); err != nil {
			t.Fatal(err)
		}
		var got map[string]string
		_ = json.Unmarshal([]byte(recorded), &got)
		want := map[string]string{"Content-Type": "application/json", "Authorization": "Bearer [redacted]", "Webhook-Id": "msg_1",
			"X-Api-Key": "****cdef", "X-Tenant": "****"}
		if !maps.Equal(got, want) {
			t.Errorf("round %d: attempt headers %s, want %v", round, recorded, want)
		}
		raw.Close()
		s.Close()
	}
}
