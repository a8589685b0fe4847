package bench

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
)

func TestBodiesAreValidAndDistinct(t *testing.T) {
	b, err := newBodies()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i := range 50 {
		ev, err := kinehook.ParseStrict(b.body(i))
		if err != nil {
			t.Fatalf("body %d is not a valid event: %v\n%s", i, err, b.body(i))
		}
		key := ev.ResourceKey()
		if len(key) != 36 || seen[key] {
			t.Fatalf("body %d resource key %q: want a fresh UUID-shaped id", i, key)
		}
		seen[key] = true
	}
}

func TestPercentiles(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i
	}
	tests := []struct {
		name          string
		in            []time.Duration
		p50, p99, max float64
	}{
		{"empty", nil, 0, 0, 0},
		{"one", ms(7), 7, 7, 7},
		{"two", ms(9, 1), 1, 9, 9},
		{"hundred reversed", ms(hundred...), 50, 99, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p50, p99, mx := percentiles(tt.in)
			if p50 != tt.p50 || p99 != tt.p99 || mx != tt.max {
				t.Errorf("percentiles = %v %v %v, want %v %v %v", p50, p99, mx, tt.p50, tt.p99, tt.max)
			}
		})
	}
}

func TestParseStatCPU(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"plain", "42 (kinehook) S 1 42 42 0 -1 4194560 100 0 0 0 150 25 0 0 20 0 8 0 100 0 0", 1750 * time.Millisecond, false},
		{"name with spaces and parens", "42 (a b) c) R 1 42 42 0 -1 0 0 0 0 0 3 4 0 0", 70 * time.Millisecond, false},
		{"no name", "42 kinehook S", 0, true},
		{"short", "42 (x) S 1 2", 0, true},
		{"not numbers", "42 (x) S 1 42 42 0 -1 0 0 0 0 0 u s 0 0", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatCPU([]byte(tt.in))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseStatCPU = %v, %v; want %v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseStatusMem(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		peak, rss int64
		wantErr   bool
	}{
		{"both", "Name:\tkinehook\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n", 2 << 20, 1 << 20, false},
		{"missing rss", "VmHWM:\t 1 kB\n", 0, 0, true},
		{"bad unit", "VmHWM:\t 1 MB\nVmRSS:\t 1 kB\n", 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			peak, rss, err := parseStatusMem([]byte(tt.in))
			if (err != nil) != tt.wantErr || peak != tt.peak || rss != tt.rss {
				t.Errorf("parseStatusMem = %d %d %v; want %d %d error %v", peak, rss, err, tt.peak, tt.rss, tt.wantErr)
			}
		})
	}
	peak, rss, err := procMem(0)
	if err != nil || peak <= 0 || rss <= 0 || rss > peak {
		t.Errorf("procMem(self) = %d %d %v", peak, rss, err)
	}
}

func FuzzParseProc(f *testing.F) {
	f.Add("1 (x) S 1 1 1 0 -1 0 0 0 0 0 5 6 0 0")
	f.Add("VmHWM:\t2 kB\nVmRSS:\t1 kB\n")
	f.Fuzz(func(t *testing.T, s string) {
		if d, err := parseStatCPU([]byte(s)); err == nil && d < 0 && !strings.Contains(s, "-") {
			t.Errorf("negative CPU %v from %q", d, s)
		}
		if peak, rss, err := parseStatusMem([]byte(s)); err != nil && (peak != 0 || rss != 0) {
			t.Errorf("error %v with figures %d %d", err, peak, rss)
		}
	})
}

func TestSinkCountsAndWaits(t *testing.T) {
	s, err := NewSink(http.StatusNoContent)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	send := func(path, id string) int {
		req, _ := http.NewRequest(http.MethodPost, s.URL+path, strings.NewReader("{}"))
		req.Header.Set(kinehook.HeaderID, id)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	s.Reset(3)
	for _, id := range []string{"a", "b", "a"} {
		if code := send("/e/0", id); code != http.StatusNoContent {
			t.Fatalf("status %d", code)
		}
	}
	send("/e/1", "a") // the same event at another endpoint is another delivery
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Wait(ctx); err != nil {
		t.Fatalf("wait: %v", err)
	}
	distinct, dups, hits, last := s.Stats()
	if distinct != 3 || dups != 1 || hits != 4 || last.IsZero() {
		t.Errorf("stats = %d distinct %d dups %d hits %v", distinct, dups, hits, last)
	}
	if _, ok := s.Arrival("/e/1", "a"); !ok {
		t.Error("no arrival recorded for /e/1 a")
	}

	s.Reset(1)
	s.SetStatus(http.StatusServiceUnavailable)
	if code := send("/e/0", "c"); code != http.StatusServiceUnavailable {
		t.Errorf("down sink answered %d", code)
	}
	short, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if err := s.Wait(short); err == nil {
		t.Error("Wait returned although a down sink delivered nothing")
	}
	s.SetWant(0)
	if distinct, _, hits, _ := s.Stats(); distinct != 0 || hits != 1 {
		t.Errorf("down sink stats = %d distinct, %d hits", distinct, hits)
	}
}

func TestJudge(t *testing.T) {
	tests := []struct {
		backend string
		res     Result
		pass    bool
	}{
		{"sqlite", Result{Scenario: Throughput, DeliveriesPerSec: 12000}, true}, // 12000/30000 = 0.4
		{"sqlite", Result{Scenario: Throughput, DeliveriesPerSec: 9000}, false}, // below 10k
		{"sqlite", Result{Scenario: Batch, DeliveriesPerSec: 12000}, true},      // as throughput
		{"sqlite", Result{Scenario: Batch, DeliveriesPerSec: 8000}, false},
		{"postgres", Result{Scenario: Throughput, DeliveriesPerSec: 6000}, true}, // no ratio goal
		{"sqlite", Result{Scenario: Fanout, DeliveriesPerSec: 9999}, false},      // below 10k
		{"sqlite", Result{Scenario: Latency, P99Ms: 21}, false},                  // over 20 ms
		{"postgres", Result{Scenario: Latency, P99Ms: 21}, true},                 // within 30 ms
		{"sqlite", Result{Scenario: Backlog, Events: 100000, PeakRSSMB: 151}, false},
	}
	for _, tt := range tests {
		rep := &Report{Results: []Result{tt.res, {Scenario: Baseline, DeliveriesPerSec: 30000}}}
		rep.judge(tt.backend)
		got := rep.Results[0]
		if got.Pass == nil || *got.Pass != tt.pass {
			t.Errorf("%s %s %+v: pass = %v, want %v", tt.backend, tt.res.Scenario, tt.res, got.Pass, tt.pass)
		}
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		name string
		in   []float64
		want float64
	}{
		{"none", nil, 0},
		{"one", []float64{7}, 7},
		{"two: the mean of both", []float64{200, 100}, 150},
		{"three unsorted", []float64{3, 1, 2}, 2},
		{"five with an outlier", []float64{180, 950, 175, 190, 170}, 180},
		{"four", []float64{4, 1, 3, 2}, 2.5},
		{"repeats", []float64{5, 5, 1, 5}, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Clone(tt.in)
			if got := median(in); got != tt.want {
				t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
			}
			if !slices.Equal(in, tt.in) {
				t.Errorf("median reordered its input: %v", in)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	runs := []Result{
		{Scenario: Throughput, Endpoints: 1, Events: 100, Deliveries: 100, DeliveriesPerSec: 5000, CPUMsPer1k: 200, P99Ms: 3, RSSScope: "server", ServerPID: 42},
		{Scenario: Throughput, Endpoints: 1, Events: 100, Deliveries: 100, DeliveriesPerSec: 7000, CPUMsPer1k: 150, P99Ms: 9, RSSScope: "server", ServerPID: 42},
		{Scenario: Throughput, Endpoints: 1, Events: 100, Deliveries: 100, DeliveriesPerSec: 6000, CPUMsPer1k: 400, P99Ms: 4, RSSScope: "server", ServerPID: 42},
	}
	got := summarize(runs)
	want := struct{ dps, dlo, dhi, cpu, clo, chi, p99 float64 }{6000, 5000, 7000, 200, 150, 400, 4}
	if got.DeliveriesPerSec != want.dps || got.DeliveriesPerSecMin != want.dlo || got.DeliveriesPerSecMax != want.dhi ||
		got.CPUMsPer1k != want.cpu || got.CPUMsPer1kMin != want.clo || got.CPUMsPer1kMax != want.chi || got.P99Ms != want.p99 {
		t.Errorf("summarize = %+v, want %+v", got, want)
	}
	if len(got.Runs) != 3 || got.Deliveries != 100 || got.ServerPID != 42 || got.Scenario != Throughput {
		t.Errorf("summarize kept %d runs, %d deliveries, pid %d, scenario %q", len(got.Runs), got.Deliveries, got.ServerPID, got.Scenario)
	}
}

func TestReportServerCPU(t *testing.T) {
	rep := &Report{Backend: "remote", Repeat: 5, Results: []Result{
		{Scenario: Throughput, Deliveries: 10, DeliveriesPerSec: 6000, DeliveriesPerSecMin: 5000, DeliveriesPerSecMax: 7000,
			CPUMsPer1k: 183, CPUMsPer1kMin: 170, CPUMsPer1kMax: 201, RSSScope: "server", ServerPID: 4242},
		{Scenario: Baseline, DeliveriesPerSec: 30000, CPUMsPer1k: 50, RSSScope: "client+sink"},
	}}
	var b strings.Builder
	if err := rep.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"median of 5 runs per scenario", "deliveries/s min-max", "5000-7000", "170-201",
		"server CPU per delivery (pid 4242;", "throughput 183 us (170-201)"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
	if strings.Contains(b.String(), "baseline 50 us") {
		t.Errorf("the baseline's client+sink CPU is not the server's:\n%s", b.String())
	}

	none := &Report{Backend: "remote", Results: []Result{{Scenario: Throughput, RSSScope: "remote", CPUNotMeasured: "host \"h\" is not a loopback address"}}}
	b.Reset()
	if err := none.WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `server CPU per delivery not measured: host "h" is not a loopback address`) || strings.Contains(b.String(), "min-max") {
		t.Errorf("markdown:\n%s", b.String())
	}
}
