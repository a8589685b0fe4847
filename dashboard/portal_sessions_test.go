package dashboard

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/app"
)

// The keys page lists the project's portal sessions with their state and
// revokes a live one; a revoked session's token then opens nothing.
func TestPortalSessionsOnKeysPage(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := context.Background()
	admin := &app.Principal{Admin: true}
	mk := func(pid, scope string, types ...string) *app.NewPortalSession {
		t.Helper()
		ps, err := e.h.app.CreatePortalSession(ctx, admin, pid, app.PortalSessionInput{Scope: scope, EventTypes: types,
			Branding: &kinehook.PortalBranding{Name: "Acme " + scope}})
		if err != nil {
			t.Fatal(err)
		}
		return ps
	}
	live := mk(e.a.ID, "manage", "media.*")
	gone := mk(e.a.ID, "read")
	other := mk(e.b.ID, "read")
	if err := e.h.app.RevokePortalSession(ctx, admin, e.a.ID, gone.ID); err != nil {
		t.Fatal(err)
	}

	b := e.browser()
	b.login(e.keyA)
	base := "/projects/" + e.a.ID
	p := b.get(base + "/keys")
	mustContain(t, p, `id="portal-`+live.ID+`"`, "Acme manage", "media.*", "live until", `id="portal-`+gone.ID+`"`, "revoked ")
	if strings.Contains(p.body, other.ID) {
		t.Fatal("the keys page lists another project's portal session")
	}
	if strings.Contains(p.body, live.Token) {
		t.Fatal("the keys page shows a portal token")
	}
	if n := strings.Count(p.body, `class="btn danger small revoke-portal"`); n != 1 {
		t.Fatalf("%d revoke buttons, want 1 (the live session's)", n)
	}

	// The portal opens with the live token, then not once revoked here.
	if got := e.browser().get("/portal/" + live.Token + "/endpoints"); got.status != http.StatusOK {
		t.Fatalf("live portal session: %d", got.status)
	}
	p = b.post(base+"/portal-sessions/"+live.ID+"/revoke", url.Values{})
	if p.status != http.StatusSeeOther {
		t.Fatalf("revoke: %d %s", p.status, snippet(p.body))
	}
	mustContain(t, b.follow(p), "Portal session "+live.ID+" revoked")
	if got := e.browser().get("/portal/" + live.Token + "/endpoints"); got.status != http.StatusUnauthorized {
		t.Fatalf("revoked portal session answers %d, want 401", got.status)
	}
	// Another project's session is not found from this project.
	if p := b.post(base+"/portal-sessions/"+other.ID+"/revoke", url.Values{}); p.status != http.StatusNotFound {
		t.Fatalf("revoking another project's session: %d, want 404", p.status)
	}
}
