package cluster

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/kinehook/kinehook/internal/pgtest"
	"github.com/kinehook/kinehook/postgres"
)

// The tests run against a real PostgreSQL through package postgres's
// Driver: KINEHOOK_TEST_POSTGRES names a server (default the local one);
// TestMain creates a fresh database for this package and drops it at the
// end.
var (
	testDSN     string // the package's own database
	testSkipMsg string // why the tests skip (PostgreSQL unreachable, outside CI)
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	return pgtest.Main(m, func(ctx context.Context, dsn string) error {
		_, err := postgres.Migrate(ctx, dsn)
		return err
	}, &testDSN, &testSkipMsg)
}

// requirePG skips (loudly) when PostgreSQL is unreachable outside CI.
func requirePG(t testing.TB) {
	t.Helper()
	if testSkipMsg != "" {
		t.Skip(testSkipMsg)
	}
}

// openStore empties the test database and opens a store on it.
func openStore(t testing.TB) *postgres.Store {
	t.Helper()
	requirePG(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, testDSN)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `DELETE FROM settings; DELETE FROM endpoints; DELETE FROM projects;
		DELETE FROM events; DELETE FROM idempotency_keys; DELETE FROM deliveries; DELETE FROM attempts; DELETE FROM instances;
		UPDATE partition_leases SET owner = NULL, expires_at = NULL`); err != nil {
		t.Fatalf("reset database: %v", err)
	}
	s, err := postgres.Open(t.Context(), testDSN, postgres.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// newCoord returns a Coordinator over a new Driver of s (closed with s).
func newCoord(s *postgres.Store, opts Options) (*Coordinator, error) {
	d, err := postgres.NewDriver(s)
	if err != nil {
		return nil, err
	}
	return New(d, opts)
}
