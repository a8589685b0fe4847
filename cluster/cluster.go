// Package cluster shares the delivery partitions among kinehook instances
// that use one database, and carries news between them. It holds the whole
// algorithm (leases with a TTL and fencing, heartbeats, fair shares, claim
// and hand-back, the worker that calls the engine in order, reloads after a
// notification gap or a death, the Sync barrier, the ordering wait after an
// ingest, the retry of failed announcements) and talks to the database only
// through a Driver; package postgres implements one.
//
// The store only stores. The engine calls Coordinator.AfterCommit after
// each ingest commit: it wakes the open deliveries of repeated events and
// waits until every delivery another instance accepted earlier is queued,
// or marks the results Deferred.
//
// One step must stay inside the ingest's transaction: announcing its new
// deliveries, so that an instance killed right after its commit cannot
// leave them unannounced (PostgreSQL sends a NOTIFY if and only if its
// transaction commits). A Coordinator cannot reach into a transaction it
// does not own, and the engine should not hand it one, so the Driver
// exposes that as a capability the Coordinator configures while it runs
// (Driver.ShareIngests): the store then asks, in its first round trip,
// whether other instances are live and, if so, notifies the payloads the
// Coordinator builds in its second round trip, marking the results
// Announced. The store learns nothing of leases or order; the Coordinator
// keeps the payload format and the decision.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kinehook/kinehook"
)

// Driver is what a Coordinator needs of the database the instances share.
// Its methods are single database operations; the Coordinator decides when
// to call them and what their results mean.
type Driver interface {
	// Heartbeat records self as live now, extends its leases on held for
	// ttl, and forgets instances silent for an hour. It returns the
	// partitions whose lease it extended (a lease lost meanwhile is absent)
	// and the known instances, by id, with a heartbeat within ttl (live) or
	// older (stale).
	Heartbeat(ctx context.Context, self string, held []int, ttl time.Duration) (renewed []int, live, stale []string, err error)
	// Register records self as live before its first heartbeat.
	Register(ctx context.Context, self string) error
	// Leave removes self from the live instances.
	Leave(ctx context.Context, self string) error
	// Claim leases to self, for ttl, up to n partitions whose lease is free
	// or expired, lowest first, and returns them.
	Claim(ctx context.Context, self string, n int, ttl time.Duration) ([]int, error)
	// Release frees self's leases on parts at once.
	Release(ctx context.Context, self string, parts []int) error
	// Notify sends each payload on channel, in one statement.
	Notify(ctx context.Context, channel string, payloads []string) error
	// Listen opens a listening connection on channels, calls ready once it
	// listens (news that arrives meanwhile waits), then hands every
	// notification to handle, in commit order, until the connection breaks
	// or ctx ends. It returns why it stopped.
	Listen(ctx context.Context, channels []string, ready func(), handle func(channel, payload string)) error
	// ShareIngests makes the store announce each ingest's new deliveries
	// in the ingest's own transaction while instances other than self have
	// a heartbeat within ttl: it notifies payloads(ids, partitions) on
	// channel with the commit and marks the results Announced, and it lists
	// the open deliveries of repeated events (IngestResult.OpenDeliveries).
	// A nil payloads stops it.
	ShareIngests(self string, ttl time.Duration, channel string, payloads func(ids []string, parts []int) []string)
	// Failed tells the store's health tracker of a failed operation and
	// reports whether it belongs to an outage already logged there.
	Failed(err error) bool
}

// Notification channels. Payloads start with the sending instance's id, so
// an instance ignores its own news.
const (
	ChannelDeliveries = "kinehook_deliveries"
	ChannelEndpoints  = "kinehook_endpoints"
	ChannelSync       = "kinehook_sync"
	// maxNotifyPayload keeps payloads under PostgreSQL's 8000-byte limit.
	maxNotifyPayload = 7900
)

// Defaults of Options.
const (
	DefaultHeartbeat   = time.Second
	DefaultLeaseTTL    = 5 * time.Second
	DefaultStopTimeout = 30 * time.Second
)

// Options configure a Coordinator.
type Options struct {
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
// database. Each of the kinehook.NumPartitions delivery partitions is
// leased by one live instance, which alone delivers it; live instances
// (heartbeats) each take a fair share. News travels by notifications on a
// dedicated listening connection.
type Coordinator struct {
	id      string
	hb, ttl time.Duration
	stopTO  time.Duration
	log     *slog.Logger
	d       Driver

	running atomic.Bool
	// crashOnStop makes Run return at ctx end without revoking or releasing
	// anything, as if the process were killed (tests).
	crashOnStop bool

	// needReassign asks the next step to re-Assign every owned partition (a
	// full reload) because notifications may have been lost.
	needReassign atomic.Bool
	listening    atomic.Bool
	// gap is set while notifications may have been missed (listening
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
	// owner: ingests wait for them (see AfterCommit).
	pendingAssign atomic.Int32

	syncMu  sync.Mutex
	waiters map[string]chan struct{} // Sync tokens awaiting their echo
	// peer handles the messages other instances send this one (OnPeer).
	peer peerHandler
	// loadMu keeps Wake out while Assign loads partitions: a delivery woken
	// mid-load must not start before the older ones the load brings.
	loadMu sync.Mutex

	mu         sync.Mutex
	held       [kinehook.NumPartitions]bool // our lease in the database
	assigned   [kinehook.NumPartitions]bool // handed to the owner
	releasing  [kinehook.NumPartitions]bool // revoke-then-release queued
	lastRenew  time.Time                    // start of the last successful renewal
	ownerCalls atomic.Int64                 // Assign/Revoke calls made (tests)
}

var _ kinehook.Coordinator = (*Coordinator)(nil)

// New returns a Coordinator over d. It starts nothing until Run.
func New(d Driver, opts Options) (*Coordinator, error) {
	c := &Coordinator{id: opts.InstanceID, hb: opts.Heartbeat, ttl: opts.LeaseTTL, stopTO: opts.StopTimeout, log: opts.Logger,
		d: d, kick: make(chan struct{}, 1)}
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
		return nil, fmt.Errorf("cluster: lease TTL %v must be at least twice the heartbeat %v", c.ttl, c.hb)
	}
	if c.stopTO <= 0 {
		c.stopTO = DefaultStopTimeout
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.log = c.log.With("instance", c.id)
	return c, nil
}

// ID returns the instance id.
func (c *Coordinator) ID() string { return c.id }

// Owned returns the partitions currently handed to the owner, ascending.
func (c *Coordinator) Owned() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.assignedLocked()
}

func (c *Coordinator) assignedLocked() []int {
	var out []int
	for p, a := range c.assigned {
		if a {
			out = append(out, p)
		}
	}
	return out
}

// Wiring requires readiness of a coordinator (see requireAbilities in cmd).
var _ kinehook.ReadinessChecker = (*Coordinator)(nil)

// Ready reports whether the coordinator is in touch with the database: its
// leases were renewed within the TTL and its listening connection is up. It
// is meant for readiness checks.
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

// storeWarn logs a failed database operation at WARN, unless the driver
// takes err as part of an outage, which the store logs once: each failure
// of it goes to the debug log only.
func (c *Coordinator) storeWarn(msg string, err error, args ...any) {
	args = append(args, "err", err)
	if c.d.Failed(err) {
		c.log.Debug(msg, args...)
		return
	}
	c.log.Warn(msg, args...)
}

// reloadSoon asks for a reload of the owned partitions at once.
func (c *Coordinator) reloadSoon() {
	c.needReassign.Store(true)
	select {
	case c.kick <- struct{}{}:
	default:
	}
}
