package kinehook

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"hash/fnv"
	"strconv"
	"strings"
	"time"
)

// NumPartitions is the number of delivery partitions. A delivery's partition is
// a hash of (endpoint, resource key), so every delivery that must stay ordered
// lands in the same partition; instances sharing one database split the work
// by partition.
const NumPartitions = 256

// PartitionOf returns the partition of the ordering key (endpointID, resourceKey).
func PartitionOf(endpointID, resourceKey string) int {
	h := fnv.New32a()
	h.Write([]byte(endpointID))
	h.Write([]byte{0})
	h.Write([]byte(resourceKey))
	return int(h.Sum32() % NumPartitions)
}

// MaxRetentionDays bounds a retention setting (a century): days are turned
// into a time.Duration, which a larger count would overflow, and PostgreSQL
// stores them as a 32-bit integer.
const MaxRetentionDays = 36500

// Project is a tenant: it owns endpoints and events and has its own API key.
type Project struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	// RetentionDays overrides the server's retention for this project (0 = server default).
	RetentionDays int `json:"retention_days,omitempty"`
	// OperationsURL, when set, receives operational events (endpoint.disabled, ...).
	OperationsURL string `json:"operations_url,omitempty"`
	// PortalOrigins are the origins (scheme://host[:port]) whose pages may
	// frame the project's customer portal.
	PortalOrigins []string `json:"portal_origins,omitempty"`
}

// Signature schemes an endpoint can be signed with.
const (
	SchemeV1  = "v1"  // HMAC-SHA256, symmetric (whsec_)
	SchemeV1a = "v1a" // ed25519, asymmetric (whsk_/whpk_)
)

// EndpointSecret is one signing secret of an endpoint. During rotation an
// endpoint has the new secret (ExpiresAt zero) and the previous one, which
// keeps signing until ExpiresAt.
type EndpointSecret struct {
	Value     string    `json:"value"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// Endpoint receives a project's events: a URL (a webhook, the default type)
// or an event destination (a broker: NATS JetStream, ...), see Type.
type Endpoint struct {
	ID        string `json:"id"`
	ProjectID string `json:"project_id"`
	// Type is one of EndpointTypes; "" reads as EndpointWebhook (TypeOf).
	Type string `json:"type,omitempty"`
	// URL is a webhook's address; empty for other types.
	URL string `json:"url"`
	// Config is a destination's settings as its DestinationType normalised
	// them (compact JSON); nil for a webhook.
	Config json.RawMessage `json:"config,omitempty"`
	// Credentials are a destination's secrets (user, password, token...):
	// write-only, sealed at rest like the signing secrets, answered only
	// masked (MaskCredentials).
	Credentials map[string]string `json:"-"`
	Description string            `json:"description"`
	// EventTypes filters what the endpoint receives: exact types or
	// prefixes ending in ".*"; empty means every type.
	EventTypes []string          `json:"event_types"`
	Headers    map[string]string `json:"headers,omitempty"`
	Disabled   bool              `json:"disabled"`
	// DisabledReason says why the endpoint was disabled (by a user, a 410, ...).
	DisabledReason string `json:"disabled_reason,omitempty"`
	// Secrets: the current secret first, then older ones still valid.
	Secrets []EndpointSecret `json:"-"`
	// Scheme is SchemeV1 (default) or SchemeV1a.
	Scheme string `json:"signature_scheme,omitempty"`
	// Name, Login and Password come from Kinescope's webhook API shape;
	// Login/Password are sent as HTTP Basic Auth.
	Name     string `json:"name,omitempty"`
	Login    string `json:"login,omitempty"`
	Password string `json:"-"`
	// RateLimit is the maximum deliveries per second (0 = unlimited).
	RateLimit float64 `json:"rate_limit,omitempty"`
	// MaxInFlight bounds concurrent requests to the endpoint (0 = server default).
	MaxInFlight int `json:"max_in_flight,omitempty"`
	// FailingSince is when the endpoint's current run of failures began (zero when healthy).
	FailingSince time.Time `json:"failing_since,omitzero"`
	// Breaker is what the delivery engine last stored of the endpoint's
	// circuit breaker and pauses (see HealthBreaker); Health reads it.
	Breaker   BreakerRecord `json:"-"`
	CreatedAt time.Time     `json:"created_at"`
	UpdatedAt time.Time     `json:"updated_at"`
}

// Matches reports whether the endpoint's filter selects events of type t. No
// filter, or "*", selects every catalog (Kinescope) type; kinehook's
// operational types only when the filter names them ("endpoint.*" or one).
func (e *Endpoint) Matches(t EventType) bool {
	op := t.Operational() // only for endpoints that name them
	if len(e.EventTypes) == 0 {
		return !op
	}
	for _, f := range e.EventTypes {
		if (f == "*" && !op) || f == string(t) {
			return true
		}
		if p, ok := strings.CutSuffix(f, "*"); ok && p != "" && strings.HasPrefix(string(t), p) {
			return true
		}
	}
	return false
}

// ActiveSecrets returns the secrets that sign at time now: the current one and
// any previous one whose grace period has not ended.
func (e *Endpoint) ActiveSecrets(now time.Time) []string {
	out := make([]string, 0, len(e.Secrets))
	for _, s := range e.Secrets {
		if s.ExpiresAt.IsZero() || now.Before(s.ExpiresAt) {
			out = append(out, s.Value)
		}
	}
	return out
}

// Event is one accepted webhook event. Payload holds the body exactly as
// posted, {"event": TYPE, "data": {...}}; it is what endpoints receive.
type Event struct {
	ID             string          `json:"id"`
	ProjectID      string          `json:"project_id"`
	Type           EventType       `json:"event"`
	Payload        json.RawMessage `json:"-"`
	ResourceKey    string          `json:"resource_key"`
	IdempotencyKey string          `json:"-"`
	CreatedAt      time.Time       `json:"created_at"`
	// Seq orders events by acceptance; set by the store.
	Seq int64 `json:"-"`
	// SourceID names the inbox source the event came through ("" for the API).
	SourceID string `json:"source_id,omitempty"`
	// BodyHash is the SHA-256 of the body an inbox source received: the
	// store answers a retry of the latest body of a resource from that
	// source (within InboxRetryWindow) as a duplicate.
	BodyHash []byte `json:"-"`
	// State is what the event says about its video or stream, when the
	// entry point parsed it (nil: the store parses the payload; NoState:
	// nothing).
	State *StateUpdate `json:"-"`
	// Trace is the W3C trace context the event was posted with (nil when
	// none or not valid): each attempt to deliver it sends it on.
	Trace *TraceContext `json:"-"`
	// OnlyEndpoint, when set, makes the event's only delivery the one to
	// that endpoint (an endpoint's test event): other endpoints whose filter
	// selects the type get none. It is not stored.
	OnlyEndpoint string `json:"-"`
}

// Targets reports whether the event may be delivered to the endpoint with
// that id (see OnlyEndpoint); the endpoint's filter decides the rest.
func (ev *Event) Targets(endpointID string) bool {
	return ev.OnlyEndpoint == "" || ev.OnlyEndpoint == endpointID
}

// DeliveryStatus is the state of one event's delivery to one endpoint.
type DeliveryStatus string

// Delivery statuses.
const (
	DeliveryPending   DeliveryStatus = "pending"
	DeliveryRetrying  DeliveryStatus = "retrying"
	DeliverySucceeded DeliveryStatus = "succeeded"
	DeliveryFailed    DeliveryStatus = "failed"
)

// Final reports whether no further attempt will be made.
func (s DeliveryStatus) Final() bool { return s == DeliverySucceeded || s == DeliveryFailed }

// Delivery is one event on its way to one endpoint.
type Delivery struct {
	ID          string    `json:"id"`
	ProjectID   string    `json:"project_id"`
	EventID     string    `json:"event_id"`
	EndpointID  string    `json:"endpoint_id"`
	EventType   EventType `json:"event_type"`
	ResourceKey string    `json:"resource_key"`
	// Seq is the event's acceptance order; deliveries with the same
	// (EndpointID, ResourceKey) are sent in Seq order.
	Seq int64 `json:"-"`
	// Partition is PartitionOf(EndpointID, ResourceKey), set by the store at
	// creation; the engine routes by it without hashing again.
	Partition      int            `json:"-"`
	Status         DeliveryStatus `json:"status"`
	Attempts       int            `json:"attempts"`
	NextAttemptAt  time.Time      `json:"next_attempt_at,omitzero"`
	LastStatusCode int            `json:"last_status_code"`
	LastError      string         `json:"last_error,omitempty"`
	CreatedAt      time.Time      `json:"created_at"`
	UpdatedAt      time.Time      `json:"updated_at"`
	// Trace is its event's (Event.Trace), shared with it: the stores read
	// it with the deliveries the engine queues.
	Trace *TraceContext `json:"-"`
}

// NewDelivery is the pending delivery of ev to an endpoint, due at now: what
// a store creates for each enabled endpoint whose filter matches the event.
// Its partition keeps every delivery of one (endpoint, resource) together.
func NewDelivery(ev *Event, endpointID string, now time.Time) *Delivery {
	return &Delivery{
		ID:            NewID(PrefixDelivery),
		ProjectID:     ev.ProjectID,
		EventID:       ev.ID,
		EndpointID:    endpointID,
		EventType:     ev.Type,
		ResourceKey:   ev.ResourceKey,
		Seq:           ev.Seq,
		Partition:     PartitionOf(endpointID, ev.ResourceKey),
		Status:        DeliveryPending,
		NextAttemptAt: now,
		CreatedAt:     ev.CreatedAt,
		UpdatedAt:     now,
		Trace:         ev.Trace,
	}
}

// Attempt is one HTTP request made for a delivery.
type Attempt struct {
	// ID names this one HTTP request: the attempt_id of the server's log
	// line for it. Empty for attempts recorded before ids existed.
	ID          string    `json:"id"`
	DeliveryID  string    `json:"delivery_id"`
	AttemptedAt time.Time `json:"attempted_at"`
	StatusCode  int       `json:"status_code"`
	Error       string    `json:"error"`
	DurationMS  float64   `json:"duration_ms"`
	// ResponseBody is the first 4 KiB of the response body.
	ResponseBody   string            `json:"response_body"`
	RequestHeaders map[string]string `json:"request_headers,omitempty"`
}

// AttemptResult is an attempt with the delivery state it leads to. The engine
// hands these to the store in batches.
type AttemptResult struct {
	// EndpointID and ProjectID name the delivery's endpoint and project, for
	// the statistics rollups; a store looks them up when they are empty.
	EndpointID    string
	ProjectID     string
	Attempt       Attempt
	Status        DeliveryStatus
	Attempts      int
	NextAttemptAt time.Time
}

// IngestResult is what the store made of one event: the event as stored (the
// first one when the idempotency key was seen before) and its deliveries.
type IngestResult struct {
	Event      *Event
	Deliveries []*Delivery
	// Duplicate is true when the idempotency key matched an earlier event;
	// nothing was created.
	Duplicate bool
	// OpenDeliveries lists, for a Duplicate, the earlier event's deliveries
	// still open, when the store shares its work with other instances: the
	// client may be retrying against an instance that died before
	// announcing them, so the coordinator wakes them (AfterCommit).
	OpenDeliveries []string
	// Announced is true when the store told the other instances sharing it
	// of these deliveries in the same commit (PostgreSQL's NOTIFY is
	// transactional): the news cannot be lost between the commit and an
	// announcement, so the engine need not announce them again.
	Announced bool
	// Deferred is true when the coordinator (Coordinator.AfterCommit)
	// could not confirm that every older delivery of these resources is
	// already queued by its owner (it lost touch with the other
	// instances). The engine must not queue these from memory: the
	// coordinator's reload, which reads the store in acceptance order,
	// queues them behind the older ones.
	Deferred bool
	// State is the change the event made to its video's or stream's
	// state (nil: none).
	State *StateChange
}

// EventFilter selects events in ListEvents. Zero values select everything.
type EventFilter struct {
	Type        EventType
	ResourceKey string
	// DeliveryStatus keeps events with at least one delivery in that status.
	DeliveryStatus DeliveryStatus
	Since, Until   time.Time
	// SourceID keeps events that came through that inbox source.
	SourceID string
	// Cursor is the opaque next_cursor of a previous page.
	Cursor string
	Limit  int
}

// DeliveryStatuses lists every delivery status, in lifecycle order.
var DeliveryStatuses = []DeliveryStatus{DeliveryPending, DeliveryRetrying, DeliverySucceeded, DeliveryFailed}

// Known reports whether s is one of DeliveryStatuses.
func (s DeliveryStatus) Known() bool {
	switch s {
	case DeliveryPending, DeliveryRetrying, DeliverySucceeded, DeliveryFailed:
		return true
	}
	return false
}

// DeliveryFilter selects a project's deliveries in SearchDeliveries. Zero
// values select everything; the conditions given all apply.
type DeliveryFilter struct {
	EndpointID string
	// Statuses keeps deliveries in any of these statuses (all when empty).
	Statuses []DeliveryStatus
	// EventType and ResourceKey are those of the delivery's event.
	EventType   EventType
	ResourceKey string
	EventID     string
	// Since (inclusive) and Until (exclusive) bound CreatedAt, the time
	// the event was accepted.
	Since, Until time.Time
	// Oldest pages in acceptance order instead of newest first: the order
	// a bulk retry re-queues in. A cursor only continues the order it came from.
	Oldest bool
	// Cursor is the opaque next cursor of a previous page.
	Cursor string
	Limit  int
}

// OnlyStatuses reports whether f keeps only statuses among want (and names
// at least one): a store uses it to pick a partial index.
func (f *DeliveryFilter) OnlyStatuses(want ...DeliveryStatus) bool {
	if len(f.Statuses) == 0 {
		return false
	}
	for _, s := range f.Statuses {
		ok := false
		for _, w := range want {
			ok = ok || s == w
		}
		if !ok {
			return false
		}
	}
	return true
}

// StampSkew bounds how far an event's CreatedAt may run ahead of the
// CreatedAt of an event accepted after it. The time is stamped when the API
// receives the event, and the event gets its Seq when its commit runs: at
// most the request's wait for the committer (its deadline, about a minute)
// plus the commit's own 30 s deadline later, or on another instance whose
// clock differs a little. Stores rely on it to turn a time range into a Seq
// range, so that a search by time reads only the rows near that range:
// every event accepted before one created before t-StampSkew was created
// before t, and every event accepted after one created at or after
// t+StampSkew was created at or after t. A search that finds fewer rows
// than a page reads at most StampSkew's worth of rows beyond its range.
const StampSkew = 5 * time.Minute

// HealthChange names a change of an endpoint's health fields.
type HealthChange int

// The health changes, each applied only when it changes something.
const (
	// HealthFailing sets FailingSince (the start of a run of failures)
	// where it is unset.
	HealthFailing HealthChange = iota + 1
	// HealthRecovered clears FailingSince where it is set.
	HealthRecovered
	// HealthDisabled disables the endpoint with a reason where it is enabled.
	HealthDisabled
	// HealthBreaker stores the engine's breaker and pause state (Breaker)
	// where it differs; it leaves UpdatedAt alone, since it changes with
	// every failure and is no edit of the endpoint's settings.
	HealthBreaker
)

// HealthUpdate is one health change of an endpoint (see
// Store.UpdateEndpointHealth).
type HealthUpdate struct {
	Change HealthChange
	// FailingSince is the time HealthFailing stores.
	FailingSince time.Time
	// Reason is the DisabledReason HealthDisabled stores.
	Reason string
	// Breaker is what HealthBreaker stores.
	Breaker BreakerRecord
	// At becomes the endpoint's UpdatedAt when it changes.
	At time.Time
}

// Store is the durable log: everything accepted lives here. Scheduling lives in
// memory (the delivery engine); the store never drives it by polling.
//
// Implementations: sqlite (embedded, default) and postgres. Both pass the
// shared suite in storetest.
type Store interface {
	// Ping reports whether the store answers (readiness).
	Ping(ctx context.Context) error
	// Health tells an outage of the store from the failure of one
	// operation (see StoreHealth).
	Health() StoreHealth
	Close() error

	// AdminKeyHash returns the stored admin key hash, or ErrNotFound.
	AdminKeyHash(ctx context.Context) ([]byte, error)
	SetAdminKeyHash(ctx context.Context, hash []byte) error

	// CreateProject stores a project and its first API key (the one whose
	// hash is given): named DefaultKeyName, scope full, prefix unknown.
	CreateProject(ctx context.Context, p *Project, apiKeyHash []byte) error
	GetProject(ctx context.Context, id string) (*Project, error)
	ListProjects(ctx context.Context) ([]*Project, error)
	UpdateProject(ctx context.Context, p *Project) error
	// DeleteProject removes a project and everything in it (endpoints,
	// events, deliveries, attempts, keys, idempotency keys) in one
	// transaction; ErrNotFound when there is none.
	DeleteProject(ctx context.Context, id string) error

	// CreateKey stores a new API key of k.ProjectID (ENOTFOUND when there
	// is no such project).
	CreateKey(ctx context.Context, k *APIKey) error
	// ListKeys lists a project's API keys, oldest first (ENOTFOUND when
	// there is no such project).
	ListKeys(ctx context.Context, projectID string) ([]*APIKey, error)
	// KeyByHash finds the API key whose hash is hash and its project, or
	// ErrNotFound.
	KeyByHash(ctx context.Context, hash []byte) (*APIKey, *Project, error)
	// DeleteKey removes an API key (ENOTFOUND when the project has no such
	// key). It refuses with ECONFLICT to remove the project's last full key,
	// checked in the same transaction, so that two revocations at once cannot
	// leave a project that no key of its own may manage.
	DeleteKey(ctx context.Context, projectID, id string) error
	// NoteKeyUse records that the key with this hash was used at: its
	// LastUsedAt moves forward to at (never back; a zero at changes
	// nothing), and its Prefix is set to prefix when still unknown.
	NoteKeyUse(ctx context.Context, hash []byte, prefix string, at time.Time) error

	CreateEndpoint(ctx context.Context, e *Endpoint) error
	GetEndpoint(ctx context.Context, projectID, id string) (*Endpoint, error)
	ListEndpoints(ctx context.Context, projectID string) ([]*Endpoint, error)
	// ListEndpointsPage pages a project's endpoints in ListEndpoints' order
	// (oldest first): up to limit of them after cursor ("" for the first
	// page), and the next cursor ("" at the end).
	ListEndpointsPage(ctx context.Context, projectID, cursor string, limit int) ([]*Endpoint, string, error)
	// AllEndpoints lists every endpoint of every project (for the engine's cache).
	AllEndpoints(ctx context.Context) ([]*Endpoint, error)
	UpdateEndpoint(ctx context.Context, e *Endpoint) error
	// UpdateEndpointIfUnchanged is UpdateEndpoint on the condition that the
	// stored endpoint's UpdatedAt is still prev (as the caller read it), so
	// an edit never writes back fields someone else changed meanwhile (the
	// engine disabling the endpoint, another edit). It fails with ECONFLICT
	// otherwise, ENOTFOUND when there is no such endpoint.
	UpdateEndpointIfUnchanged(ctx context.Context, e *Endpoint, prev time.Time) error
	// UpdateEndpointHealth applies one change of the delivery engine to an
	// endpoint's health fields alone, so that an edit made through the API
	// at the same moment is never undone (a read-modify-write of the whole
	// endpoint could re-enable one just disabled). It reports whether the
	// stored endpoint changed: false when it already was so, or is gone.
	UpdateEndpointHealth(ctx context.Context, projectID, id string, u HealthUpdate) (bool, error)
	// DeleteEndpoint removes the endpoint; its pending deliveries become failed.
	DeleteEndpoint(ctx context.Context, projectID, id string) error

	// IngestEvents stores events and, in the same transaction, one pending
	// delivery per enabled endpoint of the event's project whose filter
	// matches. Events whose (project, idempotency key) was stored within the
	// last 24 h come back as the earlier event with Duplicate set. One call is
	// one commit (group commit batches many events into one call).
	IngestEvents(ctx context.Context, events []*Event) ([]IngestResult, error)
	GetEvent(ctx context.Context, projectID, id string) (*Event, error)
	// ListEvents pages newest first; it returns the next cursor ("" at the end).
	ListEvents(ctx context.Context, projectID string, f EventFilter) ([]*Event, string, error)

	GetDelivery(ctx context.Context, projectID, id string) (*Delivery, error)
	ListDeliveries(ctx context.Context, projectID, eventID string) ([]*Delivery, error)
	// OpenDeliveries calls fn for every pending or retrying delivery in the
	// given partitions (all when partitions is nil), in Seq order, so the
	// engine can rebuild its queues at start without holding payloads.
	OpenDeliveries(ctx context.Context, partitions []int, fn func(*Delivery) error) error
	// DeliveriesByID returns the deliveries with the given ids (any project);
	// unknown ids are skipped.
	DeliveriesByID(ctx context.Context, ids []string) ([]*Delivery, error)
	// EventPayloads returns the payloads of the given events, keyed by id.
	EventPayloads(ctx context.Context, eventIDs []string) (map[string][]byte, error)
	// RecordAttempts stores attempts and the delivery states they lead to, in
	// one commit, and adds them to the statistics rollups (RollupAttempts) in
	// the same commit.
	RecordAttempts(ctx context.Context, results []AttemptResult) error
	// Stats returns the stored statistics buckets q selects, in Start order
	// (only buckets where something was recorded).
	Stats(ctx context.Context, q StatsQuery) ([]StatsRow, error)
	ListAttempts(ctx context.Context, projectID, deliveryID string) ([]*Attempt, error)
	// ReopenDeliveries sets the given final deliveries back to pending (a
	// manual retry) and returns them as they now are.
	ReopenDeliveries(ctx context.Context, projectID string, ids []string) ([]*Delivery, error)
	// SearchDeliveries pages a project's deliveries newest first (by Seq,
	// then id; oldest first with f.Oldest), each with its event's type and
	// resource key; it returns the next cursor ("" at the end). It reads by
	// index whatever the filter: a project may hold millions.
	SearchDeliveries(ctx context.Context, projectID string, f DeliveryFilter) ([]*Delivery, string, error)

	InboxStore
	StateStore
	PortalStore
}

// deliveryCursorPrefix starts a delivery search cursor: n (newest first)
// or o (oldest first), then the version.
const deliveryCursorPrefix = "d1"

// EncodeDeliveryCursor returns the cursor of a delivery search page that
// ended at (seq, id), in the order oldest says.
func EncodeDeliveryCursor(seq int64, id string, oldest bool) string {
	dir := "n"
	if oldest {
		dir = "o"
	}
	return base64.RawURLEncoding.EncodeToString([]byte(dir + deliveryCursorPrefix + ":" + strconv.FormatInt(seq, 10) + ":" + id))
}

// DecodeDeliveryCursor reads a cursor EncodeDeliveryCursor made for the
// same order; anything else is EINVALID (field cursor).
func DecodeDeliveryCursor(c string, oldest bool) (seq int64, id string, err error) {
	bad := &Error{Code: EINVALID, Field: "cursor", Message: "cursor is not one this server returned for this order"}
	b, derr := base64.RawURLEncoding.DecodeString(c)
	if derr != nil || len(b) < 1 {
		return 0, "", bad
	}
	dir := "n"
	if oldest {
		dir = "o"
	}
	rest, ok := strings.CutPrefix(string(b), dir+deliveryCursorPrefix+":")
	if !ok {
		return 0, "", bad
	}
	s, id, ok := strings.Cut(rest, ":")
	if !ok || id == "" {
		return 0, "", bad
	}
	seq, perr := strconv.ParseInt(s, 10, 64)
	if perr != nil || seq <= 0 {
		return 0, "", bad
	}
	return seq, id, nil
}
