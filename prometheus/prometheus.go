// Package prometheus exposes kinehook's metrics in the Prometheus format. It
// implements the delivery engine's Observer (called on the hot path, so every
// method is a few atomic operations) and serves /metrics.
package prometheus

import (
	"context"
	"net/http"
	"time"

	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/delivery"
)

// Metrics holds kinehook's collectors and a registry with Go runtime and
// process metrics beside them.
type Metrics struct {
	delivery.NopObserver

	registry *prom.Registry

	eventsAccepted  *prom.CounterVec
	eventsDuplicate *prom.CounterVec
	attempts        *prom.CounterVec
	attemptDuration *prom.HistogramVec
	deliveries      *prom.CounterVec
	e2eLatency      prom.Histogram
	queueDepth      *prom.GaugeVec
	breakerOpen     *prom.GaugeVec
	opEvents        *prom.CounterVec
	commitDuration  prom.Histogram
	commitBatch     prom.Histogram
	httpRequests    *prom.CounterVec
	httpDuration    *prom.HistogramVec
	mediaStatus     *prom.CounterVec
	processing      *prom.HistogramVec
	sourceMessages  *prom.CounterVec
	sourceErrors    *prom.CounterVec
}

// Options plugs values the engine and store know into gauges read at scrape time.
type Options struct {
	// InFlight returns the number of delivery attempts in flight.
	InFlight func() int
	// OpenDeliveries returns pending and retrying delivery counts per
	// endpoint; nil leaves those series out.
	OpenDeliveries func() (pending, retrying map[string]int)
	// LiveStreams counts the live streams of every project by state, with
	// the oldest UpdatedAt of each (the store's state table, at scrape
	// time); nil leaves kinehook_live_streams out.
	LiveStreams func(ctx context.Context) ([]kinehook.StateCount, error)
}

// latencyBuckets span sub-millisecond local deliveries to the multi-hour
// retry schedule.
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200, 36000}

// New registers kinehook's metrics, Go runtime and process metrics in a fresh registry.
func New(o Options) *Metrics {
	m := &Metrics{registry: prom.NewRegistry()}
	f := func(c prom.Collector) { m.registry.MustRegister(c) }
	m.eventsAccepted = prom.NewCounterVec(prom.CounterOpts{
		Name: "kinehook_events_accepted_total", Help: "Events accepted (committed) by event type.",
	}, []string{"event_type"})
	m.eventsDuplicate = prom.NewCounterVec(prom.CounterOpts{
		Name: "kinehook_events_duplicate_total", Help: "Events answered from an earlier Idempotency-Key, by event type.",
	}, []string{"event_type"})
	m.attempts = prom.NewCounterVec(prom.CounterOpts{
		Name: "kinehook_delivery_attempts_total", Help: "Delivery attempts by endpoint and outcome (success, http_error, timeout, network_error, backoff, gone, refused).",
	}, []string{"endpoint_id", "outcome"})
	m.attemptDuration = prom.NewHistogramVec(prom.HistogramOpts{
		Name: "kinehook_delivery_attempt_duration_seconds", Help: "Duration of one HTTP delivery attempt.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 15, 30},
	}, []string{"outcome"})
	m.deliveries = prom.NewCounterVec(prom.CounterOpts{
		Name: "kinehook_deliveries_total", Help: "Deliveries that reached a final status, by endpoint and status (succeeded, failed).",
	}, []string{"endpoint_id", "status"})
	m.e2eLatency = prom.NewHistogram(prom.HistogramOpts{
		Name: "kinehook_delivery_latency_seconds", Help: "From an event's acceptance to its delivery's final status (succeeded deliveries).",
		Buckets: latencyBuckets,
	})
	m.queueDepth = prom.NewGaugeVec(prom.GaugeOpts{
		Name: "kinehook_endpoint_queue_depth", Help: "Open (pending or retrying) deliveries queued for an endpoint on this instance.",
	}, []string{"endpoint_id"})
	m.breakerOpen = prom.NewGaugeVec(prom.GaugeOpts{
		Name: "kinehook_endpoint_circuit_open", Help: "1 while an endpoint's circuit breaker is open, else 0.",
	}, []string{"endpoint_id"})
	m.opEvents = prom.NewCounterVec(prom.CounterOpts{
		Name: "kinehook_operational_events_total", Help: "Operational events (endpoint.disabled, endpoint.recovered).",
	}, []string{"event"})
	m.commitDuration = prom.NewHistogram(prom.HistogramOpts{
		Name: "kinehook_store_commit_duration_seconds", Help: "Duration of one group commit of ingested events.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
	})
	m.commitBatch = prom.NewHistogram(prom.HistogramOpts{
		Name: "kinehook_store_commit_batch_size", Help: "Events per group commit.",
		Buckets: []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000},
	})
	m.httpRequests = prom.NewCounterVec(prom.CounterOpts{
		Name: "kinehook_http_requests_total", Help: "HTTP requests (API, dashboard, /metrics) by route pattern (\"unmatched\" when none matched) and status code.",
	}, []string{"route", "code"})
	m.httpDuration = prom.NewHistogramVec(prom.HistogramOpts{
		Name: "kinehook_http_request_duration_seconds", Help: "HTTP request duration by route pattern.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"route"})
	m.mediaStatus = prom.NewCounterVec(prom.CounterOpts{
		Name: "kinehook_media_status_total", Help: "Accepted media.update.status events by project and status (a status outside the catalog counts as \"unknown\").",
	}, []string{"project", "status"})
	m.processing = prom.NewHistogramVec(prom.HistogramOpts{
		Name: "kinehook_media_processing_seconds", Help: "Processing time per video: from its first pending or uploading to done or error, by project and outcome.",
		Buckets: []float64{5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 43200},
	}, []string{"project", "status"})
	m.sourceMessages = prom.NewCounterVec(prom.CounterOpts{
		Name: "kinehook_source_messages_total", Help: "Messages taken from ingest sources by source and outcome (published, duplicate, rejected).",
	}, []string{"source", "outcome"})
	m.sourceErrors = prom.NewCounterVec(prom.CounterOpts{
		Name: "kinehook_source_errors_total", Help: "Failed steps of ingest sources by source and step (fetch, publish, record, ack); each is tried again.",
	}, []string{"source", "op"})
	for _, c := range []prom.Collector{m.sourceMessages, m.sourceErrors, m.eventsAccepted, m.eventsDuplicate, m.attempts, m.attemptDuration, m.deliveries,
		m.e2eLatency, m.queueDepth, m.breakerOpen, m.opEvents, m.commitDuration, m.commitBatch, m.httpRequests, m.httpDuration,
		m.mediaStatus, m.processing,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		f(c)
	}
	if o.InFlight != nil {
		f(prom.NewGaugeFunc(prom.GaugeOpts{
			Name: "kinehook_delivery_in_flight", Help: "Delivery attempts in flight on this instance.",
		}, func() float64 { return float64(o.InFlight()) }))
	}
	if o.OpenDeliveries != nil {
		f(&openCollector{fn: o.OpenDeliveries, desc: prom.NewDesc("kinehook_endpoint_open_deliveries",
			"Open deliveries per endpoint by status (pending, retrying), from the delivery engine's queues at scrape time.", []string{"endpoint_id", "status"}, nil)})
	}
	if o.LiveStreams != nil {
		f(&liveCollector{fn: o.LiveStreams,
			count: prom.NewDesc("kinehook_live_streams", "Live streams by project and state (created, connected, disconnected, finished, cancelled, enabled; \"unknown\" for others), from the state table at scrape time.", []string{"project", "state"}, nil),
			age:   prom.NewDesc("kinehook_live_state_oldest_seconds", "How long the longest-standing stream of a project has been in a state (e.g. disconnected), at scrape time.", []string{"project", "state"}, nil)})
	}
	return m
}

// Registry returns the registry, for tests and extra collectors.
func (m *Metrics) Registry() *prom.Registry { return m.registry }

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}

// SourceMessages implements source.Observer.
func (m *Metrics) SourceMessages(source, outcome string, n int) {
	m.sourceMessages.WithLabelValues(source, outcome).Add(float64(n))
}

// SourceError implements source.Observer.
func (m *Metrics) SourceError(source, op string) {
	m.sourceErrors.WithLabelValues(source, op).Inc()
}

// EventAccepted implements delivery.Observer.
func (m *Metrics) EventAccepted(_ string, t kinehook.EventType, duplicate bool) {
	if duplicate {
		m.eventsDuplicate.WithLabelValues(string(t)).Inc()
		return
	}
	m.eventsAccepted.WithLabelValues(string(t)).Inc()
}

// IngestCommitted implements delivery.Observer.
func (m *Metrics) IngestCommitted(n int, d time.Duration) {
	m.commitDuration.Observe(d.Seconds())
	m.commitBatch.Observe(float64(n))
}

// AttemptFinished implements delivery.Observer.
func (m *Metrics) AttemptFinished(endpointID string, outcome delivery.Outcome, d time.Duration) {
	m.attempts.WithLabelValues(endpointID, string(outcome)).Inc()
	m.attemptDuration.WithLabelValues(string(outcome)).Observe(d.Seconds())
}

// DeliveryFinished implements delivery.Observer.
func (m *Metrics) DeliveryFinished(endpointID string, status kinehook.DeliveryStatus, latency time.Duration) {
	m.deliveries.WithLabelValues(endpointID, string(status)).Inc()
	if status == kinehook.DeliverySucceeded {
		m.e2eLatency.Observe(latency.Seconds())
	}
}

// QueueDepth implements delivery.Observer. An endpoint whose queue empties
// keeps a zero series until the endpoint is deleted.
func (m *Metrics) QueueDepth(endpointID string, depth int) {
	m.queueDepth.WithLabelValues(endpointID).Set(float64(depth))
}

// BreakerChanged implements delivery.Observer.
func (m *Metrics) BreakerChanged(endpointID string, state delivery.BreakerState) {
	v := 0.0
	if state == delivery.BreakerOpen {
		v = 1
	}
	m.breakerOpen.WithLabelValues(endpointID).Set(v)
}

// OperationalEvent implements delivery.Observer.
func (m *Metrics) OperationalEvent(ev delivery.OperationalEvent) {
	m.opEvents.WithLabelValues(string(ev.Event)).Inc()
}

// StateChanged implements delivery.Observer: the media status counter and
// the processing time histogram.
func (m *Metrics) StateChanged(projectID string, c *kinehook.StateChange) {
	if c.Kind != kinehook.StateMedia {
		return
	}
	status := c.Status
	if !kinehook.MediaStatus(status).Known() {
		status = "unknown" // the label's values stay few whatever is sent
	}
	m.mediaStatus.WithLabelValues(projectID, status).Inc()
	if c.Processing > 0 {
		m.processing.WithLabelValues(projectID, status).Observe(c.Processing.Seconds())
	}
}

// EndpointDeleted implements delivery.Observer: a deleted endpoint's series
// go, so endpoints that come and go do not pile up series.
func (m *Metrics) EndpointDeleted(endpointID string) {
	m.queueDepth.DeleteLabelValues(endpointID)
	m.breakerOpen.DeleteLabelValues(endpointID)
	m.attempts.DeletePartialMatch(prom.Labels{"endpoint_id": endpointID})
	m.deliveries.DeletePartialMatch(prom.Labels{"endpoint_id": endpointID})
}

// Instrument wraps an API handler, counting requests by route pattern (never
// by raw path, which would explode cardinality) and status.
func (m *Metrics) Instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(sw, r)
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		m.httpRequests.WithLabelValues(route, itoa(sw.code)).Inc()
		m.httpDuration.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) { w.code = code; w.ResponseWriter.WriteHeader(code) }

// Flush passes flushes through (the dashboard's server-sent events).
func (w *statusWriter) Flush() { _ = http.NewResponseController(w.ResponseWriter).Flush() }

// Unwrap lets http.ResponseController reach deadlines and the rest.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func itoa(code int) string {
	if code >= 100 && code < 600 {
		return string([]byte{byte('0' + code/100), byte('0' + code/10%10), byte('0' + code%10)})
	}
	return "other"
}

// openCollector reports store-side open delivery counts at scrape time.
type openCollector struct {
	fn   func() (pending, retrying map[string]int)
	desc *prom.Desc
}

func (c *openCollector) Describe(ch chan<- *prom.Desc) { ch <- c.desc }

func (c *openCollector) Collect(ch chan<- prom.Metric) {
	pending, retrying := c.fn()
	for ep, n := range pending {
		ch <- prom.MustNewConstMetric(c.desc, prom.GaugeValue, float64(n), ep, "pending")
	}
	for ep, n := range retrying {
		ch <- prom.MustNewConstMetric(c.desc, prom.GaugeValue, float64(n), ep, "retrying")
	}
}

// liveCollector reads the live streams' counts from the store at scrape time.
type liveCollector struct {
	fn         func(ctx context.Context) ([]kinehook.StateCount, error)
	count, age *prom.Desc
}

func (c *liveCollector) Describe(ch chan<- *prom.Desc) { ch <- c.count; ch <- c.age }

func (c *liveCollector) Collect(ch chan<- prom.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts, err := c.fn(ctx)
	if err != nil {
		ch <- prom.NewInvalidMetric(c.count, err)
		return
	}
	type key struct{ project, state string }
	sum := map[key]int64{}
	oldest := map[key]time.Time{}
	for _, sc := range counts {
		k := key{sc.ProjectID, sc.Status}
		if !kinehook.EventType("live." + sc.Status).Known() {
			k.state = "unknown"
		}
		sum[k] += sc.Count
		if o, ok := oldest[k]; !ok || sc.Oldest.Before(o) {
			oldest[k] = sc.Oldest
		}
	}
	now := time.Now()
	for k, n := range sum {
		ch <- prom.MustNewConstMetric(c.count, prom.GaugeValue, float64(n), k.project, k.state)
		ch <- prom.MustNewConstMetric(c.age, prom.GaugeValue, max(now.Sub(oldest[k]).Seconds(), 0), k.project, k.state)
	}
}
