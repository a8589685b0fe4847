package http

import (
	"strings"
	"testing"
)

func TestPortalSessionLifecycle(t *testing.T) {
	e := newEnv(t)
	pid, full := e.project("portal")
	base := "/v1/projects/" + pid + "/portal-sessions"

	made := e.must(e.do("POST", base, full, map[string]any{"scope": "manage", "expires_in": 600, "event_types": []string{"media.*"},
		"branding": map[string]any{"name": "Acme", "logo_url": "https://acme.example/logo.png", "color": "#AABBCC"}}), 201).json(t)
	url, _ := made["url"].(string)
	if !strings.HasPrefix(url, e.api.URL+PortalPath+"kpt_") {
		t.Fatalf("url = %q, want %s%skpt_...", url, e.api.URL, PortalPath)
	}
	if strings.Contains(url, full) {
		t.Fatal("the portal URL holds the project key")
	}
	if made["scope"] != "manage" || made["revoked_at"] != nil || made["branding"].(map[string]any)["color"] != "#aabbcc" {
		t.Errorf("answer = %v", made)
	}
	if et := made["event_types"].([]any); len(et) != 1 || et[0] != "media.*" {
		t.Errorf("event_types = %v", et)
	}
	// Default life: an hour.
	plain := e.must(e.do("POST", base, full, map[string]any{"scope": "read"}), 201).json(t)
	if plain["expires_at"].(string) <= made["expires_at"].(string) {
		t.Errorf("default expiry %v is not after the 10-minute one %v", plain["expires_at"], made["expires_at"])
	}

	list := e.must(e.do("GET", base, full, nil), 200)
	if strings.Contains(string(list.body), "kpt_") || strings.Contains(string(list.body), `"url"`) {
		t.Errorf("the list shows a token: %s", list.body)
	}
	var n int
	for _, s := range list.json(t)["data"].([]any) {
		if id := s.(map[string]any)["id"]; id == made["id"] || id == plain["id"] {
			n++
		}
	}
	if n != 2 {
		t.Errorf("list = %s, want both sessions", list.body)
	}

	id := made["id"].(string)
	e.must(e.do("DELETE", base+"/"+id, full, nil), 204)
	e.must(e.do("DELETE", base+"/"+id, full, nil), 204) // again: still revoked
	e.must(e.do("DELETE", base+"/pts_nope", full, nil), 404)
	for _, s := range e.must(e.do("GET", base, full, nil), 200).json(t)["data"].([]any) {
		s := s.(map[string]any)
		if (s["id"] == id) != (s["revoked_at"] != nil) {
			t.Errorf("after revoking %s: %v", id, s)
		}
	}
	// The admin key may manage them too.
	e.must(e.do("POST", base, testAdminKey, map[string]any{"scope": "read"}), 201)
}

func TestPortalSessionAccess(t *testing.T) {
	e := newEnv(t)
	pid, full := e.project("portal")
	pid2, full2 := e.project("other")
	read := e.newKey(pid, "reader", "read")["key"].(string)
	ingest := e.newKey(pid, "encoder", "ingest")["key"].(string)
	base := "/v1/projects/" + pid + "/portal-sessions"
	ps := e.must(e.do("POST", base, full, map[string]any{"scope": "read"}), 201).json(t)
	for _, tc := range []struct {
		name, method, path, key string
		want                    int
	}{
		{"read key creates", "POST", base, read, 403},
		{"ingest key creates", "POST", base, ingest, 403},
		{"read key lists", "GET", base, read, 403},
		{"read key revokes", "DELETE", base + "/" + ps["id"].(string), read, 403},
		{"other project's key creates", "POST", base, full2, 404},
		{"other project's key lists", "GET", base, full2, 404},
		{"other project's key revokes", "DELETE", base + "/" + ps["id"].(string), full2, 404},
		{"revoke through another project", "DELETE", "/v1/projects/" + pid2 + "/portal-sessions/" + ps["id"].(string), full2, 404},
		{"no key", "POST", base, "", 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(tc.method, tc.path, tc.key, map[string]any{"scope": "read"})
			if r.status != tc.want {
				t.Fatalf("status %d, want %d: %s", r.status, tc.want, r.body)
			}
		})
	}
	// Still not revoked.
	for _, s := range e.must(e.do("GET", base, full, nil), 200).json(t)["data"].([]any) {
		if s.(map[string]any)["revoked_at"] != nil {
			t.Errorf("a refused revocation revoked: %v", s)
		}
	}
}

func TestPortalSessionValidation(t *testing.T) {
	e := newEnv(t)
	pid, full := e.project("portal")
	base := "/v1/projects/" + pid + "/portal-sessions"
	for _, tc := range []struct {
		name  string
		body  any
		want  int
		field string
	}{
		{"no scope", map[string]any{}, 422, "scope"},
		{"unknown scope", map[string]any{"scope": "full"}, 422, "scope"},
		{"zero expiry", map[string]any{"scope": "read", "expires_in": 0}, 422, "expires_in"},
		{"negative expiry", map[string]any{"scope": "read", "expires_in": -5}, 422, "expires_in"},
		{"expiry past 7 days", map[string]any{"scope": "read", "expires_in": 604801}, 422, "expires_in"},
		{"fractional expiry", `{"scope":"read","expires_in":1.5}`, 422, "expires_in"},
		{"string expiry", `{"scope":"read","expires_in":"1h"}`, 422, "expires_in"},
		{"unknown event type", map[string]any{"scope": "read", "event_types": []string{"media.exploded"}}, 422, "event_types"},
		{"unknown prefix", map[string]any{"scope": "read", "event_types": []string{"nothing.*"}}, 422, "event_types"},
		{"operational type", map[string]any{"scope": "read", "event_types": []string{"endpoint.*"}}, 422, "event_types"},
		{"logo over http", map[string]any{"scope": "read", "branding": map[string]any{"logo_url": "http://acme.example/l.png"}}, 422, "branding.logo_url"},
		{"logo javascript", map[string]any{"scope": "read", "branding": map[string]any{"logo_url": "javascript:alert(1)"}}, 422, "branding.logo_url"},
		{"logo relative", map[string]any{"scope": "read", "branding": map[string]any{"logo_url": "/logo.png"}}, 422, "branding.logo_url"},
		{"colour name", map[string]any{"scope": "read", "branding": map[string]any{"color": "red"}}, 422, "branding.color"},
		{"colour short", map[string]any{"scope": "read", "branding": map[string]any{"color": "#abc"}}, 422, "branding.color"},
		{"colour injection", map[string]any{"scope": "read", "branding": map[string]any{"color": "#aabbcc;x"}}, 422, "branding.color"},
		{"long name", map[string]any{"scope": "read", "branding": map[string]any{"name": strings.Repeat("n", 101)}}, 422, "branding.name"},
		{"unknown branding field", map[string]any{"scope": "read", "branding": map[string]any{"font": "x"}}, 422, "font"},
		{"unknown field", map[string]any{"scope": "read", "ttl": 5}, 422, "ttl"},
		{"ok: wildcard", map[string]any{"scope": "read", "event_types": []string{"media.*", "live.finished"}}, 201, ""},
		{"ok: logo on loopback http", map[string]any{"scope": "manage", "branding": map[string]any{"logo_url": "http://127.0.0.1:9/l.png"}}, 201, ""},
		{"ok: 7 days", map[string]any{"scope": "read", "expires_in": 604800}, 201, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("POST", base, full, tc.body)
			if r.status != tc.want {
				t.Fatalf("status %d, want %d: %s", r.status, tc.want, r.body)
			}
			if tc.field != "" && r.errField() != tc.field {
				t.Errorf("field %q, want %q: %s", r.errField(), tc.field, r.body)
			}
		})
	}
}

func TestProjectPortalOrigins(t *testing.T) {
	e := newEnv(t)
	pid, full := e.project("origins")
	path := "/v1/projects/" + pid
	if got := e.must(e.do("GET", path, full, nil), 200).json(t)["portal_origins"]; got == nil || len(got.([]any)) != 0 {
		t.Errorf("a new project's portal_origins = %v, want []", got)
	}
	p := e.must(e.do("PATCH", path, full, map[string]any{"portal_origins": []string{"https://App.Example.com/", "http://127.0.0.1:8080", "https://app.example.com:443"}}), 200).json(t)
	if got := p["portal_origins"].([]any); len(got) != 2 || got[0] != "https://app.example.com" || got[1] != "http://127.0.0.1:8080" {
		t.Errorf("portal_origins = %v, want normalised and without repeats", got)
	}
	for _, bad := range []string{"https://app.example.com/path", "https://*.example.com", "*", "ftp://x.example", "app.example.com",
		"https://a;b.example", "https://x.example?q=1", "https://u@x.example", "https://x.example:0", "https://x.example:99999",
		"https://x.example#f", "https:// x.example", "'self'"} {
		r := e.do("PATCH", path, full, map[string]any{"portal_origins": []string{bad}})
		if r.status != 422 || r.errField() != "portal_origins" {
			t.Errorf("portal origin %q: %d %s, want 422 portal_origins", bad, r.status, r.body)
		}
	}
	// A refused change kept what was there.
	if got := e.must(e.do("GET", path, full, nil), 200).json(t)["portal_origins"].([]any); len(got) != 2 {
		t.Errorf("after refused changes: %v", got)
	}
	if got := e.must(e.do("PATCH", path, full, map[string]any{"portal_origins": []string{}}), 200).json(t)["portal_origins"].([]any); len(got) != 0 {
		t.Errorf("cleared portal_origins = %v", got)
	}
}

// TestPortalSessionPublicURL: with Config.PublicURL the portal URL is built
// on it, not on the request's host.
func TestPortalSessionPublicURL(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.PublicURL = "https://hooks.example.com/" })
	pid, full := e.project("public")
	ps := e.must(e.do("POST", "/v1/projects/"+pid+"/portal-sessions", full, map[string]any{"scope": "read"}), 201).json(t)
	if u := ps["url"].(string); !strings.HasPrefix(u, "https://hooks.example.com/portal/kpt_") {
		t.Errorf("url = %q, want it on the public URL", u)
	}
}
