package delivery

import (
	"context"

	"github.com/kinehook/kinehook"
)

// LocalCoordinator is the coordinator of a single instance: it assigns every
// partition to its owner and has nobody to announce anything to.
type LocalCoordinator struct{}

var _ kinehook.Coordinator = LocalCoordinator{}

// AllPartitions returns 0..NumPartitions-1.
func AllPartitions() []int {
	ps := make([]int, kinehook.NumPartitions)
	for i := range ps {
		ps[i] = i
	}
	return ps
}

// Run assigns every partition, then waits for ctx to end.
func (LocalCoordinator) Run(ctx context.Context, owner kinehook.PartitionOwner) error {
	if err := owner.Assign(ctx, AllPartitions()); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

// AnnounceDeliveries does nothing: this instance owns every partition.
func (LocalCoordinator) AnnounceDeliveries(context.Context, []string) error { return nil }

// AnnounceEndpoint does nothing: there is no other instance.
func (LocalCoordinator) AnnounceEndpoint(context.Context, string, string) error { return nil }

// AfterCommit does nothing: no other instance accepts events, so every
// older delivery is already queued here.
func (LocalCoordinator) AfterCommit(context.Context, []kinehook.IngestResult) {}
