package kinehook

import (
	"testing"
	"time"
)

func TestStatsQuantile(t *testing.T) {
	tests := []struct {
		name     string
		ms       []float64
		p50, p99 float64
	}{
		{"empty", nil, 0, 0},
		{"one", []float64{42}, 42, 42}, // capped by the slowest
		{"uniform in one bin", []float64{102, 120, 140, 150}, 126, 149.52},
		{"slow tail", append(repeat(3, 99), 5000), 4.01, 5}, // 99 of 100 within [3, 5]
		{"beyond the last bound", []float64{70000, 90000}, 80000, 89800},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c StatsCounts
			for _, ms := range tc.ms {
				c.Add(&AttemptResult{Status: DeliverySucceeded, Attempt: Attempt{DurationMS: ms}})
			}
			if got := c.Quantile(0.5); got != tc.p50 {
				t.Errorf("p50 = %v, want %v", got, tc.p50)
			}
			if got := c.Quantile(0.99); got != tc.p99 {
				t.Errorf("p99 = %v, want %v", got, tc.p99)
			}
		})
	}
}

func repeat(v float64, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = v
	}
	return out
}

func TestLatencyBin(t *testing.T) {
	for _, tc := range []struct {
		ms  float64
		bin int
	}{{0, 0}, {1, 0}, {1.5, 1}, {60000, len(LatencyBoundsMS) - 1}, {60001, len(LatencyBoundsMS)}} {
		if got := LatencyBin(tc.ms); got != tc.bin {
			t.Errorf("LatencyBin(%v) = %d, want %d", tc.ms, got, tc.bin)
		}
	}
}

func TestRollupAttempts(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rs := []AttemptResult{
		{EndpointID: "ep_b", ProjectID: "p", Status: DeliveryRetrying, Attempt: Attempt{AttemptedAt: at, DurationMS: 10}},
		{EndpointID: "ep_a", ProjectID: "p", Status: DeliverySucceeded, Attempt: Attempt{AttemptedAt: at, DurationMS: 5}},
		{EndpointID: "ep_b", ProjectID: "p", Status: DeliveryFailed, Attempt: Attempt{AttemptedAt: at.Add(time.Minute), DurationMS: 20}},
	}
	incs := RollupAttempts(rs, time.Time{})
	// ep_a: 3 resolutions; ep_b: 2 minutes + 1 quarter + 1 hour.
	if len(incs) != 7 {
		t.Fatalf("%d increments, want 7: %+v", len(incs), incs)
	}
	if k := incs[0].Key; k.EndpointID != "ep_a" || k.BucketSeconds != 60 || k.Start != at.Unix()-5 {
		t.Errorf("first key = %+v", k)
	}
	last := incs[len(incs)-1]
	if last.Key.EndpointID != "ep_b" || last.Key.BucketSeconds != 3600 || last.Counts.Retried != 1 || last.Counts.Failed != 1 || last.Counts.MaxMS != 20 {
		t.Errorf("ep_b's hour = %+v", last)
	}
}

func TestBuildStatsWindow(t *testing.T) {
	w, err := ParseStatsWindow("1h")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 2, 3, 4, 30, 0, time.UTC)
	from, to := StatsRange(w, now)
	if !from.Equal(time.Date(2026, 1, 2, 2, 5, 0, 0, time.UTC)) || !to.Equal(time.Date(2026, 1, 2, 3, 5, 0, 0, time.UTC)) {
		t.Fatalf("range = %v .. %v", from, to)
	}
	var c StatsCounts
	c.Add(&AttemptResult{Status: DeliverySucceeded, Attempt: Attempt{DurationMS: 7}})
	st := BuildStats(w, now, []StatsRow{{Start: from, Counts: c}, {Start: to.Add(-time.Minute), Counts: c}, {Start: from.Add(-time.Minute), Counts: c}})
	if len(st.Buckets) != 60 || st.BucketSeconds != 60 || st.Window != "1h" {
		t.Fatalf("stats = %+v", st)
	}
	if st.Buckets[0].Succeeded != 1 || st.Buckets[59].Succeeded != 1 || st.Buckets[30].Succeeded != 0 || st.Totals.Succeeded != 2 {
		t.Errorf("buckets 0/30/59 = %+v %+v %+v, totals %+v", st.Buckets[0], st.Buckets[30], st.Buckets[59], st.Totals)
	}
	if st.Buckets[0].P50MS != 7 || st.Totals.P99MS != 7 {
		t.Errorf("latency = %v / %v", st.Buckets[0].P50MS, st.Totals.P99MS)
	}
	for _, bad := range []string{"2h", "24H", "1d"} {
		if _, err := ParseStatsWindow(bad); ErrorCode(err) != EMALFORMED {
			t.Errorf("ParseStatsWindow(%q) = %v, want EMALFORMED (400)", bad, err)
		}
	}
	if w, _ := ParseStatsWindow(""); w.Name != "24h" || w.Buckets() != 96 {
		t.Errorf("default window = %+v", w)
	}
	if w, _ := ParseStatsWindow("7d"); w.Buckets() != 168 {
		t.Errorf("7d = %d buckets", w.Buckets())
	}
}

func TestRollupAttemptsManyEndpoints(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var rs []AttemptResult
	for i := range 40 {
		for range 3 {
			rs = append(rs, AttemptResult{EndpointID: string(rune('A' + i)), ProjectID: "p", Status: DeliverySucceeded, Attempt: Attempt{AttemptedAt: at}})
		}
	}
	incs := RollupAttempts(rs, at)
	if len(incs) != 40*len(StatsResolutions) {
		t.Fatalf("%d increments, want %d", len(incs), 40*len(StatsResolutions))
	}
	for _, inc := range incs {
		if inc.Counts.Succeeded != 3 {
			t.Fatalf("%+v counted %d, want 3", inc.Key, inc.Counts.Succeeded)
		}
	}
}

// FuzzStatsQuantile: for any durations, the estimates lie within the
// fastest and slowest attempt and p50 <= p99; merging two halves gives the
// same histogram as counting all; ParseStatsWindow accepts exactly the
// three names.
func FuzzStatsQuantile(f *testing.F) {
	f.Add(1.5, 250.0, 70000.0, uint8(3), "1h")
	f.Add(0.0, 0.0, 0.0, uint8(1), "")
	f.Add(5.0, 5.0, 5.0, uint8(200), "7d ")
	f.Fuzz(func(t *testing.T, a, b, c float64, n uint8, window string) {
		var all, left, right StatsCounts
		lo, hi := a, a
		for i := range int(n%50) + 1 {
			ms := []float64{a, b, c}[i%3]
			if ms != ms || ms < 0 || ms > 1e9 { // NaN, negative, absurd: not durations
				return
			}
			lo, hi = min(lo, ms), max(hi, ms)
			r := &AttemptResult{Status: DeliverySucceeded, Attempt: Attempt{DurationMS: ms}}
			all.Add(r)
			if i%2 == 0 {
				left.Add(r)
			} else {
				right.Add(r)
			}
		}
		p50, p99 := all.Quantile(0.5), all.Quantile(0.99)
		const eps = 0.001
		if p50 < lo-eps || p99 > hi+eps || p50 > p99+eps {
			t.Fatalf("durations in [%v, %v]: p50 %v, p99 %v", lo, hi, p50, p99)
		}
		left.Merge(&right)
		if left.Latency != all.Latency || left.MinMS != all.MinMS || left.MaxMS != all.MaxMS || left.Succeeded != all.Succeeded {
			t.Fatalf("merged halves %+v != all %+v", left, all)
		}
		w, err := ParseStatsWindow(window)
		switch window {
		case "", "1h", "24h", "7d":
			if err != nil || (window != "" && w.Name != window) {
				t.Fatalf("ParseStatsWindow(%q) = %+v, %v", window, w, err)
			}
		default:
			if err == nil {
				t.Fatalf("ParseStatsWindow(%q) accepted", window)
			}
		}
	})
}
