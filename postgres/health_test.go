package postgres

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/kinehook/kinehook"
)

// TestClassify: errors PostgreSQL and pgx really give, sorted into a
// database outage and the failure of one statement.
func TestClassify(t *testing.T) {
	requirePG(t)
	ctx := t.Context()
	connect := func() *pgx.Conn {
		c, err := pgx.Connect(ctx, testDSN)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(context.Background()) })
		return c
	}
	c := connect()
	_, divErr := c.Exec(ctx, `SELECT 1/0`)
	_, syntaxErr := c.Exec(ctx, `SELEC 1`)
	noRows := c.QueryRow(ctx, `SELECT 1 WHERE false`).Scan(new(int))

	// A backend terminated by an administrator (what a restart does to
	// every connection).
	victim := connect()
	var pid int
	if err := victim.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, `SELECT pg_terminate_backend($1)`, pid); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	_, terminated := victim.Exec(ctx, `SELECT 1`)
	_, closed := victim.Exec(ctx, `SELECT 1`)

	// Nobody listening.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, refused := pgx.Connect(cctx, fmt.Sprintf("postgres://postgres@%s/postgres?sslmode=disable&connect_timeout=2", addr))

	tests := []struct {
		name string
		err  error
		want string
	}{
		{"division by zero", divErr, ""},
		{"syntax error", syntaxErr, ""},
		{"no rows", noRows, ""},
		{"terminated backend", terminated, kinehook.ESTOREUNAVAILABLE},
		{"closed connection", closed, kinehook.ESTOREUNAVAILABLE},
		{"connection refused", refused, kinehook.ESTOREUNAVAILABLE},
		// A full disk cannot be made on a shared server: its SQLSTATE.
		{"disk full", fmt.Errorf("postgres: ingest: %w", &pgconn.PgError{Code: "53100", Message: "could not extend file"}), kinehook.ESTORAGEFULL},
		{"starting up", &pgconn.PgError{Code: "57P03", Message: "the database system is starting up"}, kinehook.ESTOREUNAVAILABLE},
		{"read-only", &pgconn.PgError{Code: "25006", Message: "cannot execute INSERT in a read-only transaction"}, kinehook.ESTOREUNAVAILABLE},
		{"unique violation", &pgconn.PgError{Code: "23505"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.err == nil {
				t.Fatal("no error to classify")
			}
			if got := classify(wrap("op", tt.err)); got != tt.want {
				t.Errorf("classify(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}

// TestProbe: the probe writes through the pool, and fails when the
// database cannot be reached.
func TestProbe(t *testing.T) {
	s := openTestStore(t, Options{})
	if err := s.probe(t.Context()); err != nil {
		t.Fatalf("probe on a healthy database: %v", err)
	}
	s.pool.Close()
	if err := s.probe(t.Context()); err == nil {
		t.Fatal("probe on a closed pool succeeded")
	}
}
