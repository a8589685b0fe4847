package kafka_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kinehook/kinehook/internal/transporttest"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kinehook/kinehook"
	kafkadest "github.com/kinehook/kinehook/kafka"
)

// stack is transporttest's stack with the Kafka transport.
type stack struct{ *transporttest.Stack }

func newStack(t *testing.T, retry []time.Duration, timeout time.Duration) *stack {
	t.Helper()
	return &stack{transporttest.New(t, kafkadest.Type{}, kafkadest.New(kafkadest.Options{Dial: allowLoopback}), retry, timeout)}
}

// endpoint creates a Kafka endpoint and returns its id and signing secret.
func (s *stack) endpoint(addrs []string, topic string) (string, string) {
	var ep struct {
		ID, Secret, Type string
		Config           json.RawMessage
	}
	s.Call("POST", "/v1/projects/"+s.PID+"/endpoints", s.Key, fmt.Sprintf(`{"type":"kafka","config":%s}`, brokersConfig(addrs, topic, "")), 201, &ep)
	if ep.Type != "kafka" || !strings.Contains(string(ep.Config), `"topic":"`+topic+`","tls":false,"sasl":""`) {
		s.T.Fatalf("endpoint %+v", ep)
	}
	return ep.ID, ep.Secret
}

// createTopic creates a topic with partitions on the cluster.
func createTopic(t testing.TB, addrs []string, topic string, partitions int32) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, partitions, 1
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 5000
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	if c := resp.Topics[0].ErrorCode; c != 0 {
		t.Fatalf("create topic %s: error code %d", topic, c)
	}
}

// byResource groups records by the resource of their body, checking each
// record's signature, that each resource stays in one partition and that
// its key is the resource.
func byResource(t testing.TB, secret string, recs []*kgo.Record) map[string][]string {
	t.Helper()
	got := map[string][]string{}
	part := map[string]int32{}
	for _, r := range recs {
		verifyRecord(t, secret, r)
		var ev struct{ Data struct{ ID string } }
		if err := json.Unmarshal(r.Value, &ev); err != nil {
			t.Fatal(err)
		}
		res := ev.Data.ID
		if string(r.Key) != res {
			t.Errorf("record key %q, resource %q", r.Key, res)
		}
		if p, ok := part[res]; ok && p != r.Partition {
			t.Errorf("resource %s in partitions %d and %d", res, p, r.Partition)
		}
		part[res] = r.Partition
		got[res] = append(got[res], header(r, kinehook.HeaderID))
	}
	return got
}

// The seven event types of the catalog, posted to the API (each spelled
// with its own spacing), arrive as records whose value is the body as
// posted, keyed by the resource, with signature headers the Standard
// Webhooks verification accepts and the event type.
func TestCatalogThroughKafka(t *testing.T) {
	c := newCluster(t, kfake.NumBrokers(3), kfake.SeedTopics(6, "kinehook-events"))
	s := newStack(t, []time.Duration{50 * time.Millisecond}, 5*time.Second)
	_, secret := s.endpoint(c.ListenAddrs(), "kinehook-events")
	if len(kinehook.EventTypes) != 7 {
		t.Fatalf("the catalog has %d types, this test expects 7", len(kinehook.EventTypes))
	}
	type posted struct{ body, typ string }
	sent := map[string]posted{} // event id -> body
	var ids []string
	for i, typ := range kinehook.EventTypes {
		var buf bytes.Buffer
		if err := json.Indent(&buf, kinehook.SampleEvent(typ), "", strings.Repeat(" ", i%3)); err != nil {
			t.Fatal(err)
		}
		id := s.Post(buf.String())
		sent[id] = posted{buf.String(), string(typ)}
		ids = append(ids, id)
	}
	s.WaitDelivered(ids, 30*time.Second)
	recs := consume(t, c.ListenAddrs(), "kinehook-events", len(ids))
	if len(recs) != len(ids) {
		t.Fatalf("%d records, want %d", len(recs), len(ids))
	}
	seen := map[string]bool{}
	for _, r := range recs {
		id := header(r, kinehook.HeaderID)
		p, ok := sent[id]
		if !ok {
			t.Errorf("record %d/%d has webhook-id %q, no event posted", r.Partition, r.Offset, id)
			continue
		}
		seen[id] = true
		if string(r.Value) != p.body {
			t.Errorf("event %s: value %q, want the posted body %q", id, r.Value, p.body)
		}
		if header(r, "event") != p.typ {
			t.Errorf("event %s: event header %q, want %q", id, header(r, "event"), p.typ)
		}
		ev, err := kinehook.ParseLenient(r.Value)
		if err != nil || string(r.Key) != ev.ResourceKey() || len(r.Key) == 0 {
			t.Errorf("event %s: key %q, resource %q (%v)", id, r.Key, ev.ResourceKey(), err)
		}
		verifyRecord(t, secret, r)
	}
	if len(seen) != len(ids) {
		t.Errorf("%d of %d events arrived", len(seen), len(ids))
	}
}

// Per-resource order holds through retries: with the topic missing at
// first (and auto-creation off), every attempt is refused, recorded with
// the broker's words, and retried; once the topic exists, each resource's
// records are in one partition in the order posted, none lost.
func TestOrderThroughRetries(t *testing.T) {
	c := newCluster(t, kfake.NumBrokers(3))
	retry := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond}
	for range 100 {
		retry = append(retry, 300*time.Millisecond)
	}
	s := newStack(t, retry, 3*time.Second)
	_, secret := s.endpoint(c.ListenAddrs(), "late-topic")
	want := map[string][]string{}
	var ids []string
	for i := range 60 {
		res := fmt.Sprintf("vid-%d", i%5)
		id := s.Post(fmt.Sprintf(`{"event":"media.update.status","data":{"id":%q,"status":"%s"}}`, res, []string{"processing", "done", "error"}[i%3]))
		want[res] = append(want[res], id)
		ids = append(ids, id)
	}
	deadline := time.Now().Add(15 * time.Second)
	for len(s.AttemptErrors(ids)) == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	errs := s.AttemptErrors(ids)
	if len(errs) == 0 || !strings.Contains(errs[0], "UNKNOWN_TOPIC_OR_PARTITION") || !strings.Contains(errs[0], `"late-topic"`) {
		t.Fatalf("attempt errors before the topic exists: %q", errs)
	}
	createTopic(t, c.ListenAddrs(), "late-topic", 4)
	s.WaitDelivered(ids, 60*time.Second)
	got := byResource(t, secret, consume(t, c.ListenAddrs(), "late-topic", len(ids)))
	for res, w := range want {
		if !slices.Equal(got[res], w) {
			t.Errorf("resource %s: records %v, want %v", res, got[res], w)
		}
	}
}

// A broker stopped mid-load (the kfake cluster closed, then a new one
// started on the same ports and data directory) loses nothing: every
// event is in the topic, in posting order per resource, and the attempts
// made while it was down record the broker's error.
func TestBrokerStoppedMidLoad(t *testing.T) {
	ports := []int{freePort(t), freePort(t)}
	opts := []kfake.Opt{kfake.NumBrokers(2), kfake.Ports(ports...), kfake.DataDir(t.TempDir()), kfake.SeedTopics(4, "events")}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	var cmu sync.Mutex
	t.Cleanup(func() { cmu.Lock(); c.Close(); cmu.Unlock() })
	addrs := c.ListenAddrs()
	retry := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond}
	for range 120 {
		retry = append(retry, time.Second)
	}
	s := newStack(t, retry, 2*time.Second)
	_, secret := s.endpoint(addrs, "events")

	const total, resources = 600, 8
	want := map[string][]string{}
	var ids []string
	for i := range total {
		if i == total/3 {
			cmu.Lock()
			c.Close()
			cmu.Unlock()
		}
		if i == 2*total/3 {
			// Let attempts fail against the stopped broker before it returns.
			deadline := time.Now().Add(15 * time.Second)
			for len(s.AttemptErrors(ids[total/3:])) == 0 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			nc, err := kfake.NewCluster(opts...)
			if err != nil {
				t.Fatalf("restart the cluster on ports %v: %v", ports, err)
			}
			cmu.Lock()
			c = nc
			cmu.Unlock()
		}
		res := fmt.Sprintf("vid-%d", i%resources)
		id := s.Post(fmt.Sprintf(`{"event":"media.update.status","data":{"id":%q,"status":"done"}}`, res))
		want[res] = append(want[res], id)
		ids = append(ids, id)
	}
	s.WaitDelivered(ids, 150*time.Second)

	errs := s.AttemptErrors(ids)
	if len(errs) == 0 {
		t.Fatal("no attempt failed while the broker was down")
	}
	named := 0
	for _, e := range errs {
		if strings.Contains(e, "kafka") || strings.Contains(e, addrs[0]) {
			named++
		}
	}
	if named == 0 {
		t.Errorf("attempt errors do not name the broker: %q", errs[:min(5, len(errs))])
	}
	t.Logf("%d failed attempts while the broker was down, e.g. %q", len(errs), errs[0])

	recs := consume(t, addrs, "events", total)
	count := map[string]int{}
	for _, r := range recs {
		count[header(r, kinehook.HeaderID)]++
	}
	if len(count) != total {
		t.Errorf("%d distinct events in the topic, want %d", len(count), total)
	}
	dups := 0
	for _, n := range count {
		dups += n - 1
	}
	// A record whose attempt timed out while its request was in flight may
	// be stored and then retried: at least once, like a webhook.
	t.Logf("%d records, %d distinct, %d stored twice", len(recs), len(count), dups)
	got := byResource(t, secret, recs)
	for res, w := range want {
		if !slices.Equal(slices.Compact(got[res]), w) {
			t.Errorf("resource %s: %d records, order kept %v", res, len(got[res]), slices.Equal(slices.Compact(got[res]), w))
		}
	}
}
