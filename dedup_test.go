package kinehook

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestMemoryDeduperTTLAndLRU(t *testing.T) {
	ctx := context.Background()
	clock := time.Unix(1_800_000_000, 0)
	m := NewMemoryDeduper(3, time.Hour)
	m.now = func() time.Time { return clock }

	handle := func(key string) (int, bool) {
		t.Helper()
		n, seen, err := m.Claim(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if !seen {
			if err := m.Commit(ctx, key); err != nil {
				t.Fatal(err)
			}
		}
		return n, seen
	}
	for _, k := range []string{"a", "b", "c"} {
		if _, seen := handle(k); seen {
			t.Fatalf("%s seen on first claim", k)
		}
	}
	if n, seen := handle("a"); !seen || n != 2 {
		t.Fatalf("a again: attempt %d seen %v", n, seen)
	}
	handle("d") // evicts b, the least recently used
	if m.Len() != 3 {
		t.Fatalf("Len = %d, want 3", m.Len())
	}
	if _, seen := handle("b"); seen {
		t.Error("b survived eviction")
	}
	if _, seen := handle("a"); !seen {
		t.Error("a, recently used, was evicted")
	}
	clock = clock.Add(time.Hour + time.Second)
	if n, seen := handle("a"); seen || n != 1 {
		t.Errorf("a after the TTL: attempt %d seen %v, want a fresh key", n, seen)
	}
}

func TestMemoryDeduperReleaseAndInFlight(t *testing.T) {
	ctx := context.Background()
	m := NewMemoryDeduper(2, time.Hour)
	for _, k := range []string{"x", "y", "z"} {
		if _, _, err := m.Claim(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	// In-flight keys are not evicted, even over capacity.
	if m.Len() != 3 {
		t.Fatalf("Len = %d, want all three in-flight keys kept", m.Len())
	}
	for _, k := range []string{"y", "z"} {
		if err := m.Commit(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if m.Len() != 2 {
		t.Fatalf("Len = %d after commits, want back to capacity", m.Len())
	}
	// A concurrent claim waits; it gives up with its context.
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, _, err := m.Claim(short, "x"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("claim of an in-flight key = %v, want to wait until the deadline", err)
	}
	got := make(chan int)
	go func() {
		n, seen, err := m.Claim(ctx, "x")
		if err != nil || seen {
			t.Errorf("claim after release: seen %v err %v", seen, err)
		}
		got <- n
	}()
	time.Sleep(10 * time.Millisecond)
	if err := m.Release(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	if n := <-got; n != 2 {
		t.Errorf("attempt after a release = %d, want 2", n)
	}
	if err := m.Commit(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	if err := m.Commit(ctx, "x"); err == nil {
		t.Error("second Commit of x succeeded")
	}
	if err := m.Release(ctx, "never"); err == nil {
		t.Error("Release of an unclaimed key succeeded")
	}
}
