package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// The tests run against a real PostgreSQL: KINEHOOK_TEST_POSTGRES names a
// server (default the local one); TestMain creates a fresh database
// kinehook_test_<random> for this package and drops it at the end, so runs
// never collide.
const defaultTestDSN = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

var (
	testDSN     string // the package's own database
	testSkipMsg string // why the tests skip (PostgreSQL unreachable, outside CI)
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	admin := os.Getenv("KINEHOOK_TEST_POSTGRES")
	if admin == "" {
		admin = defaultTestDSN
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	conn, err := pgx.Connect(ctx, admin)
	cancel()
	if err != nil {
		msg := fmt.Sprintf("PostgreSQL at %s is not reachable (%v)", redact(admin), err)
		if os.Getenv("CI") != "" {
			fmt.Fprintln(os.Stderr, "FAIL: "+msg+"; CI must run the PostgreSQL tests (see .ci/run)")
			return 1
		}
		testSkipMsg = "SKIPPING POSTGRESQL TESTS: " + msg + ". Start PostgreSQL or set KINEHOOK_TEST_POSTGRES."
		fmt.Fprintln(os.Stderr, "!!!!! "+testSkipMsg)
		return m.Run()
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "kinehook_test_" + hex.EncodeToString(b)
	if _, err := conn.Exec(context.Background(), "CREATE DATABASE "+name); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: create test database:", err)
		return 1
	}
	defer func() {
		_, err := conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		if err != nil {
			fmt.Fprintln(os.Stderr, "warning: drop test database:", err)
		}
		conn.Close(context.Background())
	}()
	u, err := url.Parse(admin)
	if err != nil || u.Scheme == "" {
		fmt.Fprintln(os.Stderr, "FAIL: KINEHOOK_TEST_POSTGRES must be a postgres:// URL:", admin)
		return 1
	}
	u.Path = "/" + name
	testDSN = u.String()
	mctx, mcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer mcancel()
	if _, err := Migrate(mctx, testDSN); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: migrate the test database:", err)
		return 1
	}
	return m.Run()
}

func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
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
