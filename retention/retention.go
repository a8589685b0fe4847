// Package retention is the background cleaner that keeps the event log from
// filling the disk: every interval it removes, per project, the events older
// than the project's retention (or the server default) together with their
// deliveries and attempts, in small transactions, never touching an event
// whose delivery is still pending or retrying. On the embedded store it then
// returns the freed pages to the file system (incremental vacuum).
//
// The cleaner works through kinehook.RetentionStore, which both the sqlite
// and the postgres stores implement; the batching and the "never
// remove open work" rule live in their DeleteBefore.
package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	prom "github.com/prometheus/client_golang/prometheus"

	"github.com/kinehook/kinehook"
)

// Store is what the cleaner needs from a backend: the projects (for their
// retention override) and batched deletion of old, finished events. It is
// kinehook.RetentionStore, named in the root package so that wiring can
// require it of a store.
type Store = kinehook.RetentionStore

// Vacuumer is implemented by stores whose file keeps freed space until told
// to give it back (the embedded SQLite store). The cleaner calls it after a
// run that removed something.
type Vacuumer interface {
	IncrementalVacuum(ctx context.Context) (int64, error)
}

// Defaults of Config.
const (
	DefaultDays       = 30
	DefaultInterval   = time.Hour
	DefaultFirstDelay = 10 * time.Second
	DefaultBatch      = 1000
)

// Config configures a Cleaner.
type Config struct {
	// Store is the backend to clean (required).
	Store Store
	// DefaultDays is the retention of projects without their own
	// RetentionDays. 0 keeps such projects' events forever; negative is an
	// error. Use DefaultDays (30) for the server's default.
	DefaultDays int
	// Interval between runs (0: DefaultInterval).
	Interval time.Duration
	// FirstDelay is the wait before the first run after Start, so that a
	// starting server recovers its queues first (0: DefaultFirstDelay;
	// negative: run at once).
	FirstDelay time.Duration
	// Batch is the number of events removed per transaction (0: DefaultBatch).
	Batch int
	// Now is the clock (nil: time.Now); tests move it.
	Now func() time.Time
	// Logger receives one line per run that removed something, and errors
	// (nil: slog.Default()).
	Logger *slog.Logger
}

// Result is what one run did.
type Result struct {
	// Projects is the number of projects looked at.
	Projects int
	// Events is the number of events removed (their deliveries and attempts
	// went with them).
	Events int
	// StatsRows is the number of statistics rollup rows removed (older than
	// their resolution keeps them, kinehook.StatsResolutions).
	StatsRows int
	// FreedPages is the number of file pages given back by incremental
	// vacuum (embedded store only).
	FreedPages int64
	// Duration is how long the run took.
	Duration time.Duration
}

// Cleaner removes old events on a schedule. Its methods are safe for
// concurrent use; runs never overlap.
type Cleaner struct {
	cfg Config
	log *slog.Logger

	runMu sync.Mutex // one run at a time

	removed     prom.Counter
	freed       prom.Counter
	runs        *prom.CounterVec
	lastSuccess prom.Gauge
	totalEvents atomic.Int64
}

// New checks cfg and returns a Cleaner; Start runs it in the background,
// RunOnce runs it once.
func New(cfg Config) (*Cleaner, error) {
	if cfg.Store == nil {
		return nil, errors.New("retention: Config.Store is required")
	}
	if cfg.DefaultDays < 0 {
		return nil, fmt.Errorf("retention: default retention of %d days is negative", cfg.DefaultDays)
	}
	if cfg.Interval < 0 || cfg.Batch < 0 {
		return nil, fmt.Errorf("retention: negative interval (%v) or batch (%d)", cfg.Interval, cfg.Batch)
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.FirstDelay == 0 {
		cfg.FirstDelay = DefaultFirstDelay
	}
	if cfg.Batch == 0 {
		cfg.Batch = DefaultBatch
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &Cleaner{cfg: cfg, log: cfg.Logger}
	if c.log == nil {
		c.log = slog.Default()
	}
	c.removed = prom.NewCounter(prom.CounterOpts{
		Name: "kinehook_retention_events_removed_total",
		Help: "Events removed by retention (their deliveries and attempts went with them).",
	})
	c.freed = prom.NewCounter(prom.CounterOpts{
		Name: "kinehook_retention_vacuum_pages_total",
		Help: "Database pages given back to the file system after retention (embedded store).",
	})
	c.runs = prom.NewCounterVec(prom.CounterOpts{
		Name: "kinehook_retention_runs_total",
		Help: "Retention runs by result (ok, error).",
	}, []string{"result"})
	c.lastSuccess = prom.NewGauge(prom.GaugeOpts{
		Name: "kinehook_retention_last_success_timestamp_seconds",
		Help: "Unix time at which the last retention run finished without error (0: none yet).",
	})
	return c, nil
}

// Collectors returns the cleaner's Prometheus metrics, for registering beside
// the server's others.
func (c *Cleaner) Collectors() []prom.Collector {
	return []prom.Collector{c.removed, c.freed, c.runs, c.lastSuccess}
}

// Removed returns the number of events removed since New.
func (c *Cleaner) Removed() int64 { return c.totalEvents.Load() }

// Retention returns the retention that applies to p: its own RetentionDays,
// else the default; 0 means keep forever.
func (c *Cleaner) Retention(p *kinehook.Project) time.Duration {
	days := p.RetentionDays
	if days <= 0 {
		days = c.cfg.DefaultDays
	}
	// Stored before the API bounded it, a larger count would overflow.
	days = min(days, kinehook.MaxRetentionDays)
	return time.Duration(days) * 24 * time.Hour
}

// RunOnce removes, for every project, the finished events older than its
// retention, then vacuums the embedded store if anything went. A failure on
// one project does not stop the others; the errors come back joined.
func (c *Cleaner) RunOnce(ctx context.Context) (Result, error) {
	c.runMu.Lock()
	defer c.runMu.Unlock()
	start := time.Now()
	res, err := c.run(ctx)
	res.Duration = time.Since(start)
	c.removed.Add(float64(res.Events))
	c.freed.Add(float64(res.FreedPages))
	c.totalEvents.Add(int64(res.Events))
	if err != nil && ctx.Err() != nil {
		// Shutdown: the run stops between batches; nothing is wrong.
		c.log.Info("retention run interrupted", "events_removed", res.Events, "duration", res.Duration)
		return res, err
	}
	if err != nil {
		c.runs.WithLabelValues("error").Inc()
		level := slog.LevelError
		if c.cfg.Store.Health().Fail(err) != "" {
			// A store outage, which the store's tracker logs as one ERROR.
			level = slog.LevelWarn
		}
		c.log.Log(ctx, level, "retention run failed", "err", err, "events_removed", res.Events, "duration", res.Duration)
		return res, err
	}
	c.runs.WithLabelValues("ok").Inc()
	c.lastSuccess.Set(float64(time.Now().Unix()))
	if res.Events > 0 || res.FreedPages > 0 || res.StatsRows > 0 {
		c.log.Info("retention removed old events", "events_removed", res.Events, "projects", res.Projects,
			"stats_rows_removed", res.StatsRows, "pages_freed", res.FreedPages, "duration", res.Duration)
	} else {
		c.log.Debug("retention: nothing to remove", "projects", res.Projects, "duration", res.Duration)
	}
	return res, nil
}

func (c *Cleaner) run(ctx context.Context) (Result, error) {
	var res Result
	projects, err := c.cfg.Store.ListProjects(ctx)
	if err != nil {
		return res, fmt.Errorf("retention: list projects: %w", err)
	}
	now := c.cfg.Now()
	var errs []error
	for _, p := range projects {
		if err := ctx.Err(); err != nil {
			errs = append(errs, fmt.Errorf("retention: %w", err))
			break
		}
		keep := c.Retention(p)
		if keep <= 0 {
			continue // kept forever
		}
		res.Projects++
		n, err := c.cfg.Store.DeleteBefore(ctx, p.ID, now.Add(-keep), c.cfg.Batch)
		res.Events += n
		if err != nil {
			errs = append(errs, fmt.Errorf("retention: project %s: %w", p.ID, err))
		}
	}
	if ctx.Err() == nil {
		n, err := c.cfg.Store.PruneStats(ctx, now)
		res.StatsRows = n
		if err != nil {
			errs = append(errs, fmt.Errorf("retention: statistics: %w", err))
		}
	}
	if v, ok := c.cfg.Store.(Vacuumer); ok && res.Events > 0 && ctx.Err() == nil {
		pages, err := v.IncrementalVacuum(ctx)
		res.FreedPages = pages
		if err != nil {
			errs = append(errs, fmt.Errorf("retention: vacuum: %w", err))
		}
	}
	return res, errors.Join(errs...)
}

// Start runs the cleaner in the background: once after FirstDelay, then
// every Interval, until ctx ends or the returned stop is called. stop waits
// for a run in progress to end (it is cancelled), so the store can be
// closed right after.
func (c *Cleaner) Start(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.loop(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}

func (c *Cleaner) loop(ctx context.Context) {
	wait := max(c.cfg.FirstDelay, 0)
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		_, _ = c.RunOnce(ctx) // logged and counted by RunOnce
		t.Reset(c.cfg.Interval)
	}
}
