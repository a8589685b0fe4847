package sqlite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestFullFileOutage fills the database the way a full disk does (SQLite's
// max_page_count answers the same SQLITE_FULL, without needing root for a
// small file system): the failure is classified storage_full and marks the
// store down; the probe keeps it down while nothing can be written and
// brings it back by itself once the file can grow again.
func TestFullFileOutage(t *testing.T) {
	ctx := context.Background()
	var logs syncBuf
	s, err := Open(ctx, filepath.Join(t.TempDir(), "k.db"), Options{Logger: slog.New(slog.NewTextHandler(&logs, nil)), CheckpointInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var pages int
	if err := s.w.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.ExecContext(ctx, fmt.Sprintf(`PRAGMA max_page_count = %d`, pages+2)); err != nil {
		t.Fatal(err)
	}
	var fullErr error
	for i := 0; i < 100 && fullErr == nil; i++ {
		p := &kinehook.Project{ID: kinehook.NewID(kinehook.PrefixProject), Name: strings.Repeat("x", 8000)}
		fullErr = s.CreateProject(ctx, p, []byte(p.ID))
	}
	if fullErr == nil {
		t.Fatal("the capped file never filled")
	}
	h := s.health
	if code := h.Fail(fullErr); code != kinehook.ESTORAGEFULL {
		t.Fatalf("Fail(%v) = %q, want %q", fullErr, code, kinehook.ESTORAGEFULL)
	}
	if code := h.Fail(errors.New("sqlite: UNIQUE constraint failed")); code != "" {
		t.Fatalf("a constraint error classified as %q", code)
	}
	time.Sleep(1500 * time.Millisecond) // a few probes, all failing
	if !h.Down() {
		t.Fatal("the probe called a full file healthy")
	}
	if _, err := s.w.ExecContext(ctx, `PRAGMA max_page_count = 1073741823`); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for h.Down() {
		if time.Now().After(deadline) {
			t.Fatalf("no recovery once the file could grow:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	out := logs.String()
	if strings.Count(out, "store unavailable") != 1 || strings.Count(out, "store recovered") != 1 || !strings.Contains(out, "failed_meanwhile=1") {
		t.Fatalf("want one outage line and one recovery line counting 1 failure:\n%s", out)
	}
	var left int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM settings WHERE key = 'store_probe'`).Scan(&left); err != nil || left != 0 {
		t.Fatalf("the probe left its row behind: %d %v", left, err)
	}
}
