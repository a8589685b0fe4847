package dashboard

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/app"
)

// portal makes a portal session of project p through the app, as the API
// does, and returns its path (/portal/{token}).
func (e *testEnv) portal(p *kinehook.Project, in app.PortalSessionInput) string {
	e.t.Helper()
	ps, err := e.h.app.CreatePortalSession(context.Background(), &app.Principal{Admin: true}, p.ID, in)
	if err != nil {
		e.t.Fatalf("create portal session: %v", err)
	}
	return portalPrefix + ps.Token
}

// setOrigins sets a project's portal origins through the app.
func (e *testEnv) setOrigins(p *kinehook.Project, origins ...string) {
	e.t.Helper()
	if _, err := e.h.app.UpdateProject(context.Background(), p.ID, app.ProjectPatch{PortalOrigins: &origins}); err != nil {
		e.t.Fatalf("set portal origins: %v", err)
	}
}

func TestPortalHeaders(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.setOrigins(e.a, "https://app.example.com", "http://localhost:8123")
	pa := e.portal(e.a, app.PortalSessionInput{Scope: "manage"})
	pb := e.portal(e.b, app.PortalSessionInput{Scope: "manage"})
	b := e.browser()

	for _, tc := range []struct {
		name, path, ancestors string
	}{
		{"project with origins", pa + "/endpoints", "frame-ancestors https://app.example.com http://localhost:8123;"},
		{"project without origins", pb + "/endpoints", "frame-ancestors 'none';"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := b.get(tc.path)
			if p.status != http.StatusOK {
				t.Fatalf("status %d: %s", p.status, snippet(p.body))
			}
			if csp := p.header.Get("Content-Security-Policy"); !strings.Contains(csp, tc.ancestors) {
				t.Errorf("CSP %q lacks %q", csp, tc.ancestors)
			}
			if xfo := p.header.Values("X-Frame-Options"); len(xfo) != 0 {
				t.Errorf("X-Frame-Options %q on a portal page", xfo)
			}
			if rp := p.header.Get("Referrer-Policy"); rp != "no-referrer" {
				t.Errorf("Referrer-Policy %q, want no-referrer", rp)
			}
			if cc := p.header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control %q", cc)
			}
			if len(p.header.Values("Set-Cookie")) != 0 {
				t.Errorf("the portal set a cookie: %q", p.header.Values("Set-Cookie"))
			}
		})
	}
	// The project's origins change: the next page says so (the app forgets
	// its cached session at once on this instance).
	e.setOrigins(e.a)
	if csp := b.get(pa + "/endpoints").header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none';") {
		t.Errorf("after clearing the origins: CSP %q", csp)
	}
	// Every other page keeps refusing frames, the portal's unknown paths too.
	for _, path := range []string{"/login", "/static/app.css", pa + "/keys", pa + "/../projects", "/portal/"} {
		p := b.get(path)
		if p.header.Get("X-Frame-Options") != "DENY" || !strings.Contains(p.header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
			t.Errorf("%s: X-Frame-Options %q, CSP %q", path, p.header.Get("X-Frame-Options"), p.header.Get("Content-Security-Policy"))
		}
	}
	// The root is a redirect to the endpoints; the header shows the branding.
	e.setOrigins(e.a, "https://app.example.com")
	pc := e.portal(e.a, app.PortalSessionInput{Scope: "read", Branding: &kinehook.PortalBranding{Name: "Acme Video", LogoURL: "https://cdn.acme.example/logo.png", Color: "#ff8800"}})
	if p := b.get(pc); p.status != http.StatusSeeOther || p.location != pc+"/endpoints" {
		t.Fatalf("portal root: %d %q", p.status, p.location)
	}
	p := b.get(pc + "/endpoints")
	mustContain(t, p, "Acme Video", `src="https://cdn.acme.example/logo.png"`, pc+"/brand.css")
	if csp := p.header.Get("Content-Security-Policy"); !strings.Contains(csp, "img-src 'self' data: https://cdn.acme.example;") {
		t.Errorf("CSP %q does not allow the logo's origin", csp)
	}
	if css := b.get(pc + "/brand.css"); !strings.Contains(css.body, "#ff8800") || !strings.HasPrefix(css.header.Get("Content-Type"), "text/css") {
		t.Errorf("brand.css = %q (%s)", css.body, css.header.Get("Content-Type"))
	}
	// No keys, no project settings, no sign-out form, no other project.
	for _, not := range []string{"/keys", "/events", "/projects", "Sign out", e.keyA, e.b.Name} {
		if strings.Contains(p.body, not) {
			t.Errorf("the portal page shows %q", not)
		}
	}
}

func TestPortalRefusedSessions(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.setOrigins(e.a, "https://app.example.com")
	ep := e.createEndpoint(e.a, e.sink.srv.URL+"/secret-endpoint")
	ctx := context.Background()
	// An expired session, written as the app would have made it an hour ago.
	token, err := app.NewPortalToken()
	if err != nil {
		t.Fatal(err)
	}
	past := time.Now().UTC().Add(-time.Hour)
	if err := e.store.CreatePortalSession(ctx, &kinehook.PortalSession{ID: kinehook.NewID(kinehook.PrefixPortalSession), ProjectID: e.a.ID,
		TokenHash: kinehook.HashKey(token), Scope: kinehook.PortalManage, CreatedAt: past, ExpiresAt: past.Add(30 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	expired := portalPrefix + token
	live := e.portal(e.a, app.PortalSessionInput{Scope: "manage"})
	b := e.browser()
	b.get(live + "/endpoints/new") // its CSRF token
	csrf := b.csrf
	revoked := live
	sessions, err := e.h.app.ListPortalSessions(ctx, &app.Principal{Admin: true}, e.a.ID)
	if err != nil || len(sessions) != 2 {
		t.Fatalf("sessions: %d, %v", len(sessions), err)
	}
	if err := e.h.app.RevokePortalSession(ctx, &app.Principal{Admin: true}, e.a.ID, sessions[0].ID); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, path string }{
		{"expired", expired + "/endpoints"},
		{"expired endpoint page", expired + "/endpoints/" + ep.ID},
		{"revoked", revoked + "/endpoints"},
		{"unknown", "/portal/kpt_" + strings.Repeat("A", 43) + "/endpoints"},
		{"a project key as token", "/portal/" + e.keyA + "/endpoints"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := b.get(tc.path)
			if p.status != http.StatusUnauthorized {
				t.Errorf("status %d, want 401", p.status)
			}
			if strings.Contains(p.body, ep.ID) || strings.Contains(p.body, "secret-endpoint") || strings.Contains(p.body, e.a.Name) {
				t.Errorf("a refused session sees data: %s", snippet(p.body))
			}
			if len(p.header.Values("X-Frame-Options")) != 0 {
				t.Errorf("X-Frame-Options on the portal's error page")
			}
		})
	}
	// The expired and revoked sessions' error pages may show in the project's frame.
	if csp := b.get(expired + "/endpoints").header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors https://app.example.com;") {
		t.Errorf("expired session's CSP %q", csp)
	}
	// A revoked session changes nothing, even with its CSRF token.
	p := b.post(revoked+"/endpoints", url.Values{"csrf": {csrf}, "url": {e.sink.srv.URL + "/new"}, "event_types": {"media.update.status"}})
	if p.status != http.StatusUnauthorized {
		t.Errorf("POST with a revoked session: %d", p.status)
	}
	if eps, _ := e.store.ListEndpoints(ctx, e.a.ID); len(eps) != 1 {
		t.Errorf("%d endpoints after the refused POST, want 1", len(eps))
	}
}

func TestPortalCSRFAndScope(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := context.Background()
	manage := e.portal(e.a, app.PortalSessionInput{Scope: "manage"})
	read := e.portal(e.a, app.PortalSessionInput{Scope: "read"})
	ep := e.createEndpoint(e.a, e.sink.srv.URL)
	b := e.browser()
	b.get(manage + "/endpoints/new")
	good := b.csrf
	if good != app.PortalCSRF(strings.TrimPrefix(manage, portalPrefix)) {
		t.Fatalf("the page's CSRF token is not the session's")
	}
	count := func() int {
		eps, err := e.store.ListEndpoints(ctx, e.a.ID)
		if err != nil {
			t.Fatal(err)
		}
		return len(eps)
	}
	form := func(csrf string) url.Values {
		return url.Values{"csrf": {csrf}, "url": {e.sink.srv.URL + "/x"}, "event_types": {"media.update.status"}}
	}
	// Another session's token, a dashboard-looking token, none at all: refused.
	b.get(read + "/endpoints/" + ep.ID)
	readCSRF := b.csrf
	for name, csrf := range map[string]string{"none": "", "wrong": "x" + good[1:], "another session's": readCSRF} {
		if p := b.post(manage+"/endpoints", form(csrf)); p.status != http.StatusForbidden {
			t.Errorf("%s CSRF token: status %d", name, p.status)
		}
	}
	if n := count(); n != 1 {
		t.Fatalf("%d endpoints after refused forms", n)
	}
	// A cross-site POST is refused whatever it carries.
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+manage+"/endpoints", strings.NewReader(form(good).Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if p := b.do(req); p.status != http.StatusForbidden || count() != 1 {
		t.Errorf("cross-site POST: %d, %d endpoints", p.status, count())
	}

	// The read session may look but change nothing, each POST refused.
	if p := b.get(read + "/endpoints/" + ep.ID); p.status != http.StatusOK || !strings.Contains(p.body, `class="read-only"`) {
		t.Errorf("read session's endpoint page: %d", p.status)
	}
	for _, path := range []string{"/endpoints", "/endpoints/" + ep.ID, "/endpoints/" + ep.ID + "/disable", "/endpoints/" + ep.ID + "/secret/rotate",
		"/endpoints/" + ep.ID + "/test", "/endpoints/" + ep.ID + "/delete", "/endpoints/" + ep.ID + "/deliveries/retry", "/deliveries/dlv_x/retry"} {
		if p := b.post(read+path, form(readCSRF)); p.status != http.StatusForbidden {
			t.Errorf("read session POST %s: %d", path, p.status)
		}
	}
	got, _ := e.store.GetEndpoint(ctx, e.a.ID, ep.ID)
	if count() != 1 || got.Disabled || len(got.Secrets) != 1 {
		t.Errorf("a read session changed something: %d endpoints, %+v", count(), got)
	}

	// The manage session with its token: made, as a webhook with no limits.
	p := b.post(manage+"/endpoints", url.Values{"csrf": {good}, "url": {e.sink.srv.URL + "/made"}, "event_types": {"media.update.status"},
		"type": {"nats"}, "rate_limit": {"5"}, "max_in_flight": {"3"}})
	if p.status != http.StatusSeeOther || count() != 2 {
		t.Fatalf("create: %d, %d endpoints: %s", p.status, count(), snippet(p.body))
	}
	eps, _ := e.store.ListEndpoints(ctx, e.a.ID)
	made := eps[1]
	if made.TypeOf() != kinehook.EndpointWebhook || made.RateLimit != 0 || made.MaxInFlight != 0 || made.URL != e.sink.srv.URL+"/made" {
		t.Errorf("made %+v: want a plain webhook", made)
	}
	// Another project's endpoint is not there.
	other := e.createEndpoint(e.b, e.sink.srv.URL)
	if p := b.get(manage + "/endpoints/" + other.ID); p.status != http.StatusNotFound {
		t.Errorf("another project's endpoint: %d", p.status)
	}
	if p := b.post(manage+"/endpoints/"+other.ID+"/delete", url.Values{"csrf": {good}}); p.status != http.StatusNotFound {
		t.Errorf("deleting another project's endpoint: %d", p.status)
	}
}

func TestPortalEventTypes(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := context.Background()
	pt := e.portal(e.a, app.PortalSessionInput{Scope: "manage", EventTypes: []string{"media.*"}})
	media := e.createEndpoint(e.a, e.sink.srv.URL+"/media", "media.update.status")
	live := e.createEndpoint(e.a, e.sink.srv.URL+"/live", "live.*")
	all := e.createEndpoint(e.a, e.sink.srv.URL+"/all")
	b := e.browser()
	p := b.get(pt + "/endpoints")
	mustContain(t, p, media.ID)
	for _, hidden := range []*kinehook.Endpoint{live, all} {
		if strings.Contains(p.body, hidden.ID) {
			t.Errorf("the list shows %s (%v), beyond media.*", hidden.ID, hidden.EventTypes)
		}
		if p := b.get(pt + "/endpoints/" + hidden.ID); p.status != http.StatusNotFound {
			t.Errorf("%s page: %d, want 404", hidden.ID, p.status)
		}
	}
	// The form offers only media.*; a live type is refused with a message.
	p = b.get(pt + "/endpoints/new")
	mustContain(t, p, `value="media.*"`)
	if strings.Contains(p.body, `value="live.*"`) || strings.Contains(p.body, `value="endpoint.*"`) {
		t.Errorf("the form offers types beyond media.*")
	}
	for name, types := range map[string][]string{"live": {"live.finished"}, "none (every type)": nil, "every type": {"*"}} {
		p = b.post(pt+"/endpoints", url.Values{"url": {e.sink.srv.URL + "/new"}, "event_types": types})
		if p.status != http.StatusUnprocessableEntity || !strings.Contains(p.body, "media.*") {
			t.Errorf("create with %s: %d %s", name, p.status, snippet(p.body))
		}
	}
	if eps, _ := e.store.ListEndpoints(ctx, e.a.ID); len(eps) != 3 {
		t.Fatalf("%d endpoints after refused forms", len(eps))
	}
	// Editing the visible endpoint to a live type is refused too.
	b.get(pt + "/endpoints/" + media.ID)
	if p = b.post(pt+"/endpoints/"+media.ID, url.Values{"url": {media.URL}, "event_types": {"live.finished"}}); p.status != http.StatusUnprocessableEntity {
		t.Errorf("edit to live.finished: %d", p.status)
	}
	if got, _ := e.store.GetEndpoint(ctx, e.a.ID, media.ID); len(got.EventTypes) != 1 || got.EventTypes[0] != "media.update.status" {
		t.Errorf("filter after the refused edit: %v", got.EventTypes)
	}
	// A delivery of another type to the visible endpoint (its filter was
	// wider once) does not show, nor may it be retried, one by one or in bulk.
	got, _ := e.store.GetEndpoint(ctx, e.a.ID, media.ID)
	wide := *got
	wide.EventTypes = nil
	if err := e.store.UpdateEndpoint(ctx, &wide); err != nil {
		t.Fatal(err)
	}
	e.engine.EndpointChanged(ctx, e.a.ID, media.ID)
	e.sink.fail.Store(true)
	liveEv := e.publish(e.a, `{"event":"live.finished","data":{"event_id":"ev-1"}}`)
	mediaEv := e.publish(e.a, `{"event":"media.update.status","data":{"id":"v-1","status":"done"}}`)
	of := func(ev *kinehook.Event) string {
		for _, d := range e.waitDeliveries(e.a.ID, ev.ID, kinehook.DeliveryFailed) {
			if d.EndpointID == media.ID {
				return d.ID
			}
		}
		t.Fatalf("no delivery of %s to the media endpoint", ev.Type)
		return ""
	}
	hidden, shown := of(liveEv), of(mediaEv)
	if err := e.store.UpdateEndpoint(ctx, got); err != nil {
		t.Fatal(err)
	}
	e.engine.EndpointChanged(ctx, e.a.ID, media.ID)
	e.sink.fail.Store(false)
	p = b.get(pt + "/endpoints/" + media.ID)
	mustContain(t, p, shown)
	if strings.Contains(p.body, hidden) || strings.Contains(p.body, "live.finished") {
		t.Errorf("the log shows the live delivery %s", hidden)
	}
	if p = b.post(pt+"/deliveries/"+hidden+"/retry", nil); p.status != http.StatusNotFound {
		t.Errorf("retrying a hidden delivery: %d", p.status)
	}
	if p = b.post(pt+"/endpoints/"+media.ID+"/deliveries/retry", nil); p.status != http.StatusSeeOther {
		t.Fatalf("bulk retry: %d %s", p.status, snippet(p.body))
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		d, err := e.store.GetDelivery(ctx, e.a.ID, shown)
		if err == nil && d.Status == kinehook.DeliverySucceeded {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the shown delivery after the bulk retry: %+v, %v", d, err)
		}
	}
	time.Sleep(100 * time.Millisecond)
	if d, err := e.store.GetDelivery(ctx, e.a.ID, hidden); err != nil || d.Status != kinehook.DeliveryFailed || d.Attempts != 1 {
		t.Errorf("the hidden delivery after the portal's bulk retry: %+v, %v", d, err)
	}
}

// listFailStore fails ListEndpoints once armed.
type listFailStore struct {
	kinehook.Store
	armed atomic.Bool
}

func (s *listFailStore) ListEndpoints(ctx context.Context, pid string) ([]*kinehook.Endpoint, error) {
	if s.armed.Load() {
		return nil, errors.New("disk on fire")
	}
	return s.Store.ListEndpoints(ctx, pid)
}

// A portal page's internal error is logged without the session's token.
func TestPortalLogsNoToken(t *testing.T) {
	var fs *listFailStore
	e := newEnv(t, envOpts{wrapStore: func(s kinehook.Store) kinehook.Store {
		fs = &listFailStore{Store: s}
		return fs
	}})
	var logged bytes.Buffer
	e.h.log = slog.New(slog.NewTextHandler(&logged, nil))
	pt := e.portal(e.a, app.PortalSessionInput{Scope: "read"})
	fs.armed.Store(true)
	p := e.browser().get(pt + "/endpoints")
	if p.status != http.StatusInternalServerError {
		t.Fatalf("status %d", p.status)
	}
	if !strings.Contains(logged.String(), "disk on fire") || strings.Contains(logged.String(), strings.TrimPrefix(pt, portalPrefix)) {
		t.Errorf("log:\n%s", logged.String())
	}
}
