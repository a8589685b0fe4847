package source

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
)

// stepCoordinator is a coordinator whose Run hands the owner to the test,
// which then assigns and revokes by hand, as package cluster does.
type stepCoordinator struct {
	kinehook.Coordinator
	owner chan kinehook.PartitionOwner
}

func (c stepCoordinator) Run(ctx context.Context, owner kinehook.PartitionOwner) error {
	c.owner <- owner
	<-ctx.Done()
	return nil
}

// engineOwner records the calls that reach the engine, and whether the
// source was still running when a revocation reached it.
type engineOwner struct {
	kinehook.PartitionOwner
	mu       sync.Mutex
	calls    []string
	running  *atomic.Int32
	gated    int // the source's partition
	overlaps int
}

func (o *engineOwner) Assign(_ context.Context, ps []int) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls = append(o.calls, "assign")
	return nil
}

func (o *engineOwner) Revoke(_ context.Context, ps []int) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls = append(o.calls, "revoke")
	if slices.Contains(ps, o.gated) && o.running.Load() != 0 {
		o.overlaps++
	}
	return nil
}

// A gated source runs only while its partition is assigned, once however
// often the partition is assigned again, and a revocation (or Close)
// returns only after it stopped, before the engine hears of it.
func TestGate(t *testing.T) {
	const name = "orders"
	p := Partition(name)
	other := (p + 1) % kinehook.NumPartitions
	var running, starts atomic.Int32
	run := func(ctx context.Context) {
		starts.Add(1)
		running.Add(1)
		<-ctx.Done()
		time.Sleep(20 * time.Millisecond) // the batch in hand
		running.Add(-1)
	}
	eventually := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !cond(); {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting: %s", what)
			}
			time.Sleep(time.Millisecond)
		}
	}

	g := NewGate()
	sc := stepCoordinator{owner: make(chan kinehook.PartitionOwner, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = g.Wrap(sc).Run(ctx, &engineOwner{running: &running, gated: p}) }()
	owner := <-sc.owner
	eng := owner.(gateOwner).PartitionOwner.(*engineOwner)

	g.Add(ctx, name, run)
	time.Sleep(20 * time.Millisecond)
	if starts.Load() != 0 || g.Running(name) {
		t.Fatal("source started without its partition")
	}
	if err := owner.Assign(ctx, []int{other}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if starts.Load() != 0 {
		t.Fatal("source started on another partition's assignment")
	}
	for range 3 { // a reload assigns every owned partition again
		if err := owner.Assign(ctx, []int{other, p}); err != nil {
			t.Fatal(err)
		}
	}
	eventually("source running", func() bool { return running.Load() == 1 })
	if n := starts.Load(); n != 1 || !g.Running(name) {
		t.Fatalf("%d starts after three assignments, running %v; want 1, true", n, g.Running(name))
	}
	if err := owner.Revoke(ctx, []int{other}); err != nil {
		t.Fatal(err)
	}
	if running.Load() != 1 {
		t.Fatal("another partition's revocation stopped the source")
	}
	if err := owner.Revoke(ctx, []int{p}); err != nil {
		t.Fatal(err)
	}
	if running.Load() != 0 || g.Running(name) {
		t.Fatal("Revoke returned before the source stopped")
	}
	if eng.overlaps != 0 {
		t.Fatal("the engine heard of the revocation while the source still ran")
	}

	// Added while owned: starts at once; Close stops it for good.
	if err := owner.Assign(ctx, []int{p}); err != nil {
		t.Fatal(err)
	}
	eventually("source running again", func() bool { return running.Load() == 1 })
	g.Add(ctx, "second", func(ctx context.Context) {
		if Partition("second") == p {
			run(ctx)
		}
	})
	g.Close()
	if running.Load() != 0 {
		t.Fatal("Close returned before the sources stopped")
	}
	before := starts.Load()
	if err := owner.Assign(ctx, []int{p}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if starts.Load() != before {
		t.Fatal("a closed gate started a source")
	}
	if got := eng.calls; len(got) != 8 || got[0] != "assign" || got[4] != "revoke" {
		t.Fatalf("engine calls %v: every assignment and revocation must reach it", got)
	}
}

func TestExclusive(t *testing.T) {
	for broker, want := range map[string]bool{"nats": true, "redis": true, "rabbitmq": false, "kafka": false} {
		if got := Exclusive(broker); got != want {
			t.Errorf("Exclusive(%q) = %v, want %v", broker, got, want)
		}
	}
}
