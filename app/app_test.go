package app

import (
	"context"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/sqlite"
)

// recorder is a Dispatcher that stores events like the engine does (through
// the store's IngestEvents) and records the endpoint changes it is told of.
type recorder struct {
	kinehook.Dispatcher // Retry and Recover are not used here
	store               kinehook.Store
	mu                  sync.Mutex
	changed             []string // "pid/eid"
}

func (r *recorder) EndpointChanged(_ context.Context, pid, eid string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.changed = append(r.changed, pid+"/"+eid)
}

func (r *recorder) ProjectDeleted(_ context.Context, pid string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.changed = append(r.changed, pid+" deleted")
}

func (r *recorder) Publish(ctx context.Context, ev *kinehook.Event) (kinehook.IngestResult, error) {
	res, err := r.store.IngestEvents(ctx, []*kinehook.Event{ev})
	if err != nil {
		return kinehook.IngestResult{}, err
	}
	return res[0], nil
}

// take returns the changes recorded since the last call.
func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.changed
	r.changed = nil
	return out
}

// newTestApp is an App over a real SQLite store and a recorder.
func newTestApp(t *testing.T) (*App, *recorder) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "kinehook.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	rec := &recorder{store: st}
	a, err := New(Config{Store: st, Dispatcher: rec, AllowPrivateNetworks: true})
	if err != nil {
		t.Fatal(err)
	}
	return a, rec
}

func ptr[T any](v T) *T { return &v }

// TestCheckDescriptionCountsCharacters: the description limit counts
// characters, as the API documents, never bytes.
func TestCheckDescriptionCountsCharacters(t *testing.T) {
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"empty", "", true},
		{"ascii at the limit", strings.Repeat("a", MaxDescription), true},
		{"ascii over the limit", strings.Repeat("a", MaxDescription+1), false},
		{"two-byte characters at the limit", strings.Repeat("é", MaxDescription), true},
		{"three-byte characters at the limit", strings.Repeat("日", MaxDescription), true},
		{"four-byte characters at the limit", strings.Repeat("🎬", MaxDescription), true},
		{"two-byte characters over the limit", strings.Repeat("é", MaxDescription+1), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckDescription(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("CheckDescription(%d bytes) = %v, want ok=%v", len(tc.in), err, tc.ok)
			}
			if err != nil && (kinehook.ErrorCode(err) != kinehook.EINVALID || !strings.Contains(err.Error(), "description")) {
				t.Fatalf("error %v", err)
			}
		})
	}
}

func TestFieldRules(t *testing.T) {
	tests := []struct {
		name  string
		err   error
		field string // "" when the value is accepted
	}{
		{"name trimmed", func() error { _, err := CheckProjectName("  x  "); return err }(), ""},
		{"name blank", func() error { _, err := CheckProjectName(" \t"); return err }(), "name"},
		{"name of 200 characters", func() error { _, err := CheckProjectName(strings.Repeat("ж", MaxProjectName)); return err }(), ""},
		{"name of 201 characters", func() error { _, err := CheckProjectName(strings.Repeat("ж", MaxProjectName+1)); return err }(), "name"},
		{"rate 0", CheckRateLimit(0), ""},
		{"rate at the cap", CheckRateLimit(MaxRateLimit), ""},
		{"rate over the cap", CheckRateLimit(MaxRateLimit + 1), "rate_limit"},
		{"rate negative", CheckRateLimit(-1), "rate_limit"},
		{"rate NaN", CheckRateLimit(math.NaN()), "rate_limit"},
		{"in-flight at the cap", CheckMaxInFlight(MaxInFlightCap), ""},
		{"in-flight over the cap", CheckMaxInFlight(MaxInFlightCap + 1), "max_in_flight"},
		{"in-flight negative", CheckMaxInFlight(-1), "max_in_flight"},
		{"idempotency key", CheckIdempotencyKey(strings.Repeat("k", MaxIdempotencyKey)), ""},
		{"idempotency key too long", CheckIdempotencyKey(strings.Repeat("k", MaxIdempotencyKey+1)), "Idempotency-Key"},
		{"idempotency key not UTF-8", CheckIdempotencyKey("\xff"), "Idempotency-Key"},
		{"v1 secret without prefix", CheckSecret(kinehook.SchemeV1, "abc"), "secret"},
		{"v1a secret of the wrong kind", CheckSecret(kinehook.SchemeV1a, "whsec_abc"), "secret"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var ke *kinehook.Error
			if tc.field == "" {
				if tc.err != nil {
					t.Fatalf("refused: %v", tc.err)
				}
				return
			}
			if tc.err == nil {
				t.Fatal("accepted")
			}
			ke, _ = tc.err.(*kinehook.Error)
			if ke == nil || ke.Code != kinehook.EINVALID || ke.Field != tc.field {
				t.Fatalf("error %#v, want EINVALID on %q", tc.err, tc.field)
			}
		})
	}
}

// TestChangesNotifyTheEngine: every use case that changes an endpoint ends
// by telling the engine, once, of that endpoint; refused changes tell it
// nothing.
func TestChangesNotifyTheEngine(t *testing.T) {
	ctx := context.Background()
	a, rec := newTestApp(t)
	p, _, err := a.CreateProject(ctx, ProjectInput{Name: "p"})
	if err != nil {
		t.Fatal(err)
	}
	var eid string
	ops := kinehook.OperationsEndpointID(p.ID)
	tests := []struct {
		name string
		do   func() (string, error) // the endpoint it changes
		want bool                   // the engine hears of it
	}{
		{"create", func() (string, error) {
			e, err := a.CreateEndpoint(ctx, p.ID, EndpointInput{URL: ptr("http://127.0.0.1:9/a")})
			if e != nil {
				eid = e.ID
			}
			return eid, err
		}, true},
		{"create refused", func() (string, error) {
			_, err := a.CreateEndpoint(ctx, p.ID, EndpointInput{URL: ptr("http://127.0.0.1:9/a"), Description: ptr(strings.Repeat("x", MaxDescription+1))})
			return "", err
		}, false},
		{"patch", func() (string, error) {
			_, err := a.PatchEndpoint(ctx, p.ID, eid, EndpointInput{Description: ptr("d")})
			return eid, err
		}, true},
		{"disable", func() (string, error) {
			_, err := a.PatchEndpoint(ctx, p.ID, eid, EndpointInput{Disabled: ptr(true), DisableReason: "disabled in the dashboard"})
			return eid, err
		}, true},
		{"patch of a stale version", func() (string, error) {
			_, err := a.PatchEndpoint(ctx, p.ID, eid, EndpointInput{Description: ptr("late"), Seen: time.Unix(1, 0)})
			if kinehook.ErrorCode(err) != kinehook.ECONFLICT {
				t.Errorf("stale patch: %v, want ECONFLICT", err)
			}
			return "", err
		}, false},
		{"rotate", func() (string, error) { _, err := a.RotateSecret(ctx, p.ID, eid, "", time.Time{}); return eid, err }, true},
		{"webhook update", func() (string, error) {
			_, err := a.UpdateWebhook(ctx, p.ID, eid, WebhookInput{Name: ptr("k")})
			return eid, err
		}, true},
		{"operations_url set", func() (string, error) {
			_, err := a.UpdateProject(ctx, p.ID, ProjectPatch{OperationsURL: ptr("http://127.0.0.1:9/ops")})
			return ops, err
		}, true},
		{"operations_url cleared", func() (string, error) {
			_, err := a.UpdateProject(ctx, p.ID, ProjectPatch{OperationsURL: ptr("")})
			return ops, err
		}, true},
		{"operations endpoint kept", func() (string, error) { return "", a.DeleteEndpoint(ctx, p.ID, ops) }, false},
		{"delete", func() (string, error) { return eid, a.DeleteEndpoint(ctx, p.ID, eid) }, true},
	}
	for _, tc := range tests {
		id, err := tc.do()
		got := rec.take()
		if !tc.want {
			if err == nil || len(got) != 0 {
				t.Fatalf("%s: err %v, engine told of %v", tc.name, err, got)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if len(got) != 1 || got[0] != p.ID+"/"+id {
			t.Fatalf("%s: engine told of %v, want [%s/%s]", tc.name, got, p.ID, id)
		}
	}
}

// TestDisableKeepsAGivenReason: disabling records the caller's reason, or
// keeps the one the endpoint already has (the engine's, say); enabling
// clears it and the endpoint's failure run.
func TestDisableKeepsAGivenReason(t *testing.T) {
	tests := []struct {
		name, had, given, want string
	}{
		{"API", "", "", "disabled through the API"},
		{"dashboard", "", "disabled in the dashboard", "disabled in the dashboard"},
		{"already disabled by the engine", "endpoint answered 410 Gone", "disabled in the dashboard", "endpoint answered 410 Gone"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := &kinehook.Endpoint{DisabledReason: tc.had, Disabled: tc.had != ""}
			applyDisabled(e, true, tc.given)
			if !e.Disabled || e.DisabledReason != tc.want {
				t.Fatalf("disabled %v, reason %q; want %q", e.Disabled, e.DisabledReason, tc.want)
			}
			e.FailingSince = time.Now()
			applyDisabled(e, false, "")
			if e.Disabled || e.DisabledReason != "" || !e.FailingSince.IsZero() {
				t.Fatalf("enabled: %+v", e)
			}
		})
	}
}

// TestAuthenticate: the admin key, a project key, and refusals.
func TestAuthenticate(t *testing.T) {
	ctx := context.Background()
	a, _ := newTestApp(t)
	admin := "admin-key-0123456789"
	a.adminHash.Store(ptr(kinehook.HashKey(admin)))
	p, key, err := a.CreateProject(ctx, ProjectInput{Name: "p"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, key string
		admin     bool
		project   string
		code      string
	}{
		{"admin", admin, true, "", ""},
		{"project", key, false, p.ID, ""},
		{"project again (cached)", key, false, p.ID, ""},
		{"unknown", "kh_nope", false, "", kinehook.EUNAUTHORIZED},
		{"empty", "", false, "", kinehook.EUNAUTHORIZED},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pr, err := a.Authenticate(ctx, tc.key)
			if code := kinehook.ErrorCode(err); code != tc.code {
				t.Fatalf("error %v, want code %q", err, tc.code)
			}
			if err != nil {
				return
			}
			if pr.Admin != tc.admin || (tc.project != "" && pr.Project.ID != tc.project) || pr.KeyID == "" {
				t.Fatalf("principal %+v", pr)
			}
			if !pr.CanActOn(p.ID) || pr.CanActOn("prj_other") != tc.admin {
				t.Fatalf("%s: CanActOn wrong", tc.name)
			}
		})
	}
}

func (r *recorder) PublishBatch(ctx context.Context, evs []*kinehook.Event) ([]kinehook.IngestResult, error) {
	return r.store.IngestEvents(ctx, evs)
}
