// Package delivery is kinehook's delivery engine: it accepts events through
// group commit, keeps the schedule of every open delivery in memory, and signs
// each attempt and hands it to a Transport (package webhook sends it as an
// HTTP POST), with retries, per-(endpoint, resource) ordering, per-endpoint
// isolation and endpoint health (gone, back-off, circuit breaker,
// auto-disable, rate limits). The store is the durable log; nothing on the hot
// path polls it.
package delivery

import (
	"log/slog"
	"maps"
	"math/rand/v2"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/internal/buildinfo"
)

// Version is the build's version as an HTTP product version: the HTTP
// transport sends it in the User-Agent header ("kinehook/<Version>"). It is
// what `kinehook version` prints (internal/buildinfo: the -ldflags version
// of a release build, else the module version the toolchain recorded),
// with "(devel)" as "devel".
var Version = buildinfo.Product()

// Defaults, chosen for a 2-core machine and Standard Webhooks' guidance.
var (
	// DefaultRetrySchedule is Svix's schedule: about 27 h 35 m over 8 attempts.
	DefaultRetrySchedule = []time.Duration{
		5 * time.Second, 5 * time.Minute, 30 * time.Minute,
		2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour,
	}
)

const (
	// DefaultRequestTimeout bounds one attempt, response body included.
	DefaultRequestTimeout = 15 * time.Second
	// DefaultMaxInFlightPerEndpoint bounds concurrent requests to one
	// endpoint. 64 is enough for a healthy endpoint with 1-3 ms round trips
	// to take 20-60k deliveries/s (the machine's ceiling), while an endpoint
	// that hangs to the timeout ties up at most 64 connections.
	DefaultMaxInFlightPerEndpoint = 64
	// DefaultMaxInFlight bounds concurrent requests across all endpoints
	// when no memory limit says less (see MaxInFlightFor).
	DefaultMaxInFlight = 2048
	// InFlightMemory is what one request in flight costs the sender: the
	// attempt's goroutine, the connection's two goroutines and buffers, the
	// request and the response (64 KiB rounds up what a fan-out to 10,000
	// endpoints measured; see TestFanOutMemory).
	InFlightMemory = 64 << 10
	// DefaultIngestBatch is the largest group commit.
	DefaultIngestBatch = 500
	// DefaultResultBatch is the largest batch of attempt results per commit.
	DefaultResultBatch = 500
	// DefaultIngestLinger and DefaultResultLinger are the longest waits of
	// the group commit and of the result writer for more work once their
	// batches are busy (gather.go). They suit a store whose commit costs CPU
	// per page it writes, as SQLite's does: at 32 clients they took a sixth
	// off the server's CPU per delivery (docs/performance.md).
	DefaultIngestLinger = time.Millisecond
	DefaultResultLinger = 2 * time.Millisecond
	// ShortLinger is the wait after a small batch, and the longest one for
	// a store whose commits wait on the network and the disk rather than
	// the CPU (PostgreSQL): there a longer wait only stretches every commit
	// cycle. On PostgreSQL here, whose commits took 10-19 ms, a 1 ms linger
	// left the batches as they were (31-32 events at 64 clients) and the
	// one-endpoint throughput about 7% lower (medians of five runs).
	ShortLinger = 250 * time.Microsecond
	// DefaultPayloadBudget bounds the payload bytes held in memory for
	// queued deliveries; beyond it payloads are loaded from the store
	// when they are about to be sent.
	DefaultPayloadBudget = 8 << 20
	// DefaultPrefetch is how many payloads one store read loads ahead.
	DefaultPrefetch = 256
	// DefaultBreakerThreshold is the number of consecutive failures that
	// opens an endpoint's circuit breaker.
	DefaultBreakerThreshold = 10
	// DefaultBreakerBackoff is the delay before the first probe; it doubles
	// after each failed probe up to DefaultBreakerMaxBackoff.
	DefaultBreakerBackoff    = 10 * time.Second
	DefaultBreakerMaxBackoff = 10 * time.Minute
	// DefaultDisableAfter disables an endpoint that has failed continuously this long.
	DefaultDisableAfter = 5 * 24 * time.Hour
	// MaxRetryAfter caps an endpoint's Retry-After.
	MaxRetryAfter = time.Hour
	// ResponseBodyLimit is how much of a response body an attempt records
	// (Result.Response).
	ResponseBodyLimit = 4 << 10
)

// Config configures an Engine. Store and Transports are required.
type Config struct {
	Store kinehook.Store
	// Coordinator shares partitions among instances; nil means
	// LocalCoordinator (this instance owns every partition).
	Coordinator kinehook.Coordinator
	// Transports carry the messages, keyed by the endpoint type they serve
	// (kinehook.EndpointWebhook, kinehook.EndpointNATS, ...); required:
	// TransportWebhook, the HTTP one (package webhook). An endpoint of a
	// type without a transport here fails each attempt, saying so.
	Transports map[string]Transport
	// RetrySchedule: the first attempt goes at once, then one retry after
	// each delay (len+1 attempts), each delay with up to +/-10% jitter.
	// Nil: DefaultRetrySchedule.
	RetrySchedule []time.Duration
	// RequestTimeout bounds one attempt (0: DefaultRequestTimeout).
	RequestTimeout time.Duration
	// Clock is the time source for schedules; tests pass a fake. Nil: real time.
	Clock Clock
	// Rand is the jitter source; nil uses math/rand/v2's global source.
	Rand rand.Source
	// Logger receives the engine's logs; nil discards them.
	Logger *slog.Logger
	// Observer receives metrics; nil is a no-op.
	Observer Observer
	// Tracer makes the spans of commits and attempts; nil makes none (an
	// event's trace context is still sent on as stored).
	Tracer Tracer

	// MaxInFlightPerEndpoint applies to endpoints whose MaxInFlight is 0.
	MaxInFlightPerEndpoint int
	// MaxInFlight caps concurrent requests over all endpoints. When it is
	// reached, endpoints wait for a slot in turn (round robin), never
	// behind one global FIFO of deliveries. 0: MaxInFlightFor(MemoryLimit).
	MaxInFlight int
	// MemoryLimit is the Go memory limit the engine runs under (0: none).
	// It sets the default MaxInFlight: one event fanned out to thousands of
	// endpoints otherwise starts DefaultMaxInFlight requests at once, which
	// alone outgrow a 100 MiB limit.
	MemoryLimit int64

	// IngestBatch and IngestWindow shape group commit: one store call
	// takes up to IngestBatch events. With IngestWindow 0 a commit starts as
	// soon as the writer is free, with the events arriving meanwhile; while
	// the previous batch held more than one event (concurrent callers), the
	// committer first lingers for more (gather.go: ShortLinger after a small
	// batch, up to IngestLinger after a busy one), so that batches, and the
	// rows per page written, grow with load (a lone request at low load
	// never waits). With a window, the committer waits up to that long for
	// a batch to fill.
	IngestBatch  int
	IngestWindow time.Duration
	// IngestLinger is the committer's longest adaptive wait (0:
	// DefaultIngestLinger, for SQLite; ShortLinger for PostgreSQL).
	IngestLinger time.Duration
	// ResultBatch, ResultWindow and ResultLinger shape the batched writes of
	// attempt results, in the same way (ResultLinger 0: DefaultResultLinger).
	ResultBatch  int
	ResultWindow time.Duration
	ResultLinger time.Duration

	// PayloadBudget bounds payload bytes held for queued deliveries.
	PayloadBudget int64
	// Prefetch is how many payloads are loaded ahead in one store read.
	Prefetch int

	// BreakerThreshold consecutive failures open an endpoint's breaker
	// (0: DefaultBreakerThreshold; negative: never).
	BreakerThreshold int
	// BreakerBackoff is the first probe delay; it doubles up to BreakerMaxBackoff.
	BreakerBackoff    time.Duration
	BreakerMaxBackoff time.Duration
	// DisableAfter disables an endpoint failing continuously that long
	// (0: DefaultDisableAfter; negative: never).
	DisableAfter time.Duration
}

// MaxInFlightFor is the default cap on requests in flight under a Go memory
// limit of memoryLimit bytes (0 or less: none): as many as fit in a quarter
// of the limit at InFlightMemory each, leaving the rest to the endpoints,
// the queues, the store and the collector's headroom; at least
// DefaultMaxInFlightPerEndpoint, at most DefaultMaxInFlight. 100 MiB (serve's
// default) gives 400.
func MaxInFlightFor(memoryLimit int64) int {
	if memoryLimit <= 0 {
		return DefaultMaxInFlight
	}
	return int(min(max(memoryLimit/4/InFlightMemory, DefaultMaxInFlightPerEndpoint), DefaultMaxInFlight))
}

func (c *Config) withDefaults() Config {
	o := *c
	if o.Coordinator == nil {
		o.Coordinator = LocalCoordinator{}
	}
	if o.RetrySchedule == nil {
		o.RetrySchedule = DefaultRetrySchedule
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.Clock == nil {
		o.Clock = RealClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Observer == nil {
		o.Observer = NopObserver{}
	}
	o.limitDefaults()
	o.Transports = maps.Clone(o.Transports) // the caller's map may change later
	return o
}

// limitDefaults fills in the zero sizes, bounds and breaker settings.
func (c *Config) limitDefaults() {
	if c.MaxInFlightPerEndpoint <= 0 {
		c.MaxInFlightPerEndpoint = DefaultMaxInFlightPerEndpoint
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = MaxInFlightFor(c.MemoryLimit)
	}
	if c.IngestBatch <= 0 {
		c.IngestBatch = DefaultIngestBatch
	}
	if c.ResultBatch <= 0 {
		c.ResultBatch = DefaultResultBatch
	}
	if c.IngestLinger <= 0 {
		c.IngestLinger = DefaultIngestLinger
	}
	if c.ResultLinger <= 0 {
		c.ResultLinger = DefaultResultLinger
	}
	if c.PayloadBudget == 0 {
		c.PayloadBudget = DefaultPayloadBudget
	}
	if c.Prefetch <= 0 {
		c.Prefetch = DefaultPrefetch
	}
	if c.BreakerThreshold == 0 {
		c.BreakerThreshold = DefaultBreakerThreshold
	}
	if c.BreakerBackoff <= 0 {
		c.BreakerBackoff = DefaultBreakerBackoff
	}
	if c.BreakerMaxBackoff <= 0 {
		c.BreakerMaxBackoff = DefaultBreakerMaxBackoff
	}
	if c.BreakerMaxBackoff < c.BreakerBackoff {
		c.BreakerMaxBackoff = c.BreakerBackoff
	}
	if c.DisableAfter == 0 {
		c.DisableAfter = DefaultDisableAfter
	}
}

// Clock is the engine's time source. Schedules, backoffs and timestamps use
// it; tests substitute a fake to run days of retries in microseconds.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine once d has elapsed.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending AfterFunc call.
type Timer interface {
	// Stop prevents the call if it has not run; it reports whether it did.
	Stop() bool
}

// RealClock is the wall clock.
type RealClock struct{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// AfterFunc wraps time.AfterFunc.
func (RealClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// Outcome classifies an attempt, whatever its transport: the engine's
// retry and health logic and the metrics read it.
type Outcome string

// Attempt outcomes.
const (
	OutcomeSuccess = Outcome("success")
	// OutcomeHTTPError: the endpoint answered with a failure (for HTTP, a
	// status other than 2xx; the value keeps its name in the metrics).
	OutcomeHTTPError = Outcome("http_error")
	// OutcomeTimeout: no complete answer within RequestTimeout.
	OutcomeTimeout = Outcome("timeout")
	// OutcomeNetworkError: connection refused, reset, DNS, refused by the transport's guard...
	OutcomeNetworkError = Outcome("network_error")
	// OutcomeBackoff: the endpoint asked for a pause (HTTP: 429 or 503 with
	// Retry-After); does not use up an attempt.
	OutcomeBackoff = Outcome("backoff")
	// OutcomeGone: the endpoint is gone (HTTP: 410) and gets disabled.
	OutcomeGone = Outcome("gone")
	// OutcomeRefused: a broker took the message but refused it (no stream
	// or queue bound to the subject, a negative acknowledgement, a denied
	// permission). Like OutcomeHTTPError it is a failed attempt, retried
	// on the schedule and counted by the breaker.
	OutcomeRefused = Outcome("refused")
)

// BreakerState is the state of an endpoint's circuit breaker.
type BreakerState string

// Breaker states.
const (
	BreakerClosed = BreakerState("closed")
	BreakerOpen   = BreakerState("open")
)

// Observer receives the engine's metrics. Implementations must be fast and
// safe for concurrent use: they are called on the hot path. Embed
// NopObserver to stay compatible when methods are added.
type Observer interface {
	// EventAccepted: an event was committed (duplicate: idempotency hit).
	EventAccepted(projectID string, eventType kinehook.EventType, duplicate bool)
	// IngestCommitted: one group commit of n events took d.
	IngestCommitted(n int, d time.Duration)
	// AttemptFinished: one attempt ended.
	AttemptFinished(endpointID string, outcome Outcome, d time.Duration)
	// DeliveryFinished: a delivery reached a final status; latency runs
	// from the event's acceptance.
	DeliveryFinished(endpointID string, status kinehook.DeliveryStatus, latency time.Duration)
	// QueueDepth: the number of open deliveries queued for an endpoint.
	QueueDepth(endpointID string, depth int)
	// BreakerChanged: an endpoint's circuit breaker opened or closed.
	BreakerChanged(endpointID string, state BreakerState)
	// OperationalEvent: endpoint.disabled or endpoint.recovered happened.
	OperationalEvent(ev OperationalEvent)
	// EndpointDeleted: the endpoint is gone; what is kept per endpoint
	// (metric series) can go too.
	EndpointDeleted(endpointID string)
	// StateChanged: an accepted event moved (or repeated) the state of
	// its video or stream, in acceptance order.
	StateChanged(projectID string, c *kinehook.StateChange)
}

// NopObserver ignores everything.
type NopObserver struct{}

// EventAccepted implements Observer.
func (NopObserver) EventAccepted(string, kinehook.EventType, bool) {}

// IngestCommitted implements Observer.
func (NopObserver) IngestCommitted(int, time.Duration) {}

// AttemptFinished implements Observer.
func (NopObserver) AttemptFinished(string, Outcome, time.Duration) {}

// DeliveryFinished implements Observer.
func (NopObserver) DeliveryFinished(string, kinehook.DeliveryStatus, time.Duration) {}

// QueueDepth implements Observer.
func (NopObserver) QueueDepth(string, int) {}

// BreakerChanged implements Observer.
func (NopObserver) BreakerChanged(string, BreakerState) {}

// StateChanged implements Observer.
func (NopObserver) StateChanged(string, *kinehook.StateChange) {}

// OperationalEvent implements Observer.
func (NopObserver) OperationalEvent(OperationalEvent) {}

// EndpointDeleted implements Observer.
func (NopObserver) EndpointDeleted(string) {}
