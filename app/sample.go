package app

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"time"

	"github.com/kinehook/kinehook"
)

// randomUUID returns a random (version 4) UUID, the shape of Kinescope's
// video and live event ids.
func randomUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// sampleBody returns the catalog's example body for t (kinehook.SampleEvent)
// with fresh resource ids. Deliveries are ordered per resource, so test events
// sharing the example's fixed id would queue behind one that is retrying;
// fresh ids keep every test event independent.
func sampleBody(t kinehook.EventType) ([]byte, error) {
	ex := kinehook.SampleEvent(t)
	if ex == nil {
		return nil, fmt.Errorf("sample event: unknown type %q", t)
	}
	var body struct {
		Event kinehook.EventType         `json:"event"`
		Data  map[string]json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(ex, &body); err != nil {
		return nil, fmt.Errorf("sample event %s: %w", t, err)
	}
	for _, k := range []string{"id", "event_id", "video_id"} {
		if _, ok := body.Data[k]; ok {
			id, _ := json.Marshal(randomUUID())
			body.Data[k] = id
		}
	}
	out, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("sample event %s: %w", t, err)
	}
	return out, nil
}

// sampleEvent builds a test event for the project, validated as the API
// validates posted events.
func sampleEvent(projectID string, t kinehook.EventType, now time.Time) (*kinehook.Event, error) {
	body, err := sampleBody(t)
	if err != nil {
		return nil, err
	}
	parsed, err := kinehook.ParseStrict(body)
	if err != nil {
		return nil, fmt.Errorf("sample event %s: %w", t, err)
	}
	return &kinehook.Event{
		ID:          kinehook.NewID(kinehook.PrefixEvent),
		ProjectID:   projectID,
		Type:        t,
		Payload:     body,
		ResourceKey: parsed.ResourceKey(),
		CreatedAt:   now.UTC(),
	}, nil
}

// Test-event refusals, distinguished by their field so that an adapter can
// word them its own way.
const (
	// FieldTestType: the type is not in the catalog.
	FieldTestType = "type"
	// FieldTestFilter: the endpoint's filter does not select the type.
	FieldTestFilter = "event_types"
	// FieldTestDisabled: the endpoint is disabled.
	FieldTestDisabled = "disabled"
)

// SendTestEvent publishes a sample event of type t for an endpoint. It is a
// real event of the project, so every endpoint whose filter selects the
// type gets it; the endpoint must be enabled and select t.
func (a *App) SendTestEvent(ctx context.Context, pid, eid string, t kinehook.EventType) (kinehook.IngestResult, error) {
	e, err := a.store.GetEndpoint(ctx, pid, eid)
	if err != nil {
		return kinehook.IngestResult{}, fmt.Errorf("get endpoint: %w", err)
	}
	switch {
	case !t.Known():
		return kinehook.IngestResult{}, &kinehook.Error{Code: kinehook.EINVALID, Field: FieldTestType, Message: fmt.Sprintf("unknown event type %q; expected one of %v", t, kinehook.EventTypes)}
	case !e.Matches(t):
		return kinehook.IngestResult{}, &kinehook.Error{Code: kinehook.EINVALID, Field: FieldTestFilter, Message: fmt.Sprintf("the endpoint's filter does not select %s", t)}
	case e.Disabled:
		return kinehook.IngestResult{}, &kinehook.Error{Code: kinehook.ECONFLICT, Field: FieldTestDisabled, Message: "the endpoint is disabled"}
	}
	ev, err := sampleEvent(pid, t, a.now())
	if err != nil {
		return kinehook.IngestResult{}, err
	}
	res, err := a.disp.Publish(ctx, ev)
	if err != nil {
		return kinehook.IngestResult{}, fmt.Errorf("publish test event: %w", err)
	}
	return res, nil
}
