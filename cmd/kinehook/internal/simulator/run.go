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
	rc = rc.withDefaults()
	r := &runner{
		ctx: ctx, gen: gen, send: send, rc: rc, stats: stats, pacer: &pacer{},
		allDone: make(chan struct{}), ready: make(chan *active, rc.Active),
	}
	if rc.Rate > 0 {
		r.pacer.interval = time.Duration(float64(time.Second) / rc.Rate)
	}
	for range rc.Active {
		a := r.nextStream()
		if a == nil {
			break
		}
		r.inPlay.Add(1)
		r.ready <- a
	}
	if r.inPlay.Load() == 0 {
		return nil
	}
	var wg sync.WaitGroup
	for range rc.Concurrency {
		wg.Go(r.work)
	}
	wg.Wait()
	return nil
}

// withDefaults fills in the zero fields of rc.
func (rc RunConfig) withDefaults() RunConfig {
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
	return rc
}

// runner is one Run: the streams in play, handed between its workers
// through ready.
type runner struct {
	ctx   context.Context
	gen   *Generator
	send  Sender
	rc    RunConfig
	stats *Stats
	pacer *pacer

	genMu   sync.Mutex
	onErrMu sync.Mutex
	seq     atomic.Int64
	inPlay  atomic.Int64  // streams started and not yet over
	allDone chan struct{} // closed when inPlay drops to 0
	ready   chan *active  // streams whose next event may be posted
}

// nextStream starts the generator's next stream; nil when it is done.
func (r *runner) nextStream() *active {
	r.genMu.Lock()
	defer r.genMu.Unlock()
	s, ok := r.gen.Next()
	if !ok {
		return nil
	}
	r.stats.Started.Add(1)
	return &active{s: s}
}

// work is one worker: it posts the next event of a ready stream, in turn,
// until every stream is over or the run's context ends.
func (r *runner) work() {
	for {
		var a *active
		select {
		case <-r.ctx.Done():
			return
		case <-r.allDone:
			return
		case a = <-r.ready:
		}
		if !r.pacer.wait(r.ctx) {
			return
		}
		if !r.advance(a) || r.ctx.Err() != nil {
			return
		}
		r.handOn(a)
	}
}

// advance posts a's next event and counts how it went; false when the run
// is being cut short.
func (r *runner) advance(a *active) bool {
	switch r.post(a) {
	case postCut:
		return false
	case postSent:
		a.next++
		if a.next == len(a.s.Bodies) {
			r.stats.complete(a.s)
		}
	case postFailed:
		// Its later events must not overtake the refused one:
		// the lifecycle stops here (stats.fail counted it).
		a.next = len(a.s.Bodies)
	}
	return true
}

// handOn puts a back in play if it has events left, else a new stream in
// its place, else counts it over (closing allDone after the last one).
func (r *runner) handOn(a *active) {
	if a.next < len(a.s.Bodies) {
		r.ready <- a
		return
	}
	if n := r.nextStream(); n != nil {
		r.ready <- n
		return
	}
	if r.inPlay.Add(-1) == 0 {
		close(r.allDone)
	}
}

// post sends a's next event, retrying while the sender says so (up to
// rc.MaxRetries times).
func (r *runner) post(a *active) postResult {
	body := a.s.Bodies[a.next]
	key := fmt.Sprintf("%s-%d", r.rc.RunID, r.seq.Add(1))
	if r.rc.RunID == "" {
		key = ""
	}
	for try := 0; ; try++ {
		err := r.sendOnce(body, key)
		if err == nil {
			r.stats.Sent.Add(1)
			return postSent
		}
		if r.ctx.Err() != nil {
			// Stopping (the post may have been cancelled after the
			// grace, or have failed because the run is ending): the
			// lifecycle is cut short, not abandoned.
			return postCut
		}
		var re *RetryableError
		if errors.As(err, &re) && try < r.rc.MaxRetries {
			r.stats.Throttled.Add(1)
			if !r.backOff(re.Wait, try) {
				return postCut
			}
			continue
		}
		r.stats.fail(a.s, err)
		if r.rc.OnError != nil {
			r.onErrMu.Lock()
			r.rc.OnError(body, err)
			r.onErrMu.Unlock()
		}
		return postFailed
	}
}

// sendOnce makes one post. A post in flight when the run's context ends may
// still be accepted: it may finish (within postGrace) so that what the
// server holds is counted.
func (r *runner) sendOnce(body []byte, key string) error {
	sctx, cancel := context.WithCancel(context.WithoutCancel(r.ctx))
	stop := context.AfterFunc(r.ctx, func() { time.AfterFunc(postGrace, cancel) })
	err := r.send(sctx, body, key)
	stop()
	cancel()
	return err
}

// backOff waits before retry try+1: wait, or else an exponential delay;
// false when the run's context ended first.
func (r *runner) backOff(wait time.Duration, try int) bool {
	if wait <= 0 {
		wait = time.Duration(50<<min(try, 6)) * time.Millisecond
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.ctx.Done():
		return false
	}
}
