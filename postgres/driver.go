package postgres

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/kinehook/kinehook"
)

// Driver gives package cluster's Coordinator what it needs of PostgreSQL:
// the partition_leases and instances tables, NOTIFY, a LISTEN connection,
// and the announcement of an ingest's deliveries in its own transaction
// (ShareIngests). It holds none of the coordination rules.
type Driver struct {
	s         *Store
	pool      *pgxpool.Pool
	listenCfg *pgx.ConnConfig
	seeded    atomic.Bool // lease rows ensured
	closeOnce sync.Once
}

// NewDriver returns a Driver on the store's database. It opens its own
// small pool (heartbeats must not queue behind ingest traffic) and, in
// Listen, a dedicated connection. Closing the store closes it too.
func NewDriver(s *Store) (*Driver, error) {
	cfg := s.cfg.Copy()
	cfg.MaxConns = 4
	cfg.MinConns = 0
	cfg.ConnConfig.RuntimeParams["application_name"] = "kinehook-coordinator"
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: coordinator pool: %w", err)
	}
	d := &Driver{s: s, pool: pool, listenCfg: s.cfg.ConnConfig.Copy()}
	d.listenCfg.RuntimeParams["application_name"] = "kinehook-listen"
	s.mu.Lock()
	s.drivers = append(s.drivers, d)
	s.mu.Unlock()
	return d, nil
}

// Close releases the driver's pool. Closing twice is harmless.
func (d *Driver) Close() error {
	d.closeOnce.Do(d.pool.Close)
	return nil
}

// Heartbeat records self as live, extends its leases on held for ttl,
// prunes instances silent for an hour, and reads the instances: one round
// trip. The lease rows are created on first use.
func (d *Driver) Heartbeat(ctx context.Context, self string, held []int, ttl time.Duration) (renewed []int, live, stale []string, err error) {
	ttlMS := ttl.Milliseconds()
	seeded := d.seeded.Load()
	var b pgx.Batch
	if !seeded {
		b.Queue(`INSERT INTO partition_leases (partition) SELECT generate_series(0, $1 - 1) ON CONFLICT DO NOTHING`, kinehook.NumPartitions)
	}
	b.Queue(`INSERT INTO instances (id, started_at, heartbeat_at) VALUES ($1, now(), now())
		ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()`, self)
	b.Queue(`UPDATE partition_leases SET expires_at = now() + $2 * interval '1 millisecond'
		WHERE owner = $1 AND partition = ANY($3) RETURNING partition`, self, ttlMS, int32s(held))
	b.Queue(`DELETE FROM instances WHERE heartbeat_at < now() - interval '1 hour'`)
	b.Queue(`SELECT id, heartbeat_at > now() - $1 * interval '1 millisecond' FROM instances ORDER BY id`, ttlMS)
	br := d.pool.SendBatch(ctx, &b)
	defer br.Close()
	if !seeded {
		if _, err := br.Exec(); err != nil {
			return nil, nil, nil, err
		}
	}
	if _, err := br.Exec(); err != nil {
		return nil, nil, nil, err
	}
	rows, err := br.Query()
	if err != nil {
		return nil, nil, nil, err
	}
	if renewed, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (int, error) {
		p, err := pgx.RowTo[int32](r)
		return int(p), err
	}); err != nil {
		return nil, nil, nil, err
	}
	if _, err := br.Exec(); err != nil {
		return nil, nil, nil, err
	}
	if live, stale, err = readInstances(br); err != nil {
		return nil, nil, nil, err
	}
	if err := br.Close(); err != nil {
		return nil, nil, nil, err
	}
	d.seeded.Store(true)
	return renewed, live, stale, nil
}

// readInstances splits the instances read by Heartbeat by liveness.
func readInstances(br pgx.BatchResults) (live, stale []string, err error) {
	rows, err := br.Query()
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var alive bool
		if err := rows.Scan(&id, &alive); err != nil {
			return nil, nil, err
		}
		if alive {
			live = append(live, id)
		} else {
			stale = append(stale, id)
		}
	}
	return live, stale, rows.Err()
}

// Register records self as live now.
func (d *Driver) Register(ctx context.Context, self string) error {
	_, err := d.pool.Exec(ctx, `INSERT INTO instances (id, started_at, heartbeat_at) VALUES ($1, now(), now())
		ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()`, self)
	return err
}

// Leave removes self from the instances table.
func (d *Driver) Leave(ctx context.Context, self string) error {
	_, err := d.pool.Exec(ctx, `DELETE FROM instances WHERE id = $1`, self)
	return err
}

// Claim leases up to n free or expired partitions to self, lowest first;
// SKIP LOCKED lets instances claim at the same time without waiting.
func (d *Driver) Claim(ctx context.Context, self string, n int, ttl time.Duration) ([]int, error) {
	rows, err := d.pool.Query(ctx, `UPDATE partition_leases SET owner = $1, expires_at = now() + $2 * interval '1 millisecond'
		WHERE partition IN (SELECT partition FROM partition_leases
			WHERE (owner IS NULL OR expires_at < now()) AND partition < $4
			ORDER BY partition LIMIT $3 FOR UPDATE SKIP LOCKED)
		RETURNING partition`, self, ttl.Milliseconds(), n, kinehook.NumPartitions)
	if err != nil {
		return nil, err
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return nil, err
	}
	parts := make([]int, len(got))
	for i, p := range got {
		parts[i] = int(p)
	}
	return parts, nil
}

// Release frees self's leases on parts.
func (d *Driver) Release(ctx context.Context, self string, parts []int) error {
	_, err := d.pool.Exec(ctx, `UPDATE partition_leases SET owner = NULL, expires_at = NULL
		WHERE owner = $1 AND partition = ANY($2)`, self, int32s(parts))
	return err
}

// Notify sends every payload on channel in one statement (one commit).
func (d *Driver) Notify(ctx context.Context, channel string, payloads []string) error {
	_, err := d.pool.Exec(ctx, `SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p`, channel, payloads)
	return err
}

// Listen opens a dedicated connection (outside the pools), LISTENs on
// channels, calls ready, and hands notifications to handle until the
// connection breaks or ctx ends.
func (d *Driver) Listen(ctx context.Context, channels []string, ready func(), handle func(channel, payload string)) error {
	conn, err := d.listenConn(ctx, channels)
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn.Close(cctx)
		cancel()
	}()
	ready()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		handle(n.Channel, n.Payload)
	}
}

// listenTimeout bounds connecting and LISTENing.
const listenTimeout = 5 * time.Second

func (d *Driver) listenConn(ctx context.Context, channels []string) (*pgx.Conn, error) {
	cctx, cancel := context.WithTimeout(ctx, listenTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, d.listenCfg)
	if err != nil {
		return nil, err
	}
	stmts := make([]string, len(channels))
	for i, ch := range channels {
		stmts[i] = "LISTEN " + pgx.Identifier{ch}.Sanitize()
	}
	if _, err := conn.Exec(cctx, strings.Join(stmts, "; ")); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	return conn, nil
}

// ShareIngests turns on (payloads non-nil) or off the announcement of new
// deliveries inside each ingest's transaction (see IngestEvents).
func (d *Driver) ShareIngests(self string, ttl time.Duration, channel string, payloads func(ids []string, parts []int) []string) {
	if payloads == nil {
		d.s.news.Store(nil)
		return
	}
	d.s.news.Store(&ingestNews{self: self, ttl: ttl, channel: channel, payloads: payloads})
}

// Failed tells the store's health tracker of a failed operation; an
// outage it already logs need not be logged again.
func (d *Driver) Failed(err error) bool { return d.s.health.Fail(err) != "" }

func int32s(ps []int) []int32 {
	out := make([]int32, len(ps))
	for i, p := range ps {
		out[i] = int32(p)
	}
	return out
}
