package simulator

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"
)

// Sender posts one webhook body to the server. It returns a *RetryableError
// when the same body should be posted again later (the server throttled or was
// briefly unavailable); any other error counts the event as failed, and its
// resource's lifecycle is abandoned there.
type Sender func(ctx context.Context, body []byte, idempotencyKey string) error

// RetryableError asks Run to post the same event again after Wait.
type RetryableError struct {
	Wait time.Duration
	Err  error
}

func (e *RetryableError) Error() string { return fmt.Sprintf("retryable: %v", e.Err) }
func (e *RetryableError) Unwrap() error { return e.Err }

// RunConfig paces a run.
type RunConfig struct {
	// Rate is the events per second posted in total (0 = as fast as the
	// server answers).
	Rate float64
	// Concurrency is how many posts may be in flight (default 4).
	Concurrency int
	// Active is how many resources are interleaved at once (default
	// 4 x Concurrency, at least Concurrency).
	Active int
	// MaxRetries bounds the retries of one event after RetryableErrors
	// (default 8).
	MaxRetries int
	// RunID prefixes the Idempotency-Key of every event, so that a post
	// repeated after a lost answer creates nothing new.
	RunID string
	// OnError, when set, is called with each event that finally failed (its
	// lifecycle is abandoned); calls are serialized.
	OnError func(body []byte, err error)
}

// Stats are a run's counters, safe to read while it runs.
type Stats struct {
	Sent      atomic.Int64 // events the server accepted
	Errors    atomic.Int64 // events that finally failed
	Throttled atomic.Int64 // retries after a RetryableError
	Started   atomic.Int64 // lifecycles begun
	Completed atomic.Int64 // lifecycles whose every event was accepted
	// Abandoned counts lifecycles stopped at an event that finally failed:
	// their later events were not posted, and they are not Completed.
	Abandoned atomic.Int64

	mu        sync.Mutex
	outcomes  map[string]int
	abandoned map[Kind]int
	lastErr   error
}

// Outcomes returns how many completed lifecycles ended each way ("done",
// "error", "aborted", "finished", "cancelled"; "suspended" counts media that
// passed through suspended).
func (s *Stats) Outcomes() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return copyCounts(s.outcomes)
}

// AbandonedByKind returns how many abandoned lifecycles were of each kind.
func (s *Stats) AbandonedByKind() map[Kind]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return copyCounts(s.abandoned)
}

// copyCounts copies m, never returning nil (the summaries print {} for none).
func copyCounts[K comparable](m map[K]int) map[K]int {
	out := make(map[K]int, len(m))
	maps.Copy(out, m)
	return out
}

// LastError returns the most recent final failure, or nil.
func (s *Stats) LastError() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastErr
}

func (s *Stats) complete(st *Stream) {
	s.Completed.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.outcomes == nil {
		s.outcomes = map[string]int{}
	}
	s.outcomes[st.Outcome]++
	if st.Suspended {
		s.outcomes["suspended"]++
	}
}

// fail records an event of st that finally failed with err: the event is an
// error and st's lifecycle is abandoned.
func (s *Stats) fail(st *Stream, err error) {
	s.Errors.Add(1)
	s.Abandoned.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.abandoned == nil {
		s.abandoned = map[Kind]int{}
	}
	s.abandoned[st.Kind]++
	s.lastErr = err
}

// pacer spaces events evenly at a rate.
type pacer struct {
	mu       sync.Mutex
	interval time.Duration
	next     time.Time
}

// wait blocks until the caller's slot; false when ctx ended first.
func (p *pacer) wait(ctx context.Context) bool {
	if p.interval <= 0 {
		return ctx.Err() == nil
	}
	p.mu.Lock()
	now := time.Now()
	slot := p.next
	if slot.Before(now) {
		// Do not bank more than a moment of unused slots.
		slot = now
	}
	p.next = slot.Add(p.interval)
	p.mu.Unlock()
	d := time.Until(slot)
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// postGrace bounds how long a post in flight may finish after Run's context ends.
const postGrace = 5 * time.Second

// postResult is how a post ended.
type postResult int

const (
	postSent   postResult = iota // the server accepted the event
	postFailed                   // refused, or not sent after the retries: the lifecycle is abandoned
	postCut                      // ctx ended before the event was accepted or refused
)

// active is a stream being posted: at most one of its events is in flight.
type active struct {
	s    *Stream
	next int
}

// Run posts the generator's streams through send until the generator is
// done or ctx ends (a duration is a context deadline). The events of one
// resource go strictly in lifecycle order, each after the previous one was
// accepted; up to rc.Active resources are interleaved. When an event finally
// fails (the sender refused it, or it was still throttled after
// rc.MaxRetries retries), its resource's later events are not posted: the
// lifecycle is counted as abandoned, never as completed, and the next stream
// takes its place. It returns nil when every stream was posted or abandoned,
// or ctx ended; failed events are counted in stats, not returned.
func Run(ctx context.Context, gen *Generator, send Sender, rc RunConfig, stats *Stats) error {
	if gen == nil || send == nil || stats == nil {
		return errors.New("simulator: Run needs a generator, a sender and stats")
	}
	if rc.Concurrency <= 0 {
		rc.Concurrency = 4
	}
	if rc.Active <= 0 {
		rc.Active = 4 * rc.Concurrency
	}
	rc.Active = max(rc.Active, rc.Concurrency)
	if rc.MaxRetries <= 0 {
		rc.MaxRetries = 8
	}
	p := &pacer{}
	if rc.Rate > 0 {
		p.interval = time.Duration(float64(time.Second) / rc.Rate)
	}

	var (
		genMu   sync.Mutex
		onErrMu sync.Mutex
		seq     int64
		inPlay  atomic.Int64
		allDone = make(chan struct{})
		ready   = make(chan *active, rc.Active)
	)
	nextStream := func() *active {
		genMu.Lock()
		defer genMu.Unlock()
		s, ok := gen.Next()
		if !ok {
			return nil
		}
		stats.Started.Add(1)
		return &active{s: s}
	}
	for range rc.Active {
		a := nextStream()
		if a == nil {
			break
		}
		inPlay.Add(1)
		ready <- a
	}
	if inPlay.Load() == 0 {
		return nil
	}

	post := func(a *active) postResult {
		body := a.s.Bodies[a.next]
		key := fmt.Sprintf("%s-%d", rc.RunID, atomic.AddInt64(&seq, 1))
		if rc.RunID == "" {
			key = ""
		}
		for try := 0; ; try++ {
			// A post in flight when ctx ends may still be accepted: let it
			// finish (briefly) so that what the server holds is counted.
			sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
			stop := context.AfterFunc(ctx, func() { time.AfterFunc(postGrace, cancel) })
			err := send(sctx, body, key)
			stop()
			cancel()
			if err == nil {
				stats.Sent.Add(1)
				return postSent
			}
			if ctx.Err() != nil {
				// Stopping (the post may have been cancelled after the
				// grace, or have failed because the run is ending): the
				// lifecycle is cut short, not abandoned.
				return postCut
			}
			var re *RetryableError
			if errors.As(err, &re) && try < rc.MaxRetries {
				stats.Throttled.Add(1)
				wait := re.Wait
				if wait <= 0 {
					wait = time.Duration(50<<min(try, 6)) * time.Millisecond
				}
				t := time.NewTimer(wait)
				select {
				case <-t.C:
					continue
				case <-ctx.Done():
					t.Stop()
					return postCut
				}
			}
			stats.fail(a.s, err)
			if rc.OnError != nil {
				onErrMu.Lock()
				rc.OnError(body, err)
				onErrMu.Unlock()
			}
			return postFailed
		}
	}

	var wg sync.WaitGroup
	for range rc.Concurrency {
		wg.Go(func() {
			for {
				var a *active
				select {
				case <-ctx.Done():
					return
				case <-allDone:
					return
				case a = <-ready:
				}
				if !p.wait(ctx) {
					return
				}
				switch post(a) {
				case postCut:
					return
				case postSent:
					a.next++
					if a.next == len(a.s.Bodies) {
						stats.complete(a.s)
					}
				case postFailed:
					// Its later events must not overtake the refused one:
					// the lifecycle stops here (stats.fail counted it).
					a.next = len(a.s.Bodies)
				}
				if ctx.Err() != nil {
					return
				}
				if a.next < len(a.s.Bodies) {
					ready <- a
					continue
				}
				if n := nextStream(); n != nil {
					ready <- n
					continue
				}
				if inPlay.Add(-1) == 0 {
					close(allDone)
				}
			}
		})
	}
	wg.Wait()
	return nil
}
