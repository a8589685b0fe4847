package dashboard

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	khttp "github.com/kinehook/kinehook/http"
	"github.com/kinehook/kinehook/prometheus"
)

// TestMountedBehindAPI serves the dashboard as `kinehook serve` does: behind
// the JSON API's router and the metrics middleware. The API keeps its
// paths, the dashboard gets the rest, and the live stream reaches the
// browser although EventSource asks for text/event-stream, not text/html,
// and the wrappers in front hold writes back unless flushed through.
func TestMountedBehindAPI(t *testing.T) {
	e := newEnv(t, envOpts{})
	api, err := khttp.NewServer(khttp.Config{Store: e.store, Dispatcher: e.engine, AllowPrivateNetworks: true})
	if err != nil {
		t.Fatal(err)
	}
	api.Dashboard = e.h
	e.srv.Config.Handler = prometheus.New(prometheus.Options{}).Instrument(api)

	b := e.browser()
	if p := b.get("/healthz"); p.status != http.StatusOK {
		t.Fatalf("/healthz: %d", p.status)
	}
	if p := b.get("/v1/projects"); p.status != http.StatusUnauthorized || !strings.Contains(p.body, `"error"`) {
		t.Fatalf("/v1/projects without a key: %d %s", p.status, p.body)
	}
	if p := b.get("/"); p.status != http.StatusSeeOther || p.location != "/login" {
		t.Fatalf("/: %d %q", p.status, p.location)
	}
	b.login(e.keyA)
	mustContain(t, b.get("/projects/"+e.a.ID+"/endpoints"), "No endpoints yet")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.srv.URL+"/projects/"+e.a.ID+"/live", nil)
	req.Header.Set("Accept", "text/event-stream")
	res, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
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
		t.Fatal("the live stream's first message did not arrive through the API's wrappers")
	}
}

// TestUnknownPathsCountAsUnmatched: a path no API route or dashboard page
// matches is counted under route="unmatched" (whether the client is a
// browser or not), never under the dashboard's catch-all "/".
func TestUnknownPathsCountAsUnmatched(t *testing.T) {
	e := newEnv(t, envOpts{})
	api, err := khttp.NewServer(khttp.Config{Store: e.store, Dispatcher: e.engine, AllowPrivateNetworks: true})
	if err != nil {
		t.Fatal(err)
	}
	api.Dashboard = e.h
	m := prometheus.New(prometheus.Options{})
	e.srv.Config.Handler = m.Instrument(api)
	for _, c := range []struct{ path, accept string }{
		{"/zzz", "text/html"}, {"/zzz", ""}, {"/debug/pprof/", ""}, {"/v1/nope", ""}, {"/login", "text/html"},
	} {
		req, _ := http.NewRequest(http.MethodGet, e.srv.URL+c.path, nil)
		req.Header.Set("Accept", c.accept)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if want := map[bool]int{true: 200, false: 404}[c.path == "/login"]; res.StatusCode != want {
			t.Fatalf("GET %s: %d, want %d", c.path, res.StatusCode, want)
		}
	}
	ms := httptest.NewServer(m.Handler())
	t.Cleanup(ms.Close)
	res, err := http.Get(ms.URL)
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
