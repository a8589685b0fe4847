package http

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/app"
	"github.com/kinehook/kinehook/internal/desttest"
)

// withNATS gives the server an App that accepts NATS endpoints.
func withNATS(t *testing.T) envOption {
	return func(c *Config) {
		a, err := app.New(app.Config{Store: c.Store, Dispatcher: c.Dispatcher, AdminKeyHash: c.AdminKeyHash,
			AllowPrivateNetworks: c.AllowPrivateNetworks, Destinations: []kinehook.DestinationType{desttest.NATS{}}})
		if err != nil {
			t.Fatal(err)
		}
		c.App = a
	}
}

// Endpoints of a destination type: created with type, config and
// credentials; the answers show the type, the normalised config and the
// credentials' names with masked values, never the values; PATCH merges
// credentials; bad input is a 422 naming the field; the Kinescope facade
// neither lists nor serves them.
func TestDestinationEndpointsAPI(t *testing.T) {
	e := newEnv(t, withNATS(t))
	pid, key := e.project("p")
	base := "/v1/projects/" + pid + "/endpoints"
	r := e.must(e.do("POST", base, key, `{"type":"nats","config":{"subject":"kh.events", "url":"nats://127.0.0.1:4222"},
		"credentials":{"user":"svc","password":"s3cret-broker-pw"},"event_types":["media.*"]}`), 201)
	if strings.Contains(string(r.body), "s3cret-broker-pw") {
		t.Fatalf("the create answer shows a credential: %s", r.body)
	}
	var ep struct {
		ID          string            `json:"id"`
		Type        string            `json:"type"`
		URL         string            `json:"url"`
		Config      json.RawMessage   `json:"config"`
		Credentials map[string]string `json:"credentials"`
		Secret      string            `json:"secret"`
	}
	if err := json.Unmarshal(r.body, &ep); err != nil {
		t.Fatal(err)
	}
	if ep.Type != "nats" || ep.URL != "" || string(ep.Config) != `{"url":"nats://127.0.0.1:4222","subject":"kh.events"}` ||
		ep.Credentials["user"] != "****" || ep.Credentials["password"] != "****" || len(ep.Credentials) != 2 || ep.Secret == "" {
		t.Errorf("create answer: %s", r.body)
	}
	got := e.must(e.do("GET", base+"/"+ep.ID, key, nil), 200)
	list := e.must(e.do("GET", base, key, nil), 200)
	for _, b := range [][]byte{got.body, list.body} {
		if strings.Contains(string(b), "s3cret") || !strings.Contains(string(b), `"type":"nats"`) {
			t.Errorf("answer: %s", b)
		}
	}

	// PATCH: a masked value keeps, "" removes, a value sets.
	p := e.must(e.do("PATCH", base+"/"+ep.ID, key, `{"credentials":{"user":"****","password":"","token":"tk"}}`), 200).json(t)
	if c := p["credentials"].(map[string]any); len(c) != 2 || c["user"] != "****" || c["token"] != "****" {
		t.Errorf("after PATCH credentials %v", c)
	}
	stored, err := e.store.GetEndpoint(t.Context(), pid, ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Credentials["user"] != "svc" || stored.Credentials["token"] != "tk" || len(stored.Credentials) != 2 {
		t.Errorf("stored credentials %v", stored.Credentials)
	}
	// A webhook still answers type "webhook".
	hook := e.endpoint(pid, key, nil)
	if hook["type"] != "webhook" || hook["config"] != nil || hook["credentials"] != nil {
		t.Errorf("webhook answer: %v", hook)
	}

	bad := []struct {
		body, field, msg string
	}{
		{`{"type":"sqs","config":{}}`, "type", `unknown endpoint type \"sqs\"; expected one of webhook, nats`},
		{`{"type":"kafka","config":{}}`, "type", `not enabled on this server`},
		{`{"type":"nats"}`, "config", "config is required for a nats endpoint"},
		{`{"type":"nats","config":{"url":"nats://h:1"}}`, "config.subject", "config.subject is required"},
		{`{"type":"nats","config":{"url":"nats://h:1","subject":"s","stream":"x"}}`, "config", `unknown key \"stream\"`},
		{`{"type":"nats","config":"nats://h:1"}`, "config", "config must be a JSON object"},
		{`{"type":"nats","url":"https://example.com","config":{"url":"nats://h:1","subject":"s"}}`, "url", "has no url"},
		{`{"type":"nats","config":{"url":"nats://h:1","subject":"s"},"credentials":{"pin":"1"}}`, "credentials", `unknown credential \"pin\"`},
		{`{"url":"https://example.com","config":{"url":"nats://h:1","subject":"s"}}`, "config", "a webhook endpoint takes no config"},
	}
	for _, tc := range bad {
		r := e.do("POST", base, key, tc.body)
		if r.status != 422 || r.errField() != tc.field || !strings.Contains(string(r.body), tc.msg) {
			t.Errorf("POST %s = %d %s; want 422 on %s with %q", tc.body, r.status, r.body, tc.field, tc.msg)
		}
	}

	// The Kinescope facade: only webhooks.
	var hooks struct{ Data []map[string]any }
	if err := json.Unmarshal(e.must(e.do("GET", "/v1/webhooks", key, nil), 200).body, &hooks); err != nil {
		t.Fatal(err)
	}
	if len(hooks.Data) != 1 || hooks.Data[0]["id"] != hook["id"] {
		t.Errorf("/v1/webhooks lists %v, want only the webhook", hooks.Data)
	}
	for _, m := range []string{"GET", "PUT", "DELETE"} {
		var body any
		if m == "PUT" {
			body = map[string]any{"name": "x"}
		}
		if r := e.do(m, "/v1/webhooks/"+ep.ID, key, body); r.status != 404 {
			t.Errorf("%s /v1/webhooks/<nats endpoint> = %d %s, want 404", m, r.status, r.body)
		}
	}
}
