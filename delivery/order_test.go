package delivery

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
)

// TestOrderingRandomOutcomes drives many events of a few resources through
// random answers (2xx, 500, 503 with Retry-After, connection-level failure
// is covered elsewhere) and checks the ordering contract on every request:
// a resource's event is sent only when every earlier event of that resource
// has succeeded or finally failed, and never two at a time.
func TestOrderingRandomOutcomes(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) {
		c.RetrySchedule = []time.Duration{time.Minute, time.Minute}
		c.BreakerThreshold = 6
		c.Rand = rand.NewPCG(7, 7)
	})
	s := newSink(t)
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(42, 1))
	order := map[string][]string{} // resource -> event ids in publish order
	succeeded := map[string]bool{}
	failures := map[string]int{}
	active := map[string]int{}
	settled := func(id string) bool { return succeeded[id] || failures[id] >= 3 }
	s.setHandler(func(w http.ResponseWriter, r sinkReq) {
		mu.Lock()
		active[r.resource]++
		if active[r.resource] > 1 {
			t.Errorf("two requests at once for resource %s", r.resource)
		}
		for _, earlier := range order[r.resource] {
			if earlier == r.id {
				break
			}
			if !settled(earlier) {
				t.Errorf("resource %s: %s sent while earlier %s is unsettled", r.resource, r.id, earlier)
			}
		}
		if succeeded[r.id] {
			t.Errorf("%s sent again after it succeeded", r.id)
		}
		x := rng.IntN(10)
		mu.Unlock()
		switch {
		case x < 5:
			w.WriteHeader(200)
		case x < 8:
			w.WriteHeader(500)
		default:
			w.Header().Set("Retry-After", "30")
			w.WriteHeader(503)
		}
		mu.Lock()
		switch {
		case x < 5:
			succeeded[r.id] = true
		case x < 8:
			failures[r.id]++
		}
		active[r.resource]--
		mu.Unlock()
	})
	h.endpoint(s.srv.URL, nil)
	var dids []string
	for i := range 24 {
		res := fmt.Sprintf("r%d", i%3)
		ev := h.event(res)
		mu.Lock()
		order[res] = append(order[res], ev.ID)
		mu.Unlock()
		out, err := h.eng.Publish(t.Context(), ev)
		if err != nil {
			t.Fatal(err)
		}
		dids = append(dids, out.Deliveries[0].ID)
	}
	for step := 0; ; step++ {
		h.idle()
		open := 0
		for _, id := range dids {
			if !h.delivery(id).Status.Final() {
				open++
			}
		}
		if open == 0 {
			break
		}
		if step > 400 {
			t.Fatalf("%d deliveries still open after %d simulated minutes", open, step)
		}
		h.clock.Advance(time.Minute)
		time.Sleep(2 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, id := range dids {
		d := h.delivery(id)
		if d.Status == kinehook.DeliverySucceeded != succeeded[d.EventID] {
			t.Errorf("%s: store says %s, sink saw success=%v", id, d.Status, succeeded[d.EventID])
		}
	}
}
