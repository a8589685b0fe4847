// Package pgtest gives tests a fresh PostgreSQL database of their own on the
// server named by KINEHOOK_TEST_POSTGRES (default the local one), so test
// runs and packages never collide. Without a reachable server the tests fail
// under CI (CI must never skip them silently) and skip loudly elsewhere.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultServer is used when KINEHOOK_TEST_POSTGRES is unset.
const DefaultServer = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// Server returns the URL of the PostgreSQL server tests use.
func Server() string {
	if s := os.Getenv("KINEHOOK_TEST_POSTGRES"); s != "" {
		return s
	}
	return DefaultServer
}

// ErrUnreachable wraps the connection error when the server does not answer.
type ErrUnreachable struct{ Err error }

func (e *ErrUnreachable) Error() string {
	return fmt.Sprintf("PostgreSQL at %s is not reachable (%v)", Redact(Server()), e.Err)
}

func (e *ErrUnreachable) Unwrap() error { return e.Err }

// Create makes a database kinehook_test_<random> and returns its URL and a
// function that drops it. Use it from TestMain; tests use New.
func Create(ctx context.Context) (dsn string, drop func(), err error) {
	server := Server()
	u, err := url.Parse(server)
	if err != nil || u.Scheme == "" {
		return "", nil, fmt.Errorf("KINEHOOK_TEST_POSTGRES must be a postgres:// URL, got %q", server)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, server)
	if err != nil {
		return "", nil, &ErrUnreachable{Err: err}
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "kinehook_test_" + hex.EncodeToString(b)
	if _, err := conn.Exec(cctx, "CREATE DATABASE "+name); err != nil {
		conn.Close(context.Background())
		return "", nil, fmt.Errorf("create test database: %w", err)
	}
	drop = func() {
		if _, err := conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest: drop test database:", err)
		}
		conn.Close(context.Background())
	}
	u.Path = "/" + name
	return u.String(), drop, nil
}

// New returns the URL of a fresh database dropped when t ends. When the
// server is unreachable it fails under CI and skips loudly otherwise.
func New(t testing.TB) string {
	t.Helper()
	dsn, drop, err := Create(context.Background())
	if err != nil {
		Unavailable(t, err)
	}
	t.Cleanup(drop)
	return dsn
}

// Unavailable ends t for err: t.Fatal under CI or for any error but an
// unreachable server, a loud t.Skip otherwise.
func Unavailable(t testing.TB, err error) {
	t.Helper()
	var ue *ErrUnreachable
	if os.Getenv("CI") != "" || !errors.As(err, &ue) {
		t.Fatalf("%v; CI must run the PostgreSQL tests (.ci/run starts PostgreSQL)", err)
	}
	t.Skipf("SKIPPING POSTGRESQL TEST: %v; start PostgreSQL or set KINEHOOK_TEST_POSTGRES", err)
}

// Redact hides the password of a database URL.
func Redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}

// Main runs a package's tests (call it from TestMain) against a database of
// their own, made here and dropped after them. setup runs on it first (a
// migration). It sets *dsn to the database's URL, or *skip to why the tests
// skip (PostgreSQL unreachable outside CI; under CI that fails instead), and
// returns the exit code for os.Exit.
func Main(m *testing.M, setup func(ctx context.Context, dsn string) error, dsn, skip *string) int {
	url, drop, err := Create(context.Background())
	var unreachable *ErrUnreachable
	switch {
	case errors.As(err, &unreachable) && os.Getenv("CI") == "":
		*skip = "SKIPPING POSTGRESQL TESTS: " + err.Error() + ". Start PostgreSQL or set KINEHOOK_TEST_POSTGRES."
		fmt.Fprintln(os.Stderr, "!!!!! "+*skip)
		return m.Run()
	case err != nil:
		fmt.Fprintln(os.Stderr, "FAIL:", err, "; CI must run the PostgreSQL tests (see .ci/run)")
		return 1
	}
	defer drop()
	*dsn = url
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := setup(ctx, url); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: set up the test database:", err)
		return 1
	}
	return m.Run()
}
