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
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/client"
	"github.com/kinehook/kinehook/cmd/kinehook/internal/simulator"
	"github.com/kinehook/kinehook/internal/statussync"
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
  2. the examples/statussync receiver: it checks every signature, keeps
     SQLite tables of videos and live streams (a file in the data folder) and
     prints a line per notification (a video done, failed or aborted, a
     stream's recording available); it fails a share of first attempts
     (--flaky) so that retries show;
  3. a project and an endpoint pointing at the receiver;
  4. the simulator posting video and live-stream lifecycles.

It prints the dashboard URL with a key to sign in with, and a summary of
deliveries every couple of seconds. Ctrl-C (or SIGTERM, or SIGHUP when the
terminal closes) stops everything and removes the data folder, SQLite file
included (unless --keep-data).

--duration is how long the simulator posts, counted from the banner: the
start-up comes before it, and after it the demo waits up to 10 s for the last
deliveries (a refused first attempt is retried after 1 s) and stops the server
and the receiver. --rate is a ceiling: each resource's next event is posted
only after the previous one was accepted, 4 posts at a time, so a server slowed
down by a loaded machine takes fewer (the final lines say how many).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), demoSignals...)
			defer stop()
			ignoreBrokenPipe()
			return runDemo(ctx, o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.addr, "addr", "127.0.0.1:0", "address of the demo server (port 0: a free port)")
	f.StringVar(&o.rate, "rate", "20/s", "simulated events per second")
	f.DurationVar(&o.duration, "duration", 0, "simulate for this long after start-up, then wait up to 10 s for the last deliveries and stop (0 = until Ctrl-C)")
	f.BoolVar(&o.keepData, "keep-data", false, "keep the temporary data folder (its path is printed)")
	f.Float64Var(&o.flaky, "flaky", 0.05, "share of deliveries the receiver refuses at the first attempt (they succeed on retry)")
	f.DurationVar(&o.every, "every", 2*time.Second, "how often to print the delivery summary")
	f.Uint64Var(&o.seed, "seed", 0, "simulator seed (default: random)")
	return cmd
}

// demoSignals stop the demo cleanly (server and receiver stopped, data folder
// removed): Ctrl-C, SIGTERM, and SIGHUP, which a closing terminal sends and
// which would otherwise kill the demo and leave its data folder behind.
var demoSignals = []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGHUP}

// ignoreBrokenPipe keeps the demo alive when its output goes to a program
// that has exited: run as `kinehook demo | tee demo.log`, Ctrl-C stops tee
// too, and Go kills a process writing to a closed pipe on standard output
// (SIGPIPE) unless the signal is handled, so the demo died mid-stop and left
// its data folder behind. With it handled, such writes fail and the demo
// stops cleanly.
func ignoreBrokenPipe() {
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
}

// demoRequestTimeout bounds one request of the demo to its own server.
const demoRequestTimeout = 5 * time.Second

// demoRequestCtx is the context of one request of the demo to its server. It
// does not end with ctx: a request in flight when the demo is stopped
// finishes (briefly) instead of being cut off, which the server would log as
// an ERROR ("api: list deliveries" ... "context canceled") although nothing
// went wrong. Callers check ctx before starting a request.
func demoRequestCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), demoRequestTimeout)
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

// runDemo runs the demo until ctx ends or o.duration passes: the server,
// the receiver, a project and endpoint, then the simulator, watched until
// it ends; each step is a function below.
func runDemo(ctx context.Context, o *demoOptions, stdout, stderr io.Writer) (err error) {
	rate, err := checkDemoOptions(o)
	if err != nil {
		return err
	}
	d := &demoRun{o: o, rate: rate, stdout: &lockedWriter{w: stdout}}
	if d.dir, err = os.MkdirTemp("", "kinehook-demo-"); err != nil {
		return fmt.Errorf("create a data folder: %w", err)
	}
	d.dbPath = filepath.Join(d.dir, "statussync.db")
	defer d.removeData(&err)

	// 1. The server: `kinehook serve` itself with the demo's flags.
	srv, err := startDemoServer(ctx, o.addr, d.dir, stderr)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped while starting
		}
		return err
	}
	d.srv, d.addr, d.base = srv, srv.addr, "http://"+srv.addr
	// The receiver stops after the server, so deliveries in flight while
	// the server drains are answered rather than refused.
	stopReceiver := func() error { return nil }
	defer func() {
		serr := srv.stop()
		if rerr := stopReceiver(); rerr != nil && err == nil {
			err = rerr
		}
		if serr != nil && err == nil {
			err = serr
		}
	}()
	// 2. The receiver, on its own free port.
	stop, err := d.startReceiver(ctx)
	if err != nil {
		return err
	}
	stopReceiver = stop
	// 3. A project and an endpoint pointing at the receiver.
	if err := d.createProject(ctx); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return nil // stopped while starting
	}
	d.banner()
	// 4. Kinescope's part: a few webhooks through the inbox, relayed to the
	// receiver like every event.
	fmt.Fprintln(d.stdout, d.playKinescope(ctx))
	// 5. The simulator, endless until Ctrl-C or --duration.
	return d.simulate(ctx)
}

// checkDemoOptions checks the demo's flags and returns its rate.
func checkDemoOptions(o *demoOptions) (float64, error) {
	rate, err := parseRate(o.rate)
	if err != nil {
		return 0, fmt.Errorf("--rate: %w", err)
	}
	if o.flaky < 0 || o.flaky > 1 {
		return 0, fmt.Errorf("--flaky must be between 0 and 1")
	}
	if o.every <= 0 {
		o.every = 2 * time.Second
	}
	return rate, nil
}

// demoRun is one run of the demo: what its steps set up for the next ones.
type demoRun struct {
	o      *demoOptions
	rate   float64
	stdout io.Writer

	dir, dbPath string // the data folder, and the receiver's SQLite file in it
	srv         *demoServer
	addr, base  string // the server's address and URL

	secret      string
	recv        *demoReceiver
	receiverURL string

	project  *client.ProjectWithKey
	endpoint *client.Endpoint
	// source is the demo's inbox, which a stand-in for Kinescope calls
	// with Basic Auth (sourcePassword).
	source         *client.Source
	sourcePassword string
}

// removeData removes the data folder (or says where it was kept), setting
// *err if that fails and nothing else did.
func (d *demoRun) removeData(err *error) {
	if d.o.keepData {
		fmt.Fprintf(d.stdout, "data kept in %s (run `kinehook serve --data %s --addr %s` to look again;\n  the receiver's tables: sqlite3 %s 'select status, count(*) from videos group by status')\n", d.dir, d.dir, d.addr, d.dbPath)
		return
	}
	if rerr := os.RemoveAll(d.dir); rerr != nil && *err == nil {
		*err = fmt.Errorf("remove the data folder: %w", rerr)
	}
}

// startReceiver starts the statussync receiver on a free loopback port and
// returns what stops it.
func (d *demoRun) startReceiver(ctx context.Context) (stop func() error, err error) {
	if d.secret, err = kinehook.GenerateSecret(); err != nil {
		return nil, fmt.Errorf("generate a signing secret: %w", err)
	}
	recv, err := newDemoReceiver(ctx, d.dbPath, d.secret, d.o.flaky, d.stdout)
	if err != nil {
		return nil, err
	}
	rln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = recv.Close()
		return nil, fmt.Errorf("receiver: listen: %w", err)
	}
	rsrv := &http.Server{Handler: recv, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = rsrv.Serve(rln) }()
	d.recv, d.receiverURL = recv, "http://"+rln.Addr().String()+"/webhooks"
	return func() error {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = rsrv.Shutdown(sctx)
		return recv.Close()
	}, nil
}

// createProject creates the demo project and its endpoint at the receiver.
func (d *demoRun) createProject(ctx context.Context) error {
	admin := client.New(d.base, d.srv.adminKey)
	rctx, rcancel := demoRequestCtx(ctx)
	defer rcancel()
	p, err := admin.CreateProject(rctx, "demo")
	if err != nil {
		return fmt.Errorf("create the demo project: %w", err)
	}
	ep, err := admin.CreateEndpoint(rctx, p.ID, client.EndpointCreate{
		URL: d.receiverURL, Secret: d.secret, Description: "kinehook demo receiver (examples/statussync)",
	})
	if err != nil {
		return fmt.Errorf("create the demo endpoint: %w", err)
	}
	d.project, d.endpoint = p, ep
	d.sourcePassword = "demo-" + randomSuffix()
	src, err := admin.CreateSource(rctx, p.ID, client.SourceInput{Name: client.Ptr("Kinescope (demo)"), Type: client.Ptr(kinehook.InboxKinescope),
		Login: client.Ptr(demoSourceLogin), Password: &d.sourcePassword})
	if err != nil {
		return fmt.Errorf("create the demo inbox source: %w", err)
	}
	d.source = src
	return nil
}

// demoSourceLogin is the Basic Auth login of the demo's inbox source.
const demoSourceLogin = "kinescope"

// randomSuffix is 8 random hex characters.
func randomSuffix() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%x", b)
}

// playKinescope posts what Kinescope would to the demo's inbox: a video's
// statuses and a stream going live, with Basic Auth and the seed's bodies,
// and one retry of the same body (stored once). It returns the line to print.
func (d *demoRun) playKinescope(ctx context.Context) string {
	video, stream := newVideoID(), newLiveEventID()
	bodies := []string{
		fmt.Sprintf(`{"event":"media.update.status","data":{"id":%q,"status":"pending"}}`, video),
		fmt.Sprintf(`{"event":"media.update.status","data":{"id":%q,"status":"processing"}}`, video),
		fmt.Sprintf(`{"event":"media.update.status","data":{"id":%q,"status":"processing"}}`, video), // Kinescope retrying
		fmt.Sprintf(`{"event":"media.update.status","data":{"id":%q,"status":"done"}}`, video),
		fmt.Sprintf(`{"event":"live.created","data":{"event_id":%q}}`, stream),
		fmt.Sprintf(`{"event":"live.connected","data":{"event_id":%q}}`, stream),
	}
	url := d.base + d.source.Path
	ok := 0
	for _, b := range bodies {
		rctx, cancel := demoRequestCtx(ctx)
		req, err := http.NewRequestWithContext(rctx, "POST", url, strings.NewReader(b))
		if err != nil {
			cancel()
			continue
		}
		req.SetBasicAuth(demoSourceLogin, d.sourcePassword)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		cancel()
		if err != nil {
			return fmt.Sprintf("inbox: posting as Kinescope failed: %v", err)
		}
		_ = res.Body.Close()
		if res.StatusCode == http.StatusOK {
			ok++
		}
	}
	return fmt.Sprintf("inbox: played Kinescope: %d of %d webhooks to %s answered 200 (Basic Auth; one a retry, stored once); video %s and stream %s are in the dashboard's Videos and Live tabs",
		ok, len(bodies), d.source.Path, video, stream)
}

// banner prints where everything is.
func (d *demoRun) banner() {
	p := d.project
	fmt.Fprintf(d.stdout, `kinehook demo is running.

  Dashboard:    %s/
  Sign in with: %s   (the demo project's key; admin key: %s)
  API:          curl -H 'Authorization: Bearer %s' %s/v1/projects/%s/events
  Receiver:     examples/statussync at %s (endpoint %s)
  Inbox:        %s (what Kinescope calls: login %s, password %s)
  Its tables:   %s (SQLite: videos, live_events)
  Data folder:  %s

Simulating a video platform at %s events/s. Press Ctrl-C to stop.

What the lines below say:
  "  12s  events sent ..."  every %s: events the simulator posted, and what became of
                            their deliveries. "receiver refused N first attempts": the
                            receiver fails a share of first attempts on purpose (--flaky),
                            and kinehook retries them after 1 s.
  "notify: ..."             the receiver reacting to a webhook it verified, as your
                            application would: a video done, failed or aborted, a live
                            stream's recording available.
  "dashboard: ..."          this banner's address and key again, every %s.

`, d.base, p.APIKey, d.srv.adminKey, p.APIKey, d.base, p.ID, d.receiverURL, d.endpoint.ID, d.base+d.source.Path, demoSourceLogin, d.sourcePassword, d.dbPath, d.dir,
		strconv.FormatFloat(d.rate, 'f', -1, 64), d.o.every, d.reminderEvery())
}

// demoReminderLines is how many summary lines pass between two reminders of
// the dashboard's address and key: the notify lines and the summaries push
// the banner off a terminal within about 20 s.
const demoReminderLines = 15

// reminderEvery is how often the reminder is printed.
func (d *demoRun) reminderEvery() time.Duration { return demoReminderLines * d.o.every }

// reminder is the banner's essential line, repeated.
func (d *demoRun) reminder() string {
	return fmt.Sprintf("      dashboard: %s/  (sign in with %s)  data: %s  Ctrl-C stops", d.base, d.project.APIKey, d.dir)
}

// simulate runs the simulator until ctx ends or --duration passes, printing
// a summary every --every, then waits for the last deliveries and prints the
// final counts.
func (d *demoRun) simulate(ctx context.Context) error {
	runCtx := ctx
	if d.o.duration > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, d.o.duration)
		defer cancel()
	}
	cfg := simulator.DefaultConfig()
	cfg.Media, cfg.Live = 0, 0
	cfg.Seed = d.o.seed
	if d.o.seed == 0 {
		cfg.Seed = randomSeed()
	}
	gen, err := simulator.NewGenerator(cfg)
	if err != nil {
		return err
	}
	projectClient := client.New(d.base, d.project.APIKey)
	tracker := newDeliveryTracker(projectClient, d.project.ID)
	send := func(ctx context.Context, body []byte, key string) error {
		ev, err := projectClient.SendEventBody(ctx, d.project.ID, body, key)
		if err != nil {
			return simRetryable(err)
		}
		tracker.add(ev.ID)
		return nil
	}
	// 8 resources interleaved (not the default 16): the order still matters,
	// and the first videos are done within seconds.
	stats := &simulator.Stats{}
	simDone := make(chan struct{})
	var simTime time.Duration
	start := time.Now()
	go func() {
		defer close(simDone)
		_ = simulator.Run(runCtx, gen, send, simulator.RunConfig{Rate: d.rate, Concurrency: demoConcurrency, Active: 8, RunID: "demo-" + strconv.FormatUint(cfg.Seed, 36)}, stats)
		simTime = time.Since(start)
	}()
	if err := d.watch(ctx, runCtx, simDone, start, stats, tracker); err != nil {
		return err
	}
	<-simDone
	d.finish(ctx, start, stats, tracker, simTime)
	return nil
}

// watch prints the summary every --every until the simulator is done, and
// fails if the server stops on its own.
func (d *demoRun) watch(ctx, runCtx context.Context, simDone <-chan struct{}, start time.Time, stats *simulator.Stats, tracker *deliveryTracker) error {
	tick := time.NewTicker(d.o.every)
	defer tick.Stop()
	lines := 0
	for {
		select {
		case <-runCtx.Done():
			return nil
		case <-simDone:
			return nil
		case serr := <-d.srv.served:
			d.srv.down = true
			return fmt.Errorf("the server stopped: %v", serr)
		case <-tick.C:
			tracker.poll(ctx)
			fmt.Fprintln(d.stdout, demoLine(time.Since(start), stats, tracker, d.recv))
			if lines++; lines%demoReminderLines == 0 {
				fmt.Fprintln(d.stdout, d.reminder())
			}
		}
	}
}

// finish waits for the last deliveries when --duration ended, and prints the
// final counts.
func (d *demoRun) finish(ctx context.Context, start time.Time, stats *simulator.Stats, tracker *deliveryTracker, simTime time.Duration) {
	if ctx.Err() == nil {
		// --duration ended: give the last deliveries (a refused first attempt
		// is retried after 1 s, and holds its resource's later events) up to
		// 10 s, then count. (On Ctrl-C the server is already stopping: report
		// what is known.)
		fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
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
	fmt.Fprintln(d.stdout)
	fmt.Fprintln(d.stdout, label+demoLine(time.Since(start), stats, tracker, d.recv))
	fmt.Fprintln(d.stdout, "receiver (examples/statussync): "+d.recv.summary(context.WithoutCancel(ctx)))
	if note := demoRateNote(stats.Sent.Load(), simTime, d.rate); note != "" {
		fmt.Fprintln(d.stdout, note)
	}
}

// demoConcurrency is how many posts the demo's simulator has in flight.
const demoConcurrency = 4

// demoRateNote explains a run that posted well below --rate: the simulator
// waits for each post to be accepted, demoConcurrency at a time, so a slow
// server (a loaded machine) bounds the rate. "" when the rate was about met
// or the run was too short to tell.
func demoRateNote(sent int64, simTime time.Duration, rate float64) string {
	if rate <= 0 || simTime < 2*time.Second {
		return ""
	}
	got := float64(sent) / simTime.Seconds()
	if got >= 0.8*rate {
		return ""
	}
	return fmt.Sprintf("note: %d events in %.1f s is %.1f/s, below --rate %s/s: each post waits for the server's answer (%d at a time), and this server answered slowly (%.0f ms a post on average; a loaded machine?)",
		sent, simTime.Seconds(), got, strconv.FormatFloat(rate, 'f', -1, 64), demoConcurrency, float64(demoConcurrency)*1000/max(got, 0.001))
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
		rctx, rcancel := demoRequestCtx(ctx)
		err := c.Ready(rctx)
		rcancel()
		if err == nil {
			// Make sure it is ours: another program may have taken the port.
			lctx, lcancel := demoRequestCtx(ctx)
			_, err := c.ListProjects(lctx)
			lcancel()
			if err != nil {
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

// trackerResult is what one event's deliveries say, for poll.
type trackerResult struct {
	final             bool
	succeeded, failed int
	retrying          bool
}

// poll asks the API about open events (up to 400 per call, 8 at a time) and
// counts those whose deliveries are final.
func (t *deliveryTracker) poll(ctx context.Context) {
	t.mu.Lock()
	ids := append([]string(nil), t.open[:min(len(t.open), 400)]...)
	t.mu.Unlock()
	results := make([]trackerResult, len(ids))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, id := range ids {
		sem <- struct{}{}
		if ctx.Err() != nil {
			// Stopping: ask no more (the unasked stay open); the requests
			// in flight finish on their own contexts.
			<-sem
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			results[i] = t.ask(ctx, id)
		})
	}
	wg.Wait()
	t.record(ids, results)
}

// ask lists the deliveries of event id; a zero result (not final) when the
// API did not answer.
func (t *deliveryTracker) ask(ctx context.Context, id string) trackerResult {
	rctx, cancel := demoRequestCtx(ctx)
	defer cancel()
	ds, err := t.c.ListDeliveries(rctx, t.pid, id)
	if err != nil {
		return trackerResult{}
	}
	r := trackerResult{final: true}
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
	return r
}

// record counts the events of ids whose deliveries are final and keeps the
// others open.
func (t *deliveryTracker) record(ids []string, results []trackerResult) {
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

// demoReceiver is the demo's webhook receiver: examples/statussync itself
// (its Syncer on a SQLite file in the demo's data folder, behind the SDK's
// Handler checking every signature), wrapped to refuse a share of first
// attempts so that retries show in the dashboard, and to count what it
// handles for the demo's report.
type demoReceiver struct {
	h      http.Handler
	flaky  float64
	store  *statussync.Store
	dbPath string

	refused  atomic.Int64
	handled  atomic.Int64
	late     atomic.Int64 // events for a resource already in a final state (ordering broken)
	notified atomic.Int64
	mu       sync.Mutex
	tried    map[string]bool
}

// newDemoReceiver opens statussync's SQLite file at dbPath and builds its
// Handler for secret; notifications go to notes, a line each.
func newDemoReceiver(ctx context.Context, dbPath, secret string, flaky float64, notes io.Writer) (*demoReceiver, error) {
	store, err := statussync.OpenStore(ctx, dbPath)
	if err != nil {
		return nil, fmt.Errorf("receiver: %w", err)
	}
	r := &demoReceiver{flaky: flaky, store: store, dbPath: dbPath, tried: map[string]bool{}}
	syncer := &statussync.Syncer{Store: store, Notifier: &demoNotifier{w: notes, sent: &r.notified}}
	opts := syncer.HandlerOptions(kinehook.HandlerOptions{
		Secrets: []string{secret},
		Logger:  slog.New(slog.DiscardHandler),
	})
	media := opts.OnMediaStatus
	opts.OnMediaStatus = func(ctx context.Context, in *kinehook.Incoming, m kinehook.MediaData) error {
		final := false
		if v, err := store.GetVideo(ctx, m.ID); err == nil {
			switch kinehook.MediaStatus(v.Status) {
			case kinehook.StatusDone, kinehook.StatusError, kinehook.StatusAborted:
				final = true
			}
		}
		return r.count(final, media(ctx, in, m))
	}
	live := func(inner func(context.Context, *kinehook.Incoming, kinehook.LiveData) error) func(context.Context, *kinehook.Incoming, kinehook.LiveData) error {
		return func(ctx context.Context, in *kinehook.Incoming, l kinehook.LiveData) error {
			final := false
			if e, err := store.GetLiveEvent(ctx, l.EventID); err == nil {
				final = e.Status == "finished" || e.Status == "cancelled"
			}
			return r.count(final, inner(ctx, in, l))
		}
	}
	opts.OnLiveCreated = live(opts.OnLiveCreated)
	opts.OnLiveConnected = live(opts.OnLiveConnected)
	opts.OnLiveDisconnected = live(opts.OnLiveDisconnected)
	opts.OnLiveFinished = live(opts.OnLiveFinished)
	opts.OnLiveCancelled = live(opts.OnLiveCancelled)
	opts.OnLiveEnabled = live(opts.OnLiveEnabled)
	h, err := kinehook.NewHandler(opts)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("receiver: %w", err)
	}
	r.h = h
	return r, nil
}

// count records a handled event (when err is nil) and passes err on.
func (r *demoReceiver) count(late bool, err error) error {
	if err == nil {
		r.handled.Add(1)
		if late {
			r.late.Add(1)
		}
	}
	return err
}

// Close closes the SQLite file.
func (r *demoReceiver) Close() error {
	if err := r.store.Close(); err != nil {
		return fmt.Errorf("receiver: close %s: %w", r.dbPath, err)
	}
	return nil
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

// summary describes statussync's tables, as read from its SQLite file.
func (r *demoReceiver) summary(ctx context.Context) string {
	c, err := r.store.Counts(ctx)
	if err != nil {
		return fmt.Sprintf("cannot read %s: %v", r.dbPath, err)
	}
	videos, lives := 0, 0
	for _, n := range c.Videos {
		videos += n
	}
	for _, n := range c.LiveEvents {
		lives += n
	}
	done, failed, aborted := c.Videos[string(kinehook.StatusDone)], c.Videos[string(kinehook.StatusError)], c.Videos[string(kinehook.StatusAborted)]
	finished, cancelled := c.LiveEvents["finished"], c.LiveEvents["cancelled"]
	return fmt.Sprintf("handled %d events, sent %d notifications; videos %d (done %d, error %d, aborted %d, in progress %d); live streams %d (finished %d, %d with a recording; cancelled %d; on air or starting %d); events after a final status: %d",
		r.handled.Load(), r.notified.Load(), videos, done, failed, aborted, videos-done-failed-aborted,
		lives, finished, c.Recordings, cancelled, lives-finished-cancelled, r.late.Load())
}

// demoNotifier is statussync's Notifier in the demo: a short line on the
// demo's output per notification.
type demoNotifier struct {
	w    io.Writer
	sent *atomic.Int64
}

// Notify implements statussync.Notifier.
func (n *demoNotifier) Notify(_ context.Context, x statussync.Notification) error {
	var line string
	switch x.Kind {
	case statussync.VideoDone:
		line = "video " + x.VideoID + " is done"
	case statussync.VideoFailed:
		msg := strings.Join(strings.Fields(x.Message), " ")
		if r := []rune(msg); len(r) > 60 {
			msg = string(r[:57]) + "..."
		}
		line = "video " + x.VideoID + " failed: " + msg
	case statussync.VideoAborted:
		line = "video " + x.VideoID + " was aborted"
	case statussync.RecordingAvailable:
		line = "live event " + x.EventID + " finished, recording " + x.VideoID
	default:
		line = x.Kind + " " + x.VideoID + " " + x.EventID
	}
	// A notification the terminal cannot show is not worth a retry.
	_, _ = fmt.Fprintln(n.w, "      notify: "+line)
	n.sent.Add(1)
	return nil
}

// lockedWriter serializes whole writes, so that the notifier's lines and the
// summary lines, written from different goroutines, never interleave.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
