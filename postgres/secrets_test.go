package postgres

import (
	"bytes"
	"encoding/json"
	"maps"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/storetest"
)

// TestSealsRowsOfSchema2 opens a database an older binary (schema version 2)
// wrote: its Basic Auth login and custom headers in plain text, attempts
// recording a custom header's value. After Open, the raw rows hold neither,
// the endpoint reads back whole, and attempts hold the masked value.
func TestSealsRowsOfSchema2(t *testing.T) {
	ctx := t.Context()
	dsn, conn := freshDB(t)
	box := storetest.NewTestSecretBox(t)
	const (
		login  = "legacy-login-7f3a9c"
		token  = "Bearer legacy-token-5e8d21b4"
		apiKey = "legacy-key-0123456789abcdef"
	)
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.version > 2 {
			break
		}
		if _, err := conn.Exec(ctx, m.sql); err != nil {
			t.Fatalf("migration %s: %v", m.name, err)
		}
		if _, err := conn.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.version, m.name); err != nil {
			t.Fatal(err)
		}
	}
	// The rows as the version-2 code wrote them.
	secrets, _ := box.Seal([]byte(`[{"value":"whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}]`))
	password, _ := box.Seal([]byte("legacy-password"))
	headers, _ := json.Marshal(map[string]string{"Authorization": token, "X-Api-Key": apiKey})
	now := time.Now().UTC()
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO projects (id, name, api_key_hash, created_at) VALUES ('prj_1', 'p', '\x01', $1)`, []any{now}},
		{`INSERT INTO endpoints (id, project_id, url, headers, secrets, login, password, created_at, updated_at)
			VALUES ('ep_1', 'prj_1', 'https://example.com/h', $1, $2, $3, $4, $5, $5)`, []any{headers, secrets, login, password, now}},
		{`INSERT INTO endpoints (id, project_id, url, secrets, created_at, updated_at)
			VALUES ('ep_2', 'prj_1', 'https://example.com/bare', $1, $2, $2)`, []any{secrets, now}},
		{`INSERT INTO attempts (delivery_id, attempted_at, status_code, error, duration_ms, response_body, request_headers)
			VALUES ('dlv_1', $1, 200, '', 1, '', $2)`, []any{now, `{"Content-Type": "application/json", "Authorization": "Bearer [redacted]",
			"Webhook-Id": "msg_1", "X-Api-Key": "` + apiKey + `", "X-Tenant": "42"}`}},
	} {
		if _, err := conn.Exec(ctx, q.sql, q.args...); err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
	}

	for round := range 2 { // the second Open finds nothing left to seal
		s, err := Open(ctx, dsn, Options{SecretBox: box})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer s.Close()
		var (
			rawLogin, rawHeaders     string
			loginSealed, headersSeal []byte
		)
		if err := s.pool.QueryRow(ctx, `SELECT login, headers::text, login_sealed, headers_sealed FROM endpoints WHERE id = 'ep_1'`).
			Scan(&rawLogin, &rawHeaders, &loginSealed, &headersSeal); err != nil {
			t.Fatal(err)
		}
		if rawLogin != "" || rawHeaders != "{}" || len(loginSealed) == 0 || len(headersSeal) == 0 {
			t.Errorf("round %d: raw row: login %q, headers %s, %d bytes of sealed login, %d of sealed headers", round, rawLogin, rawHeaders, len(loginSealed), len(headersSeal))
		}
		raw := dumpTables(t, s)
		for _, v := range []string{login, "legacy-token-5e8d21b4", "0123456789abcdef", "legacy-password"} {
			if bytes.Contains(raw, []byte(v)) {
				t.Errorf("round %d: %q in plain text in the raw rows", round, v)
			}
		}
		e, err := s.GetEndpoint(ctx, "prj_1", "ep_1")
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string]string{"Authorization": token, "X-Api-Key": apiKey}; e.Login != login || e.Password != "legacy-password" || !maps.Equal(e.Headers, want) {
			t.Errorf("round %d: endpoint reads back login %q, password %q, headers %v", round, e.Login, e.Password, e.Headers)
		}
		if bare, err := s.GetEndpoint(ctx, "prj_1", "ep_2"); err != nil || bare.Login != "" || bare.Headers != nil {
			t.Errorf("round %d: endpoint without login or headers reads back %+v, %v", round, bare, err)
		}
		var recorded map[string]string
		if err := s.pool.QueryRow(ctx, `SELECT request_headers FROM attempts`).Scan(&recorded); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"Content-Type": "application/json", "Authorization": "Bearer [redacted]", "Webhook-Id": "msg_1",
			"X-Api-Key": "****cdef", "X-Tenant": "****"}
		if !maps.Equal(recorded, want) {
			t.Errorf("round %d: attempt headers %v, want %v", round, recorded, want)
		}
		s.Close()
	}

	// An instance of an older release writes the plain columns: that value
	// is the newer one, read as such, and sealed at the next Open.
	s, err := Open(ctx, dsn, Options{SecretBox: box})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `UPDATE endpoints SET login = 'newer-login', headers = '{"X-Newer": "v"}' WHERE id = 'ep_1'`); err != nil {
		t.Fatal(err)
	}
	if e, err := s.GetEndpoint(ctx, "prj_1", "ep_1"); err != nil || e.Login != "newer-login" || e.Headers["X-Newer"] != "v" || len(e.Headers) != 1 {
		t.Errorf("an older instance's write reads back as %+v, %v", e, err)
	}
	s.Close()
	// Key rotation re-seals the login and the headers too.
	s, err = Open(ctx, dsn, Options{SecretBox: box})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if e, err := s.GetEndpoint(ctx, "prj_1", "ep_1"); err != nil || e.Login != "newer-login" || e.Headers["X-Newer"] != "v" {
		t.Errorf("after Open sealed an older instance's write: %+v, %v", e, err)
	}
	var plainLogin string
	if err := s.pool.QueryRow(ctx, `SELECT login FROM endpoints WHERE id = 'ep_1'`).Scan(&plainLogin); err != nil || plainLogin != "" {
		t.Errorf("after Open the plain login column holds %q (%v)", plainLogin, err)
	}
	if _, err := conn.Exec(ctx, `UPDATE endpoints SET login = $1, headers = $2 WHERE id = 'ep_1'`, login, headers); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = Open(ctx, dsn, Options{SecretBox: box}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dest := &kinehook.Endpoint{ID: "ep_3", ProjectID: "prj_1", Type: kinehook.EndpointNATS,
		Config:      json.RawMessage(`{"subject":"s","url":"nats://n:4222"}`),
		Credentials: map[string]string{"token": "nats-token-8c1f"}, Secrets: []kinehook.EndpointSecret{{Value: "whsec_c2VjcmV0"}}}
	if err := s.CreateEndpoint(ctx, dest); err != nil {
		t.Fatal(err)
	}
	var sealedCreds []byte
	if err := s.pool.QueryRow(ctx, `SELECT credentials FROM endpoints WHERE id = 'ep_3'`).Scan(&sealedCreds); err != nil {
		t.Fatal(err)
	}
	n, err := s.ResealSecrets(ctx, func(b []byte) ([]byte, error) {
		p, err := box.Open(b)
		if err != nil {
			return nil, err
		}
		return box.Seal(p) // a fresh nonce: every value changes
	})
	if err != nil || n != 7 { // ep_1: secrets, password, login, headers; ep_2: secrets; ep_3: secrets, credentials
		t.Errorf("ResealSecrets = %d, %v; want 7 values", n, err)
	}
	var resealed []byte
	if err := s.pool.QueryRow(ctx, `SELECT credentials FROM endpoints WHERE id = 'ep_3'`).Scan(&resealed); err != nil || bytes.Equal(resealed, sealedCreds) {
		t.Errorf("credentials not re-sealed (%v)", err)
	}
	if e, err := s.GetEndpoint(ctx, "prj_1", "ep_3"); err != nil || e.Credentials["token"] != "nats-token-8c1f" {
		t.Errorf("destination after re-sealing: %+v, %v", e, err)
	}
	if e, err := s.GetEndpoint(ctx, "prj_1", "ep_1"); err != nil || e.Login != login || e.Headers["Authorization"] != token {
		t.Errorf("after re-sealing: %+v, %v", e, err)
	}
}
