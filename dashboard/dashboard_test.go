package dashboard

import (
	"bufio"
	"context"
	"io"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
)

func TestNewRequiresStoreAndDispatcher(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Fatal("New without a store succeeded")
	}
	e := newEnv(t, envOpts{})
	if _, err := New(Config{Store: e.store}); err == nil {
		t.Fatal("New without a dispatcher succeeded")
	}
}

func TestSignIn(t *testing.T) {
	e := newEnv(t, envOpts{})
	tests := []struct {
		name     string
		key      string
		status   int
		location string
		body     string
	}{
		{"admin key", e.adminKey, http.StatusSeeOther, "/projects", ""},
		{"project key", e.keyA, http.StatusSeeOther, "/projects/" + e.a.ID + "/endpoints", ""},
		{"key with spaces around", "  " + e.keyB + "\n", http.StatusSeeOther, "/projects/" + e.b.ID + "/endpoints", ""},
		{"unknown key", "nope", http.StatusUnauthorized, "", "That key is not valid."},
		{"empty key", "", http.StatusUnprocessableEntity, "", "Enter a project key or the admin key."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := e.browser()
			login := b.get("/login")
			mustContain(t, login, `<label for="key">`, `id="key"`)
			p := b.post("/login", url.Values{"key": {tc.key}})
			if p.status != tc.status || p.location != tc.location {
				t.Fatalf("got %d %q, want %d %q", p.status, p.location, tc.status, tc.location)
			}
			if tc.body != "" {
				mustContain(t, p, tc.body)
			}
		})
	}
}

func TestSessionCookieAndSignOut(t *testing.T) {
	for _, secure := range []bool{false, true} {
		name := "plain"
		if secure {
			name = "secure"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, envOpts{secure: secure})
			b := e.browser()
			b.get("/login")
			req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/login", strings.NewReader(url.Values{"key": {e.adminKey}, "csrf": {b.csrf}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			// Secure cookies are not sent back over plain http by the jar,
			// so copy the login cookie by hand.
			for _, c := range b.c.Jar.Cookies(req.URL) {
				req.AddCookie(c)
			}
			if secure {
				req.AddCookie(&http.Cookie{Name: secureLoginCookie, Value: b.csrf})
			}
			res, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			var sc *http.Cookie
			for _, c := range res.Cookies() {
				if c.Name == sessionCookie || c.Name == secureSessionCookie {
					sc = c
				}
			}
			if sc == nil {
				t.Fatalf("no session cookie in %v", res.Header["Set-Cookie"])
			}
			if !sc.HttpOnly || sc.SameSite != http.SameSiteStrictMode || sc.Secure != secure || sc.Path != "/" {
				t.Errorf("cookie %+v: want HttpOnly, SameSite=Strict, Secure=%v, Path=/", sc, secure)
			}
			if want := map[bool]string{false: sessionCookie, true: secureSessionCookie}[secure]; sc.Name != want {
				t.Errorf("cookie name %q, want %q", sc.Name, want)
			}
		})
	}

	e := newEnv(t, envOpts{})
	b := e.browser()
	b.login(e.adminKey)
	if p := b.get("/projects"); p.status != http.StatusOK {
		t.Fatalf("projects after login: %d", p.status)
	}
	if p := b.post("/logout", url.Values{"csrf": {"wrong"}}); p.status != http.StatusForbidden {
		t.Fatalf("logout with a wrong token: %d, want 403", p.status)
	}
	p := b.post("/logout", nil)
	if p.status != http.StatusSeeOther || p.location != "/login?signed_out=1" {
		t.Fatalf("logout: %d %q", p.status, p.location)
	}
	mustContain(t, b.follow(p), "You are signed out.")
	p = b.get("/projects")
	if p.status != http.StatusSeeOther || !strings.HasPrefix(p.location, "/login") {
		t.Fatalf("projects after logout: %d %q, want a redirect to /login", p.status, p.location)
	}
}

func TestSignInNextAndExpiry(t *testing.T) {
	e := newEnv(t, envOpts{})
	now := time.Now()
	e.h.sessions.now = func() time.Time { return now }
	b := e.browser()
	target := "/projects/" + e.a.ID + "/events"
	p := b.get(target)
	if p.status != http.StatusSeeOther || p.location != "/login?next="+url.QueryEscape(target) {
		t.Fatalf("anonymous: %d %q", p.status, p.location)
	}
	b.get(p.location)
	p = b.post("/login", url.Values{"key": {e.keyA}, "next": {target}})
	if p.location != target {
		t.Fatalf("next: redirected to %q, want %q", p.location, target)
	}
	b2 := e.browser()
	b2.get("/login")
	if p := b2.post("/login", url.Values{"key": {e.keyA}, "next": {"//evil.example/x"}}); p.location != "/projects/"+e.a.ID+"/endpoints" {
		t.Fatalf("foreign next: redirected to %q", p.location)
	}
	if p := b.get(target); p.status != http.StatusOK {
		t.Fatalf("signed in: %d", p.status)
	}
	now = now.Add(13 * time.Hour)
	if p := b.get(target); p.status != http.StatusSeeOther {
		t.Fatalf("after the session's lifetime: %d, want a redirect to sign in", p.status)
	}
}

func TestLoginCSRF(t *testing.T) {
	e := newEnv(t, envOpts{})
	b := e.browser()
	// No login page visited: no login cookie.
	if p := b.post("/login", url.Values{"key": {e.adminKey}, "csrf": {"made-up"}}); p.status != http.StatusForbidden {
		t.Fatalf("login without the form's cookie: %d, want 403", p.status)
	}
	b.get("/login")
	if p := b.post("/login", url.Values{"key": {e.adminKey}, "csrf": {"made-up"}}); p.status != http.StatusForbidden {
		t.Fatalf("login with a wrong token: %d, want 403", p.status)
	}
}

func TestCSRFRefusedOnEveryPost(t *testing.T) {
	e := newEnv(t, envOpts{})
	ep := e.createEndpoint(e.a, e.sink.srv.URL)
	ev := e.publish(e.a, `{"event":"live.created","data":{"event_id":"csrf-1"}}`)
	ds := e.waitDeliveries(e.a.ID, ev.ID, kinehook.DeliverySucceeded)
	base := "/projects/" + e.a.ID
	form := url.Values{"url": {"https://example.com/changed"}, "type": {"live.created"}, "since": {"2020-01-01T00:00"}}
	paths := []string{
		"/logout",
		"/projects",
		base + "/endpoints",
		base + "/endpoints/" + ep.ID,
		base + "/endpoints/" + ep.ID + "/disable",
		base + "/endpoints/" + ep.ID + "/enable",
		base + "/endpoints/" + ep.ID + "/secret/rotate",
		base + "/endpoints/" + ep.ID + "/test",
		base + "/endpoints/" + ep.ID + "/recover",
		base + "/endpoints/" + ep.ID + "/delete",
		base + "/deliveries/" + ds[0].ID + "/retry",
	}
	b := e.browser()
	b.login(e.keyA)
	good := b.csrf
	for _, token := range []string{"", "not-the-token", good[:len(good)-1] + "x"} {
		for _, path := range paths {
			f := url.Values{}
			for k, v := range form {
				f[k] = v
			}
			f.Set("csrf", token)
			if p := b.post(path, f); p.status != http.StatusForbidden {
				t.Errorf("POST %s with token %q: %d, want 403", path, token, p.status)
			}
		}
	}
	// Nothing changed.
	got, err := e.store.GetEndpoint(context.Background(), e.a.ID, ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.URL != ep.URL || got.Disabled || len(got.Secrets) != 1 {
		t.Fatalf("endpoint changed by refused posts: %+v", got)
	}
	eps, _ := e.store.ListEndpoints(context.Background(), e.a.ID)
	if len(eps) != 1 {
		t.Fatalf("%d endpoints after refused posts, want 1", len(eps))
	}
	// The session survived: the right token works.
	b.csrf = good
	if p := b.post(base+"/endpoints/"+ep.ID+"/disable", nil); p.status != http.StatusSeeOther {
		t.Fatalf("disable with the right token: %d", p.status)
	}
}

func TestCrossOriginPostRefused(t *testing.T) {
	e := newEnv(t, envOpts{})
	ep := e.createEndpoint(e.a, e.sink.srv.URL)
	b := e.browser()
	b.login(e.keyA)
	form := url.Values{"csrf": {b.csrf}}
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/projects/"+e.a.ID+"/endpoints/"+ep.ID+"/disable", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if p := b.do(req); p.status != http.StatusForbidden {
		t.Fatalf("cross-site post: %d, want 403", p.status)
	}
	got, _ := e.store.GetEndpoint(context.Background(), e.a.ID, ep.ID)
	if got.Disabled {
		t.Fatal("a cross-site post disabled the endpoint")
	}
}

func TestProjectIsolation(t *testing.T) {
	e := newEnv(t, envOpts{})
	epB := e.createEndpoint(e.b, e.sink.srv.URL)
	evB := e.publish(e.b, `{"event":"live.created","data":{"event_id":"iso-1"}}`)
	dsB := e.waitDeliveries(e.b.ID, evB.ID, kinehook.DeliverySucceeded)

	a := e.browser()
	a.login(e.keyA)
	baseA, baseB := "/projects/"+e.a.ID, "/projects/"+e.b.ID
	for _, path := range []string{
		baseB, baseB + "/endpoints", baseB + "/events", baseB + "/events/" + evB.ID, baseB + "/endpoints/" + epB.ID, baseB + "/live",
		// B's records under A's own project path.
		baseA + "/endpoints/" + epB.ID, baseA + "/events/" + evB.ID,
		"/projects/prj_doesnotexist/endpoints",
	} {
		if p := a.get(path); p.status != http.StatusNotFound {
			t.Errorf("project A GET %s: %d, want 404", path, p.status)
		}
	}
	for _, path := range []string{
		baseB + "/endpoints/" + epB.ID + "/disable", baseA + "/endpoints/" + epB.ID + "/disable",
		baseB + "/deliveries/" + dsB[0].ID + "/retry", baseA + "/deliveries/" + dsB[0].ID + "/retry",
		baseA + "/endpoints/" + epB.ID + "/secret/rotate",
	} {
		if p := a.post(path, nil); p.status != http.StatusNotFound {
			t.Errorf("project A POST %s: %d, want 404", path, p.status)
		}
	}
	if got, _ := e.store.GetEndpoint(context.Background(), e.b.ID, epB.ID); got.Disabled || len(got.Secrets) != 1 {
		t.Fatalf("project A changed project B's endpoint: %+v", got)
	}
	// A project key's picker is its own project; the secret of B never shows.
	if p := a.get("/projects"); p.status != http.StatusSeeOther || p.location != baseA+"/endpoints" {
		t.Errorf("project key /projects: %d %q", p.status, p.location)
	}
	if p := a.get(baseA + "/endpoints"); strings.Contains(p.body, e.b.Name) || strings.Contains(p.body, epB.ID) {
		t.Error("project A's endpoint page mentions project B")
	}

	admin := e.browser()
	admin.login(e.adminKey)
	p := admin.get("/projects")
	mustContain(t, p, e.a.Name, e.b.Name, baseA+"/endpoints", baseB+"/endpoints")
	if p := admin.get(baseB + "/endpoints/" + epB.ID); p.status != http.StatusOK {
		t.Errorf("admin on project B's endpoint: %d", p.status)
	}
}

func TestProjectCreate(t *testing.T) {
	e := newEnv(t, envOpts{})
	admin := e.browser()
	admin.login(e.adminKey)
	mustContain(t, admin.get("/projects"), `<label for="project-name">`)
	for _, name := range []string{"", "   ", strings.Repeat("x", 201)} {
		p := admin.post("/projects", url.Values{"name": {name}})
		if p.status != http.StatusUnprocessableEntity || !strings.Contains(p.body, `class="error-text"`) {
			t.Fatalf("name %q: %d", name, p.status)
		}
	}
	// U+0000 is refused in any field (PostgreSQL's text cannot hold it),
	// and a path with a control character names nothing.
	if p := admin.post("/projects", url.Values{"name": {"a\x00b"}}); p.status != http.StatusUnprocessableEntity || !strings.Contains(p.body, "NUL") {
		t.Fatalf("name with NUL: %d", p.status)
	}
	if p := admin.get("/projects/prj_a%00b/endpoints"); p.status != http.StatusNotFound {
		t.Fatalf("project id with NUL: %d", p.status)
	}
	p := admin.post("/projects", url.Values{"name": {"Gamma live"}})
	if p.status != http.StatusSeeOther || p.location != "/projects" {
		t.Fatalf("create: %d %q", p.status, p.location)
	}
	page := admin.follow(p)
	key := regexp1(t, page.body, `keep it: (kh_[A-Za-z0-9_-]+)`)
	mustContain(t, page, "Gamma live")
	// The key signs in to the new project, and only to it.
	b := e.browser()
	home := b.login(key)
	_, proj, err := e.store.KeyByHash(context.Background(), kinehook.HashKey(key))
	if err != nil || proj.Name != "Gamma live" || home != "/projects/"+proj.ID+"/endpoints" {
		t.Fatalf("new project %+v, %v; signed in to %q", proj, err, home)
	}
	// A project key cannot make projects.
	if p := b.post("/projects", url.Values{"name": {"sneaky"}}); p.status != http.StatusNotFound {
		t.Fatalf("project key POST /projects: %d", p.status)
	}
	ps, _ := e.store.ListProjects(context.Background())
	if len(ps) != 3 {
		t.Fatalf("%d projects, want 3", len(ps))
	}
}

func TestEndpointCreate(t *testing.T) {
	e := newEnv(t, envOpts{})
	b := e.browser()
	b.login(e.keyA)
	base := "/projects/" + e.a.ID
	mustContain(t, b.get(base+"/endpoints"), "No endpoints yet")
	mustContain(t, b.get(base+"/endpoints/new"), `<label for="url">`, `<label for="headers">`, `<label for="rate_limit">`, `<label for="max_in_flight">`, `value="live.*"`)

	tests := []struct {
		name    string
		form    url.Values
		status  int
		message string
	}{
		{"relative url", url.Values{"url": {"/hook"}}, 422, "url must be an absolute http:// or https:// URL"},
		{"ftp url", url.Values{"url": {"ftp://example.com/x"}}, 422, "absolute http"},
		{"credentials in url", url.Values{"url": {"https://u:p@example.com/x"}}, 422, "must not carry credentials"},
		{"unknown type", url.Values{"url": {"https://example.com/x"}, "event_types": {"video.done"}}, 422, `unknown event type "video.done"`},
		// The same rule as the API's: a form that no checkbox list produces is refused, not trimmed.
		{"too many types", url.Values{"url": {"https://example.com/x"}, "event_types": slices.Repeat([]string{"live.*"}, 65)}, 422, "at most 64 event types, 65 given"},
		{"bad header line", url.Values{"url": {"https://example.com/x"}, "headers": {"no colon here"}}, 422, `write each header as "Name: value"`},
		{"reserved header", url.Values{"url": {"https://example.com/x"}, "headers": {"webhook-id: x"}}, 422, "reserved for the Standard Webhooks signature"},
		{"hop-by-hop header", url.Values{"url": {"https://example.com/x"}, "headers": {"Connection: close"}}, 422, "cannot be customised"},
		{"negative rate", url.Values{"url": {"https://example.com/x"}, "rate_limit": {"-1"}}, 422, "deliveries per second"},
		{"text in max in flight", url.Values{"url": {"https://example.com/x"}, "max_in_flight": {"many"}}, 422, "whole number"},
		{"happy", url.Values{"url": {"https://example.com/hooks"}, "description": {"Main receiver"}, "event_types": {"media.update.status", "live.*"},
			"headers": {"X-Team: video\r\nX-Env: prod"}, "rate_limit": {"12.5"}, "max_in_flight": {"8"}}, 303, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := b.post(base+"/endpoints", tc.form)
			if p.status != tc.status {
				t.Fatalf("status %d, want %d: %s", p.status, tc.status, snippet(p.body))
			}
			if tc.status == 422 {
				mustContain(t, p, tc.message, "The endpoint was not created", `class="error-text"`)
				// The user's input comes back.
				mustContain(t, p, tc.form.Get("url"))
				return
			}
			id := strings.TrimSuffix(strings.TrimPrefix(p.location, base+"/endpoints/"), "?reveal=1")
			ep, err := e.store.GetEndpoint(context.Background(), e.a.ID, id)
			if err != nil {
				t.Fatalf("created endpoint %q: %v", id, err)
			}
			if ep.URL != "https://example.com/hooks" || ep.Description != "Main receiver" || strings.Join(ep.EventTypes, ",") != "media.update.status,live.*" ||
				ep.Headers["X-Team"] != "video" || ep.Headers["X-Env"] != "prod" || ep.RateLimit != 12.5 || ep.MaxInFlight != 8 || ep.Disabled {
				t.Fatalf("stored endpoint %+v", ep)
			}
			if len(ep.Secrets) != 1 || !strings.HasPrefix(ep.Secrets[0].Value, kinehook.SecretPrefix) {
				t.Fatalf("secrets %+v", ep.Secrets)
			}
			show := b.follow(p)
			mustContain(t, show, "Endpoint created.", ep.Secrets[0].Value, "https://example.com/hooks")
			// Without ?reveal=1 the secret stays hidden.
			if p := b.get(base + "/endpoints/" + id); strings.Contains(p.body, ep.Secrets[0].Value) {
				t.Fatal("the secret shows without reveal")
			}
			mustContain(t, b.get(base+"/endpoints"), "https://example.com/<wbr>hooks", "Main receiver", "No deliveries yet.")
		})
	}
}

func TestEndpointCheckURL(t *testing.T) {
	e := newEnv(t, envOpts{})
	h, err := New(Config{Store: e.store, Dispatcher: e.engine, CheckURL: func(u string) error {
		if strings.Contains(u, "127.0.0.1") {
			return &kinehook.Error{Code: kinehook.EINVALID, Message: "private networks are not allowed"}
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	e.srv.Config.Handler = h
	b := e.browser()
	b.login(e.keyA)
	p := b.post("/projects/"+e.a.ID+"/endpoints", url.Values{"url": {"http://127.0.0.1:9/x"}})
	if p.status != http.StatusUnprocessableEntity {
		t.Fatalf("status %d, want 422", p.status)
	}
	mustContain(t, p, "private networks are not allowed")
}

func TestEndpointEdit(t *testing.T) {
	e := newEnv(t, envOpts{})
	ep := e.createEndpoint(e.a, "https://example.com/old", "live.created")
	// Fields the form does not show must survive an edit.
	ep.Login, ep.Password, ep.Name = "kinescope", "s3cret", "legacy"
	if err := e.store.UpdateEndpoint(context.Background(), ep); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	b.login(e.keyA)
	path := "/projects/" + e.a.ID + "/endpoints/" + ep.ID
	mustContain(t, b.get(path), `value="https://example.com/old"`, `value="live.created" checked`, "Basic Auth", "kinescope", "v1 (HMAC-SHA256)")

	p := b.post(path, url.Values{"url": {"notaurl"}, "description": {"kept?"}})
	if p.status != http.StatusUnprocessableEntity {
		t.Fatalf("bad edit: %d", p.status)
	}
	mustContain(t, p, "The changes were not saved", `value="notaurl"`)
	if got, _ := e.store.GetEndpoint(context.Background(), e.a.ID, ep.ID); got.URL != "https://example.com/old" {
		t.Fatalf("a refused edit changed the url to %q", got.URL)
	}

	p = b.post(path, url.Values{"url": {"https://example.com/new"}, "description": {"Renamed"}, "headers": {"Authorization: Bearer t0k"}, "max_in_flight": {"3"}})
	if p.status != http.StatusSeeOther || p.location != path {
		t.Fatalf("edit: %d %q: %s", p.status, p.location, snippet(p.body))
	}
	mustContain(t, b.follow(p), "Endpoint saved.", "https://example.com/new")
	got, err := e.store.GetEndpoint(context.Background(), e.a.ID, ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.URL != "https://example.com/new" || got.Description != "Renamed" || len(got.EventTypes) != 0 || got.Headers["Authorization"] != "Bearer t0k" ||
		got.MaxInFlight != 3 || got.RateLimit != 0 {
		t.Fatalf("edited endpoint %+v", got)
	}
	if got.Login != "kinescope" || got.Password != "s3cret" || got.Name != "legacy" || len(got.Secrets) != 1 || got.Secrets[0].Value != ep.Secrets[0].Value {
		t.Fatalf("edit lost hidden fields: %+v", got)
	}

	// Custom header values are shown masked; saving the form as shown keeps
	// them, a new value replaces one.
	got.Headers = map[string]string{"Authorization": "Bearer tok-0123456789abcdef", "X-Tenant": "42"}
	if err := e.store.UpdateEndpoint(context.Background(), got); err != nil {
		t.Fatal(err)
	}
	page := b.get(path)
	mustContain(t, page, "Authorization: ****cdef", "X-Tenant: ****")
	if strings.Contains(page.body, "0123456789abcdef") {
		t.Error("the edit form shows a custom header value in full")
	}
	p = b.post(path, url.Values{"url": {"https://example.com/new"}, "headers": {"Authorization: ****cdef\r\nX-Tenant: 43"}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("edit with masked headers: %d: %s", p.status, snippet(p.body))
	}
	got, _ = e.store.GetEndpoint(context.Background(), e.a.ID, ep.ID)
	if want := map[string]string{"Authorization": "Bearer tok-0123456789abcdef", "X-Tenant": "43"}; !maps.Equal(got.Headers, want) {
		t.Errorf("after saving the masked form the store holds %v, want %v", got.Headers, want)
	}
}

func TestEndpointDisableEnableDelete(t *testing.T) {
	e := newEnv(t, envOpts{})
	ep := e.createEndpoint(e.a, e.sink.srv.URL)
	b := e.browser()
	b.login(e.keyA)
	path := "/projects/" + e.a.ID + "/endpoints/" + ep.ID
	mustContain(t, b.follow(b.post(path+"/disable", nil)), "Endpoint disabled", `id="enable-endpoint"`)
	got, _ := e.store.GetEndpoint(context.Background(), e.a.ID, ep.ID)
	if !got.Disabled {
		t.Fatal("not disabled")
	}
	// A disabled endpoint gets no deliveries.
	ev := e.publish(e.a, `{"event":"live.created","data":{"event_id":"off-1"}}`)
	if ds, _ := e.store.ListDeliveries(context.Background(), e.a.ID, ev.ID); len(ds) != 0 {
		t.Fatalf("%d deliveries to a disabled endpoint", len(ds))
	}
	mustContain(t, b.follow(b.post(path+"/test", url.Values{"type": {"live.created"}})), "This endpoint is disabled")
	mustContain(t, b.follow(b.post(path+"/enable", nil)), "Endpoint enabled", `id="disable-endpoint"`)
	if got, _ := e.store.GetEndpoint(context.Background(), e.a.ID, ep.ID); got.Disabled {
		t.Fatal("not enabled")
	}
	p := b.post(path+"/delete", nil)
	if p.location != "/projects/"+e.a.ID+"/endpoints" {
		t.Fatalf("delete redirected to %q", p.location)
	}
	mustContain(t, b.follow(p), "deleted", "No endpoints yet")
	if p := b.get(path); p.status != http.StatusNotFound {
		t.Fatalf("deleted endpoint page: %d", p.status)
	}
}

func TestRotateSecret(t *testing.T) {
	e := newEnv(t, envOpts{})
	ep := e.createEndpoint(e.a, e.sink.srv.URL)
	old := ep.Secrets[0].Value
	b := e.browser()
	b.login(e.keyA)
	path := "/projects/" + e.a.ID + "/endpoints/" + ep.ID
	mustContain(t, b.get(path+"?reveal=1"), old)
	before := time.Now()
	p := b.post(path+"/secret/rotate", nil)
	if p.location != path+"?reveal=1" {
		t.Fatalf("rotate redirected to %q", p.location)
	}
	got, _ := e.store.GetEndpoint(context.Background(), e.a.ID, ep.ID)
	if len(got.Secrets) != 2 || got.Secrets[0].Value == old || got.Secrets[1].Value != old || !got.Secrets[0].ExpiresAt.IsZero() {
		t.Fatalf("secrets after rotation: %+v", got.Secrets)
	}
	if exp := got.Secrets[1].ExpiresAt; exp.Before(before.Add(kinehook.SecretGracePeriod-time.Minute)) || exp.After(time.Now().Add(kinehook.SecretGracePeriod+time.Minute)) {
		t.Fatalf("old secret expires at %v, want about 24 h from now", exp)
	}
	show := b.follow(p)
	mustContain(t, show, "Secret rotated", got.Secrets[0].Value, "Previous secret", old)
	// Deliveries are signed with both secrets now.
	ev := e.publish(e.a, `{"event":"live.created","data":{"event_id":"rot-1"}}`)
	e.waitDeliveries(e.a.ID, ev.ID, kinehook.DeliverySucceeded)
	// A second rotation drops the oldest secret.
	b.post(path+"/secret/rotate", nil)
	got2, _ := e.store.GetEndpoint(context.Background(), e.a.ID, ep.ID)
	if len(got2.Secrets) != 2 || got2.Secrets[1].Value != got.Secrets[0].Value {
		t.Fatalf("secrets after a second rotation: %+v", got2.Secrets)
	}
}

func TestTestEventRetryAndRecover(t *testing.T) {
	e := newEnv(t, envOpts{})
	ep := e.createEndpoint(e.a, e.sink.srv.URL+"/hook")
	b := e.browser()
	b.login(e.keyA)
	base := "/projects/" + e.a.ID
	path := base + "/endpoints/" + ep.ID

	// Bad paths first: unknown type.
	mustContain(t, b.follow(b.post(path+"/test", url.Values{"type": {"video.done"}})), "Choose an event type from the catalog")

	// Every catalog type makes a valid test event that is delivered.
	for _, typ := range kinehook.EventTypes {
		p := b.post(path+"/test", url.Values{"type": {string(typ)}})
		if p.status != http.StatusSeeOther || !strings.HasPrefix(p.location, base+"/events/msg_") {
			t.Fatalf("test %s: %d %q", typ, p.status, p.location)
		}
		evID := strings.TrimPrefix(p.location, base+"/events/")
		e.waitDeliveries(e.a.ID, evID, kinehook.DeliverySucceeded)
		show := b.follow(p)
		mustContain(t, show, "Test event "+string(typ)+" sent to 1 endpoint(s)", "HTTP 200", `"event": "`+string(typ)+`"`, "Webhook-Signature", `{"ok":true}`)
	}

	// A failing delivery, retried after the sink recovers.
	e.sink.fail.Store(true)
	p := b.post(path+"/test", url.Values{"type": {"media.update.status"}})
	evID := strings.TrimPrefix(p.location, base+"/events/")
	ds := e.waitDeliveries(e.a.ID, evID, kinehook.DeliveryFailed)
	show := b.follow(p)
	mustContain(t, show, "HTTP 500", "sink is failing on purpose", ">failed<", "Retry now")
	e.sink.fail.Store(false)
	p = b.post(base+"/deliveries/"+ds[0].ID+"/retry", nil)
	if p.location != base+"/events/"+evID {
		t.Fatalf("retry redirected to %q", p.location)
	}
	e.waitDeliveries(e.a.ID, evID, kinehook.DeliverySucceeded)
	show = b.follow(p)
	mustContain(t, show, "is being sent again", "#2", "HTTP 200", ">succeeded<")
	if p := b.post(base+"/deliveries/dlv_unknown/retry", nil); p.status != http.StatusNotFound {
		t.Fatalf("retry of an unknown delivery: %d", p.status)
	}

	// Health shows the failure.
	list := b.get(base + "/endpoints")
	mustContain(t, list, "89%</strong> of 9 attempts succeeded", "(8 deliveries)", "Last failure", "HTTP 500")

	// Recover: two failures, then re-send them.
	e.sink.fail.Store(true)
	f1 := e.publish(e.a, `{"event":"live.created","data":{"event_id":"rec-1"}}`)
	f2 := e.publish(e.a, `{"event":"live.created","data":{"event_id":"rec-2"}}`)
	e.waitDeliveries(e.a.ID, f1.ID, kinehook.DeliveryFailed)
	e.waitDeliveries(e.a.ID, f2.ID, kinehook.DeliveryFailed)
	e.sink.fail.Store(false)
	// A text input, prefilled as its placeholder shows: what the user sees
	// is what the server reads (a datetime-local input showed the browser's
	// locale under a "(UTC)" label).
	if got := regexp1(t, b.get(path).body, `<input id="since" name="since" type="text"[^>]* placeholder="2026-12-03 13:00" value="([^"]*)"`); !regexp.MustCompile(`^\d{4}-\d{2}-\d{2} \d{2}:\d{2}$`).MatchString(got) {
		t.Errorf("recover form prefilled with %q, want YYYY-MM-DD HH:MM", got)
	}
	mustContain(t, b.follow(b.post(path+"/recover", url.Values{"since": {"yesterday"}})), "Nothing was recovered", "not a date and time", "write YYYY-MM-DD HH:MM in UTC")
	mustContain(t, b.follow(b.post(path+"/recover", url.Values{"since": {time.Now().Add(time.Hour).UTC().Format("2006-01-02 15:04")}})), "the time is in the future")
	since := time.Now().Add(-time.Hour).UTC().Format("2006-01-02T15:04")
	mustContain(t, b.follow(b.post(path+"/recover", url.Values{"since": {since}})), "2 failed deliveries since")
	e.waitDeliveries(e.a.ID, f1.ID, kinehook.DeliverySucceeded)
	e.waitDeliveries(e.a.ID, f2.ID, kinehook.DeliverySucceeded)
}

func TestTestEventFilterMismatch(t *testing.T) {
	e := newEnv(t, envOpts{})
	ep := e.createEndpoint(e.a, e.sink.srv.URL, "live.*")
	b := e.browser()
	b.login(e.keyA)
	path := "/projects/" + e.a.ID + "/endpoints/" + ep.ID
	show := b.get(path)
	if strings.Contains(show.body, `<option value="media.update.status">`) {
		t.Error("the test-event menu offers a type the filter does not select")
	}
	mustContain(t, show, `<option value="live.finished">`)
	mustContain(t, b.follow(b.post(path+"/test", url.Values{"type": {"media.update.status"}})), "filter does not select media.update.status")
	if p := b.get("/projects/" + e.a.ID + "/events"); !strings.Contains(p.body, "No events yet") {
		t.Fatal("a refused test event was published")
	}
}

func TestEventListFiltersAndPaging(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.createEndpoint(e.a, e.sink.srv.URL)
	for i := 0; i < 27; i++ {
		ev := e.publish(e.a, `{"event":"media.update.status","data":{"id":"video-`+string(rune('a'+i))+`","status":"processing"}}`)
		e.waitDeliveries(e.a.ID, ev.ID, kinehook.DeliverySucceeded)
	}
	e.sink.fail.Store(true)
	failed := e.publish(e.a, `{"event":"live.finished","data":{"event_id":"live-42","video_id":"rec-42"}}`)
	e.waitDeliveries(e.a.ID, failed.ID, kinehook.DeliveryFailed)
	e.sink.fail.Store(false)
	e.publish(e.b, `{"event":"live.created","data":{"event_id":"other-project"}}`)

	b := e.browser()
	b.login(e.keyA)
	base := "/projects/" + e.a.ID + "/events"
	count := func(p *page) int { return strings.Count(p.body, `class="event-link"`) }

	first := b.get(base)
	if n := count(first); n != eventsPerPage {
		t.Fatalf("first page: %d events, want %d", n, eventsPerPage)
	}
	mustContain(t, first, "live.finished", "Older", `class="badge info">processing<`, "recording rec-42", `<label for="f-type">`, `<label for="f-status">`, `<label for="f-resource">`, `<label for="f-since">`, `<label for="f-until">`,
		`<input id="f-since" name="since" type="text" autocomplete="off" spellcheck="false" placeholder="2026-12-03 13:00"`, `<input id="f-until" name="until" type="text"`)
	if strings.Contains(first.body, "other-project") {
		t.Fatal("another project's event is listed")
	}
	next := regexp1(t, first.body, `href="([^"]+)" rel="next"`)
	second := b.get(strings.ReplaceAll(next, "&amp;", "&"))
	if n := count(second); n != 28-eventsPerPage {
		t.Fatalf("second page: %d events, want %d", n, 28-eventsPerPage)
	}
	mustContain(t, second, "Newest")

	tests := []struct {
		query  string
		status int
		n      int
		want   string
	}{
		{"?type=live.finished", 200, 1, "live-42"},
		{"?status=failed", 200, 1, "live-42"},
		{"?status=succeeded&type=live.finished", 200, 0, "No events match"},
		{"?resource=video-c", 200, 1, "video-c"},
		{"?since=" + url.QueryEscape(time.Now().Add(time.Hour).UTC().Format("2006-01-02T15:04")), 200, 0, "No events match"},
		{"?until=" + url.QueryEscape(time.Now().Add(-time.Hour).UTC().Format("2006-01-02T15:04")), 200, 0, "No events match"},
		{"?since=" + url.QueryEscape(time.Now().Add(-time.Hour).UTC().Format("2006-01-02T15:04")) + "&type=live.finished", 200, 1, "live-42"},
		{"?type=video.done", 400, 0, "Unknown event type"},
		{"?status=lost", 400, 0, "Unknown delivery status"},
		{"?since=" + url.QueryEscape(time.Now().Add(-time.Hour).UTC().Format("2006-01-02 15:04")) + "&type=live.finished", 200, 1, "live-42"},
		{"?since=" + url.QueryEscape(time.Now().Add(-time.Hour).UTC().Format("2006-01-02")) + "&type=live.finished", 200, 1, "live-42"},
		{"?since=soon", 400, 0, "From:"},
		{"?until=03%2F12%2F2026", 400, 0, "Until: &#34;03/12/2026&#34; is not a date and time: write YYYY-MM-DD HH:MM in UTC"},
		{"?since=2026-02-01T00:00&until=2026-01-01T00:00", 400, 0, "before its start"},
		{"?cursor=garbage", 400, 0, "This page link is no longer valid"},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			p := b.get(base + tc.query)
			if p.status != tc.status {
				t.Fatalf("status %d, want %d", p.status, tc.status)
			}
			if n := count(p); n != tc.n {
				t.Fatalf("%d events, want %d", n, tc.n)
			}
			mustContain(t, p, tc.want)
		})
	}
}

func regexp1(t *testing.T, s, expr string) string {
	t.Helper()
	m := regexp.MustCompile(expr).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no match for %s in:\n%s", expr, snippet(s))
	}
	return m[1]
}

func TestEventDetail(t *testing.T) {
	e := newEnv(t, envOpts{})
	ep := e.createEndpoint(e.a, e.sink.srv.URL)
	ep.Headers = map[string]string{"X-Team": "video"}
	if err := e.store.UpdateEndpoint(context.Background(), ep); err != nil {
		t.Fatal(err)
	}
	e.engine.EndpointChanged(context.Background(), e.a.ID, ep.ID)
	ev := e.publish(e.a, `{"event":"media.update.status","data":{"id":"vid-1","status":"error","message":"import error: code=610100"}}`)
	e.waitDeliveries(e.a.ID, ev.ID, kinehook.DeliverySucceeded)
	b := e.browser()
	b.login(e.keyA)
	p := b.get("/projects/" + e.a.ID + "/events/" + ev.ID)
	if p.status != http.StatusOK {
		t.Fatalf("event page: %d", p.status)
	}
	mustContain(t, p, ev.ID, "media.update.status", "vid-1", "import error: code=610100", e.sink.srv.URL, "X-Team", "webhook-id", ">succeeded<", "ms")
	// Each attempt shows its id, the attempt_id of its log line.
	ds, err := e.store.ListDeliveries(context.Background(), e.a.ID, ev.ID)
	if err != nil || len(ds) != 1 {
		t.Fatalf("deliveries: %v %v", ds, err)
	}
	atts, err := e.store.ListAttempts(context.Background(), e.a.ID, ds[0].ID)
	if err != nil || len(atts) != 1 || atts[0].ID == "" {
		t.Fatalf("attempts: %v %v", atts, err)
	}
	mustContain(t, p, atts[0].ID)
	if p := b.get("/projects/" + e.a.ID + "/events/msg_nothere"); p.status != http.StatusNotFound {
		t.Fatalf("unknown event: %d", p.status)
	}
}

func TestLiveStream(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.createEndpoint(e.a, e.sink.srv.URL)
	b := e.browser()
	b.login(e.keyA)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.srv.URL+"/projects/"+e.a.ID+"/live", nil)
	res, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); res.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("live: %d %q", res.StatusCode, ct)
	}
	lines := bufio.NewScanner(res.Body)
	next := func() string {
		for lines.Scan() {
			if l := lines.Text(); strings.HasPrefix(l, "event: ") {
				return strings.TrimPrefix(l, "event: ")
			}
		}
		t.Fatalf("stream ended: %v", lines.Err())
		return ""
	}
	if ev := next(); ev != "ready" {
		t.Fatalf("first event %q, want ready", ev)
	}
	e.publish(e.a, `{"event":"live.created","data":{"event_id":"live-sse"}}`)
	if ev := next(); ev != "change" {
		t.Fatalf("after a new event: %q, want change", ev)
	}
	// Signing out ends the stream.
	b.post("/logout", nil)
	for {
		if ev := next(); ev == "signedout" {
			break
		}
	}

	// Close ends open streams and refuses new ones, so a server can shut down.
	req2, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.srv.URL+"/projects/"+e.a.ID+"/live", nil)
	b.login(e.keyA)
	res2, err := b.c.Do(req2)
	if err != nil {
		t.Fatal(err)
	}
	defer res2.Body.Close()
	e.h.Close()
	e.h.Close() // idempotent
	if _, err := io.ReadAll(res2.Body); err != nil {
		t.Fatalf("stream after Close: %v", err)
	}
	req3, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/projects/"+e.a.ID+"/live", nil)
	if p := b.do(req3); p.status != http.StatusServiceUnavailable {
		t.Fatalf("live after Close: %d, want 503", p.status)
	}

	// Without a session the stream is refused.
	anon := e.browser()
	req, _ = http.NewRequest(http.MethodGet, e.srv.URL+"/projects/"+e.a.ID+"/live", nil)
	req.Header.Set("Accept", "text/event-stream")
	if p := anon.do(req); p.status != http.StatusUnauthorized {
		t.Fatalf("anonymous live: %d, want 401", p.status)
	}
}

// TestLiveStreamEndsOnServerShutdown: an open tab must not hold up
// http.Server.Shutdown (and with it the engine's shutdown) until its deadline.
func TestLiveStreamEndsOnServerShutdown(t *testing.T) {
	e := newEnv(t, envOpts{})
	b := e.browser()
	b.login(e.keyA)
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/projects/"+e.a.ID+"/live", nil)
	res, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	line, err := bufio.NewReader(res.Body).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "retry:") {
		t.Fatalf("stream start %q, %v", line, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := e.srv.Config.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown with an open live stream: %v after %v", err, time.Since(start))
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("shutdown took %v with an open live stream", d)
	}
}

func TestStaticAndHeaders(t *testing.T) {
	e := newEnv(t, envOpts{})
	b := e.browser()
	for path, ct := range map[string]string{"/static/app.css": "text/css", "/static/app.js": "text/javascript", "/static/icon.svg": "image/svg+xml"} {
		p := b.get(path)
		if p.status != 200 || !strings.HasPrefix(p.header.Get("Content-Type"), ct) {
			t.Errorf("%s: %d %q", path, p.status, p.header.Get("Content-Type"))
		}
	}
	p := b.get("/login")
	if csp := p.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP %q", csp)
	}
	if strings.Contains(p.body, "http://") || strings.Contains(p.body, "https://") {
		t.Error("the sign-in page loads something from another origin")
	}
	if p := b.get("/static/"); p.status != http.StatusNotFound {
		t.Errorf("static directory listing: %d", p.status)
	}
	if p := b.get("/nothing/here"); p.status != http.StatusNotFound {
		t.Errorf("unknown path: %d", p.status)
	}
	if p := b.get("/"); p.status != http.StatusSeeOther || p.location != "/login" {
		t.Errorf("anonymous /: %d %q", p.status, p.location)
	}
}

// armedStore disables an endpoint (as the delivery engine does on a 410)
// right after the dashboard reads it, once armed.
type armedStore struct {
	kinehook.Store
	armed atomic.Bool
}

func (s *armedStore) GetEndpoint(ctx context.Context, projectID, id string) (*kinehook.Endpoint, error) {
	e, err := s.Store.GetEndpoint(ctx, projectID, id)
	if err == nil && s.armed.CompareAndSwap(true, false) {
		_, _ = s.Store.UpdateEndpointHealth(ctx, projectID, id, kinehook.HealthUpdate{Change: kinehook.HealthDisabled,
			Reason: "endpoint answered 410 Gone", At: time.Now().Add(time.Second)})
	}
	return e, err
}

// A dashboard action saved over an endpoint the engine disabled meanwhile
// does not undo the disable: the page answers 409 and nothing is saved.
func TestDashboardSaveKeepsAConcurrentDisable(t *testing.T) {
	var armed *armedStore
	e := newEnv(t, envOpts{wrapStore: func(s kinehook.Store) kinehook.Store {
		armed = &armedStore{Store: s}
		return armed
	}})
	ep := e.createEndpoint(e.a, e.sink.srv.URL)
	b := e.browser()
	b.login(e.keyA)
	path := "/projects/" + e.a.ID + "/endpoints/" + ep.ID
	armed.armed.Store(true)
	p := b.post(path+"/secret/rotate", nil)
	if p.status != http.StatusConflict {
		t.Fatalf("rotate over a concurrent disable: status %d, want 409", p.status)
	}
	mustContain(t, p, "changed while you were saving")
	got, err := e.store.GetEndpoint(t.Context(), e.a.ID, ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Disabled || got.DisabledReason != "endpoint answered 410 Gone" || len(got.Secrets) != 1 || got.Secrets[0].Value != ep.Secrets[0].Value {
		t.Fatalf("after the refused save: disabled %v (%q), secrets %d", got.Disabled, got.DisabledReason, len(got.Secrets))
	}
	// Opened again, the same action goes through and keeps the disable.
	if p := b.post(path+"/secret/rotate", nil); p.status != http.StatusSeeOther {
		t.Fatalf("second rotate: %d", p.status)
	}
	if got, _ := e.store.GetEndpoint(t.Context(), e.a.ID, ep.ID); !got.Disabled || len(got.Secrets) != 2 {
		t.Fatalf("after the second rotate: disabled %v, secrets %d", got.Disabled, len(got.Secrets))
	}
}

// TestOperationsEndpointPage: the endpoint a project's operations_url made
// says so, shows its URL and filter without offering to change them or to
// delete it, and saves the fields that are the user's; other endpoints can
// subscribe to the operational events with the endpoint.* box.
func TestOperationsEndpointPage(t *testing.T) {
	e := newEnv(t, envOpts{})
	now := time.Now().UTC()
	ops := &kinehook.Endpoint{ID: kinehook.OperationsEndpointID(e.a.ID), ProjectID: e.a.ID, URL: e.sink.srv.URL + "/ops",
		EventTypes: []string{"endpoint.*"}, Secrets: []kinehook.EndpointSecret{{Value: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}},
		Scheme: kinehook.SchemeV1, CreatedAt: now, UpdatedAt: now}
	if err := e.store.CreateEndpoint(context.Background(), ops); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	b.login(e.keyA)
	path := "/projects/" + e.a.ID + "/endpoints/" + ops.ID
	p := b.get(path)
	mustContain(t, p, "operations endpoint", "readonly", `type="hidden" name="event_types" value="endpoint.*"`)
	if strings.Contains(p.body, `id="delete-endpoint"`) {
		t.Error("the operations endpoint's page offers to delete it")
	}
	// Saving the form as shown, with a new description, works.
	form := url.Values{"url": {ops.URL}, "event_types": {"endpoint.*"}, "description": {"pager duty"}}
	if p := b.post(path, form); p.status != http.StatusSeeOther {
		t.Fatalf("save: %d %.300s", p.status, p.body)
	}
	if got, err := e.store.GetEndpoint(context.Background(), e.a.ID, ops.ID); err != nil || got.Description != "pager duty" || got.URL != ops.URL {
		t.Fatalf("saved: %+v %v", got, err)
	}
	if p := b.post(path, url.Values{"url": {"https://example.com/x"}, "event_types": {"endpoint.*"}}); p.status != http.StatusConflict {
		t.Errorf("moving it through the form: %d", p.status)
	}
	other := e.createEndpoint(e.a, e.sink.srv.URL)
	mustContain(t, b.get("/projects/"+e.a.ID+"/endpoints/"+other.ID), `value="endpoint.*"`, "operational events")

	// Disabled while the project has no operations URL (this one never
	// set it): no Enable button, a note instead, and a forged enable is
	// refused.
	got, err := e.store.GetEndpoint(context.Background(), e.a.ID, ops.ID)
	if err != nil {
		t.Fatal(err)
	}
	got.Disabled, got.DisabledReason = true, "disabled in the dashboard"
	if err := e.store.UpdateEndpoint(context.Background(), got); err != nil {
		t.Fatal(err)
	}
	p = b.get(path)
	mustContain(t, p, "Set the project's operations URL again to enable it.")
	if strings.Contains(p.body, `id="enable-endpoint"`) {
		t.Error("the page offers Enable while the project has no operations URL")
	}
	if p := b.post(path+"/enable", nil); p.status != http.StatusConflict {
		t.Errorf("forged enable: %d", p.status)
	}
}
