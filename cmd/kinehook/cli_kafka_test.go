package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/client"
)

// `endpoints create --type kafka --config ... --credential k=v` against an
// in-process Kafka cluster (kfake) with SASL: the endpoint shows its
// normalised config and only its credentials' names, an event sent to the
// project arrives as a record keyed by its resource, and bad settings are
// refused with the server's words.
func TestCLIKafkaEndpoint(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "cli-events"), kfake.EnableSASL(),
		kfake.Superuser("SCRAM-SHA-512", "svc", "hunter2-secret"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	broker := cluster.ListenAddrs()[0]
	e := newCLIEnv(t)
	p, err := e.admin.CreateProject(context.Background(), "kafka")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("KINEHOOK_URL", e.url)
	t.Setenv("KINEHOOK_API_KEY", p.APIKey)
	t.Setenv("KINEHOOK_PROJECT", p.ID)

	out := e.must(t, "endpoints", "create", "--type", "kafka",
		"--config", fmt.Sprintf(`{"brokers":[%q],"topic":"cli-events","sasl":"SCRAM-SHA-512"}`, broker),
		"--credential", "username=svc", "--credential", "password=hunter2-secret")
	wantCfg := fmt.Sprintf(`{"brokers":[%q],"topic":"cli-events","tls":false,"sasl":"scram-sha-512"}`, broker)
	if fieldOf(t, out, "type") != "kafka" || fieldOf(t, out, "config") != wantCfg ||
		fieldOf(t, out, "credentials") != "password, username (values never shown)" || strings.Contains(out, "hunter2") {
		t.Fatalf("create output:\n%s", out)
	}
	if list := e.must(t, "endpoints", "list"); !strings.Contains(list, "kafka") || !strings.Contains(list, "cli-events") {
		t.Errorf("list:\n%s", list)
	}

	ev, err := client.New(e.url, p.APIKey).SendEventBody(context.Background(), p.ID,
		[]byte(`{"event":"media.update.status","data":{"id":"vid-cli","status":"done"}}`), "")
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ConsumeTopics("cli-events"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.SASL(scramSHA512("svc", "hunter2-secret")))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for len(recs) == 0 && ctx.Err() == nil {
		recs = append(recs, cl.PollFetches(ctx).Records()...)
	}
	if len(recs) != 1 || string(recs[0].Key) != "vid-cli" {
		t.Fatalf("records %v", recs)
	}
	for _, h := range recs[0].Headers {
		if h.Key == kinehook.HeaderID && string(h.Value) != ev.ID {
			t.Errorf("webhook-id %q, event %s", h.Value, ev.ID)
		}
	}

	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"endpoints", "create", "--type", "kafka", "--config", `{"brokers":["h:9092"]}`}, "config.topic is required"},
		{[]string{"endpoints", "create", "--type", "kafka", "--config", `{"brokers":["kafka://h"],"topic":"t"}`}, "without a scheme"},
		{[]string{"endpoints", "create", "--type", "kafka", "--config", `{"brokers":["h"],"topic":"t","sasl":"plain"}`}, "needs credentials username and password"},
		{[]string{"endpoints", "create", "--type", "kafka", "--config", `{"brokers":["h"],"topic":"t"}`, "--credential", "username=u"}, "set config.sasl"},
	} {
		_, _, err := e.run(t, bad.args...)
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("kinehook %s: %v, want %q", strings.Join(bad.args, " "), err, bad.want)
		}
	}
}

// scramSHA512 is the test consumer's SASL login.
func scramSHA512(user, pass string) sasl.Mechanism {
	return scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()
}
