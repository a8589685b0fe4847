package prometheus_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/delivery"
	"github.com/kinehook/kinehook/prometheus"
	"github.com/kinehook/kinehook/sqlite"
)

// TestMetricsMove sends deliveries that succeed and that fail through the real
// engine on a real SQLite store, then scrapes /metrics and checks the series moved.
func TestMetricsMove(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "k.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })

	var fail atomic.Bool
	var got atomic.Int64
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Add(1)
		if fail.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(sink.Close)

	p := &kinehook.Project{ID: kinehook.NewID(kinehook.PrefixProject), Name: "m", CreatedAt: time.Now()}
	if err := st.CreateProject(ctx, p, kinehook.HashKey("k")); err != nil {
		t.Fatal(err)
	}
	secret, err := kinehook.GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	ep := &kinehook.Endpoint{ID: kinehook.NewID(kinehook.PrefixEndpoint), ProjectID: p.ID, URL: sink.URL,
		Secrets: []kinehook.EndpointSecret{{Value: secret}}, CreatedAt: time.Now(), UpdatedAt: time.Now()}
	if err := st.CreateEndpoint(ctx, ep); err != nil {
		t.Fatal(err)
	}

	var eng *delivery.Engine
	m := prometheus.New(prometheus.Options{InFlight: func() int { return 0 }})
	eng, err = delivery.New(delivery.Config{Store: st, Observer: m, RetrySchedule: []time.Duration{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Shutdown(context.Background()) })

	publish := func(n int, resource string) {
		for i := 0; i < n; i++ {
			body := []byte(`{"event":"media.update.status","data":{"id":"` + resource + `","status":"done"}}`)
			ev := &kinehook.Event{ID: kinehook.NewID(kinehook.PrefixEvent), ProjectID: p.ID, Type: kinehook.EventMediaUpdateStatus,
				Payload: body, ResourceKey: resource, CreatedAt: time.Now()}
			if _, err := eng.Publish(ctx, ev); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish(3, "v-ok")
	waitFor(t, func() bool { return got.Load() == 3 })
	fail.Store(true)
	publish(2, "v-bad")
	waitFor(t, func() bool { return got.Load() == 5 })

	srv := httptest.NewServer(m.Handler())
	t.Cleanup(srv.Close)
	var text string
	waitFor(t, func() bool {
		text = scrape(t, srv.URL)
		return strings.Contains(text, `kinehook_deliveries_total{endpoint_id="`+ep.ID+`",status="failed"} 2`)
	})
	for _, want := range []string{
		`kinehook_events_accepted_total{event_type="media.update.status"} 5`,
		`kinehook_delivery_attempts_total{endpoint_id="` + ep.ID + `",outcome="success"} 3`,
		`kinehook_delivery_attempts_total{endpoint_id="` + ep.ID + `",outcome="http_error"} 2`,
		`kinehook_deliveries_total{endpoint_id="` + ep.ID + `",status="succeeded"} 3`,
		`kinehook_delivery_latency_seconds_count 3`,
		`kinehook_delivery_in_flight 0`,
		`go_goroutines`,
		`process_resident_memory_bytes`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if !strings.Contains(text, "kinehook_store_commit_batch_size_count") || strings.Contains(text, "kinehook_store_commit_batch_size_count 0\n") {
		t.Errorf("no group commit observed:\n%s", grep(text, "kinehook_store_commit"))
	}
}

// TestEndpointDeletedDropsItsSeries: endpoints that come and go must not
// leave series behind; the other endpoints' stay.
func TestEndpointDeletedDropsItsSeries(t *testing.T) {
	m := prometheus.New(prometheus.Options{})
	for _, id := range []string{"ep_gone", "ep_kept"} {
		m.AttemptFinished(id, delivery.OutcomeSuccess, time.Millisecond)
		m.DeliveryFinished(id, kinehook.DeliverySucceeded, time.Millisecond)
		m.QueueDepth(id, 3)
		m.BreakerChanged(id, delivery.BreakerOpen)
	}
	m.EndpointDeleted("ep_gone")
	ms := httptest.NewServer(m.Handler())
	t.Cleanup(ms.Close)
	text := scrape(t, ms.URL)
	if strings.Contains(text, "ep_gone") {
		t.Errorf("a deleted endpoint's series remain:\n%s", grep(text, "ep_gone"))
	}
	if n := strings.Count(text, `endpoint_id="ep_kept"`); n < 4 {
		t.Errorf("the other endpoint has %d series, want at least 4:\n%s", n, grep(text, "ep_kept"))
	}
}

func TestInstrumentUsesRoutePattern(t *testing.T) {
	m := prometheus.New(prometheus.Options{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/projects/{pid}", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	srv := httptest.NewServer(m.Instrument(mux))
	t.Cleanup(srv.Close)
	for _, p := range []string{"/v1/projects/a", "/v1/projects/b", "/nope"} {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	ms := httptest.NewServer(m.Handler())
	t.Cleanup(ms.Close)
	text := scrape(t, ms.URL)
	if !strings.Contains(text, `kinehook_http_requests_total{code="418",route="GET /v1/projects/{pid}"} 2`) {
		t.Errorf("route pattern not counted:\n%s", grep(text, "kinehook_http_requests_total"))
	}
	if strings.Contains(text, "/v1/projects/a") {
		t.Error("raw path leaked into a label")
	}
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func grep(text, prefix string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestInstrumentFlushes checks that a handler behind Instrument can flush
// (server-sent events would otherwise never reach the browser).
func TestInstrumentFlushes(t *testing.T) {
	m := prometheus.New(prometheus.Options{})
	release := make(chan struct{})
	srv := httptest.NewServer(m.Instrument(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: one\n\n")
		if f, ok := w.(http.Flusher); !ok {
			t.Error("wrapped writer is not an http.Flusher")
		} else {
			f.Flush()
		}
		<-release
	})))
	t.Cleanup(srv.Close)
	defer close(release)
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 11)
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "data: one\n\n" {
		t.Fatalf("flushed bytes not received before the handler returned: %q %v", buf, err)
	}
}
