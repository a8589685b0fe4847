package dashboard

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/app"
)

func TestKeysPage(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := context.Background()
	b := e.browser()
	b.login(e.keyA)
	base := "/projects/" + e.a.ID

	p := b.get(base + "/keys")
	if p.status != http.StatusOK {
		t.Fatalf("keys page: %d", p.status)
	}
	mustContain(t, p, "API keys", "default", "full", `href="`+base+`/keys"`)
	if strings.Contains(p.body, e.keyA) {
		t.Fatal("the keys page shows a key")
	}
	// Make a read key: shown once, then never again.
	p = b.post(base+"/keys", url.Values{"name": {"status page"}, "scope": {"read"}})
	if p.status != http.StatusSeeOther || p.location != base+"/keys" {
		t.Fatalf("create key: %d %q", p.status, p.location)
	}
	p = b.follow(p)
	key := regexp1(t, p.body, `id="new-key-value">(kh_[A-Za-z0-9_-]+)<`)
	mustContain(t, p, "Key status page made (read)", "shown only this once", key[:11])
	if again := b.get(base + "/keys"); strings.Contains(again.body, key) || strings.Contains(again.body, `id="new-key"`) {
		t.Fatal("the new key is shown a second time")
	}
	_, _, err := e.store.KeyByHash(ctx, kinehook.HashKey(key))
	if err != nil {
		t.Fatalf("the made key is not stored: %v", err)
	}
	// Bad input keeps the form.
	p = b.post(base+"/keys", url.Values{"name": {""}, "scope": {"read"}})
	if p.status != http.StatusUnprocessableEntity {
		t.Fatalf("empty name: %d", p.status)
	}
	mustContain(t, p, "name is required")
	p = b.post(base+"/keys", url.Values{"name": {"x"}, "scope": {"owner"}})
	if p.status != http.StatusUnprocessableEntity {
		t.Fatalf("bad scope: %d", p.status)
	}

	// The read key signs in read-only: it sees pages, changes nothing, and
	// has no keys page.
	rb := e.browser()
	rb.login(key)
	mustContain(t, rb.get(base+"/endpoints"), "read only", ` class="read-only">`)
	if p := b.get(base + "/endpoints"); strings.Contains(p.body, `class="read-only"`) {
		t.Fatal("a full key's pages are marked read-only")
	}
	if p := rb.post(base+"/endpoints", url.Values{"url": {e.sink.srv.URL}}); p.status != http.StatusForbidden {
		t.Fatalf("read key creating an endpoint: %d", p.status)
	}
	if p := rb.get(base + "/keys"); p.status != http.StatusForbidden {
		t.Fatalf("read key on the keys page: %d", p.status)
	}
	if p := rb.get(base + "/events"); strings.Contains(p.body, `href="`+base+`/keys"`) {
		t.Fatal("a read key's pages link to the keys page")
	}

	// Revoking ends the read key's session at once.
	k, _, _ := e.store.KeyByHash(ctx, kinehook.HashKey(key))
	p = b.post(base+"/keys/"+k.ID+"/revoke", nil)
	if p.status != http.StatusSeeOther {
		t.Fatalf("revoke: %d", p.status)
	}
	mustContain(t, b.follow(p), "revoked")
	if p := rb.get(base + "/endpoints"); p.status != http.StatusSeeOther || !strings.HasPrefix(p.location, "/login") {
		t.Fatalf("revoked key's session: %d %q", p.status, p.location)
	}
	// The last full key is refused.
	keys, _ := e.store.ListKeys(ctx, e.a.ID)
	p = b.follow(b.post(base+"/keys/"+keys[0].ID+"/revoke", nil))
	mustContain(t, p, "last key with scope full")
	if p := b.post(base+"/keys/key_nope/revoke", nil); p.status != http.StatusNotFound {
		t.Fatalf("unknown key: %d", p.status)
	}
	// Another project's key cannot reach this page.
	ob := e.browser()
	ob.login(e.keyB)
	if p := ob.get(base + "/keys"); p.status != http.StatusNotFound {
		t.Fatalf("another project's keys page: %d", p.status)
	}
	// An ingest key cannot sign in at all.
	ing, err := e.h.app.CreateKey(ctx, adminPrincipal, e.a.ID, appKeyInput("encoder", "ingest"))
	if err != nil {
		t.Fatal(err)
	}
	ib := e.browser()
	ib.get("/login")
	if p := ib.post("/login", url.Values{"key": {ing.Key}}); p.status != http.StatusForbidden || !strings.Contains(p.body, "scope ingest") {
		t.Fatalf("ingest key signing in: %d %s", p.status, snippet(p.body))
	}
}

func TestProjectDeletePage(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := context.Background()
	admin := e.browser()
	admin.login(e.adminKey)
	pb := e.browser()
	pb.login(e.keyA)

	// A project key cannot delete its project.
	if p := pb.post("/projects/"+e.a.ID+"/delete", url.Values{"confirm": {e.a.ID}}); p.status != http.StatusNotFound {
		t.Fatalf("project key deleting: %d", p.status)
	}
	mustContain(t, admin.get("/projects"), "Delete project", "Type", e.a.ID)
	// A wrong confirmation deletes nothing.
	p := admin.follow(admin.post("/projects/"+e.a.ID+"/delete", url.Values{"confirm": {"yes"}}))
	mustContain(t, p, "was not deleted")
	if _, err := e.store.GetProject(ctx, e.a.ID); err != nil {
		t.Fatalf("deleted without confirmation: %v", err)
	}
	p = admin.follow(admin.post("/projects/"+e.a.ID+"/delete", url.Values{"confirm": {e.a.ID}}))
	mustContain(t, p, "deleted with everything in it", e.b.Name)
	if strings.Contains(p.body, `href="/projects/`+e.a.ID+`/endpoints"`) {
		t.Fatal("the deleted project is still listed")
	}
	if _, err := e.store.GetProject(ctx, e.a.ID); kinehook.ErrorCode(err) != kinehook.ENOTFOUND {
		t.Fatalf("project after deletion: %v", err)
	}
	if p := admin.get("/projects/" + e.a.ID + "/endpoints"); p.status != http.StatusNotFound {
		t.Fatalf("deleted project's page: %d", p.status)
	}
	// Its key's session is over.
	time.Sleep(10 * time.Millisecond)
	if p := pb.get("/projects/" + e.a.ID + "/endpoints"); p.status != http.StatusSeeOther || !strings.HasPrefix(p.location, "/login") {
		t.Fatalf("deleted project's session: %d %q", p.status, p.location)
	}
}

func appKeyInput(name, scope string) app.KeyInput { return app.KeyInput{Name: name, Scope: scope} }
