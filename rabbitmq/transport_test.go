package rabbitmq_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/delivery"
	"github.com/kinehook/kinehook/internal/netguard"
	rabbitdest "github.com/kinehook/kinehook/rabbitmq"
)

// sharedURL is the machine's RabbitMQ (never stopped by these tests: each
// declares its own queue and exchange and deletes them).
const (
	sharedAddr = "127.0.0.1:5672"
	sharedURL  = "amqp://" + sharedAddr + "/"
)

// guest is the shared broker's user.
var guest = map[string]string{"username": "guest", "password": "guest"}

// allowLoopback dials through the SSRF guard with private networks
// allowed, as kinehook serve --allow-private-networks does.
var allowLoopback = netguard.NewDialContext(netguard.ClientOptions{AllowPrivate: true})

// broker is the test's own client of the shared broker.
type broker struct {
	t  testing.TB
	ch *amqp.Channel
}

// dialBroker connects the test's side, skipping without a broker.
func dialBroker(t testing.TB) *broker {
	t.Helper()
	ac, err := amqp.DialConfig("amqp://guest:guest@"+sharedAddr+"/", amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
	if err != nil {
		t.Skipf("no RabbitMQ at %s: %v", sharedAddr, err)
	}
	t.Cleanup(func() { _ = ac.Close() })
	ch, err := ac.Channel()
	if err != nil {
		t.Fatal(err)
	}
	return &broker{t: t, ch: ch}
}

// uniqueName is a queue or exchange name no other test uses.
func uniqueName(prefix string) string { return prefix + "." + kinehook.NewID("t")[2:] }

// queue declares a durable queue, deleted when the test ends.
func (b *broker) queue(name string) {
	b.t.Helper()
	if _, err := b.ch.QueueDeclare(name, true, false, false, false, nil); err != nil {
		b.t.Fatalf("declare queue %s: %v", name, err)
	}
	b.t.Cleanup(func() { _, _ = b.ch.QueueDelete(name, false, false, false) })
}

// exchange declares a direct exchange, deleted when the test ends.
func (b *broker) exchange(name string) {
	b.t.Helper()
	if err := b.ch.ExchangeDeclare(name, "direct", true, false, false, false, nil); err != nil {
		b.t.Fatalf("declare exchange %s: %v", name, err)
	}
	b.t.Cleanup(func() { _ = b.ch.ExchangeDelete(name, false, false) })
}

// bind routes key on exchange to queue.
func (b *broker) bind(queue, key, exchange string) {
	b.t.Helper()
	if err := b.ch.QueueBind(queue, key, exchange, false, nil); err != nil {
		b.t.Fatalf("bind %s: %v", queue, err)
	}
}

// drain reads every message of the queue, in queue order.
func (b *broker) drain(queue string) []amqp.Delivery {
	b.t.Helper()
	var out []amqp.Delivery
	for {
		d, ok, err := b.ch.Get(queue, true)
		if err != nil {
			b.t.Fatalf("get from %s: %v", queue, err)
		}
		if !ok {
			return out
		}
		out = append(out, d)
	}
}

// rabbitEndpoint is an endpoint of type rabbitmq as the engine hands it.
func rabbitEndpoint(url, exchange, key string, creds map[string]string) *kinehook.Endpoint {
	return &kinehook.Endpoint{ID: kinehook.NewID(kinehook.PrefixEndpoint), ProjectID: "prj_test", Type: kinehook.EndpointRabbitMQ,
		Config:      json.RawMessage(fmt.Sprintf(`{"url":%q,"exchange":%q,"routing_key":%q}`, url, exchange, key)),
		Credentials: creds, Secrets: []kinehook.EndpointSecret{{Value: testSecret}}}
}

const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// signed is the message the engine would make for body.
func signed(t testing.TB, ep *kinehook.Endpoint, body string) delivery.Message {
	t.Helper()
	now := time.Now()
	id := kinehook.NewID(kinehook.PrefixEvent)
	sig, err := kinehook.Sign([]string{testSecret}, id, now, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return delivery.Message{Endpoint: ep, ID: id, Timestamp: fmt.Sprint(now.Unix()), Signature: sig, Body: []byte(body), Now: now,
		EventType: kinehook.EventMediaUpdateStatus, ResourceKey: "v", ProjectID: ep.ProjectID}
}

// verifyWith checks a message's signature headers with the Standard
// Webhooks verification of the root package, and its AMQP properties.
func verifyWith(t testing.TB, secret string, d amqp.Delivery) {
	t.Helper()
	v, err := kinehook.NewVerifier([]string{secret})
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	for _, k := range []string{kinehook.HeaderID, kinehook.HeaderTimestamp, kinehook.HeaderSignature} {
		s, _ := d.Headers[k].(string)
		if s == "" {
			t.Errorf("message %s has no %s header: %v", d.MessageId, k, d.Headers)
		}
		h.Set(k, s)
	}
	if err := v.Verify(h, d.Body, time.Now()); err != nil {
		t.Errorf("message %s: signature does not verify: %v", d.MessageId, err)
	}
	if d.MessageId != h.Get(kinehook.HeaderID) || d.MessageId == "" {
		t.Errorf("message_id %q, webhook-id %q", d.MessageId, h.Get(kinehook.HeaderID))
	}
	if d.DeliveryMode != amqp.Persistent || d.ContentType != "application/json" {
		t.Errorf("message %s: delivery mode %d, content type %q; want persistent application/json", d.MessageId, d.DeliveryMode, d.ContentType)
	}
}

// One publish through an exchange: the queue holds the body byte for byte,
// persistent, with message_id, the signature headers and custom headers;
// the attempt records the broker's confirm; connection and channel are
// reused.
func TestSendPublishesConfirmed(t *testing.T) {
	b := dialBroker(t)
	q, x := uniqueName("kinehook.test.q"), uniqueName("kinehook.test.x")
	b.queue(q)
	b.exchange(x)
	b.bind(q, "video.events", x)
	tr := rabbitdest.New(rabbitdest.Options{Dial: allowLoopback})
	defer tr.Close()
	ep := rabbitEndpoint(sharedURL, x, "video.events", guest)
	ep.Headers = map[string]string{"X-Tenant": "tenant-secret-value-42"}
	body := "{\"event\":\"media.update.status\",  \"data\":{\"id\":\"v\",\"status\":\"done\",\"title\":\"é \\u00e9\"}}\n"
	m := signed(t, ep, body)
	res := tr.Send(t.Context(), m)
	if res.Outcome != delivery.OutcomeSuccess || !strings.Contains(res.Response, "confirmed") {
		t.Fatalf("Send = %+v", res)
	}
	if res.Headers["webhook-id"] != m.ID || res.Headers["AMQP-Message-Id"] != m.ID || res.Headers["AMQP-Exchange"] != x ||
		res.Headers["AMQP-Routing-Key"] != "video.events" || res.Headers["X-Tenant"] != "****e-42" {
		t.Errorf("recorded headers %v", res.Headers)
	}
	for range 3 {
		if res := tr.Send(t.Context(), signed(t, ep, `{"n":1}`)); res.Outcome != delivery.OutcomeSuccess {
			t.Fatalf("Send = %+v", res)
		}
	}
	msgs := b.drain(q)
	if len(msgs) != 4 {
		t.Fatalf("%d messages in the queue, want 4", len(msgs))
	}
	d := msgs[0]
	if string(d.Body) != body {
		t.Errorf("body %q, want byte for byte %q", d.Body, body)
	}
	if d.Headers["X-Tenant"] != "tenant-secret-value-42" || d.Type != string(kinehook.EventMediaUpdateStatus) {
		t.Errorf("custom header %v, type %q", d.Headers["X-Tenant"], d.Type)
	}
	verifyWith(t, testSecret, d)
	if tr.Conns() != 1 {
		t.Errorf("%d connections, want the one reused", tr.Conns())
	}
}

// Failures are failed attempts worded with the broker's error.
func TestSendFailures(t *testing.T) {
	b := dialBroker(t)
	q := uniqueName("kinehook.test.q")
	b.queue(q)
	closed := freePort(t)
	strict := rabbitdest.New(rabbitdest.Options{Dial: netguard.NewDialContext(netguard.ClientOptions{})})
	defer strict.Close()
	tr := rabbitdest.New(rabbitdest.Options{Dial: allowLoopback})
	defer tr.Close()
	missingX := uniqueName("kinehook.test.nox")
	tests := []struct {
		name        string
		tr          *rabbitdest.Transport
		url, x, key string
		creds       map[string]string
		outcome     delivery.Outcome
		err         string
	}{
		{"unroutable", tr, sharedURL, "", uniqueName("kinehook.test.noqueue"), guest, delivery.OutcomeRefused, "unroutable"},
		{"no exchange", tr, sharedURL, missingX, "k", guest, delivery.OutcomeRefused, "NOT_FOUND - no exchange '" + missingX + "'"},
		{"wrong password", tr, sharedURL, "", q, map[string]string{"username": "guest", "password": "wrong"}, delivery.OutcomeRefused, "refused the credentials"},
		{"no vhost", tr, "amqp://" + sharedAddr + "/" + uniqueName("novhost"), "", q, guest, delivery.OutcomeRefused, "refused access to vhost"},
		{"connection refused", tr, "amqp://127.0.0.1:" + closed + "/", "", q, guest, delivery.OutcomeNetworkError, "connection refused"},
		{"guard", strict, sharedURL, "", q, guest, delivery.OutcomeNetworkError, "127.0.0.1 is blocked: loopback"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			res := tc.tr.Send(ctx, signed(t, rabbitEndpoint(tc.url, tc.x, tc.key, tc.creds), `{"event":"media.update.status","data":{}}`))
			t.Logf("%s: %s", res.Outcome, res.Err)
			if res.Outcome != tc.outcome || !strings.Contains(res.Err, tc.err) {
				t.Errorf("Send = %s %q; want %s containing %q", res.Outcome, res.Err, tc.outcome, tc.err)
			}
		})
	}
	// After the failures the good route still works on the same transport.
	if res := tr.Send(t.Context(), signed(t, rabbitEndpoint(sharedURL, "", q, guest), `{}`)); res.Outcome != delivery.OutcomeSuccess {
		t.Errorf("Send after failures = %+v", res)
	}
	if n := len(b.drain(q)); n != 1 {
		t.Errorf("%d messages in the queue, want 1", n)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if res := tr.Send(t.Context(), signed(t, rabbitEndpoint(sharedURL, "", q, guest), `{}`)); res.Outcome != delivery.OutcomeNetworkError {
		t.Errorf("Send after Close = %+v", res)
	}
}

// A broker that never answers the handshake within the attempt's deadline
// is a timeout.
func TestSendTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // silent: never speaks AMQP
		}
	}()
	tr := rabbitdest.New(rabbitdest.Options{Dial: allowLoopback, ConnectTimeout: 2 * time.Second})
	defer tr.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	res := tr.Send(ctx, signed(t, rabbitEndpoint("amqp://"+ln.Addr().String()+"/", "", "q", guest), `{}`))
	if res.Outcome != delivery.OutcomeTimeout || !strings.Contains(res.Err, "timeout") {
		t.Errorf("Send = %s %q; want timeout", res.Outcome, res.Err)
	}
}

// Concurrent publishes share one connection and at most MaxChannels
// channels, every one confirmed.
func TestConcurrentPublishesBounded(t *testing.T) {
	b := dialBroker(t)
	q := uniqueName("kinehook.test.q")
	b.queue(q)
	tr := rabbitdest.New(rabbitdest.Options{Dial: allowLoopback, MaxChannels: 3})
	defer tr.Close()
	ep := rabbitEndpoint(sharedURL, "", q, guest)
	const n = 60
	errs := make(chan string, n)
	for i := range n {
		go func() {
			res := tr.Send(t.Context(), signed(t, ep, fmt.Sprintf(`{"n":%d}`, i)))
			errs <- string(res.Outcome) + " " + res.Err
		}()
	}
	for range n {
		if e := <-errs; e != "success " {
			t.Errorf("Send = %s", e)
		}
	}
	if got := len(b.drain(q)); got != n {
		t.Errorf("%d messages in the queue, want %d", got, n)
	}
	if tr.Conns() != 1 {
		t.Errorf("%d connections, want 1", tr.Conns())
	}
}

// Connections are shared by endpoints of the same url and credentials,
// closed when no endpoint uses them (Forget) and when idle, and dialled
// again when needed.
func TestConnectionsSharedAndForgotten(t *testing.T) {
	b := dialBroker(t)
	q := uniqueName("kinehook.test.q")
	b.queue(q)
	tr := rabbitdest.New(rabbitdest.Options{Dial: allowLoopback, IdleTimeout: 300 * time.Millisecond})
	defer tr.Close()
	a, c := rabbitEndpoint(sharedURL, "", q, guest), rabbitEndpoint(sharedURL, "", q, guest)
	other := rabbitEndpoint(sharedURL, "", q, nil) // the client's default guest/guest: another key
	for _, ep := range []*kinehook.Endpoint{a, c, a} {
		if res := tr.Send(t.Context(), signed(t, ep, `{}`)); res.Outcome != delivery.OutcomeSuccess {
			t.Fatalf("Send = %+v", res)
		}
	}
	if n := tr.Conns(); n != 1 {
		t.Fatalf("%d connections for two endpoints of one broker, want 1", n)
	}
	if res := tr.Send(t.Context(), signed(t, other, `{}`)); res.Outcome != delivery.OutcomeSuccess {
		t.Fatalf("Send = %+v", res)
	}
	if n := tr.Conns(); n != 2 {
		t.Fatalf("%d connections, want 2 (other credentials)", n)
	}
	tr.Forget(a.ID)
	if n := tr.Conns(); n != 2 {
		t.Errorf("after forgetting one of its two endpoints: %d connections, want 2", n)
	}
	tr.Forget(c.ID)
	if n := tr.Conns(); n != 1 {
		t.Errorf("after forgetting both: %d connections, want 1", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for tr.Conns() != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := tr.Conns(); n != 0 {
		t.Errorf("idle connection still open: %d", n)
	}
	if res := tr.Send(t.Context(), signed(t, a, `{}`)); res.Outcome != delivery.OutcomeSuccess {
		t.Fatalf("Send after the idle close = %+v", res)
	}
}

// The connections kept are bounded: at MaxConns the least recently used
// idle one is closed for a new one.
func TestConnectionsBounded(t *testing.T) {
	b := dialBroker(t)
	q := uniqueName("kinehook.test.q")
	b.queue(q)
	tr := rabbitdest.New(rabbitdest.Options{Dial: allowLoopback, MaxConns: 2})
	defer tr.Close()
	// Each url spelling is another connection key (same broker).
	for i, url := range []string{sharedURL, "amqp://127.0.0.1/", "amqp://localhost:5672/", sharedURL, "amqp://127.0.0.1/"} {
		if url == "amqp://localhost:5672/" {
			url = "amqp://[::ffff:127.0.0.1]:5672/"
		}
		if res := tr.Send(t.Context(), signed(t, rabbitEndpoint(url, "", q, guest), `{}`)); res.Outcome != delivery.OutcomeSuccess {
			t.Fatalf("Send %d = %+v", i, res)
		}
		if n := tr.Conns(); n > 2 {
			t.Fatalf("%d connections after %d sends, want at most 2", n, i+1)
		}
	}
}

// freePort is a loopback port nothing listens on.
func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	return port
}

// BenchmarkSend is one confirmed publish after another (the latency of an
// attempt), and in parallel (the throughput of one shared connection).
func BenchmarkSend(b *testing.B) {
	br := dialBroker(b)
	q := uniqueName("kinehook.bench.q")
	br.queue(q)
	tr := rabbitdest.New(rabbitdest.Options{Dial: allowLoopback})
	defer tr.Close()
	ep := rabbitEndpoint(sharedURL, "", q, guest)
	m := signed(b, ep, string(kinehook.SampleEvent(kinehook.EventMediaUpdateStatus)))
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			if res := tr.Send(context.Background(), m); res.Outcome != delivery.OutcomeSuccess {
				b.Fatalf("Send = %+v", res)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if res := tr.Send(context.Background(), m); res.Outcome != delivery.OutcomeSuccess {
					b.Errorf("Send = %+v", res)
					return
				}
			}
		})
	})
	_, _ = br.ch.QueuePurge(q, false)
}
