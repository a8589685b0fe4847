package kafka_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/delivery"
	"github.com/kinehook/kinehook/internal/netguard"
	kafkadest "github.com/kinehook/kinehook/kafka"
)

// No Kafka broker can be installed on this machine or in CI: these tests
// run against kfake, franz-go's in-process cluster, which speaks the Kafka
// protocol on loopback ports (produce, fetch, idempotent producers, SASL,
// TLS).

// allowLoopback dials through the SSRF guard with private networks
// allowed, as kinehook serve --allow-private-networks does.
var allowLoopback = netguard.NewDialContext(netguard.ClientOptions{AllowPrivate: true})

// newCluster starts a kfake cluster, closed when the test ends.
func newCluster(t testing.TB, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("kfake cluster: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// consume reads the first n records of topic (all partitions) from the
// beginning, within a deadline.
func consume(t testing.TB, addrs []string, topic string, n int, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	opts = append([]kgo.Opt{kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records of %s before the deadline", len(out), n, topic)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Logf("fetch %s/%d: %v", topic, p, err) })
		out = append(out, fs.Records()...)
	}
	return out
}

// header is a record's header value.
func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// verifyRecord checks a record's signature headers with the Standard
// Webhooks verification of the root package.
func verifyRecord(t testing.TB, secret string, r *kgo.Record) {
	t.Helper()
	v, err := kinehook.NewVerifier([]string{secret})
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	for _, k := range []string{kinehook.HeaderID, kinehook.HeaderTimestamp, kinehook.HeaderSignature} {
		if header(r, k) == "" {
			t.Errorf("record %d/%d has no %s header", r.Partition, r.Offset, k)
		}
		h.Set(k, header(r, k))
	}
	if err := v.Verify(h, r.Value, time.Now()); err != nil {
		t.Errorf("record %d/%d: signature does not verify: %v", r.Partition, r.Offset, err)
	}
}

const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// kafkaEndpoint is an endpoint of type kafka as the engine hands it.
func kafkaEndpoint(config string, creds map[string]string) *kinehook.Endpoint {
	return &kinehook.Endpoint{ID: kinehook.NewID(kinehook.PrefixEndpoint), ProjectID: "prj_test", Type: kinehook.EndpointKafka,
		Config: json.RawMessage(config), Credentials: creds, Secrets: []kinehook.EndpointSecret{{Value: testSecret}}}
}

func brokersConfig(addrs []string, topic string, extra string) string {
	b, _ := json.Marshal(addrs)
	return fmt.Sprintf(`{"brokers":%s,"topic":%q%s}`, b, topic, extra)
}

// signed is the message the engine would make for body.
func signed(t testing.TB, ep *kinehook.Endpoint, resource, body string) delivery.Message {
	t.Helper()
	now := time.Now()
	id := kinehook.NewID(kinehook.PrefixEvent)
	sig, err := kinehook.Sign([]string{testSecret}, id, now, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return delivery.Message{Endpoint: ep, ID: id, Timestamp: fmt.Sprint(now.Unix()), Signature: sig, Body: []byte(body), Now: now,
		EventType: kinehook.EventMediaUpdateStatus, ResourceKey: resource, ProjectID: ep.ProjectID}
}

// One produce: the record holds the body byte for byte, the resource as
// key, the signature headers, the event type and custom headers; the
// attempt records the partition and offset; one resource's records share a
// partition, in order; the client is reused.
func TestSendProduces(t *testing.T) {
	c := newCluster(t, kfake.NumBrokers(3), kfake.SeedTopics(8, "events"))
	tr := kafkadest.New(kafkadest.Options{Dial: allowLoopback})
	defer tr.Close()
	ep := kafkaEndpoint(brokersConfig(c.ListenAddrs(), "events", ""), nil)
	ep.Headers = map[string]string{"X-Tenant": "tenant-secret-value-42"}
	body := "{\"event\":\"media.update.status\",  \"data\":{\"id\":\"v\",\"status\":\"done\",\"title\":\"é \\u00e9\"}}\n"
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var sent []delivery.Message
	for i := range 20 {
		res := fmt.Sprintf("vid-%d", i%4)
		m := signed(t, ep, res, body)
		r := tr.Send(ctx, m)
		if r.Outcome != delivery.OutcomeSuccess || !strings.HasPrefix(r.Response, "topic events partition ") {
			t.Fatalf("Send %d = %+v", i, r)
		}
		if i == 0 && (r.Headers["webhook-id"] != m.ID || r.Headers["Kafka-Topic"] != "events" || r.Headers["Kafka-Key"] != "vid-0" ||
			r.Headers["X-Tenant"] != "****e-42" || r.Headers["event"] != "media.update.status") {
			t.Errorf("recorded headers %v", r.Headers)
		}
		sent = append(sent, m)
	}
	recs := consume(t, c.ListenAddrs(), "events", len(sent))
	partOf := map[string]int32{}
	order := map[string][]string{}
	for _, r := range recs {
		if string(r.Value) != body {
			t.Errorf("value %q, want the body byte for byte", r.Value)
		}
		if header(r, "X-Tenant") != "tenant-secret-value-42" || header(r, "event") != "media.update.status" || header(r, "content-type") != "application/json" {
			t.Errorf("headers %v", r.Headers)
		}
		verifyRecord(t, testSecret, r)
		k := string(r.Key)
		if p, ok := partOf[k]; ok && p != r.Partition {
			t.Errorf("resource %s in partitions %d and %d", k, p, r.Partition)
		}
		partOf[k] = r.Partition
		order[k] = append(order[k], header(r, kinehook.HeaderID))
	}
	for i, m := range sent {
		k := fmt.Sprintf("vid-%d", i%4)
		if order[k][0] != m.ID {
			t.Errorf("resource %s: record %s out of order (want %s)", k, order[k][0], m.ID)
		}
		order[k] = order[k][1:]
	}
	if tr.Clients() != 1 {
		t.Errorf("%d clients, want the one reused", tr.Clients())
	}
}

// freePort is a loopback port nothing listens on.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Failures are failed attempts worded with the broker's error: a topic
// that does not exist is a refusal, a closed port and an address the
// guard blocks are network errors within the attempt's deadline, a wrong
// SASL password is a refusal, a closed transport fails.
func TestSendFailures(t *testing.T) {
	c := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(2, "events"))
	sc := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(2, "events"), kfake.EnableSASL(),
		kfake.Superuser("SCRAM-SHA-256", "svc", "right"), kfake.Superuser("PLAIN", "plainsvc", "right"))
	closed := "127.0.0.1:" + strconv.Itoa(freePort(t))
	strict := kafkadest.New(kafkadest.Options{Dial: netguard.NewDialContext(netguard.ClientOptions{})})
	defer strict.Close()
	tr := kafkadest.New(kafkadest.Options{Dial: allowLoopback})
	defer tr.Close()
	scram := `,"sasl":"scram-sha-256"`
	tests := []struct {
		name    string
		tr      *kafkadest.Transport
		config  string
		creds   map[string]string
		outcome delivery.Outcome
		err     string
	}{
		{"unknown topic", tr, brokersConfig(c.ListenAddrs(), "missing", ""), nil, delivery.OutcomeRefused, "UNKNOWN_TOPIC_OR_PARTITION"},
		{"connection refused", tr, brokersConfig([]string{closed}, "events", ""), nil, delivery.OutcomeNetworkError, "connection refused"},
		{"guard", strict, brokersConfig(c.ListenAddrs(), "events", ""), nil, delivery.OutcomeNetworkError, "127.0.0.1 is blocked: loopback"},
		{"wrong scram password", tr, brokersConfig(sc.ListenAddrs(), "events", scram), map[string]string{"username": "svc", "password": "wrong"},
			delivery.OutcomeRefused, "SASL scram-sha-256 login"},
		{"wrong plain password", tr, brokersConfig(sc.ListenAddrs(), "events", `,"sasl":"plain"`), map[string]string{"username": "plainsvc", "password": "wrong"},
			delivery.OutcomeRefused, "SASL plain login"},
		{"right scram password", tr, brokersConfig(sc.ListenAddrs(), "events", scram), map[string]string{"username": "svc", "password": "right"},
			delivery.OutcomeSuccess, ""},
		{"right plain password", tr, brokersConfig(sc.ListenAddrs(), "events", `,"sasl":"plain"`), map[string]string{"username": "plainsvc", "password": "right"},
			delivery.OutcomeSuccess, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
			defer cancel()
			start := time.Now()
			res := tc.tr.Send(ctx, signed(t, kafkaEndpoint(tc.config, tc.creds), "v", `{"event":"media.update.status","data":{}}`))
			if res.Outcome != tc.outcome || !strings.Contains(res.Err, tc.err) {
				t.Errorf("Send = %s %q; want %s containing %q", res.Outcome, res.Err, tc.outcome, tc.err)
			}
			if d := time.Since(start); d > 4*time.Second {
				t.Errorf("the attempt took %s, beyond its 3 s deadline", d)
			}
		})
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if res := tr.Send(t.Context(), signed(t, kafkaEndpoint(brokersConfig(c.ListenAddrs(), "events", ""), nil), "v", `{}`)); res.Outcome != delivery.OutcomeNetworkError {
		t.Errorf("Send after Close = %+v", res)
	}
}

// A broker that accepts the connection but never acknowledges (a produce
// kfake holds) is a timeout at the attempt's deadline, not a hang.
func TestSendTimeout(t *testing.T) {
	c := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "events"))
	tr := kafkadest.New(kafkadest.Options{Dial: allowLoopback})
	defer tr.Close()
	ep := kafkaEndpoint(brokersConfig(c.ListenAddrs(), "events", ""), nil)
	if res := tr.Send(t.Context(), signed(t, ep, "v", `{}`)); res.Outcome != delivery.OutcomeSuccess {
		t.Fatalf("first Send = %+v", res)
	}
	// Every produce from now on is read and never answered.
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		return nil, nil, true
	})
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	res := tr.Send(ctx, signed(t, ep, "v", `{}`))
	if res.Outcome != delivery.OutcomeTimeout || !strings.Contains(res.Err, "no acknowledgement") {
		t.Errorf("Send to a broker holding the produce = %s %q", res.Outcome, res.Err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the attempt took %s, beyond its deadline", d)
	}
}

// TLS: with "tls": true the client checks the brokers' certificate
// (tls_server_name when the certificate names another host); a
// certificate the roots do not trust is a network error.
func TestSendTLS(t *testing.T) {
	hs := httptest.NewTLSServer(http.NotFoundHandler()) // its certificate: 127.0.0.1 and example.com
	defer hs.Close()
	roots := hs.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	c := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "events"), kfake.TLS(&tls.Config{Certificates: hs.TLS.Certificates}))
	tr := kafkadest.New(kafkadest.Options{Dial: allowLoopback, TLSConfig: &tls.Config{RootCAs: roots}})
	defer tr.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for _, extra := range []string{`,"tls":true`, `,"tls":true,"tls_server_name":"example.com"`} {
		if res := tr.Send(ctx, signed(t, kafkaEndpoint(brokersConfig(c.ListenAddrs(), "events", extra), nil), "v", `{}`)); res.Outcome != delivery.OutcomeSuccess {
			t.Errorf("Send with %s = %+v", extra, res)
		}
	}
	res := tr.Send(ctx, signed(t, kafkaEndpoint(brokersConfig(c.ListenAddrs(), "events", `,"tls":true,"tls_server_name":"other.example"`), nil), "v", `{}`))
	if res.Outcome != delivery.OutcomeNetworkError || !strings.Contains(res.Err, "certificate") {
		t.Errorf("Send with the wrong server name = %s %q", res.Outcome, res.Err)
	}
	untrusting := kafkadest.New(kafkadest.Options{Dial: allowLoopback})
	defer untrusting.Close()
	res = untrusting.Send(ctx, signed(t, kafkaEndpoint(brokersConfig(c.ListenAddrs(), "events", `,"tls":true`), nil), "v", `{}`))
	if res.Outcome != delivery.OutcomeNetworkError || !strings.Contains(res.Err, "certificate") {
		t.Errorf("Send with untrusted roots = %s %q", res.Outcome, res.Err)
	}
}

// Clients are shared per (brokers, TLS, SASL, credentials), dropped when
// no endpoint uses them (Forget) and when idle, and bounded.
func TestClientsSharedForgottenBounded(t *testing.T) {
	c := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "events"), kfake.EnableSASL(),
		kfake.Superuser("PLAIN", "u1", "p"), kfake.Superuser("PLAIN", "u2", "p"), kfake.Superuser("PLAIN", "u3", "p"))
	tr := kafkadest.New(kafkadest.Options{Dial: allowLoopback, IdleTimeout: 300 * time.Millisecond, MaxClients: 2})
	defer tr.Close()
	cfg := brokersConfig(c.ListenAddrs(), "events", `,"sasl":"plain"`)
	u1 := map[string]string{"username": "u1", "password": "p"}
	a, b := kafkaEndpoint(cfg, u1), kafkaEndpoint(cfg, u1)
	other := kafkaEndpoint(cfg, map[string]string{"username": "u2", "password": "p"})
	send := func(ep *kinehook.Endpoint) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		if res := tr.Send(ctx, signed(t, ep, "v", `{}`)); res.Outcome != delivery.OutcomeSuccess {
			t.Fatalf("Send = %+v", res)
		}
	}
	for _, ep := range []*kinehook.Endpoint{a, b, a} {
		send(ep)
	}
	if n := tr.Clients(); n != 1 {
		t.Fatalf("%d clients for two endpoints of one cluster and login, want 1", n)
	}
	send(other)
	if n := tr.Clients(); n != 2 {
		t.Fatalf("%d clients, want 2 (other credentials)", n)
	}
	send(kafkaEndpoint(cfg, map[string]string{"username": "u3", "password": "p"}))
	if n := tr.Clients(); n != 2 {
		t.Fatalf("%d clients with MaxClients 2", n)
	}
	tr.Forget(a.ID)
	tr.Forget(b.ID)
	tr.Forget(other.ID)
	deadline := time.Now().Add(5 * time.Second)
	for tr.Clients() != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := tr.Clients(); n != 0 {
		t.Errorf("forgotten and idle clients still open: %d", n)
	}
	send(a) // made again when needed
}
