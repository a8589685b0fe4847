package tracing_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/delivery"
	khttp "github.com/kinehook/kinehook/http"
	"github.com/kinehook/kinehook/internal/otlptest"
	"github.com/kinehook/kinehook/sqlite"
	"github.com/kinehook/kinehook/tracing"
	"github.com/kinehook/kinehook/webhook"
)

const adminKey = "kh_admin_tracing_test"

// receiverSink is an endpoint that records each request's headers and
// answers the statuses of fail in turn, then 200.
type receiverSink struct {
	*httptest.Server
	mu   sync.Mutex
	got  []http.Header
	fail []int
}

func newSink(t *testing.T, fail ...int) *receiverSink {
	s := &receiverSink{fail: fail}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.got = append(s.got, r.Header.Clone())
		code := 200
		if len(s.fail) > 0 {
			code, s.fail = s.fail[0], s.fail[1:]
		}
		s.mu.Unlock()
		w.WriteHeader(code)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *receiverSink) headers() []http.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]http.Header(nil), s.got...)
}

// stack is the API with the engine on SQLite, traced by tr from the
// environment the test set.
type stack struct {
	t   *testing.T
	url string
	tr  *tracing.Tracer
}

func startStack(t *testing.T) *stack {
	t.Helper()
	ctx := context.Background()
	tr, err := tracing.FromEnv(ctx, tracing.Options{ServiceVersion: "v0.0.0-test"})
	if err != nil || tr == nil {
		t.Fatalf("FromEnv: %v, %v", tr, err)
	}
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "kinehook.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := delivery.New(delivery.Config{Store: st, RetrySchedule: []time.Duration{20 * time.Millisecond, 20 * time.Millisecond},
		RequestTimeout: 2 * time.Second, Transports: webhook.Transports(webhook.Options{}), Tracer: tr})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(ctx); err != nil {
		t.Fatal(err)
	}
	srv, err := khttp.NewServer(khttp.Config{Store: st, Dispatcher: eng, AdminKeyHash: kinehook.HashKey(adminKey), AllowPrivateNetworks: true, RateLimit: -1})
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(tr.Handler(srv))
	t.Cleanup(func() {
		api.Close()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = eng.Shutdown(sctx)
		_ = tr.Shutdown(sctx)
		_ = st.Close()
	})
	return &stack{t: t, url: api.URL, tr: tr}
}

func (s *stack) call(method, path, key, body string, hdr ...string) (int, map[string]any) {
	s.t.Helper()
	req, _ := http.NewRequest(method, s.url+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return res.StatusCode, m
}

// project makes a project with one endpoint to sink; it returns the
// project's id and key, and the endpoint's id.
func (s *stack) project(sink *receiverSink) (string, string, string) {
	s.t.Helper()
	code, p := s.call("POST", "/v1/projects", adminKey, `{"name":"p"}`)
	if code != 201 {
		s.t.Fatalf("create project: %d %v", code, p)
	}
	pid, key := p["id"].(string), p["api_key"].(string)
	code, ep := s.call("POST", "/v1/projects/"+pid+"/endpoints", key, `{"url":"`+sink.URL+`/hook"}`)
	if code != 201 {
		s.t.Fatalf("create endpoint: %d %v", code, ep)
	}
	return pid, key, ep["id"].(string)
}

func setEnv(t *testing.T, rcv *otlptest.Receiver) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", rcv.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	t.Setenv("OTEL_SERVICE_NAME", "kinehook-under-test")
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
	t.Setenv("OTEL_TRACES_SAMPLER", "parentbased_always_on")
	t.Setenv("OTEL_SDK_DISABLED", "")
}

func traceparentOf(t *testing.T, h http.Header) (traceID, spanID string) {
	t.Helper()
	tp := h.Get("traceparent")
	if !kinehook.ValidTraceParent(tp) {
		t.Fatalf("delivered traceparent %q is not valid", tp)
	}
	return tp[3:35], tp[36:52]
}

// One traced event: the ingest span continues the client's trace, the
// commit links to it, the attempt is its child with the delivery's
// attributes, and the endpoint receives the attempt's span as parent in the
// same trace.
func TestSpansOfAnEvent(t *testing.T) {
	rcv := otlptest.Start(t)
	setEnv(t, rcv)
	s := startStack(t)
	sink := newSink(t)
	pid, key, epID := s.project(sink)

	const clientTrace, clientSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	code, ev := s.call("POST", "/v1/projects/"+pid+"/events", key, `{"event":"media.update.status","data":{"id":"v1","status":"done"}}`,
		"traceparent", "00-"+clientTrace+"-"+clientSpan+"-01", "tracestate", "rojo=1")
	if code != 202 {
		t.Fatalf("post event: %d %v", code, ev)
	}
	if tp, _ := ev["traceparent"].(string); kinehook.TraceIDOf(tp) != clientTrace {
		t.Errorf("event's traceparent %q is not in the client's trace", tp)
	}
	spans := rcv.WaitFor(t, "ingest, commit and attempt spans", 10*time.Second, func(sp []otlptest.Span) bool {
		return len(otlptest.Named(sp, tracing.SpanIngest)) == 1 && len(otlptest.Named(sp, tracing.SpanCommit)) >= 1 &&
			len(otlptest.Named(sp, tracing.SpanAttempt)) == 1
	})
	ingest := otlptest.Named(spans, tracing.SpanIngest)[0]
	if ingest.TraceID != clientTrace || ingest.ParentSpanID != clientSpan || ingest.Kind != tracepb.Span_SPAN_KIND_SERVER {
		t.Errorf("ingest span: trace %s parent %s kind %v, want the client's %s/%s, server", ingest.TraceID, ingest.ParentSpanID, ingest.Kind, clientTrace, clientSpan)
	}
	for k, want := range map[string]any{"http.route": "/v1/projects/{pid}/events", "http.request.method": "POST",
		"http.response.status_code": int64(202), "kinehook.project.id": pid} {
		if ingest.Attrs[k] != want {
			t.Errorf("ingest span %s = %v, want %v", k, ingest.Attrs[k], want)
		}
	}
	if ingest.Resource["service.name"] != "kinehook-under-test" || ingest.Resource["service.version"] != "v0.0.0-test" {
		t.Errorf("resource %v: want OTEL_SERVICE_NAME and the version", ingest.Resource)
	}
	if tp, _ := ev["traceparent"].(string); tp[36:52] != ingest.SpanID {
		t.Errorf("the event keeps %q, want the ingest span %s as its parent", tp, ingest.SpanID)
	}

	linked := false
	for _, c := range otlptest.Named(spans, tracing.SpanCommit) {
		for _, l := range c.Links {
			if l.TraceID == clientTrace && l.SpanID == ingest.SpanID && l.Attrs["kinehook.event.id"] == ev["id"] {
				linked = true
				if c.TraceID == clientTrace || c.Attrs["kinehook.commit.events"] != int64(1) {
					t.Errorf("commit span: trace %s (its own, not the event's), %v events, want 1", c.TraceID, c.Attrs["kinehook.commit.events"])
				}
			}
		}
	}
	if !linked {
		t.Errorf("no commit span links to the ingest span %s: %+v", ingest.SpanID, otlptest.Named(spans, tracing.SpanCommit))
	}

	att := otlptest.Named(spans, tracing.SpanAttempt)[0]
	if att.TraceID != clientTrace || att.ParentSpanID != ingest.SpanID || att.Kind != tracepb.Span_SPAN_KIND_CLIENT {
		t.Errorf("attempt span: trace %s parent %s kind %v, want %s/%s, client", att.TraceID, att.ParentSpanID, att.Kind, clientTrace, ingest.SpanID)
	}
	for k, want := range map[string]any{"kinehook.endpoint.id": epID, "kinehook.event.id": ev["id"], "kinehook.event.type": "media.update.status",
		"kinehook.attempt": int64(1), "kinehook.outcome": "success", "http.response.status_code": int64(200)} {
		if att.Attrs[k] != want {
			t.Errorf("attempt span %s = %v, want %v", k, att.Attrs[k], want)
		}
	}
	if id, _ := att.Attrs["kinehook.delivery.id"].(string); !strings.HasPrefix(id, "dlv_") {
		t.Errorf("attempt span delivery id %q", id)
	}
	hs := sink.headers()
	if len(hs) != 1 {
		t.Fatalf("sink got %d requests, want 1", len(hs))
	}
	trace, span := traceparentOf(t, hs[0])
	if trace != clientTrace || span != att.SpanID {
		t.Errorf("delivered traceparent names %s/%s, want the attempt span %s/%s", trace, span, clientTrace, att.SpanID)
	}
	if hs[0].Get("tracestate") != "rojo=1" {
		t.Errorf("delivered tracestate %q, want the client's", hs[0].Get("tracestate"))
	}
}

// Each attempt has its span, numbered, with its outcome; a batch's events
// share the request's span; an ingest without (or with an invalid) trace
// context starts a trace that the deliveries continue.
func TestSpansOfRetriesAndBatches(t *testing.T) {
	rcv := otlptest.Start(t)
	setEnv(t, rcv)
	s := startStack(t)
	sink := newSink(t, 500)
	pid, key, _ := s.project(sink)

	code, _ := s.call("POST", "/v1/projects/"+pid+"/events/batch", key,
		`{"events":[{"event":"media.update.status","data":{"id":"a","status":"done"}},{"event":"media.update.status","data":{"id":"b","status":"done"}}]}`,
		"traceparent", "00-zz-not-a-trace")
	if code != 202 {
		t.Fatalf("post batch with an invalid traceparent: %d", code)
	}
	spans := rcv.WaitFor(t, "three attempts", 10*time.Second, func(sp []otlptest.Span) bool {
		return len(otlptest.Named(sp, tracing.SpanAttempt)) == 3 && len(otlptest.Named(sp, tracing.SpanIngest)) == 1
	})
	ingest := otlptest.Named(spans, tracing.SpanIngest)[0]
	if ingest.ParentSpanID != "" || ingest.Attrs["http.route"] != "/v1/projects/{pid}/events/batch" {
		t.Errorf("ingest span of the batch: parent %q route %v, want a root span", ingest.ParentSpanID, ingest.Attrs["http.route"])
	}
	var failed, succeeded int
	for _, a := range otlptest.Named(spans, tracing.SpanAttempt) {
		if a.TraceID != ingest.TraceID || a.ParentSpanID != ingest.SpanID {
			t.Errorf("attempt %v is not a child of the batch's ingest span", a.Attrs)
		}
		switch {
		case a.Attrs["kinehook.outcome"] == "http_error" && a.Attrs["http.response.status_code"] == int64(500) &&
			a.Attrs["kinehook.attempt"] == int64(1) && a.Status == tracepb.Status_STATUS_CODE_ERROR:
			failed++
		case a.Attrs["kinehook.outcome"] == "success" && a.Status != tracepb.Status_STATUS_CODE_ERROR:
			succeeded++
			if a.Attrs["kinehook.attempt"] != int64(1) && a.Attrs["kinehook.attempt"] != int64(2) {
				t.Errorf("attempt number %v", a.Attrs["kinehook.attempt"])
			}
		default:
			t.Errorf("unexpected attempt span %+v", a)
		}
	}
	if failed != 1 || succeeded != 2 {
		t.Errorf("%d failed and %d succeeded attempt spans, want 1 and 2", failed, succeeded)
	}
	retried := false
	for _, a := range otlptest.Named(spans, tracing.SpanAttempt) {
		retried = retried || a.Attrs["kinehook.attempt"] == int64(2)
	}
	if !retried {
		t.Error("no span of a second attempt")
	}
	for _, h := range sink.headers() {
		if trace, _ := traceparentOf(t, h); trace != ingest.TraceID {
			t.Errorf("delivered trace %s, want the ingest's %s", trace, ingest.TraceID)
		}
	}
	// Other requests make no span.
	if code, _ := s.call("GET", "/v1/projects/"+pid+"/events", key, ""); code != 200 {
		t.Fatalf("list events: %d", code)
	}
	if err := s.tr.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(otlptest.Named(rcv.Spans(), tracing.SpanIngest)); n != 1 {
		t.Errorf("%d ingest spans after a GET, want 1", n)
	}
}

func TestEnabled(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want bool
	}{
		{"nothing set", nil, false},
		{"endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, true},
		{"traces endpoint", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, true},
		{"service name alone", map[string]string{"OTEL_SERVICE_NAME": "x"}, false},
		{"SDK disabled", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"}, false},
		{"exporter none", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_TRACES_EXPORTER": "none"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tracing.Enabled(func(k string) string { return tc.env[k] }); got != tc.want {
				t.Errorf("Enabled = %v, want %v", got, tc.want)
			}
		})
	}
}

// Off: FromEnv makes no tracer; a setting kinehook cannot honour is an error
// naming it.
func TestFromEnv(t *testing.T) {
	for _, k := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_SDK_DISABLED",
		"OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"} {
		t.Setenv(k, "")
	}
	tr, err := tracing.FromEnv(context.Background(), tracing.Options{})
	if tr != nil || err != nil {
		t.Fatalf("unset: %v, %v; want no tracer", tr, err)
	}
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
	for k, v := range map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_TRACES_EXPORTER": "zipkin"} {
		t.Run(k, func(t *testing.T) {
			t.Setenv(k, v)
			if _, err := tracing.FromEnv(context.Background(), tracing.Options{}); err == nil || !strings.Contains(err.Error(), k) {
				t.Errorf("%s=%s: %v, want an error naming it", k, v, err)
			}
		})
	}
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf")
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc") // the traces-specific one wins
	tr, err = tracing.FromEnv(context.Background(), tracing.Options{})
	if err != nil || tr == nil {
		t.Fatalf("http/protobuf: %v, %v", tr, err)
	}
	_ = tr.Shutdown(context.Background())
}
