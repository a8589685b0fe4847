package app

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/internal/jsonshape"
)

// ParseBatch checks a batch body and returns its events, ready to publish.
// Each event's body is rebuilt as {"event":...,"data":...} from the members
// as posted (the data's bytes unchanged) and held to ParseStrict.
func (a *App) ParseBatch(body []byte, pid string) ([]*kinehook.Event, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, &kinehook.Error{Code: kinehook.EMALFORMED, Field: "body", Message: `request body is empty; expected {"events": [...]}`}
	}
	// The batch wraps each event in two more levels than a single body;
	// the limit (and the message) is the single body's.
	if depth, _ := jsonshape.Of(body); depth > a.limits.MaxJSONDepth+2 {
		return nil, &kinehook.Error{Code: kinehook.EMALFORMED, Field: "body", Message: fmt.Sprintf("an event of the batch is nested deeper than %d levels", a.limits.MaxJSONDepth)}
	}
	if err := CheckStrictText(body); err != nil {
		return nil, err
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return nil, JSONError(err)
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
	case len(items) > a.limits.MaxBatchEvents:
		return nil, &kinehook.Error{Code: kinehook.ETOOLARGE, Field: "events", Message: fmt.Sprintf("a batch holds at most %d events, not %d", a.limits.MaxBatchEvents, len(items))}
	}
	now := a.now().UTC()
	evs := make([]*kinehook.Event, len(items))
	for i, item := range items {
		ev, err := a.batchItem(item, i)
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
// keys: 1 to MaxIdempotencyKey bytes, no ASCII control character but tab
// (and so no NUL, which PostgreSQL cannot store), nothing a header parser
// would trim (a space or tab at either end).
func headerLikeKey(k string) bool {
	if k == "" || len(k) > MaxIdempotencyKey || strings.Trim(k, " \t") != k {
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
func (a *App) batchItem(item json.RawMessage, i int) (*kinehook.Event, error) {
	at := fmt.Sprintf("events[%d]", i)
	members, idemKey, err := batchMembers(item, at)
	if err != nil {
		return nil, err
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
	if int64(len(payload)) > a.limits.MaxEventBytes {
		return nil, &kinehook.Error{Code: kinehook.ETOOLARGE, Field: at, Message: fmt.Sprintf("%s is larger than %d bytes", at, a.limits.MaxEventBytes)}
	}
	parsed, err := kinehook.ParseStrict(payload)
	if err != nil {
		ke, _ := ValidationError(err).(*kinehook.Error)
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
		State:          stateOf(parsed),
		IdempotencyKey: idemKey,
	}, nil
}

// batchMembers reads the i-th event of a batch (named at) as its members,
// taking out its idempotency key; only "event" and "data" remain.
func batchMembers(item json.RawMessage, at string) (map[string]json.RawMessage, string, error) {
	var members map[string]json.RawMessage
	if json.Unmarshal(item, &members) != nil || members == nil {
		return nil, "", &kinehook.Error{Code: kinehook.EMALFORMED, Field: at, Message: at + ` must be an object {"event": TYPE, "data": {...}}`}
	}
	var idemKey string
	if raw, ok := members["idempotency_key"]; ok {
		if json.Unmarshal(raw, &idemKey) != nil || !headerLikeKey(idemKey) {
			return nil, "", &kinehook.Error{Code: kinehook.EINVALID, Field: at + ".idempotency_key", Message: fmt.Sprintf("%s.idempotency_key must be a string of 1 to %d bytes that an Idempotency-Key header could carry: no ASCII control character but tab, no space or tab at either end", at, MaxIdempotencyKey)}
		}
		delete(members, "idempotency_key")
	}
	for _, k := range slices.Sorted(maps.Keys(members)) {
		if k != "event" && k != "data" {
			return nil, "", &kinehook.Error{Code: kinehook.EINVALID, Field: at + "." + k, Message: fmt.Sprintf(`%s: unknown field %q; an event of a batch is {"event", "data", "idempotency_key"?}`, at, k)}
		}
	}
	return members, idemKey, nil
}
