// Package sqlite is the embedded kinehook.Store: one SQLite file in WAL mode,
// written through a single connection (SQLite allows one writer at a time, so
// a pool of writers would only queue on the file lock) and read through a
// small pool of reader connections that WAL lets run beside the writer.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/internal/storehealth"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Options configure Open.
type Options struct {
	// SecretBox seals endpoint secrets, logins, passwords and custom headers at rest; nil
	// stores them in plain text.
	SecretBox kinehook.SecretBox
	// Logger receives warnings (nil = slog.Default()).
	Logger *slog.Logger
	// Readers is the size of the reader pool (0 = 4).
	Readers int
	// CheckpointInterval is how often a background connection copies the
	// WAL into the main file (0 = 1s; negative = never, leaving it to
	// SQLite's automatic checkpoint inside commits).
	CheckpointInterval time.Duration
}

// Store is the SQLite kinehook.Store.
type Store struct {
	path string
	w    *sql.DB            // exactly one connection: every write goes through it
	r    *sql.DB            // reader pool
	box  kinehook.SecretBox // nil: secrets in plain text
	log  *slog.Logger
	// health tells an outage (full disk, failing disk) from single failures.
	health *storehealth.Tracker

	// Statements prepared on the writer, reused by every transaction.
	insIdem, selIdem, selEndpointsLite *sql.Stmt
	selState, upCount                  *sql.Stmt
	// The background checkpointer (nil channels when disabled).
	ckptStop, ckptDone chan struct{}
	closeOnce          sync.Once
	// Multi-row INSERTs by row count, prepared at Open.
	bulkStmts map[bulkKey]*sql.Stmt
}

var _ kinehook.Store = (*Store)(nil)

// Pragmas for every connection.
//
// Durability: journal_mode=WAL with synchronous=NORMAL. A commit returns once
// its frames are written to the WAL file, which the kernel keeps when the
// process crashes or is SIGKILLed; only the WAL checkpoint is fsynced. So an
// accepted event survives a process crash (the product's contract: 202 means
// durable across SIGKILL); a power loss or kernel panic may lose the last
// commits before the next checkpoint. synchronous=FULL would fsync every
// commit and cost most of the ingest throughput.
func dsn(path string, writer bool) string {
	q := url.Values{}
	pragmas := []string{
		"busy_timeout(10000)",
		"journal_mode(WAL)",
		"synchronous(NORMAL)",
		"foreign_keys(1)",
		"journal_size_limit(67108864)",
		"temp_store(MEMORY)",
	}
	if writer {
		// Checkpoints normally run on the background connection (see
		// checkpointLoop), off the commit path; this is the safety valve
		// should that fall behind: a commit checkpoints once the WAL holds
		// 20000 pages (80 MB).
		pragmas = append(pragmas, "wal_autocheckpoint(20000)")
		// auto_vacuum only takes effect on a new file, before the first
		// table; it lets IncrementalVacuum give freed pages back to the OS.
		pragmas = append([]string{"auto_vacuum(INCREMENTAL)"}, pragmas...)
		// 8 MB of page cache: the writer touches the tails of its b-trees
		// and recent rows. 16 MB wrote no faster (2-16 MB measured) and
		// cost the server 17 MB of RSS (the cache lives outside the Go
		// heap, so the soft memory limit cannot see it).
		pragmas = append(pragmas, "cache_size(-8000)")
		q.Set("_txlock", "immediate")
	} else {
		pragmas = append(pragmas, "cache_size(-4000)")
	}
	for _, p := range pragmas {
		q.Add("_pragma", p)
	}
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
}

// Open opens (creating if needed) the store at path and applies pending
// migrations.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Readers <= 0 {
		opts.Readers = 4
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: resolve %s: %w", path, err)
	}
	w, err := sql.Open("sqlite", dsn(abs, true))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open writer: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	s := &Store{path: abs, w: w, box: opts.SecretBox, log: opts.Logger}
	s.health = storehealth.New(storehealth.Config{Name: "sqlite", Classify: classify, Probe: s.probe, Logger: opts.Logger})
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", abs, err)
	}
	if err := s.migrate(ctx); err != nil {
		w.Close()
		return nil, err
	}
	if n, err := s.sealLegacy(ctx); err != nil {
		w.Close()
		return nil, err
	} else if n > 0 {
		s.log.Info("sqlite: sealed the secrets and custom headers of older endpoints", "endpoints", n)
	}
	r, err := sql.Open("sqlite", dsn(abs, false))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open readers: %w", err)
	}
	r.SetMaxOpenConns(opts.Readers)
	r.SetMaxIdleConns(opts.Readers)
	r.SetConnMaxIdleTime(5 * time.Minute)
	s.r = r
	if opts.CheckpointInterval == 0 {
		opts.CheckpointInterval = time.Second
	}
	if opts.CheckpointInterval > 0 {
		s.ckptStop = make(chan struct{})
		s.ckptDone = make(chan struct{})
		go s.checkpointLoop(opts.CheckpointInterval)
	}
	if err := s.prepare(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) prepare(ctx context.Context) error {
	stmts := []struct {
		dst **sql.Stmt
		sql string
	}{
		{&s.insIdem, `INSERT INTO idempotency_keys (project_id, key, event_seq, created_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (project_id, key) DO UPDATE SET event_seq = excluded.event_seq, created_at = excluded.created_at`},
		{&s.selIdem, `SELECT event_seq, created_at FROM idempotency_keys WHERE project_id = ? AND key = ?`},
		// One row per enabled endpoint, or one of NULLs when the project has
		// none; no row when the project is gone (deleted meanwhile).
		{&s.selEndpointsLite, `SELECT e.id, e.event_types FROM projects p
			LEFT JOIN endpoints e ON e.project_id = p.id AND e.disabled = 0 WHERE p.id = ?`},
		{&s.selState, `SELECT ` + stateColsS + ` FROM json_each(?) AS j CROSS JOIN resource_state AS s
			ON s.project_id = j.value ->> 0 AND s.kind = j.value ->> 1 AND s.id = j.value ->> 2`},
		{&s.upCount, `INSERT INTO state_counts (project_id, kind, status, count) VALUES (?, ?, ?, ?)
			ON CONFLICT (project_id, kind, status) DO UPDATE SET count = count + excluded.count`},
	}
	for _, st := range stmts {
		p, err := s.w.PrepareContext(ctx, st.sql)
		if err != nil {
			return fmt.Errorf("sqlite: prepare %q: %w", st.sql, err)
		}
		*st.dst = p
	}
	return s.prepareBulk(ctx)
}

// migrate applies the embedded migrations not yet recorded in
// schema_migrations, each in its own transaction, in file-name order.
func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("sqlite: create schema_migrations: %w", err)
	}
	files, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("sqlite: list migrations: %w", err)
	}
	slices.Sort(files)
	known := 0
	for _, f := range files {
		if v, err := strconv.Atoi(strings.SplitN(filepath.Base(f), "_", 2)[0]); err == nil {
			known = max(known, v)
		}
	}
	var newest sql.NullInt64
	if err := s.w.QueryRowContext(ctx, `SELECT max(version) FROM schema_migrations`).Scan(&newest); err != nil {
		return fmt.Errorf("sqlite: read schema version: %w", err)
	}
	if newest.Valid && int(newest.Int64) > known {
		return fmt.Errorf("sqlite: %s has schema version %d, newer than this kinehook knows (%d): use a newer kinehook or restore a backup",
			s.path, newest.Int64, known)
	}
	var applied []int
	defer func() {
		// One line, as PostgreSQL's store logs (a new store's first start
		// printed a line per migration above the admin key); also when a
		// later migration fails.
		if len(applied) > 0 {
			s.log.Info("sqlite: migrations applied", "versions", applied)
		}
	}()
	for _, f := range files {
		name := filepath.Base(f)
		num, _, ok := strings.Cut(name, "_")
		version, err := strconv.Atoi(num)
		if !ok || err != nil {
			return fmt.Errorf("sqlite: migration %s: name must start with a number and '_'", name)
		}
		body, err := migrationFS.ReadFile(f)
		if err != nil {
			return fmt.Errorf("sqlite: read migration %s: %w", name, err)
		}
		done, err := s.applyMigration(ctx, version, name, string(body))
		if err != nil {
			return err
		}
		if done {
			applied = append(applied, version)
		}
	}
	return nil
}

// applyMigration runs one migration unless it is recorded already, and
// reports whether it ran.
func (s *Store) applyMigration(ctx context.Context, version int, name, body string) (bool, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("sqlite: migration %s: begin: %w", name, err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, version).Scan(&n); err != nil {
		return false, fmt.Errorf("sqlite: migration %s: check: %w", name, err)
	}
	if n > 0 {
		return false, nil
	}
	if _, err := tx.ExecContext(ctx, body); err != nil {
		return false, fmt.Errorf("sqlite: migration %s: %w", name, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
		version, name, time.Now().UnixMicro()); err != nil {
		return false, fmt.Errorf("sqlite: migration %s: record: %w", name, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("sqlite: migration %s: commit: %w", name, err)
	}
	return true, nil
}

// Path returns the absolute path of the database file.
func (s *Store) Path() string { return s.path }

// Ping checks that both the reader pool and the writer answer.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.r.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
		return fmt.Errorf("sqlite: ping reader: %w", err)
	}
	if err := s.w.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: ping writer: %w", err)
	}
	return nil
}

// Close closes the statements and both pools; the WAL is checkpointed by
// SQLite when the last connection closes.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.health.Close()
		if s.ckptStop != nil {
			close(s.ckptStop)
			<-s.ckptDone
		}
	})
	for _, st := range []*sql.Stmt{s.insIdem, s.selIdem, s.selEndpointsLite, s.selState, s.upCount} {
		if st != nil {
			st.Close()
		}
	}
	for _, st := range s.bulkStmts {
		st.Close()
	}
	var errs []error
	if s.r != nil {
		errs = append(errs, s.r.Close())
	}
	errs = append(errs, s.w.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sqlite: close: %w", err)
	}
	return nil
}

// Time encoding: unix microseconds, 0 for the zero time.
func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}

// notFound wraps kinehook.ErrNotFound with what was looked for.
func notFound(what, id string) error {
	return fmt.Errorf("sqlite: %s %s: %w", what, id, kinehook.ErrNotFound)
}

// placeholders returns "?, ?, ?" for n arguments.
func placeholders(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat("?, ", n-1) + "?"
}

// rollback is for deferred use after a successful Commit (it is then a no-op).
func rollback(tx *sql.Tx) { _ = tx.Rollback() }

// checkpointLoop copies committed WAL frames into the database file every
// interval through a reader connection (PASSIVE: it never blocks the writer
// or readers). Doing it here rather than inside a commit keeps the page
// copying and the fsync of the main file off the ingest path and on the
// other core.
func (s *Store) checkpointLoop(interval time.Duration) {
	defer close(s.ckptDone)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.ckptStop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		var busy, frames, done int
		err := s.r.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &done)
		cancel()
		if err != nil && s.health.Fail(err) == "" {
			s.log.Warn("sqlite: background checkpoint", "err", err)
		}
	}
}
