package nats_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/delivery"
	"github.com/kinehook/kinehook/internal/netguard"
	natsdest "github.com/kinehook/kinehook/nats"
)

// sharedURL is the machine's NATS server with JetStream (never stopped by
// these tests: each makes its own stream and deletes it).
const sharedURL = "nats://127.0.0.1:4222"

// allowLoopback dials through the SSRF guard with private networks
// allowed, as kinehook serve --allow-private-networks does.
var allowLoopback = netguard.NewDialContext(netguard.ClientOptions{AllowPrivate: true})

// jsClient is a plain JetStream client on url, for the test's side.
func jsClient(t testing.TB, url string) (*natsgo.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := natsgo.Connect(url, natsgo.Timeout(5*time.Second))
	if err != nil && url == sharedURL {
		t.Skipf("no NATS server at %s: %v", url, err)
	}
	if err != nil {
		t.Fatalf("connect to the test's own server %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// uniqueSubject is a subject and stream name no other test uses.
func uniqueSubject(t testing.TB) (subject, stream string) {
	id := strings.ToUpper(kinehook.NewID("t")[2:])
	return "kinehook.test." + id, "KHTEST_" + id
}

// createStream makes a stream on subject, deleted when the test ends.
func createStream(t testing.TB, js jetstream.JetStream, name, subject string) jetstream.Stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{subject}, Storage: jetstream.FileStorage,
		Duplicates: 10 * time.Minute})
	if err != nil {
		t.Fatalf("create stream %s: %v", name, err)
	}
	t.Cleanup(func() { deleteStream(js, name) })
	return s
}

func deleteStream(js jetstream.JetStream, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = js.DeleteStream(ctx, name)
}

// streamMsgs reads every message of a stream, in stream order.
func streamMsgs(t testing.TB, js jetstream.JetStream, name string) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("get message %d: %v", seq, err)
		}
		out = append(out, m)
	}
	return out
}

// natsEndpoint is an endpoint of type nats as the engine hands it.
func natsEndpoint(url, subject string, creds map[string]string) *kinehook.Endpoint {
	return &kinehook.Endpoint{ID: kinehook.NewID(kinehook.PrefixEndpoint), ProjectID: "prj_test", Type: kinehook.EndpointNATS,
		Config:      json.RawMessage(fmt.Sprintf(`{"url":%q,"subject":%q}`, url, subject)),
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

// verify checks a stream message's signature headers with the Standard
// Webhooks verification of the root package.
func verify(t testing.TB, m *jetstream.RawStreamMsg) {
	t.Helper()
	v, err := kinehook.NewVerifier([]string{testSecret})
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	for _, k := range []string{kinehook.HeaderID, kinehook.HeaderTimestamp, kinehook.HeaderSignature} {
		if m.Header.Get(k) == "" {
			t.Errorf("message %d has no %s header: %v", m.Sequence, k, m.Header)
		}
		h.Set(k, m.Header.Get(k))
	}
	if err := v.Verify(h, m.Data, time.Now()); err != nil {
		t.Errorf("message %d: signature does not verify: %v", m.Sequence, err)
	}
	if m.Header.Get("Nats-Msg-Id") != m.Header.Get(kinehook.HeaderID) {
		t.Errorf("message %d: Nats-Msg-Id %q, webhook-id %q", m.Sequence, m.Header.Get("Nats-Msg-Id"), m.Header.Get(kinehook.HeaderID))
	}
}

// One publish: the stream holds the body byte for byte with the signature
// headers, the message id and custom headers; the attempt records the
// stream's ack; the same webhook id again is JetStream's duplicate.
func TestSendPublishesToJetStream(t *testing.T) {
	_, js := jsClient(t, sharedURL)
	subject, stream := uniqueSubject(t)
	createStream(t, js, stream, subject)
	tr := natsdest.New(natsdest.Options{Dial: allowLoopback})
	defer tr.Close()
	ep := natsEndpoint(sharedURL, subject, nil)
	ep.Headers = map[string]string{"X-Tenant": "tenant-secret-value-42"}
	body := "{\"event\":\"media.update.status\",  \"data\":{\"id\":\"v\",\"status\":\"done\",\"title\":\"é \\u00e9\"}}\n"
	m := signed(t, ep, body)
	res := tr.Send(t.Context(), m)
	if res.Outcome != delivery.OutcomeSuccess || !strings.HasPrefix(res.Response, "stream "+stream+" seq 1") {
		t.Fatalf("Send = %+v", res)
	}
	if res.Headers["webhook-id"] != m.ID || res.Headers["Nats-Msg-Id"] != m.ID || res.Headers["Nats-Subject"] != subject ||
		res.Headers["X-Tenant"] != "****e-42" {
		t.Errorf("recorded headers %v", res.Headers)
	}
	again := tr.Send(t.Context(), m)
	if again.Outcome != delivery.OutcomeSuccess || !strings.Contains(again.Response, "duplicate") {
		t.Errorf("second send of the same id = %+v, want JetStream's duplicate ack", again)
	}
	msgs := streamMsgs(t, js, stream)
	if len(msgs) != 1 {
		t.Fatalf("%d messages in the stream, want 1 (the duplicate dropped)", len(msgs))
	}
	if string(msgs[0].Data) != body {
		t.Errorf("data %q, want the body byte for byte %q", msgs[0].Data, body)
	}
	if msgs[0].Header.Get("X-Tenant") != "tenant-secret-value-42" {
		t.Errorf("custom header %q", msgs[0].Header.Get("X-Tenant"))
	}
	verify(t, msgs[0])
	if tr.Conns() != 1 {
		t.Errorf("%d connections, want the one reused", tr.Conns())
	}
}

// Failures are failed attempts worded with the broker's error: no stream
// on the subject is a refusal, a closed port and an address the guard
// blocks are network errors, a closed transport refuses.
func TestSendFailures(t *testing.T) {
	jsClient(t, sharedURL) // skips without a server
	subject, _ := uniqueSubject(t)
	closed := freePort(t)
	strict := natsdest.New(natsdest.Options{Dial: netguard.NewDialContext(netguard.ClientOptions{})})
	defer strict.Close()
	tr := natsdest.New(natsdest.Options{Dial: allowLoopback})
	defer tr.Close()
	tests := []struct {
		name    string
		tr      *natsdest.Transport
		url     string
		outcome delivery.Outcome
		err     string
	}{
		{"no stream", tr, sharedURL, delivery.OutcomeRefused, `no JetStream stream bound to subject "` + subject + `"`},
		{"connection refused", tr, "nats://127.0.0.1:" + closed, delivery.OutcomeNetworkError, "connection refused"},
		{"guard", strict, sharedURL, delivery.OutcomeNetworkError, "127.0.0.1 is blocked: loopback"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			res := tc.tr.Send(ctx, signed(t, natsEndpoint(tc.url, subject, nil), `{"event":"media.update.status","data":{}}`))
			if res.Outcome != tc.outcome || !strings.Contains(res.Err, tc.err) {
				t.Errorf("Send = %s %q; want %s containing %q", res.Outcome, res.Err, tc.outcome, tc.err)
			}
		})
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if res := tr.Send(t.Context(), signed(t, natsEndpoint(sharedURL, subject, nil), `{}`)); res.Outcome != delivery.OutcomeNetworkError {
		t.Errorf("Send after Close = %+v", res)
	}
}

// A refused login is the broker's refusal, naming it.
func TestSendRefusedCredentials(t *testing.T) {
	srv := startServer(t, "--user", "svc", "--pass", "right")
	subject, _ := uniqueSubject(t)
	tr := natsdest.New(natsdest.Options{Dial: allowLoopback})
	defer tr.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	res := tr.Send(ctx, signed(t, natsEndpoint(srv.url, subject, map[string]string{"user": "svc", "password": "wrong"}), `{}`))
	if res.Outcome != delivery.OutcomeRefused || !strings.Contains(strings.ToLower(res.Err), "authorization violation") {
		t.Errorf("Send with a wrong password = %s %q", res.Outcome, res.Err)
	}
	res = tr.Send(ctx, signed(t, natsEndpoint(srv.url, subject, map[string]string{"user": "svc", "password": "right"}), `{}`))
	if res.Outcome != delivery.OutcomeRefused || !strings.Contains(res.Err, "no JetStream stream") {
		t.Errorf("Send with the right password = %s %q, want past the login to the missing stream", res.Outcome, res.Err)
	}
}

// Connections are shared per (server, credentials), dropped when no
// endpoint uses them (Forget) and when idle.
func TestConnectionsSharedAndForgotten(t *testing.T) {
	_, js := jsClient(t, sharedURL)
	subject, stream := uniqueSubject(t)
	createStream(t, js, stream, subject)
	tr := natsdest.New(natsdest.Options{Dial: allowLoopback, IdleTimeout: 300 * time.Millisecond})
	defer tr.Close()
	a, b := natsEndpoint(sharedURL, subject, nil), natsEndpoint(sharedURL, subject, nil)
	other := natsEndpoint(sharedURL, subject, map[string]string{"token": "unused-by-this-server"})
	for _, ep := range []*kinehook.Endpoint{a, b, a} {
		if res := tr.Send(t.Context(), signed(t, ep, `{}`)); res.Outcome != delivery.OutcomeSuccess {
			t.Fatalf("Send = %+v", res)
		}
	}
	if n := tr.Conns(); n != 1 {
		t.Fatalf("%d connections for two endpoints of one server, want 1", n)
	}
	// The server accepts any token without auth configured: another key, another connection.
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
	tr.Forget(b.ID)
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
	// And it is dialled again when needed.
	if res := tr.Send(t.Context(), signed(t, a, `{}`)); res.Outcome != delivery.OutcomeSuccess {
		t.Fatalf("Send after the idle close = %+v", res)
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

// The connections kept are bounded: at MaxConns the least recently used
// idle one is closed for a new one.
func TestConnectionsBounded(t *testing.T) {
	_, js := jsClient(t, sharedURL)
	subject, stream := uniqueSubject(t)
	createStream(t, js, stream, subject)
	tr := natsdest.New(natsdest.Options{Dial: allowLoopback, MaxConns: 2})
	defer tr.Close()
	// The shared server has no auth: each token is another connection key.
	for i := range 5 {
		ep := natsEndpoint(sharedURL, subject, map[string]string{"token": fmt.Sprintf("t%d", i)})
		if res := tr.Send(t.Context(), signed(t, ep, `{}`)); res.Outcome != delivery.OutcomeSuccess {
			t.Fatalf("Send %d = %+v", i, res)
		}
		if n := tr.Conns(); n > 2 {
			t.Fatalf("%d connections after %d endpoints, want at most 2", n, i+1)
		}
	}
}
