package http

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
)

func basicAuth(login, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(login+":"+password))
}

func TestSourcesCRUD(t *testing.T) {
	e := newEnv(t)
	pid, key := e.project("inbox")
	base := "/v1/projects/" + pid + "/sources"
	src := e.must(e.do("POST", base, key, map[string]any{"name": "kinescope", "type": "kinescope", "login": "kin", "password": "s3cret-pw"}), 201).json(t)
	id := src["id"].(string)
	if src["path"] != "/in/"+id || src["type"] != "kinescope" || src["name"] != "kinescope" || src["created_at"] == nil {
		t.Fatalf("created = %v", src)
	}
	for _, r := range []resp{e.do("GET", base+"/"+id, key, nil), e.do("GET", base, key, nil)} {
		if r.status != 200 || strings.Contains(string(r.body), "s3cret-pw") || strings.Contains(string(r.body), `"login"`) || strings.Contains(string(r.body), `"password"`) {
			t.Errorf("credentials must be write-only: %d %s", r.status, r.body)
		}
	}
	cases := []struct {
		name  string
		body  any
		field string
	}{
		{"no type", map[string]any{"name": "x"}, "type"},
		{"bad type", map[string]any{"name": "x", "type": "svix"}, "type"},
		{"no name", map[string]any{"type": "kinescope", "login": "a", "password": "b"}, "name"},
		{"kinescope without password", map[string]any{"name": "x", "type": "kinescope", "login": "a"}, "password"},
		{"login with a colon", map[string]any{"name": "x", "type": "kinescope", "login": "a:b", "password": "b"}, "login"},
		{"kinescope with a secret", map[string]any{"name": "x", "type": "kinescope", "login": "a", "password": "b", "secret": "whsec_x"}, "secret"},
		{"standard-webhooks without secret", map[string]any{"name": "x", "type": "standard-webhooks"}, "secret"},
		{"bad secret", map[string]any{"name": "x", "type": "standard-webhooks", "secret": "nope"}, "secret"},
		{"standard-webhooks with a login", map[string]any{"name": "x", "type": "standard-webhooks", "secret": "whsec_" + strings.Repeat("A", 40), "login": "a"}, "login"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.do("POST", base, key, c.body)
			if r.status != 422 || r.errField() != c.field {
				t.Errorf("status %d field %q, want 422 %q: %s", r.status, r.errField(), c.field, r.body)
			}
		})
	}
	if r := e.do("POST", base, key, map[string]any{"name": "x", "type": "kinescope", "login": "a", "password": "b", "color": "red"}); r.status != 422 && r.status != 400 {
		t.Errorf("an unknown field: %d", r.status)
	}
	// PATCH: a new password works at once, the old one no more.
	e.must(e.do("PATCH", base+"/"+id, key, map[string]any{"password": "next-pw", "name": "renamed"}), 200)
	if r := e.do("POST", "/in/"+id, "", mediaEvent("v1", "done"), "Authorization", basicAuth("kin", "s3cret-pw")); r.status != 401 {
		t.Errorf("the old password: %d", r.status)
	}
	e.must(e.do("POST", "/in/"+id, "", mediaEvent("v1", "done"), "Authorization", basicAuth("kin", "next-pw")), 200)
	// Another project's key sees nothing.
	_, key2 := e.project("other")
	if r := e.do("GET", base+"/"+id, key2, nil); r.status != 403 && r.status != 404 {
		t.Errorf("another project's key: %d", r.status)
	}
	e.must(e.do("DELETE", base+"/"+id, key, nil), 204)
	if r := e.do("POST", "/in/"+id, "", mediaEvent("v1", "done"), "Authorization", basicAuth("kin", "next-pw")); r.status != 404 {
		t.Errorf("the inbox of a deleted source: %d %s", r.status, r.body)
	}
	// Its event stays in the log.
	evs := e.must(e.do("GET", "/v1/projects/"+pid+"/events?source_id="+id, key, nil), 200).json(t)
	if n := len(evs["data"].([]any)); n != 1 {
		t.Errorf("events of the deleted source = %d, want 1", n)
	}
}

func TestInbox(t *testing.T) {
	e := newEnv(t)
	pid, key := e.project("inbox")
	e.endpoint(pid, key, nil)
	src := e.must(e.do("POST", "/v1/projects/"+pid+"/sources", key, map[string]any{"name": "k", "type": "kinescope", "login": "kin", "password": "pw"}), 201).json(t)
	in := "/in/" + src["id"].(string)
	auth := basicAuth("kin", "pw")
	tests := []struct {
		name   string
		body   string
		hdr    []string
		status int
		code   string
	}{
		{"no credentials", mediaEvent("v1", "pending"), nil, 401, "unauthorized"},
		{"wrong password", mediaEvent("v1", "pending"), []string{"Authorization", basicAuth("kin", "pW")}, 401, "unauthorized"},
		{"wrong login", mediaEvent("v1", "pending"), []string{"Authorization", basicAuth("Kin", "pw")}, 401, "unauthorized"},
		{"a bearer key", mediaEvent("v1", "pending"), []string{"Authorization", "Bearer " + key}, 401, "unauthorized"},
		{"malformed JSON", `{"event":"media.update.status",`, []string{"Authorization", auth}, 400, "malformed"},
		{"not an object", `[1,2]`, []string{"Authorization", auth}, 400, "malformed"},
		{"over 1 MiB", `{"event":"x","data":{"p":"` + strings.Repeat("a", 1<<20) + `"}}`, []string{"Authorization", auth}, 413, "payload_too_large"},
		{"accepted", mediaEvent("v1", "pending"), []string{"Authorization", auth}, 200, ""},
		{"a retry", mediaEvent("v1", "pending"), []string{"Authorization", auth}, 200, ""},
		{"unknown status", mediaEvent("v1", "transcoding-4k"), []string{"Authorization", auth}, 200, ""},
		{"unknown type", `{"event":"media.deleted","data":{"id":"v1"}}`, []string{"Authorization", auth}, 200, ""},
	}
	for _, tc := range tests {
		r := e.do("POST", in, "", tc.body, tc.hdr...)
		if r.status != tc.status || (tc.code != "" && r.errCode() != tc.code) {
			t.Errorf("%s: %d %s, want %d %s", tc.name, r.status, r.body, tc.status, tc.code)
		}
		if tc.status == 200 && strings.TrimSpace(string(r.body)) != `{"success":true}` {
			t.Errorf("%s: body %s, want {\"success\":true}", tc.name, r.body)
		}
		if tc.status == 401 && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Basic") {
			t.Errorf("%s: WWW-Authenticate %q", tc.name, r.header.Get("WWW-Authenticate"))
		}
	}
	evs := e.must(e.do("GET", "/v1/projects/"+pid+"/events", key, nil), 200)
	var page struct {
		Data []struct {
			ID       string          `json:"id"`
			Event    string          `json:"event"`
			SourceID string          `json:"source_id"`
			Flags    []string        `json:"flags"`
			Data     json.RawMessage `json:"data"`
		} `json:"data"`
	}
	if err := json.Unmarshal(evs.body, &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Data) != 3 {
		t.Fatalf("events = %s, want 3 (the retry stored once)", evs.body)
	}
	if page.Data[0].Flags[0] != "unknown_event_type" || page.Data[1].Flags[0] != "unknown_status" || len(page.Data[2].Flags) != 0 {
		t.Errorf("flags = %v %v %v", page.Data[0].Flags, page.Data[1].Flags, page.Data[2].Flags)
	}
	for _, ev := range page.Data {
		if ev.SourceID != src["id"] {
			t.Errorf("event %s source_id = %q", ev.ID, ev.SourceID)
		}
	}
	// Relayed to the endpoint, signed, each once.
	waitFor(t, "three deliveries", func() bool { return e.sink.events() >= 3 })
	for _, r := range e.sink.received() {
		if r.header.Get("webhook-signature") == "" {
			t.Errorf("a relayed delivery is not signed")
		}
	}
	// The state follows: the unknown status as it came.
	m := e.must(e.do("GET", "/v1/projects/"+pid+"/media/v1", key, nil), 200).json(t)
	if m["status"] != "transcoding-4k" || len(m["history"].([]any)) != 2 {
		t.Errorf("media v1 = %v", m)
	}
}

func TestInboxStandardWebhooks(t *testing.T) {
	e := newEnv(t)
	pid, key := e.project("peer")
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", 32)))
	src := e.must(e.do("POST", "/v1/projects/"+pid+"/sources", key, map[string]any{"name": "peer", "type": "standard-webhooks", "secret": secret}), 201).json(t)
	in := "/in/" + src["id"].(string)
	body := []byte(`{"event":"live.connected","data":{"event_id":"s1"}}`)
	now := time.Now()
	sig, err := kinehook.Sign([]string{secret}, "msg_1", now, body)
	if err != nil {
		t.Fatal(err)
	}
	hdr := []string{"webhook-id", "msg_1", "webhook-timestamp", itoa(now.Unix()), "webhook-signature", sig}
	e.must(e.do("POST", in, "", body, hdr...), 200)
	bad := []string{"webhook-id", "msg_1", "webhook-timestamp", itoa(now.Unix()), "webhook-signature", "v1,AAAA"}
	if r := e.do("POST", in, "", body, bad...); r.status != 401 {
		t.Errorf("a wrong signature: %d %s", r.status, r.body)
	}
	if r := e.do("POST", in, "", body, "Authorization", basicAuth("a", "b")); r.status != 401 {
		t.Errorf("Basic Auth on a signed source: %d", r.status)
	}
	l := e.must(e.do("GET", "/v1/projects/"+pid+"/live/s1", key, nil), 200).json(t)
	if l["state"] != "connected" || l["event_id"] != "s1" {
		t.Errorf("live s1 = %v", l)
	}
	lst := e.must(e.do("GET", "/v1/projects/"+pid+"/live?state=connected", key, nil), 200).json(t)
	if n := len(lst["data"].([]any)); n != 1 {
		t.Errorf("connected streams = %d", n)
	}
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
