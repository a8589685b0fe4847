package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/kinehook/kinehook"
	khttp "github.com/kinehook/kinehook/http"
)

// TestBrowserPortalEmbedded embeds the customer portal, as a platform
// would, in a page of another site (http://localhost:P1 framing
// http://127.0.0.1:P2, both loopback) in a real headless chromium: the
// customer opens the session URL inside the frame, creates an endpoint,
// sends it a test event that fails and retries it there, and the API shows
// both. A page of an origin the project does not allow cannot frame the
// portal, and an expired and a revoked session get an error page, no data.
func TestBrowserPortalEmbedded(t *testing.T) {
	chromium := chromiumPath(t)
	e := newEnv(t, envOpts{})
	api, err := khttp.NewServer(khttp.Config{Store: e.store, Dispatcher: e.engine, App: e.h.app, AdminKeyHash: kinehook.HashKey(e.adminKey)})
	if err != nil {
		t.Fatal(err)
	}
	var portalGets atomic.Int64
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if api.Serves(r.URL.Path) {
			api.ServeHTTP(w, r)
			return
		}
		if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, portalPrefix) && !strings.HasSuffix(r.URL.Path, ".css") {
			portalGets.Add(1)
		}
		e.h.ServeHTTP(w, r)
	}))
	t.Cleanup(server.Close)
	// embedder serves a platform's page framing ?src= (on localhost, so
	// that it is another site than the portal's 127.0.0.1).
	embedder := func() string {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprintf(w, `<!doctype html><title>Platform</title><h1 id="platform">Your webhooks</h1>
<iframe id="portal" src="%s" width="1200" height="900"></iframe>`, html.EscapeString(r.URL.Query().Get("src")))
		}))
		t.Cleanup(s.Close)
		return strings.Replace(s.URL, "127.0.0.1", "localhost", 1)
	}
	allowed, denied := embedder(), embedder()

	call := func(method, path string, body any) map[string]any {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = strings.NewReader(string(b))
		}
		req, _ := http.NewRequest(method, server.URL+path, rd)
		req.Header.Set("Authorization", "Bearer "+e.keyA)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		if res.StatusCode >= 300 {
			t.Fatalf("%s %s: %d %s", method, path, res.StatusCode, raw)
		}
		out := map[string]any{}
		_ = json.Unmarshal(raw, &out)
		return out
	}
	base := "/v1/projects/" + e.a.ID
	call("PATCH", base, map[string]any{"portal_origins": []string{allowed}})
	session := call("POST", base+"/portal-sessions", map[string]any{"scope": "manage", "branding": map[string]any{"name": "Acme Video", "color": "#0a7f5a"}})
	portalURL := session["url"].(string)
	if !strings.HasPrefix(portalURL, server.URL+"/portal/kpt_") {
		t.Fatalf("portal URL %q", portalURL)
	}

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
	ctx, cancel := context.WithTimeout(bctx, 3*time.Minute)
	defer cancel()
	run := func(ctx context.Context, step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
			t.Fatalf("%s: %v\npage text:\n%s", step, err, body)
		}
	}
	// embed opens the platform's page framing src and returns a context
	// attached to the portal's frame (a target of its own: another site),
	// or nil when no frame of the portal's origin is there.
	embed := func(page, src string) (context.Context, func()) {
		t.Helper()
		run(ctx, "open "+page, chromedp.Navigate(page+"/?src="+url.QueryEscape(src)), chromedp.WaitVisible(chromedp.ID("platform")))
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			infos, err := chromedp.Targets(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, info := range infos {
				if info.Type == "iframe" && strings.HasPrefix(info.URL, server.URL+"/portal/") {
					fctx, cancel := chromedp.NewContext(ctx, chromedp.WithTargetID(info.TargetID), chromedp.WithDetachOnCancel())
					return fctx, cancel
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		return nil, func() {}
	}
	// reloadFrame reloads the frame's page (Page.reload is for top-level
	// targets only) and waits for the new document.
	reloadFrame := func(ctx context.Context, _ *chromedp.Target) (chromedp.Void, error) {
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.__old = true; setTimeout(() => location.reload(), 0); true`)); err != nil {
			return chromedp.Void{}, err
		}
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			// The page's JavaScript context goes away while it reloads.
			if fresh, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`!window.__old && document.readyState === "complete"`)); err == nil && fresh {
				return chromedp.Void{}, nil
			}
		}
		return chromedp.Void{}, fmt.Errorf("the frame did not reload")
	}
	// frameText is the text of the frame's page, or "" when it shows none of ours.
	frameText := func(fctx context.Context) string {
		if fctx == nil {
			return ""
		}
		s, err := chromedp.Run(fctx, chromedp.Evaluate[string](`document.getElementById("main") ? document.body.innerText : ""`))
		if err != nil {
			return ""
		}
		return s
	}

	// Signed in through the session URL inside the allowed page's frame.
	run(ctx, "viewport", chromedp.EmulateViewport(1280, 1000))
	frame, closeFrame := embed(allowed, portalURL)
	if frame == nil {
		t.Fatalf("the allowed page has no portal frame")
	}
	run(frame, "the portal in the frame",
		chromedp.WaitVisible(chromedp.ID("new-endpoint")),
		chromedp.WaitVisible(`//span[@id="portal-brand" and contains(., "Acme Video")]`),
	)
	run(frame, "create an endpoint in the frame",
		chromedp.Click(chromedp.ID("new-endpoint")),
		chromedp.WaitVisible(chromedp.ID("url")),
		chromedp.SendKeys(chromedp.ID("url"), e.sink.srv.URL+"/customer-hook"),
		chromedp.SendKeys(chromedp.ID("description"), "made in the portal"),
		chromedp.Click(chromedp.ID("create-endpoint")),
		chromedp.WaitVisible(chromedp.ID("secret-value")),
	)
	shots := screenshotDir(t)
	shot := func(name string) {
		t.Helper()
		buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		if err := os.WriteFile(filepath.Join(shots, name), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	eps := call("GET", base+"/endpoints", nil)["data"].([]any)
	if len(eps) != 1 || eps[0].(map[string]any)["url"] != e.sink.srv.URL+"/customer-hook" {
		t.Fatalf("the API shows %v, want the endpoint made in the portal", eps)
	}
	epID := eps[0].(map[string]any)["id"].(string)

	e.sink.fail.Store(true)
	run(frame, "send a test event that fails",
		chromedp.SetValue(chromedp.ID("test-type"), "media.update.status"),
		chromedp.Click(chromedp.ID("send-test")),
		chromedp.WaitVisible(`//div[contains(@class,"flash-ok") and contains(., "Test event media.update.status sent")]`),
	)
	var did string
	waitStatus := func(want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			ds := call("GET", base+"/endpoints/"+epID+"/deliveries", nil)["data"].([]any)
			if len(ds) == 1 {
				d := ds[0].(map[string]any)
				did = d["id"].(string)
				if d["status"] == want {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("deliveries %v never %s", ds, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitStatus("failed")
	e.sink.fail.Store(false)
	run(frame, "retry it in the frame",
		reloadFrame,
		chromedp.WaitVisible(`//tr[@data-delivery="`+did+`"]//span[contains(@class,"badge") and normalize-space(text())="failed"]`),
		chromedp.Click(`//tr[@data-delivery="`+did+`"]//button[contains(@class,"retry-delivery")]`),
		chromedp.WaitVisible(`//div[contains(@class,"flash-ok") and contains(., "is being sent again")]`),
	)
	waitStatus("succeeded")
	run(frame, "the retried delivery in the frame", reloadFrame,
		chromedp.WaitVisible(`//tr[@data-delivery="`+did+`"]//span[contains(@class,"badge") and normalize-space(text())="succeeded"]`))
	shot("21-portal-embedded.png")

	// The forms that ask first (data-confirm) work in the frame: the
	// browser shows the frame's confirmation, accepted here.
	secret := call("GET", base+"/endpoints/"+epID+"/secret", nil)["secret"]
	var dialogs atomic.Int64
	for _, c := range []context.Context{ctx, frame} {
		evs := chromedp.Events(c, cdppage.JavascriptDialogOpening)
		go func() {
			for _, err := range evs {
				if err != nil {
					return
				}
				dialogs.Add(1)
				_, _ = chromedp.Call(c, cdppage.HandleJavaScriptDialog, cdppage.HandleJavaScriptDialogParams{Accept: true})
			}
		}()
	}
	run(frame, "rotate the secret in the frame",
		chromedp.Click(chromedp.ID("rotate-secret")),
		chromedp.WaitVisible(`//div[contains(@class,"flash-ok") and contains(., "Secret rotated.")]`),
	)
	if dialogs.Load() != 1 {
		t.Errorf("%d confirmation dialogs, want 1", dialogs.Load())
	}
	if now := call("GET", base+"/endpoints/"+epID+"/secret", nil)["secret"]; now == secret || now == nil {
		t.Errorf("the secret after rotating in the frame: %v (was %v)", now, secret)
	}
	if atts := call("GET", base+"/deliveries/"+did+"/attempts", nil)["data"].([]any); len(atts) != 2 {
		t.Errorf("the API shows %d attempts of %s, want 2 (the failure and the retry)", len(atts), did)
	}
	// The portal's page on its own (a screenshot of a cross-site frame
	// shows only part of it).
	at, err := chromedp.Run(frame, chromedp.Evaluate[string](`location.href`))
	if err != nil {
		t.Fatal(err)
	}
	closeFrame()
	run(ctx, "the portal's endpoint page", chromedp.Navigate(at), chromedp.WaitVisible(chromedp.ID("save-endpoint")))
	shot("22-portal-endpoint.png")

	// A page of an origin the project does not allow: the server answered,
	// the browser did not show it (CSP frame-ancestors).
	before := portalGets.Load()
	denyFrame, closeDeny := embed(denied, portalURL)
	defer closeDeny()
	time.Sleep(300 * time.Millisecond)
	if portalGets.Load() == before {
		t.Fatalf("the denied page's frame never asked for the portal: the test shows nothing")
	}
	if txt := frameText(denyFrame); strings.Contains(txt, "customer-hook") || strings.Contains(txt, "Acme Video") {
		t.Errorf("a disallowed origin framed the portal:\n%s", txt)
	}
	if frameText(denyFrame) != "" {
		t.Errorf("the denied frame shows a page of ours")
	}

	// Expired and revoked sessions, in the allowed page: an error page, no data.
	expiring := call("POST", base+"/portal-sessions", map[string]any{"scope": "manage", "expires_in": 1})
	revoked := call("POST", base+"/portal-sessions", map[string]any{"scope": "manage"})
	call("DELETE", base+"/portal-sessions/"+revoked["id"].(string), nil)
	time.Sleep(1100 * time.Millisecond)
	for name, u := range map[string]string{"expired": expiring["url"].(string), "revoked": revoked["url"].(string)} {
		f, closeF := embed(allowed, u)
		if f == nil {
			t.Fatalf("%s: no portal frame", name)
		}
		run(f, name+" session", chromedp.WaitVisible(`//main//h1[contains(., "401")]`))
		txt := frameText(f)
		if !strings.Contains(txt, "expired or was revoked") || strings.Contains(txt, "customer-hook") || strings.Contains(txt, epID) ||
			strings.Contains(txt, "New endpoint") {
			t.Errorf("%s session's frame:\n%s", name, txt)
		}
		closeF()
	}
}
