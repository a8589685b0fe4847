package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kinehook/kinehook/client"
	"github.com/kinehook/kinehook/internal/cputime"
)

// Scenario names, in the default order.
const (
	Throughput = "throughput"
	Fanout     = "fanout"
	Latency    = "latency"
	Backlog    = "backlog"
	Baseline   = "baseline"
	Relay      = "relay"
	// Batch is the throughput scenario with events posted BatchSize at a
	// time to POST .../events/batch.
	Batch = "batch"
	// NATSDest is the throughput scenario with a NATS JetStream
	// destination instead of an HTTP endpoint (Config.NATSURL).
	NATSDest = "nats"
)

// Batch scenario defaults, and the API's largest batch.
const (
	DefaultBatchSize        = 100
	DefaultBatchConcurrency = 8
	MaxBatchSize            = 1000
)

// AllScenarios is the default --scenarios list.
var AllScenarios = []string{Throughput, NATSDest, Batch, Fanout, Latency, Backlog, Baseline, Relay}

// Server is one kinehook server a scenario runs against.
type Server struct {
	// URL is the API's base URL; AdminKey reaches every route.
	URL, AdminKey string
	// PID is the server's process when it is a subprocess or a server
	// already running on this machine (--url); 0 when it runs in this
	// process; -1 when it cannot be measured (CPUNotMeasured says why).
	PID int
	// External says the server was running before this run: its CPU is
	// measured the same way, but its VmHWM covers its whole life, so its
	// peak RSS is sampled from VmRSS over each scenario instead.
	External bool
	// CPUNotMeasured says why a server with PID -1 has no CPU figures.
	CPUNotMeasured string
	// Stop shuts the server down (nil for a server this run did not start).
	Stop func() error
}

// Config is one benchmark run.
type Config struct {
	// Backend names the store in the report ("sqlite", "postgres").
	Backend string
	// Events is the number of events of the throughput scenarios and of the
	// baseline; Concurrency the number of concurrent keep-alive clients.
	Events, Concurrency int
	// Endpoints is the fan-out of the fanout scenario.
	Endpoints int
	// BatchSize is the events per request of the batch scenario, posted by
	// BatchConcurrency clients.
	BatchSize, BatchConcurrency int
	// Rate (events/s) and Duration make the latency scenario.
	Rate     int
	Duration time.Duration
	// BacklogEvents is the number of events posted to a down endpoint.
	BacklogEvents int
	// NATSURL is the NATS server of the nats scenario (DefaultNATSURL when
	// empty): it needs JetStream, and the server must be allowed to reach it.
	NATSURL string
	// Scenarios to run, in order (AllScenarios when empty).
	Scenarios []string
	// Ingest starts the server of the NATSIngest scenario.
	Ingest IngestFunc
	// Repeat runs each scenario this many times (0 or 1: once) and reports
	// the median of each figure, with the range of deliveries/s and CPU.
	Repeat int
	// Timeout bounds each scenario's wait for its deliveries.
	Timeout time.Duration
	// Start gives a fresh server for one scenario; Backlog is asked for a
	// separate process where possible, so its RSS is the server's alone.
	Start func(ctx context.Context, scenario string) (*Server, error)
	// Progress receives one line per step (nil: discarded).
	Progress io.Writer
}

// Result is one scenario's figures. Rates are per second of wall time from
// the first POST to the last distinct arrival at the sink.
type Result struct {
	Scenario   string  `json:"scenario"`
	Endpoints  int     `json:"endpoints"`
	Events     int     `json:"events"`
	Deliveries int     `json:"deliveries"`
	Seconds    float64 `json:"seconds"`
	// DeliveriesPerSec is requests/s for the baseline.
	DeliveriesPerSec float64 `json:"deliveries_per_sec"`
	EventsPerSec     float64 `json:"events_per_sec"`
	P50Ms            float64 `json:"p50_ms,omitempty"`
	P99Ms            float64 `json:"p99_ms,omitempty"`
	MaxMs            float64 `json:"max_ms,omitempty"`
	// PeakRSSMB is the server's peak resident memory (this whole process
	// when the server runs in it); RSSMB its resident memory at the end.
	PeakRSSMB float64 `json:"peak_rss_mb,omitempty"`
	RSSMB     float64 `json:"rss_mb,omitempty"`
	// RSSScope says whose memory and CPU: "server" (a subprocess) or
	// "process" (server, load generator and sink together).
	RSSScope string `json:"scope"`
	// CPUMsPer1k is CPU milliseconds per 1,000 deliveries (of RSSScope),
	// i.e. CPU microseconds per delivery.
	CPUMsPer1k float64 `json:"cpu_ms_per_1k"`
	// ServerPID is the measured server process (scope "server").
	ServerPID int `json:"server_pid,omitempty"`
	// CPUNotMeasured says why the server's CPU is not in CPUMsPer1k.
	CPUNotMeasured string `json:"cpu_not_measured,omitempty"`
	// AllocMBPer1k is heap allocated per 1,000 deliveries (in-process only).
	AllocMBPer1k float64 `json:"alloc_mb_per_1k,omitempty"`
	// SinkHits counts every request the sink saw (attempts at a down one).
	SinkHits   int64 `json:"sink_hits"`
	Duplicates int   `json:"duplicates"`
	Failed     int   `json:"failed_posts"`
	// Target is the goal in words; Pass whether it was met (nil: no goal).
	Target string `json:"target,omitempty"`
	Pass   *bool  `json:"pass,omitempty"`
	// Ratio is deliveries/s over the baseline's requests/s.
	Ratio float64 `json:"ratio_to_baseline,omitempty"`
	// With Config.Repeat > 1 every figure above is the median of the runs
	// (listed in Runs), and these give the range of the two that matter.
	DeliveriesPerSecMin float64  `json:"deliveries_per_sec_min,omitempty"`
	DeliveriesPerSecMax float64  `json:"deliveries_per_sec_max,omitempty"`
	CPUMsPer1kMin       float64  `json:"cpu_ms_per_1k_min,omitempty"`
	CPUMsPer1kMax       float64  `json:"cpu_ms_per_1k_max,omitempty"`
	Runs                []Result `json:"runs,omitempty"`
}

// Report is a whole run.
type Report struct {
	Backend     string    `json:"backend"`
	Started     time.Time `json:"started"`
	CPUs        int       `json:"cpus"`
	GoVersion   string    `json:"go_version"`
	LoadBefore  string    `json:"load_average_before"`
	LoadAfter   string    `json:"load_average_after"`
	Events      int       `json:"events"`
	Concurrency int       `json:"concurrency"`
	// BatchSize is the events per request of the batch scenario.
	BatchSize int `json:"batch_size"`
	// Repeat is the runs per scenario (each result the median of them).
	Repeat  int      `json:"repeat,omitempty"`
	Results []Result `json:"results"`
}

// Run runs the configured scenarios and returns their figures. A scenario
// that fails stops the run with an error; the results so far are returned.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.BatchSize == 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.BatchConcurrency == 0 {
		cfg.BatchConcurrency = DefaultBatchConcurrency
	}
	if cfg.Events <= 0 || cfg.Concurrency <= 0 || cfg.Endpoints <= 0 || cfg.Rate <= 0 || cfg.Duration <= 0 || cfg.BacklogEvents <= 0 || cfg.BatchSize < 1 || cfg.BatchConcurrency < 1 {
		return nil, fmt.Errorf("events, concurrency, endpoints, batch size and concurrency, rate, duration and backlog must be positive")
	}
	if cfg.BatchSize > MaxBatchSize {
		return nil, fmt.Errorf("batch size %d: the API takes at most %d events a request", cfg.BatchSize, MaxBatchSize)
	}
	if len(cfg.Scenarios) == 0 {
		cfg.Scenarios = AllScenarios
	}
	for _, s := range cfg.Scenarios {
		if !slices.Contains(AllScenarios, s) && s != NATSIngest {
			return nil, fmt.Errorf("unknown scenario %q (known: %s, %s)", s, strings.Join(AllScenarios, ", "), NATSIngest)
		}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Minute
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	if cfg.Repeat < 0 {
		return nil, fmt.Errorf("repeat %d: want 1 or more runs per scenario", cfg.Repeat)
	}
	runs := max(cfg.Repeat, 1)
	rep := &Report{
		Backend: cfg.Backend, Started: time.Now().UTC(), CPUs: runtime.NumCPU(), GoVersion: runtime.Version(),
		LoadBefore: loadAverage(), Events: cfg.Events, Concurrency: cfg.Concurrency, BatchSize: cfg.BatchSize,
	}
	if runs > 1 {
		rep.Repeat = runs
	}
	defer func() { rep.LoadAfter = loadAverage() }()
	for _, name := range cfg.Scenarios {
		var all []Result
		for i := range runs {
			label := name
			if runs > 1 {
				label = fmt.Sprintf("%s (run %d of %d)", name, i+1, runs)
			}
			fmt.Fprintf(cfg.Progress, "bench: %s ...\n", label)
			res, err := runScenario(ctx, cfg, name)
			if err != nil {
				return rep, fmt.Errorf("scenario %s: %w", label, err)
			}
			cpu := ""
			if res.CPUMsPer1k > 0 {
				cpu = fmt.Sprintf(", CPU %.0f us per delivery (%s)", res.CPUMsPer1k, res.RSSScope)
			}
			if name == Backlog {
				fmt.Fprintf(cfg.Progress, "bench: %s: %.0f events/s accepted, server peak RSS %.1f MB\n", label, res.EventsPerSec, res.PeakRSSMB)
			} else {
				fmt.Fprintf(cfg.Progress, "bench: %s: %.0f deliveries/s%s\n", label, res.DeliveriesPerSec, cpu)
			}
			all = append(all, *res)
		}
		if runs == 1 {
			rep.Results = append(rep.Results, all[0])
		} else {
			rep.Results = append(rep.Results, summarize(all))
		}
	}
	rep.judge(cfg.Backend)
	return rep, nil
}

// runScenario runs scenario name once.
func runScenario(ctx context.Context, cfg Config, name string) (*Result, error) {
	switch name {
	case Baseline:
		return runBaseline(ctx, cfg)
	case Relay:
		return runRelay(ctx, cfg)
	case NATSIngest:
		return runIngest(ctx, cfg)
	default:
		return runOnServer(ctx, cfg, name)
	}
}

// summarize is one result for repeated runs of a scenario: each figure the
// median of the runs, the runs themselves and the range of deliveries/s and
// CPU per delivery.
func summarize(runs []Result) Result {
	res := runs[0]
	res.Runs = runs
	fig := func(get func(*Result) float64) (med, lo, hi float64) {
		xs := make([]float64, len(runs))
		for i := range runs {
			xs[i] = get(&runs[i])
		}
		return median(xs), slices.Min(xs), slices.Max(xs)
	}
	med := func(get func(*Result) float64) float64 { m, _, _ := fig(get); return m }
	res.DeliveriesPerSec, res.DeliveriesPerSecMin, res.DeliveriesPerSecMax = fig(func(r *Result) float64 { return r.DeliveriesPerSec })
	res.CPUMsPer1k, res.CPUMsPer1kMin, res.CPUMsPer1kMax = fig(func(r *Result) float64 { return r.CPUMsPer1k })
	res.EventsPerSec = med(func(r *Result) float64 { return r.EventsPerSec })
	res.Seconds = med(func(r *Result) float64 { return r.Seconds })
	res.P50Ms = med(func(r *Result) float64 { return r.P50Ms })
	res.P99Ms = med(func(r *Result) float64 { return r.P99Ms })
	res.MaxMs = med(func(r *Result) float64 { return r.MaxMs })
	res.PeakRSSMB = med(func(r *Result) float64 { return r.PeakRSSMB })
	res.RSSMB = med(func(r *Result) float64 { return r.RSSMB })
	res.AllocMBPer1k = med(func(r *Result) float64 { return r.AllocMBPer1k })
	res.Deliveries = int(med(func(r *Result) float64 { return float64(r.Deliveries) }))
	res.SinkHits = int64(med(func(r *Result) float64 { return float64(r.SinkHits) }))
	res.Duplicates = int(med(func(r *Result) float64 { return float64(r.Duplicates) }))
	res.Failed = int(med(func(r *Result) float64 { return float64(r.Failed) }))
	for _, r := range runs {
		if r.CPUNotMeasured != "" {
			res.CPUNotMeasured = r.CPUNotMeasured
		}
	}
	return res
}

// median is the middle of xs (the mean of the two middle values for an even
// count; 0 for none). xs is not changed.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// runOnServer starts a server, runs one scenario on it and stops it.
func runOnServer(ctx context.Context, cfg Config, name string) (res *Result, err error) {
	srv, err := cfg.Start(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("start server: %w", err)
	}
	defer func() {
		if srv.Stop != nil {
			if serr := srv.Stop(); serr != nil && err == nil {
				err = fmt.Errorf("stop server: %w", serr)
			}
		}
	}()
	switch name {
	case Throughput, Batch:
		return runThroughput(ctx, cfg, srv, name, 1, cfg.Events)
	case NATSDest:
		return runNATS(ctx, cfg, srv)
	case Fanout:
		return runThroughput(ctx, cfg, srv, name, cfg.Endpoints, max(1, cfg.Events/cfg.Endpoints))
	case Latency:
		return runLatency(ctx, cfg, srv)
	default:
		return runBacklog(ctx, cfg, srv)
	}
}

// setup creates a project and n endpoints to sink paths /e/0.. and returns
// a poster for the project.
func setup(ctx context.Context, cfg Config, srv *Server, sinkURL string, n int) (*poster, error) {
	admin := client.New(srv.URL, srv.AdminKey)
	p, err := admin.CreateProject(ctx, fmt.Sprintf("bench-%d", time.Now().UnixNano()))
	if err != nil {
		return nil, fmt.Errorf("create project: %w", err)
	}
	pc := client.New(srv.URL, p.APIKey)
	for i := range n {
		if _, err := pc.CreateEndpoint(ctx, p.ID, client.EndpointCreate{URL: sinkURL + "/e/" + strconv.Itoa(i), Description: "kinehook bench sink"}); err != nil {
			return nil, fmt.Errorf("create endpoint %d: %w", i, err)
		}
	}
	return newPoster(srv.URL, p.ID, p.APIKey, cfg.Concurrency)
}

// usage measures CPU and allocations of the server over a scenario.
type usage struct {
	pid      int
	external bool   // peak RSS from VmRSS samples, not VmHWM
	noCPU    string // why CPU is not measured (pid -1 or unreadable)
	cpu0     time.Duration
	alloc0   uint64
	peakRSS  int64
	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
}

// startUsage starts measuring srv (PID 0: this process); the CPU reading
// is taken now, as close to the first POST as possible.
func startUsage(srv *Server) *usage {
	u := &usage{pid: srv.PID, external: srv.External, noCPU: srv.CPUNotMeasured, stop: make(chan struct{}), done: make(chan struct{})}
	if u.pid < 0 && u.noCPU == "" {
		u.noCPU = "the server runs elsewhere"
	}
	var err error
	if u.cpu0, err = u.cpu(); err != nil {
		u.noCPU = err.Error()
	}
	if u.pid == 0 {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		u.alloc0 = ms.TotalAlloc
	}
	// VmHWM of this process covers its whole life; sample VmRSS instead so
	// an in-process figure is this scenario's.
	go func() {
		defer close(u.done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			u.sample()
			select {
			case <-u.stop:
				return
			case <-t.C:
			}
		}
	}()
	return u
}

func (u *usage) sample() {
	if u.pid < 0 {
		return
	}
	peak, rss, err := procMem(u.pid)
	if err != nil {
		return
	}
	if u.pid > 0 && !u.external && peak > u.peakRSS {
		u.peakRSS = peak
	}
	if rss > u.peakRSS {
		u.peakRSS = rss
	}
}

func (u *usage) cpu() (time.Duration, error) {
	switch {
	case u.pid == 0:
		return cputime.Self(), nil
	case u.pid > 0:
		return procCPU(u.pid)
	}
	return 0, nil
}

// finish fills res's CPU, allocation and memory figures for deliveries.
func (u *usage) finish(res *Result, deliveries int) {
	u.stopOnce.Do(func() { close(u.stop) })
	<-u.done
	u.sample()
	switch {
	case u.pid == 0:
		res.RSSScope = "process"
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if deliveries > 0 {
			res.AllocMBPer1k = float64(ms.TotalAlloc-u.alloc0) / (1 << 20) / float64(deliveries) * 1000
		}
	case u.pid > 0:
		res.RSSScope = "server"
		res.ServerPID = u.pid
	default:
		res.RSSScope = "remote"
		res.CPUNotMeasured = u.noCPU
		return
	}
	cpu1, err := u.cpu()
	switch {
	case u.noCPU != "":
		res.CPUNotMeasured = u.noCPU
	case err != nil:
		res.CPUNotMeasured = err.Error()
	case deliveries > 0:
		res.CPUMsPer1k = float64((cpu1 - u.cpu0).Microseconds()) / 1000 / float64(deliveries) * 1000
	}
	res.PeakRSSMB = float64(u.peakRSS) / (1 << 20)
	if _, rss, err := procMem(max(u.pid, 0)); err == nil {
		res.RSSMB = float64(rss) / (1 << 20)
	}
}

// warmUp sends a few events through and waits for them, so the figures do
// not include connection set-up and the first SQL statement preparations.
func warmUp(ctx context.Context, cfg Config, p *poster, sink *Sink, endpoints int) error {
	n := min(cfg.Concurrency*2, 200)
	sink.Reset(n * endpoints)
	fails := &failures{}
	p.postAll(ctx, n, cfg.Concurrency, fails)
	if err := fails.err(n); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	if err := sink.Wait(wctx); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	return nil
}

// runThroughput posts events fanned out to endpoints endpoints as fast as
// conc clients can and measures deliveries/s until the last one arrives.
func runThroughput(ctx context.Context, cfg Config, srv *Server, name string, endpoints, events int) (*Result, error) {
	sink, err := NewSink(http.StatusNoContent)
	if err != nil {
		return nil, err
	}
	defer sink.Close()
	p, err := setup(ctx, cfg, srv, sink.URL, endpoints)
	if err != nil {
		return nil, err
	}
	if name == Batch {
		p.batch = cfg.BatchSize
		cfg.Concurrency = cfg.BatchConcurrency
	}
	return measure(ctx, cfg, p, sink, srv, name, endpoints, events)
}

// measure warms p's server up, then posts events through it as fast as
// cfg.Concurrency clients can and measures deliveries/s until the last of
// events x endpoints arrives at sink; srv is the server (see startUsage).
func measure(ctx context.Context, cfg Config, p *poster, sink *Sink, srv *Server, name string, endpoints, events int) (*Result, error) {
	if err := warmUp(ctx, cfg, p, sink, endpoints); err != nil {
		return nil, err
	}
	var err error
	p.bodies, err = newBodies()
	if err != nil {
		return nil, err
	}
	sink.Reset(events * endpoints)
	use := startUsage(srv)
	t0 := time.Now()
	fails := &failures{}
	ok := p.postAll(ctx, events, cfg.Concurrency, fails)
	posted := time.Since(t0)
	requests := events
	if p.batch > 0 {
		requests = (events + p.batch - 1) / p.batch
	}
	if ok == 0 {
		// Nothing to wait for at the sink.
		if err := fails.err(requests); err != nil {
			return nil, err
		}
		return nil, errors.New("no event was accepted")
	}
	sink.SetWant(ok * endpoints)
	wctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	werr := sink.Wait(wctx)
	got, dups, hits, last := sink.Stats()
	res := &Result{
		Scenario: name, Endpoints: endpoints, Events: events, Deliveries: got,
		Duplicates: dups, SinkHits: hits, Failed: int(fails.n.Load()),
	}
	use.finish(res, got)
	if err := fails.err(requests); err != nil {
		return res, err
	}
	if werr != nil {
		return res, werr
	}
	el := max(last.Sub(t0), posted)
	res.Seconds = el.Seconds()
	res.DeliveriesPerSec = float64(got) / el.Seconds()
	res.EventsPerSec = float64(ok) / el.Seconds()
	return res, nil
}

// runLatency posts at a steady rate to one endpoint and measures each
// event's time from the start of its POST to its arrival at the sink.
func runLatency(ctx context.Context, cfg Config, srv *Server) (*Result, error) {
	sink, err := NewSink(http.StatusNoContent)
	if err != nil {
		return nil, err
	}
	defer sink.Close()
	p, err := setup(ctx, cfg, srv, sink.URL, 1)
	if err != nil {
		return nil, err
	}
	if err := warmUp(ctx, cfg, p, sink, 1); err != nil {
		return nil, err
	}
	p.bodies, err = newBodies()
	if err != nil {
		return nil, err
	}
	n := int(float64(cfg.Rate) * cfg.Duration.Seconds())
	sink.Reset(n)
	use := startUsage(srv)
	t0 := time.Now()
	fails := &failures{}
	sent := p.postAtRate(ctx, cfg.Rate, cfg.Duration, cfg.Concurrency, fails)
	sink.SetWant(len(sent))
	wctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	werr := sink.Wait(wctx)
	got, dups, hits, last := sink.Stats()
	res := &Result{
		Scenario: Latency, Endpoints: 1, Events: n, Deliveries: got,
		Duplicates: dups, SinkHits: hits, Failed: int(fails.n.Load()),
	}
	use.finish(res, got)
	if err := fails.err(n); err != nil {
		return res, err
	}
	if werr != nil {
		return res, werr
	}
	lats := make([]time.Duration, 0, len(sent))
	for _, s := range sent {
		if at, ok := sink.Arrival("/e/0", s.id); ok {
			lats = append(lats, at.Sub(s.start))
		}
	}
	res.P50Ms, res.P99Ms, res.MaxMs = percentiles(lats)
	el := last.Sub(t0)
	res.Seconds = el.Seconds()
	res.DeliveriesPerSec = float64(got) / el.Seconds()
	res.EventsPerSec = res.DeliveriesPerSec
	return res, nil
}

// percentiles returns p50, p99 and max of lats in milliseconds (nearest
// rank: the smallest value with at least p% of the sample at or below it).
func percentiles(lats []time.Duration) (p50, p99, maxMs float64) {
	if len(lats) == 0 {
		return 0, 0, 0
	}
	slices.Sort(lats)
	rank := func(p float64) time.Duration {
		i := int(math.Ceil(p/100*float64(len(lats)))) - 1
		return lats[max(0, min(i, len(lats)-1))]
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return ms(rank(50)), ms(rank(99)), ms(lats[len(lats)-1])
}

// runBacklog posts BacklogEvents events to an endpoint answering 503 and
// reports the server's peak resident memory while it holds them.
func runBacklog(ctx context.Context, cfg Config, srv *Server) (*Result, error) {
	sink, err := NewSink(http.StatusServiceUnavailable)
	if err != nil {
		return nil, err
	}
	defer sink.Close()
	p, err := setup(ctx, cfg, srv, sink.URL, 1)
	if err != nil {
		return nil, err
	}
	use := startUsage(srv)
	t0 := time.Now()
	fails := &failures{}
	ok := p.postAll(ctx, cfg.BacklogEvents, cfg.Concurrency, fails)
	el := time.Since(t0)
	// Let the engine take in the last events and make their first attempts.
	select {
	case <-time.After(2 * time.Second):
	case <-ctx.Done():
	}
	_, _, hits, _ := sink.Stats()
	res := &Result{
		Scenario: Backlog, Endpoints: 1, Events: cfg.BacklogEvents, Deliveries: ok,
		Seconds: el.Seconds(), EventsPerSec: float64(ok) / el.Seconds(),
		SinkHits: hits, Failed: int(fails.n.Load()),
	}
	use.finish(res, 0)
	if err := fails.err(cfg.BacklogEvents); err != nil {
		return res, err
	}
	return res, nil
}

// runBaseline is the machine's ceiling: a plain Go client posting the same
// signed webhooks straight to the sink with the same concurrency.
func runBaseline(ctx context.Context, cfg Config) (*Result, error) {
	sink, err := NewSink(http.StatusNoContent)
	if err != nil {
		return nil, err
	}
	defer sink.Close()
	fails := &failures{}
	warm := min(cfg.Concurrency*2, 200)
	sink.Reset(warm)
	if _, err := postSigned(ctx, sink.URL+"/warm", warm, cfg.Concurrency, fails); err != nil {
		return nil, err
	}
	sink.Reset(cfg.Events)
	use := startUsage(&Server{PID: 0})
	t0 := time.Now()
	ok, err := postSigned(ctx, sink.URL+"/baseline", cfg.Events, cfg.Concurrency, fails)
	if err != nil {
		return nil, err
	}
	el := time.Since(t0)
	got, dups, hits, _ := sink.Stats()
	res := &Result{
		Scenario: Baseline, Endpoints: 1, Events: cfg.Events, Deliveries: got,
		Seconds: el.Seconds(), DeliveriesPerSec: float64(ok) / el.Seconds(), EventsPerSec: float64(ok) / el.Seconds(),
		Duplicates: dups, SinkHits: hits, Failed: int(fails.n.Load()),
	}
	use.finish(res, got)
	res.RSSScope = "client+sink"
	if err := fails.err(cfg.Events + warm); err != nil {
		return res, err
	}
	return res, nil
}

// targets of the issues, per backend.
func (r *Report) judge(backend string) {
	pg := backend == "postgres"
	var base float64
	for _, res := range r.Results {
		if res.Scenario == Baseline {
			base = res.DeliveriesPerSec
		}
	}
	pass := func(ok bool) *bool { return &ok }
	var thr float64
	for _, res := range r.Results {
		if res.Scenario == Throughput {
			thr = res.DeliveriesPerSec
		}
	}
	for i := range r.Results {
		res := &r.Results[i]
		switch res.Scenario {
		case NATSDest:
			// A destination should be no slower than an HTTP endpoint on loopback.
			if base > 0 {
				res.Ratio = res.DeliveriesPerSec / base
			}
			if thr > 0 {
				res.Target = fmt.Sprintf(">= throughput (%.0f/s)", thr)
				res.Pass = pass(res.DeliveriesPerSec >= thr)
			}
		case Throughput, Batch, Fanout:
			goal := 10000.0
			if pg {
				goal = 5000
			}
			res.Target = fmt.Sprintf(">= %.0f/s", goal)
			res.Pass = pass(res.DeliveriesPerSec >= goal)
			if base > 0 {
				res.Ratio = res.DeliveriesPerSec / base
			}
			if res.Scenario != Fanout && !pg && base > 0 {
				res.Target += ", >= 0.3 x baseline"
				res.Pass = pass(*res.Pass && res.Ratio >= 0.3)
			}
		case Relay:
			if base > 0 {
				res.Ratio = res.DeliveriesPerSec / base
			}
		case Latency:
			goal := 20.0
			if pg {
				goal = 30
			}
			res.Target = fmt.Sprintf("p99 <= %.0f ms", goal)
			res.Pass = pass(res.P99Ms <= goal)
		case Backlog:
			if res.RSSScope != "remote" && res.Events >= 100000 {
				res.Target = "peak RSS < 150 MB"
				res.Pass = pass(res.PeakRSSMB < 150)
			}
		}
	}
}
