package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/client"
)

// fieldOf returns the value of "label:" in the label/value output of a command.
func fieldOf(t *testing.T, out, label string) string {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, label+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no %q in output:\n%s", label, out)
	return ""
}

func decodeJSON[T any](t *testing.T, out string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("output is not the expected JSON: %v\n%s", err, out)
	}
	return v
}

func TestCLIProjects(t *testing.T) {
	e := newCLIEnv(t)
	out := e.must(t, "projects", "create", "Acme Video", "--url", e.url, "--key", cliAdminKey)
	id := fieldOf(t, out, "id")
	key := fieldOf(t, out, "api_key")
	if !strings.HasPrefix(id, "prj_") || key == "" || fieldOf(t, out, "name") != "Acme Video" {
		t.Fatalf("unexpected create output:\n%s", out)
	}
	// Configuration from the environment, JSON output.
	t.Setenv("KINEHOOK_URL", e.url)
	t.Setenv("KINEHOOK_API_KEY", cliAdminKey)
	p := decodeJSON[client.ProjectWithKey](t, e.must(t, "projects", "create", "Second", "--json"))
	if p.Name != "Second" || !strings.HasPrefix(p.APIKey, "kh_") {
		t.Fatalf("JSON create: %+v", p)
	}
	list := e.must(t, "projects", "list")
	lines := strings.Split(strings.TrimSpace(list), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(list, id) || !strings.Contains(list, "Acme Video") {
		t.Fatalf("list table:\n%s", list)
	}
	// Columns are aligned: NAME starts at the same offset on every line.
	col := strings.Index(lines[0], "NAME")
	for _, l := range lines[1:] {
		if !strings.HasPrefix(l[col:], "Acme Video") && !strings.HasPrefix(l[col:], "Second") {
			t.Errorf("misaligned row %q (NAME at %d)", l, col)
		}
	}
	js := decodeJSON[struct{ Data []kinehook.Project }](t, e.must(t, "projects", "list", "--json"))
	if len(js.Data) != 2 {
		t.Fatalf("JSON list has %d projects", len(js.Data))
	}
	// A project key may not create projects: the API's code is shown.
	_, _, err := e.run(t, "projects", "create", "nope", "--key", key)
	if err == nil || !strings.Contains(err.Error(), "forbidden") || !strings.Contains(err.Error(), "403") {
		t.Fatalf("project key creating a project: %v", err)
	}
	// A project key lists, shows and updates its own project only.
	if own := e.must(t, "projects", "list", "--key", key); !strings.Contains(own, id) || strings.Contains(own, p.ID) {
		t.Fatalf("list with a project key:\n%s", own)
	}

	out = e.must(t, "projects", "get", id)
	if fieldOf(t, out, "id") != id || fieldOf(t, out, "name") != "Acme Video" || fieldOf(t, out, "retention") != "server default" || fieldOf(t, out, "operations_url") != "-" {
		t.Fatalf("get:\n%s", out)
	}
	// Without the argument: the project key's own project.
	if out := e.must(t, "projects", "get", "--key", key); fieldOf(t, out, "id") != id {
		t.Fatalf("get with a project key and no id:\n%s", out)
	}
	// With the admin key and two projects the id is needed.
	_, _, err = e.run(t, "projects", "get")
	if err == nil || !strings.Contains(err.Error(), "several projects: give the project id as the argument") {
		t.Fatalf("get without id, two projects: %v", err)
	}
	t.Setenv("KINEHOOK_PROJECT", p.ID)
	if out := e.must(t, "projects", "get"); fieldOf(t, out, "id") != p.ID {
		t.Fatalf("get with KINEHOOK_PROJECT:\n%s", out)
	}
	t.Setenv("KINEHOOK_PROJECT", "")

	// update sends only the flags given.
	out = e.must(t, "projects", "update", "--key", key, "--retention-days", "30", "--operations-url", e.sink.URL+"/ops")
	if fieldOf(t, out, "id") != id || fieldOf(t, out, "name") != "Acme Video" || fieldOf(t, out, "retention") != "30 days" || fieldOf(t, out, "operations_url") != e.sink.URL+"/ops" {
		t.Fatalf("update:\n%s", out)
	}
	out = e.must(t, "projects", "update", id, "--name", "Acme Video (prod)")
	if fieldOf(t, out, "name") != "Acme Video (prod)" || fieldOf(t, out, "retention") != "30 days" || fieldOf(t, out, "operations_url") != e.sink.URL+"/ops" {
		t.Fatalf("update of the name:\n%s", out)
	}
	// 0 and '' go back to the server's default and remove the URL.
	out = e.must(t, "projects", "update", id, "--retention-days", "0", "--operations-url", "")
	if fieldOf(t, out, "name") != "Acme Video (prod)" || fieldOf(t, out, "retention") != "server default" || fieldOf(t, out, "operations_url") != "-" {
		t.Fatalf("update clearing fields:\n%s", out)
	}
	got, err := e.admin.GetProject(context.Background(), id)
	if err != nil || got.RetentionDays != 0 || got.OperationsURL != "" || got.Name != "Acme Video (prod)" {
		t.Fatalf("project after update: %v %+v", err, got)
	}
	// The API's validation reaches the user; another project's key gets not_found.
	_, _, err = e.run(t, "projects", "update", id, "--operations-url", "not a url")
	if err == nil || !strings.Contains(err.Error(), "invalid (HTTP 422)") || !strings.Contains(err.Error(), "operations_url") {
		t.Fatalf("update with a bad URL: %v", err)
	}
	_, _, err = e.run(t, "projects", "update", p.ID, "--name", "x", "--key", key)
	if err == nil || !strings.Contains(err.Error(), "not_found (HTTP 404)") {
		t.Fatalf("update of another project with a project key: %v", err)
	}
}

func TestCLIConfigErrors(t *testing.T) {
	e := newCLIEnv(t)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no key", []string{"projects", "list", "--url", e.url}, "no API key"},
		{"wrong key", []string{"projects", "list", "--url", e.url, "--key", "kh_wrong"}, "unauthorized (HTTP 401)"},
		{"bad url", []string{"projects", "list", "--url", "ftp://x", "--key", "k"}, "--url"},
		{"no project yet", []string{"endpoints", "list", "--url", e.url, "--key", cliAdminKey}, "projects create"},
		{"unknown endpoint", []string{"endpoints", "get", "ep_nope", "--url", e.url, "--key", cliAdminKey, "--project", "prj_nope"}, "not_found (HTTP 404)"},
		{"update without flags", []string{"endpoints", "update", "ep_x", "--server", e.url, "--key", cliAdminKey, "--project", "p"}, "nothing to change"},
		{"bad since", []string{"endpoints", "recover", "ep_x", "--since", "yesterday", "--url", e.url, "--key", cliAdminKey, "--project", "p"}, "--since"},
		{"bad header", []string{"endpoints", "create", "--url", "http://x", "--header", "novalue", "--key", cliAdminKey, "--project", "p"}, "NAME=VALUE"},
		{"negative limit", []string{"events", "list", "--limit", "-1", "--url", e.url, "--key", cliAdminKey, "--project", "p"}, "--limit -1: want 1 to 1000"},
		{"limit too large", []string{"events", "list", "--limit", "1001", "--all", "--url", e.url, "--key", cliAdminKey, "--project", "p"}, "--limit 1001: want 1 to 1000"},
		{"project update without flags", []string{"projects", "update", "prj_x", "--url", e.url, "--key", cliAdminKey}, "nothing to change"},
		{"negative retention", []string{"projects", "update", "prj_x", "--retention-days", "-1", "--url", e.url, "--key", cliAdminKey}, "--retention-days -1"},
		{"unknown project", []string{"projects", "get", "prj_nope", "--url", e.url, "--key", cliAdminKey}, "not_found (HTTP 404)"},
		{"project of nobody", []string{"projects", "get", "--url", e.url, "--key", cliAdminKey}, "projects create"},
		{"unknown delivery", []string{"deliveries", "get", "dlv_nope", "--url", e.url, "--key", cliAdminKey, "--project", "prj_nope"}, "get delivery dlv_nope: not_found (HTTP 404)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := e.run(t, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestCLIProjectResolution(t *testing.T) {
	e := newCLIEnv(t)
	ctx := context.Background()
	p1, err := e.admin.CreateProject(ctx, "one")
	if err != nil {
		t.Fatal(err)
	}
	// The admin key with a single project: --project may be left out.
	out := e.must(t, "endpoints", "list", "--url", e.url, "--key", cliAdminKey)
	if !strings.HasPrefix(out, "ID") {
		t.Fatalf("list without --project:\n%s", out)
	}
	// A project key sees only its own project: --project may be left out.
	if out := e.must(t, "endpoints", "list", "--url", e.url, "--key", p1.APIKey); !strings.HasPrefix(out, "ID") {
		t.Fatalf("project key without --project:\n%s", out)
	}
	t.Setenv("KINEHOOK_PROJECT", p1.ID)
	e.must(t, "endpoints", "list", "--url", e.url, "--key", p1.APIKey)
	t.Setenv("KINEHOOK_PROJECT", "")
	// Two projects and the admin key: ambiguous.
	p2, err := e.admin.CreateProject(ctx, "two")
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = e.run(t, "endpoints", "list", "--url", e.url, "--key", cliAdminKey)
	if err == nil || !strings.Contains(err.Error(), "several projects") {
		t.Fatalf("admin key with two projects: %v", err)
	}
	// Another project's key: 404, as the API says.
	_, _, err = e.run(t, "endpoints", "list", "--url", e.url, "--key", p1.APIKey, "--project", p2.ID)
	if err == nil || !strings.Contains(err.Error(), "not_found") {
		t.Fatalf("another project's key: %v", err)
	}
}

func TestCLIEndpoints(t *testing.T) {
	e := newCLIEnv(t)
	p, err := e.admin.CreateProject(context.Background(), "endpoints")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("KINEHOOK_URL", e.url)
	t.Setenv("KINEHOOK_API_KEY", p.APIKey)
	t.Setenv("KINEHOOK_PROJECT", p.ID)

	out := e.must(t, "endpoints", "create", "--url", e.sink.URL+"/hooks", "--event-type", "media.update.status", "--event-type", "live.*",
		"--description", "status sync", "--header", "X-Team=video", "--rate-limit", "25", "--max-in-flight", "3")
	id := fieldOf(t, out, "id")
	secret := fieldOf(t, out, "secret")
	if !strings.HasPrefix(secret, "whsec_") || fieldOf(t, out, "event_types") != "media.update.status, live.*" ||
		fieldOf(t, out, "header") != "X-Team: ****" || fieldOf(t, out, "rate_limit") != "25/s" || fieldOf(t, out, "max_in_flight") != "3" {
		t.Fatalf("create output:\n%s", out)
	}
	// Unknown event type: the API's 422 invalid.
	_, _, err = e.run(t, "endpoints", "create", "--url", e.sink.URL, "--event-type", "video.done")
	if err == nil || !strings.Contains(err.Error(), "invalid (HTTP 422)") {
		t.Fatalf("unknown event type: %v", err)
	}

	list := e.must(t, "endpoints", "list")
	if !strings.Contains(list, id) || !strings.Contains(list, "media.update.status,live.*") || !strings.Contains(list, "enabled") {
		t.Fatalf("list:\n%s", list)
	}
	got := decodeJSON[client.Endpoint](t, e.must(t, "endpoints", "get", id, "--json"))
	if got.ID != id || got.Description != "status sync" || got.Headers["X-Team"] != "****" {
		t.Fatalf("get --json: %+v", got)
	}

	// update changes only what is given.
	out = e.must(t, "endpoints", "update", id, "--description", "renamed", "--disabled")
	if fieldOf(t, out, "description") != "renamed" || !strings.HasPrefix(fieldOf(t, out, "state"), "disabled") || fieldOf(t, out, "event_types") != "media.update.status, live.*" {
		t.Fatalf("update output:\n%s", out)
	}
	upd := decodeJSON[client.Endpoint](t, e.must(t, "endpoints", "update", id, "--disabled=false", "--all-events", "--clear-headers", "--json"))
	if upd.Disabled || len(upd.EventTypes) != 0 || len(upd.Headers) != 0 || upd.Description != "renamed" || upd.URL != e.sink.URL+"/hooks" {
		t.Fatalf("update --json: %+v", upd)
	}

	if s := strings.TrimSpace(e.must(t, "endpoints", "secret", id)); s != secret {
		t.Fatalf("secret %q, created with %q", s, secret)
	}
	rot := decodeJSON[map[string]string](t, e.must(t, "endpoints", "rotate", id, "--json"))
	if !strings.HasPrefix(rot["secret"], "whsec_") || rot["secret"] == secret {
		t.Fatalf("rotate gave %q (old %q)", rot["secret"], secret)
	}
	if s := strings.TrimSpace(e.must(t, "endpoints", "secret", id)); s != rot["secret"] {
		t.Fatalf("secret after rotate %q, want %q", s, rot["secret"])
	}

	out = e.must(t, "endpoints", "recover", id, "--since", "1h")
	if !strings.Contains(out, "re-sending 0 failed deliveries") {
		t.Fatalf("recover output: %s", out)
	}

	// --url names the server when the endpoint's URL comes as the argument
	// or --endpoint-url.
	t.Setenv("KINEHOOK_URL", "")
	out = e.must(t, "endpoints", "create", e.sink.URL+"/positional", "--url", e.url)
	if fieldOf(t, out, "url") != e.sink.URL+"/positional" {
		t.Fatalf("positional URL:\n%s", out)
	}
	out = e.must(t, "endpoints", "update", fieldOf(t, out, "id"), "--endpoint-url", e.sink.URL+"/flag", "--url", e.url)
	if fieldOf(t, out, "url") != e.sink.URL+"/flag" {
		t.Fatalf("--endpoint-url:\n%s", out)
	}
	out = e.must(t, "endpoints", "create", "--url", e.sink.URL+"/server-flag", "--server", e.url)
	if fieldOf(t, out, "url") != e.sink.URL+"/server-flag" {
		t.Fatalf("--server:\n%s", out)
	}
	t.Setenv("KINEHOOK_URL", e.url)

	if out := e.must(t, "endpoints", "delete", id); !strings.Contains(out, "deleted endpoint "+id) {
		t.Fatalf("delete output: %s", out)
	}
	_, _, err = e.run(t, "endpoints", "get", id)
	if err == nil || !strings.Contains(err.Error(), "not_found") {
		t.Fatalf("get after delete: %v", err)
	}
}

func TestCLIEventsAndDeliveries(t *testing.T) {
	e := newCLIEnv(t)
	ctx := context.Background()
	p, err := e.admin.CreateProject(ctx, "events")
	if err != nil {
		t.Fatal(err)
	}
	ep, err := e.admin.CreateEndpoint(ctx, p.ID, client.EndpointCreate{URL: e.sink.URL})
	if err != nil {
		t.Fatal(err)
	}
	base := []string{"--url", e.url, "--key", p.APIKey, "--project", p.ID}
	run := func(args ...string) string { return e.must(t, append(args, base...)...) }

	data := `{"id":"7127f2d7-0e96-40d0-9a03-2e987c096466","status":"done"}`
	out := run("events", "send", "media.update.status", "--data", data, "--idempotency-key", "k1")
	evID := fieldOf(t, out, "id")
	if !strings.HasPrefix(evID, "msg_") || fieldOf(t, out, "resource") != "7127f2d7-0e96-40d0-9a03-2e987c096466" || !strings.Contains(out, `"status": "done"`) {
		t.Fatalf("send output:\n%s", out)
	}
	again := decodeJSON[client.Event](t, run("events", "send", "media.update.status", "--data", data, "--idempotency-key", "k1", "--json"))
	if again.ID != evID {
		t.Fatalf("same idempotency key gave a new event %s (first %s)", again.ID, evID)
	}
	// Without --data: the seed's example of the type.
	live := decodeJSON[client.Event](t, run("events", "send", "live.finished", "--json"))
	if live.Event != kinehook.EventLiveFinished || !strings.Contains(string(live.Data), "video_id") {
		t.Fatalf("sample event: %+v", live)
	}
	// Strict validation: the API's code reaches the user.
	_, _, err = e.run(t, append([]string{"events", "send", "media.update.status", "--data", `{"id":"v","status":"failed"}`}, base...)...)
	if err == nil || !strings.Contains(err.Error(), "invalid (HTTP 422)") || !strings.Contains(err.Error(), "data.status") {
		t.Fatalf("invalid status: %v", err)
	}
	_, _, err = e.run(t, append([]string{"events", "send", "video.done"}, base...)...)
	if err == nil || !strings.Contains(err.Error(), "--data") {
		t.Fatalf("unknown type without data: %v", err)
	}

	list := run("events", "list")
	if !strings.Contains(list, evID) || !strings.Contains(list, live.ID) || !strings.Contains(list, "video ") {
		t.Fatalf("events list:\n%s", list)
	}
	filtered := decodeJSON[client.EventPage](t, run("events", "list", "--event", "live.finished", "--json"))
	if len(filtered.Data) != 1 || filtered.Data[0].ID != live.ID {
		t.Fatalf("--event filter: %+v", filtered)
	}
	page := decodeJSON[client.EventPage](t, run("events", "list", "--limit", "1", "--json"))
	if len(page.Data) != 1 || page.Data[0].ID != live.ID || page.NextCursor == "" {
		t.Fatalf("first page: %+v", page)
	}
	next := decodeJSON[client.EventPage](t, run("events", "list", "--limit", "1", "--cursor", page.NextCursor, "--json"))
	if len(next.Data) != 1 || next.Data[0].ID != evID {
		t.Fatalf("second page: %+v", next)
	}
	all := decodeJSON[client.EventPage](t, run("events", "list", "--limit", "1", "--all", "--json"))
	if len(all.Data) != 2 {
		t.Fatalf("--all gave %d events", len(all.Data))
	}
	got := run("events", "get", evID)
	if fieldOf(t, got, "event") != "media.update.status" {
		t.Fatalf("get:\n%s", got)
	}

	// Deliveries: wait for success, then look at attempts and retry.
	var dID string
	waitUntil(t, "the delivery to succeed", func() bool {
		ds, err := e.admin.ListDeliveries(ctx, p.ID, evID)
		if err != nil || len(ds) != 1 {
			return false
		}
		dID = ds[0].ID
		return ds[0].Status == kinehook.DeliverySucceeded
	})
	dl := run("deliveries", "list", evID)
	if !strings.Contains(dl, dID) || !strings.Contains(dl, ep.ID) || !strings.Contains(dl, "succeeded") || !strings.Contains(dl, "200") {
		t.Fatalf("deliveries list:\n%s", dl)
	}
	dg := run("deliveries", "get", dID)
	if fieldOf(t, dg, "id") != dID || fieldOf(t, dg, "event_id") != evID || fieldOf(t, dg, "endpoint_id") != ep.ID ||
		fieldOf(t, dg, "status") != "succeeded" || fieldOf(t, dg, "last_status_code") != "200" || fieldOf(t, dg, "next_attempt_at") != "-" ||
		fieldOf(t, dg, "attempts") != "1" || fieldOf(t, dg, "event_type") != "media.update.status" {
		t.Fatalf("deliveries get:\n%s", dg)
	}
	at := run("deliveries", "attempts", dID)
	if !strings.Contains(at, "200") || !strings.Contains(at, "sink answers OK") {
		t.Fatalf("attempts:\n%s", at)
	}

	e.sink.setStatus(500)
	ev2 := decodeJSON[client.Event](t, run("events", "send", "live.created", "--json"))
	var d2 *kinehook.Delivery
	waitUntil(t, "the delivery to fail", func() bool {
		ds, err := e.admin.ListDeliveries(ctx, p.ID, ev2.ID)
		if err != nil || len(ds) != 1 {
			return false
		}
		d2 = ds[0]
		return d2.Status == kinehook.DeliveryFailed
	})
	attempts := decodeJSON[struct{ Data []kinehook.Attempt }](t, run("deliveries", "attempts", d2.ID, "--json"))
	if len(attempts.Data) != 2 || attempts.Data[0].StatusCode != 500 {
		t.Fatalf("attempts of the failed delivery: %+v", attempts.Data)
	}
	e.sink.setStatus(200)
	out = run("deliveries", "retry", d2.ID)
	if !strings.Contains(out, "retrying delivery "+d2.ID) {
		t.Fatalf("retry output: %s", out)
	}
	waitUntil(t, "the retried delivery to succeed", func() bool {
		d, err := e.admin.GetDelivery(ctx, p.ID, d2.ID)
		return err == nil && d.Status == kinehook.DeliverySucceeded
	})

	// recover: fail one more, then re-send failures since a time.
	e.sink.setStatus(503)
	ev3 := decodeJSON[client.Event](t, run("events", "send", "live.cancelled", "--json"))
	waitUntil(t, "the third delivery to fail", func() bool {
		ds, err := e.admin.ListDeliveries(ctx, p.ID, ev3.ID)
		return err == nil && len(ds) == 1 && ds[0].Status == kinehook.DeliveryFailed
	})
	e.sink.setStatus(200)
	rec := decodeJSON[client.RecoverResult](t, run("endpoints", "recover", ep.ID, "--since", time.Now().Add(-time.Minute).UTC().Format(time.RFC3339), "--json"))
	if rec.Recovered != 1 {
		t.Fatalf("recovered %d deliveries, want 1", rec.Recovered)
	}
	waitUntil(t, "the recovered delivery to succeed", func() bool {
		ds, err := e.admin.ListDeliveries(ctx, p.ID, ev3.ID)
		return err == nil && len(ds) == 1 && ds[0].Status == kinehook.DeliverySucceeded
	})
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"2026-03-01T10:00:00Z", time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC), true},
		{"2026-03-01", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), true},
		{"90m", now.Add(-90 * time.Minute), true},
		{"yesterday", time.Time{}, false},
		{"-2h", time.Time{}, false},
	}
	for _, tc := range cases {
		got, err := parseSince(tc.in, now)
		if (err == nil) != tc.ok || (tc.ok && !got.Equal(tc.want)) {
			t.Errorf("parseSince(%q) = %v, %v", tc.in, got, err)
		}
	}
}

func TestParseRate(t *testing.T) {
	cases := []struct {
		in   string
		want float64
		ok   bool
	}{
		{"50", 50, true}, {"50/s", 50, true}, {"120/m", 2, true}, {"0", 0, true},
		{"fast", 0, false}, {"-1", 0, false}, {"5/h", 0, false},
	}
	for _, tc := range cases {
		got, err := parseRate(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseRate(%q) = %v, %v", tc.in, got, err)
		}
	}
}

func FuzzParseSince(f *testing.F) {
	for _, s := range []string{"2h", "2026-01-02", "2026-01-02T15:04:05Z", "-1h", "", "x"} {
		f.Add(s)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseSince(s, now)
		if err != nil {
			return
		}
		if d, derr := time.ParseDuration(s); derr == nil && got.After(now) {
			t.Fatalf("duration %q (%v) went forward: %v", s, d, got)
		}
	})
}

func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"50", "50/s", "3000/m", "0", "-1", "NaN", "1e400/s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := parseRate(s)
		if err == nil && (v < 0 || v != v) {
			t.Fatalf("parseRate(%q) = %v", s, v)
		}
	})
}

func FuzzParseHeaders(f *testing.F) {
	f.Add("X-A=1", "B=")
	f.Fuzz(func(t *testing.T, a, b string) {
		h, err := parseHeaders([]string{a, b})
		if err != nil {
			return
		}
		for k := range h {
			if k == "" || strings.TrimSpace(k) != k {
				t.Fatalf("header name %q", k)
			}
		}
	})
}
