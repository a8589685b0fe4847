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
			g := newGatherer(ch, func(int) int { return 1 }, 100, tc.window, time.Second)
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
	g := newGatherer(ch, func(v int) int { return 2 }, 5, time.Second, 0)
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

// TestGathererWait checks how long a gatherer lingers after each kind of
// batch: not at all after a lone item, ShortLinger after a small batch, its
// whole linger after a busy one, and always the fixed window when set.
func TestGathererWait(t *testing.T) {
	tests := []struct {
		name   string
		window time.Duration
		linger time.Duration
		prev   int
		want   time.Duration
	}{
		{name: "first batch", linger: DefaultIngestLinger, prev: 0, want: 0},
		{name: "after a lone item", linger: DefaultIngestLinger, prev: 1, want: 0},
		{name: "after a small batch", linger: DefaultIngestLinger, prev: lingerFull - 1, want: ShortLinger},
		{name: "after a busy batch", linger: DefaultIngestLinger, prev: lingerFull, want: DefaultIngestLinger},
		{name: "result writer, busy", linger: DefaultResultLinger, prev: 50, want: DefaultResultLinger},
		{name: "linger shorter than ShortLinger", linger: 100 * time.Microsecond, prev: 2, want: 100 * time.Microsecond},
		{name: "fixed window wins", window: 5 * time.Millisecond, linger: DefaultIngestLinger, prev: 1, want: 5 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := newGatherer(make(chan int), func(int) int { return 1 }, 100, tc.window, tc.linger)
			g.prev = tc.prev
			if got := g.wait(); got != tc.want {
				t.Fatalf("wait() = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestLingerDefaults: a zero Config gets the long lingers made for SQLite;
// a set one (PostgreSQL's ShortLinger) is kept.
func TestLingerDefaults(t *testing.T) {
	c := (&Config{}).withDefaults()
	if c.IngestLinger != DefaultIngestLinger || c.ResultLinger != DefaultResultLinger {
		t.Errorf("defaults %v, %v; want %v, %v", c.IngestLinger, c.ResultLinger, DefaultIngestLinger, DefaultResultLinger)
	}
	c = (&Config{IngestLinger: ShortLinger, ResultLinger: ShortLinger}).withDefaults()
	if c.IngestLinger != ShortLinger || c.ResultLinger != ShortLinger {
		t.Errorf("set lingers became %v, %v", c.IngestLinger, c.ResultLinger)
	}
}
