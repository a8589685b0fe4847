package prometheus_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/delivery"
	"github.com/kinehook/kinehook/prometheus"
	"github.com/kinehook/kinehook/sqlite"
	"github.com/kinehook/kinehook/webhook"
)

// TestMetricsMove sends deliveries that succeed, fail and hang through the
// real engine on a real SQLite store, scraping /metrics at each step: every
// series the operations issue names moves as the deliveries do.
func TestMetricsMove(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "k.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })

	var got atomic.Int64
	release := make(chan struct{})
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Add(1)
		switch r.URL.Path {
		case "/bad":
			w.WriteHeader(http.StatusInternalServerError)
		case "/slow":
			<-release
			w.WriteHeader(http.StatusOK)
		default:
			w.WriteHeader(http.StatusOK)
		}
	}))
	t.Cleanup(sink.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})

	p := &kinehook.Project{ID: kinehook.NewID(kinehook.PrefixProject), Name: "m", CreatedAt: time.Now()}
	if err := st.CreateProject(ctx, p, kinehook.HashKey("k")); err != nil {
		t.Fatal(err)
	}
	secret, err := kinehook.GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	endpoint := func(path string, types ...string) *kinehook.Endpoint {
		ep := &kinehook.Endpoint{ID: kinehook.NewID(kinehook.PrefixEndpoint), ProjectID: p.ID, URL: sink.URL + path, EventTypes: types,
			Secrets: []kinehook.EndpointSecret{{Value: secret}}, CreatedAt: time.Now(), UpdatedAt: time.Now()}
		if err := st.CreateEndpoint(ctx, ep); err != nil {
			t.Fatal(err)
		}
		return ep
	}
	ok := endpoint("/ok", "media.update.status")
	bad := endpoint("/bad", "live.created")
	slow := endpoint("/slow", "live.finished")

	var eng *delivery.Engine
	m := prometheus.New(prometheus.Options{
		InFlight:       func() int { return eng.InFlight() },
		OpenDeliveries: func() (map[string]int, map[string]int) { return eng.OpenCounts() },
	})
	// One retry an hour away: a failed attempt leaves its delivery retrying.
	eng, err = delivery.New(delivery.Config{Store: st, Observer: m, RetrySchedule: []time.Duration{time.Hour}, BreakerThreshold: 2,
		Transports: webhook.Transports(webhook.Options{})})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		eng.Shutdown(sctx)
	})

	publish := func(typ kinehook.EventType, body string, resource string) {
		t.Helper()
		ev := &kinehook.Event{ID: kinehook.NewID(kinehook.PrefixEvent), ProjectID: p.ID, Type: typ,
			Payload: []byte(body), ResourceKey: resource, CreatedAt: time.Now()}
		if _, err := eng.Publish(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(m.Handler())
	t.Cleanup(srv.Close)
	var text string
	until := func(what string, want ...string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			text = scrape(t, srv.URL)
			missing := ""
			for _, w := range want {
				if !strings.Contains(text, w+"\n") {
					missing = w
					break
				}
			}
			if missing == "" {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: metrics lack %q:\n%s", what, missing, grep(text, "kinehook_"))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	// Successes.
	for i := range 3 {
		publish(kinehook.EventMediaUpdateStatus, `{"event":"media.update.status","data":{"id":"v`+string(rune('0'+i))+`","status":"done"}}`, "v")
	}
	until("three successes",
		`kinehook_events_accepted_total{event_type="media.update.status"} 3`,
		`kinehook_delivery_attempts_total{endpoint_id="`+ok.ID+`",outcome="success"} 3`,
		`kinehook_deliveries_total{endpoint_id="`+ok.ID+`",status="succeeded"} 3`,
		`kinehook_delivery_latency_seconds_count 3`,
		`kinehook_delivery_attempt_duration_seconds_count{outcome="success"} 3`,
	)

	// Failures: two streams fail once each and wait for their retry; the
	// second failure in a row opens the endpoint's breaker.
	publish(kinehook.EventLiveCreated, `{"event":"live.created","data":{"event_id":"l1"}}`, "l1")
	publish(kinehook.EventLiveCreated, `{"event":"live.created","data":{"event_id":"l2"}}`, "l2")
	until("two failures",
		`kinehook_events_accepted_total{event_type="live.created"} 2`,
		`kinehook_delivery_attempts_total{endpoint_id="`+bad.ID+`",outcome="http_error"} 2`,
		`kinehook_endpoint_open_deliveries{endpoint_id="`+bad.ID+`",status="retrying"} 2`,
		`kinehook_endpoint_queue_depth{endpoint_id="`+bad.ID+`"} 2`,
		`kinehook_endpoint_circuit_open{endpoint_id="`+bad.ID+`"} 1`,
	)
	if strings.Contains(text, `kinehook_deliveries_total{endpoint_id="`+bad.ID+`"`) {
		t.Errorf("a delivery waiting for its retry was counted final:\n%s", grep(text, "kinehook_deliveries_total"))
	}

	// An attempt in flight.
	publish(kinehook.EventLiveFinished, `{"event":"live.finished","data":{"event_id":"l3"}}`, "l3")
	until("one attempt in flight", `kinehook_delivery_in_flight 1`)
	close(release)
	until("the slow one done",
		`kinehook_delivery_in_flight 0`,
		`kinehook_deliveries_total{endpoint_id="`+slow.ID+`",status="succeeded"} 1`,
	)

	for _, want := range []string{`go_goroutines`, `process_resident_memory_bytes`, `kinehook_store_commit_duration_seconds_count`} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if n := metricValue(text, "kinehook_store_commit_batch_size_count"); n < 1 || n > 6 {
		t.Errorf("%v group commits observed for 6 events published one at a time:\n%s", n, grep(text, "kinehook_store_commit"))
	}
	if n := metricValue(text, "kinehook_store_commit_batch_size_sum"); n != 6 {
		t.Errorf("group commits hold %v events, want 6", n)
	}
}

// metricValue returns the value of the series line that starts with name
// and a space (0 when there is none).
func metricValue(text, name string) float64 {
	for _, l := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
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
