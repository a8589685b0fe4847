package cluster

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/postgres"
	"github.com/kinehook/kinehook/storetest"
)

// registry is the ground truth of who delivers what across fake owners: it
// records any partition handed to two live owners at once.
type registry struct {
	mu        sync.Mutex
	by        map[int]string
	conflicts []string
}

// fakeOwner records what a Coordinator asks of it (it is the engine's side
// of the contract, not a store).
type fakeOwner struct {
	name    string
	reg     *registry
	mu      sync.Mutex
	owned   map[int]bool
	assigns int
	full    int // Assign calls covering every owned partition (reloads)
	woken   map[string]int
	refresh []string
}

func newFakeOwner(name string, reg *registry) *fakeOwner {
	return &fakeOwner{name: name, reg: reg, owned: map[int]bool{}, woken: map[string]int{}}
}

func (f *fakeOwner) Assign(_ context.Context, parts []int) error {
	f.reg.mu.Lock()
	for _, p := range parts {
		if o, ok := f.reg.by[p]; ok && o != f.name {
			f.reg.conflicts = append(f.reg.conflicts, fmt.Sprintf("partition %d assigned to %s while %s owns it", p, f.name, o))
		}
		f.reg.by[p] = f.name
	}
	f.reg.mu.Unlock()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.assigns++
	already := len(f.owned) > 0
	for _, p := range parts {
		already = already && f.owned[p]
		f.owned[p] = true
	}
	if already && len(parts) == len(f.owned) {
		f.full++
	}
	return nil
}

func (f *fakeOwner) Revoke(_ context.Context, parts []int) error {
	f.mu.Lock()
	for _, p := range parts {
		delete(f.owned, p)
	}
	f.mu.Unlock()
	f.reg.mu.Lock()
	for _, p := range parts {
		if f.reg.by[p] == f.name {
			delete(f.reg.by, p)
		}
	}
	f.reg.mu.Unlock()
	return nil
}

func (f *fakeOwner) Wake(_ context.Context, ids []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range ids {
		f.woken[id]++
	}
	return nil
}

func (f *fakeOwner) RefreshEndpoint(_ context.Context, projectID, endpointID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refresh = append(f.refresh, projectID+"/"+endpointID)
}

// crash forgets everything, as a killed process would.
func (f *fakeOwner) crash() {
	f.mu.Lock()
	f.owned = map[int]bool{}
	f.mu.Unlock()
	f.reg.mu.Lock()
	for p, o := range f.reg.by {
		if o == f.name {
			delete(f.reg.by, p)
		}
	}
	f.reg.mu.Unlock()
}

func (f *fakeOwner) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.owned)
}

type runningCoord struct {
	c      *Coordinator
	owner  *fakeOwner
	cancel context.CancelFunc
	done   chan error
}

func startCoord(t *testing.T, s *postgres.Store, name string, reg *registry) *runningCoord {
	t.Helper()
	c, err := newCoord(s, Options{InstanceID: name, Heartbeat: 200 * time.Millisecond, LeaseTTL: time.Second, StopTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rc := &runningCoord{c: c, owner: newFakeOwner(name, reg), cancel: cancel, done: make(chan error, 1)}
	go func() { rc.done <- c.Run(ctx, rc.owner) }()
	t.Cleanup(func() { rc.stop(t) })
	return rc
}

func (rc *runningCoord) stop(t *testing.T) {
	t.Helper()
	rc.cancel()
	select {
	case err := <-rc.done:
		if err != nil {
			t.Errorf("%s: Run returned %v", rc.c.ID(), err)
		}
		rc.done <- nil // later stops return at once
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: Run did not return after cancel", rc.c.ID())
	}
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("after %v: %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// settled reports whether the live owners together own every partition,
// each exactly once, in shares differing by at most one.
func settled(reg *registry, owners ...*fakeOwner) bool {
	reg.mu.Lock()
	n := len(reg.by)
	reg.mu.Unlock()
	if n != kinehook.NumPartitions {
		return false
	}
	total, lo, hi := 0, kinehook.NumPartitions, 0
	for _, o := range owners {
		c := o.count()
		total += c
		lo, hi = min(lo, c), max(hi, c)
	}
	return total == kinehook.NumPartitions && hi-lo <= 1
}

func checkNoConflicts(t *testing.T, reg *registry) {
	t.Helper()
	reg.mu.Lock()
	defer reg.mu.Unlock()
	for _, c := range reg.conflicts {
		t.Error(c)
	}
}

func TestCoordinatorSharesAndFailsOver(t *testing.T) {
	s := openStore(t)
	reg := &registry{by: map[int]string{}}
	a := startCoord(t, s, "inst-a", reg)
	waitFor(t, 5*time.Second, "one instance owns every partition", func() bool { return settled(reg, a.owner) })

	b := startCoord(t, s, "inst-b", reg)
	c := startCoord(t, s, "inst-c", reg)
	d := waitFor(t, 10*time.Second, "three instances share the partitions", func() bool { return settled(reg, a.owner, b.owner, c.owner) })
	t.Logf("rebalanced over 3 instances in %v", d)
	for _, o := range []*fakeOwner{a.owner, b.owner, c.owner} {
		if n := o.count(); n < kinehook.NumPartitions/3 || n > kinehook.NumPartitions/3+1 {
			t.Errorf("%s owns %d partitions, want a fair share", o.name, n)
		}
	}

	// Crash c: nothing is revoked or released; its leases must expire.
	a.owner.mu.Lock()
	fullBefore := a.owner.full
	a.owner.mu.Unlock()
	c.c.crashOnStop = true
	c.stop(t)
	c.owner.crash()
	d = waitFor(t, 5*time.Second, "a crashed instance's partitions move", func() bool { return settled(reg, a.owner, b.owner) })
	t.Logf("a crashed instance's partitions moved in %v (lease TTL 1s)", d)
	// It may have stored deliveries it never announced: the survivors reload.
	waitFor(t, 5*time.Second, "a survivor reloads its partitions after a death", func() bool {
		a.owner.mu.Lock()
		defer a.owner.mu.Unlock()
		return a.owner.full > fullBefore
	})

	// Graceful stop of b: it hands its partitions back at once.
	b.stop(t)
	if n := b.owner.count(); n != 0 {
		t.Errorf("after a graceful stop %s still owns %d partitions", b.owner.name, n)
	}
	d = waitFor(t, 3*time.Second, "a stopped instance's partitions move", func() bool { return settled(reg, a.owner) })
	t.Logf("a stopped instance's partitions moved in %v", d)
	checkNoConflicts(t, reg)

	var rows int
	if err := s.Pool().QueryRow(t.Context(), `SELECT count(*) FROM instances WHERE id = 'inst-b'`).Scan(&rows); err != nil || rows != 0 {
		t.Errorf("a stopped instance stays in the instances table (%d rows, %v)", rows, err)
	}
	if got := a.c.Owned(); len(got) != kinehook.NumPartitions {
		t.Errorf("Owned() = %d partitions, want all", len(got))
	}
	if err := a.c.Ready(); err != nil {
		t.Errorf("Ready() = %v", err)
	}
}

func TestCoordinatorNotifications(t *testing.T) {
	s := openStore(t)
	reg := &registry{by: map[int]string{}}
	a := startCoord(t, s, "inst-a", reg)
	b := startCoord(t, s, "inst-b", reg)
	waitFor(t, 10*time.Second, "two instances share the partitions", func() bool { return settled(reg, a.owner, b.owner) })

	// Enough ids to need several NOTIFY payloads.
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = kinehook.NewID(kinehook.PrefixDelivery)
	}
	if err := a.c.AnnounceDeliveries(t.Context(), ids); err != nil {
		t.Fatalf("AnnounceDeliveries: %v", err)
	}
	// Sync on b returns only after b handled every notification committed
	// before it: all of a's announcement, with no waiting.
	sctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	if err := b.c.Sync(sctx); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	cancel()
	b.owner.mu.Lock()
	if got := len(b.owner.woken); got != len(ids) {
		t.Errorf("after Sync, %d of %d announced deliveries were handled", got, len(ids))
	}
	b.owner.mu.Unlock()
	if err := b.c.AnnounceEndpoint(t.Context(), "prj_1", "ep_1"); err != nil {
		t.Fatalf("AnnounceEndpoint: %v", err)
	}
	waitFor(t, 5*time.Second, "the other instance is woken for every delivery", func() bool {
		b.owner.mu.Lock()
		defer b.owner.mu.Unlock()
		return len(b.owner.woken) == len(ids)
	})
	waitFor(t, 5*time.Second, "the other instance refreshes the endpoint", func() bool {
		a.owner.mu.Lock()
		defer a.owner.mu.Unlock()
		return slices.Equal(a.owner.refresh, []string{"prj_1/ep_1"})
	})
	b.owner.mu.Lock()
	for _, id := range ids {
		if b.owner.woken[id] != 1 {
			t.Errorf("delivery %s woken %d times, want once", id, b.owner.woken[id])
			break
		}
	}
	b.owner.mu.Unlock()
	time.Sleep(200 * time.Millisecond)
	a.owner.mu.Lock()
	if len(a.owner.woken) != 0 {
		t.Errorf("the announcing instance woke itself for %d deliveries", len(a.owner.woken))
	}
	a.owner.mu.Unlock()
	b.owner.mu.Lock()
	if len(b.owner.refresh) != 0 {
		t.Errorf("the announcing instance refreshed its own endpoint change: %v", b.owner.refresh)
	}
	b.owner.mu.Unlock()
}

func TestCoordinatorListenReconnect(t *testing.T) {
	s := openStore(t)
	reg := &registry{by: map[int]string{}}
	a := startCoord(t, s, "inst-a", reg)
	b := startCoord(t, s, "inst-b", reg)
	waitFor(t, 10*time.Second, "two instances share the partitions", func() bool { return settled(reg, a.owner, b.owner) })
	b.owner.mu.Lock()
	fullBefore := b.owner.full
	b.owner.mu.Unlock()

	var killed int
	err := s.Pool().QueryRow(t.Context(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND application_name = 'kinehook-listen'`).Scan(&killed)
	if err != nil || killed != 2 {
		t.Fatalf("terminated %d LISTEN connections (%v), want 2", killed, err)
	}
	// Lost notifications are made up by a full reload of the owned partitions.
	d := waitFor(t, 5*time.Second, "a full reload after the LISTEN connection comes back", func() bool {
		b.owner.mu.Lock()
		defer b.owner.mu.Unlock()
		return b.owner.full > fullBefore
	})
	t.Logf("reloaded %v after the LISTEN connection was terminated", d)
	waitFor(t, 5*time.Second, "LISTEN is back", func() bool { return b.c.listening.Load() })
	id := kinehook.NewID(kinehook.PrefixDelivery)
	if err := a.c.AnnounceDeliveries(t.Context(), []string{id}); err != nil {
		t.Fatalf("AnnounceDeliveries: %v", err)
	}
	waitFor(t, 5*time.Second, "notifications flow again", func() bool {
		b.owner.mu.Lock()
		defer b.owner.mu.Unlock()
		return b.owner.woken[id] == 1
	})
	if !settled(reg, a.owner, b.owner) {
		t.Errorf("partitions unsettled after the reconnect")
	}
	checkNoConflicts(t, reg)
}

func TestCoordinatorOptions(t *testing.T) {
	requirePG(t)
	s := openStore(t)
	if _, err := newCoord(s, Options{Heartbeat: time.Second, LeaseTTL: time.Second}); err == nil {
		t.Error("a lease TTL shorter than two heartbeats was accepted")
	}
	c1, err := newCoord(s, Options{})
	if err != nil {
		t.Fatal(err)
	}
	c2, err := newCoord(s, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c1.ID() == "" || c1.ID() == c2.ID() {
		t.Errorf("instance ids %q and %q: want distinct, non-empty", c1.ID(), c2.ID())
	}
	if c1.hb != DefaultHeartbeat || c1.ttl != DefaultLeaseTTL {
		t.Errorf("defaults: heartbeat %v, TTL %v", c1.hb, c1.ttl)
	}
	if err := c1.Ready(); err == nil {
		t.Error("Ready() before Run = nil, want an error")
	}
}

// TestIngestWaitsForEarlierNews: while a coordinator runs, AfterCommit
// returns only after the instance has handled every announcement committed
// before the ingest's commit, so deliveries accepted elsewhere first are
// queued first.
func TestIngestWaitsForEarlierNews(t *testing.T) {
	s1 := openStore(t)
	s2, err := postgres.Open(t.Context(), testDSN, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s2.Close() })
	reg := &registry{by: map[int]string{}}
	a := startCoord(t, s1, "inst-a", reg)
	other, err := newCoord(s2, Options{InstanceID: "inst-z", Heartbeat: 200 * time.Millisecond, LeaseTTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "a listens", func() bool { return a.c.listening.Load() })
	p, _ := storetest.NewProject(t, s1, 1)
	for round := range 5 {
		ids := make([]string, 300)
		for i := range ids {
			ids[i] = kinehook.NewID(kinehook.PrefixDelivery)
		}
		if err := other.AnnounceDeliveries(t.Context(), ids); err != nil {
			t.Fatal(err)
		}
		res, err := s1.IngestEvents(t.Context(), []*kinehook.Event{storetest.NewEvent(p.ID, "v", time.Time{})})
		if err != nil {
			t.Fatal(err)
		}
		a.c.AfterCommit(t.Context(), res)
		if res[0].Deferred {
			t.Errorf("round %d: the ingest was deferred", round)
		}
		a.owner.mu.Lock()
		got := 0
		for _, id := range ids {
			got += a.owner.woken[id]
		}
		a.owner.mu.Unlock()
		if got != len(ids) {
			t.Errorf("round %d: AfterCommit returned before %d of %d earlier announcements were handled", round, len(ids)-got, len(ids))
		}
	}
}

// TestRepeatedEventWakesItsDeliveries: an instance stores an event and dies
// before announcing it; the client's retry with the same Idempotency-Key
// reaches another instance, which must wake the stored deliveries before
// answering, or later events of the resource would overtake them.
func TestRepeatedEventWakesItsDeliveries(t *testing.T) {
	s1 := openStore(t)
	dying, err := postgres.Open(t.Context(), testDSN, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dying.Close() })
	reg := &registry{by: map[int]string{}}
	a := startCoord(t, s1, "inst-a", reg)
	waitFor(t, 5*time.Second, "a listens", func() bool { return a.c.listening.Load() })
	p, _ := storetest.NewProject(t, s1, 2)

	first := storetest.NewEvent(p.ID, "v", time.Time{})
	first.IdempotencyKey = "retry-me"
	res, err := dying.IngestEvents(t.Context(), []*kinehook.Event{first}) // never announced
	if err != nil || len(res[0].Deliveries) != 2 {
		t.Fatalf("first ingest: %v", err)
	}
	retry := storetest.NewEvent(p.ID, "v", time.Time{})
	retry.IdempotencyKey = "retry-me"
	again, err := s1.IngestEvents(t.Context(), []*kinehook.Event{retry})
	if err != nil || !again[0].Duplicate || again[0].Event.ID != first.ID {
		t.Fatalf("retry: %+v %v", again, err)
	}
	if len(again[0].OpenDeliveries) != 2 {
		t.Errorf("the repeated event lists %d open deliveries, want 2", len(again[0].OpenDeliveries))
	}
	a.c.AfterCommit(t.Context(), again)
	a.owner.mu.Lock()
	defer a.owner.mu.Unlock()
	for _, d := range res[0].Deliveries {
		if a.owner.woken[d.ID] == 0 {
			t.Errorf("delivery %s of the repeated event was not woken before the retry returned", d.ID)
		}
	}
}

// TestIngestAnnouncesInItsCommit: while other instances are live, an ingest
// announces its deliveries in its own transaction, so an instance killed
// right after the commit (before any announcement of its own) cannot leave
// the owners unaware of them. Each instance is woken only for the
// partitions it owns.
func TestIngestAnnouncesInItsCommit(t *testing.T) {
	s1 := openStore(t)
	s2, err := postgres.Open(t.Context(), testDSN, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s2.Close() })
	reg := &registry{by: map[int]string{}}
	a := startCoord(t, s1, "inst-a", reg)
	z := startCoord(t, s2, "inst-z", reg)
	waitFor(t, 10*time.Second, "two instances share the partitions", func() bool { return settled(reg, a.owner, z.owner) })
	p, _ := storetest.NewProject(t, s2, 1)
	var evs []*kinehook.Event
	for i := range 40 {
		evs = append(evs, storetest.NewEvent(p.ID, fmt.Sprintf("video-%d", i), time.Time{}))
	}
	res, err := s2.IngestEvents(t.Context(), evs) // and then z "dies": nothing more is announced
	if err != nil {
		t.Fatal(err)
	}
	z.c.AfterCommit(t.Context(), res)
	var mine, theirs []string // a's partitions, z's
	a.owner.mu.Lock()
	for _, r := range res {
		if !r.Announced || r.Deferred {
			t.Errorf("result of %s: Announced %v Deferred %v, want announced in the commit", r.Event.ID, r.Announced, r.Deferred)
		}
		for _, d := range r.Deliveries {
			if a.owner.owned[d.Partition] {
				mine = append(mine, d.ID)
			} else {
				theirs = append(theirs, d.ID)
			}
		}
	}
	a.owner.mu.Unlock()
	if len(mine) == 0 || len(theirs) == 0 {
		t.Fatalf("40 resources fell %d/%d in the two instances' partitions; the test needs both", len(mine), len(theirs))
	}
	waitFor(t, 5*time.Second, "the owner is woken for the deliveries of its partitions", func() bool {
		a.owner.mu.Lock()
		defer a.owner.mu.Unlock()
		for _, id := range mine {
			if a.owner.woken[id] == 0 {
				return false
			}
		}
		return true
	})
	sctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := a.c.Sync(sctx); err != nil {
		t.Fatal(err)
	}
	a.owner.mu.Lock()
	for _, id := range theirs {
		if a.owner.woken[id] != 0 {
			t.Errorf("a was woken for %s, in a partition it does not own", id)
		}
	}
	a.owner.mu.Unlock()
	z.owner.mu.Lock()
	if len(z.owner.woken) != 0 {
		t.Errorf("the ingesting instance woke itself for %d deliveries", len(z.owner.woken))
	}
	z.owner.mu.Unlock()
}
