package dashboard

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/kinehook/kinehook"
)

// addRejected stores n rejected inputs of project pid (message ids
// ORDERS:1..n, the last one newest, with a body holding markup).
func addRejected(t *testing.T, st kinehook.Store, pid string, n int) {
	t.Helper()
	base := time.Now().UTC().Add(-time.Minute)
	for i := 1; i <= n; i++ {
		body := fmt.Sprintf(`{"event":"media.update.status","data":{"id":"v-%d","bogus":"<b>x</b>"}}`, i)
		err := st.(kinehook.RejectStore).RecordRejected(context.Background(), []*kinehook.RejectedInput{{
			ID: kinehook.NewID(kinehook.PrefixRejected), ProjectID: pid, Source: "nats:ORDERS", MessageID: fmt.Sprintf("ORDERS:%d", i),
			Code: kinehook.EINVALID, Reason: "data.bogus: expected no field other than \"id\", \"status\", \"message\", got an unknown field",
			Body: []byte(body), BodySize: len(body), ReceivedAt: base.Add(time.Duration(i) * time.Millisecond),
		}})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestRejectedPage: the project's rejected inputs, newest first, paged,
// escaped; another project sees none of them; an empty list explains itself.
func TestRejectedPage(t *testing.T) {
	e := newEnv(t, envOpts{})
	addRejected(t, e.store, e.a.ID, eventsPerPage+3)
	b := e.browser()
	b.login(e.keyA)
	p := b.get("/projects/" + e.a.ID + "/rejected")
	if p.status != http.StatusOK {
		t.Fatalf("status %d: %s", p.status, snippet(p.body))
	}
	mustContain(t, p, "Rejected inputs", "nats:ORDERS", fmt.Sprintf("ORDERS:%d", eventsPerPage+3), "data.bogus: expected no field", `aria-current="page">Rejected`)
	if strings.Contains(p.body, "<b>x</b>") {
		t.Error("the body's markup is not escaped")
	}
	if strings.Contains(p.body, ">ORDERS:3<") {
		t.Error("the first page shows an old input: not newest first, or not paged")
	}
	i := strings.Index(p.body, `rel="next"`)
	if i < 0 {
		t.Fatalf("no link to older inputs:\n%s", snippet(p.body))
	}
	href := p.body[strings.LastIndex(p.body[:i], `href="`)+6:]
	href = strings.ReplaceAll(href[:strings.Index(href, `"`)], "&amp;", "&")
	older := b.get(href)
	mustContain(t, older, ">ORDERS:1<", ">ORDERS:3<", "Newest")

	bad := b.get("/projects/" + e.a.ID + "/rejected?cursor=nope")
	if bad.status != http.StatusBadRequest {
		t.Errorf("bad cursor: status %d", bad.status)
	}

	b2 := e.browser()
	b2.login(e.keyB)
	empty := b2.get("/projects/" + e.b.ID + "/rejected")
	mustContain(t, empty, "Nothing rejected")
	if strings.Contains(empty.body, "ORDERS:") {
		t.Error("project B sees project A's rejected inputs")
	}
}

// TestBrowserRejected opens the rejected-input page in chromium from the
// project's tabs and sees the newest input with its reason and body.
func TestBrowserRejected(t *testing.T) {
	chromium := chromiumPath(t)
	e := newEnv(t, envOpts{})
	addRejected(t, e.store, e.a.ID, 2)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()
	ctx, cancel := context.WithTimeout(bctx, time.Minute)
	defer cancel()
	err := chromedp.Do(ctx,
		chromedp.EmulateViewport(1280, 860),
		chromedp.Navigate(e.srv.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("key")),
		chromedp.SendKeys(chromedp.ID("key"), e.keyA),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(`//nav[contains(@class,"tabs")]/a[text()="Rejected"]`),
		chromedp.Click(`//nav[contains(@class,"tabs")]/a[text()="Rejected"]`),
		chromedp.WaitVisible(chromedp.ID("rejected-list")),
	)
	if err != nil {
		t.Fatalf("open the rejected page: %v", err)
	}
	first, err := chromedp.Run(ctx, chromedp.Text(`#rejected-list tbody tr:first-child`))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ORDERS:2", "nats:ORDERS", "invalid", "data.bogus", `"bogus":"<b>x</b>"`} {
		if !strings.Contains(first, want) {
			t.Errorf("first row %q lacks %q", first, want)
		}
	}
	if buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
		_ = os.WriteFile(filepath.Join(screenshotDir(t), "20-rejected.png"), buf, 0o644)
	}
}
