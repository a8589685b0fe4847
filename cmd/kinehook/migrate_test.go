package main

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/kinehook/kinehook/internal/pgtest"
	"github.com/kinehook/kinehook/postgres"
)

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
	dsn := pgtest.New(t)
	// Every migration the binary embeds (numbers may have gaps: parallel
	// branches take numbers of their own).
	files, err := filepath.Glob("../../postgres/migrations/*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("postgres migrations: %v", err)
	}
	var all []int
	for _, f := range files {
		v, err := strconv.Atoi(strings.SplitN(filepath.Base(f), "_", 2)[0])
		if err != nil {
			t.Fatalf("migration file %s: %v", f, err)
		}
		all = append(all, v)
	}
	slices.Sort(all)
	if all[len(all)-1] != postgres.SchemaVersion() {
		t.Fatalf("newest migration file %d, SchemaVersion %d", all[len(all)-1], postgres.SchemaVersion())
	}
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		want    string // in the output
		wantErr string
	}{
		{name: "first run applies", args: []string{"--database", dsn}, want: fmt.Sprintf("applied migrations %v", all)},
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
	dsn := pgtest.New(t)
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
