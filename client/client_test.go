package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/client"
	khttp "github.com/kinehook/kinehook/http"
	"github.com/kinehook/kinehook/internal/stacktest"
)

const adminKey = "kh_admin_client_test"

// testServer is the real API (http.Server on a real SQLite file with the real
// delivery engine) and a sink endpoints can point at.
type testServer struct {
	url      string
	store    kinehook.Store
	sink     *httptest.Server
	sinkCode atomic.Int32
	mu       sync.Mutex
	agents   []string
}

// project makes a project with the admin key and returns it with a client
// holding its own key.
func (ts *testServer) project(t *testing.T, name string) (*client.ProjectWithKey, *client.Client) {
	t.Helper()
	p, err := client.New(ts.url, adminKey).CreateProject(t.Context(), name)
	if err != nil {
		t.Fatalf("create project %s: %v", name, err)
	}
	return p, client.New(ts.url, p.APIKey)
}

func newTestServer(t *testing.T, cfg func(*khttp.Config)) *testServer {
	t.Helper()
	ts := &testServer{}
	ts.sinkCode.Store(200)
	stack := stacktest.Start(t, adminKey, cfg, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ts.mu.Lock()
			ts.agents = append(ts.agents, r.UserAgent())
			ts.mu.Unlock()
			next.ServeHTTP(w, r)
		})
	})
	ts.sink = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(int(ts.sinkCode.Load()))
	}))
	t.Cleanup(ts.sink.Close)
	ts.url = stack.URL
	ts.store = stack.Store
	return ts
}

// ListEndpoints follows every page: a project with more endpoints than one
// page holds (1,000) gets them all, oldest first; ListEndpointsPage gives
// one page and its cursor.
func TestListEndpointsFollowsPages(t *testing.T) {
	ts := newTestServer(t, nil)
	p, c := ts.project(t, "many")
	ctx := t.Context()
	const n = 1003
	t0 := time.Now().UTC().Truncate(time.Millisecond)
	want := make([]string, 0, n)
	for i := range n {
		// Straight into the store: 1,003 API calls would be slow. Distinct
		// creation times keep the expected order simple.
		at := t0.Add(time.Duration(i) * time.Millisecond)
		e := &kinehook.Endpoint{ID: kinehook.NewID(kinehook.PrefixEndpoint), ProjectID: p.ID, URL: fmt.Sprintf("%s/e/%d", ts.sink.URL, i),
			Secrets: []kinehook.EndpointSecret{{Value: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}, CreatedAt: at, UpdatedAt: at}
		if err := ts.store.CreateEndpoint(ctx, e); err != nil {
			t.Fatal(err)
		}
		want = append(want, e.ID)
	}
	tests := []struct {
		name string
		list func() ([]string, error)
	}{
		{"ListEndpoints", func() ([]string, error) {
			eps, err := c.ListEndpoints(ctx, p.ID)
			return ids(eps), err
		}},
		{"ListEndpointsPage by 400", func() ([]string, error) {
			var out []string
			o := client.EndpointListOptions{Limit: 400}
			for pages := 0; pages < 10; pages++ {
				page, err := c.ListEndpointsPage(ctx, p.ID, o)
				if err != nil {
					return nil, err
				}
				if len(page.Data) > 400 {
					return nil, fmt.Errorf("a page of %d", len(page.Data))
				}
				out = append(out, ids(page.Data)...)
				if page.NextCursor == "" {
					return out, nil
				}
				o.Cursor = page.NextCursor
			}
			return nil, errors.New("paging does not end")
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.list()
			if err != nil || strings.Join(got, ",") != strings.Join(want, ",") {
				t.Fatalf("%d endpoints, %v; want all %d in creation order", len(got), err, n)
			}
		})
	}
}

func ids(eps []*client.Endpoint) []string {
	out := make([]string, len(eps))
	for i, e := range eps {
		out[i] = e.ID
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(15 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestHealthCatalogAndUserAgent(t *testing.T) {
	ts := newTestServer(t, nil)
	ctx := context.Background()
	c := client.New(ts.url+"/", "", client.WithUserAgent("probe/2"), client.WithHTTPClient(&http.Client{Timeout: 5 * time.Second}))
	if c.BaseURL() != ts.url {
		t.Errorf("BaseURL %q, want %q (trailing slash trimmed)", c.BaseURL(), ts.url)
	}
	if err := c.Health(ctx); err != nil {
		t.Fatalf("health: %v", err)
	}
	if err := c.Ready(ctx); err != nil {
		t.Fatalf("ready: %v", err)
	}
	types, err := c.EventTypes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(types) != len(kinehook.EventTypes) || types[0].Name != kinehook.EventMediaUpdateStatus || len(types[0].Schema) == 0 {
		t.Fatalf("event types: %+v", types)
	}
	doc, err := c.OpenAPI(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var oa struct {
		OpenAPI string `json:"openapi"`
	}
	if err := json.Unmarshal(doc, &oa); err != nil || !strings.HasPrefix(oa.OpenAPI, "3.1") {
		t.Fatalf("openapi document: %v %q", err, oa.OpenAPI)
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for _, ua := range ts.agents {
		if ua != "probe/2" {
			t.Fatalf("User-Agent %q, want probe/2", ua)
		}
	}
}

func TestErrorsCarryTheAPICode(t *testing.T) {
	ts := newTestServer(t, nil)
	ctx := context.Background()
	admin := client.New(ts.url, adminKey)
	p, err := admin.CreateProject(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		call   func() error
		status int
		code   string
		field  string
	}{
		{"no key", func() error { _, err := client.New(ts.url, "").ListProjects(ctx); return err }, 401, kinehook.EUNAUTHORIZED, ""},
		{"wrong key", func() error { _, err := client.New(ts.url, "kh_nope").ListProjects(ctx); return err }, 401, kinehook.EUNAUTHORIZED, ""},
		{"project key on admin route", func() error { _, err := client.New(ts.url, p.APIKey).CreateProject(ctx, "x"); return err }, 403, "forbidden", ""},
		{"unknown endpoint", func() error { _, err := admin.GetEndpoint(ctx, p.ID, "ep_nope"); return err }, 404, kinehook.ENOTFOUND, ""},
		{"bad url", func() error {
			_, err := admin.CreateEndpoint(ctx, p.ID, client.EndpointCreate{URL: "ftp://x"})
			return err
		}, 422, kinehook.EINVALID, "url"},
		{"unknown status", func() error {
			_, err := admin.SendEvent(ctx, p.ID, kinehook.EventMediaUpdateStatus, map[string]string{"id": "v", "status": "failed"}, "")
			return err
		}, 422, kinehook.EINVALID, "data.status"},
		{"malformed body", func() error { _, err := admin.SendEventBody(ctx, p.ID, []byte(`{"event":`), ""); return err }, 400, kinehook.EMALFORMED, ""},
		{"oversize", func() error {
			big := `{"event":"media.update.status","data":{"id":"` + strings.Repeat("x", 2<<20) + `","status":"done"}}`
			_, err := admin.SendEventBody(ctx, p.ID, []byte(big), "")
			return err
		}, 413, kinehook.ETOOLARGE, ""},
		{"admin key on webhooks", func() error { _, err := admin.ListWebhooks(ctx); return err }, 400, kinehook.EMALFORMED, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			var ae *client.Error
			if !errors.As(err, &ae) {
				t.Fatalf("error %v (%T) is not a *client.Error", err, err)
			}
			if ae.StatusCode != tc.status || ae.Code != tc.code || ae.Message == "" || (tc.field != "" && ae.Field != tc.field) {
				t.Fatalf("got %+v, want status %d code %q field %q", ae, tc.status, tc.code, tc.field)
			}
			if client.ErrorCode(err) != tc.code || client.IsNotFound(err) != (tc.status == 404) {
				t.Fatalf("ErrorCode/IsNotFound disagree with %+v", ae)
			}
			if !strings.Contains(err.Error(), tc.code) {
				t.Fatalf("message %q lacks the code", err.Error())
			}
		})
	}
	// A network error is not an API error.
	_, err = client.New("http://127.0.0.1:1", adminKey).ListProjects(ctx)
	if err == nil || client.ErrorCode(err) != "" {
		t.Fatalf("network error: %v", err)
	}
}

func TestRateLimitedCarriesRetryAfter(t *testing.T) {
	ts := newTestServer(t, func(c *khttp.Config) { c.RateLimit, c.RateBurst = 1, 1 })
	c := client.New(ts.url, adminKey)
	var ae *client.Error
	for range 5 {
		if _, err := c.ListProjects(context.Background()); errors.As(err, &ae) {
			break
		}
	}
	if ae == nil || ae.StatusCode != 429 || ae.Code != kinehook.ERATELIMITED || ae.RetryAfter < time.Second {
		t.Fatalf("throttled answer: %+v", ae)
	}
}

func TestProjectsEndpointsEventsDeliveries(t *testing.T) {
	ts := newTestServer(t, nil)
	ctx := context.Background()
	admin := client.New(ts.url, adminKey)
	p, err := admin.CreateProject(ctx, "Acme")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(p.ID, "prj_") || p.APIKey == "" || p.Name != "Acme" || p.CreatedAt.IsZero() {
		t.Fatalf("created project: %+v", p)
	}
	ps, err := admin.ListProjects(ctx)
	if err != nil || len(ps) != 1 || ps[0].ID != p.ID {
		t.Fatalf("list projects: %v %+v", err, ps)
	}
	c := client.New(ts.url, p.APIKey)
	got, err := c.GetProject(ctx, p.ID)
	if err != nil || got.Name != "Acme" {
		t.Fatalf("get project with its key: %v %+v", err, got)
	}

	ep, err := c.CreateEndpoint(ctx, p.ID, client.EndpointCreate{
		URL: ts.sink.URL, EventTypes: []string{"media.update.status", "live.*"}, Description: "sync",
		Headers: map[string]string{"X-Env": "test"}, RateLimit: 50, MaxInFlight: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ep.Secret, "whsec_") || ep.URL != ts.sink.URL || len(ep.EventTypes) != 2 || ep.Headers["X-Env"] != "****" || ep.MaxInFlight != 2 {
		t.Fatalf("created endpoint: %+v", ep)
	}
	// PATCH sends only the set fields: the description and headers stay.
	up, err := c.UpdateEndpoint(ctx, p.ID, ep.ID, client.EndpointUpdate{Disabled: client.Ptr(true), EventTypes: client.Ptr([]string{"live.*"})})
	if err != nil {
		t.Fatal(err)
	}
	if !up.Disabled || len(up.EventTypes) != 1 || up.Description != "sync" || up.Headers["X-Env"] != "****" || up.Secret != ep.Secret {
		t.Fatalf("updated endpoint: %+v", up)
	}
	up, err = c.UpdateEndpoint(ctx, p.ID, ep.ID, client.EndpointUpdate{Disabled: client.Ptr(false), EventTypes: client.Ptr([]string{})})
	if err != nil || up.Disabled || len(up.EventTypes) != 0 {
		t.Fatalf("re-enabled endpoint: %v %+v", err, up)
	}
	eps, err := c.ListEndpoints(ctx, p.ID)
	if err != nil || len(eps) != 1 || eps[0].ID != ep.ID {
		t.Fatalf("list endpoints: %v %+v", err, eps)
	}
	sec, err := c.EndpointSecret(ctx, p.ID, ep.ID)
	if err != nil || sec != ep.Secret {
		t.Fatalf("secret %q %v, want %q", sec, err, ep.Secret)
	}
	rot, err := c.RotateEndpointSecret(ctx, p.ID, ep.ID)
	if err != nil || rot == sec || !strings.HasPrefix(rot, "whsec_") {
		t.Fatalf("rotated %q %v", rot, err)
	}

	// Events: idempotency, paging, the iterator.
	first, err := c.SendEvent(ctx, p.ID, kinehook.EventMediaUpdateStatus, kinehook.MediaData{ID: "vid-1", Status: kinehook.StatusDone}, "idem-1")
	if err != nil {
		t.Fatal(err)
	}
	dup, err := c.SendEvent(ctx, p.ID, kinehook.EventMediaUpdateStatus, kinehook.MediaData{ID: "vid-1", Status: kinehook.StatusDone}, "idem-1")
	if err != nil || dup.ID != first.ID {
		t.Fatalf("idempotent repeat: %v, %s vs %s", err, dup.ID, first.ID)
	}
	if body, _ := first.Body(); string(body) != `{"event":"media.update.status","data":{"id":"vid-1","status":"done"}}` {
		t.Fatalf("event body %s", body)
	}
	ids := []string{first.ID}
	for i := range 6 {
		ev, err := c.SendEventBody(ctx, p.ID, []byte(`{"event":"live.created","data":{"event_id":"live-`+string(rune('a'+i))+`"}}`), "")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ev.ID)
	}
	page, err := c.ListEvents(ctx, p.ID, client.EventListOptions{Limit: 4})
	if err != nil || len(page.Data) != 4 || page.NextCursor == "" || page.Data[0].ID != ids[6] {
		t.Fatalf("first page: %v %+v", err, page)
	}
	var all []string
	for ev, err := range c.AllEvents(ctx, p.ID, client.EventListOptions{Limit: 3}) {
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, ev.ID)
	}
	if len(all) != 7 || all[0] != ids[6] || all[6] != ids[0] {
		t.Fatalf("iterator gave %v", all)
	}
	// Breaking out of the iterator early is fine.
	n := 0
	for range c.AllEvents(ctx, p.ID, client.EventListOptions{Limit: 2}) {
		if n++; n == 3 {
			break
		}
	}
	onlyMedia, err := c.ListEvents(ctx, p.ID, client.EventListOptions{Event: kinehook.EventMediaUpdateStatus})
	if err != nil || len(onlyMedia.Data) != 1 || onlyMedia.Data[0].ID != first.ID {
		t.Fatalf("type filter: %v %+v", err, onlyMedia)
	}
	byRes, err := c.ListEvents(ctx, p.ID, client.EventListOptions{ResourceKey: "live-c"})
	if err != nil || len(byRes.Data) != 1 || byRes.Data[0].ID != ids[3] {
		t.Fatalf("resource filter: %v %+v", err, byRes)
	}
	ev, err := c.GetEvent(ctx, p.ID, first.ID)
	if err != nil || ev.Event != kinehook.EventMediaUpdateStatus || !strings.Contains(string(ev.Data), "vid-1") {
		t.Fatalf("get event: %v %+v", err, ev)
	}

	// Deliveries, attempts, retry, recover.
	var d *kinehook.Delivery
	waitFor(t, "delivery success", func() bool {
		ds, err := c.ListDeliveries(ctx, p.ID, first.ID)
		if err != nil || len(ds) != 1 {
			return false
		}
		d = ds[0]
		return d.Status == kinehook.DeliverySucceeded
	})
	if d.EndpointID != ep.ID || d.EventID != first.ID || d.LastStatusCode != 200 {
		t.Fatalf("delivery: %+v", d)
	}
	atts, err := c.ListAttempts(ctx, p.ID, d.ID)
	if err != nil || len(atts) != 1 || atts[0].StatusCode != 200 || atts[0].AttemptedAt.IsZero() {
		t.Fatalf("attempts: %v %+v", err, atts)
	}
	ts.sinkCode.Store(500)
	re, err := c.RetryDelivery(ctx, p.ID, d.ID)
	if err != nil || re.ID != d.ID {
		t.Fatalf("retry: %v %+v", err, re)
	}
	waitFor(t, "the retried delivery to fail", func() bool {
		got, err := c.GetDelivery(ctx, p.ID, d.ID)
		return err == nil && got.Status == kinehook.DeliveryFailed && got.Attempts >= 2 && got.LastStatusCode == 500
	})
	ts.sinkCode.Store(200)
	rec, err := c.RecoverEndpoint(ctx, p.ID, ep.ID, time.Now().Add(-time.Hour))
	if err != nil || rec.Recovered != 1 {
		t.Fatalf("recover: %v %+v", err, rec)
	}
	waitFor(t, "the recovered delivery to succeed", func() bool {
		got, err := c.GetDelivery(ctx, p.ID, d.ID)
		return err == nil && got.Status == kinehook.DeliverySucceeded
	})

	if err := c.DeleteEndpoint(ctx, p.ID, ep.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetEndpoint(ctx, p.ID, ep.ID); !client.IsNotFound(err) {
		t.Fatalf("get after delete: %v", err)
	}
}

func TestKinescopeWebhooks(t *testing.T) {
	ts := newTestServer(t, nil)
	ctx := context.Background()
	p, c := ts.project(t, "k")
	wh, err := c.CreateWebhook(ctx, client.WebhookInput{Name: "status", Endpoint: ts.sink.URL, Login: "u", Password: "pw", Events: []string{"media.update.status"}})
	if err != nil {
		t.Fatal(err)
	}
	if wh.ID == "" || wh.Name != "status" || wh.Endpoint != ts.sink.URL || wh.Login != "u" || len(wh.Events) != 1 {
		t.Fatalf("created webhook: %+v", wh)
	}
	list, err := c.ListWebhooks(ctx)
	if err != nil || len(list) != 1 || list[0].ID != wh.ID {
		t.Fatalf("list: %v %+v", err, list)
	}
	up, err := c.UpdateWebhook(ctx, wh.ID, client.WebhookInput{Name: "renamed", Endpoint: ts.sink.URL + "/v2", Events: []string{"live.finished", "live.cancelled"}})
	if err != nil || up.Name != "renamed" || up.Endpoint != ts.sink.URL+"/v2" || len(up.Events) != 2 {
		t.Fatalf("update: %v %+v", err, up)
	}
	got, err := c.GetWebhook(ctx, wh.ID)
	if err != nil || got.Name != "renamed" {
		t.Fatalf("get: %v %+v", err, got)
	}
	// The webhook is an endpoint of the project.
	ep, err := c.GetEndpoint(ctx, p.ID, wh.ID)
	if err != nil || ep.URL != ts.sink.URL+"/v2" {
		t.Fatalf("webhook as endpoint: %v %+v", err, ep)
	}
	if _, err := c.CreateWebhook(ctx, client.WebhookInput{Name: "x", Endpoint: ts.sink.URL}); client.ErrorCode(err) != kinehook.EINVALID {
		t.Fatalf("webhook without events: %v", err)
	}
	if err := c.DeleteWebhook(ctx, wh.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetWebhook(ctx, wh.ID); !client.IsNotFound(err) {
		t.Fatalf("get after delete: %v", err)
	}
}

func TestContextCancels(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer slow.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := client.New(slow.URL, "k").Health(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Fatalf("cancelled request: %v after %v", err, time.Since(start))
	}
}

func TestNonEnvelopeErrors(t *testing.T) {
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "7")
		http.Error(w, "upstream down", http.StatusServiceUnavailable)
	}))
	defer proxy.Close()
	err := client.New(proxy.URL, "k").Ready(context.Background())
	var ae *client.Error
	if !errors.As(err, &ae) || ae.Code != kinehook.EUNAVAILABLE || ae.StatusCode != 503 || ae.Message != "upstream down" || ae.RetryAfter != 7*time.Second {
		t.Fatalf("got %+v", ae)
	}
}

func TestUpdateProject(t *testing.T) {
	ts := newTestServer(t, nil)
	ctx := context.Background()
	admin := client.New(ts.url, adminKey)
	p, err := admin.CreateProject(ctx, "Acme")
	if err != nil {
		t.Fatal(err)
	}
	c := client.New(ts.url, p.APIKey)
	// A project key may update its own project; only the set fields change.
	got, err := c.UpdateProject(ctx, p.ID, client.ProjectUpdate{RetentionDays: client.Ptr(14), OperationsURL: client.Ptr(ts.sink.URL + "/ops")})
	if err != nil || got.Name != "Acme" || got.RetentionDays != 14 || got.OperationsURL != ts.sink.URL+"/ops" {
		t.Fatalf("update: %v %+v", err, got)
	}
	got, err = c.UpdateProject(ctx, p.ID, client.ProjectUpdate{Name: client.Ptr("Acme 2")})
	if err != nil || got.Name != "Acme 2" || got.RetentionDays != 14 || got.OperationsURL != ts.sink.URL+"/ops" {
		t.Fatalf("update of the name: %v %+v", err, got)
	}
	// 0 and "" are sent (they are set), going back to the default and removing the URL.
	got, err = c.UpdateProject(ctx, p.ID, client.ProjectUpdate{RetentionDays: client.Ptr(0), OperationsURL: client.Ptr("")})
	if err != nil || got.Name != "Acme 2" || got.RetentionDays != 0 || got.OperationsURL != "" {
		t.Fatalf("update clearing fields: %v %+v", err, got)
	}
	if _, err := c.UpdateProject(ctx, p.ID, client.ProjectUpdate{Name: client.Ptr(" ")}); client.ErrorCode(err) != kinehook.EINVALID {
		t.Fatalf("empty name: %v", err)
	}
	other, err := admin.CreateProject(ctx, "other")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateProject(ctx, other.ID, client.ProjectUpdate{Name: client.Ptr("x")}); !client.IsNotFound(err) {
		t.Fatalf("another project's key: %v", err)
	}
}

func TestResponseHook(t *testing.T) {
	ts := newTestServer(t, nil)
	ctx := context.Background()
	c := client.New(ts.url, adminKey)
	p, err := c.CreateProject(ctx, "hooked")
	if err != nil {
		t.Fatal(err)
	}
	var outer, inner []*client.Response
	hctx := client.WithResponseHook(ctx, func(r *client.Response) { outer = append(outer, r) })
	hctx = client.WithResponseHook(hctx, func(r *client.Response) { inner = append(inner, r) })
	ep, err := c.CreateEndpoint(hctx, p.ID, client.EndpointCreate{URL: ts.sink.URL})
	if err != nil {
		t.Fatal(err)
	}
	if len(inner) != 1 || len(outer) != 1 || inner[0] != outer[0] {
		t.Fatalf("hooks saw %d and %d answers", len(outer), len(inner))
	}
	r := inner[0]
	if r.Method != http.MethodPost || r.Path != "/v1/projects/"+p.ID+"/endpoints" || r.StatusCode != http.StatusCreated || r.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("response: %+v", r)
	}
	// The body is the API's own JSON, with the keys the typed struct leaves out.
	var raw map[string]any
	if err := json.Unmarshal(r.Body, &raw); err != nil {
		t.Fatal(err)
	}
	if raw["id"] != ep.ID || raw["project_id"] != p.ID {
		t.Fatalf("raw answer: %s", r.Body)
	}
	if _, ok := raw["max_in_flight"]; !ok {
		t.Fatalf("raw answer lacks max_in_flight: %s", r.Body)
	}
	// Errors are not passed to the hook; 204 answers are, with an empty body.
	inner = nil
	if _, err := c.GetEndpoint(hctx, p.ID, "ep_nope"); !client.IsNotFound(err) {
		t.Fatal(err)
	}
	if err := c.DeleteEndpoint(hctx, p.ID, ep.ID); err != nil {
		t.Fatal(err)
	}
	if len(inner) != 1 || inner[0].StatusCode != http.StatusNoContent || len(inner[0].Body) != 0 {
		t.Fatalf("after a 404 and a delete the hook saw %+v", inner)
	}
	// Without the hook's context nothing is recorded.
	if _, err := c.ListProjects(ctx); err != nil || len(inner) != 1 {
		t.Fatalf("hook outside its context: %v, %d answers", err, len(inner))
	}
}

func TestSendEvents(t *testing.T) {
	ts := newTestServer(t, nil)
	ctx := context.Background()
	p, c := ts.project(t, "batch")
	live := json.RawMessage(`{"event_id":"live-1"}`)
	evs, err := c.SendEvents(ctx, p.ID, []client.BatchEvent{
		{Type: kinehook.EventMediaUpdateStatus, Data: kinehook.MediaData{ID: "vid-1", Status: kinehook.StatusProcessing}},
		{Type: kinehook.EventMediaUpdateStatus, Data: map[string]string{"id": "vid-1", "status": "done"}},
		{Type: kinehook.EventLiveCreated, Data: live, IdempotencyKey: "live-1"},
		// The same key later in the batch: the event before it, not a new one.
		{Type: kinehook.EventLiveCreated, Data: json.RawMessage(`{"event_id":"live-2"}`), IdempotencyKey: "live-1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		event    kinehook.EventType
		resource string
		data     string
		replayed bool
	}{
		{kinehook.EventMediaUpdateStatus, "vid-1", `{"id":"vid-1","status":"processing"}`, false},
		{kinehook.EventMediaUpdateStatus, "vid-1", `{"id":"vid-1","status":"done"}`, false},
		{kinehook.EventLiveCreated, "live-1", `{"event_id":"live-1"}`, false},
		{kinehook.EventLiveCreated, "live-1", `{"event_id":"live-1"}`, true},
	}
	if len(evs) != len(want) {
		t.Fatalf("%d events in the answer, want %d", len(evs), len(want))
	}
	for i, w := range want {
		ev := evs[i]
		if !strings.HasPrefix(ev.ID, "msg_") || ev.Event != w.event || ev.ResourceKey != w.resource || string(ev.Data) != w.data || ev.Replayed != w.replayed || ev.CreatedAt.IsZero() {
			t.Errorf("event %d: %+v (data %s), want %+v", i, ev, ev.Data, w)
		}
	}
	if evs[0].ID == evs[1].ID || evs[1].ID == evs[2].ID || evs[3].ID != evs[2].ID {
		t.Fatalf("ids %s %s %s %s: want three new events and the third again", evs[0].ID, evs[1].ID, evs[2].ID, evs[3].ID)
	}
	page, err := c.ListEvents(ctx, p.ID, client.EventListOptions{})
	if err != nil || len(page.Data) != 3 {
		t.Fatalf("after the batch the project lists %d events (%v), want 3", len(page.Data), err)
	}

	// The key holds across requests and across the single and batch routes.
	again, err := c.SendEvents(ctx, p.ID, []client.BatchEvent{
		{Type: kinehook.EventLiveCreated, Data: live, IdempotencyKey: "live-1"},
		{Type: kinehook.EventLiveCreated, Data: json.RawMessage(`{"event_id":"live-3"}`), IdempotencyKey: "live-3"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 2 || again[0].ID != evs[2].ID || !again[0].Replayed || again[1].Replayed || again[1].ID == evs[2].ID {
		t.Fatalf("second batch: %+v %+v", again[0], again[1])
	}
	single, err := c.SendEvent(ctx, p.ID, kinehook.EventLiveCreated, live, "live-3")
	if err != nil || single.ID != again[1].ID || !single.Replayed {
		t.Fatalf("SendEvent with a key the batch used: %v %+v, want %s replayed", err, single, again[1].ID)
	}
	fresh, err := c.SendEvent(ctx, p.ID, kinehook.EventLiveCreated, live, "live-4")
	if err != nil || fresh.Replayed {
		t.Fatalf("SendEvent with a new key: %v %+v", err, fresh)
	}
}

// TestSendEventsAllOrNothing: one bad event refuses the whole batch with the
// API's error naming it by index, and stores nothing, not even the
// idempotency keys of the good ones.
func TestSendEventsAllOrNothing(t *testing.T) {
	ts := newTestServer(t, nil)
	ctx := context.Background()
	p, c := ts.project(t, "refused")
	good := func(n int) client.BatchEvent {
		return client.BatchEvent{
			Type:           kinehook.EventMediaUpdateStatus,
			Data:           kinehook.MediaData{ID: fmt.Sprintf("vid-%d", n), Status: kinehook.StatusDone},
			IdempotencyKey: fmt.Sprintf("key-%d", n),
		}
	}
	tooMany := make([]client.BatchEvent, client.MaxBatchEvents+1)
	for i := range tooMany {
		tooMany[i] = good(i)
	}
	cases := []struct {
		name    string
		send    func() error
		status  int
		code    string
		field   string
		message string // the start of the error's text after the code
	}{
		{"invalid status", func() error {
			_, err := c.SendEvents(ctx, p.ID, []client.BatchEvent{good(0), good(1),
				{Type: kinehook.EventMediaUpdateStatus, Data: map[string]string{"id": "vid-2", "status": "failed"}}, good(3)})
			return err
		}, 422, kinehook.EINVALID, "events[2].data.status", "invalid (HTTP 422): events[2]: data.status: expected one of"},
		{"unknown type", func() error {
			_, err := c.SendEvents(ctx, p.ID, []client.BatchEvent{{Type: "video.done", Data: map[string]string{"id": "v"}}, good(1)})
			return err
		}, 422, kinehook.EINVALID, "events[0].event", "invalid (HTTP 422): events[0]: event: expected one of"},
		{"no data", func() error {
			_, err := c.SendEvents(ctx, p.ID, []client.BatchEvent{good(0), {Type: kinehook.EventLiveCreated}})
			return err
		}, 422, kinehook.EINVALID, "events[1].data", "invalid (HTTP 422): events[1]: data: expected a JSON object"},
		{"no events", func() error {
			_, err := c.SendEvents(ctx, p.ID, nil)
			return err
		}, 422, kinehook.EINVALID, "events", "invalid (HTTP 422): events is empty"},
		{"too many events", func() error {
			_, err := c.SendEvents(ctx, p.ID, tooMany)
			return err
		}, 413, kinehook.ETOOLARGE, "events", "payload_too_large (HTTP 413): a batch holds at most 1000 events, not 1001"},
		{"an item that is not an object", func() error {
			_, err := c.SendEventsBody(ctx, p.ID, []byte(`{"events":[{"event":"live.created","data":{"event_id":"l"}},1]}`))
			return err
		}, 400, kinehook.EMALFORMED, "events[1]", "malformed (HTTP 400): events[1] must be an object"},
		{"not JSON", func() error {
			_, err := c.SendEventsBody(ctx, p.ID, []byte(`{"events":[`))
			return err
		}, 400, kinehook.EMALFORMED, "body", "malformed (HTTP 400): body: malformed JSON"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.send()
			var ae *client.Error
			if !errors.As(err, &ae) {
				t.Fatalf("error %v (%T) is not a *client.Error", err, err)
			}
			if ae.StatusCode != tc.status || ae.Code != tc.code || ae.Field != tc.field {
				t.Errorf("got %+v, want status %d code %q field %q", ae, tc.status, tc.code, tc.field)
			}
			if !strings.HasPrefix(err.Error(), tc.message) {
				t.Errorf("error text %q, want it to start with %q", err.Error(), tc.message)
			}
			page, err := c.ListEvents(ctx, p.ID, client.EventListOptions{})
			if err != nil || len(page.Data) != 0 {
				t.Fatalf("a refused batch left %d events (%v)", len(page.Data), err)
			}
		})
	}
	// The good events' keys were not kept: sending them now creates events.
	evs, err := c.SendEvents(ctx, p.ID, []client.BatchEvent{good(0), good(1)})
	if err != nil {
		t.Fatal(err)
	}
	for i, ev := range evs {
		if ev.Replayed {
			t.Errorf("event %d replays an event of a refused batch: %+v", i, ev)
		}
	}
}

// TestEventBodiesAsGiven: a json.RawMessage is posted byte for byte (its
// spacing and escapes are what the endpoint receives); other data is encoded
// without HTML escaping.
func TestEventBodiesAsGiven(t *testing.T) {
	var mu sync.Mutex
	var got []string
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, string(b))
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
		if strings.HasSuffix(r.URL.Path, "/batch") {
			_, _ = io.WriteString(w, `{"data":[{"id":"msg_1"},{"id":"msg_2"}]}`)
			return
		}
		_, _ = io.WriteString(w, `{"id":"msg_1"}`)
	}))
	defer api.Close()
	c := client.New(api.URL, "kh_x")
	raw := json.RawMessage("{ \"id\" : \"v1\",\n \"status\":\"error\", \"message\":\"<a&b> \\u00e9\" }")
	typed := map[string]string{"event_id": "<l&1>"}
	if _, err := c.SendEvent(t.Context(), "prj_1", kinehook.EventMediaUpdateStatus, raw, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SendEvents(t.Context(), "prj_1", []client.BatchEvent{
		{Type: kinehook.EventMediaUpdateStatus, Data: raw, IdempotencyKey: "k<1>"},
		{Type: kinehook.EventLiveCreated, Data: typed},
	}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		`{"event":"media.update.status","data":` + string(raw) + `}`,
		`{"events":[{"event":"media.update.status","data":` + string(raw) + `,"idempotency_key":"k<1>"},{"event":"live.created","data":{"event_id":"<l&1>"}}]}`,
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != len(want) {
		t.Fatalf("%d requests, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("request %d body\n%s\nwant\n%s", i, got[i], want[i])
		}
	}
}

// TestEventEncodingRefusals: what the client cannot send as the caller
// meant is refused before any request: a json.RawMessage that is not one
// JSON value (spliced into a batch it could end its event and start
// another), keys or types that are not UTF-8 (encoding/json would make
// different keys the same one).
func TestEventEncodingRefusals(t *testing.T) {
	var requests atomic.Int32
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{"data":[{"id":"msg_1"},{"id":"msg_2"}]}`)
	}))
	defer api.Close()
	c := client.New(api.URL, "kh_x")
	splice := json.RawMessage(`{"id":"a","status":"done"}},{"event":"media.update.status","data":{"id":"b","status":"done"}`)
	tests := []struct {
		name string
		ev   client.BatchEvent
		want string
	}{
		{"spliced raw data", client.BatchEvent{Type: kinehook.EventMediaUpdateStatus, Data: splice}, "not one JSON value"},
		{"truncated raw data", client.BatchEvent{Type: kinehook.EventMediaUpdateStatus, Data: json.RawMessage(`{"id":`)}, "not one JSON value"},
		{"key not UTF-8", client.BatchEvent{Type: kinehook.EventLiveCreated, Data: map[string]string{"event_id": "l"}, IdempotencyKey: "k\xff"}, "not UTF-8"},
		{"type not UTF-8", client.BatchEvent{Type: "live.\xfe", Data: map[string]string{"event_id": "l"}}, "not UTF-8"},
		{"data not encodable", client.BatchEvent{Type: kinehook.EventLiveCreated, Data: make(chan int)}, "data"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.SendEvents(t.Context(), "prj_1", []client.BatchEvent{tc.ev})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("SendEvents = %v, want an error mentioning %q", err, tc.want)
			}
			if raw, ok := tc.ev.Data.(json.RawMessage); ok {
				if _, err := c.SendEvent(t.Context(), "prj_1", tc.ev.Type, raw, ""); err == nil {
					t.Error("SendEvent sent it")
				}
			}
		})
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("%d requests made for events refused locally", n)
	}
	// A nil json.RawMessage is sent as null, for the API to refuse with its
	// own words (as json.Marshal wrote it).
	bodies := make(chan string, 1)
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies <- string(b)
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{"id":"msg_1"}`)
	}))
	defer echo.Close()
	if _, err := client.New(echo.URL, "kh_x").SendEvent(t.Context(), "prj_1", kinehook.EventLiveCreated, json.RawMessage(nil), ""); err != nil {
		t.Fatal(err)
	}
	if body := <-bodies; body != `{"event":"live.created","data":null}` {
		t.Errorf("nil raw data sent as %s", body)
	}
}

// TestEndpointHealthStatsAndTest: the client's health, statistics, test,
// enable and disable against the real API.
func TestEndpointHealthStatsAndTest(t *testing.T) {
	ts := newTestServer(t, nil)
	ctx := context.Background()
	p, c := ts.project(t, "stats")
	ep, err := c.CreateEndpoint(ctx, p.ID, client.EndpointCreate{URL: ts.sink.URL + "/hook"})
	if err != nil {
		t.Fatal(err)
	}
	if ep.Health.Breaker != kinehook.BreakerClosed || ep.Health.PausedUntil != nil {
		t.Fatalf("new endpoint's health %+v", ep.Health)
	}
	d, err := c.TestEndpoint(ctx, p.ID, ep.ID, kinehook.EventLiveConnected)
	if err != nil || d.EndpointID != ep.ID || d.EventType != kinehook.EventLiveConnected {
		t.Fatalf("TestEndpoint: %v %+v", err, d)
	}
	deadline := time.Now().Add(10 * time.Second)
	for d.Status != kinehook.DeliverySucceeded && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		if d, err = c.GetDelivery(ctx, p.ID, d.ID); err != nil {
			t.Fatal(err)
		}
	}
	if d.Status != kinehook.DeliverySucceeded {
		t.Fatalf("test delivery %+v", d)
	}
	for _, get := range []func() (*kinehook.Stats, error){
		func() (*kinehook.Stats, error) { return c.EndpointStats(ctx, p.ID, ep.ID, "1h") },
		func() (*kinehook.Stats, error) { return c.ProjectStats(ctx, p.ID, "") },
	} {
		st, err := get()
		if err != nil || st.Totals.Succeeded != 1 || (st.Window != "1h" && st.Window != "24h") {
			t.Fatalf("stats: %v %+v", err, st)
		}
	}
	if _, err := c.ProjectStats(ctx, p.ID, "1y"); client.ErrorCode(err) != kinehook.EMALFORMED {
		t.Fatalf("bad window: %v", err)
	}
	off, err := c.DisableEndpoint(ctx, p.ID, ep.ID)
	if err != nil || !off.Disabled || off.Health.DisabledReason == "" {
		t.Fatalf("disable: %v %+v", err, off)
	}
	if _, err := c.TestEndpoint(ctx, p.ID, ep.ID, ""); client.ErrorCode(err) != kinehook.ECONFLICT {
		t.Fatalf("test of a disabled endpoint: %v", err)
	}
	on, err := c.EnableEndpoint(ctx, p.ID, ep.ID)
	if err != nil || on.Disabled || on.Health.DisabledReason != "" {
		t.Fatalf("enable: %v %+v", err, on)
	}
}
