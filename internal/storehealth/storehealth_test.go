package storehealth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
)

var (
	errFull = errors.New("disk full")
	errGone = errors.New("connection lost")
)

func testClassify(err error) string {
	switch {
	case errors.Is(err, errFull):
		return kinehook.ESTORAGEFULL
	case errors.Is(err, errGone):
		return kinehook.ESTOREUNAVAILABLE
	}
	return ""
}

// lockedBuffer is a log destination safe for the probe goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestFailClassifies(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"full", fmt.Errorf("insert: %w", errFull), kinehook.ESTORAGEFULL},
		{"lost", fmt.Errorf("query: %w", errGone), kinehook.ESTOREUNAVAILABLE},
		{"ENOSPC from the OS", fmt.Errorf("write: %w", syscall.ENOSPC), kinehook.ESTORAGEFULL},
		{"EROFS from the OS", fmt.Errorf("write: %w", syscall.EROFS), kinehook.ESTOREUNAVAILABLE},
		{"a constraint", errors.New("UNIQUE constraint failed"), ""},
		{"not found", kinehook.ErrNotFound, ""},
		{"cancelled by the client", fmt.Errorf("%w: %w", context.Canceled, errGone), ""},
		{"a timeout while up", context.DeadlineExceeded, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := New(Config{Classify: testClassify, Logger: slog.New(slog.DiscardHandler)})
			defer tr.Close()
			if got := tr.Fail(tt.err); got != tt.want {
				t.Fatalf("Fail(%v) = %q, want %q", tt.err, got, tt.want)
			}
			if tr.Down() != (tt.want != "") {
				t.Fatalf("Down() = %v after %v", tr.Down(), tt.err)
			}
		})
	}
}

func TestNilTracker(t *testing.T) {
	var tr *Tracker
	if tr.Fail(errFull) != "" || tr.Down() || tr.Status().Down || tr.Outage() != "" {
		t.Fatal("a nil tracker classified something")
	}
	tr.Close()
}

// TestOutageLoggedOnce: an outage of many failures is one ERROR line, its
// end one line with the count, and readiness follows the probe.
func TestOutageLoggedOnce(t *testing.T) {
	var logs lockedBuffer
	var healthy atomic.Bool
	var probes atomic.Int32
	tr := New(Config{
		Name:     "test",
		Classify: testClassify,
		Logger:   slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Interval: 10 * time.Millisecond,
		Probe: func(context.Context) error {
			probes.Add(1)
			if healthy.Load() {
				return nil
			}
			return errFull
		},
	})
	defer tr.Close()

	if got := tr.Fail(errGone); got != kinehook.ESTOREUNAVAILABLE {
		t.Fatalf("first failure: %q", got)
	}
	for range 99 {
		tr.Fail(errFull)
	}
	// While down, a timeout is part of the outage; other errors are not.
	if got := tr.Fail(context.DeadlineExceeded); got != kinehook.ESTORAGEFULL {
		t.Fatalf("timeout while down: %q, want the outage's code", got)
	}
	if got := tr.Fail(errors.New("syntax error")); got != "" {
		t.Fatalf("unrelated error while down: %q", got)
	}
	st := tr.Status()
	if !st.Down || st.Code != kinehook.ESTORAGEFULL || st.Failed != 101 {
		t.Fatalf("status %+v: want down, storage_full (a full disk is the more precise reason), 101 failures", st)
	}
	deadline := time.Now().Add(5 * time.Second)
	for probes.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatal("the down store was not probed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !tr.Down() {
		t.Fatal("a failing probe ended the outage")
	}
	healthy.Store(true)
	for tr.Down() {
		if time.Now().After(deadline) {
			t.Fatal("a succeeding probe did not end the outage")
		}
		time.Sleep(5 * time.Millisecond)
	}
	out := logs.String()
	if n := strings.Count(out, "level=ERROR"); n != 1 {
		t.Errorf("%d ERROR lines, want 1:\n%s", n, out)
	}
	if n := strings.Count(out, "store unavailable"); n != 1 {
		t.Errorf("%d 'store unavailable' lines, want 1:\n%s", n, out)
	}
	if n := strings.Count(out, "store recovered"); n != 1 || !strings.Contains(out, "failed_meanwhile=101") {
		t.Errorf("want one 'store recovered' line with failed_meanwhile=101:\n%s", out)
	}

	// A second outage is a second pair of lines.
	healthy.Store(false)
	tr.Fail(errGone)
	if !tr.Down() || strings.Count(logs.String(), "store unavailable") != 2 {
		t.Fatalf("a new outage after recovery was not logged:\n%s", logs.String())
	}
}

// TestCloseStopsProbing: Close returns while a store is down and probing.
func TestCloseStopsProbing(t *testing.T) {
	tr := New(Config{Classify: testClassify, Logger: slog.New(slog.DiscardHandler), Interval: time.Millisecond,
		Probe: func(context.Context) error { return errGone }})
	tr.Fail(errGone)
	done := make(chan struct{})
	go func() { tr.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not stop the probe")
	}
	tr.Fail(errGone) // after Close: counted, no new probe, no panic
}
