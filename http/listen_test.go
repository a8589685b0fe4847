package http

import (
	"context"
	"encoding/json"
	"log/slog"
	nethttp "net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/app"
	"github.com/kinehook/kinehook/delivery"
	"github.com/kinehook/kinehook/relay"
	"github.com/kinehook/kinehook/sqlite"
	"github.com/kinehook/kinehook/webhook"
)

// newListenEnv is env with a relay hub wired as cmd/kinehook wires it: the
// engine's cli transport and the app's relay.
func newListenEnv(t testing.TB) *env {
	e, _ := newListenEnvHub(t)
	return e
}

// newListenEnvHub is newListenEnv, also returning the hub.
func newListenEnvHub(t testing.TB) (*env, *relay.Hub) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "kinehook.db"), sqlite.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	hub := relay.New(relay.Options{NotConnectedRetry: time.Second})
	tr := webhook.Transports(webhook.Options{})
	tr[kinehook.EndpointCLI] = hub
	eng, err := delivery.New(delivery.Config{Store: st, Transports: tr, RetrySchedule: []time.Duration{50 * time.Millisecond, 50 * time.Millisecond},
		RequestTimeout: 2 * time.Second, Logger: tbLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(ctx); err != nil {
		t.Fatal(err)
	}
	a, err := app.New(app.Config{Store: st, Dispatcher: eng, AdminKeyHash: kinehook.HashKey(testAdminKey), Relay: hub, ListenGrace: 3 * time.Second}) // heartbeat every second
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(Config{Store: st, Dispatcher: eng, App: a, RateLimit: -1, Logger: tbLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{store: st, engine: eng, srv: srv, api: httptest.NewServer(srv)}
	if tt, ok := t.(*testing.T); ok {
		e.t = tt
	}
	t.Cleanup(func() {
		e.api.Close()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = eng.Shutdown(sctx)
		_ = st.Close()
	})
	return e, hub
}

// tbLogger logs warnings into a test's output; a benchmark's are dropped.
func tbLogger(t testing.TB) *slog.Logger {
	if tt, ok := t.(*testing.T); ok {
		return newTestLogger(tt)
	}
	return slog.New(slog.DiscardHandler)
}

// dialListen opens the listen WebSocket as the CLI does.
func (e *env) dialListen(ctx context.Context, pid, key, query string) (*websocket.Conn, *nethttp.Response, error) {
	u := "ws" + strings.TrimPrefix(e.api.URL, "http") + "/v1/projects/" + pid + "/listen"
	if query != "" {
		u += "?" + query
	}
	return websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: nethttp.Header{"Authorization": {"Bearer " + key}}})
}

func readFrame(t *testing.T, ctx context.Context, c *websocket.Conn) *kinehook.ListenFrame {
	t.Helper()
	_, data, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read frame: %v", err)
	}
	f, err := kinehook.ParseListenFrame(data)
	if err != nil {
		t.Fatalf("frame %s: %v", data, err)
	}
	return f
}

// TestListenRefusals: the route answers JSON errors before any upgrade: no
// key, a read key, a plain GET, a bad filter, a webhook endpoint to resume.
func TestListenRefusals(t *testing.T) {
	e := newListenEnv(t)
	pid, key := e.project("p")
	read := e.must(e.do("POST", "/v1/projects/"+pid+"/keys", key, map[string]any{"name": "r", "scope": "read"}), 201).json(t)["key"].(string)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	web := e.must(e.do("POST", "/v1/projects/"+pid+"/endpoints", key, map[string]any{"url": "https://example.com/hook"}), 201).json(t)["id"].(string)
	for _, tc := range []struct {
		name, key, query string
		status           int
	}{
		{"no key", "", "", 401},
		{"read key", read, "", 403},
		{"other project", key, "", 404},
		{"bad filter", key, "events=nope.*", 422},
		{"webhook endpoint", key, "endpoint_id=" + web, 422},
		{"unknown parameter", key, "event=media.*", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := pid
			if tc.name == "other project" {
				p = "prj_other"
			}
			_, res, err := e.dialListen(ctx, p, tc.key, tc.query)
			if err == nil || res == nil || res.StatusCode != tc.status {
				t.Fatalf("dial: %v, %v; want %d", err, res, tc.status)
			}
		})
	}
	if r := e.do("GET", "/v1/projects/"+pid+"/listen", key, nil); r.status != 400 || r.errCode() != kinehook.EMALFORMED {
		t.Errorf("plain GET: %d %s", r.status, r.body)
	}
	if r := e.must(e.do("GET", "/v1/projects/"+pid+"/endpoints", key, nil), 200); strings.Contains(string(r.body), `"cli"`) {
		t.Errorf("a refused listen left an endpoint: %s", r.body)
	}
}

// TestListenRelaysDeliveries: over the WebSocket the CLI gets a hello with
// the endpoint and its secret, then a delivery frame per attempt signed
// with that secret; its result frames are the attempts' outcomes (a 500
// retried, then a 200); closing marks the endpoint disconnected, and a
// reconnect with endpoint_id resumes it and its pending delivery.
func TestListenRelaysDeliveries(t *testing.T) {
	e := newListenEnv(t)
	pid, key := e.project("p")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, _, err := e.dialListen(ctx, pid, key, "events=media.*")
	if err != nil {
		t.Fatal(err)
	}
	hello := readFrame(t, ctx, c)
	if hello.Type != kinehook.FrameHello || hello.ProjectID != pid || !strings.HasPrefix(hello.Secret, "whsec_") || hello.Resumed {
		t.Fatalf("hello %+v", hello)
	}
	eid := hello.EndpointID
	ep := e.must(e.do("GET", "/v1/projects/"+pid+"/endpoints/"+eid, key, nil), 200).json(t)
	if ep["type"] != "cli" || !ep["config"].(map[string]any)["connected"].(bool) {
		t.Errorf("endpoint %v", ep)
	}
	v, err := kinehook.NewVerifier([]string{hello.Secret})
	if err != nil {
		t.Fatal(err)
	}
	body := mediaEvent("v1", "done")
	evID := e.must(e.do("POST", "/v1/projects/"+pid+"/events", key, body), 202).json(t)["id"].(string)
	answer := func(f *kinehook.ListenFrame, status int) {
		b, _ := json.Marshal(&kinehook.ListenFrame{Type: kinehook.FrameResult, ID: f.ID, Status: status, DurationMS: 1, Response: "local " + nethttp.StatusText(status)})
		if err := c.Write(ctx, websocket.MessageText, b); err != nil {
			t.Fatal(err)
		}
	}
	for i, status := range []int{500, 200} {
		f := readFrame(t, ctx, c)
		h := nethttp.Header{}
		for k, val := range f.Headers {
			h.Set(k, val)
		}
		if f.Type != kinehook.FrameDelivery || f.WebhookID != evID || string(f.Body) != body || f.Resource != "v1" || f.TimeoutMS <= 0 {
			t.Fatalf("delivery %d: %+v", i, f)
		}
		if err := v.Verify(h, f.Body, time.Now()); err != nil {
			t.Errorf("delivery %d signature: %v", i, err)
		}
		answer(f, status)
	}
	var dl []*kinehook.Delivery
	waitFor(t, "the delivery succeeded", func() bool {
		ds, err := e.store.ListDeliveries(ctx, pid, evID)
		dl = ds
		return err == nil && len(ds) == 1 && ds[0].Status == kinehook.DeliverySucceeded
	})
	atts, err := e.store.ListAttempts(ctx, pid, dl[0].ID)
	if err != nil || len(atts) != 2 || atts[0].StatusCode != 500 || atts[1].StatusCode != 200 || atts[0].ResponseBody != "local Internal Server Error" {
		t.Fatalf("attempts %+v %v", atts, err)
	}

	// A frame that is no result ends the connection.
	bad, _, err := e.dialListen(ctx, pid, key, "endpoint_id="+eid)
	if err != nil {
		t.Fatal(err)
	}
	if h := readFrame(t, ctx, bad); !h.Resumed || h.EndpointID != eid || h.Secret != hello.Secret {
		t.Errorf("resume hello %+v", h)
	}
	// The first connection was replaced.
	if _, _, err := c.Read(ctx); websocket.CloseStatus(err) == -1 {
		t.Errorf("replaced connection: %v, want a close", err)
	}
	if err := bad.Write(ctx, websocket.MessageText, []byte(`{"type":"hello"}`)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := bad.Read(ctx); websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
		t.Errorf("after a bad frame: %v, want policy violation", err)
	}
	waitFor(t, "the endpoint marked disconnected", func() bool {
		got, err := e.store.GetEndpoint(ctx, pid, eid)
		return err == nil && !kinehook.ParseListenerState(got.Config).Connected
	})

	// Disconnected: the next event waits, backing off, until a reconnect.
	ev2 := e.must(e.do("POST", "/v1/projects/"+pid+"/events", key, mediaEvent("v2", "done")), 202).json(t)["id"].(string)
	waitFor(t, "an attempt while disconnected", func() bool {
		ds, err := e.store.ListDeliveries(ctx, pid, ev2)
		if err != nil || len(ds) != 1 {
			return false
		}
		as, err := e.store.ListAttempts(ctx, pid, ds[0].ID)
		return err == nil && len(as) > 0 && as[0].Error == relay.ErrNotConnected
	})
	c2, _, err := e.dialListen(ctx, pid, key, "endpoint_id="+eid)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.CloseNow()
	if h := readFrame(t, ctx, c2); h.EndpointID != eid {
		t.Fatalf("hello %+v", h)
	}
	if f := readFrame(t, ctx, c2); f.WebhookID != ev2 {
		t.Fatalf("after the reconnect got %+v, want %s", f, ev2)
	}
	// Deleting the endpoint ends its connection (at the next heartbeat) with
	// the code that makes the CLI reconnect for a new one.
	e.must(e.do("DELETE", "/v1/projects/"+pid+"/endpoints/"+eid, key, nil), 204)
	var err2 error
	for err2 == nil {
		_, _, err2 = c2.Read(ctx)
	}
	if websocket.CloseStatus(err2) != CloseListenerEnded || !strings.Contains(err2.Error(), "not found") {
		t.Errorf("after the endpoint's deletion: %v, want close %d", err2, CloseListenerEnded)
	}
}

// BenchmarkRelayRoundTrip measures one attempt through the relay and a real
// WebSocket: hub.Send, the delivery frame to a client that answers at once,
// its result frame back (no local app), with attempts in flight in parallel.
func BenchmarkRelayRoundTrip(b *testing.B) {
	e, hub := newListenEnvHub(b)
	ctx := context.Background()
	p, key, err := e.srv.app.CreateProject(ctx, app.ProjectInput{Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	c, _, err := e.dialListen(ctx, p.ID, key, "")
	if err != nil {
		b.Fatal(err)
	}
	defer c.CloseNow()
	_, data, err := c.Read(ctx)
	if err != nil {
		b.Fatal(err)
	}
	hello, err := kinehook.ParseListenFrame(data)
	if err != nil {
		b.Fatal(err)
	}
	go func() {
		for {
			_, data, err := c.Read(ctx)
			if err != nil {
				return
			}
			f, err := kinehook.ParseListenFrame(data)
			if err != nil {
				return
			}
			out, _ := json.Marshal(&kinehook.ListenFrame{Type: kinehook.FrameResult, ID: f.ID, Status: 200})
			if c.Write(ctx, websocket.MessageText, out) != nil {
				return
			}
		}
	}()
	ep := &kinehook.Endpoint{ID: hello.EndpointID, ProjectID: p.ID, Type: kinehook.EndpointCLI}
	body := []byte(mediaEvent("v1", "done"))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			r := hub.Send(sctx, delivery.Message{Endpoint: ep, ID: "msg_bench", Timestamp: "1", Signature: "v1,x", Body: body, Now: time.Now()})
			cancel()
			if r.Outcome != delivery.OutcomeSuccess {
				b.Errorf("outcome %v %s", r.Outcome, r.Err)
				return
			}
		}
	})
}

// TestListenerHelloFirst: a delivery sent to a connection before its hello
// (the app attaches the listener, then greets) waits, and the CLI reads the
// hello first.
func TestListenerHelloFirst(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conns := make(chan *websocket.Conn, 1)
	srv := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		conns <- c
		<-ctx.Done()
	}))
	defer srv.Close()
	client, _, err := websocket.Dial(ctx, srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.CloseNow()
	l := newWSListener(<-conns)
	sent := make(chan error, 1)
	go func() {
		sent <- l.Send(ctx, &kinehook.ListenFrame{Type: kinehook.FrameDelivery, ID: "d1", Body: []byte(`{}`)})
	}()
	select {
	case err := <-sent:
		t.Fatalf("a delivery went out before the hello (err %v)", err)
	case <-time.After(100 * time.Millisecond):
	}
	if err := l.Send(ctx, &kinehook.ListenFrame{Type: kinehook.FrameHello, EndpointID: "ep_1", Secret: "whsec_test"}); err != nil {
		t.Fatal(err)
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	// A second hello (the app sends one; this is the listener's own guard)
	// is written, not a panic on the closed gate.
	if err := l.Send(ctx, &kinehook.ListenFrame{Type: kinehook.FrameHello, EndpointID: "ep_1", Secret: "whsec_test"}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{kinehook.FrameHello, kinehook.FrameDelivery, kinehook.FrameHello} {
		if f := readFrame(t, ctx, client); f.Type != want {
			t.Fatalf("read a %s frame, want %s", f.Type, want)
		}
	}
}
