package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	nethttp "net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/internal/jsonshape"
)

// Event list paging.
const (
	defaultPageLimit  = 50
	maxPageLimit      = 1000
	maxIdempotencyKey = 255
)

// eventView is an event in answers: the contract's {"id","event","data",
// "created_at"} and the resource key it is ordered by.
type eventView struct {
	ID          string             `json:"id"`
	Event       kinehook.EventType `json:"event"`
	Data        json.RawMessage    `json:"data"`
	CreatedAt   time.Time          `json:"created_at"`
	ResourceKey string             `json:"resource_key,omitempty"`
}

// dataOf returns the "data" member of a stored payload.
func dataOf(payload []byte) json.RawMessage {
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	if json.Unmarshal(payload, &env) != nil || len(env.Data) == 0 {
		return json.RawMessage("{}")
	}
	return env.Data
}

func viewEvent(ev *kinehook.Event, data json.RawMessage) eventView {
	if data == nil {
		data = dataOf(ev.Payload)
	}
	return eventView{ID: ev.ID, Event: ev.Type, Data: data, CreatedAt: ev.CreatedAt.UTC(), ResourceKey: ev.ResourceKey}
}

// createEvent accepts one event: strict validation, then a durable publish
// (the answer comes after the commit).
func (s *Server) createEvent(w nethttp.ResponseWriter, r *nethttp.Request, p *principal) {
	pid := projectID(r, p)
	idemKey := r.Header.Get("Idempotency-Key")
	if len(idemKey) > maxIdempotencyKey || !utf8.ValidString(idemKey) {
		writeError(w, &kinehook.Error{Code: kinehook.EINVALID, Field: "Idempotency-Key", Message: fmt.Sprintf("Idempotency-Key must be valid UTF-8 of at most %d bytes", maxIdempotencyKey)})
		return
	}
	body, err := s.readBody(w, r)
	if err != nil {
		writeError(w, err)
		return
	}
	if err := checkDepth(body, s.cfg.MaxJSONDepth); err != nil {
		writeError(w, err)
		return
	}
	parsed, err := kinehook.ParseStrict(body)
	if err != nil {
		writeError(w, validationError(err))
		return
	}
	if !s.projectExists(w, r, p, pid) {
		return
	}
	ev := &kinehook.Event{
		ID:             kinehook.NewID(kinehook.PrefixEvent),
		ProjectID:      pid,
		Type:           parsed.Type,
		Payload:        body,
		ResourceKey:    parsed.ResourceKey(),
		IdempotencyKey: idemKey,
		CreatedAt:      s.now().UTC(),
	}
	res, err := s.disp.Publish(r.Context(), ev)
	if err != nil {
		s.internal(w, "publish event", err)
		return
	}
	stored := res.Event
	if stored == nil {
		stored = ev
	}
	var data json.RawMessage
	if !res.Duplicate {
		data = parsed.Raw
	}
	if res.Duplicate {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	writeJSON(w, nethttp.StatusAccepted, viewEvent(stored, data))
}

// projectExists answers 404 (or the store's error) and returns false when the
// admin key names a project that does not exist; a project key was already
// checked against its own project.
func (s *Server) projectExists(w nethttp.ResponseWriter, r *nethttp.Request, p *principal, pid string) bool {
	if p == nil || !p.admin {
		return true
	}
	if _, err := s.store.GetProject(r.Context(), pid); err != nil {
		s.internal(w, "get project", err)
		return false
	}
	return true
}

// validationError turns a parse error into a 400 (not JSON) or a 422 naming
// the field.
func validationError(err error) error {
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

func (s *Server) listEvents(w nethttp.ResponseWriter, r *nethttp.Request, p *principal) {
	pid := projectID(r, p)
	f, err := eventFilter(r)
	if err != nil {
		writeError(w, err)
		return
	}
	if !s.projectExists(w, r, p, pid) {
		return
	}
	evs, next, err := s.store.ListEvents(r.Context(), pid, f)
	if err != nil {
		if kinehook.ErrorCode(err) == kinehook.EINTERNAL {
			s.internal(w, "list events", err)
			return
		}
		writeError(w, err)
		return
	}
	if err := s.fillPayloads(r, evs); err != nil {
		s.internal(w, "read event payloads", err)
		return
	}
	out := views(evs, func(ev *kinehook.Event) eventView { return viewEvent(ev, nil) })
	writeJSON(w, nethttp.StatusOK, pageBody[eventView]{Data: out, NextCursor: next})
}

// fillPayloads loads payloads a store left out of a listing.
func (s *Server) fillPayloads(r *nethttp.Request, evs []*kinehook.Event) error {
	var missing []string
	for _, ev := range evs {
		if len(ev.Payload) == 0 {
			missing = append(missing, ev.ID)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	m, err := s.store.EventPayloads(r.Context(), missing)
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

// eventFilter reads the query of the event list: limit, cursor, event,
// resource_id, status, since, until.
func eventFilter(r *nethttp.Request) (kinehook.EventFilter, error) {
	q := r.URL.Query()
	f := kinehook.EventFilter{Limit: defaultPageLimit, Cursor: q.Get("cursor")}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPageLimit {
			return f, &kinehook.Error{Code: kinehook.EINVALID, Field: "limit", Message: fmt.Sprintf("limit must be an integer from 1 to %d", maxPageLimit)}
		}
		f.Limit = n
	}
	if v := q.Get("event"); v != "" {
		if t := kinehook.EventType(v); !t.Known() && !t.Operational() {
			return f, &kinehook.Error{Code: kinehook.EINVALID, Field: "event", Message: fmt.Sprintf("unknown event type %q; expected one of %v or %v", v, kinehook.EventTypes, kinehook.OperationalEventTypes)}
		}
		f.Type = kinehook.EventType(v)
	}
	f.ResourceKey = q.Get("resource_id")
	if v := q.Get("status"); v != "" {
		st := kinehook.DeliveryStatus(v)
		switch st {
		case kinehook.DeliveryPending, kinehook.DeliveryRetrying, kinehook.DeliverySucceeded, kinehook.DeliveryFailed:
			f.DeliveryStatus = st
		default:
			return f, &kinehook.Error{Code: kinehook.EINVALID, Field: "status", Message: "status must be pending, retrying, succeeded or failed"}
		}
	}
	for _, tf := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		v := q.Get(tf.name)
		if v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, strings.Replace(v, " ", "+", 1))
		if err != nil {
			return f, &kinehook.Error{Code: kinehook.EINVALID, Field: tf.name, Message: tf.name + " must be an RFC 3339 time, e.g. 2026-01-02T15:04:05Z"}
		}
		*tf.dst = t
	}
	return f, nil
}

func (s *Server) getEvent(w nethttp.ResponseWriter, r *nethttp.Request, p *principal) {
	ev, err := s.store.GetEvent(r.Context(), projectID(r, p), r.PathValue("id"))
	if err != nil {
		s.internal(w, "get event", err)
		return
	}
	if err := s.fillPayloads(r, []*kinehook.Event{ev}); err != nil {
		s.internal(w, "read event payload", err)
		return
	}
	writeJSON(w, nethttp.StatusOK, viewEvent(ev, nil))
}

// batchEventView is one event of a batch's answer: the event, and whether an
// idempotency key made it a replay of an earlier one.
type batchEventView struct {
	eventView
	Replayed bool `json:"replayed,omitempty"`
}

// createEvents accepts a batch of events, {"events": [{"event","data",
// "idempotency_key"?}, ...]}: each is validated as POST .../events validates
// a body, and all are stored in one commit, or none (the first invalid one is
// named by index). Deliveries follow the batch's order.
func (s *Server) createEvents(w nethttp.ResponseWriter, r *nethttp.Request, p *principal) {
	pid := projectID(r, p)
	if _, given := r.Header[nethttp.CanonicalHeaderKey("Idempotency-Key")]; given {
		writeError(w, &kinehook.Error{Code: kinehook.EMALFORMED, Field: "Idempotency-Key", Message: `a batch takes no Idempotency-Key header; give each event its own "idempotency_key"`})
		return
	}
	body, err := readLimited(w, r, s.cfg.MaxBatchBytes)
	if err != nil {
		writeError(w, err)
		return
	}
	evs, err := s.parseBatch(body, pid)
	if err != nil {
		writeError(w, err)
		return
	}
	if !s.projectExists(w, r, p, pid) {
		return
	}
	results, err := s.disp.PublishBatch(r.Context(), evs)
	if err != nil {
		s.internal(w, "publish events", err)
		return
	}
	out := make([]batchEventView, len(evs))
	for i, ev := range evs {
		stored, data := results[i].Event, json.RawMessage(nil)
		if stored == nil {
			stored = ev
		}
		if !results[i].Duplicate {
			data = dataOf(ev.Payload)
		}
		out[i] = batchEventView{eventView: viewEvent(stored, data), Replayed: results[i].Duplicate}
	}
	writeJSON(w, nethttp.StatusAccepted, listBody[batchEventView]{Data: out})
}

// parseBatch checks a batch body and returns its events, ready to publish.
// Each event's body is rebuilt as {"event":...,"data":...} from the members
// as posted (the data's bytes unchanged) and held to ParseStrict.
func (s *Server) parseBatch(body []byte, pid string) ([]*kinehook.Event, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, &kinehook.Error{Code: kinehook.EMALFORMED, Field: "body", Message: `request body is empty; expected {"events": [...]}`}
	}
	// The batch wraps each event in two more levels than a single body;
	// the limit (and the message) is the single body's.
	if depth, _ := jsonshape.Of(body); depth > s.cfg.MaxJSONDepth+2 {
		return nil, &kinehook.Error{Code: kinehook.EMALFORMED, Field: "body", Message: fmt.Sprintf("an event of the batch is nested deeper than %d levels", s.cfg.MaxJSONDepth)}
	}
	if err := checkStrictText(body); err != nil {
		return nil, err
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return nil, jsonError(err)
	}
	if top == nil { // null
		return nil, &kinehook.Error{Code: kinehook.EMALFORMED, Field: "body", Message: `expected a JSON object {"events": [...]}`}
	}
	for k := range top {
		if k != "events" {
			return nil, &kinehook.Error{Code: kinehook.EINVALID, Field: k, Message: fmt.Sprintf(`unknown field %q; a batch is {"events": [...]}`, k)}
		}
	}
	var items []json.RawMessage
	if raw, ok := top["events"]; !ok || json.Unmarshal(raw, &items) != nil || items == nil {
		return nil, &kinehook.Error{Code: kinehook.EINVALID, Field: "events", Message: "events must be an array of events"}
	}
	switch {
	case len(items) == 0:
		return nil, &kinehook.Error{Code: kinehook.EINVALID, Field: "events", Message: "events is empty; a batch holds 1 or more events"}
	case len(items) > s.cfg.MaxBatchEvents:
		return nil, &kinehook.Error{Code: kinehook.ETOOLARGE, Field: "events", Message: fmt.Sprintf("a batch holds at most %d events, not %d", s.cfg.MaxBatchEvents, len(items))}
	}
	now := s.now().UTC()
	evs := make([]*kinehook.Event, len(items))
	for i, item := range items {
		ev, err := s.batchItem(item, i)
		if err != nil {
			return nil, err
		}
		ev.ID = kinehook.NewID(kinehook.PrefixEvent)
		ev.ProjectID = pid
		ev.CreatedAt = now
		evs[i] = ev
	}
	return evs, nil
}

// headerLikeKey reports whether k is a key the Idempotency-Key header of
// POST .../events could carry as it is, so that both routes share one set of
// keys: 1 to maxIdempotencyKey bytes, no ASCII control character but tab
// (and so no NUL, which PostgreSQL cannot store), nothing a header parser
// would trim (a space or tab at either end).
func headerLikeKey(k string) bool {
	if k == "" || len(k) > maxIdempotencyKey || strings.Trim(k, " \t") != k {
		return false
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// batchItem validates the i-th event of a batch.
func (s *Server) batchItem(item json.RawMessage, i int) (*kinehook.Event, error) {
	at := fmt.Sprintf("events[%d]", i)
	var members map[string]json.RawMessage
	if json.Unmarshal(item, &members) != nil || members == nil {
		return nil, &kinehook.Error{Code: kinehook.EMALFORMED, Field: at, Message: at + ` must be an object {"event": TYPE, "data": {...}}`}
	}
	var idemKey string
	if raw, ok := members["idempotency_key"]; ok {
		if json.Unmarshal(raw, &idemKey) != nil || !headerLikeKey(idemKey) {
			return nil, &kinehook.Error{Code: kinehook.EINVALID, Field: at + ".idempotency_key", Message: fmt.Sprintf("%s.idempotency_key must be a string of 1 to %d bytes that an Idempotency-Key header could carry: no ASCII control character but tab, no space or tab at either end", at, maxIdempotencyKey)}
		}
		delete(members, "idempotency_key")
	}
	for _, k := range slices.Sorted(maps.Keys(members)) {
		if k != "event" && k != "data" {
			return nil, &kinehook.Error{Code: kinehook.EINVALID, Field: at + "." + k, Message: fmt.Sprintf(`%s: unknown field %q; an event of a batch is {"event", "data", "idempotency_key"?}`, at, k)}
		}
	}
	// Rebuild the webhook body from the members as posted (the bytes of
	// each unchanged); ParseStrict names what is missing or wrong.
	var b bytes.Buffer
	b.Grow(len(item))
	b.WriteByte('{')
	for _, k := range []string{"event", "data"} {
		if raw, ok := members[k]; ok {
			if b.Len() > 1 {
				b.WriteByte(',')
			}
			b.WriteString(`"` + k + `":`)
			b.Write(raw)
		}
	}
	b.WriteByte('}')
	payload := b.Bytes()
	if int64(len(payload)) > s.cfg.MaxBodyBytes {
		return nil, &kinehook.Error{Code: kinehook.ETOOLARGE, Field: at, Message: fmt.Sprintf("%s is larger than %d bytes", at, s.cfg.MaxBodyBytes)}
	}
	parsed, err := kinehook.ParseStrict(payload)
	if err != nil {
		ke, _ := validationError(err).(*kinehook.Error)
		if ke == nil {
			return nil, err
		}
		field := at
		if ke.Field != "" && ke.Field != "body" {
			field += "." + ke.Field
		}
		return nil, &kinehook.Error{Code: ke.Code, Field: field, Message: at + ": " + ke.Message}
	}
	return &kinehook.Event{
		Type:           parsed.Type,
		Payload:        payload,
		ResourceKey:    parsed.ResourceKey(),
		IdempotencyKey: idemKey,
	}, nil
}
