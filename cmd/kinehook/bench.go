package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	nethttp "net/http"
	"os"
	"os/exec"
	"os/signal"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/kinehook/kinehook/cmd/kinehook/internal/bench"
	"github.com/kinehook/kinehook/delivery"
	"github.com/kinehook/kinehook/internal/secretbox"
)

// benchOptions are the flags of `kinehook bench`.
type benchOptions struct {
	events      int
	concurrency int
	endpoints   int
	batchSize   int
	batchConc   int
	rate        int
	duration    time.Duration
	backlog     int
	natsURL     string
	scenarios   string
	database    string
	url         string
	key         string
	pid         int
	repeat      int
	server      string
	timeout     time.Duration
	json        bool
	markdown    bool
	cpuprofile  string
}

func init() { rootCmd.AddCommand(newBenchCmd()) }

func newBenchCmd() *cobra.Command {
	o := &benchOptions{}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure delivery throughput, latency and memory end to end through the HTTP API",
		Long: `Measure kinehook end to end: events are POSTed to the real HTTP API and
delivered to a sink on 127.0.0.1 in this process, which records when each
webhook arrives. Scenarios:

  throughput  --events events, --concurrency keep-alive clients, one endpoint:
              deliveries/s from the first POST to the last arrival
  nats        the throughput scenario with a NATS JetStream destination (a
              stream of its own on --nats-url) instead of an HTTP endpoint:
              deliveries/s until the last message reaches a consumer here
  batch       the throughput scenario with --batch-size events per request
              to POST .../events/batch, from --batch-concurrency clients
  fanout      --events/--endpoints events to --endpoints endpoints (each event
              fanned out to every endpoint): deliveries/s
  latency     --rate events/s for --duration: p50/p99/max from POST to arrival
  backlog     --backlog events to an endpoint answering 503: peak RSS of the
              server (run as a 'kinehook serve' subprocess)
  baseline    a plain Go client posting the same signed webhooks to the same
              sink with the same concurrency: the machine's ceiling
  relay       the same POSTs to a storeless relay that answers 202 and posts
              each body, signed, to the sink: what two HTTP exchanges per
              delivery cost here, without anything kinehook adds
  nats-ingest (not run by default: it needs NATS with JetStream at
              --nats-url) --events events published to a fresh JetStream
              stream, taken by the server's ingest source (serve --source)
              and delivered to one endpoint: deliveries/s, reported next to
              the throughput scenario's HTTP figure of the same run

By default each scenario gets a fresh server on a temporary data directory (in
this process; the backlog one as a subprocess); --database postgres://...
runs it on PostgreSQL; --url and --key measure a server already running (it
must allow private networks, since the sink is on loopback). Its CPU per
delivery is that process's user+system time from /proc/PID/stat over each
measured interval, divided by the deliveries: --pid names the process, or it
is the one listening on the URL's loopback port; when neither is possible
the report says "not measured" and why. --repeat N runs each scenario N times
and reports the median, with the range of deliveries/s and CPU per delivery.

One endpoint, one event per request, C keep-alive clients:
  kinehook bench --url http://127.0.0.1:8080 --scenarios throughput --concurrency C --repeat 5`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			return runBench(ctx, o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.events, "events", 50000, "events posted by the throughput scenarios and the baseline")
	f.IntVar(&o.concurrency, "concurrency", 64, "concurrent keep-alive clients")
	f.IntVar(&o.endpoints, "endpoints", 10, "endpoints of the fanout scenario")
	f.IntVar(&o.batchSize, "batch-size", bench.DefaultBatchSize, "events per request of the batch scenario (1 to 1000)")
	f.IntVar(&o.batchConc, "batch-concurrency", bench.DefaultBatchConcurrency, "concurrent clients of the batch scenario")
	f.IntVar(&o.rate, "rate", 200, "events per second of the latency scenario")
	f.DurationVar(&o.duration, "duration", 10*time.Second, "length of the latency scenario")
	f.IntVar(&o.backlog, "backlog", 100000, "events posted to the down endpoint of the backlog scenario")
	f.StringVar(&o.natsURL, "nats-url", bench.DefaultNATSURL, "NATS server (with JetStream) of the nats and nats-ingest scenarios")
	f.StringVar(&o.scenarios, "scenarios", strings.Join(bench.AllScenarios, ","), "scenarios to run, comma-separated")
	f.StringVar(&o.database, "database", "", "postgres://... runs the servers on PostgreSQL (default: SQLite in a temporary directory)")
	f.StringVar(&o.url, "url", "", "measure the server already running at this base URL instead of starting one")
	f.StringVar(&o.key, "key", "", "admin key of the server at --url (default: $KINEHOOK_ADMIN_KEY)")
	f.IntVar(&o.pid, "pid", 0, "process id of the server at --url, whose CPU is measured (default: the process listening on the URL's loopback port)")
	f.IntVar(&o.repeat, "repeat", 1, "run each scenario this many times and report the median (with min-max of deliveries/s and CPU per delivery)")
	f.StringVar(&o.server, "server", "auto", "where started servers run: auto (in process; backlog as a subprocess), inprocess or subprocess")
	f.DurationVar(&o.timeout, "timeout", 5*time.Minute, "how long a scenario waits for its deliveries")
	f.BoolVar(&o.json, "json", false, "print the report as JSON")
	f.BoolVar(&o.markdown, "markdown", false, "print the report as a Markdown table")
	f.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of this process to the file (in-process servers included)")
	return cmd
}

func runBench(ctx context.Context, o *benchOptions, stdout, stderr io.Writer) error {
	if err := checkBenchFlags(o); err != nil {
		return err
	}
	var scenarios []string
	for s := range strings.SplitSeq(o.scenarios, ",") {
		if s = strings.TrimSpace(s); s != "" {
			scenarios = append(scenarios, s)
		}
	}
	backend, start, err := benchServers(o, stderr)
	if err != nil {
		return err
	}
	if o.cpuprofile != "" {
		f, err := os.Create(o.cpuprofile)
		if err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	rep, err := bench.Run(ctx, bench.Config{
		Backend: backend, Events: o.events, Concurrency: o.concurrency, Endpoints: o.endpoints,
		BatchSize: o.batchSize, BatchConcurrency: o.batchConc,
		Rate: o.rate, Duration: o.duration, BacklogEvents: o.backlog, NATSURL: o.natsURL, Scenarios: scenarios, Repeat: o.repeat,
		Timeout: o.timeout, Start: start, Progress: stderr,
		Ingest: func(ctx context.Context, endpointURL string) (*bench.Server, func(context.Context, int, func(int) []byte) error, error) {
			return startBenchIngest(ctx, o, endpointURL, stderr)
		},
	})
	if rep != nil && len(rep.Results) > 0 || err == nil {
		if werr := writeBenchReport(rep, o, stdout); werr != nil && err == nil {
			err = werr
		}
	}
	return err
}

// checkBenchFlags refuses flags that contradict each other or are out of range.
func checkBenchFlags(o *benchOptions) error {
	if o.json && o.markdown {
		return errors.New("--json and --markdown: choose one")
	}
	if o.repeat < 1 {
		return fmt.Errorf("--repeat %d: want 1 or more runs per scenario", o.repeat)
	}
	if o.pid != 0 && (o.url == "" || o.pid < 0) {
		return fmt.Errorf("--pid %d: give a positive process id, with --url (a server bench starts is measured anyway)", o.pid)
	}
	if o.batchSize < 1 || o.batchSize > bench.MaxBatchSize || o.batchConc < 1 {
		return fmt.Errorf("--batch-size must be 1 to %d and --batch-concurrency positive", bench.MaxBatchSize)
	}
	switch o.server {
	case "auto", "inprocess", "subprocess":
	default:
		return fmt.Errorf("--server: %q is not auto, inprocess or subprocess", o.server)
	}
	if o.database != "" && !strings.HasPrefix(o.database, "postgres://") && !strings.HasPrefix(o.database, "postgresql://") {
		return fmt.Errorf("--database: %q is not a postgres:// URL", redactURL(o.database))
	}
	return nil
}

// benchServers says which backend the report names and how a scenario gets
// its server: one bench starts, or the one already running at --url.
func benchServers(o *benchOptions, stderr io.Writer) (string, func(context.Context, string) (*bench.Server, error), error) {
	start := func(ctx context.Context, scenario string) (*bench.Server, error) {
		return startBenchServer(ctx, o, scenario, stderr)
	}
	if o.url == "" {
		if o.database == "" {
			return "sqlite", start, nil
		}
		return "postgres", start, throwawayEncryptionKey(stderr)
	}
	key := o.key
	if key == "" {
		key = os.Getenv(serveAdminKeyEnv)
	}
	if key == "" {
		return "", nil, errors.New("--url needs the server's admin key: --key or " + serveAdminKeyEnv)
	}
	// Found when a scenario first needs the server (not for the baseline
	// or the relay alone).
	var once sync.Once
	var srv *bench.Server
	return "remote", func(context.Context, string) (*bench.Server, error) {
		once.Do(func() { srv = remoteBenchServer(o, key, stderr) })
		s := *srv
		return &s, nil
	}, nil
}

// throwawayEncryptionKey gives the PostgreSQL servers bench starts a key when
// none is set: endpoints made by this run are sealed with it (set the key
// for a database whose existing endpoints were sealed with another).
func throwawayEncryptionKey(stderr io.Writer) error {
	if os.Getenv(secretbox.EnvKey) != "" {
		return nil
	}
	key, err := secretbox.GenerateKey()
	if err != nil {
		return err
	}
	if err := os.Setenv(secretbox.EnvKey, key); err != nil {
		return fmt.Errorf("set %s: %w", secretbox.EnvKey, err)
	}
	fmt.Fprintf(stderr, "bench: %s unset; the servers use a throwaway key\n", secretbox.EnvKey)
	return nil
}

// writeBenchReport prints the report as --json, --markdown or a table asks.
func writeBenchReport(rep *bench.Report, o *benchOptions, stdout io.Writer) error {
	switch {
	case o.json:
		return rep.WriteJSON(stdout)
	case o.markdown:
		return rep.WriteMarkdown(stdout)
	default:
		return rep.WriteTable(stdout)
	}
}

// remoteBenchServer is the server at --url, with its process (--pid, or the
// one listening on the URL's loopback port) when it can be measured, and
// why not otherwise.
func remoteBenchServer(o *benchOptions, key string, stderr io.Writer) *bench.Server {
	srv := &bench.Server{URL: strings.TrimRight(o.url, "/"), AdminKey: key, PID: -1}
	pid, how := o.pid, "--pid"
	var err error
	if pid > 0 {
		err = bench.CheckPID(pid)
	} else {
		pid, err = bench.ServerPID(o.url)
		how = "listening on " + o.url
	}
	if err != nil {
		srv.CPUNotMeasured = err.Error()
		fmt.Fprintf(stderr, "bench: server CPU per delivery not measured: %v\n", err)
		return srv
	}
	srv.PID, srv.External = pid, true
	fmt.Fprintf(stderr, "bench: measuring the CPU of server process %d (%s)\n", pid, how)
	return srv
}

// newBenchKey is a random admin key for a server the benchmark starts.
func newBenchKey() (string, error) {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate admin key: %w", err)
	}
	return "kh_admin_" + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// startBenchServer starts a fresh server for one scenario on a temporary
// data directory (or --database), in this process or as a subprocess.
func startBenchServer(ctx context.Context, o *benchOptions, scenario string, stderr io.Writer) (*bench.Server, error) {
	key, err := newBenchKey()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "kinehook-bench-")
	if err != nil {
		return nil, fmt.Errorf("temporary data directory: %w", err)
	}
	sub := o.server == "subprocess" || (o.server == "auto" && scenario == bench.Backlog)
	var srv *bench.Server
	if sub {
		srv, err = startBenchSubprocess(ctx, o, dir, key, stderr)
	} else {
		srv, err = startBenchInProcess(o, dir, key, stderr)
	}
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	stop := srv.Stop
	srv.Stop = func() error {
		err := stop()
		if rerr := os.RemoveAll(dir); rerr != nil && err == nil {
			err = fmt.Errorf("remove %s: %w", dir, rerr)
		}
		return err
	}
	return srv, nil
}

// benchServeOptions are serve's defaults, with loopback delivery allowed and
// no API rate limit (the load generator is one key).
func benchServeOptions(o *benchOptions, dir, key string) *serveOptions {
	return &serveOptions{
		data: dir, database: o.database, allowPrivate: true,
		retrySchedule: "5s,5m,30m,2h,5h,10h,10h", requestTimeout: 15 * time.Second,
		logFormat: "text", logLevel: "error", apiRateLimit: 0, apiRateBurst: 1,
		shutdownTimeout: 10 * time.Second, adminKey: key,
		breakerAfter: delivery.DefaultBreakerThreshold, disableAfter: delivery.DefaultDisableAfter,
		gcPercent: defaultGCPercent,
	}
}

func startBenchInProcess(o *benchOptions, dir, key string, stderr io.Writer, sources ...string) (*bench.Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	so := benchServeOptions(o, dir, key)
	so.sources = sources
	so.addr, so.listener = ln.Addr().String(), ln
	sctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runServe(sctx, so, io.Discard, stderr) }()
	url := "http://" + so.addr
	if err := waitHealthy(url, done); err != nil {
		cancel()
		_ = ln.Close()
		return nil, err
	}
	return &bench.Server{URL: url, AdminKey: key, PID: 0, Stop: func() error {
		cancel()
		return <-done
	}}, nil
}

func startBenchSubprocess(ctx context.Context, o *benchOptions, dir, key string, stderr io.Writer) (*bench.Server, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find this executable: %w", err)
	}
	// Take a free port, then hand it to the child (a tiny race; retried).
	var lastErr error
	for range 3 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("listen: %w", err)
		}
		addr := ln.Addr().String()
		_ = ln.Close()
		so := benchServeOptions(o, dir, key)
		args := []string{"serve", "--addr", addr, "--data", dir, "--allow-private-networks",
			"--api-rate-limit", "0", "--log-level", so.logLevel, "--shutdown-timeout", so.shutdownTimeout.String()}
		if o.database != "" {
			args = append(args, "--database", o.database)
		}
		cmd := exec.CommandContext(ctx, exe, args...)
		cmd.Env = append(os.Environ(), serveAdminKeyEnv+"="+key)
		cmd.Stdout, cmd.Stderr = io.Discard, stderr
		cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
		cmd.WaitDelay = 15 * time.Second
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("start %s serve: %w", exe, err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		url := "http://" + addr
		if lastErr = waitHealthy(url, done); lastErr != nil {
			_ = cmd.Process.Kill()
			continue
		}
		return &bench.Server{URL: url, AdminKey: key, PID: cmd.Process.Pid, Stop: func() error {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case err := <-done:
				if err != nil {
					return fmt.Errorf("kinehook serve: %w", err)
				}
				return nil
			case <-time.After(20 * time.Second):
				_ = cmd.Process.Kill()
				return errors.New("kinehook serve did not stop within 20s of SIGTERM; killed")
			}
		}}, nil
	}
	return nil, lastErr
}

// waitHealthy polls GET /healthz until it answers 200, the server ends
// (done) or 30 seconds pass.
func waitHealthy(url string, done <-chan error) error {
	hc := &nethttp.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			return fmt.Errorf("server ended before it was up: %v", err)
		default:
		}
		if resp, err := hc.Get(url + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == nethttp.StatusOK {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("server at %s not healthy after 30s", url)
}
