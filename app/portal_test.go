package app

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/sqlite"
)

func TestCheckPortalOrigins(t *testing.T) {
	ok := []struct {
		in   []string
		want []string
	}{
		{nil, nil},
		{[]string{}, nil},
		{[]string{"https://app.example.com"}, []string{"https://app.example.com"}},
		{[]string{"HTTPS://App.Example.COM/"}, []string{"https://app.example.com"}},
		{[]string{"https://app.example.com:443", "https://app.example.com"}, []string{"https://app.example.com"}},
		{[]string{"http://localhost:8080", "http://127.0.0.1:9"}, []string{"http://localhost:8080", "http://127.0.0.1:9"}},
		{[]string{"https://[::1]:8443"}, []string{"https://[::1]:8443"}},
		{[]string{"http://xn--80ak6aa92e.example"}, []string{"http://xn--80ak6aa92e.example"}},
	}
	for _, tc := range ok {
		got, err := CheckPortalOrigins(tc.in)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("CheckPortalOrigins(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	many := make([]string, MaxPortalOrigins+1)
	for i := range many {
		many[i] = "https://a" + strings.Repeat("b", i) + ".example"
	}
	for _, bad := range [][]string{
		{"https://app.example.com/path"}, {"https://*.example.com"}, {"*"}, {"'self'"}, {"ftp://x.example"},
		{"app.example.com"}, {"//app.example.com"}, {"https://a;b.example"}, {"https://a,b.example"}, {"https://x.example?q"},
		{"https://x.example#f"}, {"https://u:p@x.example"}, {"https://x.example:0"}, {"https://x.example:65536"},
		{"https://x.example:"}, {"https://-x.example"}, {"https://x_y.example"}, {"https://пример.example"}, {"https:// x.example"},
		{"data:text/html,x"}, {""}, many,
	} {
		if _, err := CheckPortalOrigins(bad); kinehook.ErrorCode(err) != kinehook.EINVALID {
			t.Errorf("CheckPortalOrigins(%.60q) = %v, want EINVALID", bad, err)
		}
	}
}

// FuzzCheckPortalOrigins: whatever is accepted is an origin a content
// security policy can hold as it is (nothing that ends the directive or
// widens it) and normalises to itself.
func FuzzCheckPortalOrigins(f *testing.F) {
	for _, s := range []string{"https://app.example.com", "http://127.0.0.1:8080/", "https://[::1]", "https://a;b", "*", "https://x:99999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := CheckPortalOrigins([]string{s})
		if err != nil {
			return
		}
		if len(got) != 1 {
			t.Fatalf("%q gave %q", s, got)
		}
		o := got[0]
		if !strings.HasPrefix(o, "https://") && !strings.HasPrefix(o, "http://") {
			t.Fatalf("%q gave %q", s, o)
		}
		if strings.ContainsAny(o, " \t\r\n;,'\"*/?#@\\") && strings.Count(o, "/") != 2 {
			t.Fatalf("%q gave %q, unsafe in a CSP", s, o)
		}
		if strings.ContainsFunc(strings.TrimPrefix(strings.TrimPrefix(o, "https://"), "http://"), func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || strings.ContainsRune(".-:[]", r))
		}) {
			t.Fatalf("%q gave %q", s, o)
		}
		again, err := CheckPortalOrigins(got)
		if err != nil || !slices.Equal(again, got) {
			t.Fatalf("%q: %q normalises to %q, %v", s, got, again, err)
		}
	})
}

func TestCheckBranding(t *testing.T) {
	got, err := checkBranding(&kinehook.PortalBranding{Name: "  Acme  ", LogoURL: "https://cdn.acme.example/l.png", Color: "#AbCdEf"})
	if err != nil || got.Name != "Acme" || got.Color != "#abcdef" {
		t.Errorf("branding = %+v, %v", got, err)
	}
	if got, err := checkBranding(&kinehook.PortalBranding{}); got != nil || err != nil {
		t.Errorf("empty branding = %+v, %v; want none", got, err)
	}
	for _, tc := range []struct {
		b     kinehook.PortalBranding
		field string
	}{
		{kinehook.PortalBranding{Name: strings.Repeat("é", MaxBrandName+1)}, "branding.name"},
		{kinehook.PortalBranding{Name: "a\x1bb"}, "branding.name"},
		{kinehook.PortalBranding{Color: "#12345"}, "branding.color"},
		{kinehook.PortalBranding{Color: "blue"}, "branding.color"},
		{kinehook.PortalBranding{LogoURL: "http://cdn.example/l.png"}, "branding.logo_url"},
		{kinehook.PortalBranding{LogoURL: "https://u:p@cdn.example/l.png"}, "branding.logo_url"},
		{kinehook.PortalBranding{LogoURL: "https://a;b.example/l.png"}, "branding.logo_url"},
		{kinehook.PortalBranding{LogoURL: "https://cdn.example/l.png' onerror"}, "branding.logo_url"},
		{kinehook.PortalBranding{LogoURL: "data:image/png;base64,AAAA"}, "branding.logo_url"},
		{kinehook.PortalBranding{LogoURL: "https://" + strings.Repeat("a", MaxLogoURL)}, "branding.logo_url"},
	} {
		_, err := checkBranding(&tc.b)
		var ke *kinehook.Error
		if kinehook.ErrorCode(err) != kinehook.EINVALID || !asError(err, &ke) || ke.Field != tc.field {
			t.Errorf("checkBranding(%+v) = %v, want EINVALID on %s", tc.b, err, tc.field)
		}
	}
	if o := LogoOrigin("http://127.0.0.1:8080/logo.png"); o != "http://127.0.0.1:8080" {
		t.Errorf("LogoOrigin = %q", o)
	}
	if o := LogoOrigin("https://CDN.example/x.png"); o != "https://cdn.example" {
		t.Errorf("LogoOrigin = %q", o)
	}
}

func asError(err error, ke **kinehook.Error) bool {
	e, ok := err.(*kinehook.Error)
	*ke = e
	return ok
}

// retryRecorder is a recorder that also records the bulk retries it is asked for.
type retryRecorder struct {
	*recorder
	mu      sync.Mutex
	retries []kinehook.DeliveryFilter
}

func (r *retryRecorder) RetryFailed(_ context.Context, _ string, f kinehook.DeliveryFilter) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.retries = append(r.retries, f)
	return 1, nil
}

// TestPortalSessions: making, expiry (the app's clock), revocation here at
// once and on another instance within KeyCacheTTL, and a deleted project.
func TestPortalSessions(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "kinehook.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	a, err := New(Config{Store: st, Dispatcher: &recorder{store: st}, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Config{Store: st, Dispatcher: &recorder{store: st}, Now: now}) // another instance
	if err != nil {
		t.Fatal(err)
	}
	p, key, err := a.CreateProject(ctx, ProjectInput{Name: "portal"})
	if err != nil {
		t.Fatal(err)
	}
	full, _ := a.Authenticate(ctx, key)
	ps, err := a.CreatePortalSession(ctx, full, p.ID, PortalSessionInput{Scope: "manage", ExpiresIn: ptr[int64](60)})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ps.Token, "kpt_") || string(ps.TokenHash) != string(kinehook.HashKey(ps.Token)) || strings.Contains(ps.Token, key) {
		t.Fatalf("token %q", ps.Token)
	}
	for _, app := range []*App{a, b} {
		acc, err := app.AuthenticatePortal(ctx, ps.Token)
		if err != nil || acc.Project.ID != p.ID || !acc.CanManage() {
			t.Fatalf("AuthenticatePortal = %+v, %v", acc, err)
		}
	}
	for _, bad := range []string{"", key, "kpt_nope", ps.Token + "x"} {
		if _, err := a.AuthenticatePortal(ctx, bad); kinehook.ErrorCode(err) != kinehook.EUNAUTHORIZED {
			t.Errorf("AuthenticatePortal(%q) = %v", bad, err)
		}
	}
	// Expiry follows the app's clock, cache or not.
	clock.Add(int64(61 * time.Second))
	if _, err := a.AuthenticatePortal(ctx, ps.Token); kinehook.ErrorCode(err) != kinehook.EUNAUTHORIZED {
		t.Errorf("an expired session: %v", err)
	}
	clock.Add(-int64(61 * time.Second))

	// Revoked on a: refused on a at once, on b within KeyCacheTTL.
	if err := a.RevokePortalSession(ctx, full, p.ID, ps.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.AuthenticatePortal(ctx, ps.Token); kinehook.ErrorCode(err) != kinehook.EUNAUTHORIZED {
		t.Errorf("revoked, on this instance: %v", err)
	}
	start := time.Now()
	for {
		_, err := b.AuthenticatePortal(ctx, ps.Token)
		if kinehook.ErrorCode(err) == kinehook.EUNAUTHORIZED {
			break
		}
		if time.Since(start) > KeyCacheTTL+time.Second {
			t.Fatalf("revoked, on another instance: still accepted after %v", time.Since(start))
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Read and ingest keys may not make sessions; another project's key finds no project.
	ro, _ := a.CreateKey(ctx, full, p.ID, KeyInput{Name: "ro", Scope: "read"})
	roP, _ := a.Authenticate(ctx, ro.Key)
	if _, err := a.CreatePortalSession(ctx, roP, p.ID, PortalSessionInput{Scope: "read"}); kinehook.ErrorCode(err) != kinehook.EFORBIDDEN {
		t.Errorf("a read key made a session: %v", err)
	}
	q, qkey, _ := a.CreateProject(ctx, ProjectInput{Name: "other"})
	qP, _ := a.Authenticate(ctx, qkey)
	if _, err := a.CreatePortalSession(ctx, qP, p.ID, PortalSessionInput{Scope: "read"}); kinehook.ErrorCode(err) != kinehook.ENOTFOUND {
		t.Errorf("another project's key made a session: %v", err)
	}
	// A deleted project's sessions end.
	ps2, _ := a.CreatePortalSession(ctx, qP, q.ID, PortalSessionInput{Scope: "read"})
	if _, err := b.AuthenticatePortal(ctx, ps2.Token); err != nil {
		t.Fatal(err)
	}
	if err := a.DeleteProject(ctx, q.ID); err != nil {
		t.Fatal(err)
	}
	time.Sleep(KeyCacheTTL)
	if _, err := b.AuthenticatePortal(ctx, ps2.Token); kinehook.ErrorCode(err) != kinehook.EUNAUTHORIZED {
		t.Errorf("a deleted project's session: %v", err)
	}
}

// TestPortalAccessRules: what a read session and a limited session may do.
func TestPortalAccessRules(t *testing.T) {
	ctx := context.Background()
	base, _ := newTestApp(t)
	rec := &retryRecorder{recorder: &recorder{store: base.store}}
	a, err := New(Config{Store: base.store, Dispatcher: rec, AllowPrivateNetworks: true})
	if err != nil {
		t.Fatal(err)
	}
	p, key, _ := a.CreateProject(ctx, ProjectInput{Name: "rules", OperationsURL: "https://ops.example/hook"})
	full, _ := a.Authenticate(ctx, key)
	session := func(in PortalSessionInput) *PortalAccess {
		t.Helper()
		ps, err := a.CreatePortalSession(ctx, full, p.ID, in)
		if err != nil {
			t.Fatal(err)
		}
		acc, err := a.AuthenticatePortal(ctx, ps.Token)
		if err != nil {
			t.Fatal(err)
		}
		return acc
	}
	mk := func(types ...string) *kinehook.Endpoint {
		e, err := a.CreateEndpoint(ctx, p.ID, EndpointInput{URL: ptr("https://hooks.example/" + strings.Join(types, "-")), EventTypes: &types})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	media, live, all := mk("media.update.status"), mk("live.*"), mk()

	read := session(PortalSessionInput{Scope: "read"})
	if eps, _ := a.PortalEndpoints(ctx, read); len(eps) != 3 {
		t.Errorf("an unlimited session sees %d endpoints, want 3 (not the operations endpoint)", len(eps))
	}
	for name, err := range map[string]error{
		"create": func() error {
			_, err := a.PortalCreateEndpoint(ctx, read, EndpointInput{URL: ptr("https://x.example")})
			return err
		}(),
		"patch": func() error {
			_, err := a.PortalPatchEndpoint(ctx, read, media.ID, EndpointInput{Description: ptr("x")})
			return err
		}(),
		"delete": a.PortalDeleteEndpoint(ctx, read, media.ID),
		"rotate": func() error { _, err := a.PortalRotateSecret(ctx, read, media.ID, media.UpdatedAt); return err }(),
		"test":   func() error { _, err := a.PortalTestEndpoint(ctx, read, media.ID, "media.update.status"); return err }(),
		"retry":  func() error { _, err := a.PortalRetryDelivery(ctx, read, "dlv_x"); return err }(),
		"bulk":   func() error { _, err := a.PortalRetryDeliveries(ctx, read, media.ID, DeliverySearch{}); return err }(),
	} {
		if kinehook.ErrorCode(err) != kinehook.EFORBIDDEN {
			t.Errorf("read session %s: %v, want EFORBIDDEN", name, err)
		}
	}

	lim := session(PortalSessionInput{Scope: "manage", EventTypes: []string{"media.*", "live.finished"}})
	eps, _ := a.PortalEndpoints(ctx, lim)
	if len(eps) != 1 || eps[0].ID != media.ID {
		t.Errorf("a media.* session sees %d endpoints, want only %s", len(eps), media.ID)
	}
	for _, e := range []*kinehook.Endpoint{live, all} {
		if _, err := a.PortalEndpoint(ctx, lim, e.ID); kinehook.ErrorCode(err) != kinehook.ENOTFOUND {
			t.Errorf("%s (%v): %v, want ENOTFOUND", e.ID, e.EventTypes, err)
		}
		if err := a.PortalDeleteEndpoint(ctx, lim, e.ID); kinehook.ErrorCode(err) != kinehook.ENOTFOUND {
			t.Errorf("delete %s: %v", e.ID, err)
		}
	}
	for _, types := range [][]string{nil, {"*"}, {"live.*"}, {"live.created"}, {"endpoint.*"}} {
		if _, err := a.PortalCreateEndpoint(ctx, lim, EndpointInput{URL: ptr("https://x.example"), EventTypes: &types}); kinehook.ErrorCode(err) != kinehook.EINVALID {
			t.Errorf("create with %v: %v, want EINVALID", types, err)
		}
	}
	// Made within the types: a webhook whatever else was asked.
	types := []string{"live.finished", "media.update.status"}
	e, err := a.PortalCreateEndpoint(ctx, lim, EndpointInput{URL: ptr("https://made.example"), EventTypes: &types,
		RateLimit: ptr(5.0), MaxInFlight: ptr(3), Type: ptr("nats"), Secret: ptr("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")})
	if err != nil || e.TypeOf() != kinehook.EndpointWebhook || e.RateLimit != 0 || e.MaxInFlight != 0 || e.Secrets[0].Value == "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" {
		t.Errorf("made %+v, %v", e, err)
	}
	if _, err := a.PortalTestEndpoint(ctx, lim, e.ID, "live.created"); kinehook.ErrorCode(err) != kinehook.EINVALID {
		t.Errorf("a test event of a type beyond the session's: %v", err)
	}
	// Without failures of other types, the bulk retry is one, in order
	// (type by type otherwise: see TestPortalEventTypes in dashboard).
	n, err := a.PortalRetryDeliveries(ctx, lim, e.ID, DeliverySearch{Resource: "r1"})
	if err != nil || n != 1 || len(rec.retries) != 1 || rec.retries[0].EndpointID != e.ID || rec.retries[0].EventType != "" ||
		rec.retries[0].ResourceKey != "r1" {
		t.Errorf("bulk retry: %d, %v, %+v", n, err, rec.retries)
	}
	rec.retries = nil
	if n, err := a.PortalRetryDeliveries(ctx, lim, e.ID, DeliverySearch{Event: "live.finished"}); err != nil || n != 1 ||
		len(rec.retries) != 1 || rec.retries[0].EventType != "live.finished" {
		t.Errorf("bulk retry of one type: %d, %v, %+v", n, err, rec.retries)
	}
	rec.retries = nil
	if n, _ := a.PortalRetryDeliveries(ctx, lim, e.ID, DeliverySearch{Event: "live.created"}); n != 0 || len(rec.retries) != 0 {
		t.Errorf("a bulk retry of a type beyond the session's re-sent %d", n)
	}
}

// FuzzLogoOrigin: a logo URL the checks accept has an origin a content
// security policy can hold as it is.
func FuzzLogoOrigin(f *testing.F) {
	for _, s := range []string{"https://cdn.example/l.png", "http://127.0.0.1:8080/x", "https://a;b/x", "javascript:x", "https://[::1]/l"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if checkLogoURL(s) != nil {
			if LogoOrigin(s) != "" {
				t.Fatalf("refused %q has origin %q", s, LogoOrigin(s))
			}
			return
		}
		o := LogoOrigin(s)
		if o == "" || strings.ContainsAny(o, " \t\r\n;,'\"*") {
			t.Fatalf("%q: origin %q", s, o)
		}
		if got, err := CheckPortalOrigins([]string{o}); err != nil || got[0] != o {
			t.Fatalf("%q: origin %q is not an origin (%v)", s, o, err)
		}
	})
}
