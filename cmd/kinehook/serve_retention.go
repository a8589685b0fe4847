package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/kinehook/kinehook"
)

// retentionStore is the retention side of the stores (SQLite and PostgreSQL
// both have it): remove a project's events created before a time, with
// their deliveries and attempts, in short transactions, keeping any event
// whose delivery is still pending or retrying.
type retentionStore interface {
	DeleteBefore(ctx context.Context, projectID string, before time.Time, batch int) (int, error)
}

// vacuumStore gives freed space back to the file system (SQLite).
type vacuumStore interface {
	IncrementalVacuum(ctx context.Context) (int64, error)
}

// retentionBatch is how many events one retention transaction removes.
const retentionBatch = 500

// retentionCleaner removes old events in the background: each project keeps
// its RetentionDays, or the server's default when that is 0.
type retentionCleaner struct {
	store       kinehook.Store
	del         retentionStore
	defaultDays int
	interval    time.Duration
	log         *slog.Logger
	now         func() time.Time
}

// newRetentionCleaner returns nil when the store has no retention support
// or retention is off (days <= 0 and no project could override it).
func newRetentionCleaner(st kinehook.Store, days int, interval time.Duration, log *slog.Logger) *retentionCleaner {
	del, ok := st.(retentionStore)
	if !ok || interval <= 0 {
		return nil
	}
	return &retentionCleaner{store: st, del: del, defaultDays: days, interval: interval, log: log, now: time.Now}
}

// runOnce applies retention to every project and returns how many events it removed.
func (c *retentionCleaner) runOnce(ctx context.Context) (int, error) {
	projects, err := c.store.ListProjects(ctx)
	if err != nil {
		return 0, fmt.Errorf("retention: list projects: %w", err)
	}
	total := 0
	for _, p := range projects {
		days := p.RetentionDays
		if days <= 0 {
			days = c.defaultDays
		}
		if days <= 0 {
			continue
		}
		before := c.now().Add(-time.Duration(days) * 24 * time.Hour)
		n, err := c.del.DeleteBefore(ctx, p.ID, before, retentionBatch)
		total += n
		if err != nil {
			return total, fmt.Errorf("retention: project %s: %w", p.ID, err)
		}
	}
	if v, ok := c.store.(vacuumStore); ok && total > 0 {
		if _, err := v.IncrementalVacuum(ctx); err != nil {
			return total, fmt.Errorf("retention: vacuum: %w", err)
		}
	}
	return total, nil
}

// run applies retention at start and then every interval until ctx ends.
func (c *retentionCleaner) run(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		n, err := c.runOnce(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			c.log.Error("retention failed", "err", err, "removed", n)
		case n > 0:
			c.log.Info("retention removed old events", "events", n, "duration_ms", time.Since(start).Milliseconds())
		}
		t.Reset(c.interval)
	}
}
