package nats_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kinehook/kinehook/internal/transporttest"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kinehook/kinehook"
	natsdest "github.com/kinehook/kinehook/nats"
)

// stack is transporttest's stack with the NATS transport.
type stack struct{ *transporttest.Stack }

func newStack(t *testing.T, retry []time.Duration, timeout time.Duration) *stack {
	t.Helper()
	return &stack{transporttest.New(t, natsdest.Type{}, natsdest.New(natsdest.Options{Dial: allowLoopback, ReconnectWait: 100 * time.Millisecond}), retry, timeout)}
}

// endpoint creates a NATS endpoint and returns its id and signing secret.
func (s *stack) endpoint(url, subject string) (string, string) {
	var ep struct{ ID, Secret, Type string }
	s.Call("POST", "/v1/projects/"+s.PID+"/endpoints", s.Key,
		fmt.Sprintf(`{"type":"nats","config":{"url":%q,"subject":%q}}`, url, subject), 201, &ep)
	if ep.Type != "nats" {
		s.T.Fatalf("endpoint type %q", ep.Type)
	}
	return ep.ID, ep.Secret
}

// verifyWith checks a stream message's signature with the endpoint's secret.
func verifyWith(t testing.TB, secret string, m *jetstream.RawStreamMsg) {
	t.Helper()
	v, err := kinehook.NewVerifier([]string{secret})
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	for _, k := range []string{kinehook.HeaderID, kinehook.HeaderTimestamp, kinehook.HeaderSignature} {
		h.Set(k, m.Header.Get(k))
	}
	if err := v.Verify(h, m.Data, time.Now()); err != nil {
		t.Errorf("message %d: signature does not verify: %v", m.Sequence, err)
	}
	if m.Header.Get("Nats-Msg-Id") != m.Header.Get(kinehook.HeaderID) {
		t.Errorf("message %d: Nats-Msg-Id %q, webhook-id %q", m.Sequence, m.Header.Get("Nats-Msg-Id"), m.Header.Get(kinehook.HeaderID))
	}
}

// The seven event types of the catalog, posted to the API (each spelled
// with its own spacing), arrive in the stream with the body as posted and
// signature headers the Standard Webhooks verification accepts.
func TestCatalogThroughJetStream(t *testing.T) {
	_, js := jsClient(t, sharedURL)
	subject, stream := uniqueSubject(t)
	createStream(t, js, stream, subject)
	s := newStack(t, []time.Duration{50 * time.Millisecond}, 5*time.Second)
	_, secret := s.endpoint(sharedURL, subject)
	if len(kinehook.EventTypes) != 7 {
		t.Fatalf("the catalog has %d types, this test expects 7", len(kinehook.EventTypes))
	}
	posted := map[string]string{} // event id -> body
	var ids []string
	for i, typ := range kinehook.EventTypes {
		var buf bytes.Buffer
		if err := json.Indent(&buf, kinehook.SampleEvent(typ), "", strings.Repeat(" ", i%3)); err != nil {
			t.Fatal(err)
		}
		body := buf.String()
		id := s.Post(body)
		posted[id] = body
		ids = append(ids, id)
	}
	s.WaitDelivered(ids, 30*time.Second)
	msgs := streamMsgs(t, js, stream)
	if len(msgs) != len(ids) {
		t.Fatalf("%d messages in the stream, want %d", len(msgs), len(ids))
	}
	seen := map[string]bool{}
	for _, m := range msgs {
		id := m.Header.Get(kinehook.HeaderID)
		body, ok := posted[id]
		if !ok {
			t.Errorf("message %d has webhook-id %q, no event posted", m.Sequence, id)
			continue
		}
		seen[id] = true
		if string(m.Data) != body {
			t.Errorf("event %s: data %q, want the posted body %q", id, m.Data, body)
		}
		verifyWith(t, secret, m)
	}
	if len(seen) != len(ids) {
		t.Errorf("%d of %d events arrived", len(seen), len(ids))
	}
}

// Per-resource order holds through retries: with no stream on the subject
// at first, every attempt is refused (recorded with the broker's words)
// and retried; once the stream exists, each resource's events arrive in
// the order they were posted, none lost.
func TestOrderThroughRetries(t *testing.T) {
	_, js := jsClient(t, sharedURL)
	subject, stream := uniqueSubject(t)
	retry := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond}
	for range 100 {
		retry = append(retry, 300*time.Millisecond) // 30 s: the stream comes long before, even on a loaded machine
	}
	s := newStack(t, retry, 2*time.Second)
	_, secret := s.endpoint(sharedURL, subject)
	want := map[string][]string{} // resource -> event ids in posting order
	var ids []string
	for i := range 60 {
		res := fmt.Sprintf("vid-%d", i%4)
		id := s.Post(fmt.Sprintf(`{"event":"media.update.status","data":{"id":%q,"status":"%s"}}`, res, []string{"processing", "done", "error"}[i%3]))
		want[res] = append(want[res], id)
		ids = append(ids, id)
	}
	deadline := time.Now().Add(15 * time.Second)
	for len(s.AttemptErrors(ids)) == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	errs := s.AttemptErrors(ids)
	if len(errs) == 0 || !strings.Contains(errs[0], "no JetStream stream bound to subject") {
		t.Fatalf("attempt errors before the stream exists: %q", errs)
	}
	createStream(t, js, stream, subject)
	s.WaitDelivered(ids, 60*time.Second)
	got := map[string][]string{}
	for _, m := range streamMsgs(t, js, stream) {
		verifyWith(t, secret, m)
		var ev struct{ Data struct{ ID string } }
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			t.Fatal(err)
		}
		got[ev.Data.ID] = append(got[ev.Data.ID], m.Header.Get(kinehook.HeaderID))
	}
	for res, w := range want {
		if !slices.Equal(got[res], w) {
			t.Errorf("resource %s: stream order %v, want %v", res, got[res], w)
		}
	}
}

// A broker stopped mid-load (a nats-server of the test's own, killed with
// SIGKILL, then started again on its store) loses nothing: every event is
// in the stream once, in posting order per resource, and the attempts made
// while it was down record the broker's error.
func TestBrokerKilledMidLoad(t *testing.T) {
	srv := startServer(t)
	_, js := jsClient(t, srv.url)
	subject, stream := uniqueSubject(t)
	createStream(t, js, stream, subject)
	// Retries every second for two minutes: the broker is back long before,
	// even on a loaded machine.
	retry := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond}
	for range 120 {
		retry = append(retry, time.Second)
	}
	s := newStack(t, retry, time.Second)
	_, secret := s.endpoint(srv.url, subject)

	const total, resources = 600, 8
	want := map[string][]string{}
	var ids []string
	var mu sync.Mutex
	killed := make(chan struct{})
	for i := range total {
		if i == total/3 {
			srv.kill()
			close(killed)
		}
		if i == 2*total/3 {
			// Let attempts fail against the dead broker before it returns.
			deadline := time.Now().Add(10 * time.Second)
			for len(s.AttemptErrors(ids[total/3:])) == 0 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			srv.start()
		}
		res := fmt.Sprintf("vid-%d", i%resources)
		id := s.Post(fmt.Sprintf(`{"event":"media.update.status","data":{"id":%q,"status":"done"}}`, res))
		mu.Lock()
		want[res] = append(want[res], id)
		ids = append(ids, id)
		mu.Unlock()
	}
	<-killed
	s.WaitDelivered(ids, 150*time.Second)

	errs := s.AttemptErrors(ids)
	if len(errs) == 0 {
		t.Fatal("no attempt failed while the broker was down")
	}
	broker := 0
	for _, e := range errs {
		if strings.Contains(e, srv.url) || strings.Contains(e, "nats") {
			broker++
		}
	}
	if broker == 0 {
		t.Errorf("attempt errors do not name the broker: %q", errs[:min(5, len(errs))])
	}
	t.Logf("%d failed attempts while the broker was down, e.g. %q", len(errs), errs[0])

	_, js = jsClient(t, srv.url) // the first client's connection died with the server
	got := map[string][]string{}
	ids2 := map[string]int{}
	for _, m := range streamMsgs(t, js, stream) {
		verifyWith(t, secret, m)
		var ev struct{ Data struct{ ID string } }
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			t.Fatal(err)
		}
		id := m.Header.Get(kinehook.HeaderID)
		ids2[id]++
		got[ev.Data.ID] = append(got[ev.Data.ID], id)
	}
	if len(ids2) != total {
		t.Errorf("%d distinct events in the stream, want %d", len(ids2), total)
	}
	for id, n := range ids2 {
		if n > 1 {
			t.Errorf("event %s stored %d times", id, n)
		}
	}
	for res, w := range want {
		if !slices.Equal(got[res], w) {
			t.Errorf("resource %s: %d in the stream, order kept %v", res, len(got[res]), slices.Equal(got[res], w))
		}
	}
}
