package delivery

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
)

// slowReads is the real store with its reads of open deliveries held up on
// request: the read happens at once, the answer only when the test says,
// so the test can finish a delivery between a load's read and its queueing.
type slowReads struct {
	kinehook.Store
	mu      sync.Mutex
	armed   bool
	read    chan struct{} // closed once the armed read is done
	proceed chan struct{} // close to hand the read's answer over
}

func (s *slowReads) arm() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.armed, s.read, s.proceed = true, make(chan struct{}), make(chan struct{})
}

// take reports whether this read is the armed one (and disarms).
func (s *slowReads) take() (bool, chan struct{}, chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	armed := s.armed
	s.armed = false
	return armed, s.read, s.proceed
}

func (s *slowReads) OpenDeliveries(ctx context.Context, parts []int, fn func(*kinehook.Delivery) error) error {
	armed, read, proceed := s.take()
	if !armed {
		return s.Store.OpenDeliveries(ctx, parts, fn)
	}
	var ds []*kinehook.Delivery
	err := s.Store.OpenDeliveries(ctx, parts, func(d *kinehook.Delivery) error {
		ds = append(ds, d)
		return nil
	})
	close(read)
	<-proceed
	for _, d := range ds {
		if err := fn(d); err != nil {
			return err
		}
	}
	return err
}

func (s *slowReads) DeliveriesByID(ctx context.Context, ids []string) ([]*kinehook.Delivery, error) {
	armed, read, proceed := s.take()
	ds, err := s.Store.DeliveriesByID(ctx, ids)
	if armed {
		close(read)
		<-proceed
	}
	return ds, err
}

// A load of open deliveries (a reload of owned partitions, a Wake) that read
// a delivery while its attempt was in flight must not queue it again once
// its success is recorded: it would be sent twice, and after newer
// deliveries of its resource (the crash-ordering bug: a reload after an
// instance died re-sent deliveries the receiver had acknowledged).
func TestLoadNeverBringsBackFinished(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		load func(h *harness, d *kinehook.Delivery) error
	}{
		{"reload", func(h *harness, _ *kinehook.Delivery) error {
			return h.eng.Assign(context.Background(), AllPartitions())
		}},
		{"wake", func(h *harness, d *kinehook.Delivery) error { return h.eng.Wake(context.Background(), []string{d.ID}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			slow := &slowReads{}
			h := newHarness(t, func(c *Config) { slow.Store = c.Store; c.Store = slow })
			s := newSink(t)
			release := make(chan struct{})
			s.setHandler(func(w http.ResponseWriter, _ sinkReq) {
				<-release
				w.WriteHeader(200)
			})
			h.endpoint(s.srv.URL, nil)
			first := h.publish("A")
			d := first.Deliveries[0]
			s.next(t) // in flight, held by the receiver

			slow.arm()
			errc := make(chan error, 1)
			go func() { errc <- tc.load(h, d) }()
			<-slow.read // the load read the delivery while still open
			close(release)
			h.waitStatus(d.ID, kinehook.DeliverySucceeded, 1)
			deadline := time.Now().Add(waitLimit)
			for {
				pending, retrying := h.eng.OpenCounts()
				if len(pending)+len(retrying) == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the engine still holds the succeeded delivery: %v %v", pending, retrying)
				}
				time.Sleep(time.Millisecond)
			}
			close(slow.proceed)
			if err := <-errc; err != nil {
				t.Fatal(err)
			}

			second := h.publish("A")
			if r := s.next(t); r.id != second.Event.ID {
				t.Fatalf("after the load the receiver got %s again (acknowledged before), want the next event %s", r.id, second.Event.ID)
			}
			s.none(t, 50*time.Millisecond)
			if n := len(h.attempts(d.ID)); n != 1 {
				t.Errorf("the acknowledged delivery has %d attempts, want 1", n)
			}
		})
	}
}

// heldWrites is the real store with one write held up after it committed:
// the test can run a partition load between the commit and the moment the
// engine queues what the write returned.
type heldWrites struct {
	kinehook.Store
	mu        sync.Mutex
	armed     bool
	committed chan struct{} // closed once the armed write committed
	proceed   chan struct{} // close to return the write's answer
}

func (s *heldWrites) arm() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.armed, s.committed, s.proceed = true, make(chan struct{}), make(chan struct{})
}

func (s *heldWrites) hold() {
	s.mu.Lock()
	armed := s.armed
	s.armed = false
	s.mu.Unlock()
	if armed {
		close(s.committed)
		<-s.proceed
	}
}

func (s *heldWrites) IngestEvents(ctx context.Context, evs []*kinehook.Event) ([]kinehook.IngestResult, error) {
	res, err := s.Store.IngestEvents(ctx, evs)
	s.hold()
	return res, err
}

func (s *heldWrites) ReopenDeliveries(ctx context.Context, pid string, ids []string) ([]*kinehook.Delivery, error) {
	ds, err := s.Store.ReopenDeliveries(ctx, pid, ids)
	s.hold()
	return ds, err
}

// A delivery written to the store (a new event, a manual retry) and loaded
// by a partition load before the engine queued it from memory must not be
// queued again once the load has sent it and it succeeded: that was a
// second way to send an acknowledged delivery twice (seen when a restarted
// instance claimed partitions under load).
func TestWriteLoadedMeanwhileNotQueuedTwice(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		write func(h *harness, first kinehook.IngestResult) (eventID string, done func())
	}{
		{"new event", func(h *harness, _ kinehook.IngestResult) (string, func()) {
			ev := h.event("A")
			errc := make(chan error, 1)
			go func() { _, err := h.eng.Publish(context.Background(), ev); errc <- err }()
			return ev.ID, func() {
				if err := <-errc; err != nil {
					h.t.Errorf("publish: %v", err)
				}
			}
		}},
		{"manual retry", func(h *harness, first kinehook.IngestResult) (string, func()) {
			errc := make(chan error, 1)
			go func() {
				_, err := h.eng.Retry(context.Background(), h.proj.ID, first.Deliveries[0].ID)
				errc <- err
			}()
			return first.Event.ID, func() {
				if err := <-errc; err != nil {
					h.t.Errorf("retry: %v", err)
				}
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			held := &heldWrites{}
			h := newHarness(t, func(c *Config) { held.Store = c.Store; c.Store = held })
			s := newSink(t)
			s.status(200)
			h.endpoint(s.srv.URL, nil)
			first := h.publish("A")
			s.next(t)
			h.waitStatus(first.Deliveries[0].ID, kinehook.DeliverySucceeded, 1)

			held.arm()
			id, done := tc.write(h, first)
			<-held.committed
			// A load (a reload of owned partitions) reads the new write,
			// sends it and records its success before the writer goes on.
			if err := h.eng.Assign(context.Background(), AllPartitions()); err != nil {
				t.Fatal(err)
			}
			if r := s.next(t); r.id != id {
				t.Fatalf("the load sent %s, want %s", r.id, id)
			}
			h.idle()
			close(held.proceed)
			done()

			last := h.publish("A")
			if r := s.next(t); r.id != last.Event.ID {
				t.Fatalf("the receiver got %s again (acknowledged before), want the next event %s", r.id, last.Event.ID)
			}
			s.none(t, 50*time.Millisecond)
		})
	}
}
