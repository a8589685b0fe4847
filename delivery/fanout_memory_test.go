package delivery

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
)

// goMemory is the memory the Go runtime holds from the OS and has not given
// back: what debug.SetMemoryLimit bounds, and close to the process's RSS.
func goMemory() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64() - s[1].Value.Uint64()
}

// One event fanned out to 10,000 endpoints on one receiver stays within the
// engine's memory limit (the process's soft limit, as serve sets it). With
// DefaultMaxInFlight requests started at once it did not: the Go runtime
// held 171 MiB at the peak (20 MiB before) and the collector ran back to
// back (11 s for the deliveries instead of 2-3 s).
func TestFanOutMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("creates 10,000 endpoints")
	}
	if raceEnabled {
		t.Skip("the race detector's bookkeeping is part of the memory measured; run without -race")
	}
	const n = 10000
	const limit = 100 << 20
	var got atomic.Int64
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if got.Add(1) == n {
			close(done)
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	ctx := t.Context()
	st := openStore(t, filepath.Join(t.TempDir(), "kinehook.db"))
	t.Cleanup(func() { st.Close() })
	p := &kinehook.Project{ID: kinehook.NewID(kinehook.PrefixProject), Name: "fan-out", CreatedAt: time.Now().UTC()}
	if err := st.CreateProject(ctx, p, kinehook.HashKey("khp_"+p.ID)); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		now := time.Now().UTC()
		e := &kinehook.Endpoint{ID: kinehook.NewID(kinehook.PrefixEndpoint), ProjectID: p.ID, URL: fmt.Sprintf("%s/e/%d", srv.URL, i),
			Secrets: []kinehook.EndpointSecret{{Value: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}, CreatedAt: now, UpdatedAt: now}
		if err := st.CreateEndpoint(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	eng, err := New(Config{Store: st, RetrySchedule: []time.Duration{time.Minute}, MemoryLimit: limit,
		Transports: httpTransports(MaxInFlightFor(limit))})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = eng.Shutdown(sctx)
	})
	<-eng.Recovered()
	old := debug.SetMemoryLimit(limit)
	defer debug.SetMemoryLimit(old)
	runtime.GC()
	debug.FreeOSMemory()
	base := goMemory()
	var peak atomic.Uint64
	t0 := time.Now()
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			if m := goMemory(); m > peak.Load() {
				peak.Store(m)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	body := []byte(`{"event":"media.update.status","data":{"id":"7127f2d7-0e96-40d0-9a03-2e987c096466","status":"done"}}`)
	if _, err := eng.Publish(ctx, &kinehook.Event{ProjectID: p.ID, Type: kinehook.EventMediaUpdateStatus, Payload: body, ResourceKey: "7127f2d7-0e96-40d0-9a03-2e987c096466"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatalf("%d of %d deliveries arrived", got.Load(), n)
	}
	close(stop)
	<-sampled
	growth := int64(peak.Load()) - int64(base)
	t.Logf("%d deliveries in %v, at most %d in flight; Go memory %.1f MiB before, peak %.1f MiB (+%.1f MiB)", n, time.Since(t0).Round(time.Millisecond),
		eng.cfg.MaxInFlight, float64(base)/(1<<20), float64(peak.Load())/(1<<20), float64(growth)/(1<<20))
	if peak.Load() > limit {
		t.Errorf("the fan-out took the Go runtime's memory to %.1f MiB, over the %d MiB limit", float64(peak.Load())/(1<<20), limit>>20)
	}
}

func TestMaxInFlightFor(t *testing.T) {
	tests := []struct {
		limit int64
		want  int
	}{
		{0, DefaultMaxInFlight},
		{-1, DefaultMaxInFlight},
		{100 << 20, 400},
		{1 << 20, DefaultMaxInFlightPerEndpoint},
		{1 << 30, DefaultMaxInFlight},
		{1 << 62, DefaultMaxInFlight},
	}
	for _, tt := range tests {
		if got := MaxInFlightFor(tt.limit); got != tt.want {
			t.Errorf("MaxInFlightFor(%d) = %d, want %d", tt.limit, got, tt.want)
		}
	}
	if got := (&Config{MemoryLimit: 100 << 20}).withDefaults().MaxInFlight; got != 400 {
		t.Errorf("Config{MemoryLimit: 100 MiB} in flight = %d, want 400", got)
	}
	if got := (&Config{MemoryLimit: 100 << 20, MaxInFlight: 3000}).withDefaults().MaxInFlight; got != 3000 {
		t.Errorf("an explicit MaxInFlight = %d, want 3000", got)
	}
}
