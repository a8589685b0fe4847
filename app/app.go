// Package app is kinehook's application layer: the use cases the HTTP API
// and the dashboard share (projects, keys, endpoints, events, deliveries
// and the Kinescope-shaped webhooks facade). Each validation rule, limit and
// constant lives here once, and every use case that changes an endpoint
// ends by telling the delivery engine (Dispatcher.EndpointChanged), so no
// adapter can forget it.
//
// The package depends only on the root package's interfaces (Store,
// Dispatcher) and small internal libraries; adapters (http, dashboard)
// parse requests, call an App and render its answers.
package app

import (
	"errors"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/internal/netguard"
)

// Config configures an App. Store and Dispatcher are required.
type Config struct {
	Store      kinehook.Store
	Dispatcher kinehook.Dispatcher
	// Rejects keeps the rejected inputs of ingest sources; nil: Store's own,
	// when it is a kinehook.RejectStore (both stores are); without one the
	// rejected-input use cases answer EUNAVAILABLE.
	Rejects kinehook.RejectStore

	// AdminKeyHash is kinehook.HashKey of the admin key. When nil the app
	// reads it from the store (Store.AdminKeyHash) and caches it once found.
	AdminKeyHash []byte

	// AllowPrivateNetworks lets endpoints be registered with literal
	// loopback/private addresses (and localhost); AllowCIDRs opens single ranges.
	AllowPrivateNetworks bool
	AllowCIDRs           []netip.Prefix

	// Limits bounds posted events (zero fields: the defaults).
	Limits Limits

	// Destinations are the endpoint types beyond webhook this server
	// delivers to (one per transport cmd/kinehook wires); an endpoint of
	// any other type is refused.
	Destinations []kinehook.DestinationType

	// Relay carries cli endpoints' deliveries to connected listeners
	// (`kinehook listen --server`); nil: the server refuses listeners.
	Relay Relay
	// ListenGrace is how long a cli endpoint outlives its listener's
	// disconnect (DefaultListenGrace when 0).
	ListenGrace time.Duration
	// Logger logs what a use case running in the background (a listener's
	// heartbeat) cannot return; discarded when nil.
	Logger *slog.Logger

	// Now is the clock (tests); time.Now when nil.
	Now func() time.Time
}

// Limits bound what one posted event or batch may hold.
type Limits struct {
	// MaxEventBytes bounds one event's body (alone or in a batch).
	MaxEventBytes int64
	// MaxJSONDepth bounds the nesting of an event's JSON.
	MaxJSONDepth int
	// MaxBatchEvents bounds the events of one batch.
	MaxBatchEvents int
}

// Defaults for Limits.
const (
	DefaultMaxEventBytes  = 1 << 20
	DefaultMaxJSONDepth   = 32
	DefaultMaxBatchEvents = 1000
)

// App runs the use cases over a store and a dispatcher. It is safe for
// concurrent use; share one per process (it holds the per-project locks and
// the key cache).
type App struct {
	store   kinehook.Store
	disp    kinehook.Dispatcher
	now     func() time.Time
	guard   *netguard.Guard
	limits  Limits
	dests   map[string]kinehook.DestinationType
	types   []string // webhook, then the wired destination types in EndpointTypes' order
	rejects kinehook.RejectStore

	relay       Relay
	listenGrace time.Duration
	log         *slog.Logger

	adminMu   sync.Mutex
	adminHash atomic.Pointer[[]byte]
	keys      keyState
	portals   portalCache
	// projLocks serialise the changes of one project's settings with the
	// endpoint its operations_url makes (string project id -> *sync.Mutex).
	projLocks sync.Map
}

// New checks cfg and returns the App.
func New(cfg Config) (*App, error) {
	if cfg.Store == nil {
		return nil, errors.New("app: Config.Store is required")
	}
	if cfg.Dispatcher == nil {
		return nil, errors.New("app: Config.Dispatcher is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Limits.MaxEventBytes <= 0 {
		cfg.Limits.MaxEventBytes = DefaultMaxEventBytes
	}
	if cfg.Limits.MaxJSONDepth <= 0 {
		cfg.Limits.MaxJSONDepth = DefaultMaxJSONDepth
	}
	if cfg.Limits.MaxBatchEvents <= 0 {
		cfg.Limits.MaxBatchEvents = DefaultMaxBatchEvents
	}
	a := &App{
		store:   cfg.Store,
		disp:    cfg.Dispatcher,
		now:     cfg.Now,
		guard:   &netguard.Guard{AllowPrivate: cfg.AllowPrivateNetworks, AllowCIDRs: cfg.AllowCIDRs},
		limits:  cfg.Limits,
		rejects: cfg.Rejects,

		relay:       cfg.Relay,
		listenGrace: cfg.ListenGrace,
		log:         cfg.Logger,
	}
	if a.listenGrace <= 0 {
		a.listenGrace = DefaultListenGrace
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.rejects == nil {
		a.rejects, _ = cfg.Store.(kinehook.RejectStore)
	}
	if err := a.setDestinations(cfg.Destinations); err != nil {
		return nil, err
	}
	if cfg.AdminKeyHash != nil {
		h := cfg.AdminKeyHash
		a.adminHash.Store(&h)
	}
	return a, nil
}

// Limits returns the event limits in force (defaults filled in).
func (a *App) Limits() Limits { return a.limits }

// stamp is the time a change is recorded with: UTC, whole milliseconds
// (what every store keeps).
func (a *App) stamp() time.Time { return a.now().UTC().Truncate(time.Millisecond) }
