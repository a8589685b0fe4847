package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kinehook/kinehook/cmd/kinehook/internal/bench"
)

// runBenchCmd runs `kinehook bench` with args and returns stdout.
func runBenchCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newBenchCmd()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err := cmd.Execute()
	if err != nil {
		t.Logf("stderr:\n%s", errOut.String())
	}
	return out.String(), err
}

// TestBenchRunsEveryScenario drives real in-process servers (SQLite in a
// temporary directory) with tiny numbers and checks the report's shape.
func TestBenchRunsEveryScenario(t *testing.T) {
	out, err := runBenchCmd(t, "--events", "120", "--concurrency", "8", "--endpoints", "3", "--batch-size", "7",
		"--rate", "100", "--duration", "500ms", "--backlog", "150", "--server", "inprocess", "--json")
	if err != nil {
		t.Fatalf("bench: %v", err)
	}
	var rep bench.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("bench --json printed no report: %v\n%s", err, out)
	}
	if rep.Backend != "sqlite" || rep.CPUs < 1 || rep.Concurrency != 8 || rep.BatchSize != 7 {
		t.Errorf("report header = %+v", rep)
	}
	got := map[string]bench.Result{}
	for _, r := range rep.Results {
		got[r.Scenario] = r
	}
	tests := []struct {
		scenario   string
		endpoints  int
		deliveries int
	}{
		{bench.Throughput, 1, 120},
		{bench.Batch, 1, 120}, // 17 requests of 7, the last of 1
		{bench.Fanout, 3, 40 * 3},
		{bench.Latency, 1, 50},
		{bench.Backlog, 1, 150},
		{bench.Baseline, 1, 120},
		{bench.Relay, 1, 120},
	}
	for _, tt := range tests {
		r, ok := got[tt.scenario]
		if !ok {
			t.Errorf("no %s result in %s", tt.scenario, out)
			continue
		}
		if r.Endpoints != tt.endpoints || r.Deliveries != tt.deliveries || r.Failed != 0 {
			t.Errorf("%s: endpoints %d deliveries %d failed %d, want %d and %d and 0", tt.scenario, r.Endpoints, r.Deliveries, r.Failed, tt.endpoints, tt.deliveries)
		}
		if tt.scenario != bench.Backlog && r.DeliveriesPerSec <= 0 {
			t.Errorf("%s: deliveries/s = %v", tt.scenario, r.DeliveriesPerSec)
		}
		if r.PeakRSSMB <= 0 {
			t.Errorf("%s: peak RSS = %v", tt.scenario, r.PeakRSSMB)
		}
	}
	if l := got[bench.Latency]; l.P50Ms <= 0 || l.P99Ms < l.P50Ms || l.MaxMs < l.P99Ms {
		t.Errorf("latency percentiles p50 %v p99 %v max %v", l.P50Ms, l.P99Ms, l.MaxMs)
	}
	if b := got[bench.Backlog]; b.SinkHits == 0 {
		t.Errorf("the down endpoint saw no attempt: %+v", b)
	}
	for _, sc := range []string{bench.Throughput, bench.Batch} {
		if th := got[sc]; th.Ratio <= 0 || th.Pass == nil || th.Target == "" {
			t.Errorf("%s not judged against the baseline: %+v", sc, th)
		}
	}
	if r := got[bench.Relay]; r.Ratio <= 0 || r.Pass != nil {
		t.Errorf("relay: want a ratio to the baseline and no target: %+v", r)
	}
}

func TestBenchTableAndFlags(t *testing.T) {
	out, err := runBenchCmd(t, "--events", "50", "--concurrency", "4", "--scenarios", "throughput, batch,baseline,relay", "--server", "inprocess")
	if err != nil {
		t.Fatalf("bench: %v", err)
	}
	for _, want := range []string{"kinehook bench: backend sqlite", "scenario", "deliveries/s", "throughput", "baseline", "plain Go client ceiling", "relay", "storeless relay (HTTP in, HTTP out)", "events posted 100 per request (POST .../events/batch): kinehook one endpoint"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	bad := []struct {
		name string
		args []string
		want string
	}{
		{"unknown scenario", []string{"--scenarios", "nope"}, "unknown scenario"},
		{"bad server", []string{"--server", "elsewhere"}, "--server"},
		{"bad database", []string{"--database", "mysql://x"}, "--database"},
		{"json and markdown", []string{"--json", "--markdown"}, "choose one"},
		{"url without key", []string{"--url", "http://127.0.0.1:1", "--key", ""}, "admin key"},
		{"zero events", []string{"--events", "0", "--scenarios", "baseline"}, "must be positive"},
		{"repeat 0", []string{"--repeat", "0", "--scenarios", "baseline"}, "--repeat"},
		{"pid without url", []string{"--pid", "1", "--scenarios", "baseline"}, "--pid"},
		{"negative pid", []string{"--url", "http://127.0.0.1:1", "--key", "k", "--pid", "-2"}, "--pid"},
		{"batch size 0", []string{"--batch-size", "0", "--scenarios", "batch"}, "--batch-size"},
		{"batch size over the API's", []string{"--batch-size", "1001", "--scenarios", "batch"}, "--batch-size"},
		{"no batch clients", []string{"--batch-concurrency", "0", "--scenarios", "batch"}, "--batch-concurrency"},
	}
	t.Setenv(serveAdminKeyEnv, "")
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runBenchCmd(t, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

// TestBenchURLMeasuresTheServersCPU runs `kinehook serve` as a child
// process and `kinehook bench --url` against it: the bench finds the server
// by its listening port (or takes --pid) and reports the server's own CPU
// per delivery, in the table and in --json.
func TestBenchURLMeasuresTheServersCPU(t *testing.T) {
	bin := buildKinehook(t)
	const key = "kh_admin_bench_url_test_key"
	srv := startServe(t, bin, t.TempDir(), []string{serveAdminKeyEnv + "=" + key},
		"--allow-private-networks", "--api-rate-limit", "0", "--log-level", "error")
	pid := srv.cmd.Process.Pid
	benchURL := func(args ...string) string {
		t.Helper()
		args = append([]string{"bench", "--url", srv.url, "--key", key, "--scenarios", "throughput",
			"--events", "400", "--concurrency", "4"}, args...)
		cmd := exec.Command(bin, args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("kinehook %v: %v\n%s\nstderr:\n%s", args, err, out, stderr.String())
		}
		return string(out)
	}

	text := benchURL("--repeat", "2")
	m := regexp.MustCompile(`server CPU per delivery \(pid (\d+);.* median of 2 runs .*\): throughput (\d+) us \((\d+)-(\d+)\)`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no server CPU per delivery in the report:\n%s", text)
	}
	if m[1] != strconv.Itoa(pid) {
		t.Errorf("measured pid %s, want the server's %d", m[1], pid)
	}
	if us, _ := strconv.Atoi(m[2]); us <= 0 {
		t.Errorf("server CPU per delivery %s us, want a positive figure:\n%s", m[2], text)
	}
	if !strings.Contains(text, "median of 2 runs per scenario") || strings.Contains(text, "not measured") {
		t.Errorf("report:\n%s", text)
	}

	var rep bench.Report
	if err := json.Unmarshal([]byte(benchURL("--pid", strconv.Itoa(pid), "--json")), &rep); err != nil {
		t.Fatalf("bench --json: %v", err)
	}
	if len(rep.Results) != 1 {
		t.Fatalf("results: %+v", rep.Results)
	}
	r := rep.Results[0]
	if r.RSSScope != "server" || r.ServerPID != pid || r.CPUMsPer1k <= 0 || r.Deliveries != 400 || r.PeakRSSMB <= 0 || r.CPUNotMeasured != "" {
		t.Errorf("--json result: %+v", r)
	}
}

// TestBenchURLSaysWhenCPUIsNotMeasured: a --pid that names no process is
// reported, not fatal; the scenario still runs against the server.
func TestBenchURLSaysWhenCPUIsNotMeasured(t *testing.T) {
	srv, key := startTestBenchServer(t)
	out, err := runBenchCmd(t, "--url", srv, "--key", key, "--pid", "1073741824", "--scenarios", "throughput",
		"--events", "30", "--concurrency", "2")
	if err != nil {
		t.Fatalf("bench: %v", err)
	}
	if !strings.Contains(out, "server CPU per delivery not measured: pid 1073741824") || !strings.Contains(out, "remote") {
		t.Errorf("report:\n%s", out)
	}
}

// startTestBenchServer runs an in-process server as bench does and returns its
// URL and admin key.
func startTestBenchServer(t *testing.T) (string, string) {
	t.Helper()
	key, err := newBenchKey()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := startBenchInProcess(&benchOptions{}, t.TempDir(), key, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return srv.URL, key
}

// The nats scenario delivers through a NATS JetStream destination (the
// machine's server, a stream of the run's own) and the closing note sets
// its figure next to the HTTP endpoint's.
func TestBenchNATSScenario(t *testing.T) {
	if c, err := net.DialTimeout("tcp", "127.0.0.1:4222", time.Second); err != nil {
		t.Skipf("no NATS server at 127.0.0.1:4222: %v", err)
	} else {
		c.Close()
	}
	out, err := runBenchCmd(t, "--events", "200", "--concurrency", "4", "--scenarios", "throughput,nats", "--server", "inprocess", "--json")
	if err != nil {
		t.Fatalf("bench: %v", err)
	}
	var rep bench.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("JSON report: %v\n%s", err, out)
	}
	var nats *bench.Result
	for i := range rep.Results {
		if rep.Results[i].Scenario == bench.NATSDest {
			nats = &rep.Results[i]
		}
	}
	if nats == nil || nats.Deliveries != 200 || nats.DeliveriesPerSec <= 0 || nats.Duplicates != 0 || !strings.HasPrefix(nats.Target, ">= throughput") {
		t.Fatalf("nats result %+v", nats)
	}
	out, err = runBenchCmd(t, "--events", "50", "--concurrency", "2", "--scenarios", "throughput,nats", "--server", "inprocess")
	if err != nil {
		t.Fatalf("bench: %v", err)
	}
	if !strings.Contains(out, "NATS JetStream destination") {
		t.Errorf("no NATS line in the closing note:\n%s", out)
	}
	if _, err := runBenchCmd(t, "--events", "10", "--scenarios", "nats", "--nats-url", "nats://127.0.0.1:1", "--server", "inprocess"); err == nil ||
		!strings.Contains(err.Error(), "no NATS server at nats://127.0.0.1:1") {
		t.Errorf("unreachable NATS: %v", err)
	}
}
