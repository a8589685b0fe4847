package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/cluster"
	"github.com/kinehook/kinehook/internal/pgtest"
	"github.com/kinehook/kinehook/postgres"
	"github.com/kinehook/kinehook/sqlite"
)

// TestRequireAbilities checks that serve's wiring refuses a store or a
// coordinator lacking an ability it needs, instead of running without it
// (before, a store without DeleteBefore silently got no retention). The
// stores are real; hiding a method is wrapping one in a struct that embeds
// only the interface.
func TestRequireAbilities(t *testing.T) {
	ctx := t.Context()
	lite, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "kinehook.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lite.Close() })
	pg, err := postgres.Open(ctx, pgtest.New(t), postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg.Close() })
	drv, err := postgres.NewDriver(pg)
	if err != nil {
		t.Fatal(err)
	}
	coord, err := cluster.New(drv, cluster.Options{})
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name      string
		st        kinehook.Store
		coord     kinehook.Coordinator
		wantErr   string // "" for success
		wantReady bool
	}{
		{name: "sqlite", st: lite},
		{name: "postgres", st: pg, coord: coord, wantReady: true},
		{name: "store without DeleteBefore", st: struct{ kinehook.Store }{lite}, wantErr: "DeleteBefore"},
		{name: "postgres store without DeleteBefore", st: struct{ kinehook.Store }{pg}, coord: coord, wantErr: "DeleteBefore"},
		{name: "coordinator without Ready", st: pg, coord: struct{ kinehook.Coordinator }{coord}, wantErr: "Ready"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := requireAbilities(tc.st, tc.coord)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("requireAbilities: %v; want an error naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("requireAbilities: %v", err)
			}
			if a.retention == nil {
				t.Error("no retention store")
			}
			if a.rejects == nil {
				t.Error("no rejected-input store")
			}
			if (a.ready != nil) != tc.wantReady {
				t.Errorf("ready set = %v, want %v", a.ready != nil, tc.wantReady)
			}
		})
	}
}
