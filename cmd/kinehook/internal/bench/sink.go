// Package bench drives a kinehook server end to end through its HTTP API
// into a local sink and measures what users feel: deliveries per second,
// latency from POST to arrival, memory under a backlog, and the machine's
// ceiling from a plain Go client posting the same signed webhooks. The
// `kinehook bench` command wires it to a server it starts or to one already
// running.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kinehook/kinehook"
)

// Sink is the receiving side: a loopback HTTP server that counts webhooks and
// records the first arrival time of each (path, webhook-id). It verifies
// nothing heavy, so that the sender is what the benchmark measures.
type Sink struct {
	// URL is the sink's base URL, http://127.0.0.1:PORT.
	URL string

	srv    *http.Server
	ln     net.Listener
	status atomic.Int32
	hits   atomic.Int64

	mu       sync.Mutex
	arrivals map[string]time.Time
	dups     int
	last     time.Time
	want     int
	done     chan struct{}
	closed   bool
}

// NewSink starts a sink on 127.0.0.1 answering status (204 for a healthy
// endpoint, 503 for one that is down).
func NewSink(status int) (*Sink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("sink listen: %w", err)
	}
	s := &Sink{URL: "http://" + ln.Addr().String(), ln: ln, arrivals: map[string]time.Time{}, done: make(chan struct{})}
	s.status.Store(int32(status))
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serveHTTP), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

func (s *Sink) serveHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	now := time.Now()
	s.hits.Add(1)
	status := int(s.status.Load())
	if status < 200 || status > 299 {
		w.WriteHeader(status)
		return
	}
	s.record(r.URL.Path+" "+r.Header.Get(kinehook.HeaderID), now)
	w.WriteHeader(status)
}

// NewRecorder is a Sink without an HTTP server, for deliveries that arrive
// another way (a broker's consumer): they are counted with Record.
func NewRecorder() *Sink {
	return &Sink{arrivals: map[string]time.Time{}, done: make(chan struct{})}
}

// Record counts the arrival of webhook id at path (a consumer's name for
// where it came from), as the HTTP sink counts a request.
func (s *Sink) Record(path, id string) {
	now := time.Now()
	s.hits.Add(1)
	s.record(path+" "+id, now)
}

func (s *Sink) record(key string, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, seen := s.arrivals[key]; seen {
		s.dups++
		return
	}
	s.arrivals[key] = now
	s.last = now
	s.checkDoneLocked()
}

func (s *Sink) checkDoneLocked() {
	if !s.closed && s.want > 0 && len(s.arrivals) >= s.want {
		s.closed = true
		close(s.done)
	}
}

// Reset forgets every arrival and makes Wait return once want distinct
// (path, webhook-id) pairs have arrived.
func (s *Sink) Reset(want int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.arrivals = make(map[string]time.Time, want)
	s.dups, s.last, s.want, s.closed = 0, time.Time{}, want, false
	s.done = make(chan struct{})
	s.hits.Store(0)
}

// SetWant lowers (or raises) the count Wait waits for, e.g. when some posts
// were refused and will never be delivered.
func (s *Sink) SetWant(want int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.want = want
	s.checkDoneLocked()
}

// SetStatus changes the status code the sink answers with.
func (s *Sink) SetStatus(status int) { s.status.Store(int32(status)) }

// Wait blocks until the wanted arrivals are in or ctx ends.
func (s *Sink) Wait(ctx context.Context) error {
	s.mu.Lock()
	done := s.done
	s.mu.Unlock()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		got, _, _, _ := s.Stats()
		s.mu.Lock()
		want := s.want
		s.mu.Unlock()
		return fmt.Errorf("sink got %d of %d deliveries: %w", got, want, ctx.Err())
	}
}

// Arrival is when the webhook with id first reached path.
func (s *Sink) Arrival(path, id string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.arrivals[path+" "+id]
	return t, ok
}

// Stats returns the distinct arrivals, the duplicates, every request seen
// (whatever the answer) and the time of the last distinct arrival.
func (s *Sink) Stats() (distinct, dups int, hits int64, last time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.arrivals), s.dups, s.hits.Load(), s.last
}

// Close stops the sink.
func (s *Sink) Close() error {
	if s.srv == nil {
		return nil // a recorder
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("sink shutdown: %w", err)
	}
	_ = s.srv.Close()
	return nil
}
