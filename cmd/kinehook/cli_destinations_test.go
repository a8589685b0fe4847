package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/kinehook/kinehook"
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

// `endpoints create --type rabbitmq --config ... --credential
// username=guest --credential password=guest` makes an endpoint the real
// broker receives events at (a queue of the test's own on 127.0.0.1:5672);
// a url carrying credentials is refused pointing at --credential.
func TestCLIRabbitMQEndpoint(t *testing.T) {
	ac, err := amqp.DialConfig("amqp://guest:guest@127.0.0.1:5672/", amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
	if err != nil {
		t.Skipf("no RabbitMQ at 127.0.0.1:5672: %v", err)
	}
	defer ac.Close()
	ch, err := ac.Channel()
	if err != nil {
		t.Fatal(err)
	}
	queue := "kinehook.cli.test." + kinehook.NewID("q")
	if _, err := ch.QueueDeclare(queue, false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	defer func() { _, _ = ch.QueueDelete(queue, false, false, false) }()

	e := newCLIEnv(t)
	p, err := e.admin.CreateProject(context.Background(), "rabbit")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("KINEHOOK_URL", e.url)
	t.Setenv("KINEHOOK_API_KEY", p.APIKey)
	t.Setenv("KINEHOOK_PROJECT", p.ID)

	config := fmt.Sprintf(`{"url":"amqp://127.0.0.1","routing_key":%q}`, queue)
	out := e.must(t, "endpoints", "create", "--type", "rabbitmq", "--config", config,
		"--credential", "username=guest", "--credential", "password=guest")
	want := fmt.Sprintf(`{"url":"amqp://127.0.0.1:5672/","exchange":"","routing_key":%q}`, queue)
	if fieldOf(t, out, "type") != "rabbitmq" || fieldOf(t, out, "config") != want ||
		fieldOf(t, out, "credentials") != "password, username (values never shown)" {
		t.Fatalf("create output:\n%s", out)
	}
	e.must(t, "events", "send", "media.update.status", "--data", `{"id":"7127f2d7-0e96-40d0-9a03-2e987c096466","status":"done"}`)
	deadline := time.Now().Add(20 * time.Second)
	for {
		d, ok, err := ch.Get(queue, true)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			if !strings.Contains(string(d.Body), `"status":"done"`) || d.MessageId == "" || d.Headers["webhook-id"] != d.MessageId {
				t.Errorf("message %s, message_id %q, headers %v", d.Body, d.MessageId, d.Headers)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the event did not arrive in the queue")
		}
		time.Sleep(50 * time.Millisecond)
	}

	_, _, err = e.run(t, "endpoints", "create", "--type", "rabbitmq", "--config", `{"url":"amqp://guest:guest@127.0.0.1:5672/","routing_key":"q"}`)
	if err == nil || !strings.Contains(err.Error(), "give them in credentials (username, password)") {
		t.Errorf("credentials in the url: %v", err)
	}
}
