package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/kinehook/kinehook"
)

// Event listing and idempotency limits.
const (
	// DefaultPageLimit is the event list's page size when none is asked.
	DefaultPageLimit = 50
	// MaxPageLimit bounds any paged list's page size.
	MaxPageLimit = 1000
	// MaxIdempotencyKey bounds an idempotency key, in bytes.
	MaxIdempotencyKey = 255
)

// CheckIdempotencyKey checks the Idempotency-Key of one posted event: valid
// UTF-8 of at most MaxIdempotencyKey bytes ("" is none).
func CheckIdempotencyKey(k string) error {
	if len(k) > MaxIdempotencyKey || !utf8.ValidString(k) {
		return &kinehook.Error{Code: kinehook.EINVALID, Field: "Idempotency-Key", Message: fmt.Sprintf("Idempotency-Key must be valid UTF-8 of at most %d bytes", MaxIdempotencyKey)}
	}
	return nil
}

// EventInput is one posted event: its body as posted, the idempotency key
// it came with, and whether the caller already knows the project exists
// (a project key was checked against it).
type EventInput struct {
	ProjectID      string
	Body           []byte
	IdempotencyKey string
	ProjectKnown   bool
	// Trace is the W3C trace context (traceparent, tracestate headers) the
	// event was posted with (see CheckTrace).
	Trace kinehook.TraceContext
}

// CheckTrace is the trace context an event keeps of the one it was posted
// with: nil when the traceparent is missing or not valid (its tracestate is
// dropped with it), and without a tracestate that is not valid. Tracing
// never fails an ingest.
func CheckTrace(tc kinehook.TraceContext) *kinehook.TraceContext {
	if !kinehook.ValidTraceParent(tc.Parent) {
		return nil
	}
	if !kinehook.ValidTraceState(tc.State) {
		tc.State = ""
	}
	return &tc
}

// Published is what became of a posted event: the event as stored (the
// earlier one for a repeated idempotency key, then Duplicate), its data as
// posted (nil for a duplicate), and its deliveries.
type Published struct {
	Event      *kinehook.Event
	Data       json.RawMessage
	Duplicate  bool
	Deliveries int
}

// PublishEvent accepts one event: strict validation (ParseStrict, the JSON
// depth limit), then a durable publish; it returns after the commit.
func (a *App) PublishEvent(ctx context.Context, in EventInput) (Published, error) {
	ev, data, err := a.newEvent(in, a.now().UTC())
	if err != nil {
		return Published{}, err
	}
	if err := a.projectExists(ctx, in.ProjectID, in.ProjectKnown); err != nil {
		return Published{}, err
	}
	ev.ProjectID = in.ProjectID
	res, err := a.disp.Publish(ctx, ev)
	if err != nil {
		return Published{}, fmt.Errorf("publish event: %w", err)
	}
	out := Published{Event: res.Event, Duplicate: res.Duplicate, Deliveries: len(res.Deliveries)}
	if out.Event == nil {
		out.Event = ev
	}
	if !res.Duplicate {
		out.Data = data
	}
	return out, nil
}

// newEvent checks one event's input (the idempotency key, the JSON depth
// limit, ParseStrict) and makes the event, without its project: the rules
// every entry point that takes a posted event applies (the API, the queue
// ingest sources). data is the event's data as posted.
func (a *App) newEvent(in EventInput, now time.Time) (*kinehook.Event, json.RawMessage, error) {
	if err := CheckIdempotencyKey(in.IdempotencyKey); err != nil {
		return nil, nil, err
	}
	if err := CheckJSONDepth(in.Body, a.limits.MaxJSONDepth); err != nil {
		return nil, nil, err
	}
	parsed, err := kinehook.ParseStrict(in.Body)
	if err != nil {
		return nil, nil, ValidationError(err)
	}
	return &kinehook.Event{
		ID:             kinehook.NewID(kinehook.PrefixEvent),
		Type:           parsed.Type,
		Payload:        in.Body,
		ResourceKey:    parsed.ResourceKey(),
		IdempotencyKey: in.IdempotencyKey,
		CreatedAt:      now,
		Trace:          CheckTrace(in.Trace),
		State:          stateOf(parsed),
	}, parsed.Raw, nil
}

// PublishBatch accepts a batch of events, {"events": [{"event","data",
// "idempotency_key"?}, ...]}: each is validated as PublishEvent validates a
// body, and all are stored in one commit, or none (the first invalid one is
// named by index). Deliveries follow the batch's order. Every event keeps
// the request's trace context.
func (a *App) PublishBatch(ctx context.Context, pid string, body []byte, projectKnown bool, trace kinehook.TraceContext) ([]Published, error) {
	evs, err := a.ParseBatch(body, pid)
	if err != nil {
		return nil, err
	}
	if tc := CheckTrace(trace); tc != nil {
		for _, ev := range evs {
			ev.Trace = tc
		}
	}
	if err := a.projectExists(ctx, pid, projectKnown); err != nil {
		return nil, err
	}
	results, err := a.disp.PublishBatch(ctx, evs)
	if err != nil {
		return nil, fmt.Errorf("publish events: %w", err)
	}
	out := make([]Published, len(evs))
	for i, ev := range evs {
		p := Published{Event: results[i].Event, Duplicate: results[i].Duplicate, Deliveries: len(results[i].Deliveries)}
		if p.Event == nil {
			p.Event = ev
		}
		if !p.Duplicate {
			p.Data = DataOf(ev.Payload)
		}
		out[i] = p
	}
	return out, nil
}

// projectExists is ENOTFOUND (or the store's error) when a project the
// caller does not already know of does not exist.
func (a *App) projectExists(ctx context.Context, pid string, known bool) error {
	if known {
		return nil
	}
	if _, err := a.store.GetProject(ctx, pid); err != nil {
		return fmt.Errorf("get project: %w", err)
	}
	return nil
}

// DataOf returns the "data" member of a stored payload ({} when it has none).
func DataOf(payload []byte) json.RawMessage {
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	if json.Unmarshal(payload, &env) != nil || len(env.Data) == 0 {
		return json.RawMessage("{}")
	}
	return env.Data
}

// ValidationError turns a parse error into EMALFORMED (not JSON) or
// EINVALID naming the field.
func ValidationError(err error) error {
	var ve *kinehook.ValidationError
	if errors.As(err, &ve) {
		if ve.Malformed {
			return &kinehook.Error{Code: kinehook.EMALFORMED, Field: ve.Field, Message: err.Error()}
		}
		return &kinehook.Error{Code: kinehook.EINVALID, Field: ve.Field, Message: err.Error()}
	}
	var ke *kinehook.Error
	if errors.As(err, &ke) {
		return ke
	}
	return &kinehook.Error{Code: kinehook.EMALFORMED, Field: "body", Message: err.Error()}
}

// ListEvents pages a project's events newest first, payloads included; it
// returns the next cursor ("" at the end).
func (a *App) ListEvents(ctx context.Context, pid string, f kinehook.EventFilter, projectKnown bool) ([]*kinehook.Event, string, error) {
	if err := a.projectExists(ctx, pid, projectKnown); err != nil {
		return nil, "", err
	}
	evs, next, err := a.store.ListEvents(ctx, pid, f)
	if err != nil {
		return nil, "", err
	}
	if err := a.fillPayloads(ctx, evs); err != nil {
		return nil, "", err
	}
	return evs, next, nil
}

// GetEvent returns one event of a project, payload included.
func (a *App) GetEvent(ctx context.Context, pid, id string) (*kinehook.Event, error) {
	ev, err := a.store.GetEvent(ctx, pid, id)
	if err != nil {
		return nil, fmt.Errorf("get event: %w", err)
	}
	if err := a.fillPayloads(ctx, []*kinehook.Event{ev}); err != nil {
		return nil, err
	}
	return ev, nil
}

// fillPayloads loads payloads a store left out of a listing (one read).
func (a *App) fillPayloads(ctx context.Context, evs []*kinehook.Event) error {
	var missing []string
	for _, ev := range evs {
		if len(ev.Payload) == 0 {
			missing = append(missing, ev.ID)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	m, err := a.store.EventPayloads(ctx, missing)
	if err != nil {
		return fmt.Errorf("event payloads: %w", err)
	}
	for _, ev := range evs {
		if len(ev.Payload) == 0 {
			ev.Payload = m[ev.ID]
		}
	}
	return nil
}

// stateOf is what a parsed event says about state, for the store (which
// then need not parse the payload again).
func stateOf(p *kinehook.ParsedEvent) *kinehook.StateUpdate {
	if u := kinehook.StateUpdateOf(p); u != nil {
		return u
	}
	return kinehook.NoState
}
