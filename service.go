package kinehook

import (
	"context"
	"crypto/sha256"
	"time"
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
	// Retry sends a delivery again now, whatever its state.
	Retry(ctx context.Context, projectID, deliveryID string) (*Delivery, error)
	// Recover re-sends an endpoint's failed deliveries created since t and
	// returns how many.
	Recover(ctx context.Context, projectID, endpointID string, since time.Time) (int, error)
	// EndpointChanged refreshes the engine's view of an endpoint after the API
	// created, updated or deleted it.
	EndpointChanged(ctx context.Context, projectID, endpointID string)
}
