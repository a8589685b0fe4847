package http

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	nethttp "net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/app"
)

func TestHealthAndPublicRoutes(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		path   string
		status int
		check  func(t *testing.T, r resp)
	}{
		{"/healthz", 200, func(t *testing.T, r resp) {
			if r.json(t)["status"] != "ok" {
				t.Errorf("healthz body %s", r.body)
			}
		}},
		{"/readyz", 200, func(t *testing.T, r resp) {
			if r.json(t)["status"] != "ready" {
				t.Errorf("readyz body %s", r.body)
			}
		}},
		{"/openapi.json", 200, func(t *testing.T, r resp) {
			if r.json(t)["openapi"] != "3.1.0" {
				t.Errorf("openapi version: %s", r.body[:min(len(r.body), 80)])
			}
		}},
		{"/v1/event-types", 200, func(t *testing.T, r resp) {
			var b struct {
				Data []struct {
					Name   string          `json:"name"`
					Schema json.RawMessage `json:"schema"`
				} `json:"data"`
			}
			if err := json.Unmarshal(r.body, &b); err != nil {
				t.Fatal(err)
			}
			if len(b.Data) != len(kinehook.EventTypes) {
				t.Fatalf("%d event types, want %d", len(b.Data), len(kinehook.EventTypes))
			}
			for i, d := range b.Data {
				if d.Name != string(kinehook.EventTypes[i]) || len(d.Schema) < 10 {
					t.Errorf("event type %d: %q with schema %s", i, d.Name, d.Schema)
				}
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			r := e.must(e.do("GET", tc.path, "", nil), tc.status)
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			tc.check(t, r)
		})
	}
}

func TestReadyzFailsWhenStoreIsClosed(t *testing.T) {
	e := newEnv(t)
	_ = e.store.Close()
	r := e.do("GET", "/readyz", "", nil)
	if r.status != 503 || r.errCode() != kinehook.EUNAVAILABLE {
		t.Fatalf("readyz with a closed store: %d %s", r.status, r.body)
	}
}

func TestReadyzAsksTheExtraCheck(t *testing.T) {
	e := newEnv(t)
	var notReady error
	srv, err := NewServer(Config{Store: e.store, Dispatcher: e.engine, Ready: func() error { return notReady }})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	e.api.Config.Handler = srv
	e.must(e.do("GET", "/readyz", "", nil), 200)
	notReady = errors.New("cannot renew leases")
	r := e.do("GET", "/readyz", "", nil)
	if r.status != 503 || r.errCode() != kinehook.EUNAVAILABLE || !strings.Contains(string(r.body), "cannot renew leases") {
		t.Fatalf("readyz with a failing extra check: %d %s", r.status, r.body)
	}
}

func TestAuth(t *testing.T) {
	e := newEnv(t)
	pidA, keyA := e.project("a")
	pidB, keyB := e.project("b")
	ep := e.endpoint(pidA, keyA, nil)
	ev := e.must(e.do("POST", "/v1/projects/"+pidA+"/events", keyA, mediaEvent("v1", "done")), 202).json(t)
	epPath := "/v1/projects/" + pidA + "/endpoints/" + ep["id"].(string)
	evPath := "/v1/projects/" + pidA + "/events/" + ev["id"].(string)

	tests := []struct {
		name   string
		method string
		path   string
		key    string
		body   any
		status int
		code   string
	}{
		{"no key", "GET", "/v1/projects", "", nil, 401, kinehook.EUNAUTHORIZED},
		{"wrong key", "GET", "/v1/projects", "kh_nope", nil, 401, kinehook.EUNAUTHORIZED},
		{"not bearer", "GET", "/v1/projects/" + pidA + "/endpoints", "", nil, 401, kinehook.EUNAUTHORIZED},
		{"project key creates project", "POST", "/v1/projects", keyA, map[string]any{"name": "x"}, 403, codeForbidden},
		{"admin lists projects", "GET", "/v1/projects", testAdminKey, nil, 200, ""},
		{"own project", "GET", "/v1/projects/" + pidA + "/endpoints", keyA, nil, 200, ""},
		{"admin on project", "GET", "/v1/projects/" + pidA + "/endpoints", testAdminKey, nil, 200, ""},
		{"other project's endpoints", "GET", "/v1/projects/" + pidA + "/endpoints", keyB, nil, 404, kinehook.ENOTFOUND},
		{"other project's endpoint", "GET", epPath, keyB, nil, 404, kinehook.ENOTFOUND},
		{"other project's event", "GET", evPath, keyB, nil, 404, kinehook.ENOTFOUND},
		{"other project's post", "POST", "/v1/projects/" + pidA + "/events", keyB, mediaEvent("v", "done"), 404, kinehook.ENOTFOUND},
		{"other project's delete", "DELETE", epPath, keyB, nil, 404, kinehook.ENOTFOUND},
		{"endpoint via own project path", "GET", "/v1/projects/" + pidB + "/endpoints/" + ep["id"].(string), keyB, nil, 404, kinehook.ENOTFOUND},
		{"admin on unknown project", "GET", "/v1/projects/prj_nope/endpoints", testAdminKey, nil, 404, kinehook.ENOTFOUND},
		{"admin posts to unknown project", "POST", "/v1/projects/prj_nope/events", testAdminKey, mediaEvent("v", "done"), 404, kinehook.ENOTFOUND},
		{"admin key on /v1/webhooks", "GET", "/v1/webhooks", testAdminKey, nil, 400, kinehook.EMALFORMED},
		{"no key on /v1/webhooks", "GET", "/v1/webhooks", "", nil, 401, kinehook.EUNAUTHORIZED},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(tc.method, tc.path, tc.key, tc.body)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if tc.code != "" && r.errCode() != tc.code {
				t.Errorf("error code %q, want %q: %s", r.errCode(), tc.code, r.body)
			}
			if tc.status == 401 && r.header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
	// The endpoint survived the other project's DELETE.
	e.must(e.do("GET", epPath, keyA, nil), 200)

	// A project key lists only its own project; the admin key lists both.
	var own struct {
		Data []struct{ ID string } `json:"data"`
	}
	if err := json.Unmarshal(e.must(e.do("GET", "/v1/projects", keyB, nil), 200).body, &own); err != nil {
		t.Fatal(err)
	}
	if len(own.Data) != 1 || own.Data[0].ID != pidB {
		t.Errorf("project key B lists %+v, want only %s", own.Data, pidB)
	}
	if err := json.Unmarshal(e.must(e.do("GET", "/v1/projects", testAdminKey, nil), 200).body, &own); err != nil {
		t.Fatal(err)
	}
	if len(own.Data) != 2 {
		t.Errorf("admin key lists %d projects, want 2", len(own.Data))
	}
}

func TestAdminKeyFromStore(t *testing.T) {
	e := newEnv(t)
	if err := e.store.SetAdminKeyHash(t.Context(), kinehook.HashKey("kh_admin_stored")); err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(Config{Store: e.store, Dispatcher: e.engine})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	e.api.Config.Handler = srv
	e.must(e.do("GET", "/v1/projects", "kh_admin_stored", nil), 200)
	e.must(e.do("GET", "/v1/projects", testAdminKey, nil), 401)
}

func TestNotFoundAndMethodNotAllowed(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		method, path string
		status       int
		code, allow  string
	}{
		{"GET", "/nope", 404, kinehook.ENOTFOUND, ""},
		{"GET", "/v1/nope", 404, kinehook.ENOTFOUND, ""},
		{"GET", "/v1/projects/p/endpoints/e/x/y", 404, kinehook.ENOTFOUND, ""},
		{"DELETE", "/v1/projects", 405, codeMethodNotAllowed, "POST, GET"},
		{"PUT", "/healthz", 405, codeMethodNotAllowed, "GET"},
		{"POST", "/v1/projects/p/events/e", 405, codeMethodNotAllowed, "GET"},
	}
	for _, tc := range tests {
		t.Run(tc.method+tc.path, func(t *testing.T) {
			r := e.do(tc.method, tc.path, testAdminKey, nil)
			if r.status != tc.status || r.errCode() != tc.code {
				t.Fatalf("got %d %s, want %d %s", r.status, r.body, tc.status, tc.code)
			}
			if r.header.Get("Allow") != tc.allow {
				t.Errorf("Allow %q, want %q", r.header.Get("Allow"), tc.allow)
			}
		})
	}
}

func TestProjects(t *testing.T) {
	e := newEnv(t)
	r := e.must(e.do("POST", "/v1/projects", testAdminKey, map[string]any{"name": "Acme video"}), 201)
	m := r.json(t)
	for _, k := range []string{"id", "name", "api_key", "created_at"} {
		if _, ok := m[k]; !ok {
			t.Errorf("created project lacks %q: %s", k, r.body)
		}
	}
	key := m["api_key"].(string)
	if !strings.HasPrefix(key, "kh_") || len(key) != 3+43 {
		t.Errorf("api_key %q: want kh_ + 43 base64url characters", key)
	}
	if !strings.HasPrefix(m["id"].(string), "prj_") {
		t.Errorf("project id %q", m["id"])
	}
	list := e.must(e.do("GET", "/v1/projects", testAdminKey, nil), 200).json(t)["data"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["name"] != "Acme video" {
		t.Fatalf("list: %v", list)
	}
	if _, leaked := list[0].(map[string]any)["api_key"]; leaked {
		t.Error("project list shows the API key")
	}
	got := e.must(e.do("GET", "/v1/projects/"+m["id"].(string), key, nil), 200).json(t)
	if got["name"] != "Acme video" {
		t.Errorf("get project: %v", got)
	}
	pp := e.must(e.do("PATCH", "/v1/projects/"+m["id"].(string), key, map[string]any{"operations_url": e.sink.URL + "/ops", "retention_days": 3}), 200).json(t)
	if pp["operations_url"] != e.sink.URL+"/ops" || pp["retention_days"].(float64) != 3 || pp["name"] != "Acme video" {
		t.Errorf("patch project: %v", pp)
	}
	stored, err := e.store.GetProject(t.Context(), m["id"].(string))
	if err != nil || stored.RetentionDays != 3 || stored.OperationsURL != e.sink.URL+"/ops" {
		t.Errorf("patched project in the store: %+v %v", stored, err)
	}
	for _, days := range []int64{-1, 36501, 2147483648, 281474976710657} {
		if r := e.do("PATCH", "/v1/projects/"+m["id"].(string), key, map[string]any{"retention_days": days}); r.status != 422 || r.errField() != "retention_days" {
			t.Errorf("retention_days %d: %d %s", days, r.status, r.body)
		}
	}
	if r := e.do("PATCH", "/v1/projects/"+m["id"].(string), key, map[string]any{"operations_url": "ftp://x"}); r.status != 422 || r.errField() != "operations_url" {
		t.Errorf("bad operations_url: %d %s", r.status, r.body)
	}
	// The message names the setting and gives no endpoint-only advice.
	if r := e.do("PATCH", "/v1/projects/"+m["id"].(string), key, map[string]any{"operations_url": "https://u:p@example.com/ops"}); r.status != 422 ||
		!strings.Contains(string(r.body), "operations_url must not carry credentials") || strings.Contains(string(r.body), "login") {
		t.Errorf("operations_url with credentials: %d %s", r.status, r.body)
	}

	bad := []struct {
		name, body string
		status     int
		field      string
	}{
		{"malformed", `{"name":`, 400, "body"},
		{"empty body", ``, 400, "body"},
		{"not an object", `[1]`, 400, "body"},
		{"missing name", `{}`, 422, "name"},
		{"blank name", `{"name":"  "}`, 422, "name"},
		{"wrong type", `{"name":5}`, 422, "name"},
		{"unknown field", `{"name":"x","owner":"y"}`, 422, "owner"},
		{"trailing data", `{"name":"x"} {}`, 400, "body"},
		{"negative retention", `{"name":"x","retention_days":-1}`, 422, "retention_days"},
		{"retention over a century", `{"name":"x","retention_days":36501}`, 422, "retention_days"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("POST", "/v1/projects", testAdminKey, tc.body)
			if r.status != tc.status || r.errField() != tc.field {
				t.Fatalf("got %d %s, want %d field %q", r.status, r.body, tc.status, tc.field)
			}
		})
	}
}

func TestEndpointCRUD(t *testing.T) {
	e := newEnv(t)
	pid, key := e.project("p")
	base := "/v1/projects/" + pid + "/endpoints"
	r := e.must(e.do("POST", base, key, map[string]any{
		"url": e.sink.URL + "/a", "event_types": []string{"media.update.status", "live.*"}, "description": "main",
		"headers": map[string]string{"X-Tenant": "42"}, "rate_limit": 5.5, "max_in_flight": 3,
	}), 201)
	m := r.json(t)
	for _, k := range []string{"id", "url", "event_types", "description", "disabled", "secret", "created_at", "updated_at"} {
		if _, ok := m[k]; !ok {
			t.Errorf("endpoint lacks %q: %s", k, r.body)
		}
	}
	if _, ok := m["password"]; ok {
		t.Error("endpoint shows a password field")
	}
	secret := m["secret"].(string)
	if err := app.CheckSecret(kinehook.SchemeV1, secret); err != nil {
		t.Errorf("generated secret %q: %v", secret, err)
	}
	if m["rate_limit"].(float64) != 5.5 || m["max_in_flight"].(float64) != 3 || m["signature_scheme"] != "v1" {
		t.Errorf("extensions: %s", r.body)
	}
	eid := m["id"].(string)
	path := base + "/" + eid

	// PATCH changes only the given fields.
	p := e.must(e.do("PATCH", path, key, map[string]any{"description": "changed", "disabled": true}), 200).json(t)
	if p["description"] != "changed" || p["disabled"] != true || p["url"] != e.sink.URL+"/a" || p["secret"] != secret {
		t.Errorf("patch: %v", p)
	}
	if fmt.Sprint(p["event_types"]) != "[media.update.status live.*]" {
		t.Errorf("patch lost event_types: %v", p["event_types"])
	}
	if p["disabled_reason"] == nil {
		t.Error("a disabled endpoint has no disabled_reason")
	}
	p = e.must(e.do("PATCH", path, key, map[string]any{"disabled": false, "event_types": []string{}}), 200).json(t)
	if p["disabled"] != false || p["disabled_reason"] != nil || len(p["event_types"].([]any)) != 0 || p["description"] != "changed" {
		t.Errorf("re-enable: %v", p)
	}
	// Sending back what was read is accepted (read-only fields ignored).
	e.must(e.do("PATCH", path, key, p), 200)

	got := e.must(e.do("GET", path, key, nil), 200).json(t)
	if got["description"] != "changed" || got["headers"].(map[string]any)["X-Tenant"] != "****" {
		t.Errorf("get: %v", got)
	}
	list := e.must(e.do("GET", base, key, nil), 200).json(t)["data"].([]any)
	if len(list) != 1 {
		t.Fatalf("list: %v", list)
	}

	sec := e.must(e.do("GET", path+"/secret", key, nil), 200).json(t)
	if sec["secret"] != secret {
		t.Errorf("secret route: %v", sec)
	}
	if _, ok := sec["previous_secret_expires_at"]; ok {
		t.Errorf("secret route names a previous secret before any rotation: %v", sec)
	}
	rot := e.must(e.do("POST", path+"/secret/rotate", key, nil), 200).json(t)
	if rot["secret"] == secret || !strings.HasPrefix(rot["secret"].(string), "whsec_") {
		t.Errorf("rotate: %v", rot)
	}
	stored, err := e.store.GetEndpoint(t.Context(), pid, eid)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored.Secrets) != 2 || stored.Secrets[1].Value != secret || stored.Secrets[0].Value != rot["secret"] {
		t.Fatalf("after rotation the store holds %d secrets", len(stored.Secrets))
	}
	// The answer says until when the previous secret keeps signing.
	if exp, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(rot["previous_secret_expires_at"])); !exp.Equal(stored.Secrets[1].ExpiresAt) {
		t.Errorf("rotate answers previous_secret_expires_at %v, the store holds %v", rot["previous_secret_expires_at"], stored.Secrets[1].ExpiresAt)
	}
	if sec := e.must(e.do("GET", path+"/secret", key, nil), 200).json(t); sec["previous_secret_expires_at"] != rot["previous_secret_expires_at"] {
		t.Errorf("secret route after rotation: %v, want previous_secret_expires_at %v", sec, rot["previous_secret_expires_at"])
	}
	if d := time.Until(stored.Secrets[1].ExpiresAt); d < 23*time.Hour || d > 25*time.Hour {
		t.Errorf("old secret expires in %v, want 24 h", d)
	}
	if act := stored.ActiveSecrets(time.Now()); len(act) != 2 {
		t.Errorf("%d active secrets after rotation, want 2", len(act))
	}
	if act := stored.ActiveSecrets(time.Now().Add(25 * time.Hour)); len(act) != 1 {
		t.Errorf("%d active secrets after 25 h, want 1", len(act))
	}
	chosen := "whsec_" + strings.Repeat("QUJD", 8)
	rot2 := e.must(e.do("POST", path+"/secret/rotate", key, map[string]any{"secret": chosen}), 200).json(t)
	if rot2["secret"] != chosen {
		t.Errorf("rotate to a chosen secret: %v", rot2)
	}

	e.must(e.do("DELETE", path, key, nil), 204)
	e.must(e.do("GET", path, key, nil), 404)
	e.must(e.do("DELETE", path, key, nil), 404)
	e.must(e.do("PATCH", path, key, map[string]any{"description": "x"}), 404)
}

func TestEndpointValidation(t *testing.T) {
	e := newEnv(t)
	pid, key := e.project("p")
	base := "/v1/projects/" + pid + "/endpoints"
	ok := e.sink.URL + "/x"
	tests := []struct {
		name   string
		body   any
		status int
		field  string
	}{
		{"malformed", `{"url":`, 400, "body"},
		{"no url", map[string]any{}, 422, "url"},
		{"relative url", map[string]any{"url": "/hook"}, 422, "url"},
		{"ftp url", map[string]any{"url": "ftp://example.com/"}, 422, "url"},
		{"credentials in url", map[string]any{"url": "https://u:p@example.com/"}, 422, "url"},
		{"unknown event type", map[string]any{"url": ok, "event_types": []string{"video.done"}}, 422, "event_types"},
		{"unknown prefix", map[string]any{"url": ok, "event_types": []string{"nope.*"}}, 422, "event_types"},
		{"event_types not a list", map[string]any{"url": ok, "event_types": "live.*"}, 422, "event_types"},
		{"65 event types", map[string]any{"url": ok, "event_types": slices.Repeat([]string{"live.*"}, 65)}, 422, "event_types"},
		{"100,000 event types", map[string]any{"url": ok, "event_types": slices.Repeat([]string{"live.*"}, 100000)}, 422, "event_types"},
		{"long event type", map[string]any{"url": ok, "event_types": []string{"live." + strings.Repeat("x", 200)}}, 422, "event_types"},
		{"secret without prefix", map[string]any{"url": ok, "secret": "abc"}, 422, "secret"},
		{"secret too short", map[string]any{"url": ok, "secret": "whsec_QUJD"}, 422, "secret"},
		{"secret not base64", map[string]any{"url": ok, "secret": "whsec_!!!!"}, 422, "secret"},
		{"secret too long", map[string]any{"url": ok, "secret": "whsec_" + strings.Repeat("QUJD", 30)}, 422, "secret"},
		{"hop-by-hop header", map[string]any{"url": ok, "headers": map[string]string{"Connection": "close"}}, 422, "headers"},
		{"webhook header", map[string]any{"url": ok, "headers": map[string]string{"Webhook-Id": "x"}}, 422, "headers"},
		{"bad header name", map[string]any{"url": ok, "headers": map[string]string{"X Bad": "x"}}, 422, "headers"},
		{"header injection", map[string]any{"url": ok, "headers": map[string]string{"X-A": "a\r\nX-B: b"}}, 422, "headers"},
		{"negative rate", map[string]any{"url": ok, "rate_limit": -1}, 422, "rate_limit"},
		{"negative in-flight", map[string]any{"url": ok, "max_in_flight": -1}, 422, "max_in_flight"},
		{"bad scheme", map[string]any{"url": ok, "signature_scheme": "v2"}, 422, "signature_scheme"},
		{"unknown field", map[string]any{"url": ok, "colour": "red"}, 422, "colour"},
		{"password without login", map[string]any{"url": ok, "password": "p"}, 422, "login"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("POST", base, key, tc.body)
			if r.status != tc.status || r.errField() != tc.field {
				t.Fatalf("got %d %.300s, want %d field %q", r.status, r.body, tc.status, tc.field)
			}
			if len(r.body) > 1000 {
				t.Errorf("a refusal of %d bytes echoes the input", len(r.body))
			}
		})
	}
	list := e.must(e.do("GET", base, key, nil), 200).json(t)["data"].([]any)
	if len(list) != 0 {
		t.Errorf("refused endpoints were stored: %v", list)
	}
	// A valid chosen secret is kept; v1a gets an ed25519 key pair.
	chosen := "whsec_" + strings.Repeat("QUJD", 8)
	m := e.must(e.do("POST", base, key, map[string]any{"url": ok, "secret": chosen}), 201).json(t)
	if m["secret"] != chosen {
		t.Errorf("chosen secret not kept: %v", m["secret"])
	}
	a := e.must(e.do("POST", base, key, map[string]any{"url": ok, "signature_scheme": "v1a"}), 201).json(t)
	if !strings.HasPrefix(a["secret"].(string), "whsk_") || !strings.HasPrefix(fmt.Sprint(a["public_key"]), "whpk_") {
		t.Errorf("v1a endpoint: %v", a)
	}
	sec := e.must(e.do("GET", base+"/"+a["id"].(string)+"/secret", key, nil), 200).json(t)
	if sec["public_key"] != a["public_key"] {
		t.Errorf("v1a secret route: %v", sec)
	}
}

func TestPrivateAddressesRefused(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.AllowPrivateNetworks = false })
	pid, key := e.project("p")
	base := "/v1/projects/" + pid + "/endpoints"
	for _, u := range []string{
		"http://127.0.0.1:9/", "http://localhost:8080/", "http://api.localhost/", "http://127.1/", "http://2130706433/",
		"http://0x7f000001/", "http://[::1]/", "http://[::ffff:127.0.0.1]/", "http://0.0.0.0/", "http://10.1.2.3/",
		"http://192.168.1.1/", "http://169.254.169.254/latest/meta-data", "http://[fe80::1]/", "http://0177.0.0.1/",
		"http://[2002:7f00:1::]/", "http://100.64.0.1/",
	} {
		t.Run(u, func(t *testing.T) {
			r := e.do("POST", base, key, map[string]any{"url": u})
			if r.status != 422 || r.errField() != "url" {
				t.Fatalf("%s: got %d %s, want 422 on url", u, r.status, r.body)
			}
		})
	}
	e.must(e.do("POST", base, key, map[string]any{"url": "https://example.com/hook"}), 201)
	e.must(e.do("POST", base, key, map[string]any{"url": "http://93.184.216.34/hook"}), 201)
	ep := e.must(e.do("POST", base, key, map[string]any{"url": "https://example.com/hook2"}), 201).json(t)
	r := e.do("PATCH", base+"/"+ep["id"].(string), key, map[string]any{"url": "http://127.0.0.1/"})
	if r.status != 422 {
		t.Errorf("PATCH to loopback: %d %s", r.status, r.body)
	}

	// --allow-cidr opens one range.
	e2 := newEnv(t, func(c *Config) {
		c.AllowPrivateNetworks = false
		c.AllowCIDRs = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	})
	pid2, key2 := e2.project("p")
	e2.must(e2.do("POST", "/v1/projects/"+pid2+"/endpoints", key2, map[string]any{"url": "http://10.1.2.3/"}), 201)
	e2.must(e2.do("POST", "/v1/projects/"+pid2+"/endpoints", key2, map[string]any{"url": "http://192.168.0.1/"}), 422)
}

// TestUnicodeHostsRefused: a host written in Unicode is classified as the
// HTTP client will dial it (after the IDNA mapping), on every surface that
// registers a URL: endpoints (POST, PATCH), the /v1/webhooks facade, a
// project's operations_url (POST, PATCH) and CheckEndpointURL, which the
// dashboard uses. A host the mapping refuses is a 422 even with private
// networks allowed.
func TestUnicodeHostsRefused(t *testing.T) {
	blocked := []string{
		"http://１２７.０.０.１/", "http://127．0．0．1/", "http://127。0。0。1:8080/", "http://１２７.１/",
		"http://０ｘ７ｆ０００００１/", "http://１６９.２５４.１６９.２５４/latest/meta-data", "http://⑯⑨.254.169.254/",
		"http://ⓛocalhost/", "http://ＬＯＣＡＬＨＯＳＴ:9/", "http://１０.0.0.1/",
	}
	invalid := []string{"http://a\u200db.example.com/", "http://ex_ample.cöm/"}
	e := newEnv(t, func(c *Config) { c.AllowPrivateNetworks = false })
	pid, key := e.project("p")
	ep := e.must(e.do("POST", "/v1/projects/"+pid+"/endpoints", key, map[string]any{"url": "https://example.com/hook"}), 201).json(t)
	check := func(t *testing.T, env *env, u string, pid, key, epID, want string) {
		t.Helper()
		surfaces := []struct {
			name, method, path, apiKey string
			body                       map[string]any
			field                      string
		}{
			{"endpoint create", "POST", "/v1/projects/" + pid + "/endpoints", key, map[string]any{"url": u}, "url"},
			{"endpoint patch", "PATCH", "/v1/projects/" + pid + "/endpoints/" + epID, key, map[string]any{"url": u}, "url"},
			{"webhooks facade", "POST", "/v1/webhooks", key, map[string]any{"name": "x", "endpoint": u, "events": []string{"live.created"}}, "endpoint"},
			{"project create", "POST", "/v1/projects", testAdminKey, map[string]any{"name": "q", "operations_url": u}, "operations_url"},
			{"project patch", "PATCH", "/v1/projects/" + pid, key, map[string]any{"operations_url": u}, "operations_url"},
		}
		for _, sf := range surfaces {
			r := env.do(sf.method, sf.path, sf.apiKey, sf.body)
			if r.status != 422 || r.errField() != sf.field || r.errCode() != kinehook.EINVALID || !strings.Contains(string(r.body), want) {
				t.Errorf("%s: got %d %s, want 422 on %s saying %q", sf.name, r.status, r.body, sf.field, want)
			}
		}
		if err := env.srv.CheckEndpointURL(u); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckEndpointURL (the dashboard's check) = %v; want %q", err, want)
		}
	}
	for _, u := range blocked {
		t.Run(u, func(t *testing.T) { check(t, e, u, pid, key, ep["id"].(string), "is blocked") })
	}
	open := newEnv(t)
	opid, okey := open.project("p")
	oep := open.must(open.do("POST", "/v1/projects/"+opid+"/endpoints", okey, map[string]any{"url": "https://example.com/hook"}), 201).json(t)
	for _, u := range invalid {
		t.Run(u, func(t *testing.T) {
			check(t, e, u, pid, key, ep["id"].(string), "not a valid internationalised domain name")
			check(t, open, u, opid, okey, oep["id"].(string), "not a valid internationalised domain name")
		})
	}
	// A Unicode name that maps to a public name is registered as written.
	r := e.must(e.do("POST", "/v1/projects/"+pid+"/endpoints", key, map[string]any{"url": "https://ＥＸＡＭＰＬＥ.com/hook"}), 201).json(t)
	if r["url"] != "https://ＥＸＡＭＰＬＥ.com/hook" {
		t.Errorf("url stored as %v", r["url"])
	}
}

func TestPublishAndDeliver(t *testing.T) {
	e := newEnv(t)
	pid, key := e.project("p")
	ep := e.endpoint(pid, key, map[string]any{"headers": map[string]string{"X-Tenant": "42"}})
	body := `{"event":"media.update.status","data":{"id":"vid-1","status":"done"}}`
	r := e.must(e.do("POST", "/v1/projects/"+pid+"/events", key, body), 202)
	m := r.json(t)
	if len(m) != 5 || m["event"] != "media.update.status" || !strings.HasPrefix(m["id"].(string), "msg_") || m["created_at"] == nil {
		t.Errorf("202 body: %s", r.body)
	}
	if d := m["data"].(map[string]any); d["id"] != "vid-1" || d["status"] != "done" {
		t.Errorf("202 data: %v", d)
	}
	waitFor(t, "a delivery", func() bool { return e.sink.count() >= 1 })
	got := e.sink.received()[0]
	if string(got.body) != body {
		t.Errorf("endpoint got %s, want exactly %s", got.body, body)
	}
	if got.header.Get("webhook-id") != m["id"] || got.header.Get("X-Tenant") != "42" {
		t.Errorf("headers: %v", got.header)
	}
	verifier, err := kinehook.NewVerifier([]string{ep["secret"].(string)})
	if err != nil {
		t.Fatal(err)
	}
	if err := verifier.Verify(got.header, got.body, time.Now()); err != nil {
		t.Errorf("signature does not verify: %v", err)
	}

	evPath := "/v1/projects/" + pid + "/events/" + m["id"].(string)
	g := e.must(e.do("GET", evPath, key, nil), 200).json(t)
	if g["id"] != m["id"] || g["data"].(map[string]any)["id"] != "vid-1" {
		t.Errorf("get event: %v", g)
	}
	var ds []map[string]any
	waitFor(t, "the delivery to succeed", func() bool {
		r := e.must(e.do("GET", evPath+"/deliveries", key, nil), 200)
		var b struct{ Data []map[string]any }
		_ = json.Unmarshal(r.body, &b)
		ds = b.Data
		return len(ds) == 1 && ds[0]["status"] == "succeeded"
	})
	for _, k := range []string{"id", "event_id", "endpoint_id", "status", "attempts", "next_attempt_at", "last_status_code"} {
		if _, ok := ds[0][k]; !ok {
			t.Errorf("delivery lacks %q: %v", k, ds[0])
		}
	}
	if ds[0]["endpoint_id"] != ep["id"] || ds[0]["last_status_code"].(float64) != 200 || ds[0]["attempts"].(float64) != 1 {
		t.Errorf("delivery: %v", ds[0])
	}
	did := ds[0]["id"].(string)
	as := e.must(e.do("GET", "/v1/projects/"+pid+"/deliveries/"+did+"/attempts", key, nil), 200).json(t)["data"].([]any)
	if len(as) != 1 {
		t.Fatalf("attempts: %v", as)
	}
	a := as[0].(map[string]any)
	for _, k := range []string{"attempted_at", "status_code", "error", "duration_ms", "response_body"} {
		if _, ok := a[k]; !ok {
			t.Errorf("attempt lacks %q: %v", k, a)
		}
	}
	if a["status_code"].(float64) != 200 || a["response_body"] != "sink says OK" || !strings.HasPrefix(a["id"].(string), "att_") {
		t.Errorf("attempt: %v", a)
	}

	// A manual retry sends it again.
	e.must(e.do("POST", "/v1/projects/"+pid+"/deliveries/"+did+"/retry", key, nil), 202)
	waitFor(t, "the retried delivery", func() bool { return e.sink.count() >= 2 })
	if h := e.sink.received()[1].header.Get("webhook-id"); h != m["id"] {
		t.Errorf("retry has webhook-id %q, want %q", h, m["id"])
	}
	e.must(e.do("POST", "/v1/projects/"+pid+"/deliveries/dlv_nope/retry", key, nil), 404)
	e.must(e.do("GET", "/v1/projects/"+pid+"/deliveries/dlv_nope/attempts", key, nil), 404)
	e.must(e.do("GET", "/v1/projects/"+pid+"/events/msg_nope/deliveries", key, nil), 404)
	e.must(e.do("GET", "/v1/projects/"+pid+"/events/msg_nope", key, nil), 404)
	// Through another project's path (the admin key reaches both), this
	// event's deliveries and attempts are not found.
	other, _ := e.project("other")
	e.must(e.do("GET", "/v1/projects/"+other+"/events/"+m["id"].(string)+"/deliveries", testAdminKey, nil), 404)
	e.must(e.do("GET", "/v1/projects/"+other+"/deliveries/"+did+"/attempts", testAdminKey, nil), 404)
}

func TestRecover(t *testing.T) {
	e := newEnv(t)
	pid, key := e.project("p")
	e.sink.setStatus(500)
	ep := e.endpoint(pid, key, nil)
	start := time.Now().Add(-time.Second)
	ev := e.must(e.do("POST", "/v1/projects/"+pid+"/events", key, mediaEvent("v", "error")), 202).json(t)
	evPath := "/v1/projects/" + pid + "/events/" + ev["id"].(string) + "/deliveries"
	waitFor(t, "the delivery to fail", func() bool {
		return strings.Contains(string(e.do("GET", evPath, key, nil).body), `"status":"failed"`)
	})
	if n := e.sink.count(); n != 3 {
		t.Errorf("%d attempts with a 2-delay schedule, want 3", n)
	}
	e.sink.setStatus(200)
	recPath := "/v1/projects/" + pid + "/endpoints/" + ep["id"].(string) + "/recover"
	r := e.do("POST", recPath, key, map[string]any{"since": "yesterday"})
	if r.status != 422 || r.errField() != "since" {
		t.Errorf("bad since: %d %s", r.status, r.body)
	}
	rec := e.must(e.do("POST", recPath, key, map[string]any{"since": start.UTC().Format(time.RFC3339Nano)}), 202).json(t)
	if rec["recovered"].(float64) != 1 {
		t.Errorf("recover: %v", rec)
	}
	waitFor(t, "the recovered delivery to succeed", func() bool {
		return strings.Contains(string(e.do("GET", evPath, key, nil).body), `"status":"succeeded"`)
	})
	e.must(e.do("POST", "/v1/projects/"+pid+"/endpoints/ep_nope/recover", key, map[string]any{}), 404)
}

func TestEventValidation(t *testing.T) {
	e := newEnv(t)
	pid, key := e.project("p")
	path := "/v1/projects/" + pid + "/events"
	tests := []struct {
		name   string
		body   string
		status int
		field  string
	}{
		{"malformed", `{"event":`, 400, ""},
		{"not JSON", `hello`, 400, ""},
		{"empty", ``, 400, ""},
		{"array", `[]`, 400, ""},
		{"unknown type", `{"event":"video.done","data":{"id":"v"}}`, 422, "event"},
		{"missing type", `{"data":{"id":"v"}}`, 422, "event"},
		{"missing data", `{"event":"media.update.status"}`, 422, "data"},
		{"missing id", `{"event":"media.update.status","data":{"status":"done"}}`, 422, "data.id"},
		{"unknown status", `{"event":"media.update.status","data":{"id":"v","status":"failed"}}`, 422, "data.status"},
		{"extra top field", `{"event":"media.update.status","data":{"id":"v","status":"done"},"x":1}`, 422, "x"},
		{"extra data field", `{"event":"media.update.status","data":{"id":"v","status":"done","y":1}}`, 422, "data.y"},
		{"live without event_id", `{"event":"live.created","data":{}}`, 422, "data.event_id"},
		{"too deep", `{"event":"media.update.status","data":{"id":"v","status":"done","m":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}}`, 400, "body"},
		{"oversize", `{"event":"media.update.status","data":{"id":"v","status":"done","message":"` + strings.Repeat("a", 1<<20) + `"}}`, 413, ""},
		// The body is delivered as posted: what the server checked must be
		// what every receiver's parser reads.
		{"event twice", `{"event":"live.created","event":"media.update.status","data":{"id":"x","status":"done"}}`, 400, "body"},
		{"data key twice", `{"event":"media.update.status","data":{"id":"v","status":"done","status":"error"}}`, 400, "data"},
		{"not UTF-8", "{\"event\":\"media.update.status\",\"data\":{\"id\":\"\xff\",\"status\":\"done\"}}", 400, "body"},
		{"unpaired surrogate", `{"event":"media.update.status","data":{"id":"v\ud800x","status":"done"}}`, 400, "body"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("POST", path, key, tc.body)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %.300s", r.status, tc.status, r.body)
			}
			if tc.field != "" && r.errField() != tc.field {
				t.Errorf("field %q, want %q: %s", r.errField(), tc.field, r.body)
			}
			if r.errCode() == "" {
				t.Errorf("no error code: %s", r.body)
			}
		})
	}
	list := e.must(e.do("GET", path, key, nil), 200).json(t)["data"].([]any)
	if len(list) != 0 {
		t.Errorf("refused events were stored: %v", list)
	}
	r := e.do("POST", path, key, mediaEvent("v", "done"), "Idempotency-Key", strings.Repeat("k", 300))
	if r.status != 422 || r.errField() != "Idempotency-Key" {
		t.Errorf("long Idempotency-Key: %d %s", r.status, r.body)
	}
}

func TestIdempotency(t *testing.T) {
	e := newEnv(t)
	pid, key := e.project("p")
	e.endpoint(pid, key, nil)
	path := "/v1/projects/" + pid + "/events"
	first := e.must(e.do("POST", path, key, mediaEvent("v", "processing"), "Idempotency-Key", "k-1"), 202).json(t)
	second := e.must(e.do("POST", path, key, mediaEvent("v", "done"), "Idempotency-Key", "k-1"), 202)
	if second.json(t)["id"] != first["id"] || second.json(t)["data"].(map[string]any)["status"] != "processing" {
		t.Errorf("replay answered %s, want the first event %v", second.body, first)
	}
	if second.header.Get("Idempotent-Replayed") != "true" {
		t.Error("replay lacks Idempotent-Replayed")
	}
	third := e.must(e.do("POST", path, key, mediaEvent("v", "done"), "Idempotency-Key", "k-2"), 202).json(t)
	if third["id"] == first["id"] {
		t.Error("a new key returned the old event")
	}
	// Keys are per project.
	pid2, key2 := e.project("q")
	other := e.must(e.do("POST", "/v1/projects/"+pid2+"/events", key2, mediaEvent("v", "done"), "Idempotency-Key", "k-1"), 202).json(t)
	if other["id"] == first["id"] {
		t.Error("an idempotency key crossed projects")
	}
	list := e.must(e.do("GET", path, key, nil), 200).json(t)["data"].([]any)
	if len(list) != 2 {
		t.Errorf("%d events stored, want 2", len(list))
	}
	waitFor(t, "two deliveries", func() bool { return e.sink.events() >= 2 })
	time.Sleep(100 * time.Millisecond)
	if n := e.sink.events(); n != 2 {
		t.Errorf("%d events delivered, want 2 (the replay must create nothing)", n)
	}
}

// GET .../endpoints pages like the event list (limit, cursor, next_cursor);
// without limit a project of up to 1,000 endpoints gets them all at once.
func TestEndpointPaging(t *testing.T) {
	e := newEnv(t)
	pid, key := e.project("p")
	path := "/v1/projects/" + pid + "/endpoints"
	var ids []string
	for i := range 5 {
		ids = append(ids, e.must(e.do("POST", path, key, map[string]any{"url": fmt.Sprintf("%s/e/%d", e.sink.URL, i)}), 201).json(t)["id"].(string))
		time.Sleep(2 * time.Millisecond) // created_at has millisecond precision; ties go by id
	}
	type page struct {
		Data       []map[string]any `json:"data"`
		NextCursor *string          `json:"next_cursor"`
	}
	get := func(t *testing.T, q string) page {
		t.Helper()
		var b page
		if err := json.Unmarshal(e.must(e.do("GET", path+q, key, nil), 200).body, &b); err != nil {
			t.Fatal(err)
		}
		if b.NextCursor == nil {
			t.Fatal("next_cursor missing")
		}
		return b
	}
	for _, limit := range []int{0, 1, 2, 5, 1000} {
		t.Run(fmt.Sprint("limit ", limit), func(t *testing.T) {
			var seen []string
			cursor := ""
			for pages := 0; ; pages++ {
				if pages > len(ids) {
					t.Fatal("paging does not end")
				}
				q := url.Values{}
				if limit > 0 {
					q.Set("limit", fmt.Sprint(limit))
				}
				if cursor != "" {
					q.Set("cursor", cursor)
				}
				b := get(t, "?"+q.Encode())
				if limit > 0 && len(b.Data) > limit {
					t.Fatalf("a page of %d with limit %d", len(b.Data), limit)
				}
				for _, ep := range b.Data {
					seen = append(seen, ep["id"].(string))
				}
				if *b.NextCursor == "" {
					break
				}
				cursor = *b.NextCursor
			}
			if !slices.Equal(seen, ids) {
				t.Errorf("pages %v, want %v (oldest first)", seen, ids)
			}
		})
	}
	if b := get(t, ""); len(b.Data) != len(ids) || *b.NextCursor != "" {
		t.Errorf("without limit: %d endpoints, next %q; want all %d in one page", len(b.Data), *b.NextCursor, len(ids))
	}
	for _, q := range []string{"?limit=0", "?limit=x", "?limit=1001", "?cursor=nope"} {
		r := e.do("GET", path+q, key, nil)
		if r.status != 422 || (r.errField() != "limit" && r.errField() != "cursor") {
			t.Errorf("%s: %d %s, want 422 naming limit or cursor", q, r.status, r.body)
		}
	}
}

func TestEventPagingAndFilters(t *testing.T) {
	e := newEnv(t)
	pid, key := e.project("p")
	path := "/v1/projects/" + pid + "/events"
	var ids []string
	for i := range 7 {
		body := mediaEvent(fmt.Sprintf("v%d", i%2), "done")
		if i == 6 {
			body = `{"event":"live.created","data":{"event_id":"live-1"}}`
		}
		ids = append(ids, e.must(e.do("POST", path, key, body), 202).json(t)["id"].(string))
		time.Sleep(2 * time.Millisecond)
	}
	var seen []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		q := "?limit=3"
		if cursor != "" {
			q += "&cursor=" + url.QueryEscape(cursor)
		}
		var b struct {
			Data       []map[string]any `json:"data"`
			NextCursor *string          `json:"next_cursor"`
		}
		if err := json.Unmarshal(e.must(e.do("GET", path+q, key, nil), 200).body, &b); err != nil {
			t.Fatal(err)
		}
		if b.NextCursor == nil {
			t.Fatal("next_cursor missing")
		}
		if len(b.Data) > 3 {
			t.Fatalf("page of %d with limit 3", len(b.Data))
		}
		for _, d := range b.Data {
			seen = append(seen, d["id"].(string))
		}
		if *b.NextCursor == "" {
			break
		}
		cursor = *b.NextCursor
	}
	if len(seen) != 7 {
		t.Fatalf("paged through %d events, want 7", len(seen))
	}
	for i, id := range seen {
		if id != ids[6-i] {
			t.Fatalf("page order %v, want newest first %v", seen, ids)
		}
	}

	count := func(q string) int {
		t.Helper()
		return len(e.must(e.do("GET", path+q, key, nil), 200).json(t)["data"].([]any))
	}
	if n := count("?event=live.created"); n != 1 {
		t.Errorf("event filter: %d", n)
	}
	if n := count("?resource_id=v1"); n != 3 {
		t.Errorf("resource_id filter: %d, want 3", n)
	}
	if n := count("?since=" + url.QueryEscape(time.Now().Add(time.Hour).UTC().Format(time.RFC3339))); n != 0 {
		t.Errorf("since in the future: %d", n)
	}
	if n := count("?until=" + url.QueryEscape(time.Now().Add(time.Hour).UTC().Format(time.RFC3339))); n != 7 {
		t.Errorf("until in the future: %d", n)
	}
	if n := count("?status=failed"); n != 0 {
		t.Errorf("status=failed without endpoints: %d", n)
	}
	for _, q := range []string{"?limit=0", "?limit=x", "?limit=100000", "?event=video.done", "?status=lost", "?since=monday", "?until=2026"} {
		r := e.do("GET", path+q, key, nil)
		if r.status != 422 || r.errCode() != kinehook.EINVALID {
			t.Errorf("%s: %d %s", q, r.status, r.body)
		}
	}
	if r := e.do("GET", path+"?cursor=garbage!", key, nil); r.status != 422 {
		t.Errorf("bad cursor: %d %s", r.status, r.body)
	}
}

// An endpoint's event_types are stored and answered without repeats, in
// the order first given, on create and on change, whichever route sets them.
func TestEndpointEventTypesDeduplicated(t *testing.T) {
	e := newEnv(t)
	pid, key := e.project("p")
	base := "/v1/projects/" + pid + "/endpoints"
	repeated := slices.Repeat([]string{"live.*", "media.update.status"}, 32) // 64 entries: the most allowed
	created := e.must(e.do("POST", base, key, map[string]any{"url": e.sink.URL + "/a", "event_types": repeated}), 201).json(t)
	id := created["id"].(string)
	tests := []struct {
		name   string
		method string
		path   string
		body   any
		field  string
		want   []string
	}{
		{"create", "", "", nil, "event_types", []string{"live.*", "media.update.status"}},
		{"patch", "PATCH", base + "/" + id, map[string]any{"event_types": []string{"media.update.status", "media.*", "media.update.status"}}, "event_types", []string{"media.update.status", "media.*"}},
		{"webhook put", "PUT", "/v1/webhooks/" + id, map[string]any{"events": []string{"live.finished", "live.finished", "live.created"}}, "events", []string{"live.finished", "live.created"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.method != "" {
				e.must(e.do(tc.method, tc.path, key, tc.body), 200)
			}
			stored, err := e.store.GetEndpoint(t.Context(), pid, id)
			if err != nil || !slices.Equal(stored.EventTypes, tc.want) {
				t.Fatalf("stored %q, %v; want %q", stored.EventTypes, err, tc.want)
			}
			got := e.must(e.do("GET", base+"/"+id, key, nil), 200).json(t)["event_types"]
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("answered %v, want %q", got, tc.want)
			}
		})
	}
	// Too many entries are refused under each route's name for the field.
	r := e.do("PUT", "/v1/webhooks/"+id, key, map[string]any{"events": slices.Repeat([]string{"live.*"}, 65)})
	if r.status != 422 || r.errField() != "events" || !strings.Contains(string(r.body), "at most 64 event types") {
		t.Errorf("65 events through /v1/webhooks: %d %s", r.status, r.body)
	}
}

// Kinescope's clients know neither wildcards nor nameless webhooks: an
// endpoint made through kinehook's own API shows there with the concrete
// event types its filter selects and its description (or id) as its name.
func TestKinescopeWebhookViewOfNativeEndpoints(t *testing.T) {
	e := newEnv(t)
	pid, key := e.project("p")
	base := "/v1/projects/" + pid + "/endpoints"
	live := []string{"live.created", "live.connected", "live.disconnected", "live.finished", "live.cancelled", "live.enabled"}
	tests := []struct {
		name      string
		body      map[string]any
		wantName  string // "" means the endpoint's id
		wantTypes []string
	}{
		{"wildcard and description", map[string]any{"event_types": []string{"live.*"}, "description": "Live receiver"}, "Live receiver", live},
		{"no filter, no description", map[string]any{}, "", append([]string{"media.update.status"}, live...)},
		{"star", map[string]any{"event_types": []string{"*"}}, "", append([]string{"media.update.status"}, live...)},
		{"exact types keep their order", map[string]any{"event_types": []string{"live.finished", "media.update.status"}, "name": "named"}, "named", []string{"live.finished", "media.update.status"}},
		{"exact type and its prefix", map[string]any{"event_types": []string{"media.update.status", "media.*", "live.finished"}}, "", []string{"media.update.status", "live.finished"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.body["url"] = e.sink.URL + "/x"
			id := e.must(e.do("POST", base, key, tc.body), 201).json(t)["id"].(string)
			want := tc.wantName
			if want == "" {
				want = id
			}
			var one struct {
				Data struct {
					Name   string   `json:"name"`
					Events []string `json:"events"`
				}
			}
			if err := json.Unmarshal(e.must(e.do("GET", "/v1/webhooks/"+id, key, nil), 200).body, &one); err != nil {
				t.Fatal(err)
			}
			if one.Data.Name != want || !slices.Equal(one.Data.Events, tc.wantTypes) {
				t.Errorf("webhook view: name %q events %q; want %q %q", one.Data.Name, one.Data.Events, want, tc.wantTypes)
			}
			// The endpoint itself keeps its filter as given.
			if got := e.must(e.do("GET", base+"/"+id, key, nil), 200).json(t)["name"]; tc.body["name"] == nil && got != nil {
				t.Errorf("the endpoint's own name became %v", got)
			}
		})
	}
}

func TestKinescopeWebhooks(t *testing.T) {
	e := newEnv(t)
	pid, key := e.project("p")
	r := e.must(e.do("POST", "/v1/webhooks", key, map[string]any{
		"name": "prod", "endpoint": e.sink.URL + "/kinescope", "login": "user", "password": "pa55", "events": []string{"media.update.status"},
	}), 200)
	var one struct{ Data map[string]any }
	if err := json.Unmarshal(r.body, &one); err != nil || one.Data["id"] == nil {
		t.Fatalf("create: %s", r.body)
	}
	if strings.Contains(string(r.body), "pa55") || one.Data["login"] != "user" || one.Data["name"] != "prod" {
		t.Errorf("create answer: %s", r.body)
	}
	id := one.Data["id"].(string)
	// It is an endpoint of the key's project, delivered with Basic Auth.
	ep := e.must(e.do("GET", "/v1/projects/"+pid+"/endpoints/"+id, key, nil), 200).json(t)
	if ep["url"] != e.sink.URL+"/kinescope" || ep["name"] != "prod" {
		t.Errorf("endpoint view: %v", ep)
	}
	e.must(e.do("POST", "/v1/projects/"+pid+"/events", key, mediaEvent("v", "done")), 202)
	e.must(e.do("POST", "/v1/projects/"+pid+"/events", key, `{"event":"live.created","data":{"event_id":"l"}}`), 202)
	waitFor(t, "the delivery", func() bool { return e.sink.count() >= 1 })
	time.Sleep(100 * time.Millisecond)
	got := e.sink.received()
	if len(got) != 1 {
		t.Errorf("%d deliveries, want 1 (the filter excludes live.created)", len(got))
	}
	if u, p, ok := (&nethttp.Request{Header: got[0].header}).BasicAuth(); !ok || u != "user" || p != "pa55" {
		t.Errorf("Basic Auth %q %q %v", u, p, ok)
	}

	list := e.must(e.do("GET", "/v1/webhooks", key, nil), 200)
	var many struct{ Data []map[string]any }
	_ = json.Unmarshal(list.body, &many)
	if len(many.Data) != 1 || many.Data[0]["endpoint"] != e.sink.URL+"/kinescope" {
		t.Errorf("list: %s", list.body)
	}
	upd := e.must(e.do("PUT", "/v1/webhooks/"+id, key, map[string]any{"name": "renamed", "events": []string{"live.*"}}), 200)
	// Kinescope's clients see the live events "live.*" selects.
	if !strings.Contains(string(upd.body), `"renamed"`) || !strings.Contains(string(upd.body), `"events":["live.created","live.connected","live.disconnected","live.finished","live.cancelled","live.enabled"]`) {
		t.Errorf("put: %s", upd.body)
	}
	e.must(e.do("GET", "/v1/webhooks/"+id, key, nil), 200)

	bad := []struct {
		name   string
		body   any
		status int
		field  string
	}{
		{"no name", map[string]any{"endpoint": e.sink.URL, "events": []string{"live.created"}}, 422, "name"},
		{"no endpoint", map[string]any{"name": "x", "events": []string{"live.created"}}, 422, "endpoint"},
		{"no events", map[string]any{"name": "x", "endpoint": e.sink.URL}, 422, "events"},
		{"bad event", map[string]any{"name": "x", "endpoint": e.sink.URL, "events": []string{"video.done"}}, 422, "events"},
		{"65 events", map[string]any{"name": "x", "endpoint": e.sink.URL, "events": slices.Repeat([]string{"live.created"}, 65)}, 422, "events"},
		{"bad url", map[string]any{"name": "x", "endpoint": "nope", "events": []string{"live.created"}}, 422, "endpoint"},
		{"malformed", `{"name":`, 400, "body"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("POST", "/v1/webhooks", key, tc.body)
			if r.status != tc.status || r.errField() != tc.field {
				t.Fatalf("got %d %s, want %d field %q", r.status, r.body, tc.status, tc.field)
			}
		})
	}
	_, key2 := e.project("q")
	e.must(e.do("PUT", "/v1/webhooks/"+id, key2, map[string]any{"name": "stolen"}), 404)
	e.must(e.do("DELETE", "/v1/webhooks/"+id, key2, nil), 404)
	e.must(e.do("DELETE", "/v1/webhooks/"+id, key, nil), 200)
	e.must(e.do("GET", "/v1/webhooks/"+id, key, nil), 404)
}

func TestRequestIDPatternMetricsPprof(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Metrics = nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
			w.Header().Set("Content-Type", "text/plain")
			_, _ = w.Write([]byte("kinehook_up 1\n"))
		})
		c.Pprof = true
	})
	r := e.must(e.do("GET", "/healthz", "", nil, "X-Request-Id", "abc-123"), 200)
	if r.header.Get("X-Request-Id") != "abc-123" {
		t.Errorf("request id not echoed: %q", r.header.Get("X-Request-Id"))
	}
	r = e.must(e.do("GET", "/healthz", "", nil, "X-Request-Id", "bad id\twith spaces"), 200)
	if id := r.header.Get("X-Request-Id"); !strings.HasPrefix(id, "req_") {
		t.Errorf("a bad request id was not replaced: %q", id)
	}
	m := e.must(e.do("GET", "/metrics", "", nil), 200)
	if string(m.body) != "kinehook_up 1\n" {
		t.Errorf("metrics: %s", m.body)
	}
	e.must(e.do("GET", "/debug/pprof/", "", nil), 200)

	// Wrappers such as the metrics middleware see the route pattern, never the raw path.
	var pattern string
	wrapped := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		e.srv.ServeHTTP(w, r)
		pattern = r.Pattern
	}))
	defer wrapped.Close()
	res, err := nethttp.Get(wrapped.URL + "/v1/projects/prj_x/events/msg_y")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if pattern != "GET /v1/projects/{pid}/events/{id}" {
		t.Errorf("r.Pattern = %q", pattern)
	}

	plain := newEnv(t)
	plain.must(plain.do("GET", "/debug/pprof/", "", nil), 404)
	if r := plain.do("GET", "/metrics", "", nil); r.status != 404 || r.errCode() != kinehook.ENOTFOUND {
		t.Errorf("metrics off: %d %s", r.status, r.body)
	}
}

// interferingStore changes an endpoint's health (as the delivery engine
// does) right after the API first reads it, before the API writes it back.
type interferingStore struct {
	kinehook.Store
	once sync.Once
}

func (s *interferingStore) GetEndpoint(ctx context.Context, projectID, id string) (*kinehook.Endpoint, error) {
	e, err := s.Store.GetEndpoint(ctx, projectID, id)
	if err == nil {
		s.once.Do(func() {
			_, _ = s.Store.UpdateEndpointHealth(ctx, projectID, id, kinehook.HealthUpdate{Change: kinehook.HealthDisabled,
				Reason: "endpoint answered 410 Gone", At: time.Now().Add(time.Second)})
		})
	}
	return e, err
}

// A PATCH that does not touch "disabled" keeps a disable made between its
// read and its write: the write is retried on the fresh endpoint.
func TestPatchEndpointKeepsAConcurrentDisable(t *testing.T) {
	var wrapped *interferingStore
	e := newEnv(t, func(c *Config) {
		wrapped = &interferingStore{Store: c.Store}
	})
	pid, key := e.project("race")
	ep := e.endpoint(pid, key, nil)
	eid := ep["id"].(string)
	// Route the API's reads through the interfering store from now on.
	srv, err := NewServer(Config{Store: wrapped, Dispatcher: e.engine, AdminKeyHash: kinehook.HashKey(testAdminKey),
		AllowPrivateNetworks: true, RateLimit: -1, Logger: newTestLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(srv)
	defer api.Close()
	req, _ := nethttp.NewRequest(nethttp.MethodPatch, api.URL+"/v1/projects/"+pid+"/endpoints/"+eid, strings.NewReader(`{"description":"orders v2"}`))
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := nethttp.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != nethttp.StatusOK {
		t.Fatalf("PATCH: %d", res.StatusCode)
	}
	got, err := e.store.GetEndpoint(t.Context(), pid, eid)
	if err != nil {
		t.Fatal(err)
	}
	if got.Description != "orders v2" || !got.Disabled || got.DisabledReason != "endpoint answered 410 Gone" {
		t.Fatalf("after a PATCH racing a disable: description %q, disabled %v (%q); want the edit and the disable both kept",
			got.Description, got.Disabled, got.DisabledReason)
	}
}

// TestOperationsURL: a project's operations_url makes an endpoint subscribed
// to the operational events, with a secret of its own. The URL and filter
// belong to the setting (409 when changed through the endpoint, which cannot
// be deleted either); the rest is an ordinary endpoint. Operational events
// are recorded in the project's event log and delivered to it, signed, like
// any webhook; other endpoints do not get them.
func TestOperationsURL(t *testing.T) {
	e := newEnv(t)
	pid, key := e.project("p")
	ops := newSink(t)
	pp := e.must(e.do("PATCH", "/v1/projects/"+pid, key, map[string]any{"operations_url": ops.URL + "/ops"}), 200).json(t)
	opsID, _ := pp["operations_endpoint_id"].(string)
	if opsID == "" {
		t.Fatalf("no operations_endpoint_id: %v", pp)
	}
	epPath := "/v1/projects/" + pid + "/endpoints/" + opsID
	ep := e.must(e.do("GET", epPath, key, nil), 200).json(t)
	if ep["url"] != ops.URL+"/ops" || fmt.Sprint(ep["event_types"]) != "[endpoint.*]" {
		t.Fatalf("operations endpoint %v", ep)
	}
	secret := e.must(e.do("GET", epPath+"/secret", key, nil), 200).json(t)["secret"].(string)
	if r := e.do("PATCH", epPath, key, map[string]any{"url": "https://example.com/x"}); r.status != 409 || r.errField() != "url" {
		t.Errorf("PATCH the url: %d %s", r.status, r.body)
	}
	if r := e.do("PATCH", epPath, key, map[string]any{"event_types": []string{"live.*"}}); r.status != 409 {
		t.Errorf("PATCH the filter: %d %s", r.status, r.body)
	}
	e.must(e.do("PATCH", epPath, key, map[string]any{"description": "pager", "url": ops.URL + "/ops"}), 200)
	if r := e.do("DELETE", epPath, key, nil); r.status != 409 {
		t.Errorf("DELETE: %d %s", r.status, r.body)
	}
	for _, w := range e.must(e.do("GET", "/v1/webhooks", key, nil), 200).json(t)["data"].([]any) {
		if w.(map[string]any)["id"] == opsID {
			t.Error("/v1/webhooks lists the operations endpoint")
		}
	}
	e.must(e.do("GET", "/v1/webhooks/"+opsID, key, nil), 404)

	// An endpoint that answers 410 is disabled: endpoint.disabled is
	// recorded and reaches the operations URL, and only it.
	e.sink.setStatus(410)
	gone := e.endpoint(pid, key, nil)
	e.must(e.do("POST", "/v1/projects/"+pid+"/events", key, mediaEvent("v", "done")), 202)
	waitFor(t, "endpoint.disabled at the operations URL", func() bool { return ops.count() >= 1 })
	r := ops.received()[0]
	if err := kinehook.Verify([]string{secret}, r.header, r.body, time.Now()); err != nil {
		t.Errorf("operational event signature: %v", err)
	}
	var body struct {
		Event string
		Data  struct {
			EndpointID string `json:"endpoint_id"`
		}
	}
	if err := json.Unmarshal(r.body, &body); err != nil || body.Event != "endpoint.disabled" || body.Data.EndpointID != gone["id"] {
		t.Errorf("operational event %s (%v)", r.body, err)
	}
	list := e.must(e.do("GET", "/v1/projects/"+pid+"/events?event=endpoint.disabled", key, nil), 200).json(t)["data"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["id"] != r.header.Get("webhook-id") {
		t.Fatalf("recorded operational events %v, want the delivered one", list)
	}
	if n := e.sink.count(); n != 1 {
		t.Errorf("the endpoint that answered 410 got %d requests, want only its own event's", n)
	}
	if r := e.do("POST", "/v1/projects/"+pid+"/events", key, `{"event":"endpoint.disabled","data":{}}`); r.status != 422 {
		t.Errorf("a client posted an operational event: %d %s", r.status, r.body)
	}

	// Moving the URL keeps the endpoint and its secret; clearing disables it
	// (it cannot be enabled through the endpoint then); setting a URL again
	// enables it, with its secret and history: one operations endpoint per
	// project, so no other endpoint ever inherits its deliveries.
	e.must(e.do("PATCH", "/v1/projects/"+pid, key, map[string]any{"operations_url": ops.URL + "/moved"}), 200)
	if ep := e.must(e.do("GET", epPath, key, nil), 200).json(t); ep["url"] != ops.URL+"/moved" {
		t.Errorf("after moving: %v", ep)
	}
	if got := e.must(e.do("GET", epPath+"/secret", key, nil), 200).json(t)["secret"]; got != secret {
		t.Error("moving the operations URL changed the secret")
	}
	pp = e.must(e.do("PATCH", "/v1/projects/"+pid, key, map[string]any{"operations_url": ""}), 200).json(t)
	if _, ok := pp["operations_endpoint_id"]; ok {
		t.Errorf("operations_endpoint_id after clearing: %v", pp)
	}
	if ep := e.must(e.do("GET", epPath, key, nil), 200).json(t); ep["disabled"] != true || ep["disabled_reason"] != kinehook.OperationsURLCleared {
		t.Errorf("after clearing: %v", ep)
	}
	if r := e.do("PATCH", epPath, key, map[string]any{"disabled": false}); r.status != 409 {
		t.Errorf("enabling it with no operations_url: %d %s", r.status, r.body)
	}
	// A PATCH of the project that does not name operations_url leaves it be.
	e.must(e.do("PATCH", "/v1/projects/"+pid, key, map[string]any{"name": "renamed"}), 200)
	if ep := e.must(e.do("GET", epPath, key, nil), 200).json(t); ep["disabled"] != true {
		t.Errorf("a rename touched the operations endpoint: %v", ep)
	}
	e.must(e.do("PATCH", "/v1/projects/"+pid, key, map[string]any{"operations_url": ops.URL + "/back"}), 200)
	ep = e.must(e.do("GET", epPath, key, nil), 200).json(t)
	if ep["disabled"] != false || ep["url"] != ops.URL+"/back" {
		t.Errorf("after setting it again: %v", ep)
	}
	if got := e.must(e.do("GET", epPath+"/secret", key, nil), 200).json(t)["secret"]; got != secret {
		t.Error("setting the operations URL again changed the secret")
	}

	// Disabled by its owner, it stays disabled when the same URL is sent
	// again, and whatever the reason it cannot be enabled while the
	// setting is empty.
	e.must(e.do("PATCH", epPath, key, map[string]any{"disabled": true}), 200)
	e.must(e.do("PATCH", "/v1/projects/"+pid, key, map[string]any{"operations_url": ops.URL + "/back", "name": "again"}), 200)
	if ep := e.must(e.do("GET", epPath, key, nil), 200).json(t); ep["disabled"] != true {
		t.Errorf("resending the same operations_url enabled an endpoint its owner disabled: %v", ep)
	}
	e.must(e.do("PATCH", "/v1/projects/"+pid, key, map[string]any{"operations_url": ""}), 200)
	if r := e.do("PATCH", epPath, key, map[string]any{"disabled": false}); r.status != 409 {
		t.Errorf("enabling it (disabled by its owner, then the setting cleared): %d %s", r.status, r.body)
	}
}

// TestOperationsURLConcurrent: PATCHes racing on one project's
// operations_url never fail and leave the project and its operations
// endpoint agreeing (the URL set: the endpoint there and enabled; cleared:
// disabled).
func TestOperationsURLConcurrent(t *testing.T) {
	e := newEnv(t)
	for round := range 5 {
		pid, key := e.project(fmt.Sprintf("p%d", round))
		var wg sync.WaitGroup
		for i := range 10 {
			body := map[string]any{"operations_url": ""}
			if i%2 == 0 {
				body["operations_url"] = fmt.Sprintf("%s/ops%d", e.sink.URL, i)
			}
			wg.Go(func() {
				if r := e.do("PATCH", "/v1/projects/"+pid, key, body); r.status != 200 {
					t.Errorf("PATCH %v: %d %s", body, r.status, r.body)
				}
			})
			wg.Go(func() {
				if r := e.do("PATCH", "/v1/projects/"+pid+"/endpoints/"+kinehook.OperationsEndpointID(pid), key, map[string]any{"description": "d"}); r.status != 200 && r.status != 404 {
					t.Errorf("endpoint PATCH: %d %s", r.status, r.body)
				}
			})
		}
		wg.Wait()
		p := e.must(e.do("GET", "/v1/projects/"+pid, key, nil), 200).json(t)
		ep := e.must(e.do("GET", "/v1/projects/"+pid+"/endpoints/"+kinehook.OperationsEndpointID(pid), key, nil), 200).json(t)
		url, _ := p["operations_url"].(string)
		if url != "" && (ep["disabled"] != false || ep["url"] != url) || url == "" && ep["disabled"] != true {
			t.Fatalf("round %d: project operations_url %q, endpoint %v", round, url, ep)
		}
	}
}
