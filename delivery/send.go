package delivery

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/kinehook/kinehook"
)

func (e *Engine) releasePayloads(pls []*payload) {
	for _, p := range pls {
		e.releasePayload(p)
	}
}

func (e *Engine) releasePayload(p *payload) {
	if p != nil && p.refs.Add(-1) == 0 {
		e.payloadBytes.Add(-int64(len(p.b)))
	}
}

// requeue puts back a job that was not attempted (payload unreadable,
// shutdown), due after delay; nothing is recorded.
func (e *Engine) requeue(es *epState, j job, delay time.Duration) {
	defer e.endSend()
	e.releasePayload(j.pl)
	it, q := j.it, j.it.q
	jobs := e.pumpWith(es, func() {
		es.inFlight--
		if j.probe {
			es.probeInFlight = false
		}
		q.busy = false
		now := e.clock.Now().UnixNano()
		if delay > 0 {
			it.nextAt = now + int64(delay)
		}
		if !es.deleted {
			es.place(q, now)
		}
	})
	e.partBusy[q.partition].Add(-1) // after the timer is armed, as in afterRecord
	e.releaseGlobal()
	e.dispatch(es, jobs)
}

func (e *Engine) abandon(es *epState, j job) { e.requeue(es, j, 0) }

// job is one attempt about to be made.
type job struct {
	it    *item
	ep    *kinehook.Endpoint
	probe bool
	body  []byte
	pl    *payload
}

// withEndpoint is the one way to make a change that may let one of the
// endpoint's deliveries go (only removals skip it): it runs f (nil for none)
// with es.mu held, takes what can be sent now (pumpLocked), unlocks
// and starts it (dispatch). f must not block: every attempt of the endpoint
// waits for es.mu. f does not escape, so the closure costs no allocation.
func (e *Engine) withEndpoint(es *epState, f func()) {
	e.dispatch(es, e.pumpWith(es, f))
}

// pumpWith is withEndpoint without the dispatch, for the callers that must
// free their global slot (finish, requeue) between unlocking and starting
// the jobs.
func (e *Engine) pumpWith(es *epState, f func()) []job {
	es.mu.Lock()
	if f != nil {
		f()
	}
	jobs := e.pumpLocked(es)
	es.mu.Unlock()
	return jobs
}

// pumpLocked takes what can be sent now from the endpoint's ready queues,
// within its in-flight bound, rate limit, breaker and the global cap, and
// arms the endpoint's timer for the next moment something may become
// sendable. es.mu must be held; the caller dispatches the jobs unlocked.
func (e *Engine) pumpLocked(es *epState) []job {
	if es.deleted {
		return nil
	}
	now := e.clock.Now().UnixNano()
	es.promoteLocked(now)
	defer func() { e.obs.QueueDepth(es.id, es.queued) }()
	ep := es.ep
	if ep == nil || ep.Disabled || es.disabling || e.stopping.Load() {
		return nil
	}
	wake := int64(0)
	if len(es.waiting) > 0 {
		wake = es.waiting[0].head().nextAt
	}
	limit, probe, ok := e.gateLocked(es, ep, now)
	if !ok {
		return nil
	}
	jobs, wake := e.takeLocked(es, ep, now, limit, probe, wake)
	if wake > 0 {
		e.armLocked(es, wake)
	}
	return jobs
}

// promoteLocked moves the resource queues whose head is due from the waiting
// heap to the ready ring. es.mu must be held.
func (es *epState) promoteLocked(now int64) {
	for len(es.waiting) > 0 && es.waiting[0].head().nextAt <= now {
		q := heap.Pop(&es.waiting).(*resQueue)
		if !q.inReady {
			q.inReady = true
			es.ready.push(q)
		}
	}
}

// takeLocked starts the ready queues' heads in turn while the endpoint's
// in-flight bound (limit), its rate limit and the global cap allow, and a
// probe alone. wake is the earliest time the timer must fire for, moved
// earlier when the rate limit stops the round. es.mu must be held.
func (e *Engine) takeLocked(es *epState, ep *kinehook.Endpoint, now int64, limit int, probe bool, wake int64) ([]job, int64) {
	var jobs []job
	for es.ready.size > 0 && es.inFlight < limit {
		q := es.ready.peek(0)
		if !q.sendableAt(now) {
			es.ready.pop()
			if q.inReady {
				q.inReady = false
				es.place(q, now)
			}
			continue
		}
		if at := es.tokenLocked(ep, now); at != 0 {
			e.notePauseLocked(es, at, now)
			if wake == 0 || at < wake {
				wake = at
			}
			break
		}
		if !e.acquireGlobal(es) {
			break
		}
		if !e.beginSend() {
			e.releaseSlot()
			break
		}
		jobs = append(jobs, e.startLocked(es, q, ep, probe))
		if probe {
			es.probeInFlight = true
			break
		}
	}
	return jobs, wake
}

// sendableAt reports whether q's head may be sent at now: q is still marked
// ready, nothing of it is in flight and its head is due.
func (q *resQueue) sendableAt(now int64) bool {
	return q.inReady && !q.busy && len(q.items) > 0 && q.head().nextAt <= now
}

// startLocked takes q's head as a job: it spends a rate-limit token, marks
// the queue busy and counts the attempt in flight. es.mu must be held.
func (e *Engine) startLocked(es *epState, q *resQueue, ep *kinehook.Endpoint, probe bool) job {
	if ep.RateLimit > 0 {
		es.tokens = max(0, es.tokens-1)
	}
	es.ready.pop()
	q.inReady = false
	q.busy = true
	e.partBusy[q.partition].Add(1)
	es.inFlight++
	it := q.head()
	j := job{it: it, ep: ep, probe: probe}
	if it.payload != nil {
		j.pl, j.body = it.payload, it.payload.b
		it.payload = nil
	}
	return j
}

// armLocked makes sure the endpoint's timer fires no later than at.
func (e *Engine) armLocked(es *epState, at int64) {
	if es.timer != nil && es.timerAt <= at {
		return
	}
	if es.timer != nil {
		es.timer.Stop()
	}
	es.timerAt = at
	d := time.Duration(at - e.clock.Now().UnixNano())
	es.timer = e.clock.AfterFunc(max(d, 0), func() {
		e.withEndpoint(es, func() {
			if es.timerAt == at {
				es.timer, es.timerAt = nil, 0
			}
		})
	})
}

// dispatch starts the jobs: those without a payload in memory get it from
// the store first, in one read together with payloads prefetched for the
// deliveries next in line.
func (e *Engine) dispatch(es *epState, jobs []job) {
	if len(jobs) == 0 {
		return
	}
	var missing []int
	for i := range jobs {
		if jobs[i].body == nil {
			missing = append(missing, i)
			continue
		}
		go e.attempt(es, jobs[i])
	}
	if len(missing) == 0 {
		return
	}
	go func() {
		ids := make([]string, 0, len(missing))
		for _, i := range missing {
			ids = append(ids, jobs[i].it.eventID)
		}
		prefetch := e.prefetchList(es, len(missing))
		for _, it := range prefetch {
			ids = append(ids, it.eventID)
		}
		ctx, cancel := context.WithTimeout(e.sendCtx, 30*time.Second)
		bodies, err := e.store.EventPayloads(ctx, ids)
		cancel()
		if err != nil {
			e.storeError("delivery: load payloads", err, "n", len(ids))
			for _, i := range missing {
				e.requeue(es, jobs[i], 5*time.Second)
			}
			return
		}
		e.attachPrefetched(es, prefetch, bodies)
		for _, i := range missing {
			j := jobs[i]
			b, ok := bodies[j.it.eventID]
			if !ok {
				// The event is gone (retention): nothing can be sent.
				e.finish(es, j, attemptOutcome{id: kinehook.NewID(kinehook.PrefixAttempt),
					Result: Result{Outcome: OutcomeNetworkError, Err: "event payload no longer stored"}, final: true}, e.clock.Now())
				continue
			}
			j.body = b
			go e.attempt(es, j)
		}
	}()
}

// prefetchList picks up to Prefetch queued, due deliveries without a payload
// (within the budget) to load along with a dispatch.
func (e *Engine) prefetchList(es *epState, already int) []*item {
	want := e.cfg.Prefetch - already
	if want <= 0 || e.payloadBytes.Load() >= e.cfg.PayloadBudget {
		return nil
	}
	var out []*item
	es.mu.Lock()
	for i := 0; i < es.ready.size && len(out) < want; i++ {
		q := es.ready.peek(i)
		if q.inReady && !q.busy && len(q.items) > 0 && q.head().payload == nil {
			out = append(out, q.head())
		}
	}
	es.mu.Unlock()
	return out
}

func (e *Engine) attachPrefetched(es *epState, items []*item, bodies map[string][]byte) {
	if len(items) == 0 {
		return
	}
	es.mu.Lock()
	defer es.mu.Unlock()
	for _, it := range items {
		b, ok := bodies[it.eventID]
		if !ok || it.payload != nil || es.byID[it.id] != it || (it.q.busy && it.q.head() == it) {
			continue
		}
		if e.payloadBytes.Load()+int64(len(b)) > e.cfg.PayloadBudget {
			return
		}
		pl := &payload{b: b}
		pl.refs.Store(1)
		e.payloadBytes.Add(int64(len(b)))
		it.payload = pl
	}
}

// attemptOutcome is what one attempt led to.
type attemptOutcome struct {
	id string // the attempt's request id, stored and logged
	Result
	final bool // fail the delivery whatever its attempts
}

// attempt sends one message and hands its outcome to finish.
func (e *Engine) attempt(es *epState, j job) {
	now := e.clock.Now()
	out, ok := e.send(j, now)
	if !ok { // cancelled by Shutdown: hand back, record nothing
		e.abandon(es, j)
		return
	}
	out.id = kinehook.NewID(kinehook.PrefixAttempt)
	e.obs.AttemptFinished(es.id, out.Outcome, out.Duration)
	if e.log.Enabled(context.Background(), slog.LevelDebug) {
		// The attempt's id is stored with it: the attempts API shows it.
		e.log.Debug("delivery attempt", "attempt_id", out.id, "delivery_id", j.it.id,
			"event_id", j.it.eventID, "endpoint_id", es.id, "outcome", string(out.Outcome), "status_code", out.StatusCode,
			"duration_ms", float64(out.Duration.Microseconds())/1000, "error", out.Err)
	}
	e.finish(es, j, out, now)
}

// transport is the one that carries deliveries to ep, by its type; nil
// when this server has none for it.
func (e *Engine) transport(ep *kinehook.Endpoint) Transport {
	if ep.Type == "" {
		return e.webhook
	}
	return e.cfg.Transports[ep.TypeOf()]
}

// send signs the job's message, has the endpoint's transport carry it within
// RequestTimeout and makes its result safe to store; ok is false when
// Shutdown cancelled it.
func (e *Engine) send(j job, now time.Time) (out attemptOutcome, ok bool) {
	ep := j.ep
	sig, err := signFor(ep, j.it.eventID, now, j.body)
	if err != nil {
		out.Outcome, out.Err = OutcomeNetworkError, "cannot sign: "+err.Error()
		return out, true
	}
	tr := e.transport(ep)
	if tr == nil {
		out.Outcome, out.Err = OutcomeNetworkError, fmt.Sprintf("this server has no transport for endpoint type %q", ep.TypeOf())
		return out, true
	}
	m := Message{Endpoint: ep, ID: j.it.eventID, Timestamp: strconv.FormatInt(now.Unix(), 10),
		Signature: sig, Body: j.body, Now: now,
		EventType: eventTypes[j.it.etype], ResourceKey: j.it.q.key, ProjectID: ep.ProjectID, Attempt: int(j.it.attempts) + 1}
	endSpan := e.traceAttempt(j, &m)
	ctx, cancel := context.WithTimeout(e.sendCtx, e.cfg.RequestTimeout)
	out.Result = tr.Send(ctx, m)
	cancel()
	if endSpan != nil {
		endSpan(out.Result)
	}
	if e.sendCtx.Err() != nil {
		return attemptOutcome{}, false
	}
	if out.Outcome == OutcomeTimeout && out.Err == "" {
		out.Err = fmt.Sprintf("timeout: no complete response within %s", e.cfg.RequestTimeout)
	}
	if out.Outcome == OutcomeBackoff {
		out.RetryAfter = BoundRetryAfter(out.RetryAfter)
	}
	out.Err, out.Response = cleanText(out.Err), cleanText(out.Response)
	return out, true
}

// signFor signs with the endpoint's scheme and active secrets.
func signFor(ep *kinehook.Endpoint, id string, now time.Time, body []byte) (string, error) {
	secrets := ep.ActiveSecrets(now)
	if len(secrets) == 0 {
		return "", errors.New("the endpoint has no active signing secret")
	}
	return kinehook.Sign(secrets, id, now, body)
}

// cleanText makes a transport's text safe for any store (valid UTF-8, no
// NUL); valid text comes back as is, without a copy.
func cleanText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "")
	}
	return s
}
