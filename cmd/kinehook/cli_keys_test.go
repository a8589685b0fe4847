package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/client"
)

func TestCLIKeys(t *testing.T) {
	e := newCLIEnv(t)
	t.Setenv("KINEHOOK_URL", e.url)
	p, err := e.admin.CreateProject(context.Background(), "Acme")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("KINEHOOK_API_KEY", p.APIKey)

	out, errOut, err := e.run(t, "keys", "create", "encoder", "--scope", "ingest")
	if err != nil {
		t.Fatalf("keys create: %v %s", err, errOut)
	}
	key, id := fieldOf(t, out, "key"), fieldOf(t, out, "id")
	if !strings.HasPrefix(key, "kh_") || !strings.HasPrefix(id, "key_") || fieldOf(t, out, "scope") != "ingest" || fieldOf(t, out, "name") != "encoder" ||
		!strings.Contains(errOut, "not shown again") {
		t.Fatalf("keys create output:\n%s\n%s", out, errOut)
	}
	// The new key posts events and nothing else.
	ing := client.New(e.url, key)
	if _, err := ing.SendEvent(context.Background(), p.ID, kinehook.EventMediaUpdateStatus, map[string]any{"id": "v1", "status": "done"}, ""); err != nil {
		t.Fatalf("ingest key posting: %v", err)
	}
	if _, _, err := e.run(t, "keys", "list", "--key", key, "--project", p.ID); err == nil || !strings.Contains(err.Error(), "forbidden (HTTP 403)") {
		t.Fatalf("ingest key listing keys: %v", err)
	}

	ro := decodeJSON[client.NewAPIKey](t, e.must(t, "keys", "create", "dashboards", "--scope", "read", "--json"))
	if ro.Scope != "read" || ro.Key == "" || ro.Prefix != ro.Key[:11] {
		t.Fatalf("keys create --json: %+v", ro)
	}
	list := e.must(t, "keys", "list")
	lines := strings.Split(strings.TrimSpace(list), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[1], "default") || !strings.Contains(lines[1], p.APIKey[:11]) ||
		!strings.Contains(lines[2], "encoder") || !strings.Contains(lines[2], "ingest") || !strings.Contains(lines[3], "never") || strings.Contains(list, key) {
		t.Fatalf("keys list:\n%s", list)
	}
	js := decodeJSON[struct{ Data []client.APIKey }](t, e.must(t, "keys", "list", "--json"))
	if len(js.Data) != 3 {
		t.Fatalf("keys list --json: %+v", js)
	}

	if out := e.must(t, "keys", "revoke", id); !strings.Contains(out, "revoked key "+id) {
		t.Fatalf("keys revoke: %s", out)
	}
	if _, err := ing.SendEvent(context.Background(), p.ID, kinehook.EventMediaUpdateStatus, map[string]any{"id": "v1", "status": "done"}, ""); client.ErrorCode(err) != kinehook.EUNAUTHORIZED {
		t.Fatalf("revoked key: %v", err)
	}
	if _, _, err := e.run(t, "keys", "revoke", js.Data[0].ID); err == nil || !strings.Contains(err.Error(), "conflict (HTTP 409)") {
		t.Fatalf("revoking the last full key: %v", err)
	}
	if _, _, err := e.run(t, "keys", "create", "x", "--scope", "owner"); err == nil || !strings.Contains(err.Error(), "want full, read or ingest") {
		t.Fatalf("bad scope: %v", err)
	}
	if _, _, err := e.run(t, "keys", "create", "x"); err == nil || !strings.Contains(err.Error(), "scope") {
		t.Fatalf("no scope: %v", err)
	}
}

func TestCLIProjectsDelete(t *testing.T) {
	e := newCLIEnv(t)
	t.Setenv("KINEHOOK_URL", e.url)
	t.Setenv("KINEHOOK_API_KEY", cliAdminKey)
	ctx := context.Background()
	mk := func(name string) string {
		p, err := e.admin.CreateProject(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return p.ID
	}
	a, b, c := mk("a"), mk("b"), mk("c")

	// Without a terminal and without --yes nothing is deleted.
	if _, _, err := e.run(t, "projects", "delete", a); err == nil || !strings.Contains(err.Error(), "pass --yes") {
		t.Fatalf("delete without --yes: %v", err)
	}
	if _, err := e.admin.GetProject(ctx, a); err != nil {
		t.Fatalf("project gone without confirmation: %v", err)
	}
	if out := e.must(t, "projects", "delete", a, "--yes"); !strings.Contains(out, "deleted project "+a) {
		t.Fatalf("delete --yes: %s", out)
	}
	if _, err := e.admin.GetProject(ctx, a); !client.IsNotFound(err) {
		t.Fatalf("deleted project: %v", err)
	}

	// On a terminal: the project id must be typed.
	old := stdinIsTerminal
	stdinIsTerminal = func(io.Reader) bool { return true }
	t.Cleanup(func() { stdinIsTerminal = old })
	runIn := func(in string, args ...string) (string, string, error) {
		root := cliRoot()
		root.SetIn(strings.NewReader(in))
		var out, errb bytes.Buffer
		root.SetArgs(args)
		root.SetOut(&out)
		root.SetErr(&errb)
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		err := root.ExecuteContext(cctx)
		return out.String(), errb.String(), err
	}
	_, prompt, err := runIn("yes\n", "projects", "delete", b)
	if err == nil || !strings.Contains(err.Error(), "not confirmed") || !strings.Contains(prompt, "Type "+b+" to confirm") || !strings.Contains(prompt, `"b"`) {
		t.Fatalf("wrong confirmation: %v\n%s", err, prompt)
	}
	if _, err := e.admin.GetProject(ctx, b); err != nil {
		t.Fatalf("project gone after a wrong confirmation: %v", err)
	}
	if out, _, err := runIn(b+"\n", "projects", "delete", b); err != nil || !strings.Contains(out, "deleted project "+b) {
		t.Fatalf("confirmed delete: %v %s", err, out)
	}
	// A project key may not delete; an unknown project is not found.
	pk, err := e.admin.CreateProject(ctx, "d")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.run(t, "projects", "delete", pk.ID, "--yes", "--key", pk.APIKey); err == nil || !strings.Contains(err.Error(), "forbidden (HTTP 403)") {
		t.Fatalf("project key deleting: %v", err)
	}
	if _, _, err := e.run(t, "projects", "delete", "prj_nope", "--yes"); err == nil || !strings.Contains(err.Error(), "not_found (HTTP 404)") {
		t.Fatalf("unknown project: %v", err)
	}
	js := decodeJSON[map[string]any](t, e.must(t, "projects", "delete", c, "--yes", "--json"))
	if js["id"] != c || js["deleted"] != true {
		t.Fatalf("delete --json: %v", js)
	}
}
