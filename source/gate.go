package source

import (
	"context"
	"slices"
	"sync"

	"github.com/kinehook/kinehook"
)

// Gate runs the sources that must be alone in a cluster (a JetStream
// consumer, a Redis consumer: two readers would interleave a stream and race
// their commits) on one instance at a time: the one that owns the source's
// delivery partition (PartitionOf("source", name)). The coordinator's
// partition leases then give such a source what they give deliveries: one
// owner, handed over when its instance stops or dies. Every instance may be
// started with the same --source flags.
//
// A Gate wraps the instance's Coordinator (Wrap): when the coordinator assigns
// the partition the source starts; when it revokes it, Revoke returns only
// after the source stopped, its batch in hand committed and acknowledged, so
// the next owner reads after it.
type Gate struct {
	mu     sync.Mutex
	owned  map[int]bool
	gated  []*gated
	closed bool
}

// gated is one source under a Gate.
type gated struct {
	run       func(ctx context.Context)
	partition int
	base      context.Context
	stop      context.CancelFunc // nil while not running
	done      chan struct{}
}

// NewGate returns a Gate owning no partition.
func NewGate() *Gate { return &Gate{owned: map[int]bool{}} }

// Partition is the delivery partition whose owner runs the named source.
func Partition(name string) int { return kinehook.PartitionOf("source", name) }

// Add puts a source under the gate: run is called (with a context derived
// from ctx, which ends when the partition goes or ctx ends) whenever this
// instance owns the source's partition. Add starts it at once when it does.
func (g *Gate) Add(ctx context.Context, name string, run func(ctx context.Context)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := &gated{run: run, partition: Partition(name), base: ctx}
	g.gated = append(g.gated, s)
	if g.owned[s.partition] && !g.closed {
		g.startLocked(s)
	}
}

// startLocked runs s until its context ends. g.mu must be held.
func (g *Gate) startLocked(s *gated) {
	if s.stop != nil || s.base.Err() != nil {
		return
	}
	ctx, cancel := context.WithCancel(s.base)
	s.stop, s.done = cancel, make(chan struct{})
	go func(done chan struct{}) {
		defer close(done)
		s.run(ctx)
	}(s.done)
}

// assign starts the sources of partitions.
func (g *Gate) assign(partitions []int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, p := range partitions {
		g.owned[p] = true
	}
	if g.closed {
		return
	}
	for _, s := range g.gated {
		if g.owned[s.partition] {
			g.startLocked(s)
		}
	}
}

// revoke stops the sources of partitions and waits until they stopped.
func (g *Gate) revoke(partitions []int) {
	g.mu.Lock()
	var wait []chan struct{}
	for _, p := range partitions {
		delete(g.owned, p)
	}
	for _, s := range g.gated {
		if s.stop != nil && slices.Contains(partitions, s.partition) {
			s.stop()
			wait = append(wait, s.done)
			s.stop, s.done = nil, nil
		}
	}
	g.mu.Unlock()
	for _, d := range wait {
		<-d
	}
}

// Close stops every source and waits for them; the gate starts none again.
func (g *Gate) Close() {
	g.mu.Lock()
	g.closed = true
	var all []int
	for p := range g.owned {
		all = append(all, p)
	}
	g.mu.Unlock()
	g.revoke(all)
}

// Running reports whether the named source runs on this instance now.
func (g *Gate) Running(name string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	p := Partition(name)
	for _, s := range g.gated {
		if s.partition == p && s.stop != nil {
			return true
		}
	}
	return false
}

// Wrap returns c with its partition owner seen through the gate: the gate
// learns every assignment and revocation of the instance's partitions.
func (g *Gate) Wrap(c kinehook.Coordinator) kinehook.Coordinator {
	return gateCoordinator{Coordinator: c, g: g}
}

// gateCoordinator is a Coordinator whose Run hands its owner through the gate.
type gateCoordinator struct {
	kinehook.Coordinator
	g *Gate
}

// Run runs the wrapped coordinator over the gated owner.
func (c gateCoordinator) Run(ctx context.Context, owner kinehook.PartitionOwner) error {
	return c.Coordinator.Run(ctx, gateOwner{PartitionOwner: owner, g: c.g})
}

// gateOwner passes assignments to the engine, then to the gate; revocations
// to the gate first (its sources stop), then to the engine.
type gateOwner struct {
	kinehook.PartitionOwner
	g *Gate
}

// Assign hands partitions to the engine, then starts their sources.
func (o gateOwner) Assign(ctx context.Context, partitions []int) error {
	err := o.PartitionOwner.Assign(ctx, partitions)
	if err == nil {
		o.g.assign(partitions)
	}
	return err
}

// Revoke stops the partitions' sources (their batch in hand committed), then
// takes the partitions from the engine.
func (o gateOwner) Revoke(ctx context.Context, partitions []int) error {
	o.g.revoke(partitions)
	return o.PartitionOwner.Revoke(ctx, partitions)
}

// Exclusive reports whether a broker's source must run on one instance at a
// time: NATS and Redis, whose consumers would share one stream's messages.
// RabbitMQ's exclusive consumer and Kafka's consumer group keep order by
// themselves.
func Exclusive(broker string) bool { return broker == "nats" || broker == "redis" }
