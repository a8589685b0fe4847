package dashboard

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/kinehook/kinehook"
)

// TestBrowserDeliveryLog drives the endpoint page's delivery log in
// chromium: the rows the search returns, the status and resource filters,
// the bulk retry behind its confirmation (refused, then accepted), and the
// header's search box finding an event, a delivery and a resource.
func TestBrowserDeliveryLog(t *testing.T) {
	chromium := chromiumPath(t)
	e := newEnv(t, envOpts{})
	shots := screenshotDir(t)
	ep := e.createEndpoint(e.a, e.sink.srv.URL)
	e.sink.fail.Store(true)
	f1 := e.publish(e.a, `{"event":"media.update.status","data":{"id":"video-1","status":"done"}}`)
	f2 := e.publish(e.a, `{"event":"media.update.status","data":{"id":"video-2","status":"error"}}`)
	e.waitDeliveries(e.a.ID, f1.ID, kinehook.DeliveryFailed)
	e.waitDeliveries(e.a.ID, f2.ID, kinehook.DeliveryFailed)
	e.sink.fail.Store(false)
	ok := e.publish(e.a, `{"event":"live.created","data":{"event_id":"live-7"}}`)
	okDs := e.waitDeliveries(e.a.ID, ok.ID, kinehook.DeliverySucceeded)

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
	run := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			loc, _ := chromedp.Run(bctx, chromedp.Location())
			body, _ := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("main")))
			t.Fatalf("%s: %v (at %s)\npage text:\n%s", step, err, loc, body)
		}
	}
	eval := func(js string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatalf("evaluate %s: %v", js, err)
		}
		return v
	}
	// rows is the log's rows as "resource status", in order.
	rows := func() string {
		return eval(`Array.from(document.querySelectorAll("#delivery-table tbody tr")).map(tr =>
			tr.querySelector('td[data-label="Resource"]').innerText.trim() + " " + tr.querySelector('td[data-label="Status"] .badge').innerText.trim()).join(", ")`)
	}
	shot := func(name string) chromedp.Action[chromedp.Void] {
		return func(ctx context.Context, _ *chromedp.Target) (chromedp.Void, error) {
			buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
			if err != nil {
				return chromedp.Void{}, err
			}
			return chromedp.Void{}, os.WriteFile(filepath.Join(shots, name), buf, 0o644)
		}
	}
	base := e.srv.URL + "/projects/" + e.a.ID
	run("sign in with the project key",
		chromedp.EmulateViewport(1280, 900),
		chromedp.Navigate(e.srv.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("key")),
		chromedp.SendKeys(chromedp.ID("key"), e.keyA),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.ID("search-q")),
	)
	run("the endpoint page's delivery log",
		chromedp.Navigate(base+"/endpoints/"+ep.ID),
		chromedp.WaitVisible(chromedp.ID("delivery-table")),
		shot("11-endpoint-delivery-log.png"),
	)
	if got, want := rows(), "live-7 succeeded, video-2 failed, video-1 failed"; got != want {
		t.Errorf("log rows %q, want %q (newest first)", got, want)
	}
	if got := eval(`document.getElementById("bulk-retry").innerText`); got != "Re-send 2 failed" {
		t.Errorf("bulk retry button %q", got)
	}
	run("filter by status",
		chromedp.SetValue(chromedp.ID("d-status"), "failed"),
		chromedp.Click(chromedp.ID("apply-delivery-filters")),
		chromedp.WaitVisible(`//a[contains(@class,"btn") and normalize-space(text())="Clear"]`),
	)
	if got, want := rows(), "video-2 failed, video-1 failed"; got != want {
		t.Errorf("failed rows %q, want %q", got, want)
	}
	run("filter by resource",
		chromedp.SetValue(chromedp.ID("d-status"), ""),
		chromedp.SendKeys(chromedp.ID("d-resource"), "video-2"),
		chromedp.Click(chromedp.ID("apply-delivery-filters")),
		chromedp.WaitVisible(`//input[@id="d-resource" and @value="video-2"]`),
	)
	if got, want := rows(), "video-2 failed"; got != want {
		t.Errorf("resource rows %q, want %q", got, want)
	}
	// The confirmation refused: nothing is re-sent.
	eval(`window.confirm = m => { window.lastConfirm = m; return false; }; ""`)
	run("bulk retry refused", chromedp.Click(chromedp.ID("bulk-retry")))
	if msg := eval(`window.lastConfirm || ""`); !strings.Contains(msg, "Re-send 1 failed delivery matching the filters?") {
		t.Errorf("confirmation %q", msg)
	}
	time.Sleep(300 * time.Millisecond)
	if n := e.sink.hits.Load(); n != 3 {
		t.Fatalf("the sink saw %d requests after a refused confirmation, want 3", n)
	}
	eval(`window.confirm = m => true; ""`)
	run("bulk retry accepted",
		chromedp.Click(chromedp.ID("bulk-retry")),
		chromedp.WaitVisible(`//div[contains(@class,"flash-ok") and contains(., "Re-sending 1 failed delivery")]`),
	)
	e.waitDeliveries(e.a.ID, f2.ID, kinehook.DeliverySucceeded)
	if d, _ := e.store.ListDeliveries(context.Background(), e.a.ID, f1.ID); d[0].Status != kinehook.DeliveryFailed {
		t.Errorf("video-1 was re-sent too: %s", d[0].Status)
	}
	run("search box: an event",
		chromedp.SendKeys(chromedp.ID("search-q"), f1.ID),
		chromedp.Click(chromedp.ID("search-go")),
		chromedp.WaitVisible(`//p[contains(@class,"mono") and text()="`+f1.ID+`"]`),
	)
	run("search box: a delivery",
		chromedp.SendKeys(chromedp.ID("search-q"), okDs[0].ID),
		chromedp.Click(chromedp.ID("search-go")),
		chromedp.WaitVisible(`//article[@id="`+okDs[0].ID+`"]`),
	)
	run("search box: a resource",
		chromedp.SendKeys(chromedp.ID("search-q"), "video-1"),
		chromedp.Click(chromedp.ID("search-go")),
		chromedp.WaitVisible(chromedp.ID("delivery-table")),
		shot("12-deliveries-by-resource.png"),
	)
	if got, want := rows(), "video-1 failed"; got != want {
		t.Errorf("resource search rows %q, want %q", got, want)
	}
	run("search box: an unknown event",
		chromedp.SendKeys(chromedp.ID("search-q"), "msg_unknown"),
		chromedp.Click(chromedp.ID("search-go")),
		chromedp.WaitVisible(`//div[contains(@class,"flash-error") and contains(., "There is no event msg_unknown")]`),
	)
}
