package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/kinehook/kinehook"
)

// ProjectWithKey is a newly created project with its API key, which the API
// shows only once, at creation.
type ProjectWithKey struct {
	kinehook.Project
	APIKey string `json:"api_key"`
}

// CreateProject creates a project (admin key only).
func (c *Client) CreateProject(ctx context.Context, name string) (*ProjectWithKey, error) {
	var out ProjectWithKey
	err := c.do(ctx, request{method: http.MethodPost, path: "/v1/projects", body: map[string]string{"name": name}, out: &out})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// ListProjects lists every project with the admin key; with a project key,
// only that project.
func (c *Client) ListProjects(ctx context.Context) ([]*kinehook.Project, error) {
	var out listBody[*kinehook.Project]
	if err := c.do(ctx, request{method: http.MethodGet, path: "/v1/projects", out: &out}); err != nil {
		return nil, err
	}
	return out.Data, nil
}

// GetProject returns one project (the admin key, or that project's key).
func (c *Client) GetProject(ctx context.Context, projectID string) (*kinehook.Project, error) {
	var out kinehook.Project
	if err := c.do(ctx, request{method: http.MethodGet, path: pathf("/v1/projects/%s", projectID), out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// ProjectUpdate is the body of PATCH /v1/projects/{pid}: only non-nil fields
// are sent, so only they change.
type ProjectUpdate struct {
	// Name is 1 to 200 characters.
	Name *string `json:"name,omitempty"`
	// RetentionDays overrides the server's retention; 0 goes back to the
	// server's default.
	RetentionDays *int `json:"retention_days,omitempty"`
	// OperationsURL receives operational events; "" removes it.
	OperationsURL *string `json:"operations_url,omitempty"`
	// PortalOrigins are the origins whose pages may frame the customer
	// portal; an empty list removes them.
	PortalOrigins *[]string `json:"portal_origins,omitempty"`
}

// UpdateProject changes the set fields of u and returns the project as it now
// is (the admin key, or that project's key).
func (c *Client) UpdateProject(ctx context.Context, projectID string, u ProjectUpdate) (*kinehook.Project, error) {
	var out kinehook.Project
	if err := c.do(ctx, request{method: http.MethodPatch, path: pathf("/v1/projects/%s", projectID), body: u, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// Endpoint is an endpoint as the API shows it, with its current signing
// secret (the project's key holder may read it).
type Endpoint struct {
	kinehook.Endpoint
	Secret string `json:"secret,omitempty"`
	// PublicKey is the whpk_ key receivers verify v1a signatures with.
	PublicKey string `json:"public_key,omitempty"`
	// Health is the endpoint's breaker and pause state as the server
	// stored it (the same on every instance).
	Health kinehook.EndpointHealth `json:"health"`
	// Credentials are a destination's credential names, each value "****":
	// the server never answers the values.
	Credentials map[string]string `json:"credentials,omitempty"`
}

// EndpointCreate is the body of POST /v1/projects/{pid}/endpoints. A
// webhook (Type "" or kinehook.EndpointWebhook) needs URL; a destination
// (kinehook.EndpointNATS, ...) needs Config instead, and may have
// Credentials. Empty EventTypes means every type.
type EndpointCreate struct {
	Type        string            `json:"type,omitempty"`
	Config      json.RawMessage   `json:"config,omitempty"`
	Credentials map[string]string `json:"credentials,omitempty"`
	URL         string            `json:"url,omitempty"`
	EventTypes  []string          `json:"event_types,omitempty"`
	Description string            `json:"description,omitempty"`
	Secret      string            `json:"secret,omitempty"`
	Headers     map[string]string `json:"headers,omitempty"`
	Disabled    bool              `json:"disabled,omitempty"`
	RateLimit   float64           `json:"rate_limit,omitempty"`
	MaxInFlight int               `json:"max_in_flight,omitempty"`
	// SignatureScheme is kinehook.SchemeV1 (default) or kinehook.SchemeV1a.
	SignatureScheme string `json:"signature_scheme,omitempty"`
	// Name, Login and Password follow Kinescope's webhook shape; Login and
	// Password are sent to the endpoint as HTTP Basic Auth.
	Name     string `json:"name,omitempty"`
	Login    string `json:"login,omitempty"`
	Password string `json:"password,omitempty"`
}

// EndpointUpdate is the body of PATCH .../endpoints/{eid}: only non-nil fields
// are sent, so only they change.
type EndpointUpdate struct {
	// Type changes the endpoint's type; what the old type used goes.
	Type   *string          `json:"type,omitempty"`
	Config *json.RawMessage `json:"config,omitempty"`
	// Credentials merge into the stored ones: a value sets, "" removes,
	// "****" keeps; a name not given stays.
	Credentials *map[string]string `json:"credentials,omitempty"`
	URL         *string            `json:"url,omitempty"`
	EventTypes  *[]string          `json:"event_types,omitempty"`
	Description *string            `json:"description,omitempty"`
	// Headers replaces the custom headers; a value equal to the masked form
	// the server answers ("****abcd") keeps the stored value.
	Headers     *map[string]string `json:"headers,omitempty"`
	Disabled    *bool              `json:"disabled,omitempty"`
	RateLimit   *float64           `json:"rate_limit,omitempty"`
	MaxInFlight *int               `json:"max_in_flight,omitempty"`
	// Secret replaces the signing secret outright (no grace period).
	Secret          *string `json:"secret,omitempty"`
	SignatureScheme *string `json:"signature_scheme,omitempty"`
	Name            *string `json:"name,omitempty"`
	Login           *string `json:"login,omitempty"`
	Password        *string `json:"password,omitempty"`
}

// Ptr returns a pointer to v, for EndpointUpdate's fields.
func Ptr[T any](v T) *T { return &v }

// CreateEndpoint registers an endpoint; the answer carries its signing secret.
func (c *Client) CreateEndpoint(ctx context.Context, projectID string, in EndpointCreate) (*Endpoint, error) {
	var out Endpoint
	err := c.do(ctx, request{method: http.MethodPost, path: pathf("/v1/projects/%s/endpoints", projectID), body: in, out: &out})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// ListEndpoints lists all of a project's endpoints, oldest first, following
// every page of ListEndpointsPage.
func (c *Client) ListEndpoints(ctx context.Context, projectID string) ([]*Endpoint, error) {
	var all []*Endpoint
	cursor := ""
	for {
		page, err := c.ListEndpointsPage(ctx, projectID, EndpointListOptions{Cursor: cursor})
		if err != nil {
			return nil, err
		}
		all = append(all, page.Data...)
		if page.NextCursor == "" || page.NextCursor == cursor || len(page.Data) == 0 {
			return all, nil
		}
		cursor = page.NextCursor
	}
}

// EndpointListOptions pages ListEndpointsPage.
type EndpointListOptions struct {
	// Limit is the page size, 1 to 1000 (0: the server's default, 1000).
	Limit  int
	Cursor string
}

// EndpointPage is one page of a project's endpoints, oldest first.
// NextCursor is "" on the last page.
type EndpointPage struct {
	Data       []*Endpoint `json:"data"`
	NextCursor string      `json:"next_cursor"`
}

// ListEndpointsPage returns one page of a project's endpoints.
func (c *Client) ListEndpointsPage(ctx context.Context, projectID string, o EndpointListOptions) (*EndpointPage, error) {
	q := url.Values{}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.Cursor != "" {
		q.Set("cursor", o.Cursor)
	}
	var out EndpointPage
	if err := c.do(ctx, request{method: http.MethodGet, path: pathf("/v1/projects/%s/endpoints", projectID), query: q, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetEndpoint returns one endpoint.
func (c *Client) GetEndpoint(ctx context.Context, projectID, endpointID string) (*Endpoint, error) {
	var out Endpoint
	err := c.do(ctx, request{method: http.MethodGet, path: pathf("/v1/projects/%s/endpoints/%s", projectID, endpointID), out: &out})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdateEndpoint changes the set fields of u and returns the endpoint as it now is.
func (c *Client) UpdateEndpoint(ctx context.Context, projectID, endpointID string, u EndpointUpdate) (*Endpoint, error) {
	var out Endpoint
	err := c.do(ctx, request{method: http.MethodPatch, path: pathf("/v1/projects/%s/endpoints/%s", projectID, endpointID), body: u, out: &out})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteEndpoint removes an endpoint; its open deliveries become failed.
func (c *Client) DeleteEndpoint(ctx context.Context, projectID, endpointID string) error {
	return c.do(ctx, request{method: http.MethodDelete, path: pathf("/v1/projects/%s/endpoints/%s", projectID, endpointID)})
}

// EndpointSecret returns the endpoint's current signing secret (whsec_...).
func (c *Client) EndpointSecret(ctx context.Context, projectID, endpointID string) (string, error) {
	var out struct {
		Secret string `json:"secret"`
	}
	err := c.do(ctx, request{method: http.MethodGet, path: pathf("/v1/projects/%s/endpoints/%s/secret", projectID, endpointID), out: &out})
	return out.Secret, err
}

// RotateEndpointSecret makes a new signing secret and returns it; the old
// one keeps signing beside it for 24 hours.
func (c *Client) RotateEndpointSecret(ctx context.Context, projectID, endpointID string) (string, error) {
	var out struct {
		Secret string `json:"secret"`
	}
	err := c.do(ctx, request{method: http.MethodPost, path: pathf("/v1/projects/%s/endpoints/%s/secret/rotate", projectID, endpointID), out: &out})
	return out.Secret, err
}

// RecoverResult is the answer to RecoverEndpoint.
type RecoverResult struct {
	// Recovered is how many failed deliveries were sent again.
	Recovered int       `json:"recovered"`
	Since     time.Time `json:"since"`
}

// RecoverEndpoint re-sends the endpoint's failed deliveries created since then.
func (c *Client) RecoverEndpoint(ctx context.Context, projectID, endpointID string, since time.Time) (*RecoverResult, error) {
	var out RecoverResult
	body := map[string]string{"since": since.UTC().Format(time.RFC3339Nano)}
	err := c.do(ctx, request{method: http.MethodPost, path: pathf("/v1/projects/%s/endpoints/%s/recover", projectID, endpointID), body: body, out: &out})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// Event is an accepted event as the API shows it: Event and Data are exactly
// what endpoints receive.
type Event struct {
	ID          string             `json:"id"`
	Event       kinehook.EventType `json:"event"`
	Data        json.RawMessage    `json:"data"`
	ResourceKey string             `json:"resource_key,omitempty"`
	CreatedAt   time.Time          `json:"created_at"`
	// TraceParent is the W3C traceparent the event was posted with, which
	// each delivery of it continues ("" for none).
	TraceParent string `json:"traceparent,omitempty"`
	// SourceID names the inbox source the event came through.
	SourceID string `json:"source_id,omitempty"`
	// Flags mark what the catalog does not know in an event an inbox
	// kept ("unknown_event_type", "unknown_status").
	Flags []string `json:"flags,omitempty"`
	// Replayed is true when the send's idempotency key matched an earlier
	// event: this is that event, and nothing new was created. Only the
	// answers of SendEvent, SendEventBody, SendEvents and SendEventsBody
	// set it.
	Replayed bool `json:"replayed,omitempty"`
}

// Body returns the webhook body {"event","data"} of the event.
func (e *Event) Body() ([]byte, error) {
	b, err := json.Marshal(kinehook.Envelope{Event: e.Event, Data: e.Data})
	if err != nil {
		return nil, fmt.Errorf("encode event %s: %w", e.ID, err)
	}
	return b, nil
}

// SendEvent posts an event of type t with data (any JSON-encodable value; a
// json.RawMessage is sent as is). A non-empty idempotencyKey makes repeats
// within 24 h return the first event instead of creating another.
func (c *Client) SendEvent(ctx context.Context, projectID string, t kinehook.EventType, data any, idempotencyKey string) (*Event, error) {
	body, err := appendEvent(nil, t, data, "")
	if err != nil {
		return nil, fmt.Errorf("encode event: %w", err)
	}
	return c.SendEventBody(ctx, projectID, body, idempotencyKey)
}

// SendEventBody posts a complete webhook body {"event": TYPE, "data": {...}}
// byte for byte.
func (c *Client) SendEventBody(ctx context.Context, projectID string, body []byte, idempotencyKey string) (*Event, error) {
	var h http.Header
	if idempotencyKey != "" {
		h = http.Header{"Idempotency-Key": {idempotencyKey}}
	}
	var out Event
	var answer http.Header
	err := c.do(ctx, request{method: http.MethodPost, path: pathf("/v1/projects/%s/events", projectID), body: body, header: h, out: &out, answerHeader: &answer})
	if err != nil {
		return nil, err
	}
	out.Replayed = answer.Get("Idempotent-Replayed") == "true"
	return &out, nil
}

// The API's limits on a batch (kinehook serve's, not configurable there):
// more events, a larger body or a larger event is refused with
// payload_too_large.
const (
	// MaxBatchEvents is the most events in one batch.
	MaxBatchEvents = 1000
	// MaxBatchBytes is the largest batch body.
	MaxBatchBytes = 4 << 20
	// MaxEventBytes is the largest event, {"event":...,"data":...}.
	MaxEventBytes = 1 << 20
)

// BatchEvent is one event of SendEvents.
type BatchEvent struct {
	// Type is the event's type, e.g. kinehook.EventMediaUpdateStatus.
	Type kinehook.EventType
	// Data is the event's data: any JSON-encodable value; a json.RawMessage
	// is sent as is.
	Data any
	// IdempotencyKey, when not empty, makes a repeat within 24 h (later in
	// the same batch or in another request) return the first event instead
	// of creating another.
	IdempotencyKey string
}

// appendEvent appends {"event": t, "data": data} to b, and the idempotency
// key when not empty. A json.RawMessage is written byte for byte (what the
// endpoint receives); other data is encoded without HTML escaping, as the
// API keeps every byte it is given.
func appendEvent(b []byte, t kinehook.EventType, data any, idempotencyKey string) ([]byte, error) {
	raw, ok := data.(json.RawMessage)
	switch {
	case ok && raw == nil:
		raw = json.RawMessage("null") // as json.Marshal writes it; the API says what it expected
	case ok && !json.Valid(raw):
		// Spliced in as is, bad bytes could end this event and start another.
		return nil, errors.New("data: the json.RawMessage is not one JSON value")
	case !ok:
		var err error
		if raw, err = encodeJSON(data); err != nil {
			return nil, fmt.Errorf("data: %w", err)
		}
	}
	// encoding/json would turn bad bytes into U+FFFD, making different keys
	// (or types) the same one.
	if !utf8.ValidString(string(t)) {
		return nil, errors.New("type: not UTF-8")
	}
	if !utf8.ValidString(idempotencyKey) {
		return nil, errors.New("idempotency key: not UTF-8")
	}
	typ, err := encodeJSON(t)
	if err != nil {
		return nil, fmt.Errorf("type: %w", err)
	}
	b = append(b, `{"event":`...)
	b = append(b, typ...)
	b = append(b, `,"data":`...)
	b = append(b, raw...)
	if idempotencyKey != "" {
		k, err := encodeJSON(idempotencyKey)
		if err != nil {
			return nil, fmt.Errorf("idempotency key: %w", err)
		}
		b = append(b, `,"idempotency_key":`...)
		b = append(b, k...)
	}
	return append(b, '}'), nil
}

// encodeJSON is json.Marshal without HTML escaping.
func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// SendEvents posts events in one request (POST .../events/batch): the API
// stores all of them or none, and delivers them in this order. On success
// the answer holds one Event per input, in the same order; Replayed marks
// those whose idempotency key matched an earlier event. When one event is
// invalid nothing is stored and the *Error's Field names it by index
// ("events[3].data.status"). SendEvents does not split: more than
// MaxBatchEvents events, or a body over 4 MiB, is refused as a whole.
func (c *Client) SendEvents(ctx context.Context, projectID string, events []BatchEvent) ([]*Event, error) {
	body := []byte(`{"events":[`)
	for i, ev := range events {
		if i > 0 {
			body = append(body, ',')
		}
		var err error
		if body, err = appendEvent(body, ev.Type, ev.Data, ev.IdempotencyKey); err != nil {
			return nil, fmt.Errorf("encode event %d: %w", i, err)
		}
	}
	body = append(body, "]}"...)
	out, err := c.SendEventsBody(ctx, projectID, body)
	if err != nil {
		return nil, err
	}
	if len(out) != len(events) {
		return nil, fmt.Errorf("send events: the API answered %d events for the %d sent", len(out), len(events))
	}
	return out, nil
}

// SendEventsBody posts a complete batch body {"events": [{"event": TYPE,
// "data": {...}, "idempotency_key"?: "..."}, ...]} byte for byte; see
// SendEvents.
func (c *Client) SendEventsBody(ctx context.Context, projectID string, body []byte) ([]*Event, error) {
	var out listBody[*Event]
	path := pathf("/v1/projects/%s/events/batch", projectID)
	if err := c.do(ctx, request{method: http.MethodPost, path: path, body: body, out: &out}); err != nil {
		return nil, err
	}
	return out.Data, nil
}

// EventListOptions filters and pages ListEvents. Zero values select everything.
type EventListOptions struct {
	// Event keeps one event type.
	Event kinehook.EventType
	// ResourceKey keeps events about one video or live event.
	ResourceKey string
	// Status keeps events with at least one delivery in that status.
	Status kinehook.DeliveryStatus
	// SourceID keeps the events that came through one inbox source.
	SourceID string
	// Since and Until bound created_at.
	Since, Until time.Time
	Limit        int
	Cursor       string
}

func (o EventListOptions) query() url.Values {
	q := url.Values{}
	if o.Event != "" {
		q.Set("event", string(o.Event))
	}
	if o.ResourceKey != "" {
		q.Set("resource_id", o.ResourceKey)
	}
	if o.Status != "" {
		q.Set("status", string(o.Status))
	}
	if o.SourceID != "" {
		q.Set("source_id", o.SourceID)
	}
	if !o.Since.IsZero() {
		q.Set("since", o.Since.UTC().Format(time.RFC3339Nano))
	}
	if !o.Until.IsZero() {
		q.Set("until", o.Until.UTC().Format(time.RFC3339Nano))
	}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.Cursor != "" {
		q.Set("cursor", o.Cursor)
	}
	return q
}

// EventPage is one page of ListEvents, newest first. NextCursor is "" on the
// last page.
type EventPage struct {
	Data       []*Event `json:"data"`
	NextCursor string   `json:"next_cursor"`
}

// ListEvents returns one page of a project's events, newest first.
func (c *Client) ListEvents(ctx context.Context, projectID string, o EventListOptions) (*EventPage, error) {
	var out EventPage
	err := c.do(ctx, request{method: http.MethodGet, path: pathf("/v1/projects/%s/events", projectID), query: o.query(), out: &out})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// AllEvents iterates over every event matching o, newest first, fetching
// pages as it goes (o.Limit is the page size). It stops at the first error,
// which it yields.
func (c *Client) AllEvents(ctx context.Context, projectID string, o EventListOptions) iter.Seq2[*Event, error] {
	return func(yield func(*Event, error) bool) {
		for {
			page, err := c.ListEvents(ctx, projectID, o)
			if err != nil {
				yield(nil, err)
				return
			}
			for _, e := range page.Data {
				if !yield(e, nil) {
					return
				}
			}
			if page.NextCursor == "" || page.NextCursor == o.Cursor || len(page.Data) == 0 {
				return
			}
			o.Cursor = page.NextCursor
		}
	}
}

// GetEvent returns one event.
func (c *Client) GetEvent(ctx context.Context, projectID, eventID string) (*Event, error) {
	var out Event
	err := c.do(ctx, request{method: http.MethodGet, path: pathf("/v1/projects/%s/events/%s", projectID, eventID), out: &out})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// ListDeliveries returns an event's deliveries, one per endpoint it fanned out to.
func (c *Client) ListDeliveries(ctx context.Context, projectID, eventID string) ([]*kinehook.Delivery, error) {
	var out listBody[*kinehook.Delivery]
	err := c.do(ctx, request{method: http.MethodGet, path: pathf("/v1/projects/%s/events/%s/deliveries", projectID, eventID), out: &out})
	if err != nil {
		return nil, err
	}
	return out.Data, nil
}

// GetDelivery returns one delivery.
func (c *Client) GetDelivery(ctx context.Context, projectID, deliveryID string) (*kinehook.Delivery, error) {
	var out kinehook.Delivery
	err := c.do(ctx, request{method: http.MethodGet, path: pathf("/v1/projects/%s/deliveries/%s", projectID, deliveryID), out: &out})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// ListAttempts returns every HTTP attempt made for a delivery, oldest first.
func (c *Client) ListAttempts(ctx context.Context, projectID, deliveryID string) ([]*kinehook.Attempt, error) {
	var out listBody[*kinehook.Attempt]
	err := c.do(ctx, request{method: http.MethodGet, path: pathf("/v1/projects/%s/deliveries/%s/attempts", projectID, deliveryID), out: &out})
	if err != nil {
		return nil, err
	}
	return out.Data, nil
}

// RetryDelivery sends a delivery again now, whatever its state, and returns
// it as it now is.
func (c *Client) RetryDelivery(ctx context.Context, projectID, deliveryID string) (*kinehook.Delivery, error) {
	var raw json.RawMessage
	err := c.do(ctx, request{method: http.MethodPost, path: pathf("/v1/projects/%s/deliveries/%s/retry", projectID, deliveryID), out: &raw})
	if err != nil {
		return nil, err
	}
	var out kinehook.Delivery
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			return nil, fmt.Errorf("retry delivery %s: decode answer: %w", deliveryID, err)
		}
	}
	if out.ID == "" {
		// The answer did not describe the delivery: read it.
		return c.GetDelivery(ctx, projectID, deliveryID)
	}
	return &out, nil
}

// DeliverySearchOptions filters and pages SearchDeliveries (and selects
// what RetryDeliveries re-sends). Zero values select everything; the
// filters given all apply.
type DeliverySearchOptions struct {
	// EndpointID keeps deliveries to one endpoint (a deleted one's too).
	EndpointID string
	// Statuses keeps deliveries in any of these statuses.
	Statuses []kinehook.DeliveryStatus
	// Event keeps deliveries of one event type.
	Event kinehook.EventType
	// Resource keeps deliveries of events about one video or live event.
	Resource string
	// EventID keeps one event's deliveries.
	EventID string
	// Since (inclusive) and Until (exclusive) bound the events' created_at.
	Since, Until time.Time
	// Limit and Cursor page SearchDeliveries; RetryDeliveries ignores them.
	Limit  int
	Cursor string
}

func (o DeliverySearchOptions) query() url.Values {
	q := url.Values{}
	if o.EndpointID != "" {
		q.Set("endpoint_id", o.EndpointID)
	}
	for _, st := range o.Statuses {
		q.Add("status", string(st))
	}
	if o.Event != "" {
		q.Set("event", string(o.Event))
	}
	if o.Resource != "" {
		q.Set("resource", o.Resource)
	}
	if o.EventID != "" {
		q.Set("event_id", o.EventID)
	}
	if !o.Since.IsZero() {
		q.Set("since", o.Since.UTC().Format(time.RFC3339Nano))
	}
	if !o.Until.IsZero() {
		q.Set("until", o.Until.UTC().Format(time.RFC3339Nano))
	}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.Cursor != "" {
		q.Set("cursor", o.Cursor)
	}
	return q
}

// DeliveryPage is one page of SearchDeliveries, newest first. NextCursor is
// "" on the last page.
type DeliveryPage struct {
	Data       []*kinehook.Delivery `json:"data"`
	NextCursor string               `json:"next_cursor"`
}

// SearchDeliveries returns one page of a project's deliveries, newest
// first, each with its event's type, resource key and time.
func (c *Client) SearchDeliveries(ctx context.Context, projectID string, o DeliverySearchOptions) (*DeliveryPage, error) {
	var out DeliveryPage
	err := c.do(ctx, request{method: http.MethodGet, path: pathf("/v1/projects/%s/deliveries", projectID), query: o.query(), out: &out})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// SearchEndpointDeliveries is SearchDeliveries through the endpoint's own
// route: it fails with not_found for an endpoint that does not exist.
func (c *Client) SearchEndpointDeliveries(ctx context.Context, projectID, endpointID string, o DeliverySearchOptions) (*DeliveryPage, error) {
	o.EndpointID = ""
	var out DeliveryPage
	err := c.do(ctx, request{method: http.MethodGet, path: pathf("/v1/projects/%s/endpoints/%s/deliveries", projectID, endpointID), query: o.query(), out: &out})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// AllDeliveries iterates over every delivery matching o, newest first,
// fetching pages as it goes (o.Limit is the page size). It stops at the
// first error, which it yields.
func (c *Client) AllDeliveries(ctx context.Context, projectID string, o DeliverySearchOptions) iter.Seq2[*kinehook.Delivery, error] {
	return func(yield func(*kinehook.Delivery, error) bool) {
		for {
			page, err := c.SearchDeliveries(ctx, projectID, o)
			if err != nil {
				yield(nil, err)
				return
			}
			for _, d := range page.Data {
				if !yield(d, nil) {
					return
				}
			}
			if page.NextCursor == "" || page.NextCursor == o.Cursor || len(page.Data) == 0 {
				return
			}
			o.Cursor = page.NextCursor
		}
	}
}

// RetryDeliveries re-sends every failed delivery of the project that o's
// filters match (only failed ones, whatever o.Statuses says), each
// resource in order, and returns how many it re-queued.
func (c *Client) RetryDeliveries(ctx context.Context, projectID string, o DeliverySearchOptions) (int, error) {
	body := map[string]any{}
	if o.EndpointID != "" {
		body["endpoint_id"] = o.EndpointID
	}
	if len(o.Statuses) > 0 {
		body["status"] = o.Statuses
	}
	if o.Event != "" {
		body["event"] = o.Event
	}
	if o.Resource != "" {
		body["resource"] = o.Resource
	}
	if o.EventID != "" {
		body["event_id"] = o.EventID
	}
	if !o.Since.IsZero() {
		body["since"] = o.Since.UTC().Format(time.RFC3339Nano)
	}
	if !o.Until.IsZero() {
		body["until"] = o.Until.UTC().Format(time.RFC3339Nano)
	}
	var out struct {
		Retried int `json:"retried"`
	}
	if err := c.do(ctx, request{method: http.MethodPost, path: pathf("/v1/projects/%s/deliveries/retry", projectID), body: body, out: &out}); err != nil {
		return 0, err
	}
	return out.Retried, nil
}

// Webhook is a webhook in Kinescope's API shape (/v1/webhooks), mapped to an
// endpoint of the key's project.
type Webhook struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Endpoint  string    `json:"endpoint"`
	Login     string    `json:"login,omitempty"`
	Password  string    `json:"password,omitempty"`
	Events    []string  `json:"events"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// WebhookInput is the body of POST and PUT /v1/webhooks.
type WebhookInput struct {
	Name     string   `json:"name"`
	Endpoint string   `json:"endpoint"`
	Login    string   `json:"login,omitempty"`
	Password string   `json:"password,omitempty"`
	Events   []string `json:"events"`
}

// ListWebhooks lists the key's project's webhooks (project key only).
func (c *Client) ListWebhooks(ctx context.Context) ([]*Webhook, error) {
	var out dataBody[[]*Webhook]
	if err := c.do(ctx, request{method: http.MethodGet, path: "/v1/webhooks", out: &out}); err != nil {
		return nil, err
	}
	return out.Data, nil
}

// CreateWebhook creates a webhook (project key only).
func (c *Client) CreateWebhook(ctx context.Context, in WebhookInput) (*Webhook, error) {
	var out dataBody[*Webhook]
	if err := c.do(ctx, request{method: http.MethodPost, path: "/v1/webhooks", body: in, out: &out}); err != nil {
		return nil, err
	}
	return out.Data, nil
}

// GetWebhook returns one webhook (project key only).
func (c *Client) GetWebhook(ctx context.Context, id string) (*Webhook, error) {
	var out dataBody[*Webhook]
	if err := c.do(ctx, request{method: http.MethodGet, path: pathf("/v1/webhooks/%s", id), out: &out}); err != nil {
		return nil, err
	}
	return out.Data, nil
}

// UpdateWebhook replaces a webhook (project key only).
func (c *Client) UpdateWebhook(ctx context.Context, id string, in WebhookInput) (*Webhook, error) {
	var out dataBody[*Webhook]
	if err := c.do(ctx, request{method: http.MethodPut, path: pathf("/v1/webhooks/%s", id), body: in, out: &out}); err != nil {
		return nil, err
	}
	return out.Data, nil
}

// DeleteWebhook removes a webhook (project key only).
func (c *Client) DeleteWebhook(ctx context.Context, id string) error {
	return c.do(ctx, request{method: http.MethodDelete, path: pathf("/v1/webhooks/%s", id)})
}

// EndpointStats returns an endpoint's delivery statistics over window
// ("1h", "24h" or "7d"; "" is 24h).
func (c *Client) EndpointStats(ctx context.Context, projectID, endpointID, window string) (*kinehook.Stats, error) {
	var out kinehook.Stats
	err := c.do(ctx, request{method: http.MethodGet, path: pathf("/v1/projects/%s/endpoints/%s/stats", projectID, endpointID), query: windowQuery(window), out: &out})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// ProjectStats returns a project's delivery statistics (every endpoint
// together) over window ("1h", "24h" or "7d"; "" is 24h).
func (c *Client) ProjectStats(ctx context.Context, projectID, window string) (*kinehook.Stats, error) {
	var out kinehook.Stats
	err := c.do(ctx, request{method: http.MethodGet, path: pathf("/v1/projects/%s/stats", projectID), query: windowQuery(window), out: &out})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

func windowQuery(window string) url.Values {
	if window == "" {
		return nil
	}
	return url.Values{"window": {window}}
}

// EnableEndpoint enables an endpoint: a disabled one starts healthy (its
// reason cleared, its circuit breaker reset) and its queued deliveries go.
func (c *Client) EnableEndpoint(ctx context.Context, projectID, endpointID string) (*Endpoint, error) {
	return c.UpdateEndpoint(ctx, projectID, endpointID, EndpointUpdate{Disabled: Ptr(false)})
}

// DisableEndpoint disables an endpoint: nothing is sent to it, its
// deliveries wait until it is enabled again.
func (c *Client) DisableEndpoint(ctx context.Context, projectID, endpointID string) (*Endpoint, error) {
	return c.UpdateEndpoint(ctx, projectID, endpointID, EndpointUpdate{Disabled: Ptr(true)})
}

// TestEndpoint sends a signed sample event to the endpoint alone, through
// the normal delivery path, and returns its delivery (pending: poll
// GetDelivery for the outcome). eventType may be empty: the first catalog
// type the endpoint's filter selects.
func (c *Client) TestEndpoint(ctx context.Context, projectID, endpointID string, eventType kinehook.EventType) (*kinehook.Delivery, error) {
	var out kinehook.Delivery
	var body any
	if eventType != "" {
		body = map[string]kinehook.EventType{"event_type": eventType}
	}
	err := c.do(ctx, request{method: http.MethodPost, path: pathf("/v1/projects/%s/endpoints/%s/test", projectID, endpointID), body: body, out: &out})
	if err != nil {
		return nil, err
	}
	return &out, nil
}
