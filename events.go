package kinehook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
)

// EventType is the "event" field of a webhook body.
type EventType string

// The event types of Kinescope's webhook catalog.
const (
	EventMediaUpdateStatus EventType = "media.update.status"
	EventLiveCreated       EventType = "live.created"
	EventLiveConnected     EventType = "live.connected"
	EventLiveDisconnected  EventType = "live.disconnected"
	EventLiveFinished      EventType = "live.finished"
	EventLiveCancelled     EventType = "live.cancelled"
	EventLiveEnabled       EventType = "live.enabled"
)

// EventTypes lists the catalog's event types in documentation order.
var EventTypes = []EventType{
	EventMediaUpdateStatus,
	EventLiveCreated,
	EventLiveConnected,
	EventLiveDisconnected,
	EventLiveFinished,
	EventLiveCancelled,
	EventLiveEnabled,
}

// Known reports whether t is in the catalog.
func (t EventType) Known() bool { return slices.Contains(EventTypes, t) }

// IsLive reports whether t is a live-stream event (data.event_id).
func (t EventType) IsLive() bool { return len(t) > 5 && t[:5] == "live." }

// MediaStatus is the status of a video in media.update.status.
type MediaStatus string

// The media statuses of the catalog.
const (
	StatusPending       MediaStatus = "pending"
	StatusUploading     MediaStatus = "uploading"
	StatusPreProcessing MediaStatus = "pre-processing"
	StatusProcessing    MediaStatus = "processing"
	StatusAborted       MediaStatus = "aborted"
	StatusDone          MediaStatus = "done"
	StatusError         MediaStatus = "error"
	StatusSuspended     MediaStatus = "suspended"
)

// MediaStatuses lists the catalog's media statuses in documentation order.
var MediaStatuses = []MediaStatus{
	StatusPending, StatusUploading, StatusPreProcessing, StatusProcessing,
	StatusAborted, StatusDone, StatusError, StatusSuspended,
}

// Known reports whether s is in the catalog.
func (s MediaStatus) Known() bool { return slices.Contains(MediaStatuses, s) }

// MediaData is the data of media.update.status.
type MediaData struct {
	ID     string      `json:"id"`
	Status MediaStatus `json:"status"`
	// Message explains an error status.
	Message string `json:"message,omitempty"`
}

// LiveData is the data of every live.* event. VideoID, the recording, comes
// only with live.finished, and only when recording was enabled.
type LiveData struct {
	EventID string `json:"event_id"`
	VideoID string `json:"video_id,omitempty"`
}

// Envelope is a webhook body exactly as Kinescope sends it.
type Envelope struct {
	Event EventType       `json:"event"`
	Data  json.RawMessage `json:"data"`
}

// ParsedEvent is a parsed webhook body. Exactly one of Media and Live is set
// for known types; for unknown types only Raw is meaningful.
type ParsedEvent struct {
	Type  EventType
	Media *MediaData
	Live  *LiveData
	// Raw is the data object as received.
	Raw json.RawMessage
	// UnknownType and UnknownStatus flag values outside the catalog (lenient parsing only).
	UnknownType   bool
	UnknownStatus bool
}

// ResourceKey is what the event is about: the video id for media events,
// the live event id for live events. Deliveries are ordered per resource key.
func (e *ParsedEvent) ResourceKey() string {
	switch {
	case e.Media != nil:
		return e.Media.ID
	case e.Live != nil:
		return e.Live.EventID
	}
	return resourceKeyOf(e.Raw)
}

// resourceKeyOf digs the id or event_id out of an unknown event's data.
func resourceKeyOf(raw json.RawMessage) string {
	var d struct {
		ID      any `json:"id"`
		EventID any `json:"event_id"`
	}
	if json.Unmarshal(raw, &d) != nil {
		return ""
	}
	if s, ok := d.ID.(string); ok && s != "" {
		return s
	}
	if s, ok := d.EventID.(string); ok {
		return s
	}
	return ""
}

// ValidationError says which field is wrong and what was expected.
type ValidationError struct {
	Field    string // JSON path, e.g. "data.status"
	Expected string
	// Malformed is true when the input is not a JSON object at all.
	Malformed bool
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("%s: expected %s", e.Field, e.Expected)
}

// ParseStrict parses a body for producers: the type must be in the catalog,
// required fields present and non-empty, the status known, and no unknown
// fields anywhere.
func ParseStrict(body []byte) (*ParsedEvent, error) { return parse(body, true) }

// ParseLenient parses a body for receivers: unknown event types and status
// values are passed on and flagged, not rejected; unknown fields are ignored.
// Malformed JSON and missing required fields of known types are still errors.
func ParseLenient(body []byte) (*ParsedEvent, error) { return parse(body, false) }

func parse(body []byte, strict bool) (*ParsedEvent, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil || top == nil {
		return nil, &ValidationError{Field: "body", Expected: "a JSON object {\"event\": TYPE, \"data\": {...}}", Malformed: true}
	}
	if strict {
		for k := range top {
			if k != "event" && k != "data" {
				return nil, &ValidationError{Field: k, Expected: "no field other than \"event\" and \"data\""}
			}
		}
	}
	rawType, ok := top["event"]
	var typ string
	if !ok || json.Unmarshal(rawType, &typ) != nil || typ == "" {
		return nil, &ValidationError{Field: "event", Expected: "a non-empty string naming the event type"}
	}
	ev := &ParsedEvent{Type: EventType(typ)}
	rawData, ok := top["data"]
	if !ok || len(rawData) == 0 || rawData[0] != '{' {
		return nil, &ValidationError{Field: "data", Expected: "a JSON object"}
	}
	ev.Raw = rawData
	if !ev.Type.Known() {
		if strict {
			return nil, &ValidationError{Field: "event", Expected: fmt.Sprintf("one of %v, got %q", EventTypes, typ)}
		}
		ev.UnknownType = true
		return ev, nil
	}
	dec := json.NewDecoder(bytes.NewReader(rawData))
	if strict {
		dec.DisallowUnknownFields()
	}
	if ev.Type == EventMediaUpdateStatus {
		var m MediaData
		if err := decodeData(dec, &m); err != nil {
			return nil, err
		}
		switch {
		case m.ID == "":
			return nil, &ValidationError{Field: "data.id", Expected: "a non-empty string (the video id)"}
		case m.Status == "":
			return nil, &ValidationError{Field: "data.status", Expected: fmt.Sprintf("one of %v", MediaStatuses)}
		case !m.Status.Known():
			if strict {
				return nil, &ValidationError{Field: "data.status", Expected: fmt.Sprintf("one of %v, got %q", MediaStatuses, m.Status)}
			}
			ev.UnknownStatus = true
		}
		ev.Media = &m
		return ev, nil
	}
	var l LiveData
	if err := decodeData(dec, &l); err != nil {
		return nil, err
	}
	if l.EventID == "" {
		return nil, &ValidationError{Field: "data.event_id", Expected: "a non-empty string (the live event id)"}
	}
	if strict && l.VideoID != "" && ev.Type != EventLiveFinished {
		return nil, &ValidationError{Field: "data.video_id", Expected: "no video_id except on live.finished"}
	}
	ev.Live = &l
	return ev, nil
}

func decodeData(dec *json.Decoder, v any) error {
	err := dec.Decode(v)
	if err == nil {
		if _, terr := dec.Token(); !errors.Is(terr, io.EOF) {
			return &ValidationError{Field: "data", Expected: "a single JSON object"}
		}
		return nil
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return &ValidationError{Field: "data." + te.Field, Expected: "a " + te.Type.String()}
	}
	if msg := err.Error(); len(msg) > 0 && bytes.Contains([]byte(msg), []byte("unknown field")) {
		return &ValidationError{Field: "data", Expected: "no unknown fields (" + msg + ")"}
	}
	return &ValidationError{Field: "data", Expected: "a JSON object", Malformed: true}
}
