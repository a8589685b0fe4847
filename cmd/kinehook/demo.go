package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/client"
	"github.com/kinehook/kinehook/internal/simulator"
)

func init() { rootCmd.AddCommand(newDemoCmd()) }

// demoOptions are the flags of `kinehook demo`.
type demoOptions struct {
	addr     string
	rate     string
	duration time.Duration
	keepData bool
	flaky    float64
	every    time.Duration
	seed     uint64
}

func newDemoCmd() *cobra.Command {
	o := &demoOptions{}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "See the whole flow in a minute: server, receiver and simulated video platform, all local",
		Long: `Start everything on this machine and watch webhooks flow:

  1. a kinehook server (kinehook serve) on a temporary data folder and a free
     loopback port, with a short retry schedule;
  2. a receiver that keeps a status table of videos and live streams, checks
     every signature, and fails a share of first attempts (--flaky) so that
     retries show;
  3. a project and an endpoint pointing at the receiver;
  4. the simulator posting video and live-stream lifecycles.

It prints the dashboard URL with a key to sign in with, and a summary of
deliveries every couple of seconds. Ctrl-C stops everything and removes the
data folder (unless --keep-data).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runDemo(ctx, o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.addr, "addr", "127.0.0.1:0", "address of the demo server (port 0: a free port)")
	f.StringVar(&o.rate, "rate", "20/s", "simulated events per second")
	f.DurationVar(&o.duration, "duration", 0, "stop after this long (0 = until Ctrl-C)")
	f.BoolVar(&o.keepData, "keep-data", false, "keep the temporary data folder (its path is printed)")
	f.Float64Var(&o.flaky, "flaky", 0.05, "share of deliveries the receiver refuses at the first attempt (they succeed on retry)")
	f.DurationVar(&o.every, "every", 2*time.Second, "how often to print the delivery summary")
	f.Uint64Var(&o.seed, "seed", 0, "simulator seed (default: random)")
	return cmd
}

// freeLoopbackAddr resolves port 0 of addr to a port free right now.
func freeLoopbackAddr(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("--addr %q: %w", addr, err)
	}
	if port != "0" {
		return addr, nil
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", fmt.Errorf("find a free port on %s: %w", host, err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// runDemo runs the demo until ctx ends or o.duration passes.
func runDemo(ctx context.Context, o *demoOptions, stdout, stderr io.Writer) (err error) {
	rate, err := parseRate(o.rate)
	if err != nil {
		return fmt.Errorf("--rate: %w", err)
	}
	if o.flaky < 0 || o.flaky > 1 {
		return fmt.Errorf("--flaky must be between 0 and 1")
	}
	if o.every <= 0 {
		o.every = 2 * time.Second
	}
	dir, err := os.MkdirTemp("", "kinehook-demo-")
	if err != nil {
		return fmt.Errorf("create a data folder: %w", err)
	}
	var addr string
	defer func() {
		if o.keepData {
			fmt.Fprintf(stdout, "data kept in %s (run `kinehook serve --data %s --addr %s` to look again)\n", dir, dir, addr)
			return
		}
		if rerr := os.RemoveAll(dir); rerr != nil && err == nil {
			err = fmt.Errorf("remove the data folder: %w", rerr)
		}
	}()

	// 1. The server: `kinehook serve` itself with the demo's flags.
	srv, err := startDemoServer(ctx, o.addr, dir, stderr)
	if err != nil {
		return err
	}
	// The receiver stops after the server, so deliveries in flight while
	// the server drains are answered rather than refused.
	stopReceiver := func() {}
	defer func() {
		serr := srv.stop()
		stopReceiver()
		if serr != nil && err == nil {
			err = serr
		}
	}()
	addr = srv.addr
	base, adminKey, served := "http://"+srv.addr, srv.adminKey, srv.served
	admin := client.New(base, adminKey)

	// 2. The receiver, on its own free port.
	secret, err := kinehook.GenerateSecret()
	if err != nil {
		return fmt.Errorf("generate a signing secret: %w", err)
	}
	recv, err := newDemoReceiver(secret, o.flaky)
	if err != nil {
		return err
	}
	rln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("receiver: listen: %w", err)
	}
	rsrv := &http.Server{Handler: recv, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = rsrv.Serve(rln) }()
	stopReceiver = func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = rsrv.Shutdown(sctx)
	}
	receiverURL := "http://" + rln.Addr().String() + "/webhooks"

	// 3. A project and an endpoint pointing at the receiver.
	p, err := admin.CreateProject(ctx, "demo")
	if err != nil {
		return fmt.Errorf("create the demo project: %w", err)
	}
	ep, err := admin.CreateEndpoint(ctx, p.ID, client.EndpointCreate{
		URL: receiverURL, Secret: secret, Description: "kinehook demo receiver (video status table)",
	})
	if err != nil {
		return fmt.Errorf("create the demo endpoint: %w", err)
	}

	fmt.Fprintf(stdout, `kinehook demo is running.

  Dashboard:    %s/
  Sign in with: %s   (the demo project's key; admin key: %s)
  API:          curl -H 'Authorization: Bearer %s' %s/v1/projects/%s/events
  Receiver:     %s (endpoint %s)
  Data folder:  %s

Simulating a video platform at %s events/s. Press Ctrl-C to stop.

`, base, p.APIKey, adminKey, p.APIKey, base, p.ID, receiverURL, ep.ID, dir, strconv.FormatFloat(rate, 'f', -1, 64))

	// 4. The simulator, endless until Ctrl-C or --duration.
	runCtx := ctx
	if o.duration > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, o.duration)
		defer cancel()
	}
	cfg := simulator.DefaultConfig()
	cfg.Media, cfg.Live = 0, 0
	cfg.Seed = o.seed
	if o.seed == 0 {
		cfg.Seed = randomSeed()
	}
	gen, err := simulator.NewGenerator(cfg)
	if err != nil {
		return err
	}
	projectClient := client.New(base, p.APIKey)
	tracker := newDeliveryTracker(projectClient, p.ID)
	send := func(ctx context.Context, body []byte, key string) error {
		ev, err := projectClient.SendEventBody(ctx, p.ID, body, key)
		if err != nil {
			return simRetryable(err)
		}
		tracker.add(ev.ID)
		return nil
	}
	stats := &simulator.Stats{}
	simDone := make(chan struct{})
	go func() {
		defer close(simDone)
		_ = simulator.Run(runCtx, gen, send, simulator.RunConfig{Rate: rate, Concurrency: 4, RunID: "demo-" + strconv.FormatUint(cfg.Seed, 36)}, stats)
	}()

	start := time.Now()
	tick := time.NewTicker(o.every)
	defer tick.Stop()
loop:
	for {
		select {
		case <-runCtx.Done():
			break loop
		case <-simDone:
			break loop
		case serr := <-served:
			srv.down = true
			return fmt.Errorf("the server stopped: %v", serr)
		case <-tick.C:
			tracker.poll(ctx)
			fmt.Fprintln(stdout, demoLine(time.Since(start), stats, tracker, recv))
		}
	}
	<-simDone
	if ctx.Err() == nil {
		// --duration ended: give the last deliveries a moment, then count.
		// (On Ctrl-C the server is already stopping: report what is known.)
		fctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		for {
			tracker.poll(fctx)
			if c := tracker.counts(); c.open == 0 || fctx.Err() != nil {
				break
			}
			select {
			case <-fctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	label := "final: "
	if ctx.Err() != nil {
		label = "stopped (deliveries as last checked): "
	}
	fmt.Fprintln(stdout)
	fmt.Fprintln(stdout, label+demoLine(time.Since(start), stats, tracker, recv))
	fmt.Fprintln(stdout, "receiver: "+recv.summary())
	return nil
}

// simRetryable marks the API's throttling answers for the simulator to retry.
func simRetryable(err error) error {
	var ae *client.Error
	if errors.As(err, &ae) && (ae.StatusCode == http.StatusTooManyRequests || ae.StatusCode == http.StatusServiceUnavailable) {
		return &simulator.RetryableError{Wait: ae.RetryAfter, Err: err}
	}
	return err
}

// demoServer is the demo's `kinehook serve`, running in this process.
type demoServer struct {
	addr     string
	adminKey string
	served   <-chan error
	cancel   context.CancelFunc
	down     bool
}

// stop shuts the server down and waits for it.
func (s *demoServer) stop() error {
	if s.down {
		return nil
	}
	s.down = true
	s.cancel()
	select {
	case err := <-s.served:
		if err != nil {
			return fmt.Errorf("server: %w", err)
		}
		return nil
	case <-time.After(40 * time.Second):
		return errors.New("the server did not stop within 40 s")
	}
}

// errDemoRetry means the chosen port was taken between choosing and binding.
var errDemoRetry = errors.New("the port was taken")

// startDemoServer runs `kinehook serve` on dir with the demo's flags (every
// flag given, so no KINEHOOK_* variable of the user's leaks in): private
// networks allowed, a short retry schedule, no API rate limit. With port 0 in
// addr it picks a free port, and picks again if another program takes it
// first. The admin key is KINEHOOK_ADMIN_KEY when set, else a fresh one,
// handed to serve through that variable only until it is up.
func startDemoServer(ctx context.Context, addr, dir string, stderr io.Writer) (*demoServer, error) {
	adminKey := os.Getenv(serveAdminKeyEnv)
	if adminKey == "" {
		var b [24]byte
		_, _ = rand.Read(b[:])
		adminKey = "kh_admin_" + base64.RawURLEncoding.EncodeToString(b[:])
		if err := os.Setenv(serveAdminKeyEnv, adminKey); err != nil {
			return nil, fmt.Errorf("set %s: %w", serveAdminKeyEnv, err)
		}
		defer func() {
			// Restore the environment, unless something else changed it meanwhile.
			if os.Getenv(serveAdminKeyEnv) == adminKey {
				os.Unsetenv(serveAdminKeyEnv)
			}
		}()
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("--addr %q: %w", addr, err)
	}
	for try := 1; ; try++ {
		chosen, err := freeLoopbackAddr(addr)
		if err != nil {
			return nil, err
		}
		s, err := startDemoServerOnce(ctx, chosen, dir, adminKey, stderr)
		if errors.Is(err, errDemoRetry) && port == "0" && try < 5 {
			continue
		}
		return s, err
	}
}

func startDemoServerOnce(ctx context.Context, addr, dir, adminKey string, stderr io.Writer) (*demoServer, error) {
	serveCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	serve := newServeCmd()
	serve.SetArgs([]string{
		"--addr", addr, "--data", dir, "--database", "",
		"--allow-private-networks", "--retry-schedule", "1s,2s,4s,8s", "--request-timeout", "5s",
		"--log-level", "warn", "--api-rate-limit", "0",
	})
	serve.SetOut(io.Discard)
	serve.SetErr(stderr)
	serve.SilenceUsage, serve.SilenceErrors = true, true
	served := make(chan error, 1)
	go func() { served <- serve.ExecuteContext(serveCtx) }()
	s := &demoServer{addr: addr, adminKey: adminKey, served: served, cancel: cancel}

	c := client.New("http://"+addr, adminKey)
	deadline := time.Now().Add(20 * time.Second)
	for {
		rctx, rcancel := context.WithTimeout(ctx, time.Second)
		err := c.Ready(rctx)
		rcancel()
		if err == nil {
			// Make sure it is ours: another program may have taken the port.
			if _, err := c.ListProjects(ctx); err != nil {
				_ = s.stop()
				if client.ErrorCode(err) == kinehook.EUNAUTHORIZED {
					return nil, errDemoRetry
				}
				return nil, fmt.Errorf("the server at %s does not answer as expected: %w", addr, err)
			}
			return s, nil
		}
		select {
		case serr := <-served:
			s.down = true
			cancel()
			if errors.Is(serr, syscall.EADDRINUSE) {
				return nil, errDemoRetry
			}
			return nil, fmt.Errorf("the server did not start: %v", serr)
		case <-ctx.Done():
			_ = s.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = s.stop()
			return nil, fmt.Errorf("the server did not become ready: %w", err)
		}
	}
}

// demoLine is one running summary line.
func demoLine(elapsed time.Duration, s *simulator.Stats, t *deliveryTracker, r *demoReceiver) string {
	c := t.counts()
	return fmt.Sprintf("%4.0fs  events sent %d (errors %d)  deliveries: succeeded %d  failed %d  pending %d (retrying %d)  receiver refused %d first attempts",
		elapsed.Seconds(), s.Sent.Load(), s.Errors.Load(), c.succeeded, c.failed, c.open, c.retrying, r.refused.Load())
}

// deliveryTracker follows the deliveries of the events the demo sent, through
// the API, until each is final.
type deliveryTracker struct {
	c   *client.Client
	pid string

	mu        sync.Mutex
	open      []string // event ids whose deliveries are not all final
	succeeded int
	failed    int
	retrying  int
}

type trackerCounts struct{ succeeded, failed, open, retrying int }

func newDeliveryTracker(c *client.Client, pid string) *deliveryTracker {
	return &deliveryTracker{c: c, pid: pid}
}

func (t *deliveryTracker) add(eventID string) {
	t.mu.Lock()
	t.open = append(t.open, eventID)
	t.mu.Unlock()
}

func (t *deliveryTracker) counts() trackerCounts {
	t.mu.Lock()
	defer t.mu.Unlock()
	return trackerCounts{t.succeeded, t.failed, len(t.open), t.retrying}
}

// poll asks the API about open events (up to 400 per call, 8 at a time) and
// counts those whose deliveries are final.
func (t *deliveryTracker) poll(ctx context.Context) {
	t.mu.Lock()
	ids := append([]string(nil), t.open[:min(len(t.open), 400)]...)
	t.mu.Unlock()
	type result struct {
		final             bool
		succeeded, failed int
		retrying          bool
	}
	results := make([]result, len(ids))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, id := range ids {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			ds, err := t.c.ListDeliveries(ctx, t.pid, id)
			if err != nil {
				return
			}
			r := result{final: true}
			for _, d := range ds {
				switch d.Status {
				case kinehook.DeliverySucceeded:
					r.succeeded++
				case kinehook.DeliveryFailed:
					r.failed++
				case kinehook.DeliveryRetrying:
					r.retrying, r.final = true, false
				default:
					r.final = false
				}
			}
			results[i] = r
		})
	}
	wg.Wait()
	done := map[string]bool{}
	retrying := 0
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, r := range results {
		if r.final {
			done[ids[i]] = true
			t.succeeded += r.succeeded
			t.failed += r.failed
		} else if r.retrying {
			retrying++
		}
	}
	t.retrying = retrying
	kept := t.open[:0]
	for _, id := range t.open {
		if !done[id] {
			kept = append(kept, id)
		}
	}
	t.open = kept
}

// demoReceiver is the demo's webhook receiver: the SDK's Handler verifying
// signatures, in front of a small status table of videos and live streams
// (what examples/statussync keeps in SQLite, here in memory). It refuses a
// share of first attempts so that retries show in the dashboard.
type demoReceiver struct {
	h     http.Handler
	flaky float64

	refused atomic.Int64
	mu      sync.Mutex
	tried   map[string]bool
	videos  map[string]kinehook.MediaStatus
	lives   map[string]string
	late    int // events for a resource already in a final state (ordering broken)
	handled int
}

func newDemoReceiver(secret string, flaky float64) (*demoReceiver, error) {
	r := &demoReceiver{flaky: flaky, tried: map[string]bool{}, videos: map[string]kinehook.MediaStatus{}, lives: map[string]string{}}
	h, err := kinehook.NewHandler(kinehook.HandlerOptions{
		Secrets: []string{secret},
		Logger:  slog.New(slog.DiscardHandler),
		OnMediaStatus: func(ctx context.Context, d *kinehook.Incoming, data kinehook.MediaData) error {
			r.mu.Lock()
			defer r.mu.Unlock()
			switch r.videos[data.ID] {
			case kinehook.StatusDone, kinehook.StatusError, kinehook.StatusAborted:
				r.late++
			}
			r.videos[data.ID] = data.Status
			r.handled++
			return nil
		},
		OnEvent: func(ctx context.Context, d *kinehook.Incoming) error {
			if d.Event == nil || d.Event.Live == nil {
				return nil
			}
			r.mu.Lock()
			defer r.mu.Unlock()
			id := d.Event.Live.EventID
			if s := r.lives[id]; s == "finished" || s == "cancelled" {
				r.late++
			}
			r.lives[id] = string(d.Event.Type)[len("live."):]
			r.handled++
			return nil
		},
	})
	if err != nil {
		return nil, fmt.Errorf("receiver: %w", err)
	}
	r.h = h
	return r, nil
}

// ServeHTTP refuses the first attempt of a --flaky share of deliveries
// (chosen by webhook-id), and hands everything else to the SDK Handler.
func (r *demoReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if id := req.Header.Get("webhook-id"); id != "" && r.flaky > 0 {
		h := fnv.New32a()
		h.Write([]byte(id))
		if float64(h.Sum32()%10000) < r.flaky*10000 {
			r.mu.Lock()
			first := !r.tried[id]
			r.tried[id] = true
			r.mu.Unlock()
			if first {
				r.refused.Add(1)
				http.Error(w, `{"error":"demo receiver: busy, try again"}`, http.StatusServiceUnavailable)
				return
			}
		}
	}
	r.h.ServeHTTP(w, req)
}

// summary describes the receiver's status table.
func (r *demoReceiver) summary() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	vs := map[kinehook.MediaStatus]int{}
	for _, s := range r.videos {
		vs[s]++
	}
	ls := map[string]int{}
	for _, s := range r.lives {
		ls[s]++
	}
	return fmt.Sprintf("handled %d events; videos %d (done %d, error %d, aborted %d, in progress %d); live streams %d (finished %d, cancelled %d, on air or starting %d); events after a final status: %d",
		r.handled, len(r.videos), vs[kinehook.StatusDone], vs[kinehook.StatusError], vs[kinehook.StatusAborted],
		len(r.videos)-vs[kinehook.StatusDone]-vs[kinehook.StatusError]-vs[kinehook.StatusAborted],
		len(r.lives), ls["finished"], ls["cancelled"], len(r.lives)-ls["finished"]-ls["cancelled"], r.late)
}
