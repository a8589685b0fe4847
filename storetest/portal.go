package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
)

func newPortalSession(t testing.TB, s kinehook.Store, pid string, created time.Time, ttl time.Duration) (*kinehook.PortalSession, string) {
	t.Helper()
	token := "kpt_" + randHex(16)
	ps := &kinehook.PortalSession{ID: kinehook.NewID(kinehook.PrefixPortalSession), ProjectID: pid, TokenHash: kinehook.HashKey(token),
		Scope: kinehook.PortalRead, CreatedAt: created, ExpiresAt: created.Add(ttl)}
	requireNoErr(t, s.CreatePortalSession(t.Context(), ps), "CreatePortalSession")
	return ps, token
}

// testPortalOrigins: a project's portal origins round-trip through create,
// update, get, list and the key lookup's project.
func testPortalOrigins(t *testing.T, s kinehook.Store) {
	ctx := t.Context()
	p, key := newProject(t, s, "origins")
	got, err := s.GetProject(ctx, p.ID)
	requireNoErr(t, err, "GetProject")
	if got.PortalOrigins != nil {
		t.Errorf("new project PortalOrigins = %q, want none", got.PortalOrigins)
	}
	origins := []string{"https://app.example.com", "http://127.0.0.1:8080"}
	got.PortalOrigins = origins
	requireNoErr(t, s.UpdateProject(ctx, got), "UpdateProject")
	got, err = s.GetProject(ctx, p.ID)
	requireNoErr(t, err, "GetProject after update")
	if !slices.Equal(got.PortalOrigins, origins) {
		t.Errorf("PortalOrigins = %q, want %q", got.PortalOrigins, origins)
	}
	_, kp, err := s.KeyByHash(ctx, kinehook.HashKey(key))
	requireNoErr(t, err, "KeyByHash")
	if !slices.Equal(kp.PortalOrigins, origins) {
		t.Errorf("KeyByHash project PortalOrigins = %q, want %q", kp.PortalOrigins, origins)
	}
	list, err := s.ListProjects(ctx)
	requireNoErr(t, err, "ListProjects")
	if i := slices.IndexFunc(list, func(x *kinehook.Project) bool { return x.ID == p.ID }); i < 0 || !slices.Equal(list[i].PortalOrigins, origins) {
		t.Errorf("ListProjects lacks the origins of %s", p.ID)
	}
	got.PortalOrigins = nil
	requireNoErr(t, s.UpdateProject(ctx, got), "UpdateProject clearing")
	if got, err = s.GetProject(ctx, p.ID); err != nil || got.PortalOrigins != nil {
		t.Errorf("PortalOrigins after clearing = %q, %v; want none", got.PortalOrigins, err)
	}
	// A project made with origins keeps them.
	p2 := &kinehook.Project{ID: kinehook.NewID(kinehook.PrefixProject), Name: "made with origins", CreatedAt: now(), PortalOrigins: origins[:1]}
	requireNoErr(t, s.CreateProject(ctx, p2, kinehook.HashKey("kh_"+randHex(16))), "CreateProject with origins")
	if got, err = s.GetProject(ctx, p2.ID); err != nil || !slices.Equal(got.PortalOrigins, origins[:1]) {
		t.Errorf("created PortalOrigins = %q, %v", got.PortalOrigins, err)
	}
}

func testPortalSessions(t *testing.T, s kinehook.Store) {
	ctx := t.Context()
	p, _ := newProject(t, s, "portal")
	other, _ := newProject(t, s, "other")
	t0 := now()
	token := "kpt_" + randHex(16)
	full := &kinehook.PortalSession{ID: kinehook.NewID(kinehook.PrefixPortalSession), ProjectID: p.ID, TokenHash: kinehook.HashKey(token),
		Scope: kinehook.PortalManage, EventTypes: []string{"media.*", "live.finished"},
		Branding:  &kinehook.PortalBranding{Name: "Acmé", LogoURL: "https://acme.example/logo.png", Color: "#12abef"},
		CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	requireNoErr(t, s.CreatePortalSession(ctx, full), "CreatePortalSession")
	plain, plainToken := newPortalSession(t, s, p.ID, t0.Add(time.Millisecond), time.Hour)

	got, err := s.PortalSessionByHash(ctx, kinehook.HashKey(token))
	requireNoErr(t, err, "PortalSessionByHash")
	if got.ID != full.ID || got.ProjectID != p.ID || got.Scope != kinehook.PortalManage || !slices.Equal(got.EventTypes, full.EventTypes) ||
		got.Branding == nil || *got.Branding != *full.Branding || string(got.TokenHash) != string(full.TokenHash) || !got.RevokedAt.IsZero() {
		t.Errorf("PortalSessionByHash = %+v (branding %+v), want %+v", got, got.Branding, full)
	}
	assertTimeEq(t, "CreatedAt", got.CreatedAt, full.CreatedAt)
	assertTimeEq(t, "ExpiresAt", got.ExpiresAt, full.ExpiresAt)
	got, err = s.PortalSessionByHash(ctx, kinehook.HashKey(plainToken))
	requireNoErr(t, err, "PortalSessionByHash(plain)")
	if got.EventTypes != nil || got.Branding != nil || got.Scope != kinehook.PortalRead {
		t.Errorf("plain session = %+v, want no event types, no branding, scope read", got)
	}
	_, err = s.PortalSessionByHash(ctx, kinehook.HashKey("kpt_unknown"))
	assertNotFound(t, err, "PortalSessionByHash(unknown)")

	// Errors: an unknown project, a token hash used twice.
	err = s.CreatePortalSession(ctx, &kinehook.PortalSession{ID: kinehook.NewID(kinehook.PrefixPortalSession),
		ProjectID: kinehook.NewID(kinehook.PrefixProject), TokenHash: kinehook.HashKey("x"), Scope: kinehook.PortalRead, CreatedAt: t0, ExpiresAt: t0})
	assertNotFound(t, err, "CreatePortalSession(unknown project)")
	err = s.CreatePortalSession(ctx, &kinehook.PortalSession{ID: kinehook.NewID(kinehook.PrefixPortalSession),
		ProjectID: p.ID, TokenHash: full.TokenHash, Scope: kinehook.PortalRead, CreatedAt: t0, ExpiresAt: t0})
	if kinehook.ErrorCode(err) != kinehook.ECONFLICT {
		t.Errorf("CreatePortalSession with a known token hash: %v, want conflict", err)
	}

	// Newest first, per project.
	list, err := s.ListPortalSessions(ctx, p.ID)
	requireNoErr(t, err, "ListPortalSessions")
	if len(list) != 2 || list[0].ID != plain.ID || list[1].ID != full.ID {
		t.Fatalf("ListPortalSessions = %d sessions, want [%s %s]", len(list), plain.ID, full.ID)
	}
	if l, err := s.ListPortalSessions(ctx, other.ID); err != nil || len(l) != 0 {
		t.Errorf("ListPortalSessions(other) = %d, %v; want none", len(l), err)
	}
	_, err = s.ListPortalSessions(ctx, kinehook.NewID(kinehook.PrefixProject))
	assertNotFound(t, err, "ListPortalSessions(unknown project)")

	// Revocation: once, only in its project.
	assertNotFound(t, s.RevokePortalSession(ctx, other.ID, full.ID, t0), "RevokePortalSession(other project)")
	assertNotFound(t, s.RevokePortalSession(ctx, p.ID, kinehook.NewID(kinehook.PrefixPortalSession), t0), "RevokePortalSession(unknown)")
	at := t0.Add(time.Second)
	requireNoErr(t, s.RevokePortalSession(ctx, p.ID, full.ID, at), "RevokePortalSession")
	requireNoErr(t, s.RevokePortalSession(ctx, p.ID, full.ID, at.Add(time.Minute)), "RevokePortalSession again")
	got, err = s.PortalSessionByHash(ctx, kinehook.HashKey(token))
	requireNoErr(t, err, "PortalSessionByHash(revoked)")
	assertTimeEq(t, "RevokedAt (the first revocation)", got.RevokedAt, at)
	if got, _ := s.PortalSessionByHash(ctx, kinehook.HashKey(plainToken)); got == nil || !got.RevokedAt.IsZero() {
		t.Errorf("the other session was revoked too: %+v", got)
	}

	// A session expired for longer than PortalSessionKeep goes when the
	// project's next one is made; a recently expired one stays listed.
	old, oldToken := newPortalSession(t, s, p.ID, t0.Add(-kinehook.PortalSessionKeep-2*time.Hour), time.Hour)
	recent, _ := newPortalSession(t, s, p.ID, t0.Add(-2*time.Hour), time.Hour)
	otherOld, _ := newPortalSession(t, s, other.ID, t0.Add(-kinehook.PortalSessionKeep-2*time.Hour), time.Hour)
	newPortalSession(t, s, p.ID, t0.Add(time.Second), time.Hour)
	list, err = s.ListPortalSessions(ctx, p.ID)
	requireNoErr(t, err, "ListPortalSessions after pruning")
	ids := make([]string, 0, len(list))
	for _, x := range list {
		ids = append(ids, x.ID)
	}
	if slices.Contains(ids, old.ID) || !slices.Contains(ids, recent.ID) || len(ids) != 4 {
		t.Errorf("after pruning: %v; want %s gone, %s kept, 4 in all", ids, old.ID, recent.ID)
	}
	_, err = s.PortalSessionByHash(ctx, kinehook.HashKey(oldToken))
	assertNotFound(t, err, "PortalSessionByHash(pruned)")
	if l, _ := s.ListPortalSessions(ctx, other.ID); len(l) != 1 || l[0].ID != otherOld.ID {
		t.Errorf("another project's expired session was pruned: %d left", len(l))
	}

	// Deleting the project removes its sessions.
	requireNoErr(t, s.DeleteProject(ctx, p.ID), "DeleteProject")
	_, err = s.PortalSessionByHash(ctx, kinehook.HashKey(plainToken))
	assertNotFound(t, err, "PortalSessionByHash after DeleteProject")
	if l, err := s.ListPortalSessions(ctx, other.ID); err != nil || len(l) != 1 {
		t.Errorf("other project's sessions after deleting p: %d, %v", len(l), err)
	}
}
