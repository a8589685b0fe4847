package dashboard

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kinehook/kinehook"
)

// TestBrowserDestination drives the dashboard in headless chromium to make
// an event destination: the type select hides the URL and shows the config
// and credentials fields, a wrong config comes back under its field, the
// endpoint is created with its credentials stored (shown only as ****),
// the list and the page show its type and config summary, and a test event
// is published to JetStream (the machine's NATS server, on a stream of the
// test's own) and succeeds.
func TestBrowserDestination(t *testing.T) {
	chromium := chromiumPath(t)
	nc, err := natsgo.Connect("nats://127.0.0.1:4222", natsgo.Timeout(5*time.Second))
	if err != nil {
		t.Skipf("no NATS server at 127.0.0.1:4222: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	id := strings.ToUpper(kinehook.NewID("t")[2:])
	subject, stream := "kinehook.dash."+id, "KHDASH_"+id
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	if _, err := js.CreateStream(sctx, jetstream.StreamConfig{Name: stream, Subjects: []string{subject}, Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = js.DeleteStream(context.Background(), stream) }()

	e := newEnv(t, envOpts{nats: true})
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
	ctx, cancel := context.WithTimeout(bctx, 3*time.Minute)
	defer cancel()
	run := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			loc, _ := chromedp.Run(bctx, chromedp.Location())
			body, _ := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("main")))
			t.Fatalf("%s: %v (at %s)\npage text:\n%s", step, err, loc, body)
		}
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
	hidden := func(id string) bool {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("`+id+`").closest("[data-for-type]").hidden`))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	base := e.srv.URL + "/projects/" + e.a.ID

	run("sign in",
		chromedp.EmulateViewport(1280, 900),
		chromedp.Navigate(e.srv.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("key")),
		chromedp.SendKeys(chromedp.ID("key"), e.keyA),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.ID("new-endpoint")),
		chromedp.Click(chromedp.ID("new-endpoint")),
		chromedp.WaitVisible(chromedp.ID("type")),
	)
	if !hidden("config") || hidden("url") {
		t.Fatal("a new endpoint starts as a webhook: URL shown, config hidden")
	}
	run("choose nats",
		chromedp.SetValue(chromedp.ID("type"), "nats"),
		func(ctx context.Context, _ *chromedp.Target) (chromedp.Void, error) {
			_, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("type").dispatchEvent(new Event("change"))`))
			return chromedp.Void{}, err
		},
		chromedp.WaitVisible(chromedp.ID("config")),
	)
	if hidden("config") || !hidden("url") {
		t.Fatal("after choosing nats: config must show, URL hide")
	}
	run("a config without subject is refused under its field",
		chromedp.SendKeys(chromedp.ID("config"), `{"url":"nats://127.0.0.1:4222"}`),
		chromedp.Click(chromedp.ID("create-endpoint")),
		chromedp.WaitVisible(`//p[@id="config-error" and contains(., "config.subject is required")]`),
		chromedp.WaitVisible(chromedp.ID("config")),
	)
	run("create the destination",
		chromedp.SetValue(chromedp.ID("config"), `{"url":"nats://127.0.0.1:4222","subject":"`+subject+`"}`),
		chromedp.SetValue(chromedp.ID("credentials"), "token: dash-secret-token"),
		chromedp.SendKeys(chromedp.ID("description"), "Orders bus"),
		shot("11-destination-new.png"),
		chromedp.Click(chromedp.ID("create-endpoint")),
		chromedp.WaitVisible(chromedp.ID("secret-value")),
		chromedp.WaitVisible(`//h1[contains(., "nats://127.0.0.1:4222 → `+subject+`")]`),
		chromedp.WaitVisible(`//textarea[@id="credentials" and contains(., "token: ****")]`),
		shot("12-destination.png"),
	)
	eps, err := e.store.ListEndpoints(context.Background(), e.a.ID)
	if err != nil || len(eps) != 1 || eps[0].TypeOf() != "nats" || eps[0].Credentials["token"] != "dash-secret-token" || eps[0].URL != "" {
		t.Fatalf("stored endpoints %+v, %v", eps, err)
	}
	page, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("main")))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(page, "dash-secret-token") {
		t.Fatal("the endpoint page shows a credential's value")
	}
	run("a test event is published to JetStream",
		chromedp.SetValue(chromedp.ID("test-type"), "media.update.status"),
		chromedp.Click(chromedp.ID("send-test")),
		chromedp.WaitVisible(chromedp.ID("deliveries")),
		chromedp.WaitVisible(`//div[@id="deliveries"]//span[contains(@class,"badge") and normalize-space(text())="succeeded"]`),
	)
	gctx, gcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer gcancel()
	st, err := js.Stream(gctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetMsg(gctx, 1)
	if err != nil {
		t.Fatalf("no message in the stream: %v", err)
	}
	if m.Header.Get(kinehook.HeaderSignature) == "" || !strings.Contains(string(m.Data), `"media.update.status"`) {
		t.Errorf("stream message %v %s", m.Header, m.Data)
	}
	run("the list shows the type and config summary",
		chromedp.Navigate(base+"/endpoints"),
		chromedp.WaitVisible(`//li[contains(@class,"endpoint-card")]//a[contains(., "→ `+subject+`")]`),
		chromedp.WaitVisible(`//li[contains(@class,"endpoint-card")]//span[contains(@class,"endpoint-type") and text()="nats"]`),
		shot("13-destinations-list.png"),
	)
}
