package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/kinehook/kinehook"
	khttp "github.com/kinehook/kinehook/http"
)

// drawnBucket is one bucket as the page's SVG says it (data attributes).
type drawnBucket struct {
	Start     string `json:"start"`
	Succeeded int64  `json:"succeeded"`
	Failed    int64  `json:"failed"`
	Retried   int64  `json:"retried"`
	Rects     int    `json:"rects"`
}

type drawnPoint struct {
	Start string  `json:"start"`
	P50   float64 `json:"p50"`
	P99   float64 `json:"p99"`
}

// readCharts is run in the page: every bucket of the outcome chart and every
// point of the latency chart, from their data attributes.
const readCharts = `JSON.stringify({
  window: document.querySelector("svg.chart.outcomes").dataset.window,
  buckets: [...document.querySelectorAll("svg.chart.outcomes g.bucket")].map(g => ({
    start: g.dataset.start, succeeded: +g.dataset.succeeded, failed: +g.dataset.failed, retried: +g.dataset.retried,
    rects: g.querySelectorAll("rect:not(.hit)").length})),
  points: [...document.querySelectorAll("svg.chart.latency g.latency-point")].map(g => ({
    start: g.dataset.start, p50: +g.dataset.p50, p99: +g.dataset.p99}))
})`

// TestBrowserCharts: the project's and an endpoint's charts show exactly
// the buckets the statistics API answers, for each window, and the
// breaker, pause and disabled badges show with their reasons.
func TestBrowserCharts(t *testing.T) {
	chromium := chromiumPath(t)
	e := newEnv(t, envOpts{schedule: []time.Duration{10 * time.Millisecond}})
	ctx0 := context.Background()
	// The JSON API over the same store and engine, for the figures to compare with.
	api, err := khttp.NewServer(khttp.Config{Store: e.store, Dispatcher: e.engine, AdminKeyHash: kinehook.HashKey(e.adminKey), AllowPrivateNetworks: true, RateLimit: -1})
	if err != nil {
		t.Fatal(err)
	}
	apiSrv := httptest.NewServer(api)
	t.Cleanup(apiSrv.Close)
	apiStats := func(path string) *kinehook.Stats {
		t.Helper()
		req, _ := http.NewRequest("GET", apiSrv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+e.keyA)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", path, res.StatusCode, b)
		}
		var st kinehook.Stats
		if err := json.Unmarshal(b, &st); err != nil {
			t.Fatal(err)
		}
		return &st
	}

	good := e.createEndpoint(e.a, e.sink.srv.URL+"/good", "media.update.status")
	flaky := e.createEndpoint(e.a, e.sink.srv.URL+"/flaky", "live.*")
	gone := e.createEndpoint(e.a, e.sink.srv.URL+"/gone", "live.*")
	for i := range 4 {
		ev := e.publish(e.a, fmt.Sprintf(`{"event":"media.update.status","data":{"id":"v%d","status":"done"}}`, i))
		e.waitDeliveries(e.a.ID, ev.ID, kinehook.DeliverySucceeded)
	}
	e.sink.fail.Store(true)
	for i := range 2 {
		ev := e.publish(e.a, fmt.Sprintf(`{"event":"live.created","data":{"event_id":"l%d"}}`, i))
		e.waitDeliveries(e.a.ID, ev.ID, kinehook.DeliveryFailed) // one retried attempt, then failed
	}
	e.sink.fail.Store(false)
	// The engine stores its breaker state in the background: wait for its
	// last write (4 failures in a row: 2 deliveries, 2 attempts each) before
	// storing the states below.
	for _, ep := range []*kinehook.Endpoint{flaky, gone} {
		deadline := time.Now().Add(20 * time.Second)
		for {
			got, err := e.store.GetEndpoint(ctx0, e.a.ID, ep.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Breaker.ConsecutiveFailures == 4 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("endpoint %s: stored breaker %+v, want 4 failures in a row", ep.ID, got.Breaker)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// The state the engine would store: an open breaker, a Retry-After pause, a 410.
	probe := time.Now().Add(10 * time.Minute)
	set := func(ep *kinehook.Endpoint, u kinehook.HealthUpdate) {
		t.Helper()
		u.At = time.Now()
		if _, err := e.store.UpdateEndpointHealth(ctx0, e.a.ID, ep.ID, u); err != nil {
			t.Fatal(err)
		}
	}
	set(flaky, kinehook.HealthUpdate{Change: kinehook.HealthBreaker, Breaker: kinehook.BreakerRecord{Open: true, ProbeAt: probe, ConsecutiveFailures: 12}})
	set(good, kinehook.HealthUpdate{Change: kinehook.HealthBreaker, Breaker: kinehook.BreakerRecord{PausedUntil: probe}})
	set(gone, kinehook.HealthUpdate{Change: kinehook.HealthDisabled, Reason: "endpoint answered 410 Gone"})

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium), chromedp.Flag("headless", true), chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-quic", true), chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.UserDataDir(t.TempDir()))
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()
	ctx, cancel := context.WithTimeout(bctx, 4*time.Minute) // slow under -race on a loaded machine
	defer cancel()
	run := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		start := time.Now()
		err := chromedp.Do(ctx, actions...)
		t.Logf("%s: %v", step, time.Since(start).Round(time.Millisecond))
		if err != nil {
			body, _ := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("main")))
			t.Fatalf("%s: %v\npage text:\n%s", step, err, body)
		}
	}
	shots := screenshotDir(t)
	shot := func(name string) chromedp.Action[chromedp.Void] {
		return func(ctx context.Context, _ *chromedp.Target) (chromedp.Void, error) {
			buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
			if err != nil {
				return chromedp.Void{}, err
			}
			return chromedp.Void{}, writeFile(shots, name, buf)
		}
	}
	base := e.srv.URL + "/projects/" + e.a.ID
	run("sign in with the project key",
		chromedp.EmulateViewport(1280, 900),
		chromedp.Navigate(e.srv.URL+"/login"),
		chromedp.WaitVisible(chromedp.ID("key")),
		chromedp.SendKeys(chromedp.ID("key"), e.keyA),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.ID("new-endpoint")),
	)

	// compare reads the charts of the page at url and checks them against
	// the API's answer at apiPath (read again when a bucket boundary passed
	// between the two).
	compare := func(what, url, apiPath string, wantBuckets int) {
		t.Helper()
		for try := 0; ; try++ {
			run(what+": open", chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS("svg.chart.outcomes")))
			raw, err := chromedp.Run(ctx, chromedp.Evaluate[string](readCharts))
			if err != nil {
				t.Fatal(err)
			}
			var drawn struct {
				Window  string
				Buckets []drawnBucket
				Points  []drawnPoint
			}
			if err := json.Unmarshal([]byte(raw), &drawn); err != nil {
				t.Fatal(err)
			}
			st := apiStats(apiPath)
			if len(drawn.Buckets) > 0 && len(st.Buckets) > 0 && drawn.Buckets[0].Start != st.Buckets[0].Start.UTC().Format(time.RFC3339) && try == 0 {
				continue // the window moved on between the page and the API
			}
			if drawn.Window != st.Window || len(drawn.Buckets) != len(st.Buckets) || len(st.Buckets) != wantBuckets {
				t.Fatalf("%s: page shows window %s with %d buckets; the API %s with %d (want %d)", what, drawn.Window, len(drawn.Buckets), st.Window, len(st.Buckets), wantBuckets)
			}
			var points []drawnPoint
			var total int64
			for i, b := range st.Buckets {
				d := drawn.Buckets[i]
				want := drawnBucket{Start: b.Start.UTC().Format(time.RFC3339), Succeeded: b.Succeeded, Failed: b.Failed, Retried: b.Retried, Rects: d.Rects}
				if d != want {
					t.Errorf("%s: bucket %d drawn %+v, API %+v", what, i, d, want)
				}
				nonzero := 0
				for _, n := range []int64{b.Succeeded, b.Failed, b.Retried} {
					if n > 0 {
						nonzero++
					}
				}
				if d.Rects != nonzero {
					t.Errorf("%s: bucket %d has %d bars for %d non-zero outcomes", what, i, d.Rects, nonzero)
				}
				if b.Succeeded+b.Failed+b.Retried > 0 {
					points = append(points, drawnPoint{Start: want.Start, P50: b.P50MS, P99: b.P99MS})
				}
				total += b.Succeeded + b.Failed + b.Retried
			}
			if fmt.Sprint(points) != fmt.Sprint(drawn.Points) {
				t.Errorf("%s: latency points drawn %v, API %v", what, drawn.Points, points)
			}
			if total == 0 {
				t.Errorf("%s: nothing to compare: the API shows no delivery", what)
			}
			return
		}
	}
	compare("project, 24h", base+"/endpoints", "/v1/projects/"+e.a.ID+"/stats", 96)
	run("project chart", shot("11-project-charts.png"))
	compare("project, 1h", base+"/endpoints?window=1h", "/v1/projects/"+e.a.ID+"/stats?window=1h", 60)
	run("window links",
		chromedp.Click(chromedp.CSS(`a.window-link[data-window="7d"]`)),
		chromedp.WaitVisible(chromedp.CSS(`svg.chart.outcomes[data-window="7d"]`)),
	)
	compare("project, 7d", base+"/endpoints?window=7d", "/v1/projects/"+e.a.ID+"/stats?window=7d", 168)
	st := apiStats("/v1/projects/" + e.a.ID + "/stats?window=1h")
	if st.Totals.Succeeded != 4 || st.Totals.Failed != 4 || st.Totals.Retried != 4 {
		t.Errorf("project totals %+v, want 4 succeeded, 4 failed, 4 retried (two live endpoints)", st.Totals)
	}
	compare("flaky endpoint, 1h", base+"/endpoints/"+flaky.ID+"?window=1h", "/v1/projects/"+e.a.ID+"/endpoints/"+flaky.ID+"/stats?window=1h", 60)
	compare("good endpoint, 24h", base+"/endpoints/"+good.ID, "/v1/projects/"+e.a.ID+"/endpoints/"+good.ID+"/stats", 96)

	// Badges with their reasons: on the endpoint page and in the list.
	badge := func(kind, text string) string {
		return `//span[contains(@class,"badge") and @data-kind="` + kind + `" and contains(normalize-space(.), "` + text + `")]`
	}
	run("breaker badge on the endpoint page",
		chromedp.Navigate(base+"/endpoints/"+flaky.ID),
		chromedp.WaitVisible(`//div[@class="head-badges"]`+badge("breaker", "breaker open")),
		chromedp.WaitVisible(`//p[contains(@class,"health-reason") and @data-kind="breaker" and contains(., "12 consecutive failures opened the circuit breaker") and contains(., "next probe goes at `+probe.UTC().Format("15:04")+`")]`),
		shot("12-endpoint-breaker.png"),
	)
	run("pause badge on the endpoint page",
		chromedp.Navigate(base+"/endpoints/"+good.ID),
		chromedp.WaitVisible(badge("pause", "paused until "+probe.UTC().Format("15:04"))),
		chromedp.WaitVisible(`//p[contains(@class,"health-reason") and @data-kind="pause" and contains(., "Retry-After")]`),
	)
	run("badges in the list",
		chromedp.Navigate(base+"/endpoints"),
		chromedp.WaitVisible(`//li[.//a[contains(@href,"`+flaky.ID+`")]]`+badge("breaker", "breaker open")),
		chromedp.WaitVisible(`//li[.//a[contains(@href,"`+good.ID+`")]]`+badge("pause", "paused until")),
		chromedp.WaitVisible(`//li[.//a[contains(@href,"`+gone.ID+`")]]`+badge("disabled", "disabled")),
		chromedp.WaitVisible(`//li[.//a[contains(@href,"`+gone.ID+`")]]//p[contains(@class,"health-reason") and contains(., "endpoint answered 410 Gone")]`),
		shot("13-endpoints-badges.png"),
	)
	title, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('li a[href$="`+flaky.ID+`"]').closest("li").querySelector('.health-badge[data-kind="breaker"]').title`))
	if err != nil || !strings.Contains(title, "12 consecutive failures") {
		t.Errorf("breaker badge title %q (%v)", title, err)
	}
	// A closed breaker without a pause earns no badge.
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelector('li a[href$="`+gone.ID+`"]').closest("li").querySelectorAll(".health-badge").length`))
	if err != nil || n != 0 {
		t.Errorf("the disabled endpoint with a closed breaker shows %d health badges (%v)", n, err)
	}
}

func writeFile(dir, name string, b []byte) error {
	return os.WriteFile(filepath.Join(dir, name), b, 0o644)
}
