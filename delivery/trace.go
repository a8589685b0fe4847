package delivery

import (
	"github.com/kinehook/kinehook"
)

// Tracer is the engine's tracing hook: package tracing implements it with
// OpenTelemetry, and cmd/kinehook sets it only when tracing is configured.
// With Config.Tracer nil the engine makes no span and no trace allocation:
// an event's stored traceparent still reaches the endpoint, copied as is.
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

// itemTrace is what a queued delivery keeps for tracing: its event's trace
// context, and its type for the attempt's span. It is allocated only for an
// event posted with a trace context or when the engine traces; other items
// keep a nil pointer.
type itemTrace struct {
	parent, state string
	eventType     kinehook.EventType
}

// newItemTrace returns d's itemTrace, or nil when nothing is to be kept.
func newItemTrace(d *kinehook.Delivery, traced bool) *itemTrace {
	if d.Trace == nil && !traced {
		return nil
	}
	return &itemTrace{parent: d.Trace.TraceParent(), state: d.Trace.TraceState(), eventType: d.EventType}
}

// traceAttempt begins the attempt's span when the engine traces, and puts
// the trace context to send in m: the span's, or the event's as stored.
func (e *Engine) traceAttempt(j job, m *Message) func(Result) {
	t := j.it.trace
	if t == nil {
		return nil
	}
	if e.cfg.Tracer == nil {
		m.TraceParent, m.TraceState = t.parent, t.state
		return nil
	}
	var end func(Result)
	m.TraceParent, m.TraceState, end = e.cfg.Tracer.StartAttempt(AttemptSpan{
		EndpointID: j.ep.ID, DeliveryID: j.it.id, EventID: j.it.eventID, EventType: t.eventType,
		Attempt: int(j.it.attempts) + 1, TraceParent: t.parent, TraceState: t.state,
	})
	return end
}
