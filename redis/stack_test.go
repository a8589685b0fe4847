package redis_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kinehook/kinehook/internal/transporttest"

	goredis "github.com/redis/go-redis/v9"

	"github.com/kinehook/kinehook"
	redisdest "github.com/kinehook/kinehook/redis"
)

// stack is transporttest's stack with the Redis transport.
type stack struct{ *transporttest.Stack }

func newStack(t *testing.T, retry []time.Duration, timeout time.Duration) *stack {
	t.Helper()
	return &stack{transporttest.New(t, redisdest.Type{}, redisdest.New(redisdest.Options{Dial: allowLoopback}), retry, timeout)}
}

// endpoint creates a Redis endpoint and returns its id and signing secret.
func (s *stack) endpoint(url, stream string) (string, string) {
	var ep struct{ ID, Secret, Type string }
	s.Call("POST", "/v1/projects/"+s.PID+"/endpoints", s.Key,
		fmt.Sprintf(`{"type":"redis","config":{"url":%q,"stream":%q}}`, url, stream), 201, &ep)
	if ep.Type != "redis" {
		s.T.Fatalf("endpoint type %q", ep.Type)
	}
	return ep.ID, ep.Secret
}

// The seven event types of the catalog, posted to the API (each spelled
// with its own spacing), arrive in the stream with the body as posted, the
// event type, and signature fields the Standard Webhooks verification
// accepts.
func TestCatalogThroughRedis(t *testing.T) {
	rc := redisClient(t, "127.0.0.1:6379")
	stream := uniqueStream(t, rc)
	s := newStack(t, []time.Duration{50 * time.Millisecond}, 5*time.Second)
	_, secret := s.endpoint(sharedURL, stream)
	if len(kinehook.EventTypes) != 7 {
		t.Fatalf("the catalog has %d types, this test expects 7", len(kinehook.EventTypes))
	}
	type posted struct{ body, typ string }
	want := map[string]posted{} // event id -> what was posted
	var ids []string
	for i, typ := range kinehook.EventTypes {
		var buf bytes.Buffer
		if err := json.Indent(&buf, kinehook.SampleEvent(typ), "", strings.Repeat(" ", i%3)); err != nil {
			t.Fatal(err)
		}
		id := s.Post(buf.String())
		want[id] = posted{buf.String(), string(typ)}
		ids = append(ids, id)
	}
	s.WaitDelivered(ids, 30*time.Second)
	msgs := entries(t, rc, stream)
	if len(msgs) != len(ids) {
		t.Fatalf("%d entries in the stream, want %d", len(msgs), len(ids))
	}
	seen := map[string]bool{}
	for _, m := range msgs {
		id := field(m, kinehook.HeaderID)
		p, ok := want[id]
		if !ok {
			t.Errorf("entry %s has webhook-id %q, no event posted", m.ID, id)
			continue
		}
		seen[id] = true
		if field(m, "body") != p.body {
			t.Errorf("event %s: body %q, want the posted body %q", id, field(m, "body"), p.body)
		}
		if field(m, "event") != p.typ {
			t.Errorf("event %s: event field %q, want %q", id, field(m, "event"), p.typ)
		}
		verifyEntry(t, secret, m)
	}
	if len(seen) != len(ids) {
		t.Errorf("%d of %d events arrived", len(seen), len(ids))
	}
	// A password in the url is refused, pointing to credentials.
	b := s.Call("POST", "/v1/projects/"+s.PID+"/endpoints", s.Key,
		fmt.Sprintf(`{"type":"redis","config":{"url":"redis://:hunter2@127.0.0.1:6379/0","stream":%q}}`, stream), 422, nil)
	if !strings.Contains(string(b), `"config.url"`) || !strings.Contains(string(b), "give it in credentials") || strings.Contains(string(b), "hunter2") {
		t.Errorf("password in the url: %s", b)
	}
	// The attempt records the entry id as its response.
	ds, err := s.Store.ListDeliveries(context.Background(), s.PID, ids[0])
	if err != nil || len(ds) != 1 {
		t.Fatalf("deliveries %v, %v", ds, err)
	}
	as, err := s.Store.ListAttempts(context.Background(), s.PID, ds[0].ID)
	if err != nil || len(as) == 0 {
		t.Fatalf("attempts %v, %v", as, err)
	}
	entryID := ""
	for _, m := range msgs {
		if field(m, kinehook.HeaderID) == ids[0] {
			entryID = m.ID
		}
	}
	if as[len(as)-1].ResponseBody != entryID {
		t.Errorf("attempt response %q, want the entry id %q", as[len(as)-1].ResponseBody, entryID)
	}
}

// Per-resource order holds through retries: while the key holds a string,
// every XADD is refused (WRONGTYPE, recorded with the server's words) and
// retried; once the key is deleted, each resource's events arrive in the
// order they were posted, none lost.
func TestOrderThroughRetries(t *testing.T) {
	rc := redisClient(t, "127.0.0.1:6379")
	stream := uniqueStream(t, rc)
	if err := rc.Set(t.Context(), stream, "in the way", 0).Err(); err != nil {
		t.Fatal(err)
	}
	retry := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond}
	for range 100 {
		retry = append(retry, 300*time.Millisecond) // 30 s: the key goes long before, even on a loaded machine
	}
	s := newStack(t, retry, 2*time.Second)
	_, secret := s.endpoint(sharedURL, stream)
	want := map[string][]string{} // resource -> event ids in posting order
	var ids []string
	for i := range 60 {
		res := fmt.Sprintf("vid-%d", i%4)
		id := s.Post(fmt.Sprintf(`{"event":"media.update.status","data":{"id":%q,"status":"%s"}}`, res, []string{"processing", "done", "error"}[i%3]))
		want[res] = append(want[res], id)
		ids = append(ids, id)
	}
	deadline := time.Now().Add(15 * time.Second)
	for len(s.AttemptErrors(ids)) < 8 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	errs := s.AttemptErrors(ids)
	if len(errs) == 0 || !strings.Contains(errs[0], "WRONGTYPE") || !strings.Contains(errs[0], stream) {
		t.Fatalf("attempt errors while the key holds a string: %q", errs)
	}
	if err := rc.Del(t.Context(), stream).Err(); err != nil {
		t.Fatal(err)
	}
	s.WaitDelivered(ids, 60*time.Second)
	got := map[string][]string{}
	for _, m := range entries(t, rc, stream) {
		verifyEntry(t, secret, m)
		got[resourceOf(t, m)] = append(got[resourceOf(t, m)], field(m, kinehook.HeaderID))
	}
	for res, w := range want {
		if !slices.Equal(got[res], w) {
			t.Errorf("resource %s: stream order %v, want %v", res, got[res], w)
		}
	}
}

// resourceOf is the data.id of an entry's body.
func resourceOf(t testing.TB, m goredis.XMessage) string {
	t.Helper()
	var ev struct{ Data struct{ ID string } }
	if err := json.Unmarshal([]byte(field(m, "body")), &ev); err != nil {
		t.Fatalf("entry %s: body: %v", m.ID, err)
	}
	return ev.Data.ID
}

// A broker stopped mid-load loses nothing: a redis-server of the test's
// own, writing every change to its append-only file before answering
// (appendfsync always), is killed with SIGKILL a third of the way through
// and started again on the same port and files; every event is in the
// stream afterwards, in posting order per resource (the first occurrence of
// each: an XADD applied just before the kill, its reply lost, is added
// again by the retry, which is at least once and counted here), and the
// attempts made while it was down record the error.
func TestBrokerKilledMidLoad(t *testing.T) {
	srv := startServer(t, "--appendonly", "yes", "--appendfsync", "always")
	stream := "kinehook:test:killed"
	retry := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond}
	for range 120 {
		retry = append(retry, time.Second) // two minutes: the server is back long before
	}
	s := newStack(t, retry, time.Second)
	_, secret := s.endpoint(srv.url, stream)

	const total, resources = 600, 8
	want := map[string][]string{}
	var ids []string
	for i := range total {
		if i == total/3 {
			srv.kill()
		}
		if i == 2*total/3 {
			// Let attempts fail against the dead server before it returns.
			deadline := time.Now().Add(10 * time.Second)
			for len(s.AttemptErrors(ids[total/3:])) == 0 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			srv.start()
		}
		res := fmt.Sprintf("vid-%d", i%resources)
		id := s.Post(fmt.Sprintf(`{"event":"media.update.status","data":{"id":%q,"status":"done"}}`, res))
		want[res] = append(want[res], id)
		ids = append(ids, id)
	}
	s.WaitDelivered(ids, 150*time.Second)

	errs := s.AttemptErrors(ids)
	if len(errs) == 0 {
		t.Fatal("no attempt failed while the server was down")
	}
	named := 0
	for _, e := range errs {
		if strings.Contains(e, srv.url) || strings.Contains(e, "127.0.0.1:"+srv.port) {
			named++
		}
	}
	if named == 0 {
		t.Errorf("attempt errors do not name the server: %q", errs[:min(5, len(errs))])
	}
	t.Logf("%d failed attempts while the server was down, e.g. %q", len(errs), errs[0])

	rc := redisClient(t, "127.0.0.1:"+srv.port)
	got := map[string][]string{}
	count := map[string]int{}
	for _, m := range entries(t, rc, stream) {
		verifyEntry(t, secret, m)
		id := field(m, kinehook.HeaderID)
		count[id]++
		if count[id] == 1 {
			got[resourceOf(t, m)] = append(got[resourceOf(t, m)], id)
		}
	}
	if len(count) != total {
		t.Errorf("%d distinct events in the stream after the restart, want %d", len(count), total)
	}
	dups := 0
	for _, n := range count {
		dups += n - 1
	}
	// Only a resource queue's head is ever in flight, so at most one XADD
	// per resource can be applied with its reply lost at the kill.
	if dups > resources {
		t.Errorf("%d duplicates: more than the %d XADDs in flight at the kill could make", dups, resources)
	}
	for res, w := range want {
		if !slices.Equal(got[res], w) {
			t.Errorf("resource %s: %d in the stream, order kept %v", res, len(got[res]), slices.Equal(got[res], w))
		}
	}
}
