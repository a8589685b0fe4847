package kinehook

import (
	"context"
	"time"
)

// The abilities below are what some configurations need of a store (or of
// a coordinator) beyond Store. They are named here, not discovered by type
// assertion in cmd/, so that wiring can require them: a server whose store
// lacks one refuses to start instead of silently running without it. Both
// stores implement all of them (checked at compile time in sqlite/ and
// postgres/).

// RetentionStore is a store that can remove old, finished events: what the
// retention cleaner (package retention) needs, and so what `kinehook serve`
// needs, since any project may set a retention.
type RetentionStore interface {
	ListProjects(ctx context.Context) ([]*Project, error)
	// Health lets the cleaner tell an outage from one failed removal.
	Health() StoreHealth
	// DeleteBefore removes the project's events created before before, with
	// their deliveries, attempts and idempotency keys, in transactions of at
	// most batch events, keeping every event with a pending or retrying
	// delivery. It returns how many events it removed.
	DeleteBefore(ctx context.Context, projectID string, before time.Time, batch int) (int, error)
	// PruneStats removes the statistics rollups older than their
	// resolution's Keep (StatsResolutions) at now, and returns how many rows.
	PruneStats(ctx context.Context, now time.Time) (int, error)
}

// Resealer is a store that can re-seal its secrets, what encryption key
// rotation needs: it passes every sealed secret it holds (the exact bytes
// SecretBox.Seal returned) to reseal and writes back what reseal returns, in
// one transaction, returning how many values it rewrote. Values reseal
// returns unchanged need not be written. If reseal fails, the store writes
// nothing and returns the error.
type Resealer interface {
	ResealSecrets(ctx context.Context, reseal func(sealed []byte) ([]byte, error)) (int, error)
}

// StoreHealth is a store's account of its own outages: it tells a store
// that cannot work at all (a full disk, a lost database) from the failure
// of one operation, so that an outage is answered 503 and logged once, not
// once per request or loop turn. Every store has one (Store.Health); see
// internal/storehealth for the tracker both stores use.
type StoreHealth interface {
	// Fail takes an error of a store operation. When it says the store is
	// out, Fail counts it and returns the API error code to answer with
	// (ESTORAGEFULL or ESTOREUNAVAILABLE); for any other error it returns
	// "" and the caller handles the error as before.
	Fail(err error) string
	// Outage returns the code of the outage under way, "" while the store
	// works.
	Outage() string
}

// ReadinessChecker reports whether this instance can do its share of the
// work now (a coordinator: not while its leases cannot be renewed). The
// API's readiness check answers from it; `kinehook serve` requires it of
// every coordinator.
type ReadinessChecker interface {
	Ready() error
}

// CertCache keeps what automatic certificates (ACME) need, the account key
// and the certificates with their private keys, where every instance
// sharing the store reads them; values are sealed at rest like endpoint
// secrets. Get of a missing key is ErrNotFound.
type CertCache interface {
	CacheGet(ctx context.Context, key string) ([]byte, error)
	CachePut(ctx context.Context, key string, data []byte) error
	CacheDelete(ctx context.Context, key string) error
}
