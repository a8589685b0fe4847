package main

import (
	"context"
	"strings"
	"testing"

	"github.com/kinehook/kinehook/client"
)

func TestCLIPortal(t *testing.T) {
	e := newCLIEnv(t)
	t.Setenv("KINEHOOK_URL", e.url)
	p, err := e.admin.CreateProject(context.Background(), "Acme")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("KINEHOOK_API_KEY", p.APIKey)

	out, errOut, err := e.run(t, "portal", "create", "--scope", "manage", "--expires-in", "30m", "--event-types", "media.*,live.finished",
		"--name", "Acme Video", "--color", "#0A7F5A")
	if err != nil {
		t.Fatalf("portal create: %v %s", err, errOut)
	}
	url := strings.TrimSpace(out)
	if !strings.HasPrefix(url, e.url+"/portal/kpt_") || strings.Contains(url, "\n") || !strings.Contains(errOut, "not shown again") {
		t.Fatalf("portal create printed %q / %q", out, errOut)
	}
	made := decodeJSON[client.NewPortalSession](t, e.must(t, "portal", "create", "--scope", "read", "--json"))
	if made.Scope != "read" || !strings.HasPrefix(made.URL, e.url+"/portal/kpt_") || made.ExpiresAt.Sub(made.CreatedAt).Hours() != 1 {
		t.Fatalf("portal create --json: %+v", made)
	}
	sessions, err := client.New(e.url, p.APIKey).ListPortalSessions(context.Background(), p.ID)
	if err != nil || len(sessions) != 2 {
		t.Fatalf("sessions: %v, %v", sessions, err)
	}
	first := sessions[1]
	if first.Scope != "manage" || strings.Join(first.EventTypes, ",") != "media.*,live.finished" || first.Branding == nil ||
		first.Branding.Name != "Acme Video" || first.Branding.Color != "#0a7f5a" || first.ExpiresAt.Sub(first.CreatedAt).Minutes() != 30 {
		t.Errorf("the first session: %+v (%+v)", first, first.Branding)
	}

	list := e.must(t, "portal", "list")
	if lines := strings.Split(strings.TrimSpace(list), "\n"); len(lines) != 3 || !strings.Contains(lines[2], "media.*,live.finished") ||
		!strings.Contains(lines[1], "all") || strings.Count(list, "active") != 2 || strings.Contains(list, "kpt_") {
		t.Fatalf("portal list:\n%s", list)
	}
	if out := e.must(t, "portal", "revoke", first.ID); !strings.Contains(out, "revoked portal session "+first.ID) {
		t.Fatalf("portal revoke: %s", out)
	}
	if list := e.must(t, "portal", "list"); strings.Count(list, "revoked") != 1 || strings.Count(list, "active") != 1 {
		t.Fatalf("portal list after revoking:\n%s", list)
	}
	if _, _, err := e.run(t, "portal", "revoke", "pts_nope"); err == nil || !strings.Contains(err.Error(), "HTTP 404") {
		t.Fatalf("revoking an unknown session: %v", err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"portal", "create"}, "scope"},
		{[]string{"portal", "create", "--scope", "full"}, "want manage or read"},
		{[]string{"portal", "create", "--scope", "read", "--expires-in", "1500ms"}, "whole seconds"},
		{[]string{"portal", "create", "--scope", "read", "--expires-in", "169h"}, "HTTP 422"},
		{[]string{"portal", "create", "--scope", "read", "--color", "teal"}, "branding.color"},
		{[]string{"portal", "create", "--scope", "read", "--event-types", "media.nope"}, "event_types"},
	} {
		if _, _, err := e.run(t, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error naming %q", tc.args, err, tc.want)
		}
	}

	// The project's portal origins.
	out = e.must(t, "projects", "update", "--portal-origins", "https://app.example.com,http://localhost:3000")
	if !strings.Contains(out, "https://app.example.com http://localhost:3000") {
		t.Fatalf("projects update --portal-origins:\n%s", out)
	}
	if _, _, err := e.run(t, "projects", "update", "--portal-origins", "https://*.example.com"); err == nil || !strings.Contains(err.Error(), "portal_origins") {
		t.Fatalf("a wildcard origin: %v", err)
	}
	e.must(t, "projects", "update", "--portal-origins", "")
	got, err := e.admin.GetProject(context.Background(), p.ID)
	if err != nil || len(got.PortalOrigins) != 0 {
		t.Fatalf("origins after clearing: %v, %v", got.PortalOrigins, err)
	}
}
