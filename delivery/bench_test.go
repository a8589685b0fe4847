package delivery

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/internal/cputime"
	"github.com/kinehook/kinehook/sqlite"
)

// benchEnv is a real SQLite file, real-time engine and a fast loopback sink.
type benchEnv struct {
	store kinehook.Store
	eng   *Engine
	proj  *kinehook.Project
	got   atomic.Int64
	done  chan struct{}
	want  atomic.Int64
	sink  *httptest.Server
	onReq func(id string)
	dbg   *batchObserver
}

// batchObserver counts group commits.
type batchObserver struct {
	NopObserver
	n, batches, dur, max atomic.Int64
}

func (o *batchObserver) IngestCommitted(n int, d time.Duration) {
	for {
		m := o.max.Load()
		if int64(d) <= m || o.max.CompareAndSwap(m, int64(d)) {
			break
		}
	}
	o.n.Add(int64(n))
	o.batches.Add(1)
	o.dur.Add(int64(d))
}

func newBenchEnv(b *testing.B, endpoints int, sinkURL string, extraURLs ...string) *benchEnv {
	b.Helper()
	env := &benchEnv{done: make(chan struct{}, 1)}
	env.sink = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if env.onReq != nil {
			env.onReq(r.Header.Get(kinehook.HeaderID))
		}
		w.WriteHeader(http.StatusNoContent)
		if env.got.Add(1) == env.want.Load() {
			env.done <- struct{}{}
		}
	}))
	env.sink.Config.SetKeepAlivesEnabled(true)
	env.sink.Start()
	b.Cleanup(env.sink.Close)
	if sinkURL == "" {
		sinkURL = env.sink.URL
	}
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "bench.db"), sqlite.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	env.store = st
	env.proj = &kinehook.Project{ID: kinehook.NewID(kinehook.PrefixProject), Name: "bench", CreatedAt: time.Now().UTC()}
	if err := st.CreateProject(ctx, env.proj, kinehook.HashKey(env.proj.ID)); err != nil {
		b.Fatal(err)
	}
	urls := slices.Repeat([]string{sinkURL}, endpoints)
	for _, u := range append(urls, extraURLs...) {
		now := time.Now().UTC()
		ep := &kinehook.Endpoint{ID: kinehook.NewID(kinehook.PrefixEndpoint), ProjectID: env.proj.ID, URL: u,
			Secrets: []kinehook.EndpointSecret{{Value: testSecret}}, CreatedAt: now, UpdatedAt: now}
		if err := st.CreateEndpoint(ctx, ep); err != nil {
			b.Fatal(err)
		}
	}
	env.dbg = &batchObserver{}
	env.eng, err = New(Config{Store: st, Observer: env.dbg, Transports: httpTransports(0)})
	if err != nil {
		b.Fatal(err)
	}
	if err := env.eng.Start(ctx); err != nil {
		b.Fatal(err)
	}
	<-env.eng.Recovered()
	b.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = env.eng.Shutdown(sctx)
		cancel()
		_ = st.Close()
	})
	return env
}

func (env *benchEnv) event(i int) *kinehook.Event {
	res := "video-" + strconv.Itoa(i%1000)
	return &kinehook.Event{
		ID: kinehook.NewID(kinehook.PrefixEvent), ProjectID: env.proj.ID, Type: kinehook.EventMediaUpdateStatus,
		Payload:     []byte(`{"event":"media.update.status","data":{"id":"` + res + `","status":"done","title":"Bench video ` + strconv.Itoa(i) + `"}}`),
		ResourceKey: res, CreatedAt: time.Now().UTC(),
	}
}

// publishers is the number of concurrent Publish callers (like HTTP clients).
var publishers = 512

// BenchmarkDeliver measures deliveries/s from Publish (64 concurrent
// publishers, group commit into SQLite) to a loopback sink.
func BenchmarkDeliver(b *testing.B) {
	for _, n := range []int{1, 10} {
		b.Run(fmt.Sprintf("endpoints=%d", n), func(b *testing.B) {
			env := newBenchEnv(b, n, "")
			env.want.Store(int64(b.N * n))
			b.ResetTimer()
			start := time.Now()
			cpu0 := cputime.Self()
			var next atomic.Int64
			var wg sync.WaitGroup
			for range publishers {
				wg.Go(func() {
					for {
						i := int(next.Add(1))
						if i > b.N {
							return
						}
						if _, err := env.eng.Publish(context.Background(), env.event(i)); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			select {
			case <-env.done:
			case <-time.After(5 * time.Minute):
				b.Fatalf("sink got %d of %d deliveries", env.got.Load(), b.N*n)
			}
			el := time.Since(start)
			cpu := cputime.Self() - cpu0
			b.StopTimer()
			// CPU per delivery does not depend on how busy the machine is:
			// 2 cores / that = deliveries/s on an idle 2-core machine.
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N*n), "cpu-µs/delivery")
			b.ReportMetric(float64(b.N*n)/el.Seconds(), "deliveries/s")
			b.ReportMetric(float64(b.N)/el.Seconds(), "events/s")
			if c := env.dbg.batches.Load(); c > 0 {
				b.ReportMetric(float64(env.dbg.n.Load())/float64(c), "events/commit")
				b.ReportMetric(float64(env.dbg.dur.Load())/float64(c)/1e6, "ms/commit")
			}
		})
	}
}

// BenchmarkLatency200 publishes at a steady 200 events/s to one endpoint and
// reports p50/p99 from the start of Publish to the sink receiving the POST.
// With a hanging endpoint beside it, every event also goes to an endpoint
// that never answers (each request runs to the 15 s timeout): the healthy
// endpoint's latency must not suffer.
func BenchmarkLatency200(b *testing.B) {
	b.Run("alone", func(b *testing.B) { benchLatency(b, false) })
	b.Run("with-hanging-endpoint", func(b *testing.B) { benchLatency(b, true) })
}

func benchLatency(b *testing.B, hanging bool) {
	var extra []string
	if hanging {
		stop := make(chan struct{})
		hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-stop:
			case <-r.Context().Done():
			}
		}))
		b.Cleanup(func() { close(stop); hang.Close() })
		extra = append(extra, hang.URL)
	}
	env := newBenchEnv(b, 1, "", extra...)
	var mu sync.Mutex
	sent := map[string]time.Time{}
	var lats []time.Duration
	env.onReq = func(id string) {
		now := time.Now()
		mu.Lock()
		if t, ok := sent[id]; ok {
			lats = append(lats, now.Sub(t))
		}
		mu.Unlock()
	}
	n := max(b.N, 400)
	env.want.Store(int64(n))
	b.ResetTimer()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for i := range n {
		<-tick.C
		ev := env.event(i)
		mu.Lock()
		sent[ev.ID] = time.Now()
		mu.Unlock()
		go func() {
			if _, err := env.eng.Publish(context.Background(), ev); err != nil {
				b.Error(err)
			}
		}()
	}
	select {
	case <-env.done:
	case <-time.After(30 * time.Second):
		b.Fatalf("sink got %d of %d", env.got.Load(), n)
	}
	b.StopTimer()
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(lats)
	b.ReportMetric(float64(lats[len(lats)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lats[len(lats)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(env.dbg.max.Load())/1e6, "max-commit-ms")
}

// BenchmarkBacklog100k queues 100,000 deliveries to an endpoint that is down
// (connection refused) and reports the process's peak RSS.
func BenchmarkBacklog100k(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	down := "http://" + ln.Addr().String() + "/down"
	ln.Close()
	env := newBenchEnv(b, 1, down)
	const total = 100_000
	b.ResetTimer()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for {
				i := int(next.Add(1))
				if i > total {
					return
				}
				if _, err := env.eng.Publish(context.Background(), env.event(i)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	deadline := time.Now().Add(30 * time.Second)
	for {
		env.eng.epMu.RLock()
		q := 0
		for _, es := range env.eng.eps {
			es.mu.Lock()
			q += es.queued
			es.mu.Unlock()
		}
		env.eng.epMu.RUnlock()
		if q == total || time.Now().After(deadline) {
			b.ReportMetric(float64(q), "queued")
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.StopTimer()
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MB")
	b.ReportMetric(peakRSSMB(), "peak-RSS-MB")
}

// peakRSSMB reads VmHWM from /proc/self/status (0 elsewhere).
func peakRSSMB() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}
