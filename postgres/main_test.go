package postgres

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/kinehook/kinehook/internal/pgtest"
)

// The tests run against a real PostgreSQL: KINEHOOK_TEST_POSTGRES names a
// server (default the local one); TestMain creates a fresh database
// kinehook_test_<random> for this package and drops it at the end, so runs
// never collide.
var (
	testDSN     string // the package's own database
	testSkipMsg string // why the tests skip (PostgreSQL unreachable, outside CI)
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	return pgtest.Main(m, func(ctx context.Context, dsn string) error {
		_, err := Migrate(ctx, dsn)
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

// resetDB empties every table of the test database (the schema stays).
func resetDB(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, testDSN)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `DELETE FROM settings; DELETE FROM endpoints; DELETE FROM projects;
		DELETE FROM events; DELETE FROM idempotency_keys; DELETE FROM deliveries; DELETE FROM attempts; DELETE FROM instances;
		DELETE FROM inbox_sources; DELETE FROM inbox_latest; DELETE FROM resource_state; DELETE FROM state_counts; DELETE FROM acme_cache;
		UPDATE partition_leases SET owner = NULL, expires_at = NULL`); err != nil {
		t.Fatalf("reset database: %v", err)
	}
}

// openTestStore returns a Store on the emptied test database.
func openTestStore(t testing.TB, opts Options) *Store {
	t.Helper()
	requirePG(t)
	resetDB(t)
	s, err := Open(t.Context(), testDSN, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// freshDB returns the URL of a fresh, empty database of its own (dropped
// when t ends) and a connection to it, for tests that set a database up by
// hand: an older schema, or settings of their own.
func freshDB(t *testing.T) (string, *pgx.Conn) {
	t.Helper()
	requirePG(t)
	dsn := pgtest.New(t)
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return dsn, conn
}
