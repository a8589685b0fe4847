package delivery

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
)

// fakeClient is what the test pool holds.
type fakeClient struct {
	key    string
	closed atomic.Bool
	dead   atomic.Bool
}

// testPool is a pool of fakeClients that counts opens and closes.
type testPool struct {
	*Pool[string, *fakeClient]
	mu      sync.Mutex
	opened  map[string]int
	closed  chan *fakeClient
	failing map[string]bool
	gate    chan struct{} // when set, Open waits for it
}

func newTestPool(t *testing.T, max int, idle time.Duration) *testPool {
	tp := &testPool{opened: map[string]int{}, closed: make(chan *fakeClient, 100), failing: map[string]bool{}}
	tp.Pool = NewPool(PoolOptions[string, *fakeClient]{
		Open: func(k string) (*fakeClient, error) {
			tp.mu.Lock()
			tp.opened[k]++
			fail, gate := tp.failing[k], tp.gate
			tp.mu.Unlock()
			if gate != nil {
				<-gate
			}
			if fail {
				return nil, errors.New("refused: " + k)
			}
			return &fakeClient{key: k}, nil
		},
		Close:       func(c *fakeClient) { c.closed.Store(true); tp.closed <- c },
		Dead:        func(c *fakeClient) bool { return c.dead.Load() },
		Max:         max,
		IdleTimeout: idle,
		FullError:   "test: %d clients in use",
	})
	t.Cleanup(tp.Close)
	return tp
}

func (tp *testPool) opens(k string) int {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return tp.opened[k]
}

// waitClosed waits for the pool to close a client of key k.
func (tp *testPool) waitClosed(t *testing.T, k string) {
	t.Helper()
	for {
		select {
		case c := <-tp.closed:
			if c.key == k {
				return
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("client %s never closed", k)
		}
	}
}

func mustAcquire(t *testing.T, p *testPool, k, ep string) *PoolEntry[string, *fakeClient] {
	t.Helper()
	e, err := p.Acquire(context.Background(), k, ep)
	if err != nil {
		t.Fatalf("Acquire(%s, %s): %v", k, ep, err)
	}
	return e
}

// TestPoolSharesAndForgets: one client per key, shared by endpoints; it is
// closed once no endpoint uses it.
func TestPoolSharesAndForgets(t *testing.T) {
	p := newTestPool(t, 10, time.Hour)
	a := mustAcquire(t, p, "k", "ep_a")
	b := mustAcquire(t, p, "k", "ep_b")
	if a.Value() != b.Value() || p.opens("k") != 1 || p.Len() != 1 {
		t.Fatalf("two endpoints of one key: same client %v, opens %d, len %d", a.Value() == b.Value(), p.opens("k"), p.Len())
	}
	a.Release()
	b.Release()
	p.Forget("ep_a")
	if p.Len() != 1 {
		t.Fatal("forgetting one of two users dropped the client")
	}
	p.Forget("ep_b")
	if p.Len() != 0 {
		t.Fatal("a client without users stayed")
	}
	p.waitClosed(t, "k")
}

// TestPoolBound: at the bound the least recently used idle client goes;
// with none idle the attempt is refused.
func TestPoolBound(t *testing.T) {
	p := newTestPool(t, 2, time.Hour)
	a := mustAcquire(t, p, "a", "ep")
	a.Release()
	time.Sleep(2 * time.Millisecond)
	b := mustAcquire(t, p, "b", "ep")
	c := mustAcquire(t, p, "c", "ep") // a is the LRU idle one
	p.waitClosed(t, "a")
	if p.Len() != 2 {
		t.Fatalf("len %d at the bound of 2", p.Len())
	}
	if _, err := p.Acquire(context.Background(), "d", "ep"); err == nil || !strings.Contains(err.Error(), "test: 2 clients in use") {
		t.Fatalf("every client busy: %v, want the bound's refusal", err)
	}
	b.Release()
	c.Release()
}

// TestPoolFailedOpenAndDead: a failed setup is every waiter's answer and
// the next attempt opens again; a dead client is replaced.
func TestPoolFailedOpenAndDead(t *testing.T) {
	p := newTestPool(t, 10, time.Hour)
	p.failing["k"] = true
	if _, err := p.Acquire(context.Background(), "k", "ep"); err == nil || !strings.Contains(err.Error(), "refused: k") {
		t.Fatalf("failed open: %v", err)
	}
	p.mu.Lock()
	p.failing["k"] = false
	p.mu.Unlock()
	e := mustAcquire(t, p, "k", "ep")
	if p.opens("k") != 2 {
		t.Fatalf("opens %d, want a second setup after the failure", p.opens("k"))
	}
	first := e.Value()
	first.dead.Store(true)
	e2 := mustAcquire(t, p, "k", "ep")
	if e2.Value() == first {
		t.Fatal("a dead client was handed out again")
	}
	e.Release() // the dead one's last attempt ends: it is closed
	p.waitClosed(t, "k")
	if e2.Value().closed.Load() {
		t.Fatal("the new client was closed")
	}
	e2.Release()
}

// TestPoolSetupOutlivesAttempt: an attempt whose deadline ends during the
// setup fails, the setup goes on and the next attempt uses it.
func TestPoolSetupOutlivesAttempt(t *testing.T) {
	p := newTestPool(t, 10, time.Hour)
	p.gate = make(chan struct{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := p.Acquire(ctx, "k", "ep"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("attempt during a slow setup: %v", err)
	}
	close(p.gate)
	e := mustAcquire(t, p, "k", "ep")
	if p.opens("k") != 1 {
		t.Fatalf("opens %d, want the first setup reused", p.opens("k"))
	}
	e.Release()
}

// TestPoolIdleAndClose: an idle client is closed after IdleTimeout; Close
// closes the rest and refuses later attempts.
func TestPoolIdleAndClose(t *testing.T) {
	p := newTestPool(t, 10, 30*time.Millisecond)
	mustAcquire(t, p, "idle", "ep").Release()
	p.waitClosed(t, "idle")
	busy := mustAcquire(t, p, "busy", "ep")
	p.Close()
	if !busy.Value().closed.Load() {
		t.Fatal("Close returned before closing the client")
	}
	if _, err := p.Acquire(context.Background(), "x", "ep"); !errors.Is(err, ErrPoolClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

// TestEndpointCache: the parse runs again only for a new endpoint value.
func TestEndpointCache(t *testing.T) {
	var c EndpointCache[string]
	n := 0
	parse := func(ep *kinehook.Endpoint) (string, error) { n++; return ep.URL, nil }
	ep := &kinehook.Endpoint{ID: "ep_1", URL: "one"}
	for range 3 {
		if v, _ := c.Get(ep, parse); v != "one" {
			t.Fatalf("got %q", v)
		}
	}
	changed := &kinehook.Endpoint{ID: "ep_1", URL: "two"}
	if v, _ := c.Get(changed, parse); v != "two" || n != 2 {
		t.Fatalf("changed endpoint: %q after %d parses, want two after 2", v, n)
	}
	c.Forget("ep_1")
	c.Get(changed, parse)
	if n != 3 {
		t.Fatalf("%d parses after Forget, want 3", n)
	}
}
