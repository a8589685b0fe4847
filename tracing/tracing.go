// Package tracing is kinehook's OpenTelemetry tracing: the spans of an
// event's ingest (the HTTP request), of the group commit that stores it
// (linked to each event's span) and of each attempt to deliver it (a child
// of the event's span, whose context the attempt sends on as its
// traceparent). It is configured only by the standard OTEL_* environment
// variables and exports OTLP over HTTP. The engine reaches it through
// delivery.Tracer; cmd/kinehook wires it, and only when it is configured
// (FromEnv), so that an instance without tracing pays nothing for it.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/delivery"
)

// Span names.
const (
	SpanIngest  = "kinehook.ingest"
	SpanCommit  = "kinehook.commit"
	SpanAttempt = "kinehook.attempt"
)

// Attribute keys of kinehook's own (the HTTP ones follow OpenTelemetry's
// semantic conventions).
const (
	AttrProjectID    = attribute.Key("kinehook.project.id")
	AttrEndpointID   = attribute.Key("kinehook.endpoint.id")
	AttrDeliveryID   = attribute.Key("kinehook.delivery.id")
	AttrEventID      = attribute.Key("kinehook.event.id")
	AttrEventType    = attribute.Key("kinehook.event.type")
	AttrAttempt      = attribute.Key("kinehook.attempt")
	AttrOutcome      = attribute.Key("kinehook.outcome")
	AttrCommitEvents = attribute.Key("kinehook.commit.events")
)

// Tracer makes kinehook's spans and exports them. It implements
// delivery.Tracer; Handler makes the ingest spans.
type Tracer struct {
	provider *sdktrace.TracerProvider
	tracer   trace.Tracer
	prop     propagation.TraceContext
}

var _ delivery.Tracer = (*Tracer)(nil)

// Options are what FromEnv takes besides the environment.
type Options struct {
	// ServiceVersion is the resource's service.version.
	ServiceVersion string
	// Logger receives export errors; nil discards them.
	Logger *slog.Logger
}

// Enabled reports whether the environment turns tracing on: an OTLP
// endpoint is set (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or
// OTEL_EXPORTER_OTLP_ENDPOINT), and neither OTEL_SDK_DISABLED=true nor
// OTEL_TRACES_EXPORTER=none turns it off.
func Enabled(getenv func(string) string) bool {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return false
	}
	if strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")) == "none" {
		return false
	}
	return strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")) != "" ||
		strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_ENDPOINT")) != ""
}

// FromEnv returns the Tracer the OTEL_* environment configures, or nil (and
// no error) when it does not turn tracing on (Enabled). The exporter, the
// sampler (OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG), the batching
// (OTEL_BSP_*), the span limits (OTEL_SPAN_*) and the resource
// (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES; service.name defaults to
// "kinehook") read the variables as the OpenTelemetry SDK defines them. A
// setting kinehook cannot honour (another exporter or protocol) is an error.
func FromEnv(ctx context.Context, o Options) (*Tracer, error) {
	if !Enabled(os.Getenv) {
		return nil, nil
	}
	if err := checkEnv(os.Getenv); err != nil {
		return nil, err
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP/HTTP exporter: %w", err)
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", "kinehook")}
	if o.ServiceVersion != "" {
		attrs = append(attrs, attribute.String("service.version", o.ServiceVersion))
	}
	// Later detectors win: the environment over the defaults.
	res, err := resource.New(ctx, resource.WithAttributes(attrs...), resource.WithTelemetrySDK(), resource.WithFromEnv())
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn("tracing: export", "err", err) }))
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return New(tp), nil
}

// checkEnv refuses the settings FromEnv cannot honour.
func checkEnv(getenv func(string) string) error {
	if v := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); v != "" && v != "otlp" {
		return fmt.Errorf("tracing: OTEL_TRACES_EXPORTER=%q: kinehook exports traces only with otlp (or none to turn tracing off)", v)
	}
	for _, k := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if v := strings.TrimSpace(getenv(k)); v != "" {
			if v != "http/protobuf" {
				return fmt.Errorf("tracing: %s=%q: kinehook exports OTLP over HTTP only (http/protobuf)", k, v)
			}
			break // the traces-specific one wins
		}
	}
	return nil
}

// New returns a Tracer making its spans with tp (FromEnv builds tp from the
// environment; tests pass their own).
func New(tp *sdktrace.TracerProvider) *Tracer {
	return &Tracer{provider: tp, tracer: tp.Tracer("github.com/kinehook/kinehook")}
}

// Shutdown exports the spans still buffered and stops the exporter.
func (t *Tracer) Shutdown(ctx context.Context) error {
	if err := t.provider.Shutdown(ctx); err != nil {
		return fmt.Errorf("tracing: shutdown: %w", err)
	}
	return nil
}

// ForceFlush exports the spans buffered so far.
func (t *Tracer) ForceFlush(ctx context.Context) error {
	return t.provider.ForceFlush(ctx)
}

// spanContext is the trace context of a traceparent and tracestate (an
// invalid SpanContext for none).
func (t *Tracer) spanContext(parent, state string) context.Context {
	if parent == "" {
		return context.Background()
	}
	return t.prop.Extract(context.Background(), propagation.MapCarrier{
		kinehook.HeaderTraceParent: parent, kinehook.HeaderTraceState: state})
}

// StartCommit implements delivery.Tracer: a root span for the group commit,
// linked to the span of each event posted with a trace context.
func (t *Tracer) StartCommit(events []*kinehook.Event) func(error) {
	links := make([]trace.Link, 0, len(events))
	for _, ev := range events {
		if sc := trace.SpanContextFromContext(t.spanContext(ev.Trace.TraceParent(), ev.Trace.TraceState())); sc.IsValid() {
			links = append(links, trace.Link{SpanContext: sc, Attributes: []attribute.KeyValue{AttrEventID.String(ev.ID)}})
		}
	}
	_, span := t.tracer.Start(context.Background(), SpanCommit, trace.WithLinks(links...),
		trace.WithAttributes(AttrCommitEvents.Int(len(events))))
	return func(err error) {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
}

// StartAttempt implements delivery.Tracer: a client span, child of the
// event's trace context, whose own context the attempt sends.
func (t *Tracer) StartAttempt(a delivery.AttemptSpan) (string, string, func(delivery.Result)) {
	ctx, span := t.tracer.Start(t.spanContext(a.TraceParent, a.TraceState), SpanAttempt,
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(AttrEndpointID.String(a.EndpointID), AttrDeliveryID.String(a.DeliveryID),
			AttrEventID.String(a.EventID), AttrEventType.String(string(a.EventType)), AttrAttempt.Int(a.Attempt)))
	c := propagation.MapCarrier{}
	t.prop.Inject(ctx, c)
	return c[kinehook.HeaderTraceParent], c[kinehook.HeaderTraceState], func(r delivery.Result) {
		span.SetAttributes(AttrOutcome.String(string(r.Outcome)))
		if r.StatusCode != 0 {
			span.SetAttributes(attribute.Int("http.response.status_code", r.StatusCode))
		}
		if r.Outcome != delivery.OutcomeSuccess {
			span.SetStatus(codes.Error, r.Err)
		}
		span.End()
	}
}

// Handler makes the span of each event ingest (POST
// /v1/projects/{pid}/events and .../events/batch), a child of the request's
// W3C trace context, and hands next the request with the span's trace
// context in its traceparent and tracestate headers: the events keep it,
// so their commit links to this span and their attempts are its children.
// Other requests pass through untouched.
func (t *Tracer) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		route, pid, ok := ingestRoute(r)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		ctx := t.prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := t.tracer.Start(ctx, SpanIngest, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("http.request.method", r.Method), attribute.String("http.route", route),
				attribute.String("url.path", r.URL.Path), AttrProjectID.String(pid)))
		defer span.End()
		h := r.Header.Clone()
		h.Del(kinehook.HeaderTraceParent)
		h.Del(kinehook.HeaderTraceState)
		t.prop.Inject(ctx, propagation.HeaderCarrier(h))
		r = r.WithContext(ctx)
		r.Header = h
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		code := sw.code
		if code == 0 {
			code = http.StatusOK
		}
		span.SetAttributes(attribute.Int("http.response.status_code", code))
		if code >= 500 {
			span.SetStatus(codes.Error, strconv.Itoa(code)+" "+http.StatusText(code))
		}
	})
}

// ingestRoute matches the routes that ingest events.
func ingestRoute(r *http.Request) (route, pid string, ok bool) {
	if r.Method != http.MethodPost {
		return "", "", false
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/v1/projects/")
	if !ok {
		return "", "", false
	}
	pid, tail, ok := strings.Cut(rest, "/")
	if !ok || pid == "" {
		return "", "", false
	}
	switch tail {
	case "events":
		return "/v1/projects/{pid}/events", pid, true
	case "events/batch":
		return "/v1/projects/{pid}/events/batch", pid, true
	}
	return "", "", false
}

// statusWriter records the status a handler answers.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
