package delivery

import (
	"context"
	"time"

	"github.com/kinehook/kinehook"
)

// Transport carries one prepared, signed message to its endpoint. The
// engine keeps everything else (signing, ordering, retries, the breaker,
// rate limits, endpoint health), so a new kind of destination is a new
// Transport, not an edit of the engine. Send is called concurrently.
type Transport interface {
	// Send makes one attempt. ctx carries the attempt's deadline
	// (Config.RequestTimeout) and ends early when the engine shuts down;
	// whatever Send answers then is not recorded.
	Send(ctx context.Context, m Message) Result
}

// TransportWebhook is the key of the HTTP transport in Config.Transports.
// Other transports are keyed by their endpoint type (kinehook.EndpointNATS,
// ...); Engine.transport picks by kinehook.Endpoint.TypeOf.
const TransportWebhook = kinehook.EndpointWebhook

// TransportCloser is a Transport holding connections (a broker's): the
// engine's Shutdown closes it once no attempt is left in flight.
type TransportCloser interface {
	Transport
	Close() error
}

// TransportForgetter is a Transport keeping state per endpoint (a broker
// connection it shares): the engine calls Forget when the endpoint is
// deleted or changed, so the transport can close what only that endpoint
// used. It must not block.
type TransportForgetter interface {
	Transport
	Forget(endpointID string)
}

// Message is one attempt, signed once by the engine: any transport carries
// the same Standard Webhooks id, timestamp and signature over the same body.
// It is passed by value so that building it costs no allocation.
type Message struct {
	// Endpoint is where it goes: the transport reads its address,
	// credentials and custom headers. It must not be modified.
	Endpoint *kinehook.Endpoint
	// ID, Timestamp and Signature are the webhook-id, webhook-timestamp
	// (Unix seconds) and webhook-signature values, exactly as signed.
	ID, Timestamp, Signature string
	// Body is the event's payload, sent as is; it must not be modified.
	Body []byte
	// EventType, ResourceKey and ProjectID describe the event for brokers
	// that route or partition by them (a Kafka record key is the
	// resource). The HTTP transport ignores them; they cost no allocation.
	EventType   kinehook.EventType
	ResourceKey string
	ProjectID   string
	// Now is the engine's clock when the attempt began: a delay the
	// destination asks for as a date counts from it.
	Now time.Time
	// TraceParent and TraceState are the W3C trace context the attempt
	// carries ("" for none): the attempt's span's when the engine traces,
	// else the event's as posted. A transport sends them with its protocol's
	// means (HTTP: the traceparent and tracestate headers).
	TraceParent, TraceState string
	// Attempt is this attempt's number for its delivery, from 1 (a
	// listening developer's CLI shows retries as such).
	Attempt int
}

// Result is what one attempt led to, in terms any transport can state.
type Result struct {
	// Outcome classifies the attempt: OutcomeSuccess, OutcomeHTTPError (the
	// destination answered with a failure), OutcomeRefused (a broker
	// refused the message), OutcomeBackoff (it asked for RetryAfter),
	// OutcomeGone (it is gone: the endpoint is disabled), OutcomeTimeout
	// (no confirmation in time) or OutcomeNetworkError (unreachable).
	Outcome Outcome
	// StatusCode is the protocol's status (the HTTP status), 0 if none:
	// brokers have none, their answer is in Err or Response.
	StatusCode int
	// Err says why the attempt failed; empty on success. A timeout with
	// Err empty is recorded as "timeout: no complete response within
	// <RequestTimeout>".
	Err string
	// Response is the start of the destination's answer, at most
	// ResponseBodyLimit bytes of it (plus a note when reading it failed).
	Response string
	// Duration is the attempt's wall time.
	Duration time.Duration
	// RetryAfter is the pause asked for with OutcomeBackoff; the engine
	// bounds it with BoundRetryAfter.
	RetryAfter time.Duration
	// Headers is the request metadata the attempt records, without
	// credentials.
	Headers map[string]string
}

// BoundRetryAfter is the pause the engine takes for a destination's
// Retry-After d: at least a second, at most MaxRetryAfter.
func BoundRetryAfter(d time.Duration) time.Duration {
	return min(max(d, time.Second), MaxRetryAfter)
}
