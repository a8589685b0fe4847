package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
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

// NOTIFY channels. Payloads start with the sending instance's id, so an
// instance ignores its own news.
const (
	channelDeliveries = "kinehook_deliveries"
	channelEndpoints  = "kinehook_endpoints"
	channelSync       = "kinehook_sync"
	// maxNotifyPayload keeps payloads under PostgreSQL's 8000-byte limit.
	maxNotifyPayload = 7900
)

// Defaults of CoordinatorOptions.
const (
	DefaultHeartbeat   = time.Second
	DefaultLeaseTTL    = 5 * time.Second
	DefaultStopTimeout = 30 * time.Second
)

// CoordinatorOptions configure a Coordinator.
type CoordinatorOptions struct {
	// InstanceID names this instance in the instances and lease tables; it
	// must be unique among live instances (default: host-pid-random).
	InstanceID string
	// Heartbeat is how often the instance renews its leases and rebalances
	// (default 1 s).
	Heartbeat time.Duration
	// LeaseTTL is how long a lease lives without renewal: a dead instance's
	// partitions move after about this long (default 5 s). An instance that
	// cannot renew for LeaseTTL-Heartbeat stops delivering on its own.
	LeaseTTL time.Duration
	// StopTimeout bounds the hand-back at stop: Revoke waits for attempts in
	// flight to be recorded before the leases are released (default 30 s).
	StopTimeout time.Duration
	// Logger receives the coordinator's logs; nil discards them.
	Logger *slog.Logger
}

// Coordinator is the kinehook.Coordinator of instances sharing one
// PostgreSQL database. Each of the kinehook.NumPartitions delivery
// partitions is leased (partition_leases) by one live instance, which alone
// delivers it; live instances (instances table, heartbeats) each take a fair
// share. News travels by LISTEN/NOTIFY on a dedicated connection.
type Coordinator struct {
	id        string
	hb, ttl   time.Duration
	stopTO    time.Duration
	log       *slog.Logger
	pool      *pgxpool.Pool
	listenCfg *pgx.ConnConfig

	running   atomic.Bool
	closeOnce sync.Once
	// crashOnStop makes Run return at ctx end without revoking or releasing
	// anything, as if the process were killed (tests).
	crashOnStop bool

	// needReassign asks the next step to re-Assign every owned partition (a
	// full reload) because notifications may have been lost.
	needReassign atomic.Bool
	listening    atomic.Bool
	// gap is set while notifications may have been missed (LISTEN
	// connection lost) until the reload that makes up for them is done.
	gap     atomic.Bool
	kick    chan struct{} // run a step now
	ownerMu sync.Mutex
	owner   kinehook.PartitionOwner // while Run runs
	// dead holds instances seen with a stale heartbeat: one that died may
	// have committed deliveries it never announced, so each newly dead
	// instance triggers a reload of the owned partitions.
	dead map[string]bool
	// unsent holds delivery ids whose announcement failed; each heartbeat
	// tries again, so an owner whose listener never broke still hears.
	unsentMu sync.Mutex
	unsent   []string
	// pendingAssign counts claimed partition sets not yet handed to the
	// owner: ingests wait for them (see afterIngest).
	pendingAssign atomic.Int32

	syncMu  sync.Mutex
	waiters map[string]chan struct{} // Sync tokens awaiting their echo
	// loadMu keeps Wake out while Assign loads partitions: a delivery woken
	// mid-load must not start before the older ones the load brings.
	loadMu sync.Mutex

	mu         sync.Mutex
	held       [kinehook.NumPartitions]bool // our lease in the database
	assigned   [kinehook.NumPartitions]bool // handed to the owner
	releasing  [kinehook.NumPartitions]bool // revoke-then-release queued
	lastRenew  time.Time                    // start of the last successful renewal
	seeded     bool                         // lease rows ensured
	ownerCalls atomic.Int64                 // Assign/Revoke calls made (tests)

	health *storehealth.Tracker // the store's: an outage is logged once there
}

var _ kinehook.Coordinator = (*Coordinator)(nil)

// NewCoordinator returns a Coordinator on the store's database. It opens its
// own small pool (heartbeats must not queue behind ingest traffic) and, in
// Run, a dedicated LISTEN connection. Closing the store closes it too.
func NewCoordinator(s *Store, opts CoordinatorOptions) (*Coordinator, error) {
	c := &Coordinator{id: opts.InstanceID, hb: opts.Heartbeat, ttl: opts.LeaseTTL, stopTO: opts.StopTimeout, log: opts.Logger,
		kick: make(chan struct{}, 1)}
	if c.id == "" {
		host, _ := os.Hostname()
		c.id = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), kinehook.NewID("i")[len("i_")+8:])
	}
	if c.hb <= 0 {
		c.hb = DefaultHeartbeat
	}
	if c.ttl <= 0 {
		c.ttl = DefaultLeaseTTL
	}
	if c.ttl < 2*c.hb {
		return nil, fmt.Errorf("postgres: coordinator: lease TTL %v must be at least twice the heartbeat %v", c.ttl, c.hb)
	}
	if c.stopTO <= 0 {
		c.stopTO = DefaultStopTimeout
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.log = c.log.With("instance", c.id)
	cfg := s.cfg.Copy()
	cfg.MaxConns = 4
	cfg.MinConns = 0
	cfg.ConnConfig.RuntimeParams["application_name"] = "kinehook-coordinator"
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: coordinator pool: %w", err)
	}
	c.pool = pool
	c.health = s.health
	c.listenCfg = s.cfg.ConnConfig.Copy()
	c.listenCfg.RuntimeParams["application_name"] = "kinehook-listen"
	s.mu.Lock()
	s.coords = append(s.coords, c)
	s.mu.Unlock()
	return c, nil
}

// ID returns the instance id.
func (c *Coordinator) ID() string { return c.id }

// Close releases the coordinator's connections (after Run has returned).
// Closing twice is harmless.
func (c *Coordinator) Close() error {
	c.closeOnce.Do(c.pool.Close)
	return nil
}

// Owned returns the partitions currently handed to the owner, ascending.
func (c *Coordinator) Owned() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []int
	for p, a := range c.assigned {
		if a {
			out = append(out, p)
		}
	}
	return out
}

// Ready reports whether the coordinator is in touch with PostgreSQL: its
// leases were renewed within the TTL and its LISTEN connection is up. It is
// meant for readiness checks.
func (c *Coordinator) Ready() error {
	if !c.running.Load() {
		return errors.New("coordinator not running")
	}
	c.mu.Lock()
	last := c.lastRenew
	c.mu.Unlock()
	if last.IsZero() || time.Since(last) > c.ttl {
		return errors.New("coordinator cannot renew its leases: PostgreSQL unreachable")
	}
	if !c.listening.Load() {
		return errors.New("coordinator LISTEN connection down")
	}
	return nil
}

type opKind int

const (
	opAssign opKind = iota
	opRevoke
	opReassign
)

type op struct {
	kind    opKind
	parts   []int
	release bool // after Revoke, release the leases
	pending bool // counted in pendingAssign
}

// Run takes part in the partition sharing until ctx ends, calling Assign and
// Revoke on owner; it never gives up on database errors (it retries every
// heartbeat). At ctx end it revokes its partitions, releases their leases so
// others take them at once, and leaves the instances table.
func (c *Coordinator) Run(ctx context.Context, owner kinehook.PartitionOwner) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("postgres: coordinator already running")
	}
	defer c.running.Store(false)
	c.mu.Lock()
	c.held, c.assigned, c.releasing = [kinehook.NumPartitions]bool{}, [kinehook.NumPartitions]bool{}, [kinehook.NumPartitions]bool{}
	c.lastRenew = time.Time{}
	c.mu.Unlock()
	c.needReassign.Store(false)
	c.gap.Store(false)
	c.pendingAssign.Store(0)
	c.ownerMu.Lock()
	c.owner = owner
	c.ownerMu.Unlock()
	defer func() {
		c.ownerMu.Lock()
		c.owner = nil
		c.ownerMu.Unlock()
	}()

	ops := make(chan op, 4*kinehook.NumPartitions)
	wctx, wcancel := context.WithCancel(context.Background())
	defer wcancel()
	var crashed atomic.Bool
	workerDone := make(chan struct{})
	go c.worker(wctx, owner, ops, &crashed, workerDone)

	lctx, lcancel := context.WithCancel(ctx)
	listenDone := make(chan struct{})
	go c.listen(lctx, owner, listenDone)

	tick := time.NewTicker(c.hb)
	defer tick.Stop()
	c.step(ctx, ops)
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-tick.C:
			c.step(ctx, ops)
		case <-c.kick:
			c.step(ctx, ops)
		}
	}
	lcancel()
	<-listenDone

	if c.crashOnStop {
		crashed.Store(true)
		wcancel()
		close(ops)
		<-workerDone
		return nil
	}
	// Graceful stop: hand everything back.
	c.mu.Lock()
	var parts []int
	for p := range c.held {
		if c.held[p] && !c.releasing[p] {
			parts = append(parts, p)
			c.releasing[p] = true
			c.assigned[p] = false
		}
	}
	c.mu.Unlock()
	if len(parts) > 0 {
		ops <- op{kind: opRevoke, parts: parts, release: true}
	}
	close(ops)
	stopTimer := time.AfterFunc(c.stopTO, wcancel)
	<-workerDone
	stopTimer.Stop()
	dctx, dcancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer dcancel()
	if _, err := c.pool.Exec(dctx, `DELETE FROM instances WHERE id = $1`, c.id); err != nil {
		c.storeWarn("postgres: coordinator: leave instances table", err)
	}
	c.log.Info("postgres: coordinator stopped", "released", len(parts))
	return nil
}

// step renews the heartbeat and leases, gives up lost partitions, and moves
// toward this instance's fair share. It only talks to PostgreSQL; calls into
// the owner (which may be slow) are queued for the worker.
func (c *Coordinator) step(ctx context.Context, ops chan<- op) {
	c.mu.Lock()
	var heldList []int32
	for p, h := range c.held {
		if h {
			heldList = append(heldList, int32(p))
		}
	}
	seeded := c.seeded
	c.mu.Unlock()

	sent := time.Now()
	qctx, cancel := context.WithTimeout(ctx, max(c.ttl/3, c.hb))
	defer cancel()
	ttlMS := c.ttl.Milliseconds()
	var b pgx.Batch
	if !seeded {
		b.Queue(`INSERT INTO partition_leases (partition) SELECT generate_series(0, $1 - 1) ON CONFLICT DO NOTHING`, kinehook.NumPartitions)
	}
	b.Queue(`INSERT INTO instances (id, started_at, heartbeat_at) VALUES ($1, now(), now())
		ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()`, c.id)
	b.Queue(`UPDATE partition_leases SET expires_at = now() + $2 * interval '1 millisecond'
		WHERE owner = $1 AND partition = ANY($3) RETURNING partition`, c.id, ttlMS, heldList)
	b.Queue(`DELETE FROM instances WHERE heartbeat_at < now() - interval '1 hour'`)
	b.Queue(`SELECT id, heartbeat_at > now() - $1 * interval '1 millisecond' FROM instances ORDER BY id`, ttlMS)
	var (
		renewed []int32
		live    []string
		stale   []string
	)
	err := func() error {
		br := c.pool.SendBatch(qctx, &b)
		defer br.Close()
		if !seeded {
			if _, err := br.Exec(); err != nil {
				return err
			}
		}
		if _, err := br.Exec(); err != nil {
			return err
		}
		rows, err := br.Query()
		if err != nil {
			return err
		}
		if renewed, err = pgx.CollectRows(rows, pgx.RowTo[int32]); err != nil {
			return err
		}
		if _, err := br.Exec(); err != nil {
			return err
		}
		rows, err = br.Query()
		if err != nil {
			return err
		}
		for rows.Next() {
			var id string
			var alive bool
			if err := rows.Scan(&id, &alive); err != nil {
				rows.Close()
				return err
			}
			if alive {
				live = append(live, id)
			} else {
				stale = append(stale, id)
			}
		}
		rows.Close()
		return rows.Err()
	}()
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		c.storeWarn("postgres: coordinator: heartbeat failed", err)
		c.mu.Lock()
		defer c.mu.Unlock()
		// Fence: stop delivering before our leases can expire, so that no
		// partition is ever delivered by two instances.
		if !c.lastRenew.IsZero() && time.Since(c.lastRenew) > c.ttl-c.hb {
			c.dropAllLocked(ops, "leases about to expire")
		}
		return
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	c.seeded = true
	c.lastRenew = sent
	var keep [kinehook.NumPartitions]bool
	for _, p := range renewed {
		keep[p] = true
	}
	var lost []int
	for p := range c.held {
		if c.held[p] && !keep[p] {
			c.held[p] = false
			if c.assigned[p] {
				c.assigned[p] = false
				lost = append(lost, p)
			}
		}
	}
	if len(lost) > 0 {
		c.log.Warn("postgres: coordinator: leases lost", "partitions", len(lost))
		c.queue(ops, op{kind: opRevoke, parts: lost})
	}

	// Fair share: NumPartitions split over the live instances in id order.
	idx := slices.Index(live, c.id)
	if idx < 0 {
		live = append(live, c.id)
		slices.Sort(live)
		idx = slices.Index(live, c.id)
	}
	target := kinehook.NumPartitions / len(live)
	if idx < kinehook.NumPartitions%len(live) {
		target++
	}
	mine, releasing := 0, 0
	for p := range c.held {
		if c.held[p] {
			if c.releasing[p] {
				releasing++
			} else {
				mine++
			}
		}
	}
	switch {
	case mine > target && releasing == 0:
		var give []int
		for p := kinehook.NumPartitions - 1; p >= 0 && len(give) < mine-target; p-- {
			if c.held[p] && !c.releasing[p] {
				give = append(give, p)
				c.releasing[p] = true
				c.assigned[p] = false
			}
		}
		c.log.Info("postgres: coordinator: handing partitions back", "n", len(give), "target", target, "instances", len(live), "partitions", give)
		c.queue(ops, op{kind: opRevoke, parts: give, release: true})
	case mine < target && c.listening.Load():
		// Claim only while listening: news about claimed partitions must
		// reach us. Released and expired leases are free.
		rows, err := c.pool.Query(qctx, `UPDATE partition_leases SET owner = $1, expires_at = now() + $2 * interval '1 millisecond'
			WHERE partition IN (SELECT partition FROM partition_leases
				WHERE (owner IS NULL OR expires_at < now()) AND partition < $4
				ORDER BY partition LIMIT $3 FOR UPDATE SKIP LOCKED)
			RETURNING partition`, c.id, ttlMS, target-mine, kinehook.NumPartitions)
		var got []int32
		if err == nil {
			got, err = pgx.CollectRows(rows, pgx.RowTo[int32])
		}
		if err != nil {
			c.storeWarn("postgres: coordinator: claim partitions", err)
			break
		}
		if len(got) > 0 {
			parts := make([]int, len(got))
			for i, p := range got {
				parts[i] = int(p)
				c.held[p], c.assigned[p] = true, true
			}
			slices.Sort(parts)
			c.log.Info("postgres: coordinator: claimed partitions", "n", len(parts), "target", target, "instances", len(live), "partitions", parts)
			c.pendingAssign.Add(1)
			c.queue(ops, op{kind: opAssign, parts: parts, pending: true})
		}
	}
	if c.dead == nil {
		c.dead = map[string]bool{}
	}
	newlyDead := false
	for _, id := range stale {
		if !c.dead[id] {
			c.dead[id] = true
			newlyDead = true
		}
	}
	if newlyDead && c.anyAssignedLocked() {
		c.log.Info("postgres: coordinator: an instance died; reloading owned partitions for deliveries it never announced", "dead", stale)
		c.needReassign.Store(true)
	}
	if c.needReassign.Swap(false) {
		c.queue(ops, op{kind: opReassign})
	}
	go c.retryUnsent(ctx)
}

func (c *Coordinator) anyAssignedLocked() bool {
	for _, a := range c.assigned {
		if a {
			return true
		}
	}
	return false
}

// dropAllLocked revokes every partition without releasing the leases (they
// will expire): used when the database cannot be reached.
func (c *Coordinator) dropAllLocked(ops chan<- op, why string) {
	var parts []int
	for p := range c.held {
		if c.assigned[p] {
			parts = append(parts, p)
		}
		c.held[p], c.assigned[p] = false, false
	}
	if len(parts) > 0 {
		c.log.Warn("postgres: coordinator: stopping delivery", "why", why, "partitions", len(parts))
		c.queue(ops, op{kind: opRevoke, parts: parts})
	}
}

func (c *Coordinator) queue(ops chan<- op, o op) {
	// The buffer holds far more than the ops a few steps can make; never
	// block the heartbeat on the worker.
	select {
	case ops <- o:
	default:
		go func() {
			defer func() { _ = recover() }() // ops closed at stop: the op is moot
			ops <- o
		}()
	}
}

// worker makes the owner calls in order, so a partition's Revoke never
// overtakes its Assign, while step keeps renewing leases meanwhile.
func (c *Coordinator) worker(ctx context.Context, owner kinehook.PartitionOwner, ops <-chan op, crashed *atomic.Bool, done chan<- struct{}) {
	defer close(done)
	for o := range ops {
		c.runOp(ctx, owner, o, crashed)
		if o.pending {
			c.pendingAssign.Add(-1)
		}
	}
}

func (c *Coordinator) runOp(ctx context.Context, owner kinehook.PartitionOwner, o op, crashed *atomic.Bool) {
	if crashed.Load() {
		return
	}
	{
		switch o.kind {
		case opAssign, opReassign:
			parts := o.parts
			c.mu.Lock()
			if o.kind == opReassign {
				parts = nil
				for p, a := range c.assigned {
					if a {
						parts = append(parts, p)
					}
				}
			} else {
				parts = slices.DeleteFunc(slices.Clone(parts), func(p int) bool { return !c.assigned[p] })
			}
			c.mu.Unlock()
			if len(parts) == 0 || ctx.Err() != nil {
				if o.kind == opReassign {
					c.gap.Store(false)
				}
				return
			}
			c.ownerCalls.Add(1)
			c.loadMu.Lock()
			err := owner.Assign(ctx, parts)
			c.loadMu.Unlock()
			c.log.Debug("postgres: coordinator: assigned", "partitions", parts, "reload", o.kind == opReassign, "err", err)
			if err != nil {
				c.storeWarn("postgres: coordinator: assign failed; reloading at the next heartbeat", err)
				c.needReassign.Store(true)
			} else if o.kind == opReassign {
				c.gap.Store(false)
			}
		case opRevoke:
			c.ownerCalls.Add(1)
			err := owner.Revoke(ctx, o.parts)
			c.log.Debug("postgres: coordinator: revoked", "partitions", o.parts, "release", o.release, "err", err)
			if err != nil {
				c.log.Warn("postgres: coordinator: revoke did not finish; leases left to expire", "err", err)
			} else if o.release {
				c.release(o.parts)
			}
			c.mu.Lock()
			for _, p := range o.parts {
				if o.release {
					c.held[p] = false
				}
				c.releasing[p] = false
			}
			c.mu.Unlock()
		}
	}
}

// release frees leases right away so other instances need not wait for
// them to expire; on failure they simply expire.
func (c *Coordinator) release(parts []int) {
	ctx, cancel := context.WithTimeout(context.Background(), c.ttl)
	defer cancel()
	ps := make([]int32, len(parts))
	for i, p := range parts {
		ps[i] = int32(p)
	}
	if _, err := c.pool.Exec(ctx, `UPDATE partition_leases SET owner = NULL, expires_at = NULL
		WHERE owner = $1 AND partition = ANY($2)`, c.id, ps); err != nil {
		c.storeWarn("postgres: coordinator: release leases; they will expire", err)
	}
}

// listen keeps a dedicated LISTEN connection and passes news to the owner.
// After a reconnect it asks for a full reload of the owned partitions, since
// notifications sent while it was away are lost.
func (c *Coordinator) listen(ctx context.Context, owner kinehook.PartitionOwner, done chan<- struct{}) {
	defer close(done)
	defer c.listening.Store(false)
	backoff := 100 * time.Millisecond
	first := true
	for ctx.Err() == nil {
		conn, err := c.listenConn(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			c.storeWarn("postgres: coordinator: LISTEN connection", err, "retry_in", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		c.listening.Store(true)
		if !first {
			c.log.Info("postgres: coordinator: LISTEN connection back; reloading owned partitions")
			c.needReassign.Store(true)
			select {
			case c.kick <- struct{}{}:
			default:
			}
			// Handle no news before the reload: a delivery announced now
			// must not start before older ones announced during the gap,
			// which only the reload brings. News waits in the socket.
			for c.gap.Load() && ctx.Err() == nil {
				time.Sleep(5 * time.Millisecond)
			}
		}
		first = false
		for {
			n, err := conn.WaitForNotification(ctx)
			if err != nil {
				if ctx.Err() == nil {
					c.log.Warn("postgres: coordinator: LISTEN connection lost", "err", err)
				}
				break
			}
			c.handle(ctx, owner, n)
		}
		c.listening.Store(false)
		c.gap.Store(true)
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn.Close(cctx)
		cancel()
	}
}

func (c *Coordinator) listenConn(ctx context.Context) (*pgx.Conn, error) {
	cctx, cancel := context.WithTimeout(ctx, max(c.ttl, 2*time.Second))
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, c.listenCfg)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(cctx, "LISTEN "+channelDeliveries+"; LISTEN "+channelEndpoints+"; LISTEN "+channelSync); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	return conn, nil
}

func (c *Coordinator) handle(ctx context.Context, owner kinehook.PartitionOwner, n *pgconn.Notification) {
	from, rest, ok := strings.Cut(n.Payload, " ")
	if !ok {
		return
	}
	if n.Channel == channelSync {
		if from == c.id {
			c.syncMu.Lock()
			if ch := c.waiters[rest]; ch != nil {
				close(ch)
				delete(c.waiters, rest)
			}
			c.syncMu.Unlock()
		}
		return
	}
	if from == c.id {
		return
	}
	switch n.Channel {
	case channelDeliveries:
		ids := c.ownedOf(strings.Split(rest, ","))
		if len(ids) == 0 {
			return
		}
		c.loadMu.Lock()
		err := owner.Wake(ctx, ids)
		c.loadMu.Unlock()
		if err != nil && ctx.Err() == nil {
			c.storeWarn("postgres: coordinator: wake; reloading owned partitions", err)
			c.needReassign.Store(true)
		}
	case channelEndpoints:
		pid, eid, ok := strings.Cut(rest, " ")
		if ok {
			owner.RefreshEndpoint(ctx, pid, eid)
		}
	}
}

// deliveryPayloads builds the NOTIFY payloads announcing deliveries, each
// under the size limit: "<instance> <id>[:<partition>],...". With the
// partition, an instance wakes only for the partitions it owns instead of
// reading every announced delivery; parts may be nil.
func (c *Coordinator) deliveryPayloads(ids []string, parts []int16) []string {
	var payloads []string
	var sb strings.Builder
	for i, id := range ids {
		entry := id
		if parts != nil {
			entry += ":" + strconv.Itoa(int(parts[i]))
		}
		if sb.Len() > 0 && sb.Len()+1+len(entry) > maxNotifyPayload {
			payloads = append(payloads, sb.String())
			sb.Reset()
		}
		if sb.Len() == 0 {
			sb.WriteString(c.id)
			sb.WriteByte(' ')
		} else {
			sb.WriteByte(',')
		}
		sb.WriteString(entry)
	}
	return append(payloads, sb.String())
}

// ownedOf keeps the announced deliveries this instance may own: those
// whose partition is assigned here, and those announced without one. It
// strips the partitions.
func (c *Coordinator) ownedOf(entries []string) []string {
	ids := entries[:0]
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range entries {
		id, part, ok := strings.Cut(e, ":")
		if ok {
			p, err := strconv.Atoi(part)
			if err == nil && p >= 0 && p < kinehook.NumPartitions && !c.assigned[p] {
				continue
			}
		}
		ids = append(ids, id)
	}
	return ids
}

// reloadSoon asks for a reload of the owned partitions at once.
func (c *Coordinator) reloadSoon() {
	c.needReassign.Store(true)
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// AnnounceDeliveries notifies the other instances of new or reopened
// deliveries, in payloads under the NOTIFY size limit, in one statement.
func (c *Coordinator) AnnounceDeliveries(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	payloads := c.deliveryPayloads(ids, nil)
	c.mu.Lock()
	known := !c.lastRenew.IsZero()
	c.mu.Unlock()
	if !known {
		// Before our first heartbeat, others may not know we exist and so
		// skip the ordering sync on their ingests: register first.
		if _, err := c.pool.Exec(ctx, `INSERT INTO instances (id, started_at, heartbeat_at) VALUES ($1, now(), now())
			ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()`, c.id); err != nil {
			return fmt.Errorf("postgres: announce: register instance: %w", err)
		}
	}
	if err := c.notify(ctx, channelDeliveries, payloads); err != nil {
		c.unsentMu.Lock()
		if len(c.unsent) < maxUnsent {
			c.unsent = append(c.unsent, ids...)
		}
		c.unsentMu.Unlock()
		return err
	}
	return nil
}

// maxUnsent bounds the announcements kept for retry; beyond it the owners'
// reload after the outage is what finds the deliveries.
const maxUnsent = 100000

// retryUnsent sends the announcements that failed earlier.
func (c *Coordinator) retryUnsent(ctx context.Context) {
	c.unsentMu.Lock()
	ids := c.unsent
	c.unsent = nil
	c.unsentMu.Unlock()
	if len(ids) == 0 {
		return
	}
	if err := c.AnnounceDeliveries(ctx, ids); err != nil {
		c.storeWarn("postgres: coordinator: announce deliveries again", err, "n", len(ids))
		return
	}
	c.log.Info("postgres: coordinator: announced deliveries after a failure", "n", len(ids))
}

// AnnounceEndpoint notifies the other instances that an endpoint changed.
func (c *Coordinator) AnnounceEndpoint(ctx context.Context, projectID, endpointID string) error {
	return c.notify(ctx, channelEndpoints, []string{c.id + " " + projectID + " " + endpointID})
}

func (c *Coordinator) notify(ctx context.Context, channel string, payloads []string) error {
	var err error
	for try := range 3 {
		if try > 0 {
			select {
			case <-ctx.Done():
				return fmt.Errorf("postgres: notify %s: %w", channel, err)
			case <-time.After(time.Duration(try) * 100 * time.Millisecond):
			}
		}
		_, err = c.pool.Exec(ctx, `SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p`, channel, payloads)
		if err == nil {
			return nil
		}
	}
	return fmt.Errorf("postgres: notify %s: %w", channel, err)
}

// Sync returns once this instance's listener has handled every notification
// committed before Sync was called. PostgreSQL delivers notifications in
// commit order, so Sync sends one to itself and waits for its echo.
//
// It closes a race between instances: event A of a resource is accepted by
// instance Z (which notifies the owner X), then event B of the same resource
// by X itself. If X queued B before handling Z's notification, B could
// overtake A. The Store does this on its own after every ingest while a
// Coordinator runs and other instances are live, so the engine needs
// nothing more.
func (c *Coordinator) Sync(ctx context.Context) error {
	if !c.listening.Load() {
		return errors.New("postgres: sync: LISTEN connection down")
	}
	token, ch := c.register()
	defer c.unregister(token)
	if err := c.notify(ctx, channelSync, []string{c.id + " " + token}); err != nil {
		return err
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("postgres: sync: %w", ctx.Err())
	}
}

func (c *Coordinator) register() (string, chan struct{}) {
	token := kinehook.NewID("s")
	ch := make(chan struct{})
	c.syncMu.Lock()
	if c.waiters == nil {
		c.waiters = map[string]chan struct{}{}
	}
	c.waiters[token] = ch
	c.syncMu.Unlock()
	return token, ch
}

func (c *Coordinator) unregister(token string) {
	c.syncMu.Lock()
	delete(c.waiters, token)
	c.syncMu.Unlock()
}

// activeCoordinator returns a running coordinator of this store, or nil.
func (s *Store) activeCoordinator() *Coordinator {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.coords {
		if c.running.Load() {
			return c
		}
	}
	return nil
}

// syncWait bounds the ordering waits of an ingest, so ingest never stalls on
// a slow or broken listener (lost notifications are then made up by the
// reload after the reconnect).
const syncWait = 2 * time.Second

// afterIngest keeps acceptance order across instances; IngestEvents calls it
// after its commit, before returning the new deliveries to the engine. When
// other instances are live (others), it waits for a Sync: every delivery
// another instance announced before this commit has then been handed to the
// owner. Then it waits for a partition load in progress, which may bring
// older deliveries of the same resources. It reports false when it could
// not confirm that within syncWait: the caller must then leave the new
// deliveries to a reload, which reads them in acceptance order.
func (c *Coordinator) afterIngest(ctx context.Context, others bool) bool {
	ctx, cancel := context.WithTimeout(ctx, syncWait)
	defer cancel()
	// While the LISTEN connection is down, and until the reload after it,
	// older deliveries may be unknown here: wait for the reload.
	for c.gap.Load() || !c.listening.Load() {
		select {
		case <-ctx.Done():
			c.log.Warn("postgres: ingest: LISTEN connection down; these deliveries wait for a reload of the partitions")
			return false
		case <-time.After(5 * time.Millisecond):
		}
	}
	if others {
		if err := c.Sync(ctx); err != nil {
			c.log.Warn("postgres: ingest: no sync with the LISTEN connection; these deliveries wait for a reload of the partitions", "err", err)
			return false
		}
	}
	// Partitions claimed but not yet loaded: once loaded they may bring
	// older deliveries of these resources.
	for c.pendingAssign.Load() > 0 {
		select {
		case <-ctx.Done():
			c.log.Warn("postgres: ingest: a partition assignment is taking long; these deliveries wait for a reload of the partitions")
			return false
		case <-time.After(2 * time.Millisecond):
		}
	}
	if c.loadMu.TryLock() {
		c.loadMu.Unlock()
		return true
	}
	loaded := make(chan struct{})
	go func() {
		c.loadMu.Lock()
		c.loadMu.Unlock() //nolint:staticcheck // waiting for the holder, not guarding anything
		close(loaded)
	}()
	select {
	case <-loaded:
		return true
	case <-ctx.Done():
		c.log.Warn("postgres: ingest: a partition load is taking long; these deliveries wait for a reload of the partitions")
		return false
	}
}

// wakeOpen makes sure open deliveries found again (an idempotent retry of an
// event whose first instance may have died before announcing it) reach
// their owner before the retry is answered: announced to the others, and
// handed to this instance's own engine, which keeps those it owns.
func (c *Coordinator) wakeOpen(ctx context.Context, ids []string) {
	if len(ids) == 0 {
		return
	}
	if err := c.AnnounceDeliveries(ctx, ids); err != nil {
		c.storeWarn("postgres: ingest: announce deliveries of a repeated event", err)
	}
	c.ownerMu.Lock()
	owner := c.owner
	c.ownerMu.Unlock()
	if owner == nil {
		return
	}
	c.loadMu.Lock()
	err := owner.Wake(ctx, ids)
	c.loadMu.Unlock()
	if err != nil {
		c.storeWarn("postgres: ingest: wake deliveries of a repeated event", err)
	}
}
