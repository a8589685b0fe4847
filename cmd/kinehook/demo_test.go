package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kinehook/kinehook/client"
)

// demoBuffer is a bytes.Buffer safe to write and read from two goroutines.
type demoBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *demoBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *demoBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// checkDashboard signs in to the running demo's dashboard with the printed
// key, as a newcomer would, and checks that the events page lists simulated
// events with succeeded deliveries.
func checkDashboard(t *testing.T, base, key, pid string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	get := func(u string) string {
		t.Helper()
		resp, err := hc.Get(u)
		if err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", u, resp.StatusCode, b)
		}
		return string(b)
	}
	login := get(base + "/login")
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(login)
	if m == nil {
		t.Fatalf("no CSRF token on the sign-in page:\n%s", login)
	}
	resp, err := hc.PostForm(base+"/login", url.Values{"key": {key}, "csrf": {m[1]}})
	if err != nil {
		t.Fatalf("sign in: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("sign in: %d", resp.StatusCode)
	}
	page, err := client.New(base, key).ListEvents(context.Background(), pid, client.EventListOptions{Limit: 5})
	if err != nil || len(page.Data) == 0 {
		t.Fatalf("events through the API: %v", err)
	}
	html := get(base + "/projects/" + pid + "/events")
	if !strings.Contains(html, page.Data[len(page.Data)-1].ID) || !strings.Contains(html, "succeeded") {
		t.Fatalf("the dashboard's events page lacks event %s or a succeeded delivery:\n%s", page.Data[len(page.Data)-1].ID, html)
	}
}

func TestDemoDeliversToTheReceiver(t *testing.T) {
	t.Setenv(serveAdminKeyEnv, "")
	o := &demoOptions{addr: "127.0.0.1:0", rate: "40/s", duration: 5 * time.Second, flaky: 0.2, every: 500 * time.Millisecond, seed: 5}
	var out, errOut demoBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- runDemo(ctx, o, &out, &errOut) }()
	finished := false
	t.Cleanup(func() {
		// Never leave a demo running behind a failed check.
		if !finished {
			cancel()
			<-done
		}
	})
	// While it runs, the dashboard shows the simulated deliveries.
	waitUntil(t, "two summary lines", func() bool { return strings.Count(out.String(), "deliveries: succeeded") >= 2 })
	head := out.String()
	dash := regexp.MustCompile(`Dashboard:\s+(http://127\.0\.0\.1:\d+)/`).FindStringSubmatch(head)
	key := regexp.MustCompile(`Sign in with: (kh_\S+)`).FindStringSubmatch(head)
	pid := regexp.MustCompile(`/v1/projects/(prj_\w+)/events`).FindStringSubmatch(head)
	if dash == nil || key == nil || pid == nil {
		t.Fatalf("no dashboard URL, key or project in:\n%s", head)
	}
	checkDashboard(t, dash[1], key[1], pid[1])
	err := <-done
	finished = true
	if err != nil {
		t.Fatalf("demo: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errOut.String())
	}
	text := out.String()
	final := regexp.MustCompile(`final: .*succeeded (\d+)\s+failed (\d+)\s+pending (\d+).*refused (\d+)`).FindStringSubmatch(text)
	if final == nil {
		t.Fatalf("no final summary:\n%s", text)
	}
	succeeded, _ := strconv.Atoi(final[1])
	failed, _ := strconv.Atoi(final[2])
	pending, _ := strconv.Atoi(final[3])
	refused, _ := strconv.Atoi(final[4])
	if succeeded < 40 || failed != 0 || pending != 0 {
		t.Fatalf("succeeded %d failed %d pending %d; want many, 0, 0\n%s", succeeded, failed, pending, text)
	}
	if refused == 0 {
		t.Errorf("the flaky receiver refused nothing, so no retry was shown")
	}
	if !strings.Contains(text, "events after a final status: 0") {
		t.Errorf("the receiver saw events out of order:\n%s", text)
	}
	if n := strings.Count(text, "deliveries: succeeded"); n < 4 {
		t.Errorf("only %d running summary lines in 3 s at a 500 ms period", n)
	}
	m := regexp.MustCompile(`Data folder:\s+(\S+)`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no data folder in output")
	}
	if _, err := os.Stat(m[1]); !os.IsNotExist(err) {
		t.Errorf("data folder %s still exists after the demo (err %v)", m[1], err)
	}
}

func TestDemoStopsCleanlyOnCancel(t *testing.T) {
	t.Setenv(serveAdminKeyEnv, "")
	o := &demoOptions{addr: "127.0.0.1:0", rate: "20/s", every: 300 * time.Millisecond}
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(1500*time.Millisecond, cancel)
	start := time.Now()
	if err := runDemo(ctx, o, &out, &errOut); err != nil {
		t.Fatalf("demo interrupted: %v\n%s\n%s", err, out.String(), errOut.String())
	}
	if el := time.Since(start); el > 15*time.Second {
		t.Errorf("stopping took until %v", el)
	}
	if !strings.Contains(out.String(), "stopped (deliveries as last checked)") {
		t.Errorf("no stop summary:\n%s", out.String())
	}
	if os.Getenv(serveAdminKeyEnv) != "" {
		t.Errorf("the demo left %s set", serveAdminKeyEnv)
	}
}
