package app

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/sqlite"
)

// fakeRelay records attachments as relay.Hub keeps them.
type fakeRelay struct {
	mu       sync.Mutex
	attached map[string]kinehook.Listener
	resolved []string
}

func (r *fakeRelay) Attach(eid string, l kinehook.Listener) func() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.attached == nil {
		r.attached = map[string]kinehook.Listener{}
	}
	r.attached[eid] = l
	return func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.attached[eid] != l {
			return false
		}
		delete(r.attached, eid)
		return true
	}
}

func (r *fakeRelay) Resolve(eid string, f *kinehook.ListenFrame) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.resolved = append(r.resolved, eid+" "+f.ID)
}

func (r *fakeRelay) Instance() string { return "inst_test" }

func (r *fakeRelay) has(eid string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.attached[eid] != nil
}

type nopListener struct{}

func (nopListener) Send(context.Context, *kinehook.ListenFrame) error { return nil }
func (nopListener) Close(string)                                      {}

// testClock is a settable clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newListenApp is an App with a relay over a real SQLite store, a grace
// of grace and a clock the test moves, and a project.
func newListenApp(t *testing.T, grace time.Duration) (*App, *fakeRelay, *testClock, string) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "kinehook.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	rel := &fakeRelay{}
	clock := &testClock{t: time.Now()}
	a, err := New(Config{Store: st, Dispatcher: &recorder{store: st}, Relay: rel, ListenGrace: grace, Now: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := a.CreateProject(context.Background(), ProjectInput{Name: "listen"})
	if err != nil {
		t.Fatal(err)
	}
	return a, rel, clock, p.ID
}

// TestOpenListenerMakesAndResumes: a connection gets a new cli endpoint
// with a fresh secret; naming it again resumes it (same id and secret, new
// session, the new filter); a gone one is replaced, a webhook refused.
func TestOpenListenerMakesAndResumes(t *testing.T) {
	ctx := context.Background()
	a, _, _, pid := newListenApp(t, time.Minute)
	l, err := a.OpenListener(ctx, pid, ListenInput{EventTypes: []string{"media.*", "media.*"}, Client: "kinehook-cli/1"})
	if err != nil {
		t.Fatal(err)
	}
	st := kinehook.ParseListenerState(l.Endpoint.Config)
	if l.Endpoint.TypeOf() != kinehook.EndpointCLI || !st.Connected || st.Instance != "inst_test" || st.Session != l.Session || l.Resumed ||
		!strings.HasPrefix(l.Secret, kinehook.SecretPrefix) || len(l.Endpoint.EventTypes) != 1 {
		t.Fatalf("new listener %+v state %+v", l.Endpoint, st)
	}
	if h := l.Hello(); h.Type != kinehook.FrameHello || h.Secret != l.Secret || h.EndpointID != l.Endpoint.ID {
		t.Errorf("hello %+v", h)
	}
	again, err := a.OpenListener(ctx, pid, ListenInput{EndpointID: l.Endpoint.ID, EventTypes: []string{"live.*"}})
	if err != nil {
		t.Fatal(err)
	}
	if again.Endpoint.ID != l.Endpoint.ID || again.Secret != l.Secret || !again.Resumed || again.Session == l.Session || again.Endpoint.EventTypes[0] != "live.*" {
		t.Errorf("resume: %+v (secret %q)", again.Endpoint, again.Secret)
	}
	gone, err := a.OpenListener(ctx, pid, ListenInput{EndpointID: "ep_gone"})
	if err != nil || gone.Endpoint.ID == "ep_gone" || gone.Resumed || gone.Secret == l.Secret {
		t.Errorf("a gone endpoint: %+v %v, want a new one", gone, err)
	}
	web, err := a.CreateEndpoint(ctx, pid, EndpointInput{URL: ptr("https://example.com/hook")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.OpenListener(ctx, pid, ListenInput{EndpointID: web.ID}); kinehook.ErrorCode(err) != kinehook.EINVALID {
		t.Errorf("resuming a webhook: %v, want invalid", err)
	}
	if _, err := a.OpenListener(ctx, pid, ListenInput{EventTypes: []string{"nope.*"}}); kinehook.ErrorCode(err) != kinehook.EINVALID {
		t.Errorf("bad filter: %v, want invalid", err)
	}
	if _, err := a.OpenListener(ctx, "prj_none", ListenInput{}); kinehook.ErrorCode(err) != kinehook.ENOTFOUND {
		t.Errorf("unknown project: %v, want not found", err)
	}
}

// TestOpenListenerLimitsAndRelay: at most MaxListeners per project; a
// server without a relay refuses listeners.
func TestOpenListenerLimitsAndRelay(t *testing.T) {
	ctx := context.Background()
	a, _, _, pid := newListenApp(t, time.Minute)
	for range MaxListeners {
		if _, err := a.OpenListener(ctx, pid, ListenInput{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.OpenListener(ctx, pid, ListenInput{}); kinehook.ErrorCode(err) != kinehook.ECONFLICT {
		t.Errorf("listener %d: %v, want conflict", MaxListeners+1, err)
	}
	plain, _ := newTestApp(t)
	p, _, err := plain.CreateProject(ctx, ProjectInput{Name: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plain.OpenListener(ctx, p.ID, ListenInput{}); kinehook.ErrorCode(err) != kinehook.EUNAVAILABLE {
		t.Errorf("without a relay: %v, want unavailable", err)
	}
}

// TestCLIEndpointThroughTheAPI: a cli endpoint cannot be created, nor its
// type, url or config changed; its other settings can, and it can be
// deleted.
func TestCLIEndpointThroughTheAPI(t *testing.T) {
	ctx := context.Background()
	a, _, _, pid := newListenApp(t, time.Minute)
	if _, err := a.CreateEndpoint(ctx, pid, EndpointInput{Type: ptr("cli")}); kinehook.ErrorCode(err) != kinehook.EINVALID || !strings.Contains(err.Error(), "kinehook listen --server") {
		t.Errorf("create cli: %v", err)
	}
	l, err := a.OpenListener(ctx, pid, ListenInput{})
	if err != nil {
		t.Fatal(err)
	}
	eid := l.Endpoint.ID
	for name, in := range map[string]EndpointInput{
		"type":   {Type: ptr("webhook")},
		"url":    {URL: ptr("https://example.com/")},
		"config": {Config: ptr(json.RawMessage(`{"connected":false}`))},
	} {
		if _, err := a.PatchEndpoint(ctx, pid, eid, in); kinehook.ErrorCode(err) != kinehook.EINVALID {
			t.Errorf("patch %s: %v, want invalid", name, err)
		}
	}
	e, err := a.PatchEndpoint(ctx, pid, eid, EndpointInput{Description: ptr("mine"), RateLimit: ptr(5.0)})
	if err != nil || e.Description != "mine" || e.TypeOf() != kinehook.EndpointCLI || !kinehook.ParseListenerState(e.Config).Connected {
		t.Errorf("patch description: %+v %v", e, err)
	}
	if s := a.DestinationSummary(e); s != "kinehook listen (connected)" {
		t.Errorf("summary %q", s)
	}
	if err := a.DeleteEndpoint(ctx, pid, eid); err != nil {
		t.Errorf("delete: %v", err)
	}
}

// TestServeListenerLifecycle: while served the endpoint is attached and
// seen at each heartbeat; when the connection ends it is marked
// disconnected; it ends early when the endpoint is deleted or resumed by
// another connection.
func TestServeListenerLifecycle(t *testing.T) {
	ctx := context.Background()
	a, rel, clock, pid := newListenApp(t, 300*time.Millisecond) // heartbeat every 100ms
	l, err := a.OpenListener(ctx, pid, ListenInput{})
	if err != nil {
		t.Fatal(err)
	}
	eid := l.Endpoint.ID
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.ServeListener(sctx, l, nopListener{}) }()
	first := kinehook.ParseListenerState(l.Endpoint.Config).SeenAt
	clock.add(time.Second)
	waitApp(t, "a heartbeat", func() bool {
		e, err := a.GetEndpoint(ctx, pid, eid)
		return err == nil && kinehook.ParseListenerState(e.Config).SeenAt.After(first)
	})
	if !rel.has(eid) {
		t.Error("not attached while served")
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("ServeListener: %v", err)
	}
	e, err := a.GetEndpoint(ctx, pid, eid)
	if err != nil {
		t.Fatal(err)
	}
	if st := kinehook.ParseListenerState(e.Config); st.Connected || rel.has(eid) {
		t.Errorf("after the connection ended: %+v attached %v", st, rel.has(eid))
	}

	// Resumed by another connection: the first one ends.
	l1, err := a.OpenListener(ctx, pid, ListenInput{EndpointID: eid})
	if err != nil {
		t.Fatal(err)
	}
	go func() { done <- a.ServeListener(ctx, l1, nopListener{}) }()
	if _, err := a.OpenListener(ctx, pid, ListenInput{EndpointID: eid}); err != nil {
		t.Fatal(err)
	}
	if err := waitErr(t, done); !errors.Is(err, ErrListenerReplaced) {
		t.Errorf("replaced: %v", err)
	}
	// Deleted: it ends with not found.
	l2, err := a.OpenListener(ctx, pid, ListenInput{EndpointID: eid})
	if err != nil {
		t.Fatal(err)
	}
	go func() { done <- a.ServeListener(ctx, l2, nopListener{}) }()
	if err := a.DeleteEndpoint(ctx, pid, eid); err != nil {
		t.Fatal(err)
	}
	if err := waitErr(t, done); kinehook.ErrorCode(err) != kinehook.ENOTFOUND {
		t.Errorf("deleted: %v", err)
	}
}

// TestSweepListeners: a cli endpoint not seen for the grace goes (whether
// its CLI disconnected or its instance stopped heart-beating); a fresh one
// and every other endpoint stay.
func TestSweepListeners(t *testing.T) {
	ctx := context.Background()
	a, _, clock, pid := newListenApp(t, time.Minute)
	old, err := a.OpenListener(ctx, pid, ListenInput{})
	if err != nil {
		t.Fatal(err)
	}
	crashed, err := a.OpenListener(ctx, pid, ListenInput{}) // "connected", no heartbeat since
	if err != nil {
		t.Fatal(err)
	}
	if err := a.AbandonListener(ctx, old); err != nil {
		t.Fatal(err)
	}
	web, err := a.CreateEndpoint(ctx, pid, EndpointInput{URL: ptr("https://example.com/hook")})
	if err != nil {
		t.Fatal(err)
	}
	clock.add(59 * time.Second)
	if n, err := a.SweepListeners(ctx); n != 0 || err != nil {
		t.Fatalf("within the grace: removed %d, %v", n, err)
	}
	fresh, err := a.OpenListener(ctx, pid, ListenInput{})
	if err != nil {
		t.Fatal(err)
	}
	clock.add(2 * time.Second)
	if n, err := a.SweepListeners(ctx); n != 2 || err != nil {
		t.Fatalf("after the grace: removed %d, %v; want 2", n, err)
	}
	for _, id := range []string{old.Endpoint.ID, crashed.Endpoint.ID} {
		if _, err := a.GetEndpoint(ctx, pid, id); kinehook.ErrorCode(err) != kinehook.ENOTFOUND {
			t.Errorf("%s still there: %v", id, err)
		}
	}
	for _, id := range []string{fresh.Endpoint.ID, web.ID} {
		if _, err := a.GetEndpoint(ctx, pid, id); err != nil {
			t.Errorf("%s removed: %v", id, err)
		}
	}
}

func waitApp(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func waitErr(t *testing.T, done chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("ServeListener did not end")
		return nil
	}
}

// helloWatch records, when the hello is sent, whether the relay had the
// listener attached by then.
type helloWatch struct {
	rel      *fakeRelay
	eid      string
	attached chan bool
}

func (h helloWatch) Send(_ context.Context, f *kinehook.ListenFrame) error {
	if f.Type == kinehook.FrameHello {
		h.attached <- h.rel.has(h.eid)
	}
	return nil
}
func (helloWatch) Close(string) {}

// TestServeListenerHelloAfterAttach: the hello goes out only once the
// connection is attached, so a CLI acting on it (a trigger right after
// "ready") finds its deliveries coming, not "listener not connected".
func TestServeListenerHelloAfterAttach(t *testing.T) {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	a, rel, _, pid := newListenApp(t, time.Minute)
	l, err := a.OpenListener(ctx, pid, ListenInput{})
	if err != nil {
		t.Fatal(err)
	}
	w := helloWatch{rel: rel, eid: l.Endpoint.ID, attached: make(chan bool, 1)}
	done := make(chan error, 1)
	go func() { done <- a.ServeListener(ctx, l, w) }()
	select {
	case ok := <-w.attached:
		if !ok {
			t.Fatal("the hello was sent before the listener was attached")
		}
	case err := <-done:
		t.Fatalf("ServeListener ended without a hello: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no hello within 10 s")
	}
	stop()
	if err := waitErr(t, done); err != nil {
		t.Fatal(err)
	}
}

type deadListener struct{}

func (deadListener) Send(context.Context, *kinehook.ListenFrame) error {
	return errors.New("connection reset")
}
func (deadListener) Close(string) {}

// TestServeListenerHelloFails: a connection that cannot take its hello is
// let go at once, its endpoint marked disconnected (the grace starts).
func TestServeListenerHelloFails(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // bounds a ServeListener that ignores the failure
	defer cancel()
	a, rel, _, pid := newListenApp(t, time.Minute)
	l, err := a.OpenListener(ctx, pid, ListenInput{})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.ServeListener(ctx, l, deadListener{}); err == nil || !strings.Contains(err.Error(), "send hello: connection reset") {
		t.Fatalf("ServeListener = %v, want the hello's error", err)
	}
	e, err := a.GetEndpoint(ctx, pid, l.Endpoint.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st := kinehook.ParseListenerState(e.Config); st.Connected || rel.has(l.Endpoint.ID) {
		t.Errorf("after a failed hello: %+v, attached %v", st, rel.has(l.Endpoint.ID))
	}
}
