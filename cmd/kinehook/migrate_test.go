package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// testPostgresDB creates a fresh database on KINEHOOK_TEST_POSTGRES (default
// the local server), drops it at the end, and returns its URL. Without a
// reachable PostgreSQL it fails under CI and skips loudly elsewhere.
func testPostgresDB(t testing.TB) string {
	t.Helper()
	admin := os.Getenv("KINEHOOK_TEST_POSTGRES")
	if admin == "" {
		admin = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("PostgreSQL is not reachable (%v); CI must run the PostgreSQL tests", err)
		}
		t.Skipf("SKIPPING POSTGRESQL TEST: PostgreSQL is not reachable (%v); start it or set KINEHOOK_TEST_POSTGRES", err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "kinehook_test_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		conn.Close(ctx)
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		_, err := conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		if err != nil {
			t.Logf("drop test database: %v", err)
		}
		conn.Close(context.Background())
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("KINEHOOK_TEST_POSTGRES: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

func runMigrateCmd(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	cmd := newMigrateCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

func TestMigrateCommand(t *testing.T) {
	dsn := testPostgresDB(t)
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		want    string // in the output
		wantErr string
	}{
		{name: "first run applies", args: []string{"--database", dsn}, want: "applied migrations [1]"},
		{name: "second run is a no-op", args: []string{"--database", dsn}, want: "schema is up to date"},
		{name: "from the environment", env: map[string]string{"KINEHOOK_DATABASE": dsn}, want: "schema is up to date"},
		{name: "the flag beats the environment", env: map[string]string{"KINEHOOK_DATABASE": "postgres://nobody@127.0.0.1:1/x"},
			args: []string{"--database", dsn}, want: "schema is up to date"},
		{name: "no database", env: map[string]string{"KINEHOOK_DATABASE": ""}, wantErr: "no database"},
		{name: "not postgres", args: []string{"--database", "mysql://root@127.0.0.1/db"}, wantErr: "not a postgres:// URL"},
		{name: "password redacted", args: []string{"--database", "postgres://u:hunter2@127.0.0.1:1/db?connect_timeout=2", "--timeout", "3s"}, wantErr: "***@127.0.0.1:1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runMigrateCmd(t, tc.env, tc.args...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Errorf("the error shows the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("migrate: %v (output %q)", err, out)
			}
			if !strings.Contains(out, tc.want) {
				t.Errorf("output %q, want it to contain %q", out, tc.want)
			}
		})
	}
}

// TestMigrateConcurrent starts several migrations on an empty database at
// once, as instances starting together do: the advisory lock lets exactly one
// apply the schema.
func TestMigrateConcurrent(t *testing.T) {
	dsn := testPostgresDB(t)
	const n = 4
	var (
		wg   sync.WaitGroup
		outs = make([]string, n)
		errs = make([]error, n)
	)
	for i := range n {
		wg.Go(func() {
			var out bytes.Buffer
			errs[i] = runMigrate(t.Context(), dsn, &out)
			outs[i] = out.String()
		})
	}
	wg.Wait()
	applied := 0
	for i := range n {
		if errs[i] != nil {
			t.Errorf("migration %d: %v", i, errs[i])
		}
		if strings.Contains(outs[i], "applied") {
			applied++
		}
	}
	if applied != 1 {
		t.Errorf("%d concurrent migrations applied the schema, want exactly 1: %q", applied, outs)
	}
}
