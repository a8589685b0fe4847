package dashboard

import (
	"strings"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
)

func TestNiceTop(t *testing.T) {
	for _, tc := range []struct {
		v     float64
		whole bool
		want  float64
	}{{0, true, 4}, {3, true, 4}, {5, true, 8}, {12, true, 12}, {1000, true, 1000}, {1001, true, 1200}, {9, true, 12},
		{0.3, false, 0.4}, {1.7, false, 2}, {950, false, 1000}, {0, false, 1}} {
		if got := niceTop(tc.v, tc.whole); got != tc.want {
			t.Errorf("niceTop(%v, %v) = %v, want %v", tc.v, tc.whole, got, tc.want)
		}
	}
}

// TestChartsCarryEveryBucket: the SVG has one bucket group per bucket with
// its figures, and latency points only where attempts were made.
// Grid labels are the scale's steps, never a float's rounding error.
func TestAxisValue(t *testing.T) {
	for _, c := range []struct {
		top  float64
		want []string
	}{
		{0.8, []string{"0", "0.2", "0.4", "0.6", "0.8"}},
		{1.2, []string{"0", "0.3", "0.6", "0.9", "1.2"}},
		{0.04, []string{"0", "0.01", "0.02", "0.03", "0.04"}},
		{2000, []string{"0", "500", "1000", "1500", "2000"}},
	} {
		for i, w := range c.want {
			if got := axisValue(c.top * float64(i) / maxLabelledGridLines); got != w {
				t.Errorf("top %v line %d: %q, want %q", c.top, i, got, w)
			}
		}
	}
}

func TestChartsCarryEveryBucket(t *testing.T) {
	w, _ := kinehook.ParseStatsWindow("1h")
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	var c kinehook.StatsCounts
	c.Add(&kinehook.AttemptResult{Status: kinehook.DeliverySucceeded, Attempt: kinehook.Attempt{DurationMS: 12}})
	c.Add(&kinehook.AttemptResult{Status: kinehook.DeliveryFailed, Attempt: kinehook.Attempt{DurationMS: 700}})
	from, _ := kinehook.StatsRange(w, now)
	st := kinehook.BuildStats(w, now, []kinehook.StatsRow{{Start: from.Add(3 * time.Minute), Counts: c}})
	out := string(outcomeChart(st))
	if n := strings.Count(out, `<g class="bucket"`); n != 60 {
		t.Errorf("%d bucket groups, want 60", n)
	}
	if !strings.Contains(out, `data-start="2026-03-04T04:10:00Z" data-succeeded="1" data-failed="1" data-retried="0"`) {
		t.Errorf("bucket 3 missing its figures:\n%s", out)
	}
	if n := strings.Count(out, `<rect class="succeeded"`) + strings.Count(out, `<rect class="failed"`); n != 2 {
		t.Errorf("%d bars, want 2", n)
	}
	lat := string(latencyChart(st))
	if n := strings.Count(lat, `class="latency-point"`); n != 1 || !strings.Contains(lat, `data-p99="696"`) {
		t.Errorf("latency chart:\n%s", lat)
	}
}
