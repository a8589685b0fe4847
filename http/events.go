package http

import (
	"encoding/json"
	"fmt"
	nethttp "net/http"
	"strconv"
	"strings"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/app"
)

// eventView is an event in answers: the contract's {"id","event","data",
// "created_at"} and the resource key it is ordered by.
type eventView struct {
	ID          string             `json:"id"`
	Event       kinehook.EventType `json:"event"`
	Data        json.RawMessage    `json:"data"`
	CreatedAt   time.Time          `json:"created_at"`
	ResourceKey string             `json:"resource_key,omitempty"`
	// TraceParent is the W3C traceparent the event was posted with.
	TraceParent string `json:"traceparent,omitempty"`
	// SourceID names the inbox source the event came through.
	SourceID string `json:"source_id,omitempty"`
	// Flags mark what the catalog does not know in an event an inbox
	// kept: "unknown_event_type", "unknown_status".
	Flags []string `json:"flags,omitempty"`
}

func viewEvent(ev *kinehook.Event, data json.RawMessage) eventView {
	if data == nil {
		data = app.DataOf(ev.Payload)
	}
	v := eventView{ID: ev.ID, Event: ev.Type, Data: data, CreatedAt: ev.CreatedAt.UTC(), ResourceKey: ev.ResourceKey,
		TraceParent: ev.Trace.TraceParent(), SourceID: ev.SourceID}
	if ev.SourceID != "" {
		v.Flags = app.InboxFlags(ev)
	}
	return v
}

// createEvent accepts one event: strict validation, then a durable publish
// (the answer comes after the commit).
func (s *Server) createEvent(w nethttp.ResponseWriter, r *nethttp.Request, p *app.Principal) {
	idemKey := r.Header.Get("Idempotency-Key")
	if err := app.CheckIdempotencyKey(idemKey); err != nil {
		writeError(w, err)
		return
	}
	body, err := s.readBody(w, r)
	if err != nil {
		writeError(w, err)
		return
	}
	res, err := s.app.PublishEvent(r.Context(), app.EventInput{ProjectID: projectID(r, p), Body: body, IdempotencyKey: idemKey,
		ProjectKnown: projectKnown(p), Trace: traceContext(r)})
	if err != nil {
		s.internal(w, "publish event", err)
		return
	}
	if res.Duplicate {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	writeJSON(w, nethttp.StatusAccepted, viewEvent(res.Event, res.Data))
}

// traceContext is the W3C trace context the request came with; app drops
// what is not valid (app.CheckTrace). Several traceparent headers are not valid (the format
// allows one), several tracestate headers are one list.
func traceContext(r *nethttp.Request) kinehook.TraceContext {
	ps := r.Header.Values(kinehook.HeaderTraceParent)
	if len(ps) != 1 {
		return kinehook.TraceContext{}
	}
	return kinehook.TraceContext{Parent: ps[0], State: strings.Join(r.Header.Values(kinehook.HeaderTraceState), ",")}
}

func (s *Server) listEvents(w nethttp.ResponseWriter, r *nethttp.Request, p *app.Principal) {
	f, err := eventFilter(r)
	if err != nil {
		writeError(w, err)
		return
	}
	evs, next, err := s.app.ListEvents(r.Context(), projectID(r, p), f, projectKnown(p))
	if err != nil {
		s.internal(w, "list events", err)
		return
	}
	out := views(evs, func(ev *kinehook.Event) eventView { return viewEvent(ev, nil) })
	writeJSON(w, nethttp.StatusOK, pageBody[eventView]{Data: out, NextCursor: next})
}

// eventFilter reads the query of the event list: limit, cursor, event,
// resource_id, status, since, until.
func eventFilter(r *nethttp.Request) (kinehook.EventFilter, error) {
	q := r.URL.Query()
	f := kinehook.EventFilter{Limit: app.DefaultPageLimit, Cursor: q.Get("cursor")}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > app.MaxPageLimit {
			return f, &kinehook.Error{Code: kinehook.EINVALID, Field: "limit", Message: fmt.Sprintf("limit must be an integer from 1 to %d", app.MaxPageLimit)}
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
	f.SourceID = q.Get("source_id")
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

func (s *Server) getEvent(w nethttp.ResponseWriter, r *nethttp.Request, p *app.Principal) {
	ev, err := s.app.GetEvent(r.Context(), projectID(r, p), r.PathValue("id"))
	if err != nil {
		s.internal(w, "get event", err)
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
// "idempotency_key"?}, ...]} (app.PublishBatch): all are stored in one
// commit, or none.
func (s *Server) createEvents(w nethttp.ResponseWriter, r *nethttp.Request, p *app.Principal) {
	if _, given := r.Header[nethttp.CanonicalHeaderKey("Idempotency-Key")]; given {
		writeError(w, &kinehook.Error{Code: kinehook.EMALFORMED, Field: "Idempotency-Key", Message: `a batch takes no Idempotency-Key header; give each event its own "idempotency_key"`})
		return
	}
	body, err := readLimited(w, r, s.cfg.MaxBatchBytes)
	if err != nil {
		writeError(w, err)
		return
	}
	results, err := s.app.PublishBatch(r.Context(), projectID(r, p), body, projectKnown(p), traceContext(r))
	if err != nil {
		s.internal(w, "publish events", err)
		return
	}
	out := make([]batchEventView, len(results))
	for i, res := range results {
		out[i] = batchEventView{eventView: viewEvent(res.Event, res.Data), Replayed: res.Duplicate}
	}
	writeJSON(w, nethttp.StatusAccepted, listBody[batchEventView]{Data: out})
}
