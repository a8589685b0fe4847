package dashboard

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/kinehook/kinehook"
)

// TestBrowserKeysAndProjectDeletion drives the keys page and the admin's
// project deletion in headless chromium: a key made is shown once and
// listed with its scope and prefix, a revoked key leaves the list (after
// the confirmation dialog), and a project deleted after typing its id
// leaves the project picker.
func TestBrowserKeysAndProjectDeletion(t *testing.T) {
	chromium := chromiumPath(t)
	e := newEnv(t, envOpts{})
	shots := screenshotDir(t)
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
	ctx, cancel := context.WithTimeout(bctx, 2*time.Minute)
	defer cancel()

	// Confirmation dialogs (data-confirm) are accepted; their texts kept.
	var dmu sync.Mutex
	var dialogs []string
	events := chromedp.Events(ctx, cdppage.JavascriptDialogOpening)
	go func() {
		for ev, err := range events {
			if err != nil {
				return
			}
			dmu.Lock()
			dialogs = append(dialogs, ev.Message)
			dmu.Unlock()
			_, _ = chromedp.Call(ctx, cdppage.HandleJavaScriptDialog, cdppage.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	lastDialog := func() string {
		dmu.Lock()
		defer dmu.Unlock()
		if len(dialogs) == 0 {
			return ""
		}
		return dialogs[len(dialogs)-1]
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
	run := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			loc, _ := chromedp.Run(bctx, chromedp.Location())
			body, _ := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("main")))
			t.Fatalf("%s: %v (at %s)\npage text:\n%s", step, err, loc, body)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}
	eval := func(js string) int {
		t.Helper()
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](js))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		return n
	}

	run("sign in as admin and open project A's keys",
		chromedp.EmulateViewport(1280, 860),
		chromedp.Navigate(e.srv.URL+"/login"),
		chromedp.WaitVisible(chromedp.ID("key")),
		chromedp.SendKeys(chromedp.ID("key"), e.adminKey),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(`//h2/a[text()="`+e.a.Name+`"]`),
		chromedp.Click(`//h2/a[text()="`+e.a.Name+`"]`),
		chromedp.WaitVisible(chromedp.CSS(`nav.tabs a[href$="/keys"]`)),
		chromedp.Click(chromedp.CSS(`nav.tabs a[href$="/keys"]`)),
		chromedp.WaitVisible(chromedp.CSS("table.keys")),
	)
	if n := eval(`document.querySelectorAll("table.keys tbody tr").length`); n != 1 {
		t.Fatalf("keys table: %d rows, want the project's default key", n)
	}
	if name, scope := text(`table.keys tbody tr:nth-child(1) td.key-name`), text(`table.keys tbody tr:nth-child(1) .key-scope`); !strings.HasPrefix(name, "default") || scope != "full" {
		t.Fatalf("first key row: %q %q", name, scope)
	}

	run("make an ingest key",
		chromedp.SendKeys(chromedp.ID("key-name"), "encoder"),
		chromedp.SetValue(chromedp.ID("key-scope"), "ingest"),
		chromedp.Click(chromedp.ID("create-key")),
		chromedp.WaitVisible(chromedp.ID("new-key-value")),
		shot("11-keys-new.png"),
	)
	key := text("#new-key-value")
	k, _, err := e.store.KeyByHash(context.Background(), kinehook.HashKey(key))
	if !strings.HasPrefix(key, "kh_") || err != nil || k.Scope != kinehook.ScopeIngest || k.Name != "encoder" {
		t.Fatalf("shown key %q: stored %+v, %v", key, k, err)
	}
	if h := text("#new-key-h"); h != "Key encoder made (ingest)" {
		t.Fatalf("new key heading %q", h)
	}
	row := `#key-` + k.ID
	if scope, prefix := text(row+` .key-scope`), text(row+` .key-prefix`); scope != "ingest" || prefix != key[:11]+"…" {
		t.Fatalf("encoder row: scope %q prefix %q", scope, prefix)
	}
	if used := text(row + ` .key-used`); used != "never" {
		t.Fatalf("encoder last used %q, want never", used)
	}

	run("reload: the key is not shown again", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("table.keys")))
	if n := eval(`document.getElementById("new-key") === null && !document.body.innerText.includes(` + jsString(key) + `) ? 0 : 1`); n != 0 {
		t.Fatal("the key is shown again after a reload")
	}
	if n := eval(`document.querySelectorAll("table.keys tbody tr").length`); n != 2 {
		t.Fatalf("keys table: %d rows, want 2", n)
	}

	run("revoke it",
		chromedp.Click(chromedp.CSS(row+` button.revoke`)),
		chromedp.WaitVisible(`//div[contains(@class,"flash-ok") and contains(., "revoked")]`),
		shot("12-keys-revoked.png"),
	)
	if d := lastDialog(); !strings.Contains(d, "Revoke key encoder?") {
		t.Fatalf("confirmation dialog %q", d)
	}
	if n := eval(`document.querySelectorAll("table.keys tbody tr").length`); n != 1 {
		t.Fatalf("after revoking: %d rows, want 1", n)
	}
	if _, _, err := e.store.KeyByHash(context.Background(), kinehook.HashKey(key)); kinehook.ErrorCode(err) != kinehook.ENOTFOUND {
		t.Fatalf("revoked key still stored: %v", err)
	}

	run("delete project B",
		chromedp.Navigate(e.srv.URL+"/projects"),
		chromedp.WaitVisible(`//h2/a[text()="`+e.b.Name+`"]`),
		chromedp.Click(`//li[.//a[text()="`+e.b.Name+`"]]//summary`),
		chromedp.WaitVisible(chromedp.ID("confirm-"+e.b.ID)),
		chromedp.SendKeys(chromedp.ID("confirm-"+e.b.ID), e.b.ID),
		shot("13-project-delete.png"),
		chromedp.Click(chromedp.ID("delete-"+e.b.ID)),
		chromedp.WaitVisible(`//div[contains(@class,"flash-ok") and contains(., "deleted with everything in it")]`),
	)
	if d := lastDialog(); !strings.Contains(d, "Delete project "+e.b.Name) {
		t.Fatalf("confirmation dialog %q", d)
	}
	if n := eval(`document.querySelectorAll("li.card.project").length`); n != 1 {
		t.Fatalf("project picker shows %d projects after the deletion, want 1", n)
	}
	if _, err := e.store.GetProject(context.Background(), e.b.ID); kinehook.ErrorCode(err) != kinehook.ENOTFOUND {
		t.Fatalf("project B after deletion: %v", err)
	}
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
