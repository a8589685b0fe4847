package dashboard

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// publishState publishes a few videos and streams into project a.
func publishState(e *testEnv) {
	for _, b := range []string{
		`{"event":"media.update.status","data":{"id":"vid-ok","status":"processing"}}`,
		`{"event":"media.update.status","data":{"id":"vid-ok","status":"done"}}`,
		`{"event":"media.update.status","data":{"id":"vid-bad","status":"pending"}}`,
		`{"event":"media.update.status","data":{"id":"vid-bad","status":"error","message":"import error: code=610100"}}`,
		`{"event":"media.update.status","data":{"id":"vid-wait","status":"uploading"}}`,
		`{"event":"live.created","data":{"event_id":"stream-1"}}`,
		`{"event":"live.connected","data":{"event_id":"stream-1"}}`,
		`{"event":"live.disconnected","data":{"event_id":"stream-1"}}`,
		`{"event":"live.connected","data":{"event_id":"stream-2"}}`,
	} {
		e.publish(e.a, b)
	}
}

func TestVideosAndLivePages(t *testing.T) {
	e := newEnv(t, envOpts{})
	publishState(e)
	b := e.browser()
	b.login(e.keyA)
	base := "/projects/" + e.a.ID
	p := b.get(base + "/videos")
	if p.status != http.StatusOK {
		t.Fatalf("videos: %d", p.status)
	}
	mustContain(t, p, `data-count="done">1<`, `data-count="error">1<`, `data-count="uploading">1<`, "import error: code=610100", "3 videos")
	p = b.get(base + "/videos?id=vid-bad")
	mustContain(t, p, `id="video-found"`, "pending", "import error: code=610100")
	p = b.get(base + "/videos?id=nope")
	mustContain(t, p, "No video")
	p = b.get(base + "/videos?status=done")
	if !strings.Contains(p.body, "vid-ok") || strings.Contains(p.body, `href="`+base+`/videos?id=vid-wait"`) {
		t.Errorf("videos?status=done:\n%s", snippet(p.body))
	}
	p = b.get(base + "/streams")
	mustContain(t, p, `data-count="connected">1<`, `data-count="disconnected">1<`, "stream-1", "2 live streams")
	p = b.get(base + "/streams?id=stream-1")
	mustContain(t, p, `id="stream-found"`, "created", "disconnected")
	// Another project's key sees none of it.
	b2 := e.browser()
	b2.login(e.keyB)
	if p := b2.get(base + "/videos"); strings.Contains(p.body, "vid-bad") {
		t.Errorf("project b sees project a's videos")
	}
}

// TestBrowserVideosAndLive drives the Videos and Live pages in chromium:
// the tabs, counts by status, the recent errors, the search by id.
func TestBrowserVideosAndLive(t *testing.T) {
	chromium := chromiumPath(t)
	e := newEnv(t, envOpts{})
	publishState(e)
	shots := screenshotDir(t)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium), chromedp.Flag("headless", true), chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-quic", true), chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.UserDataDir(t.TempDir()))
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()
	ctx, cancel := context.WithTimeout(bctx, 2*time.Minute)
	defer cancel()
	shot := func(name string) chromedp.Action[chromedp.Void] {
		return func(ctx context.Context, _ *chromedp.Target) (chromedp.Void, error) {
			buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
			if err != nil {
				return chromedp.Void{}, err
			}
			return chromedp.Void{}, os.WriteFile(filepath.Join(shots, name), buf, 0o644)
		}
	}
	run := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			body, _ := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("main")))
			t.Fatalf("%s: %v\npage text:\n%s", step, err, body)
		}
	}
	run("sign in with the project key",
		chromedp.EmulateViewport(1280, 860),
		chromedp.Navigate(e.srv.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("key")),
		chromedp.SendKeys(chromedp.ID("key"), e.keyA),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(`//nav[contains(@class,"tabs")]//a[text()="Videos"]`),
	)
	run("the Videos tab: counts and recent errors",
		chromedp.Click(`//nav[contains(@class,"tabs")]//a[text()="Videos"]`),
		chromedp.WaitVisible(chromedp.ID("video-status-counts")),
		chromedp.WaitVisible(`//table[@id="video-errors"]//td[contains(., "import error: code=610100")]`),
		shot("10-videos.png"),
	)
	run("search a video by id",
		chromedp.SendKeys(chromedp.ID("video-id"), "vid-bad"),
		chromedp.Click(chromedp.ID("find-video")),
		chromedp.WaitVisible(chromedp.ID("video-found")),
		chromedp.WaitVisible(`//section[@id="video-found"]//span[contains(@class,"badge") and text()="pending"]`),
		shot("11-video-found.png"),
	)
	run("filter by status from the counts",
		chromedp.Click(`//ul[@id="video-status-counts"]//span[@data-status="done"]`),
		chromedp.WaitVisible(`//table[@id="video-rows"]//a[text()="vid-ok"]`),
	)
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#video-rows tbody tr").length`))
	if err != nil || n != 1 {
		t.Fatalf("videos in done: %d rows, %v", n, err)
	}
	run("the Live tab: streams by state, since when",
		chromedp.Click(`//nav[contains(@class,"tabs")]//a[text()="Live"]`),
		chromedp.WaitVisible(chromedp.ID("live-state-counts")),
		chromedp.WaitVisible(`//table[@id="live-state-counts"]//span[@data-state="disconnected"]`),
		chromedp.WaitVisible(`//table[@id="stream-rows"]//a[text()="stream-2"]`),
		shot("12-live.png"),
		chromedp.Click(`//table[@id="stream-rows"]//a[text()="stream-1"]`),
		chromedp.WaitVisible(`//section[@id="stream-found"]//span[contains(@class,"badge") and text()="disconnected"]`),
	)
	run("phone size",
		chromedp.EmulateViewport(390, 844),
		chromedp.Navigate(e.srv.URL+"/projects/"+e.a.ID+"/videos"),
		chromedp.WaitVisible(chromedp.ID("video-status-counts")),
		shot("13-videos-phone.png"),
	)
}
