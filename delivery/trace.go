package delivery

import (
	"encoding/json"

	"github.com/kinehook/kinehook"
)

// Tracer is the engine's tracing hook: package tracing implements it with
// OpenTelemetry, and cmd/kinehook sets it only when tracing is configured.
// With Config.Tracer nil the engine makes no span and allocates nothing for
// tracing: an event's stored traceparent still reaches the endpoint, copied
// as is.
// Implementations must be safe for concurrent use.
type Tracer interface {
	// StartCommit begins the span of one group commit of events, linked to
	// each event's trace context; end is called once with the commit's
	// error (nil when it was stored).
	StartCommit(events []*kinehook.Event) (end func(err error))
	// StartAttempt begins the span of one attempt, a child of the event's
	// trace context (a.TraceParent, a.TraceState). It returns the trace
	// context the attempt sends (its own span's, so that the receiver
	// continues the trace) and end, called once with the attempt's result.
	StartAttempt(a AttemptSpan) (traceparent, tracestate string, end func(Result))
}

// AttemptSpan describes an attempt to a Tracer.
type AttemptSpan struct {
	EndpointID, DeliveryID, EventID string
	EventType                       kinehook.EventType
	// Attempt is the attempt's number, from 1.
	Attempt int
	// TraceParent and TraceState are the event's trace context ("" none).
	TraceParent, TraceState string
}

// traceAttempt puts the trace context to send in m: with a Tracer, that of
// the attempt's span, begun here (its end is returned); without, the
// event's as stored, a pointer shared by the event's deliveries: an event
// without one costs a nil check.
func (e *Engine) traceAttempt(j job, m *Message) func(Result) {
	tc := j.it.trace
	if e.cfg.Tracer == nil {
		if tc != nil {
			m.TraceParent, m.TraceState = tc.Parent, tc.State
		}
		return nil
	}
	var end func(Result)
	m.TraceParent, m.TraceState, end = e.cfg.Tracer.StartAttempt(AttemptSpan{
		EndpointID: j.ep.ID, DeliveryID: j.it.id, EventID: j.it.eventID, EventType: eventTypeOf(j.body),
		Attempt: int(j.it.attempts) + 1, TraceParent: tc.TraceParent(), TraceState: tc.TraceState(),
	})
	return end
}

// eventTypeOf reads the type of an event from its body (as posted, so
// "event" may come after "data"). Only a traced attempt asks: a queued
// delivery does not keep its type.
func eventTypeOf(body []byte) kinehook.EventType {
	var env struct {
		Event kinehook.EventType `json:"event"`
	}
	_ = json.Unmarshal(body, &env)
	return env.Event
}
