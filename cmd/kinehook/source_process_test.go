package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	amqp "github.com/rabbitmq/amqp091-go"
	goredis "github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kinehook/kinehook/source/sourcetest"
)

// sourceBad says which messages of a source test are invalid.
func sourceBad(i int) bool { return i%97 == 13 }

func sourceBody(i int) []byte {
	if sourceBad(i) {
		return sourcetest.BadBody(i)
	}
	return sourcetest.Body(i)
}

// brokerCase is one broker of the process test: setup makes a fresh
// stream (or queue, topic), removed when t ends, and returns the --source
// URL (without project) and a publisher of messages [from, to).
type brokerCase struct {
	name  string
	setup func(t *testing.T) (url string, publish func(from, to int))
}

func randomName() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

var brokerCases = []brokerCase{
	{"nats", func(t *testing.T) (string, func(int, int)) {
		nc, err := natsgo.Connect("nats://127.0.0.1:4222")
		if err != nil {
			t.Fatalf("NATS: %v", err)
		}
		t.Cleanup(nc.Close)
		js, _ := jetstream.New(nc)
		name := "khproc_" + randomName()
		if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: name, Subjects: []string{name + ".>"}}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = js.DeleteStream(context.Background(), name) })
		return "nats://127.0.0.1:4222?stream=" + name + "&ack_wait=2s", func(from, to int) {
			for i := from; i < to; i++ {
				if _, err := js.PublishAsync(fmt.Sprintf("%s.v%d", name, i%sourcetest.Resources), sourceBody(i)); err != nil {
					t.Fatal(err)
				}
			}
			<-js.PublishAsyncComplete()
		}
	}},
	{"rabbitmq", func(t *testing.T) (string, func(int, int)) {
		conn, err := amqp.Dial("amqp://guest:guest@127.0.0.1:5672/")
		if err != nil {
			t.Fatalf("RabbitMQ: %v", err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		ch, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		name := "khproc." + randomName()
		if _, err := ch.QueueDeclare(name, true, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _, _ = ch.QueueDelete(name, false, false, false) })
		if err := ch.Confirm(false); err != nil {
			t.Fatal(err)
		}
		return "amqp://guest:guest@127.0.0.1:5672/?queue=" + name, func(from, to int) {
			var confs []*amqp.DeferredConfirmation
			for i := from; i < to; i++ {
				dc, err := ch.PublishWithDeferredConfirmWithContext(context.Background(), "", name, false, false,
					amqp.Publishing{Body: sourceBody(i), MessageId: fmt.Sprintf("m-%d", i), DeliveryMode: amqp.Persistent})
				if err != nil {
					t.Fatal(err)
				}
				confs = append(confs, dc)
			}
			for _, dc := range confs {
				if ok, err := dc.WaitContext(context.Background()); !ok || err != nil {
					t.Fatalf("publish not confirmed: %v", err)
				}
			}
		}
	}},
	{"kafka", func(t *testing.T) (string, func(int, int)) {
		// kfake, franz-go's in-process Kafka (no Kafka broker can be installed here).
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "orders"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		addrs := c.ListenAddrs()
		return "kafka://" + strings.Join(addrs, ",") + "?topic=orders", func(from, to int) {
			cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.DefaultProduceTopic("orders"))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			for lo := from; lo < to; lo += 1000 {
				var recs []*kgo.Record
				for i := lo; i < min(lo+1000, to); i++ {
					recs = append(recs, &kgo.Record{Key: []byte(fmt.Sprintf("v-%d", i%sourcetest.Resources)), Value: sourceBody(i)})
				}
				if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
					t.Fatal(err)
				}
			}
		}
	}},
	{"redis", func(t *testing.T) (string, func(int, int)) {
		rdb := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379"})
		t.Cleanup(func() { _ = rdb.Close() })
		name := "khproc:" + randomName()
		t.Cleanup(func() { _ = rdb.Del(context.Background(), name).Err() })
		return "redis://127.0.0.1:6379/0?stream=" + name, func(from, to int) {
			pipe := rdb.Pipeline()
			for i := from; i < to; i++ {
				pipe.XAdd(context.Background(), &goredis.XAddArgs{Stream: name, Values: []any{"body", string(sourceBody(i))}})
			}
			if _, err := pipe.Exec(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}},
}

// TestSourceSIGKILL runs `kinehook serve --source` over 10,000 messages on
// each broker and SIGKILLs it mid-stream: after the restart every good
// message is delivered as one event, in stream order per video, and the
// bad ones are in the project's rejected list.
func TestSourceSIGKILL(t *testing.T) {
	bin := buildKinehook(t)
	for _, bc := range brokerCases {
		t.Run(bc.name, func(t *testing.T) { sourceKillRun(t, bin, bc) })
	}
}

func sourceKillRun(t *testing.T, bin string, bc brokerCase) {
	const total = 10_000
	data := filepath.Join(t.TempDir(), "data")
	sink := sourcetest.NewSink(t)
	const admin = "kh_admin_source_fixed_key"
	env := []string{"KINEHOOK_ADMIN_KEY=" + admin, "KINEHOOK_API_RATE_LIMIT=0"}
	args := []string{"--allow-private-networks", "--retry-schedule", "200ms,500ms,500ms,500ms,500ms"}
	p := startServe(t, bin, data, env, args...)
	var prj struct {
		ID     string `json:"id"`
		APIKey string `json:"api_key"`
	}
	p.mustCall("POST", "/v1/projects", admin, map[string]any{"name": "source " + bc.name}, 201, &prj)
	p.mustCall("POST", "/v1/projects/"+prj.ID+"/endpoints", prj.APIKey, map[string]any{"url": sink.URL}, 201, nil)
	if err := p.stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}

	srcURL, publish := bc.setup(t)
	publish(0, total)
	args = append(args, "--source", srcURL+"&project="+prj.ID+"&name="+bc.name)
	start := time.Now()
	p = startServe(t, bin, data, env, args...)
	waitE2E(t, 60*time.Second, "a share of the messages delivered", func() bool { return sink.Delivered() >= total/5 })
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var ee *exec.ExitError
	if err := <-p.done; !errors.As(err, &ee) {
		t.Fatalf("SIGKILL: %v", err)
	}
	killedAt := sink.Delivered()
	p = startServe(t, bin, data, env, args...)
	good := 0
	for i := range total {
		if !sourceBad(i) {
			good++
		}
	}
	waitE2E(t, 90*time.Second, "every good message delivered after the restart", func() bool { return sink.Delivered() >= good })
	t.Logf("%s: killed after %d deliveries; all %d delivered %v after the start", bc.name, killedAt, good, time.Since(start).Round(time.Millisecond))
	sink.Check(t, total, sourceBad)

	var page struct {
		Data []struct {
			Source    string `json:"source"`
			MessageID string `json:"message_id"`
			Code      string `json:"code"`
		} `json:"data"`
		NextCursor string `json:"next_cursor"`
	}
	waitE2E(t, 10*time.Second, "the rejected list", func() bool {
		p.mustCall("GET", "/v1/projects/"+prj.ID+"/rejected?limit=1000", prj.APIKey, nil, 200, &page)
		return len(page.Data) >= total-good
	})
	if len(page.Data) != total-good || page.NextCursor != "" {
		t.Errorf("%d rejected inputs (next %q), want %d", len(page.Data), page.NextCursor, total-good)
	}
	for _, r := range page.Data {
		if r.Source != bc.name || r.Code != "invalid" || r.MessageID == "" {
			t.Errorf("rejected input %+v", r)
			break
		}
	}
	if err := p.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v\nstderr: %s", err, p.stderr)
	}
}
