package dashboard

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// urlLayout is how a URL title lies on the page, measured by urlLayoutJS.
type urlLayout struct {
	Text      string  // what a copy gives
	HostLines int     // lines the host:port spans
	Lines     int     // lines the whole URL spans
	Overflow  bool    // the title or its card is wider than its box, or the page scrolls sideways
	BreaksAt  string  // the character before each line break
	Width     float64 // the title's width, for the failure message
}

// urlLayoutJS measures every element matched by %q whose text holds
// 127.0.0.1:9000, the host the test's endpoints use.
const urlLayoutJS = `(() => {
  const tops = r => new Set([...r.getClientRects()].filter(x => x.width > 0).map(x => Math.round(x.top))).size;
  return [...document.querySelectorAll(%q)].map(el => {
    let hostLines = 0, breaksAt = "", prev = null, top = null;
    const walk = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    for (let n; (n = walk.nextNode());) {
      const r = document.createRange();
      for (let i = 0; i < n.data.length; i++) {
        r.setStart(n, i);
        r.setEnd(n, i + 1);
        const t = Math.round(r.getBoundingClientRect().top);
        if (top !== null && t > top) breaksAt += prev;
        top = t;
        prev = n.data[i];
      }
      const i = n.data.indexOf("127.0.0.1:9000");
      if (i < 0) continue;
      r.setStart(n, i);
      r.setEnd(n, i + "127.0.0.1:9000".length);
      hostLines = tops(r);
    }
    const all = document.createRange();
    all.selectNodeContents(el);
    const box = el.closest(".card, .page-head");
    const er = el.getBoundingClientRect(), br = box.getBoundingClientRect();
    return {Text: el.textContent, HostLines: hostLines, Lines: tops(all), Width: er.width, BreaksAt: breaksAt,
      Overflow: er.right > br.right + 1 || el.scrollWidth > el.clientWidth + 1 || box.scrollWidth > box.clientWidth + 1 ||
        document.documentElement.scrollWidth > window.innerWidth};
  });
})()`

// fieldRowsJS lays the endpoint form out at card widths from 320 to 820 px
// (the two columns side by side) and gives, for each, the rate-limit and
// max-in-flight inputs' top offsets and the lines of their labels' text.
const fieldRowsJS = `(() => {
  const card = document.querySelector(".form-card"), out = [];
  const top = id => document.getElementById(id).getBoundingClientRect().top;
  const label = id => {
    const r = document.createRange();
    r.selectNodeContents(document.querySelector("label[for=" + id + "]"));
    return new Set([...r.getClientRects()].map(x => Math.round(x.bottom))).size;
  };
  for (let w = 320; w <= 820; w += 10) {
    card.style.width = w + "px";
    out.push({Width: w, RateTop: top("rate_limit"), FlightTop: top("max_in_flight"), RateLabel: label("rate_limit"), FlightLabel: label("max_in_flight")});
  }
  card.style.width = "";
  return out;
})()`

// fieldRow is one measure of fieldRowsJS.
type fieldRow struct {
	Width                  int
	RateTop, FlightTop     float64
	RateLabel, FlightLabel int
}

// TestBrowserLayout measures in chromium what new users tripped over: an
// endpoint's URL broke inside its host (http://127.0.0.1 / :9000/hook); the
// rate-limit and max-in-flight inputs were out of line when only one label
// wrapped.
func TestBrowserLayout(t *testing.T) {
	chromium := chromiumPath(t)
	e := newEnv(t, envOpts{})
	// One URL with a long path and query, one with a segment wider than a
	// phone. Chromium itself breaks after a '/' before a letter, not before
	// a digit.
	long := e.createEndpoint(e.a, "http://127.0.0.1:9000/hooks/2026/12/03/0123456789/live-events?team=video&env=staging&x=1")
	seg := e.createEndpoint(e.a, "http://127.0.0.1:9000/"+strings.Repeat("x", 150))
	ev := e.publish(e.a, `{"event":"live.created","data":{"event_id":"layout-1"}}`)

	ctx, run := signedInChromium(t, chromium, e)

	base := e.srv.URL + "/projects/" + e.a.ID
	for _, vp := range []struct{ w, h int64 }{{360, 780}, {390, 844}, {1280, 860}} {
		for _, pg := range []struct {
			name, path, sel string
			want            int // titles on the page
		}{
			{"endpoint cards", "/endpoints", "li.endpoint-card h2.url", 2},
			{"endpoint page", "/endpoints/" + long.ID, "h1.url", 1},
			{"endpoint page", "/endpoints/" + seg.ID, "h1.url", 1},
			{"event page", "/events/" + ev.ID, "article.delivery h3.url", 2},
		} {
			what := fmt.Sprintf("%s at %dpx", pg.name, vp.w)
			run(what, chromedp.EmulateViewport(vp.w, vp.h), chromedp.Navigate(base+pg.path), chromedp.WaitVisible(chromedp.CSS(pg.sel)))
			if pg.path == "/endpoints" && vp.w != 390 {
				run("screenshot", saveShot(t, fmt.Sprintf("40-endpoint-urls-%d.png", vp.w)))
			}
			got, err := chromedp.Run(ctx, chromedp.Evaluate[[]urlLayout](fmt.Sprintf(urlLayoutJS, pg.sel)))
			if err != nil {
				t.Fatalf("%s: measure: %v", what, err)
			}
			if len(got) != pg.want {
				t.Fatalf("%s: %d URL titles, want %d", what, len(got), pg.want)
			}
			for _, l := range got {
				if l.Text != long.URL && l.Text != seg.URL {
					t.Errorf("%s: the title copies as %q, not the URL", what, l.Text)
				}
				if l.HostLines != 1 {
					t.Errorf("%s: the host of %s spans %d lines in a title %.0fpx wide", what, l.Text, l.HostLines, l.Width)
				}
				if l.Overflow {
					t.Errorf("%s: %s overflows its box (title %.0fpx wide)", what, l.Text, l.Width)
				}
				// Where there is a choice, after a '/', '?' or '&' (or the
				// hyphen of live-events, where chromium breaks any text).
				if l.Text == long.URL && strings.Trim(l.BreaksAt, "/?&-") != "" {
					t.Errorf("%s: %s breaks after %q, not only after '/', '?', '&' and '-'", what, l.Text, l.BreaksAt)
				}
				// The measure is of a wrapped URL: on a phone both wrap.
				if vp.w < 400 && l.Lines < 2 {
					t.Errorf("%s: %s fits on one line; the test measures nothing", what, l.Text)
				}
			}
		}
	}

	// The endpoint form's row of two number inputs, as it is and with an
	// error under one of them.
	checkRow := func(what string) {
		t.Helper()
		rows, err := chromedp.Run(ctx, chromedp.Evaluate[[]fieldRow](fieldRowsJS))
		if err != nil {
			t.Fatalf("%s: measure: %v", what, err)
		}
		uneven := 0
		for _, r := range rows {
			if r.RateLabel != r.FlightLabel {
				uneven++
			}
			if math.Abs(r.RateTop-r.FlightTop) > 1 {
				t.Errorf("%s, card %dpx wide: rate limit input at %.0fpx, max in flight at %.0fpx (labels of %d and %d lines)",
					what, r.Width, r.RateTop, r.FlightTop, r.RateLabel, r.FlightLabel)
			}
		}
		if uneven == 0 {
			t.Errorf("%s: at no width does one label wrap more than the other; the test measures nothing", what)
		}
	}
	run("the endpoint form", chromedp.EmulateViewport(1280, 860), chromedp.Navigate(base+"/endpoints/new"), chromedp.WaitVisible(chromedp.ID("max_in_flight")))
	checkRow("new endpoint")
	run("an error under the rate limit",
		chromedp.SendKeys(chromedp.ID("url"), "https://example.com/hook"),
		chromedp.SendKeys(chromedp.ID("rate_limit"), "-1"),
		chromedp.Click(chromedp.ID("create-endpoint")),
		chromedp.WaitVisible(chromedp.ID("rate-error")),
		saveShot(t, "41-endpoint-form-error.png"),
	)
	checkRow("new endpoint, rate limit refused")
	run("the form on a phone", chromedp.EmulateViewport(390, 844), chromedp.WaitVisible(chromedp.ID("max_in_flight")))
	stacked, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("max_in_flight").getBoundingClientRect().top > document.getElementById("rate-error").getBoundingClientRect().bottom && document.documentElement.scrollWidth <= window.innerWidth`))
	if err != nil || !stacked {
		t.Errorf("on a phone, the fields do not stack (max in flight below the rate limit's error) or the page scrolls sideways: %v %v", stacked, err)
	}
}

// TestBrowserTimeInput types times in the events filter as a user would: the
// field shows what was typed and the server reads it as UTC (a datetime-local
// input showed the browser's locale, mm/dd/yyyy, under a "(UTC)" label).
func TestBrowserTimeInput(t *testing.T) {
	chromium := chromiumPath(t)
	e := newEnv(t, envOpts{})
	ev := e.publish(e.a, `{"event":"live.created","data":{"event_id":"time-1"}}`)
	ctx, run := signedInChromium(t, chromium, e)
	value := func(id string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Value(chromedp.ID(id)))
		if err != nil {
			t.Fatalf("value of %s: %v", id, err)
		}
		return v
	}
	row := `//a[@class="event-link" and contains(@href,"` + ev.ID + `")]`
	run("filter from a time typed as the placeholder shows",
		chromedp.EmulateViewport(390, 844),
		chromedp.Navigate(e.srv.URL+"/projects/"+e.a.ID+"/events"),
		chromedp.WaitVisible(chromedp.ID("f-since")),
		chromedp.SendKeys(chromedp.ID("f-since"), "2000-01-02 03:04"),
	)
	if got := value("f-since"); got != "2000-01-02 03:04" {
		t.Fatalf("typed 2000-01-02 03:04, the field holds %q", got)
	}
	run("apply", chromedp.Click(chromedp.ID("apply-filters")), chromedp.WaitVisible(row), chromedp.WaitVisible(chromedp.ID("f-since")))
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil || !strings.Contains(loc, "since=2000-01-02+03%3A04") {
		t.Errorf("filtered to %s (%v), want since=2000-01-02+03%%3A04", loc, err)
	}
	if got := value("f-since"); got != "2000-01-02 03:04" {
		t.Errorf("after filtering, the field holds %q", got)
	}
	run("a time in the future leaves no event",
		chromedp.Clear(chromedp.ID("f-since")),
		chromedp.SendKeys(chromedp.ID("f-since"), time.Now().UTC().Add(2*time.Hour).Format("2006-01-02 15:04")),
		chromedp.Click(chromedp.ID("apply-filters")),
		chromedp.WaitVisible(`//*[contains(., "No events match")]`),
	)
	run("a date as a US locale shows it is refused, saying what to type",
		chromedp.Clear(chromedp.ID("f-since")),
		chromedp.SendKeys(chromedp.ID("f-until"), "12/03/2026"),
		chromedp.Click(chromedp.ID("apply-filters")),
		chromedp.WaitVisible(`//div[contains(@class,"flash-error") and contains(., "Until:") and contains(., "write YYYY-MM-DD HH:MM in UTC")]`),
	)
	if got := value("f-until"); got != "12/03/2026" {
		t.Errorf("the refused value comes back as %q", got)
	}
}

// signedInChromium starts a headless chromium (closed with the test),
// signed in to the dashboard with project a's key. run does the actions
// of a step and stops the test, with the page's text, if one fails.
func signedInChromium(t *testing.T, chromium string, e *testEnv) (context.Context, func(step string, actions ...chromedp.Action[chromedp.Void])) {
	t.Helper()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium), chromedp.Flag("headless", true), chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-quic", true), chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.UserDataDir(t.TempDir()))
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(cancelBrowser)
	ctx, cancel := context.WithTimeout(bctx, 3*time.Minute)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil { // starts the browser, which lives as long as ctx
		t.Fatalf("start chromium: %v", err)
	}
	run := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, time.Minute) // a step waiting for what never comes fails before the test's deadline
		defer cancel()
		if err := chromedp.Do(sctx, actions...); err != nil {
			body, _ := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("main")))
			t.Fatalf("%s: %v\npage text:\n%s", step, err, body)
		}
	}
	run("sign in with the project key",
		chromedp.EmulateViewport(1280, 860),
		chromedp.Navigate(e.srv.URL+"/login"),
		chromedp.WaitVisible(chromedp.ID("key")),
		chromedp.SendKeys(chromedp.ID("key"), e.keyA),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.ID("new-endpoint")),
	)
	return ctx, run
}

// saveShot saves a full-page screenshot in test-output/screenshots.
func saveShot(t *testing.T, name string) chromedp.Action[chromedp.Void] {
	dir := screenshotDir(t)
	return func(ctx context.Context, _ *chromedp.Target) (chromedp.Void, error) {
		buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			return chromedp.Void{}, err
		}
		return chromedp.Void{}, os.WriteFile(filepath.Join(dir, name), buf, 0o644)
	}
}
