package delivery

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
)

// NewHTTPTransport makes package webhook's transport keeping maxIdle idle
// connections (0: its default); link_test.go sets it, since this package
// cannot import webhook.
var NewHTTPTransport func(maxIdle int) Transport

// httpTransports is Config.Transports with the HTTP transport.
func httpTransports(maxIdle int) map[string]Transport {
	return map[string]Transport{TransportWebhook: NewHTTPTransport(maxIdle)}
}

// memTransport is a second transport, in memory: it records every message
// and answers what answer says. It shows that the engine's signing,
// ordering, retries and health work over any transport.
type memTransport struct {
	mu     sync.Mutex
	msgs   []Message
	ch     chan Message
	answer func(m Message, n int) Result // n: messages received so far
}

func newMemTransport(answer func(Message, int) Result) *memTransport {
	return &memTransport{ch: make(chan Message, 100), answer: answer}
}

func (t *memTransport) Send(_ context.Context, m Message) Result {
	t.mu.Lock()
	t.msgs = append(t.msgs, m)
	n := len(t.msgs)
	t.mu.Unlock()
	t.ch <- m
	return t.answer(m, n)
}

func (t *memTransport) next(tb testing.TB) Message {
	tb.Helper()
	select {
	case m := <-t.ch:
		return m
	case <-time.After(waitLimit):
		tb.Fatalf("no message within %s", waitLimit)
		return Message{}
	}
}

func (t *memTransport) none(tb testing.TB, d time.Duration) {
	tb.Helper()
	select {
	case m := <-t.ch:
		tb.Fatalf("unexpected message %s", m.ID)
	case <-time.After(d):
	}
}

// memHarness is a harness whose every endpoint is served by tr.
func memHarness(t *testing.T, tr Transport, cfg func(*Config)) *harness {
	return newHarness(t, func(c *Config) {
		c.Transports = map[string]Transport{TransportWebhook: tr}
		if cfg != nil {
			cfg(c)
		}
	})
}

// The engine signs each message once, with the Standard Webhooks headers
// any transport carries: the reference verifier accepts them over the body.
func TestTransportGetsSignedMessage(t *testing.T) {
	t.Parallel()
	tr := newMemTransport(func(Message, int) Result {
		return Result{Outcome: OutcomeSuccess, StatusCode: 0, Response: "queued", Headers: map[string]string{"topic": "orders"}}
	})
	h := memHarness(t, tr, nil)
	ep := h.endpoint("https://queue.invalid/orders", nil)
	ev := h.event("vid")
	res, err := h.eng.Publish(t.Context(), ev)
	if err != nil {
		t.Fatal(err)
	}
	m := tr.next(t)
	if m.Endpoint.ID != ep.ID || m.ID != ev.ID || string(m.Body) != string(ev.Payload) {
		t.Errorf("message = endpoint %s id %s body %s; want %s, %s, the payload", m.Endpoint.ID, m.ID, m.Body, ep.ID, ev.ID)
	}
	if want := strconv.FormatInt(h.clock.Now().Unix(), 10); m.Timestamp != want || !m.Now.Equal(h.clock.Now()) {
		t.Errorf("timestamp %s, now %v; want %s, the engine's clock", m.Timestamp, m.Now, want)
	}
	v, err := kinehook.NewVerifier([]string{testSecret})
	if err != nil {
		t.Fatal(err)
	}
	hd := http.Header{}
	hd.Set(kinehook.HeaderID, m.ID)
	hd.Set(kinehook.HeaderTimestamp, m.Timestamp)
	hd.Set(kinehook.HeaderSignature, m.Signature)
	if err := v.Verify(hd, m.Body, h.clock.Now()); err != nil {
		t.Errorf("signature rejected: %v", err)
	}
	d := h.waitStatus(res.Deliveries[0].ID, kinehook.DeliverySucceeded, 1)
	a := h.attempts(d.ID)
	if len(a) != 1 || a[0].StatusCode != 0 || a[0].ResponseBody != "queued" || a[0].RequestHeaders["topic"] != "orders" {
		t.Errorf("attempts = %+v, want the transport's result recorded", a)
	}
}

// Over any transport: a failure is retried on schedule, the resource's next
// event waits behind it, and the attempt records the transport's status
// and error (cleaned for the store).
func TestTransportRetriesInOrder(t *testing.T) {
	t.Parallel()
	tr := newMemTransport(func(_ Message, n int) Result {
		if n == 1 {
			return Result{Outcome: OutcomeHTTPError, StatusCode: 7, Err: "broker said no\x00"}
		}
		return Result{Outcome: OutcomeSuccess}
	})
	h := memHarness(t, tr, nil)
	h.endpoint("https://queue.invalid/orders", nil)
	first, second := h.publish("A"), h.publish("A")
	if m := tr.next(t); m.ID != first.Event.ID || m.Attempt != 1 {
		t.Fatalf("first message %s attempt %d, want %s attempt 1", m.ID, m.Attempt, first.Event.ID)
	}
	d := h.waitStatus(first.Deliveries[0].ID, kinehook.DeliveryRetrying, 1)
	if d.LastStatusCode != 7 {
		t.Errorf("LastStatusCode = %d, want the transport's 7", d.LastStatusCode)
	}
	if a := h.attempts(d.ID); len(a) != 1 || a[0].Error != "broker said no" {
		t.Errorf("attempts = %+v, want the transport's error without NUL", a)
	}
	tr.none(t, 30*time.Millisecond) // the second event waits for the first
	h.idle()                        // the retry's timer is armed
	h.clock.Advance(2 * time.Minute)
	for i, want := range []string{first.Event.ID, second.Event.ID} {
		if m := tr.next(t); m.ID != want || m.Attempt != 2-i {
			t.Fatalf("message %s attempt %d, want %s attempt %d", m.ID, m.Attempt, want, 2-i)
		}
	}
	h.waitStatus(first.Deliveries[0].ID, kinehook.DeliverySucceeded, 2)
	h.waitStatus(second.Deliveries[0].ID, kinehook.DeliverySucceeded, 1)
}

// The breaker counts any transport's failures, and the engine words a
// transport's bare timeout and bounds its back-off.
func TestTransportHealth(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		res     Result
		err     string
		breaker bool
	}{
		{"failures open the breaker", Result{Outcome: OutcomeNetworkError, Err: "connection refused"}, "connection refused", true},
		{"bare timeout", Result{Outcome: OutcomeTimeout}, "timeout: no complete response within 15s", true},
		{"backoff is not failure", Result{Outcome: OutcomeBackoff, RetryAfter: 10 * time.Hour, Err: "slow down"}, "slow down", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tr := newMemTransport(func(Message, int) Result { return tc.res })
			h := memHarness(t, tr, func(c *Config) { c.BreakerThreshold = 2 })
			h.endpoint("https://queue.invalid/orders", nil)
			// B is published once A's outcome is applied: published at
			// once, it could leave before a back-off pauses the endpoint.
			a := h.publish("A")
			tr.next(t)
			d := h.waitFor(a.Deliveries[0].ID, "retrying", func(d *kinehook.Delivery) bool {
				return d.Status == kinehook.DeliveryRetrying && d.LastError != ""
			})
			res := []kinehook.IngestResult{a, h.publish("B")}
			if d.LastError != tc.err {
				t.Errorf("error = %q, want %q", d.LastError, tc.err)
			}
			if tc.res.Outcome == OutcomeBackoff {
				if got := d.NextAttemptAt.Sub(h.clock.Now()); got < MaxRetryAfter-time.Second || got > MaxRetryAfter {
					t.Errorf("next attempt in %v, want the 10 h asked bounded to MaxRetryAfter", got)
				}
				tr.none(t, 30*time.Millisecond) // the whole endpoint pauses
				return
			}
			tr.next(t)
			h.waitStatus(res[1].Deliveries[0].ID, kinehook.DeliveryRetrying, 1)
			breakers, _ := h.obs.snapshot()
			if len(breakers) != 1 || breakers[0] != BreakerOpen || !strings.Contains(d.LastError, tc.err) {
				t.Errorf("breaker changes = %v, want it open after 2 failures", breakers)
			}
		})
	}
}

// brokerTransport is memTransport plus the optional abilities a broker
// transport has: it records Forget and Close.
type brokerTransport struct {
	*memTransport
	mu     sync.Mutex
	forgot []string
	closed int
}

func (b *brokerTransport) Forget(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.forgot = append(b.forgot, id)
}

func (b *brokerTransport) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed++
	return nil
}

// The engine picks the transport by endpoint type: a webhook goes over
// HTTP, a NATS endpoint over its transport with the event's type, resource
// and project; a type without a transport fails each attempt, saying so.
// A broker's refusal is a failed attempt with its error, retried; the
// transport hears of a deleted endpoint and is closed at shutdown.
func TestTransportByEndpointType(t *testing.T) {
	t.Parallel()
	web := newMemTransport(func(Message, int) Result { return Result{Outcome: OutcomeSuccess} })
	nats := &brokerTransport{memTransport: newMemTransport(func(_ Message, n int) Result {
		if n == 1 {
			return Result{Outcome: OutcomeRefused, Err: "nats: no responders available for request"}
		}
		return Result{Outcome: OutcomeSuccess}
	})}
	h := newHarness(t, func(c *Config) {
		c.Transports = map[string]Transport{TransportWebhook: web, kinehook.EndpointNATS: nats}
	})
	hook := h.endpoint("https://example.invalid/h", nil)
	dest := h.endpoint("", func(e *kinehook.Endpoint) {
		e.Type, e.Config = kinehook.EndpointNATS, []byte(`{"url":"nats://n:4222","subject":"s"}`)
	})
	lost := h.endpoint("", func(e *kinehook.Endpoint) {
		e.Type, e.Config = kinehook.EndpointKafka, []byte(`{"brokers":["k:9092"],"topic":"t"}`)
	})
	res := h.publish("vid-1")
	var byEndpoint = map[string]string{}
	for _, d := range res.Deliveries {
		byEndpoint[d.EndpointID] = d.ID
	}
	if m := web.next(t); m.Endpoint.ID != hook.ID {
		t.Errorf("webhook transport got endpoint %s", m.Endpoint.ID)
	}
	m := nats.next(t)
	if m.Endpoint.ID != dest.ID || m.EventType != kinehook.EventMediaUpdateStatus || m.ResourceKey != "vid-1" || m.ProjectID != h.proj.ID {
		t.Errorf("nats message: endpoint %s, type %q, resource %q, project %q", m.Endpoint.ID, m.EventType, m.ResourceKey, m.ProjectID)
	}
	h.waitStatus(byEndpoint[hook.ID], kinehook.DeliverySucceeded, 1)
	d := h.waitStatus(byEndpoint[dest.ID], kinehook.DeliveryRetrying, 1)
	if d.LastError != "nats: no responders available for request" {
		t.Errorf("refused attempt recorded %q", d.LastError)
	}
	d = h.waitStatus(byEndpoint[lost.ID], kinehook.DeliveryRetrying, 1)
	if d.LastError != `this server has no transport for endpoint type "kafka"` {
		t.Errorf("attempt without a transport recorded %q", d.LastError)
	}
	h.idle() // the retries' timers are armed
	h.clock.Advance(2 * time.Minute)
	if m := nats.next(t); m.ID != res.Event.ID {
		t.Errorf("retry carried %s", m.ID)
	}
	h.waitStatus(byEndpoint[dest.ID], kinehook.DeliverySucceeded, 2)

	if err := h.store.DeleteEndpoint(t.Context(), h.proj.ID, dest.ID); err != nil {
		t.Fatal(err)
	}
	h.eng.EndpointChanged(t.Context(), h.proj.ID, dest.ID)
	nats.mu.Lock()
	forgot := slices.Contains(nats.forgot, dest.ID)
	nats.mu.Unlock()
	if !forgot {
		t.Error("the transport was not told the endpoint was deleted")
	}
	h.stop()
	nats.mu.Lock()
	defer nats.mu.Unlock()
	if nats.closed != 1 {
		t.Errorf("transport closed %d times at shutdown, want 1", nats.closed)
	}
}
