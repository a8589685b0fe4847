package delivery

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/sqlite"
)

// fakeClock is a Clock that moves only when the test says so. Due timers run
// synchronously inside Advance.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c       *fakeClock
	at      time.Time
	f       func()
	stopped bool
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Now().UTC().Truncate(time.Second)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now.Add(d), f: f}
	if d <= 0 {
		go f()
		t.stopped = true
		return t
	}
	c.timers = append(c.timers, t)
	return t
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.stopped
	t.stopped = true
	return was
}

// Advance moves time forward by d, running every timer that falls due, in
// order of due time.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		var next *fakeTimer
		idx := -1
		for i, t := range c.timers {
			if t.stopped {
				continue
			}
			if !t.at.After(end) && (next == nil || t.at.Before(next.at)) {
				next, idx = t, i
			}
		}
		if next == nil {
			c.now = end
			live := c.timers[:0]
			for _, t := range c.timers {
				if !t.stopped {
					live = append(live, t)
				}
			}
			c.timers = live
			c.mu.Unlock()
			return
		}
		c.timers = append(c.timers[:idx], c.timers[idx+1:]...)
		next.stopped = true
		if next.at.After(c.now) {
			c.now = next.at
		}
		c.mu.Unlock()
		next.f()
	}
}

// AdvanceTo moves the clock to t (no-op when t is past).
func (c *fakeClock) AdvanceTo(t time.Time) {
	if d := t.Sub(c.Now()); d > 0 {
		c.Advance(d)
	}
}

// sinkReq is one request a sink received.
type sinkReq struct {
	body     []byte
	header   http.Header
	id       string
	resource string
	url      string
	at       time.Time
}

// sink is a loopback webhook receiver whose answers the test scripts.
type sink struct {
	srv     *httptest.Server
	ch      chan sinkReq
	mu      sync.Mutex
	reqs    []sinkReq
	handle  func(w http.ResponseWriter, r sinkReq)
	active  atomic.Int32
	maxConc atomic.Int32
}

func newSink(t testing.TB) *sink {
	s := &sink{ch: make(chan sinkReq, 10000)}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := s.active.Add(1)
		defer s.active.Add(-1)
		for {
			m := s.maxConc.Load()
			if n <= m || s.maxConc.CompareAndSwap(m, n) {
				break
			}
		}
		body, _ := io.ReadAll(r.Body)
		var ev struct {
			Data struct {
				ID string `json:"id"`
			} `json:"data"`
		}
		_ = json.Unmarshal(body, &ev)
		req := sinkReq{body: body, header: r.Header.Clone(), id: r.Header.Get(kinehook.HeaderID), resource: ev.Data.ID, url: r.URL.Path, at: time.Now()}
		s.mu.Lock()
		s.reqs = append(s.reqs, req)
		h := s.handle
		s.mu.Unlock()
		select {
		case s.ch <- req:
		default:
		}
		if h != nil {
			h(w, req)
		}
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *sink) setHandler(h func(w http.ResponseWriter, r sinkReq)) {
	s.mu.Lock()
	s.handle = h
	s.mu.Unlock()
}

func (s *sink) status(code int) {
	s.setHandler(func(w http.ResponseWriter, _ sinkReq) { w.WriteHeader(code) })
}

// next waits for the next request.
func (s *sink) next(t testing.TB) sinkReq {
	t.Helper()
	select {
	case r := <-s.ch:
		return r
	case <-time.After(waitLimit):
		t.Fatalf("sink %s: no request within %s", s.srv.URL, waitLimit)
		return sinkReq{}
	}
}

// take waits for n requests.
func (s *sink) take(t testing.TB, n int) []sinkReq {
	t.Helper()
	out := make([]sinkReq, 0, n)
	for range n {
		out = append(out, s.next(t))
	}
	return out
}

// none asserts that no request arrives within d.
func (s *sink) none(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case r := <-s.ch:
		t.Fatalf("sink got an unexpected request for %s (resource %q)", r.id, r.resource)
	case <-time.After(d):
	}
}

// waitLimit bounds every wait of these tests: generous, since a wait ends
// as soon as its condition holds, and under -race on a loaded 2-core
// machine a step can take seconds.
const waitLimit = 20 * time.Second

// recObserver records what tests assert on.
type recObserver struct {
	NopObserver
	mu       sync.Mutex
	breakers []BreakerState
	ops      []OperationalEvent
	outcomes []Outcome
	deleted  []string
}

func (o *recObserver) EndpointDeleted(id string) {
	o.mu.Lock()
	o.deleted = append(o.deleted, id)
	o.mu.Unlock()
}

func (o *recObserver) BreakerChanged(_ string, s BreakerState) {
	o.mu.Lock()
	o.breakers = append(o.breakers, s)
	o.mu.Unlock()
}

func (o *recObserver) OperationalEvent(ev OperationalEvent) {
	o.mu.Lock()
	o.ops = append(o.ops, ev)
	o.mu.Unlock()
}

func (o *recObserver) AttemptFinished(_ string, out Outcome, _ time.Duration) {
	o.mu.Lock()
	o.outcomes = append(o.outcomes, out)
	o.mu.Unlock()
}

func (o *recObserver) snapshot() ([]BreakerState, []OperationalEvent) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]BreakerState(nil), o.breakers...), append([]OperationalEvent(nil), o.ops...)
}

// harness is a real SQLite store in a temp dir, a project, a fake clock and
// an engine.
type harness struct {
	t     testing.TB
	path  string
	store kinehook.Store
	clock *fakeClock
	obs   *recObserver
	eng   *Engine
	proj  *kinehook.Project
	cfg   func(*Config)
	n     atomic.Int64
}

func openStore(t testing.TB, path string) kinehook.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path, sqlite.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("open sqlite store: %v", err)
	}
	return s
}

func newHarness(t testing.TB, cfg func(*Config)) *harness {
	t.Helper()
	h := &harness{t: t, path: filepath.Join(t.TempDir(), "kinehook.db"), clock: newFakeClock(), obs: &recObserver{}, cfg: cfg}
	h.store = openStore(t, h.path)
	h.proj = &kinehook.Project{ID: kinehook.NewID(kinehook.PrefixProject), Name: "test", CreatedAt: time.Now().UTC()}
	if err := h.store.CreateProject(t.Context(), h.proj, kinehook.HashKey("khp_"+h.proj.ID)); err != nil {
		t.Fatalf("create project: %v", err)
	}
	h.start()
	t.Cleanup(func() { h.stop() })
	return h
}

func (h *harness) start() {
	h.t.Helper()
	c := Config{
		Store:            h.store,
		Transports:       httpTransports(0),
		Clock:            h.clock,
		Observer:         h.obs,
		RetrySchedule:    []time.Duration{time.Minute, 2 * time.Minute, 3 * time.Minute},
		BreakerThreshold: -1,
	}
	if h.cfg != nil {
		h.cfg(&c)
	}
	eng, err := New(c)
	if err != nil {
		h.t.Fatalf("new engine: %v", err)
	}
	if err := eng.Start(context.Background()); err != nil {
		h.t.Fatalf("start engine: %v", err)
	}
	select {
	case <-eng.Recovered():
	case <-time.After(waitLimit):
		h.t.Fatalf("engine did not recover within %s", waitLimit)
	}
	h.eng = eng
}

func (h *harness) stop() {
	if h.eng != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = h.eng.Shutdown(ctx)
		cancel()
		h.eng = nil
	}
	if h.store != nil {
		_ = h.store.Close()
		h.store = nil
	}
}

// restart shuts the engine and store down and opens both again.
func (h *harness) restart() {
	h.t.Helper()
	h.stop()
	h.store = openStore(h.t, h.path)
	h.start()
}

var testSecret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func (h *harness) endpoint(url string, mut func(*kinehook.Endpoint)) *kinehook.Endpoint {
	h.t.Helper()
	now := time.Now().UTC()
	ep := &kinehook.Endpoint{
		ID: kinehook.NewID(kinehook.PrefixEndpoint), ProjectID: h.proj.ID, URL: url,
		Secrets: []kinehook.EndpointSecret{{Value: testSecret}}, Scheme: kinehook.SchemeV1,
		CreatedAt: now, UpdatedAt: now,
	}
	if mut != nil {
		mut(ep)
	}
	if err := h.store.CreateEndpoint(h.t.Context(), ep); err != nil {
		h.t.Fatalf("create endpoint: %v", err)
	}
	h.eng.EndpointChanged(h.t.Context(), ep.ProjectID, ep.ID)
	return ep
}

// updateEndpoint changes a stored endpoint and tells the engine.
func (h *harness) updateEndpoint(id string, mut func(*kinehook.Endpoint)) {
	h.t.Helper()
	ep, err := h.store.GetEndpoint(h.t.Context(), h.proj.ID, id)
	if err != nil {
		h.t.Fatalf("get endpoint: %v", err)
	}
	mut(ep)
	if err := h.store.UpdateEndpoint(h.t.Context(), ep); err != nil {
		h.t.Fatalf("update endpoint: %v", err)
	}
	h.eng.EndpointChanged(h.t.Context(), ep.ProjectID, ep.ID)
}

func (h *harness) event(resource string) *kinehook.Event {
	n := h.n.Add(1)
	return &kinehook.Event{
		ID: kinehook.NewID(kinehook.PrefixEvent), ProjectID: h.proj.ID, Type: kinehook.EventMediaUpdateStatus,
		Payload:     []byte(fmt.Sprintf(`{"event":"media.update.status","data":{"id":%q,"status":"done","title":"n%d"}}`, resource, n)),
		ResourceKey: resource, CreatedAt: time.Now().UTC(),
	}
}

func (h *harness) publish(resource string) kinehook.IngestResult {
	h.t.Helper()
	res, err := h.eng.Publish(h.t.Context(), h.event(resource))
	if err != nil {
		h.t.Fatalf("publish: %v", err)
	}
	return res
}

// delivery reads a delivery from the store.
func (h *harness) delivery(id string) *kinehook.Delivery {
	h.t.Helper()
	d, err := h.store.GetDelivery(h.t.Context(), h.proj.ID, id)
	if err != nil {
		h.t.Fatalf("get delivery: %v", err)
	}
	return d
}

// waitFor polls the store until the delivery satisfies ok (results are
// written in the background).
func (h *harness) waitFor(id string, what string, ok func(*kinehook.Delivery) bool) *kinehook.Delivery {
	h.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		d := h.delivery(id)
		if ok(d) {
			return d
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("delivery %s: %s not reached; now %+v", id, what, d)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (h *harness) waitStatus(id string, st kinehook.DeliveryStatus, attempts int) *kinehook.Delivery {
	h.t.Helper()
	return h.waitFor(id, fmt.Sprintf("status %s after %d attempts", st, attempts), func(d *kinehook.Delivery) bool {
		return d.Status == st && d.Attempts == attempts
	})
}

// waitEndpoint polls the stored endpoint until ok (health updates are
// written in the background).
func (h *harness) waitEndpoint(id, what string, ok func(*kinehook.Endpoint) bool) *kinehook.Endpoint {
	h.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		e, err := h.store.GetEndpoint(h.t.Context(), h.proj.ID, id)
		if err != nil {
			h.t.Fatalf("get endpoint: %v", err)
		}
		if ok(e) {
			return e
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("endpoint %s: %s not reached; now %+v", id, what, e)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (h *harness) attempts(id string) []*kinehook.Attempt {
	h.t.Helper()
	a, err := h.store.ListAttempts(h.t.Context(), h.proj.ID, id)
	if err != nil {
		h.t.Fatalf("list attempts: %v", err)
	}
	return a
}

// idle waits until the engine has nothing in flight and no result pending.
func (h *harness) idle() {
	h.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		busy := false
		for p := range h.eng.partBusy {
			if h.eng.partBusy[p].Load() != 0 {
				busy = true
				break
			}
		}
		if !busy {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("engine still busy after %s", waitLimit)
		}
		time.Sleep(time.Millisecond)
	}
}
