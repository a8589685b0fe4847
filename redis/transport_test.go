package redis_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/delivery"
	"github.com/kinehook/kinehook/internal/netguard"
	redisdest "github.com/kinehook/kinehook/redis"
)

// sharedURL is the machine's Redis (never stopped nor flushed by these
// tests: each uses its own keys and users and deletes them).
const sharedURL = "redis://127.0.0.1:6379/0"

// allowLoopback dials through the SSRF guard with private networks
// allowed, as kinehook serve --allow-private-networks does.
var allowLoopback = netguard.NewDialContext(netguard.ClientOptions{AllowPrivate: true})

// redisClient is a plain client on addr (host:port), for the test's side;
// it skips the test when the shared server is not there.
func redisClient(t testing.TB, addr string) *goredis.Client {
	t.Helper()
	rc := goredis.NewClient(&goredis.Options{Addr: addr, Protocol: 2, DisableIdentity: true})
	t.Cleanup(func() { rc.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rc.Ping(ctx).Err(); err != nil {
		if addr == "127.0.0.1:6379" {
			t.Skipf("no Redis at %s: %v", addr, err)
		}
		t.Fatalf("the test's own server %s: %v", addr, err)
	}
	return rc
}

// uniqueStream is a stream key no other test uses, deleted when the test ends.
func uniqueStream(t testing.TB, rc *goredis.Client) string {
	key := "kinehook:test:" + kinehook.NewID("s")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		rc.Del(ctx, key)
	})
	return key
}

// entries reads every entry of a stream, in stream order.
func entries(t testing.TB, rc *goredis.Client, stream string) []goredis.XMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	msgs, err := rc.XRange(ctx, stream, "-", "+").Result()
	if err != nil {
		t.Fatalf("XRANGE %s: %v", stream, err)
	}
	return msgs
}

// field is a string field of an entry ("" when absent).
func field(m goredis.XMessage, name string) string {
	s, _ := m.Values[name].(string)
	return s
}

// redisEndpoint is an endpoint of type redis as the engine hands it.
func redisEndpoint(url, stream string, maxLen int, creds map[string]string) *kinehook.Endpoint {
	cfg := fmt.Sprintf(`{"url":%q,"stream":%q}`, url, stream)
	if maxLen > 0 {
		cfg = fmt.Sprintf(`{"url":%q,"stream":%q,"max_len":%d}`, url, stream, maxLen)
	}
	return &kinehook.Endpoint{ID: kinehook.NewID(kinehook.PrefixEndpoint), ProjectID: "prj_test", Type: kinehook.EndpointRedis,
		Config: json.RawMessage(cfg), Credentials: creds, Secrets: []kinehook.EndpointSecret{{Value: testSecret}}}
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

// verifyEntry checks an entry's signature fields with the Standard
// Webhooks verification of the root package, over its body field.
func verifyEntry(t testing.TB, secret string, m goredis.XMessage) {
	t.Helper()
	v, err := kinehook.NewVerifier([]string{secret})
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	for _, k := range []string{kinehook.HeaderID, kinehook.HeaderTimestamp, kinehook.HeaderSignature} {
		if field(m, k) == "" {
			t.Errorf("entry %s has no %s field: %v", m.ID, k, m.Values)
		}
		h.Set(k, field(m, k))
	}
	if err := v.Verify(h, []byte(field(m, "body")), time.Now()); err != nil {
		t.Errorf("entry %s: signature does not verify: %v", m.ID, err)
	}
}

// One XADD: the entry holds the body byte for byte, the signature fields,
// the event type and the custom headers; the attempt records the entry id
// as its response; max_len trims the stream.
func TestSendAddsToStream(t *testing.T) {
	rc := redisClient(t, "127.0.0.1:6379")
	stream := uniqueStream(t, rc)
	tr := redisdest.New(redisdest.Options{Dial: allowLoopback})
	defer tr.Close()
	ep := redisEndpoint(sharedURL, stream, 0, nil)
	ep.Headers = map[string]string{"X-Tenant": "tenant-secret-value-42", "Body": "not the body"}
	body := "{\"event\":\"media.update.status\",  \"data\":{\"id\":\"v\",\"status\":\"done\",\"title\":\"é \\u00e9\"}}\n"
	m := signed(t, ep, body)
	res := tr.Send(t.Context(), m)
	if res.Outcome != delivery.OutcomeSuccess {
		t.Fatalf("Send = %+v", res)
	}
	if res.Headers["webhook-id"] != m.ID || res.Headers["event"] != "media.update.status" || res.Headers["Redis-Stream"] != stream ||
		res.Headers["X-Tenant"] != "****e-42" {
		t.Errorf("recorded headers %v", res.Headers)
	}
	msgs := entries(t, rc, stream)
	if len(msgs) != 1 {
		t.Fatalf("%d entries, want 1", len(msgs))
	}
	e := msgs[0]
	if res.Response != e.ID {
		t.Errorf("response %q, want the entry id %q", res.Response, e.ID)
	}
	if field(e, "body") != body {
		t.Errorf("body %q, want byte for byte %q", field(e, "body"), body)
	}
	if field(e, "event") != "media.update.status" || field(e, "webhook-id") != m.ID || field(e, "webhook-timestamp") != m.Timestamp ||
		field(e, "webhook-signature") != m.Signature || field(e, "X-Tenant") != "tenant-secret-value-42" {
		t.Errorf("entry fields %v", e.Values)
	}
	if _, ok := e.Values["Body"]; ok {
		t.Errorf("a custom header named like the body field was added: %v", e.Values)
	}
	verifyEntry(t, testSecret, e)

	// max_len ~ N: Redis trims whole nodes (100 entries by default), so
	// the stream stays near N, far below what was added.
	trimmed := uniqueStream(t, rc)
	tep := redisEndpoint(sharedURL, trimmed, 10, nil)
	for i := range 500 {
		if res := tr.Send(t.Context(), signed(t, tep, fmt.Sprintf(`{"n":%d}`, i))); res.Outcome != delivery.OutcomeSuccess {
			t.Fatalf("Send %d = %+v", i, res)
		}
	}
	if n := rc.XLen(t.Context(), trimmed).Val(); n < 10 || n > 250 {
		t.Errorf("XLEN after 500 adds with max_len 10 = %d, want trimmed to about 10", n)
	}
	if n := tr.Clients(); n != 1 {
		t.Errorf("%d clients, want the one reused", n)
	}
}

// Failures are failed attempts worded with the server's error: an error
// reply (WRONGTYPE, a refused login) is a refusal; a closed port and an
// address the guard blocks are network errors; a closed transport fails.
func TestSendFailures(t *testing.T) {
	rc := redisClient(t, "127.0.0.1:6379")
	ctx := t.Context()
	wrongType := uniqueStream(t, rc)
	if err := rc.Set(ctx, wrongType, "a string, not a stream", 0).Err(); err != nil {
		t.Fatal(err)
	}
	stream := uniqueStream(t, rc)
	user := "kinehook_test_" + strings.ToLower(kinehook.NewID("u")[2:])
	if err := rc.Do(ctx, "ACL", "SETUSER", user, "on", ">right-password", "~*", "+@all").Err(); err != nil {
		t.Fatalf("ACL SETUSER: %v", err)
	}
	t.Cleanup(func() { rc.Do(context.Background(), "ACL", "DELUSER", user) })
	closed := freePort(t)
	strict := redisdest.New(redisdest.Options{Dial: netguard.NewDialContext(netguard.ClientOptions{})})
	defer strict.Close()
	tr := redisdest.New(redisdest.Options{Dial: allowLoopback})
	defer tr.Close()
	tests := []struct {
		name    string
		tr      *redisdest.Transport
		url     string
		stream  string
		creds   map[string]string
		outcome delivery.Outcome
		err     string
	}{
		{"wrong type", tr, sharedURL, wrongType, nil, delivery.OutcomeRefused, "WRONGTYPE"},
		{"wrong password", tr, sharedURL, stream, map[string]string{"username": user, "password": "wrong"}, delivery.OutcomeRefused, "WRONGPASS"},
		{"connection refused", tr, "redis://127.0.0.1:" + closed + "/0", stream, nil, delivery.OutcomeNetworkError, "connection refused"},
		{"guard", strict, sharedURL, stream, nil, delivery.OutcomeNetworkError, "127.0.0.1 is blocked: loopback"},
		{"missing database", tr, "redis://127.0.0.1:6379/9999", stream, nil, delivery.OutcomeRefused, "DB index is out of range"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			res := tc.tr.Send(ctx, signed(t, redisEndpoint(tc.url, tc.stream, 0, tc.creds), `{"event":"media.update.status","data":{}}`))
			if res.Outcome != tc.outcome || !strings.Contains(res.Err, tc.err) {
				t.Errorf("Send = %s %q; want %s containing %q", res.Outcome, res.Err, tc.outcome, tc.err)
			}
		})
	}
	// The right password for the ACL user passes.
	res := tr.Send(ctx, signed(t, redisEndpoint(sharedURL, stream, 0, map[string]string{"username": user, "password": "right-password"}), `{}`))
	if res.Outcome != delivery.OutcomeSuccess {
		t.Errorf("Send as the ACL user = %+v", res)
	}
	if n := rc.XLen(ctx, stream).Val(); n != 1 {
		t.Errorf("%d entries, want only the accepted one", n)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if res := tr.Send(ctx, signed(t, redisEndpoint(sharedURL, stream, 0, nil), `{}`)); res.Outcome != delivery.OutcomeNetworkError {
		t.Errorf("Send after Close = %+v", res)
	}
}

// silentServer accepts connections, counts the XADD commands it reads and
// never answers them; with hangUp it closes the connection after one (the
// reply lost, as when a server dies just after the write).
type silentServer struct {
	ln    net.Listener
	mu    sync.Mutex
	xadds int
	conns int
}

func newSilentServer(t *testing.T, hangUp bool) *silentServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &silentServer{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns++
			s.mu.Unlock()
			go func() {
				defer c.Close()
				var seen []byte
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					seen = append(seen, buf[:n]...)
					if k := bytes.Count(bytes.ToUpper(seen), []byte("XADD")); k > 0 {
						s.mu.Lock()
						s.xadds += k
						s.mu.Unlock()
						seen = seen[:0]
						if hangUp {
							return
						}
					}
					if bytes.Contains(bytes.ToUpper(seen), []byte("HELLO")) { // as a Redis before 6: the client goes on in RESP2
						_, _ = io.WriteString(c, "-ERR unknown command 'HELLO'\r\n")
						seen = seen[:0]
					}
				}
			}()
		}
	}()
	return s
}

func (s *silentServer) counts() (xadds, conns int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.xadds, s.conns
}

// An attempt is one XADD: the client never sends it again by itself,
// neither when no reply comes in time (a timeout) nor when the connection
// drops before the reply (a network error): retrying is the engine's.
func TestOneAttemptOneXADD(t *testing.T) {
	for _, hangUp := range []bool{false, true} {
		t.Run(fmt.Sprintf("hangUp=%v", hangUp), func(t *testing.T) {
			srv := newSilentServer(t, hangUp)
			tr := redisdest.New(redisdest.Options{Dial: allowLoopback})
			defer tr.Close()
			ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
			defer cancel()
			res := tr.Send(ctx, signed(t, redisEndpoint("redis://"+srv.ln.Addr().String(), "s", 0, nil), `{}`))
			want := delivery.OutcomeTimeout
			if hangUp {
				want = delivery.OutcomeNetworkError
			}
			if res.Outcome != want || res.Err == "" {
				t.Errorf("Send = %s %q, want %s", res.Outcome, res.Err, want)
			}
			time.Sleep(300 * time.Millisecond) // room for a retry the client should not make
			if x, c := srv.counts(); x != 1 {
				t.Errorf("the server read %d XADD over %d connections, want exactly 1", x, c)
			}
		})
	}
}

// Clients are shared per (server, credentials), dropped when no endpoint
// uses them (Forget) and when idle, and bounded.
func TestClientsSharedForgottenBounded(t *testing.T) {
	rc := redisClient(t, "127.0.0.1:6379")
	stream := uniqueStream(t, rc)
	tr := redisdest.New(redisdest.Options{Dial: allowLoopback, IdleTimeout: 300 * time.Millisecond})
	defer tr.Close()
	a, b := redisEndpoint(sharedURL, stream, 0, nil), redisEndpoint(sharedURL, stream, 0, nil)
	other := redisEndpoint("redis://127.0.0.1:6379/1", stream, 0, nil)
	for _, ep := range []*kinehook.Endpoint{a, b, a, other} {
		if res := tr.Send(t.Context(), signed(t, ep, `{}`)); res.Outcome != delivery.OutcomeSuccess {
			t.Fatalf("Send = %+v", res)
		}
	}
	t.Cleanup(func() { redisClient(t, "127.0.0.1:6379").Do(context.Background(), "SELECT", 1) })
	if n := tr.Clients(); n != 2 {
		t.Fatalf("%d clients for two endpoints of one server and one of another database, want 2", n)
	}
	tr.Forget(a.ID)
	if n := tr.Clients(); n != 2 {
		t.Errorf("after forgetting one of its two endpoints: %d clients, want 2", n)
	}
	tr.Forget(b.ID)
	if n := tr.Clients(); n != 1 {
		t.Errorf("after forgetting both: %d clients, want 1", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for tr.Clients() != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := tr.Clients(); n != 0 {
		t.Errorf("idle client still open: %d", n)
	}
	if res := tr.Send(t.Context(), signed(t, a, `{}`)); res.Outcome != delivery.OutcomeSuccess {
		t.Fatalf("Send after the idle close = %+v", res)
	}

	bounded := redisdest.New(redisdest.Options{Dial: allowLoopback, MaxClients: 2})
	defer bounded.Close()
	for db := range 5 {
		ep := redisEndpoint(fmt.Sprintf("redis://127.0.0.1:6379/%d", db), stream, 0, nil)
		if res := bounded.Send(t.Context(), signed(t, ep, `{}`)); res.Outcome != delivery.OutcomeSuccess {
			t.Fatalf("Send %d = %+v", db, res)
		}
		if n := bounded.Clients(); n > 2 {
			t.Fatalf("%d clients after %d endpoints, want at most 2", n, db+1)
		}
	}
	// The entries written in databases 1-4 go with the test.
	t.Cleanup(func() {
		for db := 1; db < 5; db++ {
			c := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379", DB: db, Protocol: 2, DisableIdentity: true})
			c.Del(context.Background(), stream)
			c.Close()
		}
	})
}
