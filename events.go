package kinehook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/kinehook/kinehook/internal/jsonshape"
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

// kinehook's own event types: operational events about a project's
// endpoints. They are not Kinescope's (the API refuses them from clients):
// the server records them in the project's event log and delivers them to
// the endpoints that name them in event_types ("endpoint.*" or one type),
// such as the one a project's operations_url makes.
const (
	EventEndpointDisabled  EventType = "endpoint.disabled"
	EventEndpointRecovered EventType = "endpoint.recovered"
)

// OperationalEventTypes lists kinehook's own event types.
var OperationalEventTypes = []EventType{EventEndpointDisabled, EventEndpointRecovered}

// Operational reports whether t is one of kinehook's own event types.
func (t EventType) Operational() bool { return slices.Contains(OperationalEventTypes, t) }

// OperationsEndpointID is the id of the endpoint a project's operations_url
// makes: the server creates, changes and removes it with that setting, and
// it receives the project's operational events.
func OperationsEndpointID(projectID string) string {
	return PrefixEndpoint + "_ops_" + strings.TrimPrefix(projectID, PrefixProject+"_")
}

// OperationsURLCleared is the disabled_reason of an operations endpoint
// whose project's operations_url was cleared; setting it again enables it.
const OperationsURLCleared = "the project's operations_url is not set"

// IsOperationsEndpoint reports whether id is an endpoint an operations_url
// made (OperationsEndpointID).
func IsOperationsEndpoint(id string) bool { return strings.HasPrefix(id, PrefixEndpoint+"_ops_") }

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
	// Operational is the data of kinehook's own endpoint.disabled and
	// endpoint.recovered (lenient parsing only: they are not Kinescope's).
	Operational *OperationalData
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
	case e.Operational != nil:
		return e.Operational.EndpointID
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
	// Got describes what was found, when that helps ("missing", `"failed"`).
	Got string
	// Malformed is true when the input is not a JSON object at all, or (for
	// ParseStrict) not strict JSON: not UTF-8, or a key given twice.
	Malformed bool
}

// Error reads "FIELD: expected WHAT[, got WHAT]".
func (e *ValidationError) Error() string {
	if e.Got != "" {
		return fmt.Sprintf("%s: expected %s, got %s", e.Field, e.Expected, e.Got)
	}
	return fmt.Sprintf("%s: expected %s", e.Field, e.Expected)
}

// ParseStrict parses a body for producers: the body must be UTF-8, without
// unpaired \u surrogate escapes, with each key once (encoding/json would
// quietly read bad bytes and lone surrogates as U+FFFD and keep the last of
// two keys, while the body is delivered as posted and other parsers differ), the type must be in the catalog, required fields present and
// non-empty, the status known, and no unknown fields anywhere. A body
// ParseStrict accepts is valid against the type's JSON Schema in Catalog,
// and a UTF-8 body with unique keys valid against it is accepted.
func ParseStrict(body []byte) (*ParsedEvent, error) { return parse(body, true) }

// ParseLenient parses a body for receivers: unknown event types and status
// values are passed on and flagged, not rejected; unknown fields are
// ignored, and an optional field that is null or not a string reads as
// absent. Malformed JSON, a missing or mistyped required field of a known
// type are still errors.
func ParseLenient(body []byte) (*ParsedEvent, error) { return parse(body, false) }

// describe names the JSON kind of a raw value, for error messages.
func describe(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '"':
		if len(raw) > 40 {
			return "a string " + string(raw[:37]) + `..."`
		}
		if string(raw) == `""` {
			return "an empty string"
		}
		return "the string " + string(raw)
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// stringField decodes the string at key of obj. present reports whether the
// key exists; a present non-string is an error naming path.
func stringField(obj map[string]json.RawMessage, key, path string) (s string, present bool, err error) {
	raw, ok := obj[key]
	if !ok {
		return "", false, nil
	}
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", true, &ValidationError{Field: path, Expected: "a string", Got: describe(raw)}
	}
	return s, true, nil
}

// optionalString decodes an optional string field. Strictly it must be a
// string when present; leniently a null or any other value reads as absent
// (a sender's "video_id": null means no recording, and a receiver should not
// refuse an event over a field it can do without).
func optionalString(obj map[string]json.RawMessage, key, path string, strict bool) (string, error) {
	s, _, err := stringField(obj, key, path)
	if err != nil && !strict {
		return "", nil
	}
	return s, err
}

// requiredString decodes a required, non-empty string field.
func requiredString(obj map[string]json.RawMessage, key, path, what string) (string, error) {
	s, present, err := stringField(obj, key, path)
	switch {
	case err != nil:
		err.(*ValidationError).Expected = "a non-empty string (" + what + ")"
		return "", err
	case !present:
		return "", &ValidationError{Field: path, Expected: "a non-empty string (" + what + ")", Got: "missing"}
	case s == "":
		return "", &ValidationError{Field: path, Expected: "a non-empty string (" + what + ")", Got: "an empty string"}
	}
	return s, nil
}

// rejectUnknown fails on the first key of obj (in sorted order) not in allowed.
func rejectUnknown(obj map[string]json.RawMessage, prefix string, allowed ...string) error {
	var unknown []string
	for k := range obj {
		if !slices.Contains(allowed, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	quoted := make([]string, len(allowed))
	for i, a := range allowed {
		quoted[i] = strconv.Quote(a)
	}
	name := unknown[0]
	if name == "" || strings.ContainsAny(name, ". \"") {
		name = strconv.Quote(name)
	}
	return &ValidationError{Field: prefix + name, Expected: "no field other than " + strings.Join(quoted, ", "), Got: "an unknown field"}
}

// rejectDuplicates fails when the JSON object obj, which decoded into m,
// holds more members than m has keys: a key was given twice. Only the
// object's own members are counted; deeper objects cannot pass ParseStrict
// (every known field is a string), so they are not looked into.
func rejectDuplicates(obj []byte, m map[string]json.RawMessage, field string) error {
	if _, n := jsonshape.Of(obj); n == len(m) {
		return nil
	}
	return &ValidationError{Field: field, Expected: "each key once", Got: "the key " + strconv.Quote(duplicateKey(obj)) + " twice", Malformed: true}
}

// duplicateKey names the first key of the valid JSON object obj that comes
// a second time (keys compared decoded, so "\u0065vent" repeats "event").
// It runs only on the error path.
func duplicateKey(obj []byte) string {
	dec := json.NewDecoder(bytes.NewReader(obj))
	seen := map[string]bool{}
	if _, err := dec.Token(); err != nil { // {
		return ""
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return ""
		}
		k, _ := t.(string)
		if seen[k] {
			return k
		}
		seen[k] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return ""
		}
	}
	return ""
}

// invalidUTF8At is the offset of the first byte of b that does not start a
// valid UTF-8 sequence, or -1.
func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return -1
}

// statusListText is statusList made once: every media event's parse passes
// it along, and only an error uses it.
var statusListText = sync.OnceValue(statusList)

func statusList() string {
	s := make([]string, len(MediaStatuses))
	for i, m := range MediaStatuses {
		s[i] = string(m)
	}
	return "one of " + strings.Join(s, ", ")
}

func typeList() string {
	s := make([]string, len(EventTypes))
	for i, t := range EventTypes {
		s[i] = string(t)
	}
	return "one of " + strings.Join(s, ", ")
}

func parse(body []byte, strict bool) (*ParsedEvent, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil || top == nil {
		return nil, &ValidationError{Field: "body", Expected: `a JSON object {"event": TYPE, "data": {...}}`, Got: malformedWhat(body, err), Malformed: true}
	}
	if strict {
		if !utf8.Valid(body) {
			return nil, &ValidationError{Field: "body", Expected: "UTF-8 text", Got: fmt.Sprintf("a byte that is not UTF-8 at offset %d", invalidUTF8At(body)), Malformed: true}
		}
		if at := jsonshape.LoneSurrogateAt(body); at >= 0 {
			// encoding/json reads it as U+FFFD, so two different ids
			// would share one resource key, and receivers see the escape.
			return nil, &ValidationError{Field: "body", Expected: "text that is Unicode (a \\u escape of a surrogate only as half of a pair)", Got: fmt.Sprintf("an unpaired surrogate escape at offset %d", at), Malformed: true}
		}
		if err := rejectDuplicates(body, top, "body"); err != nil {
			return nil, err
		}
		if err := rejectUnknown(top, "", "event", "data"); err != nil {
			return nil, err
		}
	}
	typ, err := requiredString(top, "event", "event", "the event type")
	if err != nil {
		return nil, err
	}
	ev := &ParsedEvent{Type: EventType(typ)}
	rawData, ok := top["data"]
	if !ok || len(rawData) == 0 || rawData[0] != '{' {
		got := "missing"
		if ok {
			got = describe(rawData)
		}
		return nil, &ValidationError{Field: "data", Expected: "a JSON object", Got: got}
	}
	ev.Raw = rawData
	var data map[string]json.RawMessage
	if err := json.Unmarshal(rawData, &data); err != nil {
		return nil, &ValidationError{Field: "data", Expected: "a JSON object", Got: malformedWhat(rawData, err), Malformed: true}
	}
	if strict {
		if err := rejectDuplicates(rawData, data, "data"); err != nil {
			return nil, err
		}
	}
	if !strict && ev.Type.Operational() {
		op, err := parseOperational(rawData)
		if err != nil {
			return nil, err
		}
		ev.Operational = op
		return ev, nil
	}
	if !ev.Type.Known() {
		if strict {
			return nil, &ValidationError{Field: "event", Expected: typeList(), Got: strconv.Quote(typ)}
		}
		ev.UnknownType = true
		return ev, nil
	}
	if ev.Type == EventMediaUpdateStatus {
		m, unknownStatus, err := parseMedia(data, strict)
		if err != nil {
			return nil, err
		}
		ev.Media, ev.UnknownStatus = m, unknownStatus
		return ev, nil
	}
	l, err := parseLive(ev.Type, data, strict)
	if err != nil {
		return nil, err
	}
	ev.Live = l
	return ev, nil
}

func parseMedia(data map[string]json.RawMessage, strict bool) (*MediaData, bool, error) {
	if strict {
		if err := rejectUnknown(data, "data.", "id", "status", "message"); err != nil {
			return nil, false, err
		}
	}
	id, err := requiredString(data, "id", "data.id", "the video id")
	if err != nil {
		return nil, false, err
	}
	status, err := requiredString(data, "status", "data.status", statusListText())
	if err != nil {
		return nil, false, err
	}
	msg, err := optionalString(data, "message", "data.message", strict)
	if err != nil {
		return nil, false, err
	}
	m := &MediaData{ID: id, Status: MediaStatus(status), Message: msg}
	if !m.Status.Known() {
		if strict {
			return nil, false, &ValidationError{Field: "data.status", Expected: statusList(), Got: strconv.Quote(status)}
		}
		return m, true, nil
	}
	return m, false, nil
}

func parseLive(t EventType, data map[string]json.RawMessage, strict bool) (*LiveData, error) {
	if strict {
		allowed := []string{"event_id"}
		if t == EventLiveFinished {
			allowed = append(allowed, "video_id")
		}
		if err := rejectUnknown(data, "data.", allowed...); err != nil {
			if err.(*ValidationError).Field == "data.video_id" {
				err.(*ValidationError).Expected = "no video_id except on live.finished"
			}
			return nil, err
		}
	}
	id, err := requiredString(data, "event_id", "data.event_id", "the live event id")
	if err != nil {
		return nil, err
	}
	l := &LiveData{EventID: id}
	if t == EventLiveFinished {
		// An empty video_id means "no recording", as does its absence.
		if l.VideoID, err = optionalString(data, "video_id", "data.video_id", strict); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// malformedWhat explains why body is not a JSON object.
func malformedWhat(body []byte, err error) string {
	trimmed := bytes.TrimSpace(body)
	switch {
	case len(trimmed) == 0:
		return "an empty body"
	case err == nil:
		return describe(trimmed)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("invalid JSON at byte %d (%v)", se.Offset, se)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return describe(trimmed)
	}
	return "invalid JSON (" + err.Error() + ")"
}
