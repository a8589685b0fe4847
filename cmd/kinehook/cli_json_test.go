package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
)

// anyJSON decodes a JSON document into any (maps, slices, float64s...), so
// that two documents compare equal when they are the same JSON value,
// whatever their key order and indentation.
func anyJSON(t *testing.T, what string, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s is not JSON: %v\n%s", what, err, b)
	}
	return v
}

// apiGet asks the API for path with key, as a plain HTTP client would, and
// returns the body of its 200 answer.
func (e *cliEnv) apiGet(t *testing.T, key, path string) []byte {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	return body
}

// jsonCase runs a --json command and checks that its output is the API's
// JSON: the same value as the server's answer to the command's request (the
// last request it made, after any project lookup), and, when get is not
// empty, as a plain GET of that path. It returns the decoded output.
func (e *cliEnv) jsonCase(t *testing.T, key, get string, want string, args ...string) map[string]any {
	t.Helper()
	e.answers.take()
	out := e.must(t, append(args, "--json", "--server", e.url, "--key", key)...)
	answers := e.answers.take()
	if len(answers) == 0 {
		t.Fatalf("kinehook %s made no API request", strings.Join(args, " "))
	}
	last := answers[len(answers)-1]
	if got := last.method + " " + last.uri; !strings.HasPrefix(got, want) {
		t.Fatalf("kinehook %s: the last request was %s, want %s", strings.Join(args, " "), got, want)
	}
	got := anyJSON(t, "the CLI's output", []byte(out))
	if api := anyJSON(t, "the API's answer", last.body); !reflect.DeepEqual(got, api) {
		t.Errorf("kinehook %s --json is not the API's answer to %s:\nCLI: %s\nAPI: %s", strings.Join(args, " "), want, out, last.body)
	}
	if get != "" {
		body := e.apiGet(t, key, get)
		if api := anyJSON(t, "GET "+get, body); !reflect.DeepEqual(got, api) {
			t.Errorf("kinehook %s --json is not GET %s:\nCLI: %s\nAPI: %s", strings.Join(args, " "), get, out, body)
		}
	}
	m, ok := got.(map[string]any)
	if !ok {
		t.Fatalf("kinehook %s --json is not an object: %s", strings.Join(args, " "), out)
	}
	return m
}

// firstItem returns data[0] of a list answer.
func firstItem(t *testing.T, m map[string]any) map[string]any {
	t.Helper()
	data, _ := m["data"].([]any)
	if len(data) == 0 {
		t.Fatalf("empty data in %v", m)
	}
	item, _ := data[0].(map[string]any)
	return item
}

// TestCLIJSONIsTheAPIsJSON checks every --json command against the real API:
// its output is the API's answer, not the client's structs re-encoded (which
// once added "project_id": "" and "delivery_id": "" and dropped
// "next_attempt_at": null, "rate_limit": 0 and "max_in_flight": 0).
func TestCLIJSONIsTheAPIsJSON(t *testing.T) {
	e := newCLIEnv(t)
	ctx := context.Background()

	// projects
	created := e.jsonCase(t, cliAdminKey, "", "POST /v1/projects", "projects", "create", "JSON")
	pid, _ := created["id"].(string)
	pkey, _ := created["api_key"].(string)
	if pid == "" || pkey == "" {
		t.Fatalf("projects create --json: %v", created)
	}
	e.jsonCase(t, cliAdminKey, "/v1/projects", "GET /v1/projects", "projects", "list")
	e.jsonCase(t, pkey, "/v1/projects", "GET /v1/projects", "projects", "list")
	e.jsonCase(t, cliAdminKey, "/v1/projects/"+pid, "GET /v1/projects/"+pid, "projects", "get", pid)
	e.jsonCase(t, pkey, "/v1/projects/"+pid, "GET /v1/projects/"+pid, "projects", "get") // the key's own project
	upd := e.jsonCase(t, pkey, "/v1/projects/"+pid, "PATCH /v1/projects/"+pid,
		"projects", "update", pid, "--name", "JSON 2", "--retention-days", "7", "--operations-url", e.sink.URL+"/ops")
	if upd["name"] != "JSON 2" || upd["retention_days"] != 7.0 || upd["operations_url"] != e.sink.URL+"/ops" {
		t.Fatalf("projects update --json: %v", upd)
	}

	// endpoints
	base := []string{"--project", pid}
	ep := e.jsonCase(t, pkey, "", "POST /v1/projects/"+pid+"/endpoints", append([]string{"endpoints", "create", "--endpoint-url", e.sink.URL}, base...)...)
	eid, _ := ep["id"].(string)
	eps := e.jsonCase(t, pkey, "/v1/projects/"+pid+"/endpoints", "GET /v1/projects/"+pid+"/endpoints", append([]string{"endpoints", "list"}, base...)...)
	item := firstItem(t, eps)
	for _, k := range []string{"rate_limit", "max_in_flight"} {
		if v, ok := item[k]; !ok || v != 0.0 {
			t.Errorf("endpoints list --json: %s is %v (present %v), want 0 as the API says", k, v, ok)
		}
	}
	e.jsonCase(t, pkey, "/v1/projects/"+pid+"/endpoints/"+eid, "GET /v1/projects/"+pid+"/endpoints/"+eid, append([]string{"endpoints", "get", eid}, base...)...)
	e.jsonCase(t, pkey, "/v1/projects/"+pid+"/endpoints/"+eid, "PATCH /v1/projects/"+pid+"/endpoints/"+eid,
		append([]string{"endpoints", "update", eid, "--description", "json"}, base...)...)
	e.jsonCase(t, pkey, "/v1/projects/"+pid+"/endpoints/"+eid+"/secret", "GET /v1/projects/"+pid+"/endpoints/"+eid+"/secret",
		append([]string{"endpoints", "secret", eid}, base...)...)
	e.jsonCase(t, pkey, "", "POST /v1/projects/"+pid+"/endpoints/"+eid+"/secret/rotate", append([]string{"endpoints", "rotate", eid}, base...)...)
	e.jsonCase(t, pkey, "", "POST /v1/projects/"+pid+"/endpoints/"+eid+"/recover", append([]string{"endpoints", "recover", eid, "--since", "1h"}, base...)...)

	// events
	data := `{"id":"7127f2d7-0e96-40d0-9a03-2e987c096466","status":"done"}`
	ev := e.jsonCase(t, pkey, "", "POST /v1/projects/"+pid+"/events",
		append([]string{"events", "send", "media.update.status", "--data", data, "--idempotency-key", "json-1"}, base...)...)
	evID, _ := ev["id"].(string)
	e.jsonCase(t, pkey, "", "POST /v1/projects/"+pid+"/events", append([]string{"events", "send", "live.finished"}, base...)...)
	batchFile := writeFile(t, "batch.jsonl", `{"event":"live.created","data":{"event_id":"json-live"}}`+"\n"+
		`{"event":"media.update.status","data":{"id":"7127f2d7-0e96-40d0-9a03-2e987c096466","status":"done"},"idempotency_key":"json-1"}`+"\n")
	batch := e.jsonCase(t, pkey, "", "POST /v1/projects/"+pid+"/events/batch", append([]string{"events", "send-batch", "--file", batchFile}, base...)...)
	if items, _ := batch["data"].([]any); len(items) != 2 {
		t.Errorf("events send-batch --json: %v", batch)
	} else if second, _ := items[1].(map[string]any); second["replayed"] != true || second["id"] != evID {
		t.Errorf("events send-batch --json: the event of the repeated key is %v, want %s replayed", second, evID)
	}
	e.jsonCase(t, pkey, "/v1/projects/"+pid+"/events", "GET /v1/projects/"+pid+"/events", append([]string{"events", "list"}, base...)...)
	e.jsonCase(t, pkey, "/v1/projects/"+pid+"/events?limit=1", "GET /v1/projects/"+pid+"/events?limit=1",
		append([]string{"events", "list", "--limit", "1"}, base...)...)
	e.jsonCase(t, pkey, "/v1/projects/"+pid+"/events/"+evID, "GET /v1/projects/"+pid+"/events/"+evID, append([]string{"events", "get", evID}, base...)...)

	// events list --all: every page's data in one list, the same JSON as one
	// page holding everything.
	e.answers.take()
	out := e.must(t, append([]string{"events", "list", "--limit", "1", "--all", "--json", "--server", e.url, "--key", pkey}, base...)...)
	if n := len(e.answers.take()); n < 2 {
		t.Fatalf("events list --limit 1 --all read %d pages, want 2 or more", n)
	}
	whole := e.apiGet(t, pkey, "/v1/projects/"+pid+"/events?limit=1000")
	if got, api := anyJSON(t, "the CLI's output", []byte(out)), anyJSON(t, "the API's answer", whole); !reflect.DeepEqual(got, api) {
		t.Errorf("events list --all --json is not the API's single page:\nCLI: %s\nAPI: %s", out, whole)
	}

	// deliveries
	var did string
	waitUntil(t, "the delivery to succeed", func() bool {
		ds, err := e.admin.ListDeliveries(ctx, pid, evID)
		if err != nil || len(ds) != 1 {
			return false
		}
		did = ds[0].ID
		return ds[0].Status == kinehook.DeliverySucceeded
	})
	ds := e.jsonCase(t, pkey, "/v1/projects/"+pid+"/events/"+evID+"/deliveries", "GET /v1/projects/"+pid+"/events/"+evID+"/deliveries",
		append([]string{"deliveries", "list", evID}, base...)...)
	d := firstItem(t, ds)
	if v, ok := d["next_attempt_at"]; !ok || v != nil {
		t.Errorf("deliveries list --json: next_attempt_at is %v (present %v), want null as the API says", v, ok)
	}
	if _, ok := d["project_id"]; ok {
		t.Errorf("deliveries list --json has a project_id the API does not send: %v", d)
	}
	e.jsonCase(t, pkey, "/v1/projects/"+pid+"/deliveries/"+did, "GET /v1/projects/"+pid+"/deliveries/"+did,
		append([]string{"deliveries", "get", did}, base...)...)
	as := e.jsonCase(t, pkey, "/v1/projects/"+pid+"/deliveries/"+did+"/attempts", "GET /v1/projects/"+pid+"/deliveries/"+did+"/attempts",
		append([]string{"deliveries", "attempts", did}, base...)...)
	if _, ok := firstItem(t, as)["delivery_id"]; ok {
		t.Errorf("deliveries attempts --json has a delivery_id the API does not send: %v", as)
	}
	e.jsonCase(t, pkey, "", "POST /v1/projects/"+pid+"/deliveries/"+did+"/retry", append([]string{"deliveries", "retry", did}, base...)...)

	// projects update clearing fields: the API leaves them out.
	cleared := e.jsonCase(t, pkey, "/v1/projects/"+pid, "PATCH /v1/projects/"+pid, "projects", "update", "--operations-url", "", "--retention-days", "0")
	if _, ok := cleared["operations_url"]; ok {
		t.Errorf("operations_url not removed: %v", cleared)
	}

	// endpoints delete: the API answers 204 without a body, so the CLI prints
	// its own confirmation.
	e.answers.take()
	out = e.must(t, append([]string{"endpoints", "delete", eid, "--json", "--server", e.url, "--key", pkey}, base...)...)
	if answers := e.answers.take(); len(answers) != 1 || answers[0].status != http.StatusNoContent || len(answers[0].body) != 0 {
		t.Fatalf("delete answers: %+v", answers)
	}
	if got := anyJSON(t, "the CLI's output", []byte(out)); !reflect.DeepEqual(got, map[string]any{"id": eid, "deleted": true}) {
		t.Errorf("endpoints delete --json: %s", out)
	}
}

// endpoints list shows every endpoint of a project larger than one page of
// the API (1,000), in the table and with --json (every page's data as one
// list, next_cursor "").
func TestEndpointsListFollowsPages(t *testing.T) {
	e := newCLIEnv(t)
	p, err := e.admin.CreateProject(t.Context(), "many")
	if err != nil {
		t.Fatal(err)
	}
	const n = 1002
	t0 := time.Now().UTC().Truncate(time.Millisecond)
	for i := range n {
		at := t0.Add(time.Duration(i) * time.Millisecond)
		ep := &kinehook.Endpoint{ID: kinehook.NewID(kinehook.PrefixEndpoint), ProjectID: p.ID, URL: fmt.Sprintf("%s/e/%d", e.sink.URL, i),
			Secrets: []kinehook.EndpointSecret{{Value: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}, CreatedAt: at, UpdatedAt: at}
		if err := e.store.CreateEndpoint(t.Context(), ep); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name  string
		args  []string
		count func(out string) int
	}{
		{"table", nil, func(out string) int { return strings.Count(out, "\nep_") }},
		{"json", []string{"--json"}, func(out string) int {
			var b struct {
				Data       []map[string]any `json:"data"`
				NextCursor *string          `json:"next_cursor"`
			}
			if err := json.Unmarshal([]byte(out), &b); err != nil || b.NextCursor == nil || *b.NextCursor != "" {
				t.Errorf("--json: %v, next_cursor %v", err, b.NextCursor)
			}
			return len(b.Data)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := e.must(t, append([]string{"endpoints", "list", "--url", e.url, "--key", p.APIKey, "--project", p.ID}, tc.args...)...)
			if got := tc.count(out); got != n {
				t.Errorf("%d endpoints listed, want %d", got, n)
			}
		})
	}
}
