// Package storetest is the test suite every kinehook.Store implementation
// must pass (SQLite and PostgreSQL alike). It uses only the kinehook.Store
// interface, so the contract it checks is the contract of the interface.
//
// Conventions the suite relies on (implementations must follow them):
//   - open(t) returns a new, empty store and registers its Close with t.Cleanup.
//   - Times round-trip at microsecond precision at least, compared with Equal.
//   - Create* fill CreatedAt (and UpdatedAt) with the current time when zero;
//     IngestEvents fills an empty Event.ID with kinehook.NewID(PrefixEvent)
//     and a zero CreatedAt with the current time.
//   - A delivery's CreatedAt is its event's CreatedAt; its Seq is the event's
//     Seq; NextAttemptAt of a new or reopened delivery is the current time.
//   - The idempotency window is measured on event times: an event is a
//     duplicate when an earlier event of the same project with the same key
//     has CreatedAt within 24 h before the new event's CreatedAt.
//   - Not-found: kinehook.ErrorCode(err) == ENOTFOUND and
//     errors.Is(err, kinehook.ErrNotFound). Records of another project are
//     not found. ListDeliveries of an unknown event and ListAttempts of an
//     unknown delivery are not found too.
//   - One IngestEvents call is one transaction: if any event fails (e.g. its
//     id is already stored), nothing of the call is stored.
//   - A malformed ListEvents cursor is an EINVALID error.
//   - EventFilter.Since is inclusive, Until exclusive (the suite avoids
//     testing exact boundaries); so are DeliveryFilter's.
//   - Events' CreatedAt ascends with their Seq, up to kinehook.StampSkew
//     (stores may turn a time range into a Seq range): the suite's events
//     given a CreatedAt in the past are ingested in time order.
//   - A malformed SearchDeliveries cursor, or one of the other order, is
//     an EINVALID error.
package storetest

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
)

// Run runs the whole suite; each subtest calls open for a fresh, empty store
// (open registers the store's Close with t.Cleanup).
func Run(t *testing.T, open func(t *testing.T) kinehook.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s kinehook.Store)
	}{
		{"Ping", testPing},
		{"AdminKey", testAdminKey},
		{"Projects", testProjects},
		{"Endpoints", testEndpoints},
		{"EndpointDestinations", testEndpointDestinations},
		{"EndpointNotFound", testEndpointNotFound},
		{"EndpointHealth", testEndpointHealth},
		{"EndpointUpdateIfUnchanged", testEndpointUpdateIfUnchanged},
		{"EndpointBreaker", testEndpointBreaker},
		{"StatsRollups", testStatsRollups},
		{"IngestFanOut", testIngestFanOut},
		{"IngestPayloadAndSeq", testIngestPayloadAndSeq},
		{"IngestIdempotency", testIngestIdempotency},
		{"IngestIdempotencyExpiry", testIngestIdempotencyExpiry},
		{"IngestEmptyAndNoEndpoints", testIngestEmptyAndNoEndpoints},
		{"IngestAtomic", testIngestAtomic},
		{"ListEventsPaging", testListEventsPaging},
		{"ListEventsFilters", testListEventsFilters},
		{"ListEndpointsPaging", testListEndpointsPaging},
		{"Deliveries", testDeliveries},
		{"OpenDeliveries", testOpenDeliveries},
		{"RecordAttempts", testRecordAttempts},
		{"RecordAttemptsLargeBatch", testRecordAttemptsLargeBatch},
		{"ReopenDeliveries", testReopenDeliveries},
		{"SearchDeliveries", testSearchDeliveries},
		{"SearchDeliveriesPaging", testSearchDeliveriesPaging},
		{"SearchDeliveriesTimeRange", testSearchDeliveriesTimeRange},
		{"DeleteEndpoint", testDeleteEndpoint},
		{"ConcurrentIngest", testConcurrentIngest},
		{"Keys", testKeys},
		{"KeysLastFull", testKeysLastFull},
		{"DeleteProject", testDeleteProject},
		{"Consistency", testConsistency},
		{"TraceContext", testTraceContext},
		{"InboxSources", testInboxSources},
		{"InboxRetries", testInboxRetries},
		{"State", testState},
		{"StateHistoryBound", testStateHistoryBound},
		{"Rejected", testRejected},
		{"PortalOrigins", testPortalOrigins},
		{"PortalSessions", testPortalSessions},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			if s == nil {
				t.Fatal("open returned a nil store")
			}
			tc.fn(t, s)
		})
	}
}

func testPing(t *testing.T, s kinehook.Store) {
	requireNoErr(t, s.Ping(t.Context()), "Ping")
}

func testAdminKey(t *testing.T, s kinehook.Store) {
	ctx := t.Context()
	_, err := s.AdminKeyHash(ctx)
	assertNotFound(t, err, "AdminKeyHash on an empty store")

	for i, key := range []string{"admin-one", "admin-two"} {
		want := kinehook.HashKey(key)
		requireNoErr(t, s.SetAdminKeyHash(ctx, want), "SetAdminKeyHash")
		got, err := s.AdminKeyHash(ctx)
		requireNoErr(t, err, "AdminKeyHash")
		if string(got) != string(want) {
			t.Errorf("round %d: AdminKeyHash = %x, want %x", i, got, want)
		}
	}
}

func testProjects(t *testing.T, s kinehook.Store) {
	ctx := t.Context()
	p1, key1 := newProject(t, s, "Alpha")
	p2, key2 := newProject(t, s, "Бета") // non-ASCII names round-trip

	// A zero CreatedAt is filled by the store.
	p3 := &kinehook.Project{ID: kinehook.NewID(kinehook.PrefixProject), Name: "Gamma"}
	before := now()
	requireNoErr(t, s.CreateProject(ctx, p3, kinehook.HashKey("gamma-key")), "CreateProject p3")
	got3, err := s.GetProject(ctx, p3.ID)
	requireNoErr(t, err, "GetProject p3")
	assertTimeNear(t, "p3.CreatedAt", got3.CreatedAt, before, 5e9)

	for _, want := range []*kinehook.Project{p1, p2} {
		got, err := s.GetProject(ctx, want.ID)
		requireNoErr(t, err, "GetProject")
		if got.ID != want.ID || got.Name != want.Name || got.RetentionDays != 0 || got.OperationsURL != "" {
			t.Errorf("GetProject = %+v, want %+v", got, want)
		}
		assertTimeEq(t, "project CreatedAt", got.CreatedAt, want.CreatedAt)
	}
	_, err = s.GetProject(ctx, kinehook.NewID(kinehook.PrefixProject))
	assertNotFound(t, err, "GetProject(unknown)")

	list, err := s.ListProjects(ctx)
	requireNoErr(t, err, "ListProjects")
	seen := map[string]string{}
	for _, p := range list {
		seen[p.ID] = p.Name
	}
	for _, p := range []*kinehook.Project{p1, p2, p3} {
		if seen[p.ID] != p.Name {
			t.Errorf("ListProjects lacks %s (%q); got %v", p.ID, p.Name, seen)
		}
	}

	// Key lookup.
	for _, tc := range []struct {
		key  string
		want string
	}{{key1, p1.ID}, {key2, p2.ID}, {"gamma-key", p3.ID}} {
		k, got, err := s.KeyByHash(ctx, kinehook.HashKey(tc.key))
		requireNoErr(t, err, "KeyByHash")
		if got.ID != tc.want || k.ProjectID != tc.want {
			t.Errorf("KeyByHash(%s) = %s (key of %s), want %s", tc.key, got.ID, k.ProjectID, tc.want)
		}
		// The project's first key: "default", scope full.
		if k.Name != kinehook.DefaultKeyName || k.Scope != kinehook.ScopeFull || !strings.HasPrefix(k.ID, kinehook.PrefixKey+"_") {
			t.Errorf("KeyByHash(%s) = %+v, want the project's default full key", tc.key, k)
		}
	}
	_, _, err = s.KeyByHash(ctx, kinehook.HashKey("nobody's key"))
	assertNotFound(t, err, "KeyByHash(unknown)")

	// Update.
	p1.Name = "Alpha renamed"
	p1.RetentionDays = 7
	p1.OperationsURL = "https://ops.example.com/hook"
	requireNoErr(t, s.UpdateProject(ctx, p1), "UpdateProject")
	got, err := s.GetProject(ctx, p1.ID)
	requireNoErr(t, err, "GetProject after update")
	if got.Name != p1.Name || got.RetentionDays != 7 || got.OperationsURL != p1.OperationsURL {
		t.Errorf("after UpdateProject: %+v, want %+v", got, p1)
	}
	assertTimeEq(t, "CreatedAt after update", got.CreatedAt, p1.CreatedAt)
	// The key still maps to the project after an update.
	_, got, err = s.KeyByHash(ctx, kinehook.HashKey(key1))
	requireNoErr(t, err, "KeyByHash after update")
	if got.Name != p1.Name || got.RetentionDays != 7 || got.OperationsURL != p1.OperationsURL {
		t.Errorf("KeyByHash after update: project %+v, want %+v", got, p1)
	}
	// Other projects are untouched.
	got, err = s.GetProject(ctx, p2.ID)
	requireNoErr(t, err, "GetProject p2")
	if got.Name != p2.Name || got.RetentionDays != 0 {
		t.Errorf("p2 changed by an update of p1: %+v", got)
	}

	err = s.UpdateProject(ctx, &kinehook.Project{ID: kinehook.NewID(kinehook.PrefixProject), Name: "ghost"})
	assertNotFound(t, err, "UpdateProject(unknown)")
}

func testEndpoints(t *testing.T, s kinehook.Store) {
	ctx := t.Context()
	p1, _ := newProject(t, s, "p1")
	p2, _ := newProject(t, s, "p2")
	ts := now()

	full := newEndpoint(t, s, p1.ID, func(e *kinehook.Endpoint) {
		e.Description = "orders service — prod"
		e.EventTypes = []string{"media.update.status", "live.*"}
		e.Headers = map[string]string{"X-Team": "video", "X-Env": "prod"}
		e.Secrets = []kinehook.EndpointSecret{
			{Value: "whsec_" + randHex(24)},
			{Value: "whsec_" + randHex(24), ExpiresAt: ts.Add(24 * time.Hour)},
		}
		e.Scheme = kinehook.SchemeV1a
		e.Name = "kinescope hook"
		e.Login = "user"
		e.Password = "p@ss:word"
		e.RateLimit = 12.5
		e.MaxInFlight = 3
		e.FailingSince = ts.Add(-time.Hour)
	})
	disabled := newEndpoint(t, s, p1.ID, func(e *kinehook.Endpoint) {
		e.Disabled = true
		e.DisabledReason = "endpoint answered 410 Gone"
	})
	other := newEndpoint(t, s, p2.ID, nil)

	for _, want := range []*kinehook.Endpoint{full, disabled, other} {
		got, err := s.GetEndpoint(ctx, want.ProjectID, want.ID)
		requireNoErr(t, err, "GetEndpoint")
		compareEndpoint(t, "GetEndpoint "+want.ID, got, want)
	}

	// A zero CreatedAt/UpdatedAt is filled by the store.
	bare := &kinehook.Endpoint{ID: kinehook.NewID(kinehook.PrefixEndpoint), ProjectID: p2.ID, URL: "http://example.org/x",
		Secrets: []kinehook.EndpointSecret{{Value: "whsec_" + randHex(24)}}}
	requireNoErr(t, s.CreateEndpoint(ctx, bare), "CreateEndpoint bare")
	gotBare, err := s.GetEndpoint(ctx, p2.ID, bare.ID)
	requireNoErr(t, err, "GetEndpoint bare")
	assertTimeNear(t, "bare.CreatedAt", gotBare.CreatedAt, ts, 5*time.Second)
	assertTimeNear(t, "bare.UpdatedAt", gotBare.UpdatedAt, ts, 5*time.Second)
	if len(gotBare.EventTypes) != 0 || len(gotBare.Headers) != 0 || gotBare.Disabled {
		t.Errorf("bare endpoint came back with %+v", gotBare)
	}

	list, err := s.ListEndpoints(ctx, p1.ID)
	requireNoErr(t, err, "ListEndpoints p1")
	if got, want := sortedIDs(endpointIDs(list)), sortedIDs([]string{full.ID, disabled.ID}); !equalStrings(got, want) {
		t.Errorf("ListEndpoints(p1) = %v, want %v", got, want)
	}
	for _, e := range list {
		if e.ID == full.ID {
			compareEndpoint(t, "ListEndpoints entry", e, full)
		}
	}
	all, err := s.AllEndpoints(ctx)
	requireNoErr(t, err, "AllEndpoints")
	have := map[string]*kinehook.Endpoint{}
	for _, e := range all {
		have[e.ID] = e
	}
	for _, want := range []*kinehook.Endpoint{full, disabled, other} {
		if have[want.ID] == nil {
			t.Errorf("AllEndpoints lacks %s", want.ID)
			continue
		}
		compareEndpoint(t, "AllEndpoints entry", have[want.ID], want)
	}

	// Update every field, including rotation and clearing.
	upd := *full
	upd.URL = "https://example.com/v2"
	upd.Description = ""
	upd.EventTypes = []string{"live.finished"}
	upd.Headers = map[string]string{"X-Only": "1"}
	upd.Secrets = []kinehook.EndpointSecret{{Value: "whsec_" + randHex(24)}, {Value: full.Secrets[0].Value, ExpiresAt: ts.Add(24 * time.Hour)}}
	upd.Disabled = true
	upd.DisabledReason = "failing for 5 days"
	upd.Scheme = kinehook.SchemeV1
	upd.Login = ""
	upd.Password = ""
	upd.RateLimit = 0
	upd.MaxInFlight = 10
	upd.FailingSince = time.Time{}
	upd.UpdatedAt = ts.Add(time.Minute)
	requireNoErr(t, s.UpdateEndpoint(ctx, &upd), "UpdateEndpoint")
	got, err := s.GetEndpoint(ctx, p1.ID, full.ID)
	requireNoErr(t, err, "GetEndpoint after update")
	compareEndpoint(t, "after UpdateEndpoint", got, &upd)

	// Re-enable clears the reason.
	upd.Disabled, upd.DisabledReason = false, ""
	requireNoErr(t, s.UpdateEndpoint(ctx, &upd), "UpdateEndpoint re-enable")
	got, err = s.GetEndpoint(ctx, p1.ID, full.ID)
	requireNoErr(t, err, "GetEndpoint after re-enable")
	compareEndpoint(t, "after re-enable", got, &upd)

	// The other endpoints are untouched.
	got, err = s.GetEndpoint(ctx, p1.ID, disabled.ID)
	requireNoErr(t, err, "GetEndpoint disabled")
	compareEndpoint(t, "untouched endpoint", got, disabled)

	// Delete.
	requireNoErr(t, s.DeleteEndpoint(ctx, p1.ID, disabled.ID), "DeleteEndpoint")
	_, err = s.GetEndpoint(ctx, p1.ID, disabled.ID)
	assertNotFound(t, err, "GetEndpoint after delete")
	list, err = s.ListEndpoints(ctx, p1.ID)
	requireNoErr(t, err, "ListEndpoints after delete")
	if ids := endpointIDs(list); !equalStrings(ids, []string{full.ID}) {
		t.Errorf("ListEndpoints after delete = %v, want [%s]", ids, full.ID)
	}
	assertNotFound(t, s.DeleteEndpoint(ctx, p1.ID, disabled.ID), "DeleteEndpoint twice")
}

// testEndpointDestinations: an endpoint's type, config and credentials
// round-trip through create, update and every read; a webhook reads back
// with type "" (TypeOf: webhook), whatever the store keeps.
func testEndpointDestinations(t *testing.T, s kinehook.Store) {
	ctx := t.Context()
	p, _ := newProject(t, s, "dest")
	hook := newEndpoint(t, s, p.ID, nil)
	d := newEndpoint(t, s, p.ID, func(e *kinehook.Endpoint) {
		e.Type, e.URL = kinehook.EndpointNATS, ""
		e.Config = json.RawMessage(`{"subject":"kinehook.events","url":"nats://127.0.0.1:4222"}`)
		e.Credentials = map[string]string{"user": "svc", "password": "p@ss \"w\" ü"}
	})
	noCreds := newEndpoint(t, s, p.ID, func(e *kinehook.Endpoint) {
		e.Type, e.URL = kinehook.EndpointKafka, ""
		e.Config = json.RawMessage(`{"brokers":["b1:9092","b2:9092"],"topic":"t"}`)
	})
	for _, want := range []*kinehook.Endpoint{hook, d, noCreds} {
		got, err := s.GetEndpoint(ctx, p.ID, want.ID)
		requireNoErr(t, err, "GetEndpoint")
		compareEndpoint(t, "GetEndpoint "+want.ID, got, want)
		if want == hook && (got.Type != "" || got.Config != nil || got.Credentials != nil) {
			t.Errorf("webhook came back with type %q, config %s, credentials %v", got.Type, got.Config, got.Credentials)
		}
	}
	list, err := s.ListEndpoints(ctx, p.ID)
	requireNoErr(t, err, "ListEndpoints")
	for _, e := range list {
		if e.ID == d.ID {
			compareEndpoint(t, "ListEndpoints entry", e, d)
		}
	}
	all, err := s.AllEndpoints(ctx)
	requireNoErr(t, err, "AllEndpoints")
	for _, e := range all {
		if e.ID == d.ID {
			compareEndpoint(t, "AllEndpoints entry", e, d)
		}
	}

	// Update: new config, one credential fewer; then back to a webhook.
	d.Config = json.RawMessage(`{"subject":"other","url":"nats://n2:4222"}`)
	d.Credentials = map[string]string{"token": "t0k"}
	d.UpdatedAt = d.UpdatedAt.Add(time.Second)
	requireNoErr(t, s.UpdateEndpoint(ctx, d), "UpdateEndpoint")
	got, err := s.GetEndpoint(ctx, p.ID, d.ID)
	requireNoErr(t, err, "GetEndpoint after update")
	compareEndpoint(t, "after update", got, d)

	d.Type, d.Config, d.Credentials, d.URL = "", nil, nil, "https://example.com/back"
	d.UpdatedAt = d.UpdatedAt.Add(time.Second)
	requireNoErr(t, s.UpdateEndpoint(ctx, d), "UpdateEndpoint to webhook")
	got, err = s.GetEndpoint(ctx, p.ID, d.ID)
	requireNoErr(t, err, "GetEndpoint after webhook")
	compareEndpoint(t, "back to webhook", got, d)
	if got.Credentials != nil || got.Config != nil {
		t.Errorf("webhook kept config %s, credentials %v", got.Config, got.Credentials)
	}
}

func testEndpointNotFound(t *testing.T, s kinehook.Store) {
	ctx := t.Context()
	p1, _ := newProject(t, s, "p1")
	p2, _ := newProject(t, s, "p2")
	e := newEndpoint(t, s, p1.ID, nil)

	_, err := s.GetEndpoint(ctx, p2.ID, e.ID)
	assertNotFound(t, err, "GetEndpoint(other project)")
	_, err = s.GetEndpoint(ctx, p1.ID, kinehook.NewID(kinehook.PrefixEndpoint))
	assertNotFound(t, err, "GetEndpoint(unknown)")

	moved := *e
	moved.ProjectID = p2.ID
	moved.URL = "https://evil.example.com/"
	assertNotFound(t, s.UpdateEndpoint(ctx, &moved), "UpdateEndpoint(other project)")
	ghost := *e
	ghost.ID = kinehook.NewID(kinehook.PrefixEndpoint)
	assertNotFound(t, s.UpdateEndpoint(ctx, &ghost), "UpdateEndpoint(unknown)")
	assertNotFound(t, s.DeleteEndpoint(ctx, p2.ID, e.ID), "DeleteEndpoint(other project)")

	got, err := s.GetEndpoint(ctx, p1.ID, e.ID)
	requireNoErr(t, err, "GetEndpoint after foreign update/delete")
	compareEndpoint(t, "endpoint after foreign update/delete", got, e)

	list, err := s.ListEndpoints(ctx, p2.ID)
	requireNoErr(t, err, "ListEndpoints p2")
	if len(list) != 0 {
		t.Errorf("ListEndpoints(p2) = %v, want none", endpointIDs(list))
	}
}

func endpointIDs(es []*kinehook.Endpoint) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// testEndpointHealth: each health change touches its own fields only, only
// when it changes something, and never undoes an edit made meanwhile.
func testEndpointHealth(t *testing.T, s kinehook.Store) {
	ctx := t.Context()
	p, _ := newProject(t, s, "health")
	other, _ := newProject(t, s, "other")
	ep := newEndpoint(t, s, p.ID, func(e *kinehook.Endpoint) { e.Description = "orders" })
	get := func() *kinehook.Endpoint {
		t.Helper()
		e, err := s.GetEndpoint(ctx, p.ID, ep.ID)
		requireNoErr(t, err, "GetEndpoint")
		return e
	}
	apply := func(u kinehook.HealthUpdate, want bool) {
		t.Helper()
		changed, err := s.UpdateEndpointHealth(ctx, p.ID, ep.ID, u)
		requireNoErr(t, err, "UpdateEndpointHealth")
		if changed != want {
			t.Fatalf("UpdateEndpointHealth(%+v) changed = %v, want %v", u, changed, want)
		}
	}
	since := now().Add(-time.Hour)
	at := now().Add(time.Minute)
	apply(kinehook.HealthUpdate{Change: kinehook.HealthFailing, FailingSince: since, At: at}, true)
	if e := get(); !e.FailingSince.Equal(since) || !e.UpdatedAt.Equal(at) || e.Description != "orders" || e.Disabled {
		t.Fatalf("after failing: failing_since %v updated_at %v description %q disabled %v", e.FailingSince, e.UpdatedAt, e.Description, e.Disabled)
	}
	// A later failure does not move the start of the run.
	apply(kinehook.HealthUpdate{Change: kinehook.HealthFailing, FailingSince: since.Add(time.Minute), At: at}, false)
	if e := get(); !e.FailingSince.Equal(since) {
		t.Fatalf("failing_since moved to %v", e.FailingSince)
	}
	apply(kinehook.HealthUpdate{Change: kinehook.HealthRecovered, At: at}, true)
	if e := get(); !e.FailingSince.IsZero() {
		t.Fatalf("failing_since %v after recovery", e.FailingSince)
	}
	apply(kinehook.HealthUpdate{Change: kinehook.HealthRecovered, At: at}, false)

	// An edit made between the engine's decision and its write is kept: the
	// user disabled the endpoint with a reason of their own.
	e := get()
	e.Disabled, e.DisabledReason, e.Description = true, "paused by the owner", "orders v2"
	e.UpdatedAt = now()
	requireNoErr(t, s.UpdateEndpoint(ctx, e), "UpdateEndpoint")
	apply(kinehook.HealthUpdate{Change: kinehook.HealthDisabled, Reason: "endpoint answered 410 Gone", At: at}, false)
	apply(kinehook.HealthUpdate{Change: kinehook.HealthFailing, FailingSince: since, At: at}, true)
	if e := get(); !e.Disabled || e.DisabledReason != "paused by the owner" || e.Description != "orders v2" || !e.FailingSince.Equal(since) {
		t.Fatalf("after health changes over an edit: %+v", e)
	}
	// Enabled again by the user: the engine may disable it.
	e = get()
	e.Disabled, e.DisabledReason = false, ""
	requireNoErr(t, s.UpdateEndpoint(ctx, e), "UpdateEndpoint")
	apply(kinehook.HealthUpdate{Change: kinehook.HealthDisabled, Reason: "endpoint answered 410 Gone", At: at}, true)
	if e := get(); !e.Disabled || e.DisabledReason != "endpoint answered 410 Gone" || e.Description != "orders v2" {
		t.Fatalf("after disable: %+v", e)
	}

	// Another project's id, or no such endpoint: nothing changes.
	for _, tc := range []struct{ project, id string }{{other.ID, ep.ID}, {p.ID, kinehook.NewID(kinehook.PrefixEndpoint)}} {
		changed, err := s.UpdateEndpointHealth(ctx, tc.project, tc.id, kinehook.HealthUpdate{Change: kinehook.HealthRecovered, At: at})
		if err != nil || changed {
			t.Errorf("UpdateEndpointHealth(%s, %s) = %v, %v; want false, nil", tc.project, tc.id, changed, err)
		}
	}
	if e := get(); e.FailingSince.IsZero() {
		t.Error("another project's health update reached this endpoint")
	}
	if _, err := s.UpdateEndpointHealth(ctx, p.ID, ep.ID, kinehook.HealthUpdate{Change: 0}); err == nil {
		t.Error("an unknown change was accepted")
	}
}

// testEndpointUpdateIfUnchanged: an edit holds only over the version it read.
func testEndpointUpdateIfUnchanged(t *testing.T, s kinehook.Store) {
	ctx := t.Context()
	p, _ := newProject(t, s, "versions")
	ep := newEndpoint(t, s, p.ID, nil)
	read, err := s.GetEndpoint(ctx, p.ID, ep.ID)
	requireNoErr(t, err, "GetEndpoint")
	prev := read.UpdatedAt

	edit := *read
	edit.Description = "first edit"
	edit.UpdatedAt = prev.Add(time.Second)
	requireNoErr(t, s.UpdateEndpointIfUnchanged(ctx, &edit, prev), "UpdateEndpointIfUnchanged over the version read")

	// A second edit made from the same (now stale) read is refused and
	// changes nothing.
	stale := *read
	stale.Description = "stale edit"
	stale.Disabled = true
	stale.UpdatedAt = prev.Add(2 * time.Second)
	if err := s.UpdateEndpointIfUnchanged(ctx, &stale, prev); kinehook.ErrorCode(err) != kinehook.ECONFLICT {
		t.Fatalf("edit over a stale read: %v, want ECONFLICT", err)
	}
	got, err := s.GetEndpoint(ctx, p.ID, ep.ID)
	requireNoErr(t, err, "GetEndpoint")
	if got.Description != "first edit" || got.Disabled {
		t.Fatalf("a refused edit changed the endpoint: %q, disabled %v", got.Description, got.Disabled)
	}

	// A health change moves the version too.
	_, err = s.UpdateEndpointHealth(ctx, p.ID, ep.ID, kinehook.HealthUpdate{Change: kinehook.HealthDisabled, Reason: "410", At: got.UpdatedAt.Add(time.Second)})
	requireNoErr(t, err, "UpdateEndpointHealth")
	again := *got
	again.Description = "after the engine"
	again.UpdatedAt = got.UpdatedAt.Add(3 * time.Second)
	if err := s.UpdateEndpointIfUnchanged(ctx, &again, got.UpdatedAt); kinehook.ErrorCode(err) != kinehook.ECONFLICT {
		t.Fatalf("edit over a read older than a health change: %v, want ECONFLICT", err)
	}

	missing := *got
	missing.ID = kinehook.NewID(kinehook.PrefixEndpoint)
	if err := s.UpdateEndpointIfUnchanged(ctx, &missing, got.UpdatedAt); !errors.Is(err, kinehook.ErrNotFound) && kinehook.ErrorCode(err) != kinehook.ENOTFOUND {
		t.Fatalf("edit of a missing endpoint: %v, want not found", err)
	}
}
