package app

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
)

func TestPermits(t *testing.T) {
	admin := &Principal{Admin: true}
	full := &Principal{Scope: kinehook.ScopeFull}
	read := &Principal{Scope: kinehook.ScopeRead}
	ingest := &Principal{Scope: kinehook.ScopeIngest}
	odd := &Principal{Scope: "owner"}
	tests := []struct {
		p    *Principal
		op   Op
		want bool
	}{
		{admin, OpRead, true}, {admin, OpIngest, true}, {admin, OpChange, true},
		{full, OpRead, true}, {full, OpIngest, true}, {full, OpChange, true},
		{read, OpRead, true}, {read, OpIngest, false}, {read, OpChange, false},
		{ingest, OpRead, false}, {ingest, OpIngest, true}, {ingest, OpChange, false},
		{odd, OpRead, false}, {odd, OpChange, false},
	}
	for _, tc := range tests {
		err := tc.p.Permits(tc.op)
		if (err == nil) != tc.want || (err != nil && kinehook.ErrorCode(err) != kinehook.EFORBIDDEN) {
			t.Errorf("scope %q op %d: %v, want allowed=%v", tc.p.Scope, tc.op, err, tc.want)
		}
	}
}

// TestKeyUseCases: who may manage keys (no key makes a stronger one), key
// validation, and that the project's first key is listed with its prefix.
func TestKeyUseCases(t *testing.T) {
	a, _ := newTestApp(t)
	ctx := context.Background()
	p, first, err := a.CreateProject(ctx, ProjectInput{Name: "keys"})
	if err != nil {
		t.Fatal(err)
	}
	q, _, err := a.CreateProject(ctx, ProjectInput{Name: "other"})
	if err != nil {
		t.Fatal(err)
	}
	fullP, err := a.Authenticate(ctx, first)
	if err != nil || fullP.Scope != kinehook.ScopeFull || fullP.APIKeyID == "" || fullP.Project.ID != p.ID {
		t.Fatalf("the project's key: %+v, %v", fullP, err)
	}
	keys, err := a.ListKeys(ctx, fullP, p.ID)
	if err != nil || len(keys) != 1 || keys[0].Name != kinehook.DefaultKeyName || keys[0].Prefix != kinehook.KeyPrefix(first) {
		t.Fatalf("first key list: %+v, %v", keys, err)
	}
	ro, err := a.CreateKey(ctx, fullP, p.ID, KeyInput{Name: "ro", Scope: "read"})
	if err != nil || ro.Prefix != ro.Key[:kinehook.KeyPrefixLen] || ro.Scope != kinehook.ScopeRead {
		t.Fatalf("CreateKey: %+v, %v", ro, err)
	}
	roP, err := a.Authenticate(ctx, ro.Key)
	if err != nil || roP.Scope != kinehook.ScopeRead {
		t.Fatalf("read key: %+v, %v", roP, err)
	}
	for _, tc := range []struct {
		name string
		err  error
		code string
	}{
		{"read key makes a key", func() error { _, err := a.CreateKey(ctx, roP, p.ID, KeyInput{Name: "x", Scope: "full"}); return err }(), kinehook.EFORBIDDEN},
		{"read key lists keys", func() error { _, err := a.ListKeys(ctx, roP, p.ID); return err }(), kinehook.EFORBIDDEN},
		{"read key revokes", a.RevokeKey(ctx, roP, p.ID, ro.ID), kinehook.EFORBIDDEN},
		{"full key of another project", func() error { _, err := a.CreateKey(ctx, fullP, q.ID, KeyInput{Name: "x", Scope: "full"}); return err }(), kinehook.ENOTFOUND},
		{"no name", func() error { _, err := a.CreateKey(ctx, fullP, p.ID, KeyInput{Name: "  ", Scope: "full"}); return err }(), kinehook.EINVALID},
		{"long name", func() error {
			_, err := a.CreateKey(ctx, fullP, p.ID, KeyInput{Name: strings.Repeat("ж", MaxKeyName+1), Scope: "full"})
			return err
		}(), kinehook.EINVALID},
		{"control character", func() error {
			_, err := a.CreateKey(ctx, fullP, p.ID, KeyInput{Name: "a\nb", Scope: "full"})
			return err
		}(), kinehook.EINVALID},
		{"no scope", func() error { _, err := a.CreateKey(ctx, fullP, p.ID, KeyInput{Name: "x"}); return err }(), kinehook.EINVALID},
		{"unknown key", a.RevokeKey(ctx, fullP, p.ID, "key_nope"), kinehook.ENOTFOUND},
		{"last full key", a.RevokeKey(ctx, adminPrincipalForTest, p.ID, fullP.APIKeyID), kinehook.ECONFLICT},
	} {
		if kinehook.ErrorCode(tc.err) != tc.code {
			t.Errorf("%s: %v, want %s", tc.name, tc.err, tc.code)
		}
	}
	// Revoked here: refused at once.
	if err := a.RevokeKey(ctx, fullP, p.ID, ro.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(ctx, ro.Key); kinehook.ErrorCode(err) != kinehook.EUNAUTHORIZED {
		t.Fatalf("revoked key: %v", err)
	}
	// At most MaxKeysPerProject keys.
	for range MaxKeysPerProject - 1 { // q has its default key: 100 in all
		if _, err := a.CreateKey(ctx, adminPrincipalForTest, q.ID, KeyInput{Name: "k", Scope: "read"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.CreateKey(ctx, adminPrincipalForTest, q.ID, KeyInput{Name: "k", Scope: "read"}); kinehook.ErrorCode(err) != kinehook.ECONFLICT {
		t.Fatalf("key %d: %v, want conflict", MaxKeysPerProject+1, err)
	}
}

var adminPrincipalForTest = &Principal{Admin: true}

// TestKeyCacheExpires: a key removed behind this App's back (another
// instance revoking it) is refused once the cache entry is older than
// KeyCacheTTL.
func TestKeyCacheExpires(t *testing.T) {
	a, _ := newTestApp(t)
	ctx := context.Background()
	p, _, err := a.CreateProject(ctx, ProjectInput{Name: "ttl"})
	if err != nil {
		t.Fatal(err)
	}
	k, err := a.CreateKey(ctx, adminPrincipalForTest, p.ID, KeyInput{Name: "k", Scope: "read"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(ctx, k.Key); err != nil {
		t.Fatal(err)
	}
	if err := a.store.DeleteKey(ctx, p.ID, k.ID); err != nil { // not through a: its cache still has it
		t.Fatal(err)
	}
	start := time.Now()
	for {
		_, err := a.Authenticate(ctx, k.Key)
		if kinehook.ErrorCode(err) == kinehook.EUNAUTHORIZED {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Since(start) > 2*time.Second {
			t.Fatalf("still accepted %v after the key was removed", time.Since(start))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("refused after %v, want within a second (the cache holds a key %v)", d, KeyCacheTTL)
	}
}

// TestKeyLastUsed: a use is written in the background once per
// KeyUseInterval at most, with the app's clock; the first use of a key
// made before prefixes were kept fills its prefix in.
func TestKeyLastUsed(t *testing.T) {
	a, _ := newTestApp(t)
	var mu sync.Mutex
	clock := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	a.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
	ctx := context.Background()
	// A project made as an older server did: no prefix.
	p := &kinehook.Project{ID: kinehook.NewID(kinehook.PrefixProject), Name: "old", CreatedAt: clock}
	const key = "kh_legacy_key_with_no_prefix_0123456789abcdef"
	if err := a.store.CreateProject(ctx, p, kinehook.HashKey(key)); err != nil {
		t.Fatal(err)
	}
	lastUse := func() *kinehook.APIKey {
		ks, err := a.store.ListKeys(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		return ks[0]
	}
	waitUse := func(want time.Time) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !lastUse().LastUsedAt.Equal(want) {
			if time.Now().After(deadline) {
				t.Fatalf("last_used_at = %v, want %v", lastUse().LastUsedAt, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	for range 50 {
		if _, err := a.Authenticate(ctx, key); err != nil {
			t.Fatal(err)
		}
	}
	first := clock
	waitUse(first)
	if k := lastUse(); k.Prefix != kinehook.KeyPrefix(key) {
		t.Errorf("prefix after first use = %q, want %q", k.Prefix, kinehook.KeyPrefix(key))
	}
	// More uses within the interval write nothing (the stored time stays
	// the first use's, though the app's clock moved).
	advance(10 * time.Second)
	for range 50 {
		if _, err := a.Authenticate(ctx, key); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond)
	if got := lastUse().LastUsedAt; !got.Equal(first) {
		t.Fatalf("a use within the interval was written: %v", got)
	}
}

// TestDeleteProjectTellsTheEngine: the engine drops the project's work
// before and after the rows go, then hears of each endpoint's change.
func TestDeleteProjectTellsTheEngine(t *testing.T) {
	a, rec := newTestApp(t)
	ctx := context.Background()
	p, key, err := a.CreateProject(ctx, ProjectInput{Name: "doomed"})
	if err != nil {
		t.Fatal(err)
	}
	ep, err := a.CreateEndpoint(ctx, p.ID, EndpointInput{URL: ptr("http://127.0.0.1:9/hook")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(ctx, key); err != nil {
		t.Fatal(err)
	}
	rec.take()
	if err := a.DeleteProject(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	if got, want := rec.take(), []string{p.ID + " deleted", p.ID + " deleted", p.ID + "/" + ep.ID}; !slices.Equal(got, want) {
		t.Errorf("engine told %v, want %v", got, want)
	}
	if _, err := a.Authenticate(ctx, key); kinehook.ErrorCode(err) != kinehook.EUNAUTHORIZED {
		t.Errorf("the deleted project's key: %v", err)
	}
	if err := a.DeleteProject(ctx, p.ID); kinehook.ErrorCode(err) != kinehook.ENOTFOUND {
		t.Errorf("deleting twice: %v", err)
	}
}
