package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	nethttp "net/http"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/crypto/acme/autocert"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/app"
	"github.com/kinehook/kinehook/dashboard"
	"github.com/kinehook/kinehook/delivery"
	khttp "github.com/kinehook/kinehook/http"
	"github.com/kinehook/kinehook/internal/memlimit"
	"github.com/kinehook/kinehook/internal/netguard"
	"github.com/kinehook/kinehook/internal/secretbox"
	"github.com/kinehook/kinehook/postgres"
	"github.com/kinehook/kinehook/prometheus"
	"github.com/kinehook/kinehook/relay"
	"github.com/kinehook/kinehook/retention"
	"github.com/kinehook/kinehook/source"
	"github.com/kinehook/kinehook/sqlite"
	"github.com/kinehook/kinehook/webhook"
)

// serveOptions are the flags of `kinehook serve`; each is also read from
// the environment as KINEHOOK_<FLAG_IN_UPPER_SNAKE>.
type serveOptions struct {
	addr            string
	data            string
	database        string
	allowPrivate    bool
	allowCIDR       []string
	retrySchedule   string
	requestTimeout  time.Duration
	logFormat       string
	logLevel        string
	apiRateLimit    float64
	apiRateBurst    int
	shutdownTimeout time.Duration
	pprof           bool
	publicURL       string
	secureCookies   bool
	// secureCookiesSet: --secure-cookies was given; otherwise it follows TLS.
	secureCookiesSet bool
	tlsCert, tlsKey  string
	acmeDomains      []string
	acmeEmail        string
	acmeDirectory    string
	acmeCA           string
	memoryLimit      string
	gcPercent        int
	retentionDays    int
	retentionEvery   time.Duration
	listenGrace      time.Duration
	breakerAfter     int
	disableAfter     time.Duration
	sources          []string
	sourcesFile      string
	rejectedKeep     int
	rejectedDays     int

	// listener, when set (by `kinehook bench`), is served instead of
	// listening on addr, so an in-process server can take a free port.
	listener net.Listener
	// adminKey, when set (by `kinehook bench`), replaces KINEHOOK_ADMIN_KEY.
	adminKey string
}

// serveAdminKeyEnv holds the admin key; it has no flag so the key never
// shows in a process list.
const serveAdminKeyEnv = "KINEHOOK_ADMIN_KEY"

func init() { rootCmd.AddCommand(newServeCmd()) }

func newServeCmd() *cobra.Command {
	o := &serveOptions{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the webhook sender: the HTTP API and the delivery engine",
		Long: `Run the webhook sender: the HTTP API and the durable, ordered, signed delivery engine.

Every flag can also be set in the environment as KINEHOOK_<FLAG_IN_UPPER_SNAKE>
(for example KINEHOOK_ADDR, KINEHOOK_ALLOW_PRIVATE_NETWORKS); a flag beats the
environment. The admin key comes from KINEHOOK_ADMIN_KEY (at least 16
characters; a shorter one is refused); when it is unset on the first start,
a key is generated, stored hashed and printed once.

OpenTelemetry tracing is configured by the standard OTEL_* variables alone
and is on when OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
is set: spans of each ingest, commit and delivery attempt, exported with
OTLP over HTTP (see docs/tracing.md).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := serveApplyEnv(cmd.Flags(), os.LookupEnv); err != nil {
				return err
			}
			o.secureCookiesSet = cmd.Flags().Changed("secure-cookies")
			if err := checkPublicURL(o.publicURL); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			return runServe(ctx, o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.addr, "addr", "127.0.0.1:8080", "address to listen on")
	f.StringVar(&o.data, "data", "./kinehook-data", "data directory of the embedded store")
	f.StringVar(&o.database, "database", "", "database URL; postgres://... selects PostgreSQL instead of the embedded store")
	f.BoolVar(&o.allowPrivate, "allow-private-networks", false, "allow endpoints on loopback and private addresses (off: refused at registration and at dial time)")
	f.StringArrayVar(&o.allowCIDR, "allow-cidr", nil, "allow one private range, e.g. 10.1.2.0/24 (repeatable; comma-separated in the environment)")
	f.StringVar(&o.retrySchedule, "retry-schedule", "5s,5m,30m,2h,5h,10h,10h", "delays between attempts (Go durations, comma-separated; none: no retries); one retry after each, +/-10% jitter")
	f.DurationVar(&o.requestTimeout, "request-timeout", 15*time.Second, "timeout of one delivery attempt")
	f.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	f.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.Float64Var(&o.apiRateLimit, "api-rate-limit", khttp.DefaultRateLimit, "API requests per second allowed per key (0: no limit)")
	f.IntVar(&o.apiRateBurst, "api-rate-burst", khttp.DefaultRateBurst, "API request burst allowed per key")
	f.StringVar(&o.memoryLimit, "memory-limit", "100MiB", "soft limit of the Go heap (KiB, MiB, GiB suffixes; 0: none); GOMEMLIMIT, when set, wins")
	f.IntVar(&o.gcPercent, "gc-percent", defaultGCPercent, "how far (%) the Go heap may grow past its live data before a collection, under --memory-limit (0: Go's default, 100); GOGC, when set, wins")
	f.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long SIGTERM waits for requests and in-flight deliveries")
	f.IntVar(&o.retentionDays, "retention-days", 30, "remove events (with deliveries and attempts) older than this; a project's retention_days overrides it (0: keep forever)")
	f.DurationVar(&o.retentionEvery, "retention-interval", time.Hour, "how often retention runs")
	f.DurationVar(&o.listenGrace, "listen-grace", app.DefaultListenGrace, "how long the temporary endpoint of `kinehook listen --server` outlives its disconnect (a reconnect within it resumes)")
	f.BoolVar(&o.secureCookies, "secure-cookies", false, "mark the dashboard's session cookie Secure (__Host-); default: on when kinehook serves TLS itself, off otherwise (set it behind a TLS-terminating proxy)")
	f.StringVar(&o.tlsCert, "tls-cert", "", "serve HTTPS with this certificate chain (PEM); reloaded with --tls-key on SIGHUP without dropping connections")
	f.StringVar(&o.tlsKey, "tls-key", "", "the private key (PEM) of --tls-cert")
	f.StringArrayVar(&o.acmeDomains, "acme-domain", nil, "serve HTTPS with automatic certificates (ACME tls-alpn-01: the address must be reachable on port 443 under this name); repeatable; cached in the data folder, or in the database with PostgreSQL so that every instance shares them")
	f.StringVar(&o.acmeEmail, "acme-email", "", "contact address given to the ACME CA (expiry notices)")
	f.StringVar(&o.acmeDirectory, "acme-directory", autocert.DefaultACMEDirectory, "the ACME directory URL (default Let's Encrypt's production one)")
	f.StringVar(&o.acmeCA, "acme-ca", "", "PEM file of the CA that signs the ACME directory's own HTTPS certificate (a private ACME server)")
	f.IntVar(&o.breakerAfter, "breaker-threshold", delivery.DefaultBreakerThreshold, "consecutive failures that open an endpoint's circuit breaker (0: never)")
	f.DurationVar(&o.disableAfter, "disable-after", delivery.DefaultDisableAfter, "disable an endpoint that has failed continuously this long (0: never)")
	f.StringArrayVar(&o.sources, "source", nil, "take events from a broker into a project: nats://host:4222?stream=S&project=prj_..., amqp://user:pass@host:5672/vhost?queue=Q&project=..., redis://host:6379/0?stream=S&group=G&project=..., kafka://host:9092?topic=T&group=G&project=... (repeatable; see docs/sources.md)")
	f.StringVar(&o.sourcesFile, "sources", "", `JSON file of ingest sources: {"sources": [{"url": "...", "name": "...", "project": "prj_..."}]} (beside any --source)`)
	f.IntVar(&o.rejectedKeep, "rejected-keep", app.DefaultRejectedKeep, "rejected inputs of ingest sources kept per project, newest first (0: no count limit)")
	f.IntVar(&o.rejectedDays, "rejected-days", app.DefaultRejectedDays, "remove rejected inputs older than this many days (0: keep by count only)")
	f.StringVar(&o.publicURL, "public-url", "", "the server's address as browsers reach it (https://hooks.example.com): the base of customer portal URLs (default: the request's own)")
	f.BoolVar(&o.pprof, "pprof", false, "serve Go profiling at /debug/pprof/ (without a key: only on a trusted address)")
	return cmd
}

// never maps a flag's 0 ("never") to the engine's negative "never" (its 0
// means the default).
func never[T int | time.Duration](v T) T {
	if v == 0 {
		return -1
	}
	return v
}

// serveEnvName is the environment variable of a flag: KINEHOOK_ + upper snake case.
func serveEnvName(flag string) string {
	return "KINEHOOK_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// serveApplyEnv sets every flag not given on the command line from its
// environment variable, if set.
func serveApplyEnv(fs *pflag.FlagSet, lookup func(string) (string, bool)) error {
	var errs []error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed || f.Name == "help" {
			return
		}
		v, ok := lookup(serveEnvName(f.Name))
		if !ok {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", serveEnvName(f.Name), v, err))
		}
	})
	return errors.Join(errs...)
}

// parseRetrySchedule reads --retry-schedule: comma-separated positive Go
// durations, or "none" for one attempt and no retry. An empty value is
// refused: it is more often a template's blank than a wish for no retries.
func parseRetrySchedule(s string) ([]time.Duration, error) {
	s = strings.TrimSpace(s)
	switch s {
	case "":
		return nil, errors.New(`--retry-schedule is empty: give delays such as 5s,5m,30m, or "none" for no retries`)
	case "none":
		return []time.Duration{}, nil
	}
	var out []time.Duration
	for _, part := range strings.Split(s, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(part))
		if err != nil {
			return nil, fmt.Errorf("--retry-schedule: %q is not a Go duration such as 5s or 2h: %w", part, err)
		}
		if d <= 0 {
			return nil, fmt.Errorf("--retry-schedule: %q must be positive", part)
		}
		out = append(out, d)
	}
	return out, nil
}

// parseByteSize reads sizes such as 100MiB, 1GiB, 512KiB or a plain number
// of bytes; 0 or "" means no limit.
func parseByteSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"B", 1}} {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = strings.TrimSpace(n), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("%q is not a size such as 100MiB, 1GiB or 0", s)
	}
	return n * mult, nil
}

// newServeLogger builds the logger of --log-format and --log-level.
func newServeLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %q is not debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format: %q is not text or json", format)
}

// openServeStore opens PostgreSQL for a postgres:// --database, else the
// embedded SQLite store in --data.
// The coordinator is nil when this instance owns every partition.
func openServeStore(ctx context.Context, o *serveOptions, log *slog.Logger) (kinehook.Store, kinehook.Coordinator, error) {
	switch {
	case strings.HasPrefix(o.database, "postgres://"), strings.HasPrefix(o.database, "postgresql://"):
		return openServePostgres(ctx, o, log)
	case o.database != "":
		return nil, nil, fmt.Errorf("--database: %q is not a postgres:// URL; leave it empty for the embedded store in --data", redactURL(o.database))
	}
	if err := os.MkdirAll(o.data, 0o700); err != nil {
		return nil, nil, fmt.Errorf("create data directory: %w", err)
	}
	box, err := secretbox.Load(o.data)
	if err != nil {
		return nil, nil, fmt.Errorf("encryption key for secrets at rest: %w", err)
	}
	st, err := sqlite.Open(ctx, filepath.Join(o.data, "kinehook.db"), sqlite.Options{SecretBox: box, Logger: log})
	if err != nil {
		return nil, nil, fmt.Errorf("open the embedded store in %s: %w", o.data, err)
	}
	return st, nil, nil
}

// redactURL hides a password in a database URL.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		// Not a URL this can take apart: show its scheme only.
		if i := strings.Index(s, "://"); i >= 0 {
			return s[:i+3] + "***"
		}
		return "***"
	}
	if u.User != nil {
		u.User = url.User("***")
	}
	if q := u.Query(); q.Has("password") || q.Has("user") {
		for _, k := range []string{"password", "user"} {
			if q.Has(k) {
				q.Set(k, "***")
			}
		}
		u.RawQuery = q.Encode()
	}
	return strings.ReplaceAll(u.String(), "%2A%2A%2A", "***")
}

// minAdminKeyLen is the shortest admin key serve accepts, in characters:
// the key opens every project, and failed guesses are only rate-limited,
// never locked out.
const minAdminKeyLen = 16

// checkAdminKey refuses an admin key (KINEHOOK_ADMIN_KEY, or bench's) that
// is set but shorter than minAdminKeyLen, without showing it.
func checkAdminKey(key string) error {
	if n := utf8.RuneCountInString(key); key != "" && n < minAdminKeyLen {
		return fmt.Errorf("%s is %d characters long; an admin key must have at least %d (use 32 random bytes, e.g. `openssl rand -base64 32`, or unset it to have one generated and printed on the first start)", serveAdminKeyEnv, n, minAdminKeyLen)
	}
	return nil
}

// ensureAdminKey makes the store's admin key hash match KINEHOOK_ADMIN_KEY,
// or, when that is unset and no key is stored, generates a key, stores its
// hash and prints it once on out.
func ensureAdminKey(ctx context.Context, st kinehook.Store, envKey string, out io.Writer, log *slog.Logger) error {
	if err := checkAdminKey(envKey); err != nil {
		return err
	}
	if envKey != "" {
		if err := st.SetAdminKeyHash(ctx, kinehook.HashKey(envKey)); err != nil {
			return fmt.Errorf("store admin key hash: %w", err)
		}
		return nil
	}
	_, err := st.AdminKeyHash(ctx)
	if err == nil {
		log.Info("using the stored admin key (set " + serveAdminKeyEnv + " to replace it)")
		return nil
	}
	if kinehook.ErrorCode(err) != kinehook.ENOTFOUND {
		return fmt.Errorf("read admin key hash: %w", err)
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Errorf("generate admin key: %w", err)
	}
	key := "kh_admin_" + base64.RawURLEncoding.EncodeToString(b[:])
	if err := st.SetAdminKeyHash(ctx, kinehook.HashKey(key)); err != nil {
		return fmt.Errorf("store admin key hash: %w", err)
	}
	fmt.Fprintf(out, "kinehook: generated admin key (shown only this once, keep it): %s\n", key)
	return nil
}

// runServe runs the server until ctx ends, then shuts down in order: stop
// taking requests, let the engine finish or hand back in-flight deliveries,
// close the store.
func runServe(ctx context.Context, o *serveOptions, stdout, stderr io.Writer) (err error) {
	flags, err := parseServeFlags(o, stderr)
	if err != nil {
		return err
	}
	log := flags.log
	maxInFlight := delivery.MaxInFlightFor(softMemoryLimit(ctx, flags.memLimit))
	setGCPercent(o.gcPercent)
	st, coord, err := openServeStore(ctx, o, log)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := st.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close store: %w", cerr)
		}
	}()
	abilities, err := requireAbilities(st, coord)
	if err != nil {
		return err
	}
	if err := ensureAdminKey(ctx, st, flags.adminKey, stdout, log); err != nil {
		return err
	}

	tracer, err := startTracing(ctx, log, o.shutdownTimeout)
	if err != nil {
		return err
	}
	defer tracer.stop() // after the engine's shutdown: its last spans are exported

	var engine *delivery.Engine // read by the metrics at scrape time, once set
	metrics := prometheus.New(prometheus.Options{
		InFlight:       func() int { return engine.InFlight() },
		OpenDeliveries: func() (map[string]int, map[string]int) { return engine.OpenCounts() },
		LiveStreams: func(ctx context.Context) ([]kinehook.StateCount, error) {
			return st.CountStates(ctx, "", kinehook.StateLive)
		},
	})
	dests := newDestinations(destinationDial(o, flags))
	// The cli endpoints' transport and the app's relay: one object. With
	// other instances (PostgreSQL) it relays an attempt to the instance
	// holding the listener through the coordinator.
	peers, _ := coord.(kinehook.Peers)
	hub := relay.New(relay.Options{Peers: peers})
	// With other instances, sources that must be alone run where their
	// partition is owned (source.Gate); the gate sees the coordinator's
	// assignments.
	var gate *source.Gate
	if coord != nil {
		gate = source.NewGate()
		coord = gate.Wrap(coord)
	}
	engine, err = startServeEngine(ctx, o, flags, st, coord, maxInFlight, metrics, tracer.engineHook(), dests, hub)
	if err != nil {
		return err
	}
	engineDown := false
	defer func() {
		if !engineDown {
			sctx, cancel := context.WithTimeout(context.Background(), o.shutdownTimeout)
			defer cancel()
			_ = engine.Shutdown(sctx)
		}
	}()
	tlsCfg, err := serveTLSConfig(ctx, o, st, log)
	if err != nil {
		return err
	}
	if !o.secureCookiesSet {
		o.secureCookies = tlsCfg != nil
	}
	uc, err := app.New(app.Config{Store: st, Dispatcher: engine, Rejects: abilities.rejects, AllowPrivateNetworks: o.allowPrivate, AllowCIDRs: flags.cidrs,
		Destinations: destinationChecks(dests), Relay: hub, ListenGrace: o.listenGrace, Logger: log})
	if err != nil {
		return fmt.Errorf("application: %w", err)
	}
	go uc.RunListenerSweeper(ctx, log) // removes the cli endpoints whose grace is over
	handler, err := newServeHandler(o, flags, st, engine, uc, abilities, metrics)
	if err != nil {
		return err
	}
	handler = tracer.wrap(handler)
	// Ingest sources: started once the engine runs; stopped (their batch
	// in hand committed and acknowledged) before it shuts down.
	srcCtx, stopSources := context.WithCancel(ctx)
	waitSources, err := startSources(srcCtx, flags.sources, st, uc, metrics, gate, log)
	if err != nil {
		stopSources()
		return err
	}
	defer func() { stopSources(); waitSources() }()
	defer startRejectedPruner(srcCtx, abilities.rejects, o.rejectedKeep, o.rejectedDays, log)()
	ln := o.listener
	if ln == nil {
		if ln, err = net.Listen("tcp", o.addr); err != nil {
			return fmt.Errorf("listen on %s: %w", o.addr, err)
		}
	}
	srv := newHTTPServer(handler, log)
	srv.TLSConfig = tlsCfg
	logServing(log, o, ln)

	// Retention: shortly after start, then every --retention-interval, with
	// its metrics on /metrics; stopped (and waited for) before the store closes.
	cleaner, err := retention.New(retention.Config{Store: abilities.retention, DefaultDays: o.retentionDays, Interval: o.retentionEvery, Logger: log})
	if err != nil {
		return fmt.Errorf("--retention-days/--retention-interval: %w", err)
	}
	metrics.Registry().MustRegister(cleaner.Collectors()...)
	defer cleaner.Start(ctx)()

	if err := serveUntilDone(ctx, srv, ln); err != nil {
		return err
	}
	log.Info("shutting down: no new requests; finishing in-flight deliveries")
	sctx, cancel := context.WithTimeout(context.Background(), o.shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("HTTP shutdown", "err", err)
		_ = srv.Close()
	}
	stopSources()
	waitSources()
	engineDown = true
	if err := engine.Shutdown(sctx); err != nil {
		log.Warn("delivery engine shutdown", "err", err)
	}
	log.Info("stopped")
	return nil
}

// defaultGCPercent is serve's --gc-percent. A server's live heap is small
// (tens of MB) and its garbage is per request, so Go's 100 collects very
// often: 200 took about a tenth off the CPU per delivery in the throughput
// bench for 6 MB more RSS, and the soft memory limit still bounds a
// backlog's heap as before (its peak RSS did not change).
const defaultGCPercent = 200

// setGCPercent sets the collector's target unless GOGC is set (it wins, as
// GOMEMLIMIT does over --memory-limit) or p is 0 (Go's default stays).
func setGCPercent(p int) {
	if p > 0 && os.Getenv("GOGC") == "" {
		debug.SetGCPercent(p)
	}
}

// softMemoryLimit sets the heap's soft limit and returns the limit the
// requests in flight are sized to. A soft limit makes the collector work
// before the heap doubles a large live set (a long backlog). It is a floor,
// not a wall: when the memory really needed outgrows it (thousands of
// deliveries in flight) and the collector starts running back to back, the
// limit is raised instead. The requests in flight are sized to the limit as
// set (GOMEMLIMIT's when it wins), not to what the adaptive limit is raised to.
func softMemoryLimit(ctx context.Context, memLimit int64) int64 {
	if os.Getenv("GOMEMLIMIT") != "" {
		return debug.SetMemoryLimit(-1)
	}
	if memLimit > 0 {
		memlimit.Adaptive(ctx, memLimit, 250*time.Millisecond)
	}
	return memLimit
}

// commitLingers are the engine's longest waits for fuller batches under
// load, by the store opened (0: the engine's defaults, which suit the
// embedded store, whose commits cost CPU per page written). PostgreSQL's
// commits wait on the network and the disk instead, and there a longer wait
// only stretches each commit cycle: it gets delivery.ShortLinger.
func commitLingers(st kinehook.Store) (ingest, result time.Duration) {
	if _, ok := st.(*postgres.Store); ok {
		return delivery.ShortLinger, delivery.ShortLinger
	}
	return 0, 0
}

// startServeEngine builds the delivery engine with the HTTP transport and
// the destinations' and starts it on its own context: SIGTERM stops it
// through Shutdown, which closes the destinations' connections.
func startServeEngine(ctx context.Context, o *serveOptions, flags *serveFlags, st kinehook.Store, coord kinehook.Coordinator,
	maxInFlight int, metrics *prometheus.Metrics, tracer delivery.Tracer, dests []destination, hub *relay.Hub) (*delivery.Engine, error) {
	web := webhook.New(webhook.Options{Client: deliveryClient(o, flags.cidrs, maxInFlight)})
	transports := destinationTransports(web, dests)
	transports[kinehook.EndpointCLI] = hub
	ingestLinger, resultLinger := commitLingers(st)
	engine, err := delivery.New(delivery.Config{
		Store:            st,
		MaxInFlight:      maxInFlight,
		Coordinator:      coord,
		Transports:       transports,
		RetrySchedule:    flags.schedule,
		RequestTimeout:   o.requestTimeout,
		BreakerThreshold: never(o.breakerAfter),
		DisableAfter:     never(o.disableAfter),
		Logger:           flags.log,
		Observer:         metrics,
		Tracer:           tracer,
		IngestLinger:     ingestLinger,
		ResultLinger:     resultLinger,
	})
	if err != nil {
		return nil, fmt.Errorf("delivery engine: %w", err)
	}
	if err := engine.Start(context.WithoutCancel(ctx)); err != nil {
		return nil, fmt.Errorf("start delivery engine: %w", err)
	}
	return engine, nil
}

// newServeHandler builds the API and the dashboard over the one application
// layer they (and the ingest sources) share (the same rules, one key cache,
// one set of per-project locks), and the top-level router, with metrics.
func newServeHandler(o *serveOptions, flags *serveFlags, st kinehook.Store, engine *delivery.Engine, uc *app.App,
	abilities serveAbilities, metrics *prometheus.Metrics) (nethttp.Handler, error) {
	rate := o.apiRateLimit
	if rate <= 0 {
		rate = -1
	}
	api, err := khttp.NewServer(khttp.Config{
		Store: st, Dispatcher: engine, App: uc, Logger: flags.log,
		Ready:     abilities.ready, // PostgreSQL: not ready while the leases cannot be renewed
		RateLimit: rate, RateBurst: o.apiRateBurst,
		Metrics: metrics.Handler(), Pprof: o.pprof, PublicURL: o.publicURL,
	})
	if err != nil {
		return nil, fmt.Errorf("API server: %w", err)
	}
	dash, err := dashboard.New(dashboard.Config{Store: st, Dispatcher: engine, App: uc, Logger: flags.log, SecureCookies: o.secureCookies})
	if err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	return metrics.Instrument(newRootHandler(api, dash)), nil
}

// newHTTPServer is the listener's server, with timeouts for slow clients.
func newHTTPServer(h nethttp.Handler, log *slog.Logger) *nethttp.Server {
	return &nethttp.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		// Room above the API's own limit, so that oversized headers and
		// URLs reach it and get its JSON 431/414, not net/http's text.
		MaxHeaderBytes: 1 << 20,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// logServing logs the start line with the settings that matter.
func logServing(log *slog.Logger, o *serveOptions, ln net.Listener) {
	store := "sqlite:" + filepath.Join(o.data, "kinehook.db")
	if o.database != "" {
		store = redactURL(o.database)
	}
	scheme := "http://"
	if o.tlsCert != "" || len(o.acmeDomains) > 0 {
		scheme = "https://"
	}
	log.Info("kinehook serving", "addr", scheme+ln.Addr().String(), "store", store, "secure_cookies", o.secureCookies,
		"allow_private_networks", o.allowPrivate, "retry_schedule", o.retrySchedule, "request_timeout", o.requestTimeout,
		"api_rate_limit", o.apiRateLimit, "retention_days", o.retentionDays, "retention_interval", o.retentionEvery, "pprof", o.pprof,
		"breaker_threshold", o.breakerAfter, "disable_after", o.disableAfter)
}

// serveUntilDone serves until ctx ends (nil) or the server fails.
func serveUntilDone(ctx context.Context, srv *nethttp.Server, ln net.Listener) error {
	served := make(chan error, 1)
	go func() {
		if srv.TLSConfig != nil {
			served <- srv.ServeTLS(ln, "", "") // the certificate comes from TLSConfig.GetCertificate
			return
		}
		served <- srv.Serve(ln)
	}()
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
		return nil
	}
}

// deliveryClient is the engine's HTTP client: the network guard on every
// dial, and as many idle connections per host as the engine may have in
// flight (maxInFlight). Endpoints often share a host (one receiver, many
// endpoints); an idle pool smaller than the concurrency closes connections
// after each burst only to dial them again (10 endpoints on one host spent
// 9% of the CPU dialling with a pool of 256). A larger one keeps connections
// (two goroutines and their buffers each) that the engine never uses at once,
// so the pool over all hosts is no larger either.
func deliveryClient(o *serveOptions, cidrs []netip.Prefix, maxInFlight int) *nethttp.Client {
	return netguard.NewClient(netguard.ClientOptions{AllowPrivate: o.allowPrivate, AllowCIDRs: cidrs,
		Timeout: o.requestTimeout + 5*time.Second, MaxIdleConnsPerHost: maxInFlight, MaxIdleConns: maxInFlight})
}

// checkPublicURL checks --public-url: empty, or an absolute http(s) URL
// without a query or fragment (portal URLs are built on it).
func checkPublicURL(raw string) error {
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("--public-url %q: want an absolute https:// (or http://) URL such as https://hooks.example.com", raw)
	}
	return nil
}
