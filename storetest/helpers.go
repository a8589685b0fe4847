package storetest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
)

// now returns the current time at microsecond precision (what every backend
// keeps), so times the suite writes must come back Equal.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func requireNoErr(t testing.TB, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// assertNotFound checks the not-found contract: ErrorCode is ENOTFOUND and
// errors.Is matches kinehook.ErrNotFound.
func assertNotFound(t testing.TB, err error, what string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: got nil error, want not found", what)
		return
	}
	if code := kinehook.ErrorCode(err); code != kinehook.ENOTFOUND {
		t.Errorf("%s: ErrorCode(%v) = %q, want %q", what, err, code, kinehook.ENOTFOUND)
	}
	if !errors.Is(err, kinehook.ErrNotFound) {
		t.Errorf("%s: errors.Is(%v, kinehook.ErrNotFound) = false", what, err)
	}
}

func assertTimeEq(t testing.TB, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// assertTimeNear checks a time the store set itself (e.g. "now").
func assertTimeNear(t testing.TB, what string, got, want time.Time, tol time.Duration) {
	t.Helper()
	if d := got.Sub(want); d < -tol || d > tol {
		t.Errorf("%s = %v, want within %v of %v", what, got, tol, want)
	}
}

func newProject(t testing.TB, s kinehook.Store, name string) (*kinehook.Project, string) {
	t.Helper()
	key := "khp_" + randHex(16)
	p := &kinehook.Project{ID: kinehook.NewID(kinehook.PrefixProject), Name: name, CreatedAt: now()}
	requireNoErr(t, s.CreateProject(t.Context(), p, kinehook.HashKey(key)), "CreateProject")
	return p, key
}

func newEndpoint(t testing.TB, s kinehook.Store, projectID string, mutate func(*kinehook.Endpoint)) *kinehook.Endpoint {
	t.Helper()
	ts := now()
	e := &kinehook.Endpoint{
		ID:        kinehook.NewID(kinehook.PrefixEndpoint),
		ProjectID: projectID,
		URL:       "https://example.com/hooks/" + randHex(4),
		Secrets:   []kinehook.EndpointSecret{{Value: "whsec_" + randHex(24)}},
		Scheme:    kinehook.SchemeV1,
		CreatedAt: ts,
		UpdatedAt: ts,
	}
	if mutate != nil {
		mutate(e)
	}
	requireNoErr(t, s.CreateEndpoint(t.Context(), e), "CreateEndpoint")
	return e
}

// newEvent builds an event the way the API does: id and time set, payload
// exactly the posted body, resource key extracted.
func newEvent(projectID string, typ kinehook.EventType, resource string) *kinehook.Event {
	var payload string
	if typ.IsLive() {
		payload = fmt.Sprintf(`{"event":%q,"data":{"event_id":%q}}`, typ, resource)
	} else {
		payload = fmt.Sprintf(`{"event":%q,"data":{"id":%q,"status":"done"}}`, typ, resource)
	}
	return &kinehook.Event{
		ID:          kinehook.NewID(kinehook.PrefixEvent),
		ProjectID:   projectID,
		Type:        typ,
		Payload:     []byte(payload),
		ResourceKey: resource,
		CreatedAt:   now(),
	}
}

func ingest(t testing.TB, s kinehook.Store, events ...*kinehook.Event) []kinehook.IngestResult {
	t.Helper()
	res, err := s.IngestEvents(t.Context(), events)
	requireNoErr(t, err, "IngestEvents")
	if len(res) != len(events) {
		t.Fatalf("IngestEvents returned %d results for %d events", len(res), len(events))
	}
	return res
}

func deliveryIDs(ds []*kinehook.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}

func sortedIDs(ids []string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}

func endpointIDsOf(ds []*kinehook.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.EndpointID
	}
	slices.Sort(out)
	return out
}

// compareEndpoint checks every stored field of an endpoint.
func compareEndpoint(t testing.TB, what string, got, want *kinehook.Endpoint) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s: nil endpoint", what)
	}
	eqS := func(f, g, w string) {
		if g != w {
			t.Errorf("%s.%s = %q, want %q", what, f, g, w)
		}
	}
	eqS("ID", got.ID, want.ID)
	eqS("ProjectID", got.ProjectID, want.ProjectID)
	eqS("URL", got.URL, want.URL)
	eqS("Description", got.Description, want.Description)
	eqS("DisabledReason", got.DisabledReason, want.DisabledReason)
	eqS("Scheme", got.Scheme, want.Scheme)
	eqS("Name", got.Name, want.Name)
	eqS("Login", got.Login, want.Login)
	eqS("Password", got.Password, want.Password)
	eqS("Type", got.TypeOf(), want.TypeOf())
	eqS("Config", string(got.Config), string(want.Config))
	if len(got.Credentials) != 0 || len(want.Credentials) != 0 {
		if !maps.Equal(got.Credentials, want.Credentials) {
			t.Errorf("%s.Credentials = %v, want %v", what, got.Credentials, want.Credentials)
		}
	}
	if got.Disabled != want.Disabled {
		t.Errorf("%s.Disabled = %v, want %v", what, got.Disabled, want.Disabled)
	}
	if got.RateLimit != want.RateLimit {
		t.Errorf("%s.RateLimit = %v, want %v", what, got.RateLimit, want.RateLimit)
	}
	if got.MaxInFlight != want.MaxInFlight {
		t.Errorf("%s.MaxInFlight = %v, want %v", what, got.MaxInFlight, want.MaxInFlight)
	}
	if !slices.Equal(got.EventTypes, want.EventTypes) {
		t.Errorf("%s.EventTypes = %q, want %q", what, got.EventTypes, want.EventTypes)
	}
	if len(got.Headers) != 0 || len(want.Headers) != 0 {
		if !maps.Equal(got.Headers, want.Headers) {
			t.Errorf("%s.Headers = %v, want %v", what, got.Headers, want.Headers)
		}
	}
	if len(got.Secrets) != len(want.Secrets) {
		t.Errorf("%s.Secrets has %d entries, want %d", what, len(got.Secrets), len(want.Secrets))
	} else {
		for i := range want.Secrets {
			eqS(fmt.Sprintf("Secrets[%d].Value", i), got.Secrets[i].Value, want.Secrets[i].Value)
			assertTimeEq(t, fmt.Sprintf("%s.Secrets[%d].ExpiresAt", what, i), got.Secrets[i].ExpiresAt, want.Secrets[i].ExpiresAt)
		}
	}
	assertTimeEq(t, what+".FailingSince", got.FailingSince, want.FailingSince)
	assertTimeEq(t, what+".CreatedAt", got.CreatedAt, want.CreatedAt)
	assertTimeEq(t, what+".UpdatedAt", got.UpdatedAt, want.UpdatedAt)
}

// compareDelivery checks the fields two reads of one delivery must agree on.
func compareDelivery(t testing.TB, what string, got, want *kinehook.Delivery) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s: nil delivery", what)
	}
	if got.ID != want.ID || got.ProjectID != want.ProjectID || got.EventID != want.EventID ||
		got.EndpointID != want.EndpointID || got.EventType != want.EventType || got.ResourceKey != want.ResourceKey ||
		got.Seq != want.Seq || got.Partition != want.Partition || got.Status != want.Status ||
		got.Attempts != want.Attempts || got.LastStatusCode != want.LastStatusCode || got.LastError != want.LastError {
		t.Errorf("%s:\n got %+v\nwant %+v", what, *got, *want)
	}
	// The engine routes by the stored partition without rehashing.
	if p := kinehook.PartitionOf(got.EndpointID, got.ResourceKey); got.Partition != p {
		t.Errorf("%s: partition %d, want PartitionOf(endpoint, resource) = %d", what, got.Partition, p)
	}
	assertTimeEq(t, what+".NextAttemptAt", got.NextAttemptAt, want.NextAttemptAt)
	assertTimeEq(t, what+".CreatedAt", got.CreatedAt, want.CreatedAt)
}
