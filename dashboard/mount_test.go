package dashboard

import (
	"bufio"
	"context"
	"net/http"
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
