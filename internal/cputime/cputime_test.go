package cputime

import (
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"cpu  100 5 50 9999 7 3 2 0 0 0\ncpu0 1 2 3\n", 160 * 10 * time.Millisecond, true},
		{"cpu0 1 2 3 4 5 6 7\n", 0, false},
		{"cpu 1 2\n", 0, false},
		{"cpu x 2 3 4 5 6 7\n", 0, false},
	} {
		got, ok := parseStat(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseStat(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestSelfGrowsWithWork(t *testing.T) {
	before := Self()
	deadline := time.Now().Add(50 * time.Millisecond)
	x := 0
	for time.Now().Before(deadline) {
		x++
	}
	if after := Self(); after <= before {
		t.Fatalf("CPU time %v -> %v after 50 ms of work (%d loops)", before, after, x)
	}
}
