package dashboard

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/delivery"
	"github.com/kinehook/kinehook/internal/netguard"
	kafkadest "github.com/kinehook/kinehook/kafka"
	natsdest "github.com/kinehook/kinehook/nats"
	rabbitdest "github.com/kinehook/kinehook/rabbitmq"
	redisdest "github.com/kinehook/kinehook/redis"
	"github.com/kinehook/kinehook/sqlite"
	"github.com/kinehook/kinehook/webhook"
)

// testEnv is a dashboard over a real SQLite store and a real delivery
// engine, with two projects and a loopback sink that can be made to fail.
type testEnv struct {
	t        testing.TB
	store    *sqlite.Store
	engine   *delivery.Engine
	h        *Handler
	srv      *httptest.Server
	adminKey string
	a, b     *kinehook.Project
	keyA     string
	keyB     string
	sink     *sink
}

// sink is a webhook receiver whose answer can be switched to 500.
type sink struct {
	srv  *httptest.Server
	fail atomic.Bool
	hits atomic.Int64
}

func newSink(t testing.TB) *sink {
	s := &sink{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		s.hits.Add(1)
		if s.fail.Load() {
			http.Error(w, "sink is failing on purpose", http.StatusInternalServerError)
			return
		}
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

type envOpts struct {
	secure bool
	// schedule is the engine's retry schedule; nil means one attempt only,
	// so a failing delivery becomes final at once.
	schedule []time.Duration
	// wrapStore, when set, wraps the store the dashboard uses.
	wrapStore func(kinehook.Store) kinehook.Store
	// nats wires the NATS destination (type, transport) as kinehook serve does.
	nats bool
	// rabbitmq wires the RabbitMQ destination the same way.
	rabbitmq bool
	// kafka wires the Kafka destination (type, transport) as kinehook serve does.
	kafka bool
}

func newEnv(t testing.TB, o envOpts) *testEnv {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "kinehook.db"), sqlite.Options{})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	e := &testEnv{t: t, store: st, adminKey: "admin_" + randomToken(), keyA: "key_a_" + randomToken(), keyB: "key_b_" + randomToken()}
	if err := st.SetAdminKeyHash(ctx, kinehook.HashKey(e.adminKey)); err != nil {
		t.Fatalf("set admin key: %v", err)
	}
	e.a = &kinehook.Project{ID: kinehook.NewID(kinehook.PrefixProject), Name: "Alpha video", CreatedAt: time.Now().UTC()}
	e.b = &kinehook.Project{ID: kinehook.NewID(kinehook.PrefixProject), Name: "Beta streams", CreatedAt: time.Now().UTC()}
	if err := st.CreateProject(ctx, e.a, kinehook.HashKey(e.keyA)); err != nil {
		t.Fatalf("create project: %v", err)
	}
	if err := st.CreateProject(ctx, e.b, kinehook.HashKey(e.keyB)); err != nil {
		t.Fatalf("create project: %v", err)
	}
	schedule := o.schedule
	if schedule == nil {
		schedule = []time.Duration{}
	}
	transports := webhook.Transports(webhook.Options{})
	var dests []kinehook.DestinationType
	if o.nats {
		transports[kinehook.EndpointNATS] = natsdest.New(natsdest.Options{Dial: netguard.NewDialContext(netguard.ClientOptions{AllowPrivate: true})})
		dests = append(dests, natsdest.Type{})
		transports[kinehook.EndpointRedis] = redisdest.New(redisdest.Options{Dial: netguard.NewDialContext(netguard.ClientOptions{AllowPrivate: true})})
		dests = append(dests, redisdest.Type{})
	}
	if o.rabbitmq {
		transports[kinehook.EndpointRabbitMQ] = rabbitdest.New(rabbitdest.Options{Dial: netguard.NewDialContext(netguard.ClientOptions{AllowPrivate: true})})
		dests = append(dests, rabbitdest.Type{})
	}
	if o.kafka {
		transports[kinehook.EndpointKafka] = kafkadest.New(kafkadest.Options{Dial: netguard.NewDialContext(netguard.ClientOptions{AllowPrivate: true})})
		dests = append(dests, kafkadest.Type{})
	}
	eng, err := delivery.New(delivery.Config{Store: st, RetrySchedule: schedule, RequestTimeout: 5 * time.Second,
		Transports: transports})
	if err != nil {
		t.Fatalf("engine: %v", err)
	}
	if err := eng.Start(ctx); err != nil {
		t.Fatalf("start engine: %v", err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = eng.Shutdown(sctx)
	})
	e.engine = eng
	var ds kinehook.Store = st
	if o.wrapStore != nil {
		ds = o.wrapStore(st)
	}
	h, err := New(Config{Store: ds, Dispatcher: eng, SecureCookies: o.secure, LiveInterval: 50 * time.Millisecond, Destinations: dests})
	if err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	e.h = h
	e.srv = httptest.NewServer(h)
	t.Cleanup(e.srv.Close)
	e.sink = newSink(t)
	return e
}

// browser is a cookie-keeping client that does not follow redirects, so
// tests see every 303 and its Location.
type browser struct {
	t    testing.TB
	env  *testEnv
	c    *http.Client
	csrf string
}

func (e *testEnv) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: e.t, env: e, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

// page is an answer as the tests look at it.
type page struct {
	status   int
	location string
	body     string
	header   http.Header
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (b *browser) do(req *http.Request) *page {
	b.t.Helper()
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	p := &page{status: res.StatusCode, location: res.Header.Get("Location"), body: string(body), header: res.Header}
	if m := csrfRE.FindStringSubmatch(p.body); m != nil {
		b.csrf = m[1]
	}
	return p
}

func (b *browser) get(path string) *page {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.env.srv.URL+path, nil)
	return b.do(req)
}

// post sends a form with the browser's current CSRF token (unless the form
// sets "csrf" itself).
func (b *browser) post(path string, form url.Values) *page {
	b.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", b.csrf)
	}
	req, _ := http.NewRequest(http.MethodPost, b.env.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// follow gets the Location of a redirect.
func (b *browser) follow(p *page) *page {
	b.t.Helper()
	if p.status != http.StatusSeeOther {
		b.t.Fatalf("want 303, got %d: %s", p.status, snippet(p.body))
	}
	return b.get(p.location)
}

// login signs in with key and expects success; it returns the redirect target.
func (b *browser) login(key string) string {
	b.t.Helper()
	b.get("/login")
	p := b.post("/login", url.Values{"key": {key}})
	if p.status != http.StatusSeeOther {
		b.t.Fatalf("login: want 303, got %d: %s", p.status, snippet(p.body))
	}
	b.get(p.location) // picks up the session's CSRF token
	return p.location
}

func snippet(s string) string {
	if i := strings.Index(s, `<main`); i >= 0 {
		s = s[i:]
	}
	if len(s) > 1500 {
		s = s[:1500]
	}
	return s
}

// mustContain fails unless the page body contains every string, as written
// or once HTML entities are decoded.
func mustContain(t *testing.T, p *page, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(p.body, w) && !strings.Contains(html.UnescapeString(p.body), w) {
			t.Errorf("page (status %d) lacks %q:\n%s", p.status, w, snippet(p.body))
		}
	}
}

// waitDeliveries polls the store until the event's deliveries are all in
// status want (or the deadline passes) and returns them.
func (e *testEnv) waitDeliveries(projectID, eventID string, want kinehook.DeliveryStatus) []*kinehook.Delivery {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ds, err := e.store.ListDeliveries(context.Background(), projectID, eventID)
		if err != nil {
			e.t.Fatalf("list deliveries: %v", err)
		}
		done := len(ds) > 0
		for _, d := range ds {
			done = done && d.Status == want
		}
		if done {
			return ds
		}
		if time.Now().After(deadline) {
			for _, d := range ds {
				e.t.Logf("delivery %s: %s after %d attempts (%d %s)", d.ID, d.Status, d.Attempts, d.LastStatusCode, d.LastError)
			}
			e.t.Fatalf("deliveries of %s did not all reach %s", eventID, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// createEndpoint makes an endpoint straight in the store and tells the engine.
func (e *testEnv) createEndpoint(p *kinehook.Project, u string, types ...string) *kinehook.Endpoint {
	e.t.Helper()
	now := time.Now().UTC()
	ep := &kinehook.Endpoint{ID: kinehook.NewID(kinehook.PrefixEndpoint), ProjectID: p.ID, URL: u, EventTypes: types,
		Secrets: []kinehook.EndpointSecret{{Value: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}, Scheme: kinehook.SchemeV1, CreatedAt: now, UpdatedAt: now}
	if err := e.store.CreateEndpoint(context.Background(), ep); err != nil {
		e.t.Fatalf("create endpoint: %v", err)
	}
	e.engine.EndpointChanged(context.Background(), p.ID, ep.ID)
	return ep
}

// publish posts an event through the engine, as the API would.
func (e *testEnv) publish(p *kinehook.Project, body string) *kinehook.Event {
	e.t.Helper()
	parsed, err := kinehook.ParseStrict([]byte(body))
	if err != nil {
		e.t.Fatalf("parse %s: %v", body, err)
	}
	ev := &kinehook.Event{ID: kinehook.NewID(kinehook.PrefixEvent), ProjectID: p.ID, Type: parsed.Type, Payload: []byte(body),
		ResourceKey: parsed.ResourceKey(), CreatedAt: time.Now().UTC()}
	res, err := e.engine.Publish(context.Background(), ev)
	if err != nil {
		e.t.Fatalf("publish: %v", err)
	}
	return res.Event
}
