package main

import (
	"context"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/kinehook/kinehook"
)

// `endpoints create --type redis --config ... --credential k=v` makes a
// Redis Streams endpoint (config normalised, credentials never shown); an
// event sent with the CLI lands in the stream; a password in the url is
// refused pointing to credentials.
func TestCLIRedisEndpoint(t *testing.T) {
	rc := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379", Protocol: 2, DisableIdentity: true})
	defer rc.Close()
	if err := rc.Ping(t.Context()).Err(); err != nil {
		t.Skipf("no Redis at 127.0.0.1:6379: %v", err)
	}
	stream := "kinehook:test:cli:" + kinehook.NewID("s")
	defer rc.Del(context.Background(), stream)

	e := newCLIEnv(t)
	p, err := e.admin.CreateProject(context.Background(), "redis")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("KINEHOOK_URL", e.url)
	t.Setenv("KINEHOOK_API_KEY", p.APIKey)
	t.Setenv("KINEHOOK_PROJECT", p.ID)

	out := e.must(t, "endpoints", "create", "--type", "redis", "--config", `{"stream":"`+stream+`","url":"redis://127.0.0.1","max_len":1000}`)
	id := fieldOf(t, out, "id")
	if fieldOf(t, out, "type") != "redis" || fieldOf(t, out, "config") != `{"url":"redis://127.0.0.1:6379/0","stream":"`+stream+`","max_len":1000}` {
		t.Fatalf("create output:\n%s", out)
	}
	ev := e.must(t, "events", "send", "media.update.status", "--data", `{"id":"vid-cli","status":"done"}`)
	evID := fieldOf(t, ev, "id")
	var msgs []goredis.XMessage
	for deadline := time.Now().Add(30 * time.Second); len(msgs) == 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		msgs = rc.XRange(t.Context(), stream, "-", "+").Val()
	}
	if len(msgs) != 1 || msgs[0].Values["event"] != "media.update.status" || msgs[0].Values["webhook-id"] == "" ||
		!strings.Contains(msgs[0].Values["body"].(string), "vid-cli") {
		t.Fatalf("stream after events send %s: %v", evID, msgs)
	}

	out = e.must(t, "endpoints", "update", id, "--credential", "username=svc", "--credential", "password=hunter2-secret")
	if fieldOf(t, out, "credentials") != "password, username (values never shown)" || strings.Contains(out, "hunter2") {
		t.Fatalf("update output:\n%s", out)
	}
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"endpoints", "create", "--type", "redis", "--config", `{"url":"redis://:hunter2@127.0.0.1:6379/0","stream":"s"}`}, "must not carry a password: give it in credentials"},
		{[]string{"endpoints", "create", "--type", "redis", "--config", `{"url":"redis://127.0.0.1"}`}, "config.stream is required"},
		{[]string{"endpoints", "create", "--type", "redis", "--config", `{"url":"redis://127.0.0.1","stream":"s"}`, "--credential", "username=u"}, "needs a password"},
	} {
		_, _, err := e.run(t, bad.args...)
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("kinehook %s: %v, want %q", strings.Join(bad.args, " "), err, bad.want)
		}
	}
}
