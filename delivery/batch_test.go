package delivery

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
)

// refusingStore is the real store, refusing any ingest that holds one event
// id (a store that answers but rejects one event: a constraint, a size).
type refusingStore struct {
	kinehook.Store
	mu     sync.Mutex
	refuse string
	calls  [][]string // event ids of each IngestEvents call
}

func (s *refusingStore) IngestEvents(ctx context.Context, evs []*kinehook.Event) ([]kinehook.IngestResult, error) {
	ids := make([]string, len(evs))
	for i, ev := range evs {
		ids[i] = ev.ID
	}
	s.mu.Lock()
	s.calls = append(s.calls, ids)
	s.mu.Unlock()
	for _, ev := range evs {
		if ev.ID == s.refuse {
			return nil, errors.New("refused by the test")
		}
	}
	return s.Store.IngestEvents(ctx, evs)
}

// A batch is stored whole or not at all, also when it shared a commit with
// other requests and the store refused one of its events: the neighbours
// are committed, the batch is not split.
func TestPublishBatchIsAtomic(t *testing.T) {
	t.Parallel()
	var rs *refusingStore
	h := newHarness(t, func(c *Config) {
		rs = &refusingStore{Store: c.Store}
		c.Store = rs
		// A window long enough that the concurrent calls share a commit.
		c.IngestWindow = 100 * time.Millisecond
	})
	s := newSink(t)
	h.endpoint(s.srv.URL, nil)

	// The calls share a commit almost always; a round where they did not
	// proves less, so it is tried again (a few times at most).
	for round := 1; ; round++ {
		if publishBatchBesideRefusal(t, h, rs, s) {
			return
		}
		if round == 5 {
			t.Fatal("in 5 rounds the batch never shared a commit with its neighbour: the split path was not exercised")
		}
		t.Logf("round %d: the batch did not share a commit; again", round)
	}
}

// publishBatchBesideRefusal publishes a batch the store refuses beside a
// single event, checks that the batch is stored not at all and the single
// event is, and reports whether they shared a commit.
func publishBatchBesideRefusal(t *testing.T, h *harness, rs *refusingStore, s *sink) bool {
	t.Helper()
	batch := []*kinehook.Event{h.event("a"), h.event("b"), h.event("c")}
	rs.mu.Lock()
	rs.refuse, rs.calls = batch[1].ID, nil
	rs.mu.Unlock()
	single := h.event("d")
	var wg sync.WaitGroup
	var batchErr, singleErr error
	var singleRes kinehook.IngestResult
	wg.Go(func() { _, batchErr = h.eng.PublishBatch(t.Context(), batch) })
	wg.Go(func() { singleRes, singleErr = h.eng.Publish(t.Context(), single) })
	wg.Wait()
	if batchErr == nil {
		t.Fatal("PublishBatch succeeded although the store refused one of its events")
	}
	if singleErr != nil {
		t.Fatalf("the neighbouring Publish failed with the batch: %v", singleErr)
	}
	for _, ev := range batch {
		if _, err := h.store.GetEvent(t.Context(), h.proj.ID, ev.ID); kinehook.ErrorCode(err) != kinehook.ENOTFOUND {
			t.Errorf("event %s of the refused batch: GetEvent = %v, want not found", ev.ResourceKey, err)
		}
	}
	if got := s.next(t); got.id != single.ID {
		t.Errorf("delivered %s (%s), want only the single event %s", got.id, got.resource, single.ID)
	}
	h.waitStatus(singleRes.Deliveries[0].ID, kinehook.DeliverySucceeded, 1)
	s.none(t, 50*time.Millisecond)

	// No store call ever held part of the batch without the rest.
	rs.mu.Lock()
	defer rs.mu.Unlock()
	shared := false
	for _, call := range rs.calls {
		n := 0
		for _, id := range call {
			for _, ev := range batch {
				if id == ev.ID {
					n++
				}
			}
		}
		if n != 0 && n != len(batch) {
			t.Errorf("a store call held %d of the batch's %d events: %v", n, len(batch), call)
		}
		if n == len(batch) && len(call) > len(batch) {
			shared = true
		}
	}
	return shared
}

// A batch's deliveries follow its order per resource, and its results its
// order; an idempotency key given twice in one batch stores one event.
func TestPublishBatchOrderAndIdempotency(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	s := newSink(t)
	var mu sync.Mutex
	var order []string
	s.setHandler(func(w http.ResponseWriter, r sinkReq) {
		if r.resource == "r" {
			mu.Lock()
			order = append(order, r.id)
			mu.Unlock()
		}
		w.WriteHeader(http.StatusNoContent)
	})
	h.endpoint(s.srv.URL, nil)
	var evs []*kinehook.Event
	var want []string
	for i := range 20 {
		res := "r"
		if i%3 == 2 {
			res = "other"
		}
		ev := h.event(res)
		evs = append(evs, ev)
		if res == "r" {
			want = append(want, ev.ID)
		}
	}
	k1, k2 := h.event("k"), h.event("k")
	k1.IdempotencyKey, k2.IdempotencyKey = "same", "same"
	evs = append(evs, k1, k2)
	results, err := h.eng.PublishBatch(t.Context(), evs)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != len(evs) {
		t.Fatalf("%d results for %d events", len(results), len(evs))
	}
	for i, r := range results[:20] {
		if r.Event == nil || r.Event.ID != evs[i].ID || r.Duplicate || len(r.Deliveries) != 1 {
			t.Fatalf("result %d = %+v, want event %s with one delivery", i, r, evs[i].ID)
		}
	}
	if r := results[21]; !r.Duplicate || r.Event == nil || r.Event.ID != k1.ID || len(r.Deliveries) != 0 {
		t.Errorf("second use of the key in the batch = %+v, want a duplicate of %s", r, k1.ID)
	}
	s.take(t, 21)
	s.none(t, 50*time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(order) != len(want) {
		t.Fatalf("resource r: %d deliveries, want %d", len(order), len(want))
	}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("resource r delivered out of batch order at %d: got %v, want %v", i, order, want)
		}
	}
}

func TestPublishBatchEmptyAndStopped(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	if res, err := h.eng.PublishBatch(t.Context(), nil); err != nil || res != nil {
		t.Errorf("empty batch = %v, %v; want nothing, no error", res, err)
	}
	h.stop()
	e, err := New(Config{Store: openStore(t, t.TempDir()+"/x.db"), Transports: httpTransports(0)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.PublishBatch(t.Context(), []*kinehook.Event{h.event("x")}); !errors.Is(err, ErrStopped) {
		t.Errorf("PublishBatch on an engine not started = %v, want ErrStopped", err)
	}
}
