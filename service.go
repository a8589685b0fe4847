package kinehook

import (
	"context"
	"crypto/sha256"
)

// SecretBox encrypts secrets at rest (endpoint signing secrets, Basic Auth
// passwords). Stores seal before writing and open after reading.
type SecretBox interface {
	Seal(plaintext []byte) ([]byte, error)
	Open(ciphertext []byte) ([]byte, error)
}

// HashKey returns the stored form of an API key. Keys are 32 random bytes, so
// an unsalted SHA-256 is safe and allows lookup by hash.
func HashKey(key string) []byte {
	h := sha256.Sum256([]byte(key))
	return h[:]
}

// Dispatcher accepts events durably and delivers them. The delivery engine
// implements it; the HTTP API calls it.
type Dispatcher interface {
	// Publish stores the event and its deliveries (sharing a commit with
	// concurrent calls) and schedules them. It returns after the commit.
	Publish(ctx context.Context, ev *Event) (IngestResult, error)
	// PublishBatch stores events atomically (all or none, in one commit) and
	// schedules their deliveries in slice order; results follow evs.
	PublishBatch(ctx context.Context, evs []*Event) ([]IngestResult, error)
	// Retry sends a delivery again now, whatever its state.
	Retry(ctx context.Context, projectID, deliveryID string) (*Delivery, error)
	// RetryFailed re-sends the project's failed deliveries that f matches
	// (whatever f.Statuses says: only failed ones), oldest first so that
	// each resource's order is kept, and returns how many it re-queued.
	// Deliveries of a deleted endpoint are skipped: they have nowhere to go.
	RetryFailed(ctx context.Context, projectID string, f DeliveryFilter) (int, error)
	// EndpointChanged refreshes the engine's view of an endpoint after the API
	// created, updated or deleted it.
	EndpointChanged(ctx context.Context, projectID, endpointID string)
	// ProjectDeleted drops this engine's queued work of a project whose
	// rows are (being) removed; results still in flight are not recorded
	// for rows that are gone. The other instances drop theirs when told
	// that each endpoint changed (EndpointChanged, after the rows are gone).
	ProjectDeleted(ctx context.Context, projectID string)
}

// PartitionOwner is the side of the delivery engine that a Coordinator drives.
type PartitionOwner interface {
	// Assign hands partitions to this instance: the engine loads their open
	// deliveries from the store and delivers them.
	Assign(ctx context.Context, partitions []int) error
	// Revoke takes partitions away: the engine starts no new attempt in them,
	// waits until its in-flight attempts there are recorded, then returns.
	Revoke(ctx context.Context, partitions []int) error
	// Wake tells the engine that these deliveries were created or reopened by
	// another instance; it loads those in partitions it owns.
	Wake(ctx context.Context, deliveryIDs []string) error
	// RefreshEndpoint reloads an endpoint changed by another instance.
	RefreshEndpoint(ctx context.Context, projectID, endpointID string)
}

// Coordinator divides the delivery partitions among live instances and
// carries news between them. A single instance owns every partition (the
// delivery package's local coordinator); on PostgreSQL, instances lease
// partitions with heartbeats and talk through LISTEN/NOTIFY (package cluster
// over the postgres driver).
type Coordinator interface {
	// Run assigns and revokes partitions on owner until ctx ends.
	Run(ctx context.Context, owner PartitionOwner) error
	// AnnounceDeliveries tells the other instances that deliveries were
	// created or reopened (they Wake the owner of each one's partition).
	AnnounceDeliveries(ctx context.Context, ids []string) error
	// AnnounceEndpoint tells the other instances that an endpoint changed.
	AnnounceEndpoint(ctx context.Context, projectID, endpointID string) error
	// AfterCommit is called by the engine after each ingest commit, before
	// it queues the new deliveries: it keeps acceptance order across
	// instances, setting Deferred on results the engine must leave to the
	// coordinator's reload, and wakes the open deliveries of repeated
	// events (IngestResult.OpenDeliveries).
	AfterCommit(ctx context.Context, results []IngestResult)
}
