package delivery

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/kinehook/kinehook"
)

func within(t *testing.T, what string, got, base time.Time, d time.Duration) {
	t.Helper()
	lo, hi := base.Add(d-d/10), base.Add(d+d/10)
	if got.Before(lo) || got.After(hi) {
		t.Errorf("%s = %v, want within [%v, %v] (%v +/-10%%)", what, got, lo, hi, d)
	}
}

// The schedule: len+1 attempts, each retry after its delay +/-10%, then failed.
func TestScheduleAndFinalFailure(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	s := newSink(t)
	s.status(500)
	h.endpoint(s.srv.URL, nil)
	res := h.publish("vid-1")
	if len(res.Deliveries) != 1 {
		t.Fatalf("deliveries = %d, want 1", len(res.Deliveries))
	}
	did := res.Deliveries[0].ID
	schedule := []time.Duration{time.Minute, 2 * time.Minute, 3 * time.Minute}
	first := s.next(t)
	if first.id != res.Event.ID {
		t.Fatalf("webhook-id = %q, want the event id %q", first.id, res.Event.ID)
	}
	for i, delay := range schedule {
		d := h.waitStatus(did, kinehook.DeliveryRetrying, i+1)
		h.idle()
		within(t, "NextAttemptAt", d.NextAttemptAt, h.clock.Now(), delay)
		h.clock.AdvanceTo(d.NextAttemptAt.Add(-time.Second))
		s.none(t, 20*time.Millisecond)
		h.clock.AdvanceTo(d.NextAttemptAt)
		r := s.next(t)
		if r.id != res.Event.ID {
			t.Errorf("retry %d: webhook-id = %q, want %q (same on every attempt)", i+1, r.id, res.Event.ID)
		}
	}
	d := h.waitStatus(did, kinehook.DeliveryFailed, len(schedule)+1)
	if d.LastStatusCode != 500 {
		t.Errorf("LastStatusCode = %d, want 500", d.LastStatusCode)
	}
	h.idle()
	h.clock.Advance(24 * time.Hour)
	s.none(t, 30*time.Millisecond)
	atts := h.attempts(did)
	if len(atts) != len(schedule)+1 {
		t.Fatalf("recorded attempts = %d, want %d", len(atts), len(schedule)+1)
	}
	for _, a := range atts {
		if a.StatusCode != 500 || a.Error == "" {
			t.Errorf("attempt = %+v, want status 500 with an error text", a)
		}
	}
}

func TestJitterBounds(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) { c.Rand = rand.NewPCG(1, 2) })
	e := h.eng
	for _, d := range []time.Duration{5 * time.Second, 5 * time.Minute, 10 * time.Hour} {
		lo, hi := d, d
		for range 20000 {
			j := e.jitter(d)
			lo, hi = min(lo, j), max(hi, j)
		}
		if lo < d-d/10 || hi > d+d/10 {
			t.Errorf("jitter(%v) range [%v, %v] leaves +/-10%%", d, lo, hi)
		}
		if lo > d-d/20 || hi < d+d/20 {
			t.Errorf("jitter(%v) range [%v, %v] does not spread over +/-10%%", d, lo, hi)
		}
	}
}

// A resource's later event waits for its earlier one's retry; another
// resource's event does not.
func TestOrderingUnderRetries(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	s := newSink(t)
	failFirst := true
	s.setHandler(func(w http.ResponseWriter, r sinkReq) {
		if r.resource == "A" && failFirst {
			failFirst = false
			w.WriteHeader(503)
			return
		}
		w.WriteHeader(200)
	})
	h.endpoint(s.srv.URL, nil)
	a1 := h.publish("A")
	got := s.next(t)
	if got.id != a1.Event.ID {
		t.Fatalf("first request %s, want A1", got.resource)
	}
	h.waitStatus(a1.Deliveries[0].ID, kinehook.DeliveryRetrying, 1)
	a2 := h.publish("A")
	b1 := h.publish("B")
	if r := s.next(t); r.id != b1.Event.ID {
		t.Fatalf("got %s (%s), want B1 while A1 waits for its retry", r.id, r.resource)
	}
	h.waitStatus(b1.Deliveries[0].ID, kinehook.DeliverySucceeded, 1)
	s.none(t, 30*time.Millisecond)
	if d := h.delivery(a2.Deliveries[0].ID); d.Attempts != 0 || d.Status != kinehook.DeliveryPending {
		t.Fatalf("A2 = %s/%d attempts, want pending and untried while A1 retries", d.Status, d.Attempts)
	}
	h.idle()
	h.clock.Advance(70 * time.Second)
	rs := s.take(t, 2)
	if rs[0].id != a1.Event.ID || rs[1].id != a2.Event.ID {
		t.Fatalf("after the retry got %s then %s, want A1 then A2", rs[0].id, rs[1].id)
	}
	h.waitStatus(a1.Deliveries[0].ID, kinehook.DeliverySucceeded, 2)
	h.waitStatus(a2.Deliveries[0].ID, kinehook.DeliverySucceeded, 1)
}

// Many events of one resource go one at a time, in order.
func TestOrderingManyEvents(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	s := newSink(t)
	h.endpoint(s.srv.URL, nil)
	var ids []string
	for range 30 {
		ids = append(ids, h.publish("same").Event.ID)
	}
	rs := s.take(t, 30)
	for i, r := range rs {
		if r.id != ids[i] {
			t.Fatalf("request %d is %s, want %s (acceptance order)", i, r.id, ids[i])
		}
	}
	if m := s.maxConc.Load(); m != 1 {
		t.Errorf("max concurrent requests for one resource = %d, want 1", m)
	}
}

// One delivery per enabled matching endpoint, same event id everywhere.
func TestFanOut(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	s1, s2, s3, s4 := newSink(t), newSink(t), newSink(t), newSink(t)
	h.endpoint(s1.srv.URL, nil)
	h.endpoint(s2.srv.URL, func(e *kinehook.Endpoint) { e.EventTypes = []string{"media.*"} })
	h.endpoint(s3.srv.URL, func(e *kinehook.Endpoint) { e.EventTypes = []string{"live.*"} })
	h.endpoint(s4.srv.URL, func(e *kinehook.Endpoint) { e.Disabled = true })
	res := h.publish("vid")
	if len(res.Deliveries) != 2 {
		t.Fatalf("deliveries = %d, want 2 (all-types and media.* endpoints)", len(res.Deliveries))
	}
	r1, r2 := s1.next(t), s2.next(t)
	if r1.id != res.Event.ID || r2.id != res.Event.ID {
		t.Errorf("webhook-ids %s, %s; want %s", r1.id, r2.id, res.Event.ID)
	}
	s3.none(t, 20*time.Millisecond)
	s4.none(t, 1*time.Millisecond)
	for _, d := range res.Deliveries {
		h.waitStatus(d.ID, kinehook.DeliverySucceeded, 1)
	}
}

// Idempotent duplicates schedule nothing.
func TestDuplicateSchedulesNothing(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	s := newSink(t)
	h.endpoint(s.srv.URL, nil)
	ev := h.event("vid")
	ev.IdempotencyKey = "k1"
	first, err := h.eng.Publish(t.Context(), ev)
	if err != nil {
		t.Fatal(err)
	}
	s.next(t)
	again := h.event("vid")
	again.IdempotencyKey = "k1"
	dup, err := h.eng.Publish(t.Context(), again)
	if err != nil {
		t.Fatal(err)
	}
	if !dup.Duplicate || dup.Event.ID != first.Event.ID {
		t.Fatalf("second publish = %+v, want the first event as a duplicate", dup)
	}
	s.none(t, 30*time.Millisecond)
}

func TestRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	target := newSink(t)
	s := newSink(t)
	s.setHandler(func(w http.ResponseWriter, r sinkReq) {
		w.Header().Set("Location", target.srv.URL+"/elsewhere")
		w.WriteHeader(http.StatusTemporaryRedirect)
	})
	h.endpoint(s.srv.URL, nil)
	res := h.publish("vid")
	s.next(t)
	d := h.waitStatus(res.Deliveries[0].ID, kinehook.DeliveryRetrying, 1)
	if d.LastStatusCode != http.StatusTemporaryRedirect {
		t.Errorf("LastStatusCode = %d, want 307", d.LastStatusCode)
	}
	target.none(t, 20*time.Millisecond)
	if a := h.attempts(d.ID); len(a) != 1 || !strings.Contains(a[0].Error, "redirect") {
		t.Errorf("attempts = %+v, want one saying redirects are not followed", a)
	}
}

// The request: exact body, headers, signature (checked with the reference
// library), Basic Auth, custom headers; the recorded attempt hides credentials.
func TestRequestHeadersAndSignature(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	s := newSink(t)
	s.setHandler(func(w http.ResponseWriter, r sinkReq) {
		w.WriteHeader(200)
		_, _ = w.Write(bytes.Repeat([]byte("x"), 10000))
	})
	h.endpoint(s.srv.URL+"/hook", func(e *kinehook.Endpoint) {
		e.Headers = map[string]string{"X-Custom": "yes", "x-api-key": "key-0123456789abcdef"}
		e.Login, e.Password = "user", "pa:ss"
	})
	// The fake clock starts at real time, within the reference library's tolerance.
	ev := h.event("vid-9")
	res, err := h.eng.Publish(t.Context(), ev)
	if err != nil {
		t.Fatal(err)
	}
	r := s.next(t)
	if !bytes.Equal(r.body, ev.Payload) {
		t.Errorf("body = %s, want exactly %s", r.body, ev.Payload)
	}
	if r.url != "/hook" {
		t.Errorf("path = %q", r.url)
	}
	for k, want := range map[string]string{
		"Content-Type":    "application/json",
		"User-Agent":      "kinehook/" + Version,
		"X-Custom":        "yes",
		"X-Api-Key":       "key-0123456789abcdef", // the real value is sent
		kinehook.HeaderID: res.Event.ID,
		"Authorization":   "Basic " + base64.StdEncoding.EncodeToString([]byte("user:pa:ss")),
	} {
		if got := r.header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if got, want := r.header.Get(kinehook.HeaderTimestamp), h.clock.Now().Unix(); got != strconv.FormatInt(want, 10) {
		t.Errorf("webhook-timestamp = %s, want %d", got, want)
	}
	wh, err := standardwebhooks.NewWebhook(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.Verify(r.body, r.header); err != nil {
		t.Errorf("reference library rejects the signature: %v", err)
	}
	want, _ := kinehook.Sign([]string{testSecret}, res.Event.ID, h.clock.Now(), ev.Payload)
	if got := r.header.Get(kinehook.HeaderSignature); got != want {
		t.Errorf("webhook-signature = %q, want %q", got, want)
	}
	d := h.waitStatus(res.Deliveries[0].ID, kinehook.DeliverySucceeded, 1)
	a := h.attempts(d.ID)
	if len(a) != 1 {
		t.Fatalf("attempts = %d", len(a))
	}
	if len(a[0].ResponseBody) != ResponseBodyLimit {
		t.Errorf("recorded response body = %d bytes, want the first %d", len(a[0].ResponseBody), ResponseBodyLimit)
	}
	if a[0].StatusCode != 200 || a[0].DurationMS <= 0 {
		t.Errorf("attempt = status %d, %v ms", a[0].StatusCode, a[0].DurationMS)
	}
	if auth := a[0].RequestHeaders["Authorization"]; strings.Contains(auth, base64.StdEncoding.EncodeToString([]byte("user:pa:ss"))) || auth == "" {
		t.Errorf("recorded Authorization = %q, want it redacted", auth)
	}
	if a[0].RequestHeaders[http.CanonicalHeaderKey(kinehook.HeaderID)] != res.Event.ID {
		t.Errorf("recorded headers = %v, want webhook-id", a[0].RequestHeaders)
	}
	// Custom header values are recorded masked, as the API shows them.
	for k, want := range map[string]string{"X-Custom": "****", "X-Api-Key": "****cdef", "Content-Type": "application/json"} {
		if got := a[0].RequestHeaders[k]; got != want {
			t.Errorf("recorded %s = %q, want %q", k, got, want)
		}
	}
}

// Rotation: the old secret signs beside the new one until it expires.
func TestSignatureDuringRotationAndV1a(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	s := newSink(t)
	newSecret, _ := kinehook.GenerateSecret()
	h.endpoint(s.srv.URL, func(e *kinehook.Endpoint) {
		e.Secrets = []kinehook.EndpointSecret{{Value: newSecret}, {Value: testSecret, ExpiresAt: time.Now().Add(time.Hour)}}
	})
	priv, pub, err := kinehook.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	s2 := newSink(t)
	h.endpoint(s2.srv.URL, func(e *kinehook.Endpoint) {
		e.Scheme = kinehook.SchemeV1a
		e.Secrets = []kinehook.EndpointSecret{{Value: priv}}
	})
	h.publish("vid")
	r := s.next(t)
	if n := len(strings.Fields(r.header.Get(kinehook.HeaderSignature))); n != 2 {
		t.Errorf("%d signatures during rotation, want 2", n)
	}
	for _, k := range []string{newSecret, testSecret} {
		if err := kinehook.Verify([]string{k}, r.header, r.body, h.clock.Now()); err != nil {
			t.Errorf("secret %d does not verify: %v", len(k), err)
		}
	}
	r2 := s2.next(t)
	if sig := r2.header.Get(kinehook.HeaderSignature); !strings.HasPrefix(sig, "v1a,") {
		t.Errorf("v1a endpoint signature = %q", sig)
	}
	if err := kinehook.Verify([]string{pub}, r2.header, r2.body, h.clock.Now()); err != nil {
		t.Errorf("v1a signature does not verify with the public key: %v", err)
	}
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) { c.RequestTimeout = 100 * time.Millisecond })
	s := newSink(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	s.setHandler(func(w http.ResponseWriter, r sinkReq) { <-release })
	h.endpoint(s.srv.URL, nil)
	res := h.publish("vid")
	d := h.waitStatus(res.Deliveries[0].ID, kinehook.DeliveryRetrying, 1)
	a := h.attempts(d.ID)
	if len(a) != 1 || a[0].StatusCode != 0 || !strings.Contains(a[0].Error, "timeout") {
		t.Fatalf("attempts = %+v, want one timeout", a)
	}
	if a[0].DurationMS < 90 || a[0].DurationMS > 3000 {
		t.Errorf("timeout attempt took %v ms, want about 100", a[0].DurationMS)
	}
}

func TestConnectionError(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	s := newSink(t)
	url := s.srv.URL
	s.srv.Close()
	h.endpoint(url, nil)
	res := h.publish("vid")
	d := h.waitStatus(res.Deliveries[0].ID, kinehook.DeliveryRetrying, 1)
	if a := h.attempts(d.ID); len(a) != 1 || a[0].Error == "" || a[0].StatusCode != 0 {
		t.Errorf("attempts = %+v, want a connection error", a)
	}
}

// commitObserver counts group commits.
type commitObserver struct {
	NopObserver
	mu      sync.Mutex
	commits []int
}

func (o *commitObserver) IngestCommitted(n int, _ time.Duration) {
	o.mu.Lock()
	o.commits = append(o.commits, n)
	o.mu.Unlock()
}

// Concurrent publishers share commits, every one of them gets its own
// result, and the deliveries go out in acceptance order per resource.
func TestGroupCommit(t *testing.T) {
	t.Parallel()
	obs := &commitObserver{}
	h := newHarness(t, func(c *Config) { c.IngestWindow = 20 * time.Millisecond; c.Observer = obs })
	s := newSink(t)
	h.endpoint(s.srv.URL, nil)
	const n = 30
	var wg sync.WaitGroup
	ids := make(chan string, n)
	for i := range n {
		wg.Go(func() {
			res, err := h.eng.Publish(t.Context(), h.event(fmt.Sprintf("v%d", i)))
			if err != nil || res.Duplicate || len(res.Deliveries) != 1 {
				t.Errorf("publish: %+v, %v", res, err)
				return
			}
			ids <- res.Event.ID
		})
	}
	wg.Wait()
	close(ids)
	want := map[string]bool{}
	for id := range ids {
		want[id] = true
	}
	if len(want) != n {
		t.Fatalf("%d distinct events, want %d", len(want), n)
	}
	for _, r := range s.take(t, n) {
		delete(want, r.id)
	}
	if len(want) != 0 {
		t.Errorf("not delivered: %v", want)
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	total := 0
	for _, c := range obs.commits {
		total += c
	}
	if total != n || len(obs.commits) >= n {
		t.Errorf("commits %v: want %d events in fewer than %d commits", obs.commits, n, n)
	}
}

// An endpoint the engine has not been told about (created by another
// instance) is loaded from the store on its first delivery.
func TestUnknownEndpointLoadedLazily(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	s := newSink(t)
	now := time.Now().UTC()
	ep := &kinehook.Endpoint{ID: kinehook.NewID(kinehook.PrefixEndpoint), ProjectID: h.proj.ID, URL: s.srv.URL,
		Secrets: []kinehook.EndpointSecret{{Value: testSecret}}, CreatedAt: now, UpdatedAt: now}
	if err := h.store.CreateEndpoint(t.Context(), ep); err != nil {
		t.Fatal(err)
	}
	res := h.publish("A")
	if r := s.next(t); r.id != res.Event.ID {
		t.Errorf("got %s", r.id)
	}
	h.waitStatus(res.Deliveries[0].ID, kinehook.DeliverySucceeded, 1)
}

// TestInFlightAndAttemptLog checks the in-flight gauge's source while a
// request hangs, and that each attempt is logged at debug level with the id
// it is stored under (so a log line leads to the attempts API and back).
func TestInFlightAndAttemptLog(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	}))
	t.Cleanup(func() { once.Do(func() { close(release) }); sink.Close() })
	var mu sync.Mutex
	var logs strings.Builder
	w := writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return logs.Write(p) })
	read := func() string { mu.Lock(); defer mu.Unlock(); return logs.String() }
	h := newHarness(t, func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	ep := h.endpoint(sink.URL, nil)
	first := h.publish("v1")
	h.publish("v1")
	waitCond(t, "one attempt in flight", func() bool { return h.eng.InFlight() == 1 })
	if p, r := h.eng.OpenCounts(); p[ep.ID] != 2 || r[ep.ID] != 0 {
		t.Errorf("OpenCounts = pending %v retrying %v, want 2 pending", p, r)
	}
	once.Do(func() { close(release) })
	waitCond(t, "attempt logged", func() bool { return h.eng.InFlight() == 0 && strings.Contains(read(), "delivery attempt") })
	if l := read(); !strings.Contains(l, "attempt_id=att_") || !strings.Contains(l, "outcome=success") {
		t.Errorf("attempt log lacks id or outcome:\n%s", l)
	}
	did := first.Deliveries[0].ID
	var stored []*kinehook.Attempt
	waitCond(t, "attempt stored", func() bool {
		var err error
		stored, err = h.store.ListAttempts(t.Context(), h.proj.ID, did)
		return err == nil && len(stored) == 1
	})
	m := regexp.MustCompile(`attempt_id=(\S+) delivery_id=` + did).FindStringSubmatch(read())
	if m == nil || m[1] != stored[0].ID {
		t.Errorf("logged attempt id %v, stored %q:\n%s", m, stored[0].ID, read())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func waitCond(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, waitLimit)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// recordHook is the real store with a pause after each RecordAttempts
// commit, before the engine acts on it.
type recordHook struct {
	kinehook.Store
	after func()
}

func (r *recordHook) RecordAttempts(ctx context.Context, rs []kinehook.AttemptResult) error {
	err := r.Store.RecordAttempts(ctx, rs)
	r.after()
	return err
}

// A partition counts as busy until its queue has moved on after a result:
// idle means the retry's timer is armed, so a revocation or a clock moved
// right after sees it. (The count used to drop before the endpoint's lock
// was taken, and a test moving the clock then could lose the retry.)
func TestBusyUntilQueueMovesOn(t *testing.T) {
	recorded, locked := make(chan struct{}), make(chan struct{})
	var once sync.Once
	h := newHarness(t, func(c *Config) {
		c.Store = &recordHook{Store: c.Store, after: func() {
			once.Do(func() { recorded <- struct{}{}; <-locked })
		}}
	})
	s := newSink(t)
	s.status(http.StatusInternalServerError)
	ep := h.endpoint(s.srv.URL, nil)
	res := h.publish("v1")
	s.next(t)
	select {
	case <-recorded:
	case <-time.After(waitLimit):
		t.Fatal("the attempt was not recorded")
	}
	es := h.eng.endpointState(h.proj.ID, ep.ID)
	es.mu.Lock() // the result is durable; its queue cannot move on yet
	close(locked)
	time.Sleep(50 * time.Millisecond)
	busy := false
	for p := range h.eng.partBusy {
		busy = busy || h.eng.partBusy[p].Load() != 0
	}
	es.mu.Unlock()
	if !busy {
		t.Fatal("the partition was idle before its queue moved on")
	}
	h.idle()
	s.status(200)
	h.clock.Advance(70 * time.Second)
	s.next(t)
	h.waitStatus(res.Deliveries[0].ID, kinehook.DeliverySucceeded, 2)
}
