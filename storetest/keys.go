package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
)

func newKey(t testing.TB, s kinehook.Store, projectID, name string, scope kinehook.KeyScope) (*kinehook.APIKey, string) {
	t.Helper()
	key := "kh_" + randHex(20)
	k := &kinehook.APIKey{ID: kinehook.NewID(kinehook.PrefixKey), ProjectID: projectID, Name: name, Scope: scope,
		Prefix: kinehook.KeyPrefix(key), Hash: kinehook.HashKey(key), CreatedAt: now()}
	requireNoErr(t, s.CreateKey(t.Context(), k), "CreateKey "+name)
	return k, key
}

func testKeys(t *testing.T, s kinehook.Store) {
	ctx := t.Context()
	p, first := newProject(t, s, "keys")
	other, _ := newProject(t, s, "other")
	read, readKey := newKey(t, s, p.ID, "dashboards", kinehook.ScopeRead)
	ing, _ := newKey(t, s, p.ID, "encoder", kinehook.ScopeIngest)

	list, err := s.ListKeys(ctx, p.ID)
	requireNoErr(t, err, "ListKeys")
	if len(list) != 3 {
		t.Fatalf("ListKeys = %d keys, want 3", len(list))
	}
	// Oldest first: the project's own key, then the two made here.
	if list[0].Name != kinehook.DefaultKeyName || list[0].Scope != kinehook.ScopeFull || list[0].Prefix != "" || !list[0].LastUsedAt.IsZero() {
		t.Errorf("first key = %+v, want the default full key, no prefix, never used", list[0])
	}
	if string(list[0].Hash) != string(kinehook.HashKey(first)) {
		t.Errorf("first key hash differs from the project's key")
	}
	for i, want := range []*kinehook.APIKey{read, ing} {
		got := list[i+1]
		if got.ID != want.ID || got.Name != want.Name || got.Scope != want.Scope || got.Prefix != want.Prefix ||
			string(got.Hash) != string(want.Hash) || got.ProjectID != p.ID || !got.LastUsedAt.IsZero() {
			t.Errorf("ListKeys[%d] = %+v, want %+v", i+1, got, want)
		}
		assertTimeEq(t, "key CreatedAt", got.CreatedAt, want.CreatedAt)
	}
	if l, err := s.ListKeys(ctx, other.ID); err != nil || len(l) != 1 {
		t.Errorf("ListKeys(other) = %d keys, %v; want its own one", len(l), err)
	}
	_, err = s.ListKeys(ctx, kinehook.NewID(kinehook.PrefixProject))
	assertNotFound(t, err, "ListKeys(unknown project)")

	k, kp, err := s.KeyByHash(ctx, kinehook.HashKey(readKey))
	requireNoErr(t, err, "KeyByHash(read)")
	if k.ID != read.ID || k.Scope != kinehook.ScopeRead || kp.ID != p.ID || kp.Name != p.Name {
		t.Errorf("KeyByHash(read) = %+v of %+v", k, kp)
	}

	// A key for a project that does not exist, and a hash used twice.
	err = s.CreateKey(ctx, &kinehook.APIKey{ID: kinehook.NewID(kinehook.PrefixKey), ProjectID: kinehook.NewID(kinehook.PrefixProject),
		Name: "x", Scope: kinehook.ScopeFull, Hash: kinehook.HashKey("orphan"), CreatedAt: now()})
	assertNotFound(t, err, "CreateKey(unknown project)")
	err = s.CreateKey(ctx, &kinehook.APIKey{ID: kinehook.NewID(kinehook.PrefixKey), ProjectID: p.ID,
		Name: "dup", Scope: kinehook.ScopeFull, Hash: read.Hash, CreatedAt: now()})
	if kinehook.ErrorCode(err) != kinehook.ECONFLICT {
		t.Errorf("CreateKey with a known hash: %v, want conflict", err)
	}

	// NoteKeyUse: forward only, prefix set once.
	t1 := now().Add(-time.Hour)
	requireNoErr(t, s.NoteKeyUse(ctx, kinehook.HashKey(first), "kh_firstpfx", t1), "NoteKeyUse")
	requireNoErr(t, s.NoteKeyUse(ctx, kinehook.HashKey(first), "kh_other", t1.Add(-time.Minute)), "NoteKeyUse older")
	requireNoErr(t, s.NoteKeyUse(ctx, kinehook.HashKey(readKey), "kh_ignored", time.Time{}), "NoteKeyUse zero time")
	list, err = s.ListKeys(ctx, p.ID)
	requireNoErr(t, err, "ListKeys after use")
	if list[0].Prefix != "kh_firstpfx" {
		t.Errorf("prefix after use = %q, want kh_firstpfx (set once)", list[0].Prefix)
	}
	assertTimeEq(t, "LastUsedAt (never moves back)", list[0].LastUsedAt, t1)
	if list[1].Prefix != read.Prefix || !list[1].LastUsedAt.IsZero() {
		t.Errorf("read key after a zero-time note: %+v (prefix kept, never used)", list[1])
	}

	// DeleteKey.
	requireNoErr(t, s.DeleteKey(ctx, p.ID, read.ID), "DeleteKey(read)")
	_, _, err = s.KeyByHash(ctx, read.Hash)
	assertNotFound(t, err, "KeyByHash after DeleteKey")
	assertNotFound(t, s.DeleteKey(ctx, p.ID, read.ID), "DeleteKey twice")
	assertNotFound(t, s.DeleteKey(ctx, other.ID, ing.ID), "DeleteKey of another project's key")
	if l, _ := s.ListKeys(ctx, p.ID); len(l) != 2 {
		t.Errorf("ListKeys after DeleteKey = %d, want 2", len(l))
	}
}

// testKeysLastFull: the last full key cannot go, even when two revocations
// race (each would leave the other alone).
func testKeysLastFull(t *testing.T, s kinehook.Store) {
	ctx := t.Context()
	p, first := newProject(t, s, "last")
	k0, _, err := s.KeyByHash(ctx, kinehook.HashKey(first))
	requireNoErr(t, err, "KeyByHash")
	ro, _ := newKey(t, s, p.ID, "ro", kinehook.ScopeRead)
	if err := s.DeleteKey(ctx, p.ID, k0.ID); kinehook.ErrorCode(err) != kinehook.ECONFLICT {
		t.Fatalf("DeleteKey(last full key) = %v, want conflict", err)
	}
	requireNoErr(t, s.DeleteKey(ctx, p.ID, ro.ID), "DeleteKey(read key)")
	for round := range 5 {
		k1, _ := newKey(t, s, p.ID, fmt.Sprint("full-", round), kinehook.ScopeFull)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, id := range []string{k0.ID, k1.ID} {
			wg.Go(func() { errs[i] = s.DeleteKey(ctx, p.ID, id) })
		}
		wg.Wait()
		list, err := s.ListKeys(ctx, p.ID)
		requireNoErr(t, err, "ListKeys")
		if len(list) != 1 || list[0].Scope != kinehook.ScopeFull {
			t.Fatalf("round %d: after two racing revocations %d keys remain (errors %v), want one full key", round, len(list), errs)
		}
		k0 = list[0]
	}
}

func testDeleteProject(t *testing.T, s kinehook.Store) {
	ctx := t.Context()
	f := newFixture(t, s, 2)
	keep := newFixture(t, s, 1)
	k, _ := newKey(t, s, f.p.ID, "ro", kinehook.ScopeRead)
	d := f.byEvent[f.events[0].ID][0]
	requireNoErr(t, s.RecordAttempts(ctx, []kinehook.AttemptResult{result(d, now(), kinehook.DeliveryRetrying, 1, 500, "")}), "RecordAttempts")
	idem := newEvent(f.p.ID, kinehook.EventMediaUpdateStatus, "idem")
	idem.IdempotencyKey = "same-key"
	ingest(t, s, idem)

	requireNoErr(t, s.DeleteProject(ctx, f.p.ID), "DeleteProject")

	// An event of the deleted project, authenticated before the deletion
	// and committed after it, is refused: stored, it could be neither
	// reached nor removed. Its batch stores nothing.
	late := newEvent(f.p.ID, kinehook.EventMediaUpdateStatus, "late")
	other := newEvent(keep.p.ID, kinehook.EventMediaUpdateStatus, "with-late")
	if _, err := s.IngestEvents(ctx, []*kinehook.Event{other, late}); kinehook.ErrorCode(err) != kinehook.ENOTFOUND {
		t.Fatalf("IngestEvents for a deleted project: %v, want not found", err)
	}
	if evs, _, err := s.ListEvents(ctx, keep.p.ID, kinehook.EventFilter{Limit: 100}); err != nil || len(evs) != len(keep.events) {
		t.Fatalf("the refused batch stored %d events of the other project (want %d), %v", len(evs), len(keep.events), err)
	}

	_, err := s.GetProject(ctx, f.p.ID)
	assertNotFound(t, err, "GetProject after DeleteProject")
	_, _, err = s.KeyByHash(ctx, k.Hash)
	assertNotFound(t, err, "KeyByHash after DeleteProject")
	_, err = s.ListKeys(ctx, f.p.ID)
	assertNotFound(t, err, "ListKeys after DeleteProject")
	_, err = s.GetEndpoint(ctx, f.p.ID, f.e1.ID)
	assertNotFound(t, err, "GetEndpoint after DeleteProject")
	_, err = s.GetEvent(ctx, f.p.ID, f.events[0].ID)
	assertNotFound(t, err, "GetEvent after DeleteProject")
	_, err = s.GetDelivery(ctx, f.p.ID, d.ID)
	assertNotFound(t, err, "GetDelivery after DeleteProject")
	if got, err := s.DeliveriesByID(ctx, []string{d.ID}); err != nil || len(got) != 0 {
		t.Errorf("DeliveriesByID after DeleteProject = %d, %v; want none", len(got), err)
	}
	var open []string
	requireNoErr(t, s.OpenDeliveries(ctx, nil, func(d *kinehook.Delivery) error { open = append(open, d.ProjectID); return nil }), "OpenDeliveries")
	for _, pid := range open {
		if pid == f.p.ID {
			t.Fatalf("OpenDeliveries still yields a delivery of the deleted project")
		}
	}
	// An attempt in flight when the project went: recorded nowhere, no error.
	requireNoErr(t, s.RecordAttempts(ctx, []kinehook.AttemptResult{result(d, now(), kinehook.DeliverySucceeded, 2, 200, "")}), "RecordAttempts after DeleteProject")
	if _, err := s.ListAttempts(ctx, f.p.ID, d.ID); kinehook.ErrorCode(err) != kinehook.ENOTFOUND {
		t.Errorf("ListAttempts after DeleteProject: %v, want not found", err)
	}
	// A project made again with the same id starts empty: no event, and
	// the idempotency key is free.
	again := &kinehook.Project{ID: f.p.ID, Name: "again", CreatedAt: now()}
	requireNoErr(t, s.CreateProject(ctx, again, kinehook.HashKey("again-"+randHex(4))), "CreateProject with the old id")
	evs, _, err := s.ListEvents(ctx, f.p.ID, kinehook.EventFilter{Limit: 100})
	requireNoErr(t, err, "ListEvents")
	if len(evs) != 0 {
		t.Errorf("the re-made project lists %d events of the deleted one", len(evs))
	}
	idem2 := newEvent(f.p.ID, kinehook.EventMediaUpdateStatus, "idem")
	idem2.IdempotencyKey = "same-key"
	if r := ingest(t, s, idem2); r[0].Duplicate {
		t.Errorf("an idempotency key of the deleted project still matched")
	}
	if eps, err := s.ListEndpoints(ctx, f.p.ID); err != nil || len(eps) != 0 {
		t.Errorf("the re-made project has %d endpoints (%v), want none", len(eps), err)
	}

	// The other project is untouched.
	if _, err := s.GetProject(ctx, keep.p.ID); err != nil {
		t.Errorf("other project: %v", err)
	}
	if ds, err := s.ListDeliveries(ctx, keep.p.ID, keep.events[0].ID); err != nil || len(ds) != 2 {
		t.Errorf("other project's deliveries: %d, %v", len(ds), err)
	}
	assertNotFound(t, s.DeleteProject(ctx, kinehook.NewID(kinehook.PrefixProject)), "DeleteProject(unknown)")
}
