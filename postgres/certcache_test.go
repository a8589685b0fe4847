package postgres

import (
	"bytes"
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/storetest"
)

// TestCertCache: the ACME cache round-trips, misses are ErrNotFound, and
// what it holds (certificate private keys) is sealed at rest.
func TestCertCache(t *testing.T) {
	s := openTestStore(t, Options{SecretBox: storetest.NewTestSecretBox(t)})
	ctx := context.Background()
	if _, err := s.CacheGet(ctx, "acme_account+key"); kinehook.ErrorCode(err) != kinehook.ENOTFOUND {
		t.Fatalf("a miss: %v", err)
	}
	secret := []byte("-----BEGIN EC PRIVATE KEY-----\nvery-secret-key-material\n")
	if err := s.CachePut(ctx, "example.com", secret); err != nil {
		t.Fatal(err)
	}
	got, err := s.CacheGet(ctx, "example.com")
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("get = %q, %v", got, err)
	}
	conn, err := pgx.Connect(ctx, testDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var raw []byte
	if err := conn.QueryRow(ctx, `SELECT data FROM acme_cache WHERE key = 'example.com'`).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("very-secret-key-material")) {
		t.Errorf("the cache holds a private key in plain text")
	}
	if err := s.CacheDelete(ctx, "example.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CacheGet(ctx, "example.com"); kinehook.ErrorCode(err) != kinehook.ENOTFOUND {
		t.Fatalf("after delete: %v", err)
	}
}
