package http

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
)

// newKey makes a key of project pid with the given scope (by the admin)
// and returns its JSON answer.
func (e *env) newKey(pid, name, scope string) map[string]any {
	e.t.Helper()
	return e.must(e.do("POST", "/v1/projects/"+pid+"/keys", testAdminKey, map[string]any{"name": name, "scope": scope}), 201).json(e.t)
}

func TestKeyScopes(t *testing.T) {
	e := newEnv(t)
	pid, full := e.project("scopes")
	ep := e.endpoint(pid, full, nil)
	ev := e.must(e.do("POST", "/v1/projects/"+pid+"/events", full, mediaEvent("v1", "done")), 202).json(t)
	read := e.newKey(pid, "reader", "read")["key"].(string)
	ingest := e.newKey(pid, "encoder", "ingest")["key"].(string)
	base := "/v1/projects/" + pid
	epPath := base + "/endpoints/" + ep["id"].(string)
	evPath := base + "/events/" + ev["id"].(string)
	batch := `{"events":[` + mediaEvent("v2", "done") + `]}`

	tests := []struct {
		name   string
		method string
		path   string
		body   any
		want   map[string]int // key name -> status
	}{
		{"list projects", "GET", "/v1/projects", nil, map[string]int{"full": 200, "read": 200, "ingest": 403}},
		{"get project", "GET", base, nil, map[string]int{"full": 200, "read": 200, "ingest": 403}},
		{"patch project", "PATCH", base, map[string]any{"name": "x"}, map[string]int{"full": 200, "read": 403, "ingest": 403}},
		{"delete project", "DELETE", base, nil, map[string]int{"full": 403, "read": 403, "ingest": 403}},
		{"list endpoints", "GET", base + "/endpoints", nil, map[string]int{"full": 200, "read": 200, "ingest": 403}},
		{"create endpoint", "POST", base + "/endpoints", map[string]any{"url": e.sink.URL}, map[string]int{"full": 201, "read": 403, "ingest": 403}},
		{"get secret", "GET", epPath + "/secret", nil, map[string]int{"full": 200, "read": 200, "ingest": 403}},
		{"rotate secret", "POST", epPath + "/secret/rotate", nil, map[string]int{"full": 200, "read": 403, "ingest": 403}},
		{"post event", "POST", base + "/events", mediaEvent("v3", "done"), map[string]int{"full": 202, "read": 403, "ingest": 202}},
		{"post batch", "POST", base + "/events/batch", batch, map[string]int{"full": 202, "read": 403, "ingest": 202}},
		{"list events", "GET", base + "/events", nil, map[string]int{"full": 200, "read": 200, "ingest": 403}},
		{"get event", "GET", evPath, nil, map[string]int{"full": 200, "read": 200, "ingest": 403}},
		{"list keys", "GET", base + "/keys", nil, map[string]int{"full": 200, "read": 403, "ingest": 403}},
		{"create key", "POST", base + "/keys", map[string]any{"name": "n", "scope": "read"}, map[string]int{"full": 201, "read": 403, "ingest": 403}},
		{"kinescope list", "GET", "/v1/webhooks", nil, map[string]int{"full": 200, "read": 200, "ingest": 403}},
		{"kinescope create", "POST", "/v1/webhooks", map[string]any{"name": "w", "endpoint": e.sink.URL, "events": []string{"live.*"}}, map[string]int{"full": 200, "read": 403, "ingest": 403}},
	}
	keys := map[string]string{"full": full, "read": read, "ingest": ingest}
	for _, tc := range tests {
		for _, who := range []string{"read", "ingest", "full"} {
			t.Run(tc.name+"/"+who, func(t *testing.T) {
				r := e.do(tc.method, tc.path, keys[who], tc.body)
				if r.status != tc.want[who] {
					t.Fatalf("%s key: status %d, want %d: %s", who, r.status, tc.want[who], r.body)
				}
				if r.status == 403 && (r.errCode() != codeForbidden || !strings.Contains(string(r.body), "scope") && !strings.Contains(string(r.body), "admin key")) {
					t.Errorf("403 body %s, want code forbidden naming the scope", r.body)
				}
			})
		}
	}
	// Another project's read key still gets 404 (not 403) on this project.
	pid2, _ := e.project("other")
	other := e.newKey(pid2, "r", "read")["key"].(string)
	if r := e.do("GET", base+"/endpoints", other, nil); r.status != 404 {
		t.Errorf("another project's read key: %d, want 404", r.status)
	}
}

func TestKeyLifecycle(t *testing.T) {
	e := newEnv(t)
	pid, first := e.project("keys")
	base := "/v1/projects/" + pid + "/keys"

	// The project's own key is the first of the list: default, full.
	var list struct {
		Data []map[string]any `json:"data"`
	}
	if err := json.Unmarshal(e.must(e.do("GET", base, first, nil), 200).body, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Data) != 1 || list.Data[0]["name"] != "default" || list.Data[0]["scope"] != "full" || list.Data[0]["prefix"] != first[:11] {
		t.Fatalf("first list = %v, want the default full key with prefix %s", list.Data, first[:11])
	}
	defaultID := list.Data[0]["id"].(string)

	made := e.must(e.do("POST", base, first, map[string]any{"name": " CI deploy ", "scope": "full"}), 201).json(t)
	key, _ := made["key"].(string)
	if !strings.HasPrefix(key, "kh_") || made["prefix"] != key[:11] || made["name"] != "CI deploy" || made["scope"] != "full" ||
		!strings.HasPrefix(made["id"].(string), "key_") || made["created_at"] == nil || made["last_used_at"] != nil {
		t.Fatalf("created key = %v", made)
	}
	// The new key works at once; the list never shows a key or its hash.
	e.must(e.do("GET", "/v1/projects/"+pid, key, nil), 200)
	lb := e.must(e.do("GET", base, key, nil), 200)
	if strings.Contains(string(lb.body), key) || strings.Contains(string(lb.body), first) || strings.Contains(string(lb.body), `"key"`) || strings.Contains(string(lb.body), "hash") {
		t.Fatalf("the key list shows a key: %s", lb.body)
	}
	// last_used_at is written in the background after a use.
	waitFor(t, "last_used_at of the new key", func() bool {
		_ = json.Unmarshal(e.must(e.do("GET", base, testAdminKey, nil), 200).body, &list)
		for _, k := range list.Data {
			if k["id"] == made["id"] && k["last_used_at"] != nil {
				return true
			}
		}
		return false
	})

	// Bad input.
	for _, tc := range []struct {
		body   any
		status int
		field  string
	}{
		{map[string]any{"name": "", "scope": "full"}, 422, "name"},
		{map[string]any{"name": strings.Repeat("n", 101), "scope": "full"}, 422, "name"},
		{map[string]any{"name": "x"}, 422, "scope"},
		{map[string]any{"name": "x", "scope": "admin"}, 422, "scope"},
		{map[string]any{"name": "x", "scope": "full", "key": "kh_mine"}, 422, "key"},
		{`{"name":`, 400, ""},
	} {
		r := e.do("POST", base, first, tc.body)
		if r.status != tc.status || (tc.field != "" && r.errField() != tc.field) {
			t.Errorf("POST %v: %d %s, want %d on %q", tc.body, r.status, r.body, tc.status, tc.field)
		}
	}

	// Revoking answers 204 and the key is refused at once.
	e.must(e.do("DELETE", base+"/"+made["id"].(string), first, nil), 204)
	if r := e.do("GET", "/v1/projects/"+pid, key, nil); r.status != 401 || r.errCode() != kinehook.EUNAUTHORIZED {
		t.Fatalf("revoked key: %d %s, want 401", r.status, r.body)
	}
	e.must(e.do("DELETE", base+"/"+made["id"].(string), first, nil), 404)
	// The last full key cannot go, not even by the admin; with another full
	// key it can, and a key may revoke itself.
	if r := e.do("DELETE", base+"/"+defaultID, testAdminKey, nil); r.status != 409 || r.errCode() != kinehook.ECONFLICT {
		t.Fatalf("revoking the last full key: %d %s, want 409", r.status, r.body)
	}
	second := e.newKey(pid, "second", "full")
	e.must(e.do("DELETE", base+"/"+defaultID, first, nil), 204)
	e.must(e.do("GET", "/v1/projects/"+pid, first, nil), 401)
	e.must(e.do("GET", base, second["key"].(string), nil), 200)

	// Another project's key cannot see or touch these keys.
	pid2, key2 := e.project("other")
	e.must(e.do("GET", base, key2, nil), 404)
	e.must(e.do("DELETE", base+"/"+second["id"].(string), key2, nil), 404)
	e.must(e.do("DELETE", "/v1/projects/"+pid2+"/keys/"+second["id"].(string), key2, nil), 404)
	e.must(e.do("POST", "/v1/projects/prj_nope/keys", testAdminKey, map[string]any{"name": "x", "scope": "read"}), 404)
}

func TestStrictQuery(t *testing.T) {
	e := newEnv(t)
	pid, key := e.project("q")
	base := "/v1/projects/" + pid
	tests := []struct {
		path     string
		key      string
		status   int
		unknown  string
		accepted string
	}{
		{"/healthz?verbose=1", "", 400, "verbose", "this route accepts none"},
		{"/v1/event-types?lang=en", "", 400, "lang", "this route accepts none"},
		{base + "/events?delivery_status=failed", key, 400, "delivery_status", "accepted: limit, cursor, event, resource_id, source_id, status, since, until"},
		{base + "/events?status=failed&limit=5", key, 200, "", ""},
		{base + "/endpoints?limit=2&cursor=", key, 200, "", ""},
		{base + "/endpoints?page=2", key, 400, "page", "accepted: limit, cursor"},
		{base + "?x=1", key, 400, "x", "this route accepts none"},
		{base + "/keys?all=1", key, 400, "all", "this route accepts none"},
		{"/v1/webhooks?page=1&per_page=50&order=created_at.desc", key, 200, "", ""},
		{"/v1/webhooks?search=x", key, 400, "search", "accepted: page, per_page, order"},
		{base + "/events?a=1&b=2", key, 400, "a", `\"a\", \"b\"`},
		{base + "/events?limit=%zz", key, 400, "", "cannot be parsed"},
		// Authentication comes first: no key, 401 whatever the query.
		{base + "/events?nope=1", "", 401, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			r := e.do("GET", tc.path, tc.key, nil)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if tc.status != 400 {
				return
			}
			if r.errCode() != codeInvalidQuery || !strings.Contains(string(r.body), tc.accepted) ||
				(tc.unknown != "" && (r.errField() != tc.unknown || !strings.Contains(string(r.body), `\"`+tc.unknown+`\"`))) {
				t.Errorf("answer %s, want invalid_query naming %q and %q", r.body, tc.unknown, tc.accepted)
			}
		})
	}
	// A POST is held to the same rule.
	if r := e.do("POST", base+"/events?async=1", key, mediaEvent("v", "done")); r.status != 400 || r.errCode() != codeInvalidQuery {
		t.Errorf("POST with an unknown parameter: %d %s", r.status, r.body)
	}
}

func TestDeleteProject(t *testing.T) {
	e := newEnv(t)
	pid, key := e.project("doomed")
	keepPID, keepKey := e.project("kept")
	ro := e.newKey(pid, "ro", "read")["key"].(string)
	e.sink.setStatus(500) // every delivery keeps retrying
	e.endpoint(pid, key, nil)
	e.endpoint(keepPID, keepKey, nil)
	ev := e.must(e.do("POST", "/v1/projects/"+pid+"/events", key, mediaEvent("v1", "done")), 202).json(t)
	waitFor(t, "retries of the doomed project's delivery", func() bool { return e.sink.count() >= 2 })

	if r := e.do("DELETE", "/v1/projects/"+pid, key, nil); r.status != 403 {
		t.Fatalf("a project key deletes its project: %d", r.status)
	}
	e.must(e.do("DELETE", "/v1/projects/"+pid, testAdminKey, nil), 204)

	// Its routes answer 404 to the admin and 401 to its old keys.
	for _, path := range []string{"", "/endpoints", "/events", "/events/" + ev["id"].(string), "/keys"} {
		e.must(e.do("GET", "/v1/projects/"+pid+path, testAdminKey, nil), 404)
		e.must(e.do("GET", "/v1/projects/"+pid+path, key, nil), 401)
		e.must(e.do("GET", "/v1/projects/"+pid+path, ro, nil), 401)
	}
	e.must(e.do("POST", "/v1/projects/"+pid+"/events", testAdminKey, mediaEvent("v1", "done")), 404)
	e.must(e.do("DELETE", "/v1/projects/"+pid, testAdminKey, nil), 404)

	// Its queued work is gone: no more retries reach the sink.
	time.Sleep(100 * time.Millisecond)
	n := e.sink.count()
	time.Sleep(400 * time.Millisecond)
	if got := e.sink.count(); got != n {
		t.Errorf("%d more requests after the project was deleted", got-n)
	}
	// The other project still works.
	e.sink.setStatus(200)
	e.must(e.do("POST", "/v1/projects/"+keepPID+"/events", keepKey, mediaEvent("v2", "done")), 202)
	waitFor(t, "the kept project's delivery", func() bool { return e.sink.count() > n })
	var ps struct{ Data []map[string]any }
	_ = json.Unmarshal(e.must(e.do("GET", "/v1/projects", testAdminKey, nil), 200).body, &ps)
	if len(ps.Data) != 1 || ps.Data[0]["id"] != keepPID {
		t.Errorf("projects after the deletion: %v", ps.Data)
	}
}

// TestDeleteProjectDropsQueuedWork: deliveries waiting in the engine's
// queues (here behind a rate limit, their payloads in memory) are never
// sent once the project is deleted.
func TestDeleteProjectDropsQueuedWork(t *testing.T) {
	e := newEnv(t)
	pid, key := e.project("queued")
	e.endpoint(pid, key, map[string]any{"rate_limit": 2})
	for i := range 30 {
		e.must(e.do("POST", "/v1/projects/"+pid+"/events", key, mediaEvent(fmt.Sprint("v", i), "done")), 202)
	}
	waitFor(t, "the first deliveries", func() bool { return e.sink.count() >= 1 })
	e.must(e.do("DELETE", "/v1/projects/"+pid, testAdminKey, nil), 204)
	n := e.sink.count()
	time.Sleep(1500 * time.Millisecond)
	if more := e.sink.count() - n; more > 0 {
		t.Errorf("%d queued deliveries were sent after the project was deleted", more)
	}
}

// TestKeyCheckFailureIsNotRateLimited: when a key cannot be checked (the
// store is gone, after the cache entry expired), the answer says so, and
// such requests never count as requests without a valid key (429).
func TestKeyCheckFailureIsNotRateLimited(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.RateLimit = 0 }) // the defaults: failed keys limited to FailedAuthBurst
	pid, key := e.project("outage")
	e.must(e.do("GET", "/v1/projects/"+pid, key, nil), 200)
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // past app.KeyCacheTTL
	for i := range FailedAuthBurst + 50 {
		r := e.do("GET", "/v1/projects/"+pid, key, nil)
		if r.status == 429 || r.status < 500 {
			t.Fatalf("request %d while the store is gone: %d %s", i, r.status, r.body)
		}
	}
}
