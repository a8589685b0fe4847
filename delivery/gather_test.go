package delivery

import (
	"testing"
	"time"
)

// TestGathererLinger checks when a batch waits for more work: never for a
// lone request at low load (its latency), a moment once the previous batch
// showed concurrent callers (the WAL bytes per row), and always the fixed
// window when one is set.
func TestGathererLinger(t *testing.T) {
	tests := []struct {
		name     string
		window   time.Duration
		prev     int
		late     bool // a second item arrives 20 ms after the first
		wantSize int
	}{
		{name: "alone, idle before", prev: 1, late: true, wantSize: 1},
		{name: "busy before: lingers for the late item", prev: 5, late: true, wantSize: 2},
		{name: "fixed window", window: time.Second, prev: 0, late: true, wantSize: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ch := make(chan int, 10)
			g := newGatherer(ch, func(int) int { return 1 }, 100, tc.window)
			g.linger = time.Second // long enough for the late item on a loaded machine
			g.prev = tc.prev
			if tc.late {
				go func() { time.Sleep(20 * time.Millisecond); ch <- 2 }()
			}
			start := time.Now()
			batch, open := g.fill([]int{1}, 1)
			if !open {
				t.Fatal("channel reported closed")
			}
			if len(batch) != tc.wantSize {
				t.Fatalf("batch %v, want %d items", batch, tc.wantSize)
			}
			if tc.wantSize == 1 && time.Since(start) > 15*time.Millisecond {
				t.Fatalf("a lone item waited %v", time.Since(start))
			}
			if g.prev != len(batch) {
				t.Fatalf("prev = %d, want %d", g.prev, len(batch))
			}
		})
	}
}

// TestGathererStops checks that a batch ends at max items (a request is
// never split) and that a closed channel ends the gathering.
func TestGathererStops(t *testing.T) {
	ch := make(chan int, 10)
	for i := range 5 {
		ch <- i
	}
	g := newGatherer(ch, func(v int) int { return 2 }, 5, time.Second)
	start := time.Now()
	batch, open := g.fill(nil, 0)
	if !open || len(batch) != 3 {
		t.Fatalf("batch %v open %v, want 3 items (6 >= max 5) and open", batch, open)
	}
	if time.Since(start) > 500*time.Millisecond {
		t.Fatal("a full batch waited for the window")
	}
	close(ch)
	batch, open = g.fill(nil, 0)
	if open || len(batch) != 2 {
		t.Fatalf("batch %v open %v, want the 2 left and closed", batch, open)
	}
}
