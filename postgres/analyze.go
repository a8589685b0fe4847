package postgres

import (
	"context"
	"time"
)

// firstAnalyzeRows is how many events a store writes before it analyzes the
// tables its ingest reads by key, once, when nothing analyzed them before.
//
// Why: on a fresh database PostgreSQL has no statistics for resource_state
// until autovacuum's first pass (up to a minute after the first rows), and
// without them it read the ingest's states by key through
// resource_state_status, the index it believed as cheap as the primary key:
// that scans every video of the project for each key, 20-165 ms per commit
// at 10,000 videos. One ANALYZE of a table of a thousand rows takes
// milliseconds and settles the plan.
const firstAnalyzeRows = 1000

// analyzeWhenGrown counts n events written and, the first time the count
// reaches firstAnalyzeRows, starts firstAnalyze in the background.
func (s *Store) analyzeWhenGrown(n int) {
	if s.analyzeStarted.Load() || s.ingested.Add(int64(n)) < firstAnalyzeRows || !s.analyzeStarted.CompareAndSwap(false, true) {
		return
	}
	s.bg.Go(s.firstAnalyze)
}

// firstAnalyze analyzes the hot tables unless resource_state was analyzed
// before (by autovacuum, an operator, or this store on another instance).
// Close cancels it.
func (s *Store) firstAnalyze() {
	ctx, cancel := context.WithTimeout(s.bgCtx, time.Minute)
	defer cancel()
	var analyzed bool
	err := s.pool.QueryRow(ctx, `SELECT coalesce(last_analyze, last_autoanalyze) IS NOT NULL
		FROM pg_stat_user_tables WHERE relid = 'resource_state'::regclass`).Scan(&analyzed)
	if err == nil && !analyzed {
		_, err = s.pool.Exec(ctx, `ANALYZE resource_state, events, deliveries`)
	}
	if err != nil && ctx.Err() == nil {
		s.log.Warn("postgres: first analyze of the ingest's tables", "err", err)
	}
}
