package nats_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/app"
	"github.com/kinehook/kinehook/delivery"
	khttp "github.com/kinehook/kinehook/http"
	natsdest "github.com/kinehook/kinehook/nats"
	"github.com/kinehook/kinehook/sqlite"
	"github.com/kinehook/kinehook/webhook"
)

const adminKey = "kh_admin_nats_test"

// stack is kinehook's API, engine and SQLite store with the NATS transport
// wired as cmd/kinehook wires it.
type stack struct {
	t        *testing.T
	api      *httptest.Server
	store    *sqlite.Store
	pid, key string
}

func newStack(t *testing.T, retry []time.Duration, timeout time.Duration) *stack {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "kinehook.db"), sqlite.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	tr := natsdest.New(natsdest.Options{Dial: allowLoopback, ReconnectWait: 100 * time.Millisecond})
	eng, err := delivery.New(delivery.Config{Store: st, RetrySchedule: retry, RequestTimeout: timeout, BreakerThreshold: -1,
		Transports: map[string]delivery.Transport{delivery.TransportWebhook: webhook.New(webhook.Options{}), kinehook.EndpointNATS: tr}})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	a, err := app.New(app.Config{Store: st, Dispatcher: eng, AdminKeyHash: kinehook.HashKey(adminKey), AllowPrivateNetworks: true,
		Destinations: []kinehook.DestinationType{natsdest.Type{}}})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := khttp.NewServer(khttp.Config{Store: st, Dispatcher: eng, App: a, RateLimit: -1})
	if err != nil {
		t.Fatal(err)
	}
	s := &stack{t: t, api: httptest.NewServer(srv), store: st}
	t.Cleanup(func() {
		s.api.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = eng.Shutdown(ctx) // closes the transport's connections
		_ = st.Close()
	})
	var p struct{ ID, APIKey string }
	s.call("POST", "/v1/projects", adminKey, `{"name":"nats"}`, 201, &struct {
		ID     *string `json:"id"`
		APIKey *string `json:"api_key"`
	}{&p.ID, &p.APIKey})
	s.pid, s.key = p.ID, p.APIKey
	return s
}

// call sends a request and decodes the answer into out (when not nil).
func (s *stack) call(method, path, key, body string, status int, out any) []byte {
	s.t.Helper()
	req, err := http.NewRequest(method, s.api.URL+path, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != status {
		s.t.Fatalf("%s %s = %d %s, want %d", method, path, res.StatusCode, b, status)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			s.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	return b
}

// endpoint creates a NATS endpoint and returns its id and signing secret.
func (s *stack) endpoint(url, subject string) (string, string) {
	var ep struct{ ID, Secret, Type string }
	s.call("POST", "/v1/projects/"+s.pid+"/endpoints", s.key,
		fmt.Sprintf(`{"type":"nats","config":{"url":%q,"subject":%q}}`, url, subject), 201, &ep)
	if ep.Type != "nats" {
		s.t.Fatalf("endpoint type %q", ep.Type)
	}
	return ep.ID, ep.Secret
}

// post publishes an event through the API and returns its id.
func (s *stack) post(body string) string {
	var ev struct{ ID string }
	s.call("POST", "/v1/projects/"+s.pid+"/events", s.key, body, 202, &ev)
	return ev.ID
}

// waitDelivered waits until every delivery of the events succeeded.
func (s *stack) waitDelivered(ids []string, within time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(within)
	for _, id := range ids {
		for {
			ds, err := s.store.ListDeliveries(context.Background(), s.pid, id)
			if err != nil {
				s.t.Fatal(err)
			}
			if len(ds) > 0 && ds[0].Status == kinehook.DeliverySucceeded {
				break
			}
			if time.Now().After(deadline) {
				st := "none"
				if len(ds) > 0 {
					st = fmt.Sprintf("%s after %d attempts: %s", ds[0].Status, ds[0].Attempts, ds[0].LastError)
				}
				s.t.Fatalf("event %s not delivered within %s: %s", id, within, st)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// attemptErrors are the errors recorded on the attempts of the events'
// deliveries.
func (s *stack) attemptErrors(ids []string) []string {
	s.t.Helper()
	var out []string
	for _, id := range ids {
		ds, err := s.store.ListDeliveries(context.Background(), s.pid, id)
		if err != nil {
			s.t.Fatal(err)
		}
		for _, d := range ds {
			as, err := s.store.ListAttempts(context.Background(), s.pid, d.ID)
			if err != nil {
				s.t.Fatal(err)
			}
			for _, a := range as {
				if a.Error != "" {
					out = append(out, a.Error)
				}
			}
		}
	}
	return out
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
		id := s.post(body)
		posted[id] = body
		ids = append(ids, id)
	}
	s.waitDelivered(ids, 30*time.Second)
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
		id := s.post(fmt.Sprintf(`{"event":"media.update.status","data":{"id":%q,"status":"%s"}}`, res, []string{"processing", "done", "error"}[i%3]))
		want[res] = append(want[res], id)
		ids = append(ids, id)
	}
	deadline := time.Now().Add(15 * time.Second)
	for len(s.attemptErrors(ids)) == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	errs := s.attemptErrors(ids)
	if len(errs) == 0 || !strings.Contains(errs[0], "no JetStream stream bound to subject") {
		t.Fatalf("attempt errors before the stream exists: %q", errs)
	}
	createStream(t, js, stream, subject)
	s.waitDelivered(ids, 60*time.Second)
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
			for len(s.attemptErrors(ids[total/3:])) == 0 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			srv.start()
		}
		res := fmt.Sprintf("vid-%d", i%resources)
		id := s.post(fmt.Sprintf(`{"event":"media.update.status","data":{"id":%q,"status":"done"}}`, res))
		mu.Lock()
		want[res] = append(want[res], id)
		ids = append(ids, id)
		mu.Unlock()
	}
	<-killed
	s.waitDelivered(ids, 150*time.Second)

	errs := s.attemptErrors(ids)
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
