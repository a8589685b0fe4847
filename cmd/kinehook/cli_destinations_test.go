package main

import (
	"context"
	"strings"
	"testing"
)

// `endpoints create --type nats --config ... --credential k=v`, `update`
// with --credential (NAME= removes) and --config, and `list`, showing the
// type and config and only the credentials' names; bad input is refused
// with the server's or the flag's words.
func TestCLIDestinationEndpoints(t *testing.T) {
	e := newCLIEnv(t)
	p, err := e.admin.CreateProject(context.Background(), "dest")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("KINEHOOK_URL", e.url)
	t.Setenv("KINEHOOK_API_KEY", p.APIKey)
	t.Setenv("KINEHOOK_PROJECT", p.ID)

	out := e.must(t, "endpoints", "create", "--type", "nats", "--config", `{"url":"nats://127.0.0.1:4222","subject":"kinehook.cli.test"}`,
		"--credential", "user=svc", "--credential", "password=hunter2-secret")
	id := fieldOf(t, out, "id")
	if fieldOf(t, out, "type") != "nats" || fieldOf(t, out, "config") != `{"url":"nats://127.0.0.1:4222","subject":"kinehook.cli.test"}` ||
		fieldOf(t, out, "credentials") != "password, user (values never shown)" || strings.Contains(out, "hunter2") {
		t.Fatalf("create output:\n%s", out)
	}
	out = e.must(t, "endpoints", "update", id, "--credential", "password=", "--credential", "user=", "--credential", "token=t0k",
		"--config", `{"subject":"kinehook.cli.other","url":"nats://127.0.0.1:4222"}`)
	if fieldOf(t, out, "credentials") != "token (values never shown)" || !strings.Contains(fieldOf(t, out, "config"), "kinehook.cli.other") {
		t.Fatalf("update output:\n%s", out)
	}
	stored, err := e.store.GetEndpoint(context.Background(), p.ID, id)
	if err != nil || stored.Credentials["token"] != "t0k" || len(stored.Credentials) != 1 {
		t.Fatalf("stored %+v, %v", stored, err)
	}
	list := e.must(t, "endpoints", "list")
	if !strings.Contains(list, "kinehook.cli.other") || !strings.Contains(list, "nats") || !strings.Contains(list, "TYPE") {
		t.Errorf("list:\n%s", list)
	}
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"endpoints", "create", "--type", "nats"}, "needs --config"},
		{[]string{"endpoints", "create", "--type", "nats", "--config", "{"}, "not valid JSON"},
		{[]string{"endpoints", "create", "--type", "nats", "--config", `{"url":"nats://127.0.0.1:4222"}`}, "config.subject is required"},
		{[]string{"endpoints", "create", "--type", "sqs", "--config", `{}`}, "unknown endpoint type"},
		{[]string{"endpoints", "create", "--type", "nats", "--config", `{}`, "--credential", "novalue"}, "NAME=VALUE"},
	} {
		_, _, err := e.run(t, bad.args...)
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("kinehook %s: %v, want %q", strings.Join(bad.args, " "), err, bad.want)
		}
	}
}
