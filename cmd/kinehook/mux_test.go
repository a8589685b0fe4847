package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	nethttp "net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/app"
	"github.com/kinehook/kinehook/dashboard"
	"github.com/kinehook/kinehook/delivery"
	khttp "github.com/kinehook/kinehook/http"
	"github.com/kinehook/kinehook/prometheus"
	"github.com/kinehook/kinehook/sqlite"
	"github.com/kinehook/kinehook/webhook"
)

// mountEnv is the API and the dashboard behind newRootHandler and the
// metrics middleware, as `kinehook serve` serves them, over a real SQLite
// store and delivery engine, with one project.
type mountEnv struct {
	srv     *httptest.Server
	metrics *prometheus.Metrics
	pid     string
	key     string
}

func newMountEnv(t *testing.T) *mountEnv {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "kinehook.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	eng, err := delivery.New(delivery.Config{Store: st, RetrySchedule: []time.Duration{}, RequestTimeout: 5 * time.Second, Transports: webhook.Transports(webhook.Options{})})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = eng.Shutdown(sctx)
	})
	uc, err := app.New(app.Config{Store: st, Dispatcher: eng, AllowPrivateNetworks: true})
	if err != nil {
		t.Fatal(err)
	}
	p, key, err := uc.CreateProject(ctx, app.ProjectInput{Name: "mounted"})
	if err != nil {
		t.Fatal(err)
	}
	api, err := khttp.NewServer(khttp.Config{Store: st, Dispatcher: eng, App: uc})
	if err != nil {
		t.Fatal(err)
	}
	dash, err := dashboard.New(dashboard.Config{Store: st, Dispatcher: eng, App: uc, LiveInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	m := prometheus.New(prometheus.Options{})
	e := &mountEnv{metrics: m, pid: p.ID, key: key}
	e.srv = httptest.NewServer(m.Instrument(newRootHandler(api, dash)))
	t.Cleanup(e.srv.Close)
	return e
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// signIn signs a browser (a client with a cookie jar) in to the dashboard.
func (e *mountEnv) signIn(t *testing.T) *nethttp.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &nethttp.Client{Jar: jar, CheckRedirect: func(*nethttp.Request, []*nethttp.Request) error { return nethttp.ErrUseLastResponse }}
	res, err := c.Get(e.srv.URL + "/login")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	m := csrfField.FindSubmatch(b)
	if m == nil {
		t.Fatalf("no CSRF token on the sign-in page: %s", b)
	}
	res, err = c.PostForm(e.srv.URL+"/login", url.Values{"csrf": {string(m[1])}, "key": {e.key}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != nethttp.StatusSeeOther {
		t.Fatalf("sign-in: %d", res.StatusCode)
	}
	return c
}

// get fetches path with c, sending Accept: text/html as a browser does.
func get(t *testing.T, c *nethttp.Client, u string) (int, string, nethttp.Header) {
	t.Helper()
	req, _ := nethttp.NewRequest(nethttp.MethodGet, u, nil)
	req.Header.Set("Accept", "text/html")
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b), res.Header
}

// TestMountedBehindAPI serves the dashboard as `kinehook serve` does: beside
// the JSON API behind the top-level router and the metrics middleware. The
// API keeps its paths, the dashboard gets the rest, and the live stream
// reaches the browser although EventSource asks for text/event-stream, not
// text/html, and the wrappers in front hold writes back unless flushed
// through.
func TestMountedBehindAPI(t *testing.T) {
	e := newMountEnv(t)
	c := e.signIn(t)
	if st, _, _ := get(t, c, e.srv.URL+"/healthz"); st != nethttp.StatusOK {
		t.Fatalf("/healthz: %d", st)
	}
	if st, body, _ := get(t, nethttp.DefaultClient, e.srv.URL+"/v1/projects"); st != nethttp.StatusUnauthorized || !strings.Contains(body, `"error"`) {
		t.Fatalf("/v1/projects without a key: %d %s", st, body)
	}
	anon := &nethttp.Client{CheckRedirect: func(*nethttp.Request, []*nethttp.Request) error { return nethttp.ErrUseLastResponse }}
	if st, _, h := get(t, anon, e.srv.URL+"/"); st != nethttp.StatusSeeOther || h.Get("Location") != "/login" {
		t.Fatalf("/: %d %q", st, h.Get("Location"))
	}
	if st, body, _ := get(t, c, e.srv.URL+"/projects/"+e.pid+"/endpoints"); st != nethttp.StatusOK || !strings.Contains(body, "No endpoints yet") {
		t.Fatalf("endpoints page: %d %s", st, body)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := nethttp.NewRequestWithContext(ctx, nethttp.MethodGet, e.srv.URL+"/projects/"+e.pid+"/live", nil)
	req.Header.Set("Accept", "text/event-stream")
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != nethttp.StatusOK {
		t.Fatalf("live: %d", res.StatusCode)
	}
	got := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "event: ") {
				got <- sc.Text()
				return
			}
		}
		close(got)
	}()
	select {
	case ev := <-got:
		if ev != "event: ready" {
			t.Fatalf("first message %q", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the live stream's first message did not arrive through the router and middleware")
	}
}

// TestUnknownPathsCountAsUnmatched: a path no API route or dashboard page
// matches is counted under route="unmatched" (whether the client is a
// browser or not), never under the dashboard's catch-all "/".
func TestUnknownPathsCountAsUnmatched(t *testing.T) {
	e := newMountEnv(t)
	for _, c := range []struct{ path, accept string }{
		{"/zzz", "text/html"}, {"/zzz", ""}, {"/debug/pprof/", ""}, {"/v1/nope", ""}, {"/login", "text/html"},
	} {
		req, _ := nethttp.NewRequest(nethttp.MethodGet, e.srv.URL+c.path, nil)
		req.Header.Set("Accept", c.accept)
		res, err := nethttp.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if want := map[bool]int{true: 200, false: 404}[c.path == "/login"]; res.StatusCode != want {
			t.Fatalf("GET %s: %d, want %d", c.path, res.StatusCode, want)
		}
	}
	ms := httptest.NewServer(e.metrics.Handler())
	t.Cleanup(ms.Close)
	res, err := nethttp.Get(ms.URL)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	text := string(b)
	for _, want := range []string{
		`kinehook_http_requests_total{code="404",route="unmatched"} 4`,
		`kinehook_http_requests_total{code="200",route="GET /login"} 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(text, `route="/"`) {
		t.Errorf("an unknown path was counted under the catch-all route \"/\"")
	}
}

// stubPages is a dashboard with pages at / and /login only.
type stubPages struct{}

func (stubPages) HasPage(r *nethttp.Request) bool { return r.URL.Path == "/" || r.URL.Path == "/login" }

func (p stubPages) ServeHTTP(w nethttp.ResponseWriter, r *nethttp.Request) {
	w.Header().Set("Content-Type", "text/html")
	if !p.HasPage(r) {
		w.WriteHeader(404)
		_, _ = w.Write([]byte("<p>no page</p>"))
		return
	}
	_, _ = w.Write([]byte("<h1>dashboard</h1>"))
}

// TestDashboardMount: a browser gets the dashboard's pages and its 404
// page; another client gets the dashboard's pages and the API's JSON 404;
// the API's paths stay the API's, in JSON, for a browser too; every answer
// carries X-Request-Id.
func TestDashboardMount(t *testing.T) {
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "kinehook.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	eng, err := delivery.New(delivery.Config{Store: st, Transports: webhook.Transports(webhook.Options{})})
	if err != nil {
		t.Fatal(err)
	}
	api, err := khttp.NewServer(khttp.Config{Store: st, Dispatcher: eng})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(newRootHandler(api, stubPages{}))
	t.Cleanup(srv.Close)
	tests := []struct {
		path, accept string
		status       int
		json         bool
	}{
		{"/", "text/html", 200, false},
		{"/login", "*/*", 200, false},
		{"/nope", "text/html", 404, false},
		{"/nope", "*/*", 404, true},
		{"/v1/nope", "text/html", 404, true},
		{"/healthz", "text/html", 200, true},
	}
	for _, tc := range tests {
		t.Run(tc.path+" "+tc.accept, func(t *testing.T) {
			req, _ := nethttp.NewRequest(nethttp.MethodGet, srv.URL+tc.path, nil)
			req.Header.Set("Accept", tc.accept)
			res, err := nethttp.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tc.status, body)
			}
			isJSON := res.Header.Get("Content-Type") == "application/json"
			if isJSON != tc.json {
				t.Errorf("JSON %v, want %v: %s", isJSON, tc.json, body)
			}
			if res.Header.Get("X-Request-Id") == "" {
				t.Error("no X-Request-Id")
			}
			var eb struct {
				Error struct{ Code string } `json:"error"`
			}
			if tc.status == 404 && tc.json && (json.Unmarshal(body, &eb) != nil || eb.Error.Code != kinehook.ENOTFOUND) {
				t.Errorf("404 body %s", body)
			}
		})
	}
}

// TestDescriptionLimitIsOneRule: the API and the dashboard accept and
// refuse the same endpoint descriptions, counting characters (the API's
// documented rule), not bytes: 1,000 two-byte characters are accepted by
// both.
func TestDescriptionLimitIsOneRule(t *testing.T) {
	e := newMountEnv(t)
	c := e.signIn(t)
	tests := []struct {
		name string
		desc string
		ok   bool
	}{
		{"ascii at the limit", strings.Repeat("a", app.MaxDescription), true},
		{"two-byte characters at the limit", strings.Repeat("é", app.MaxDescription), true},
		{"three-byte characters over 1000 bytes", strings.Repeat("日", 400), true},
		{"ascii over the limit", strings.Repeat("a", app.MaxDescription+1), false},
		{"two-byte characters over the limit", strings.Repeat("é", app.MaxDescription+1), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body, _ := json.Marshal(map[string]string{"url": "http://127.0.0.1:9/hook", "description": tc.desc})
			req, _ := nethttp.NewRequest(nethttp.MethodPost, e.srv.URL+"/v1/projects/"+e.pid+"/endpoints", strings.NewReader(string(body)))
			req.Header.Set("Authorization", "Bearer "+e.key)
			res, err := nethttp.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if want := map[bool]int{true: nethttp.StatusCreated, false: nethttp.StatusUnprocessableEntity}[tc.ok]; res.StatusCode != want {
				t.Errorf("API: %d, want %d", res.StatusCode, want)
			}

			_, page, _ := get(t, c, e.srv.URL+"/projects/"+e.pid+"/endpoints/new")
			m := csrfField.FindStringSubmatch(page)
			if m == nil {
				t.Fatalf("no CSRF token on the new-endpoint page")
			}
			res, err = c.PostForm(e.srv.URL+"/projects/"+e.pid+"/endpoints", url.Values{"csrf": {m[1]}, "url": {"http://127.0.0.1:9/hook"}, "description": {tc.desc}})
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if want := map[bool]int{true: nethttp.StatusSeeOther, false: nethttp.StatusUnprocessableEntity}[tc.ok]; res.StatusCode != want {
				t.Errorf("dashboard: %d, want %d", res.StatusCode, want)
			}
		})
	}
}
