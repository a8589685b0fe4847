package app

import (
	"context"
	"fmt"

	"github.com/kinehook/kinehook"
)

// MaxResponseBody is how much of a response body an attempt shows.
const MaxResponseBody = 4096

// GetDelivery returns one delivery of a project.
func (a *App) GetDelivery(ctx context.Context, pid, did string) (*kinehook.Delivery, error) {
	return a.store.GetDelivery(ctx, pid, did)
}

// ListDeliveries lists an event's deliveries (ENOTFOUND for an event of
// another project).
func (a *App) ListDeliveries(ctx context.Context, pid, eventID string) ([]*kinehook.Delivery, error) {
	return a.store.ListDeliveries(ctx, pid, eventID)
}

// ListAttempts lists a delivery's attempts, oldest first (ENOTFOUND for a
// delivery of another project).
func (a *App) ListAttempts(ctx context.Context, pid, did string) ([]*kinehook.Attempt, error) {
	return a.store.ListAttempts(ctx, pid, did)
}

// RetryDelivery sends a delivery of the project again now, whatever its
// state, and returns it as it now is.
func (a *App) RetryDelivery(ctx context.Context, pid, did string) (*kinehook.Delivery, error) {
	if _, err := a.store.GetDelivery(ctx, pid, did); err != nil {
		return nil, fmt.Errorf("get delivery: %w", err)
	}
	d, err := a.disp.Retry(ctx, pid, did)
	if err != nil {
		return nil, fmt.Errorf("retry delivery: %w", err)
	}
	return d, nil
}
