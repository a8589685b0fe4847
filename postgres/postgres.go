// Package postgres is the PostgreSQL backend of kinehook: a kinehook.Store
// for many stateless `kinehook serve` instances sharing one database, and a
// Driver on which package cluster's Coordinator splits the delivery
// partitions among them with leases and carries news between them with
// LISTEN/NOTIFY.
//
// The store keeps the same contract as the embedded SQLite store (both pass
// the storetest suite). Migrations are embedded and applied at Open under an
// advisory lock. See docs/postgres.md for the design and a deployment guide.
package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/internal/storehealth"
)

// Options configure a Store.
type Options struct {
	// SecretBox seals endpoint secrets, Basic Auth logins and passwords and
	// custom header values before they are written; nil stores them in
	// plain text.
	SecretBox kinehook.SecretBox
	// Logger receives the store's logs; nil discards them.
	Logger *slog.Logger
	// MaxConns bounds the connection pool (0: DefaultMaxConns). Each instance
	// uses up to this many connections plus a few for its Driver.
	MaxConns int32
	// SkipMigrate leaves the schema alone at Open (for deployments that run
	// `kinehook migrate` separately); Open then checks the schema version.
	SkipMigrate bool
}

// DefaultMaxConns is the pool size when Options.MaxConns is 0: enough for the
// group-commit writer, the result writer and API reads at once.
const DefaultMaxConns = 16

// Store is the PostgreSQL kinehook.Store. It is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
	box  kinehook.SecretBox
	log  *slog.Logger
	cfg  *pgxpool.Config
	// health tells an outage (restart, full disk) from single failures.
	health *storehealth.Tracker

	mu      sync.Mutex
	drivers []*Driver // closed with the store
	// news, set while a cluster coordinator runs on a Driver of this
	// store, makes each ingest announce its deliveries in its commit.
	news atomic.Pointer[ingestNews]

	// The first analyze of a fresh database's ingest tables (analyze.go).
	ingested       atomic.Int64
	analyzeStarted atomic.Bool
	// bg runs work of the store's own, bgCtx ends it at Close.
	bg       sync.WaitGroup
	bgCtx    context.Context
	bgCancel context.CancelFunc
}

var _ kinehook.Store = (*Store)(nil)

// Open connects to the database at dsn (a postgres:// URL or key=value DSN),
// applies the embedded migrations under an advisory lock, and returns a Store.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse database URL: %w", err)
	}
	cfg.MaxConns = opts.MaxConns
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "kinehook"
	}
	// A broken connection (PostgreSQL restarted) is noticed on use and
	// dropped; checking idle ones often keeps the first request after a
	// restart from failing.
	cfg.HealthCheckPeriod = 5 * time.Second
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	conn, err := pgx.ConnectConfig(ctx, cfg.ConnConfig.Copy())
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	if opts.SkipMigrate {
		err = checkVersion(ctx, conn)
	} else {
		var applied []int
		applied, err = migrateConn(ctx, conn)
		if len(applied) > 0 {
			log.Info("postgres: migrations applied", "versions", applied)
		}
	}
	conn.Close(context.Background())
	if err != nil {
		return nil, err
	}

	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open pool: %w", err)
	}
	s := &Store{pool: pool, box: opts.SecretBox, log: log, cfg: cfg}
	s.bgCtx, s.bgCancel = context.WithCancel(context.WithoutCancel(ctx))
	s.health = storehealth.New(storehealth.Config{Name: "postgres", Classify: classify, Probe: s.probe, Logger: log})
	n, err := s.sealLegacy(ctx)
	if err != nil {
		s.bgCancel()
		pool.Close()
		return nil, err
	}
	if n > 0 {
		log.Info("postgres: sealed the logins and custom headers of older endpoints", "endpoints", n)
	}
	return s, nil
}

func checkVersion(ctx context.Context, conn *pgx.Conn) error {
	var v int
	err := conn.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&v)
	if err != nil {
		return fmt.Errorf("postgres: read schema version (run `kinehook migrate` first): %w", err)
	}
	if want := SchemaVersion(); v != want {
		return fmt.Errorf("postgres: the database schema is version %d, this binary needs %d: run `kinehook migrate`", v, want)
	}
	return nil
}

// Pool returns the store's connection pool (for tools and tests).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Ping reports whether PostgreSQL answers a query (readiness).
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.pool.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	return nil
}

// Close closes the pool, waiting for connections in use to be returned, and
// the pools of the Drivers made from this store.
func (s *Store) Close() error {
	s.mu.Lock()
	drivers := s.drivers
	s.drivers = nil
	s.mu.Unlock()
	for _, d := range drivers {
		_ = d.Close()
	}
	s.bgCancel()
	s.bg.Wait()
	s.health.Close()
	s.pool.Close()
	return nil
}

// AdminKeyHash returns the stored admin key hash, or ErrNotFound.
func (s *Store) AdminKeyHash(ctx context.Context) ([]byte, error) {
	var h []byte
	err := s.pool.QueryRow(ctx, "SELECT value FROM settings WHERE key = 'admin_key_hash'").Scan(&h)
	if err != nil {
		return nil, wrap("admin key", err)
	}
	return h, nil
}

// SetAdminKeyHash stores (or replaces) the admin key hash.
func (s *Store) SetAdminKeyHash(ctx context.Context, hash []byte) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO settings (key, value) VALUES ('admin_key_hash', $1)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, hash)
	return wrap("set admin key", err)
}

// wrap turns pgx.ErrNoRows into kinehook.ErrNotFound and adds context to
// other errors.
func wrap(what string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("postgres: %s: %w", what, kinehook.ErrNotFound)
	default:
		return fmt.Errorf("postgres: %s: %w", what, err)
	}
}

// isUniqueViolation reports a unique-constraint error (SQLSTATE 23505).
func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// now is the store's clock, at the microsecond precision PostgreSQL keeps.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// nullTime maps the zero time to NULL.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC().Truncate(time.Microsecond)
	return &u
}

func fromNull(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// cleanText makes s storable in a text column: valid UTF-8 without NUL.
func cleanText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}

func (s *Store) seal(plain []byte) ([]byte, error) {
	if s.box == nil {
		return plain, nil
	}
	b, err := s.box.Seal(plain)
	if err != nil {
		return nil, fmt.Errorf("postgres: seal secret: %w", err)
	}
	return b, nil
}

func (s *Store) open(stored []byte) ([]byte, error) {
	if s.box == nil {
		return stored, nil
	}
	b, err := s.box.Open(stored)
	if err != nil {
		return nil, fmt.Errorf("postgres: open sealed secret: %w", err)
	}
	return b, nil
}

func jsonOrNil(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("postgres: encode: %w", err)
	}
	return b, nil
}

// isForeignKeyViolation reports a foreign-key error (SQLSTATE 23503).
func isForeignKeyViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23503"
}
