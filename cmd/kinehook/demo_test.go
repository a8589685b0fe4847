package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kinehook/kinehook/client"
	"github.com/kinehook/kinehook/internal/statussync"
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
	// --keep-data, so that statussync's SQLite file can be read afterwards.
	o := &demoOptions{addr: "127.0.0.1:0", rate: "40/s", duration: 5 * time.Second, flaky: 0.2, every: 500 * time.Millisecond, seed: 5, keepData: true}
	var out, errOut demoBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- runDemo(ctx, o, &out, &errOut) }()
	finished := false
	t.Cleanup(func() {
		// Never leave a demo running behind a failed check, nor its kept data.
		if !finished {
			cancel()
			<-done
		}
		if m := regexp.MustCompile(`Data folder:\s+(\S+)`).FindStringSubmatch(out.String()); m != nil {
			os.RemoveAll(m[1])
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
	// Kinescope's part: the inbox took its webhooks, and they reached the
	// receiver like every event.
	inbox := regexp.MustCompile(`inbox: played Kinescope: 6 of 6 webhooks to /in/inb_\w+ answered 200.*video (\S+) and stream`).FindStringSubmatch(text)
	if inbox == nil || !strings.Contains(text, "Inbox:        http://127.0.0.1:") {
		t.Fatalf("no inbox in the demo:\n%s", text)
	}
	if !strings.Contains(text, "notify: video "+inbox[1]+" is done") {
		t.Errorf("the video posted to the inbox did not reach the receiver:\n%s", text)
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
	checkStatussyncTables(t, text, m[1])
}

// checkStatussyncTables reads the receiver's SQLite file, kept in dir, and
// checks it against the demo's output: the notified videos are done, the
// notified recordings are in their live events, and the final report's
// figures are those of the tables.
func checkStatussyncTables(t *testing.T, text, dir string) {
	t.Helper()
	db := regexp.MustCompile(`Its tables:\s+(\S+)`).FindStringSubmatch(text)
	if db == nil || db[1] != filepath.Join(dir, "statussync.db") {
		t.Fatalf("the banner does not name statussync's SQLite file in %s:\n%s", dir, text)
	}
	if !strings.Contains(text, "Receiver:     examples/statussync at http://127.0.0.1:") {
		t.Errorf("the banner does not say the receiver is examples/statussync:\n%s", text)
	}
	ctx := context.Background()
	store, err := statussync.OpenStore(ctx, db[1])
	if err != nil {
		t.Fatalf("--keep-data did not keep the receiver's tables: %v", err)
	}
	defer store.Close()
	c, err := store.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c.Videos["done"] == 0 || c.LiveEvents["finished"] == 0 || c.Recordings == 0 {
		t.Errorf("statussync tables after the run: %+v; want videos done and live events finished with a recording", c)
	}
	report := regexp.MustCompile(`receiver \(examples/statussync\): handled (\d+) events.*videos \d+ \(done (\d+),.*finished (\d+), (\d+) with a recording`).FindStringSubmatch(text)
	if report == nil {
		t.Fatalf("no receiver report:\n%s", text)
	}
	for i, want := range []int{c.Videos["done"], c.LiveEvents["finished"], c.Recordings} {
		if got, _ := strconv.Atoi(report[i+2]); got != want {
			t.Errorf("receiver report figure %d = %d, the tables say %d:\n%s", i, got, want, report[0])
		}
	}
	// Every notification line matches a row.
	done := regexp.MustCompile(`notify: video (\S+) is done`).FindAllStringSubmatch(text, -1)
	recs := regexp.MustCompile(`notify: live event (\S+) finished, recording (\S+)`).FindAllStringSubmatch(text, -1)
	if len(done) != c.Videos["done"] || len(recs) != c.Recordings {
		t.Errorf("%d done and %d recording notifications printed; the tables have %d and %d", len(done), len(recs), c.Videos["done"], c.Recordings)
	}
	for _, d := range done {
		if v, err := store.GetVideo(ctx, d[1]); err != nil || v.Status != "done" {
			t.Errorf("notified video %s: %+v, %v", d[1], v, err)
		}
	}
	for _, r := range recs {
		if l, err := store.GetLiveEvent(ctx, r[1]); err != nil || l.Status != "finished" || l.RecordingVideoID != r[2] || l.FinishedAt.IsZero() {
			t.Errorf("notified live event %s: %+v, %v; want finished with recording %s", r[1], l, err, r[2])
		}
	}
}

func TestDemoStopsCleanlyOnCancel(t *testing.T) {
	t.Setenv(serveAdminKeyEnv, "")
	o := &demoOptions{addr: "127.0.0.1:0", rate: "20/s", every: 300 * time.Millisecond}
	var out, errOut demoBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- runDemo(ctx, o, &out, &errOut) }()
	// Ctrl-C a second after the banner (startup time varies with the machine's load).
	waitUntil(t, "the banner", func() bool { return strings.Contains(out.String(), "Press Ctrl-C to stop") })
	time.Sleep(time.Second)
	cancel()
	start := time.Now()
	if err := <-done; err != nil {
		t.Fatalf("demo interrupted: %v\n%s\n%s", err, out.String(), errOut.String())
	}
	if el := time.Since(start); el > 15*time.Second {
		t.Errorf("stopping took %v", el)
	}
	if !strings.Contains(out.String(), "stopped (deliveries as last checked)") || !strings.Contains(out.String(), "receiver (examples/statussync): handled") {
		t.Errorf("no stop summary or receiver report:\n%s", out.String())
	}
	m := regexp.MustCompile(`Data folder:\s+(\S+)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no data folder in output")
	}
	if _, err := os.Stat(m[1]); !os.IsNotExist(err) {
		t.Errorf("data folder %s (with statussync's SQLite file) still exists after the demo (err %v)", m[1], err)
	}
	if os.Getenv(serveAdminKeyEnv) != "" {
		t.Errorf("the demo left %s set", serveAdminKeyEnv)
	}
	if strings.Contains(errOut.String(), "level=ERROR") {
		t.Errorf("stopping the demo logged errors:\n%s", errOut.String())
	}
}

// TestDemoHelperProcess is not a test: TestDemoStopsOnSignals runs the test
// binary with it selected to get a real `kinehook demo` process.
func TestDemoHelperProcess(t *testing.T) {
	args := os.Getenv("KINEHOOK_DEMO_HELPER_ARGS")
	if args == "" {
		t.Skip("helper process for TestDemoStopsOnSignals")
	}
	rootCmd.SetArgs(strings.Fields(args))
	if err := rootCmd.Execute(); err != nil {
		os.Stderr.WriteString("kinehook: " + err.Error() + "\n")
		os.Exit(1)
	}
	os.Exit(0)
}

// TestDemoStopsOnSignals runs `kinehook demo` as its own process and stops it
// as a user does: Ctrl-C (SIGINT), or closing the terminal (SIGHUP). Either
// way it stops cleanly, exits 0, logs no error and leaves no data folder in
// the temporary directory.
func TestDemoStopsOnSignals(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			tmp := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^TestDemoHelperProcess$")
			cmd.Env = append(os.Environ(), "KINEHOOK_DEMO_HELPER_ARGS=demo --every 100ms --rate 40/s",
				"TMPDIR="+tmp, serveAdminKeyEnv+"=")
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var errOut demoBuffer
			cmd.Stderr = &errOut
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			var out demoBuffer
			banner := make(chan struct{})
			copied := make(chan struct{})
			go func() {
				defer close(copied)
				sc := bufio.NewScanner(stdout)
				once := sync.Once{}
				for sc.Scan() {
					out.Write([]byte(sc.Text() + "\n"))
					if strings.Contains(sc.Text(), "Press Ctrl-C to stop") {
						once.Do(func() { close(banner) })
					}
				}
			}()
			select {
			case <-banner:
			case <-time.After(30 * time.Second):
				t.Fatalf("no banner:\n%s\n%s", out.String(), errOut.String())
			}
			time.Sleep(time.Second)
			if entries, _ := os.ReadDir(tmp); len(entries) == 0 {
				t.Fatalf("no data folder in TMPDIR %s while the demo runs", tmp)
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { <-copied; exited <- cmd.Wait() }()
			select {
			case err := <-exited:
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					t.Fatalf("%v: demo exited with %v\n%s\n%s", sig, err, out.String(), errOut.String())
				} else if err != nil {
					t.Fatal(err)
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("%v: the demo did not stop\n%s\n%s", sig, out.String(), errOut.String())
			}
			if !strings.Contains(out.String(), "stopped (deliveries as last checked)") {
				t.Errorf("%v: no stop summary:\n%s", sig, out.String())
			}
			if strings.Contains(errOut.String(), "level=ERROR") {
				t.Errorf("%v: stopping the demo logged errors:\n%s", sig, errOut.String())
			}
			entries, err := os.ReadDir(tmp)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				t.Errorf("%v: %s left behind in TMPDIR", sig, e.Name())
			}
		})
	}
}

// TestDemoSurvivesClosedOutput runs `kinehook demo | tee log` as a user
// does, and presses Ctrl-C: tee exits first, so the demo's last lines go to a
// closed pipe. The demo must still stop cleanly and remove its data folder
// (it used to die of SIGPIPE and leave the folder behind). While tee still
// reads, the output explains its lines and repeats the dashboard's address.
func TestDemoSurvivesClosedOutput(t *testing.T) {
	tmp := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestDemoHelperProcess$")
	cmd.Env = append(os.Environ(), "KINEHOOK_DEMO_HELPER_ARGS=demo --every 50ms --rate 40/s",
		"TMPDIR="+tmp, serveAdminKeyEnv+"=")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errOut demoBuffer
	cmd.Stderr = &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var out demoBuffer
	reminded := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		once := sync.Once{}
		for sc.Scan() {
			out.Write([]byte(sc.Text() + "\n"))
			if strings.Contains(sc.Text(), "      dashboard: http://") {
				once.Do(func() { close(reminded) })
				return // the reader goes away, like tee on Ctrl-C
			}
		}
	}()
	select {
	case <-reminded:
	case <-time.After(60 * time.Second):
		t.Fatalf("no reminder of the dashboard within 60 s:\n%s\n%s", out.String(), errOut.String())
	}
	for _, want := range []string{"What the lines below say:", `"notify: ..."`, "receiver refused N first attempts"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the banner does not explain its lines (%q missing):\n%s", want, out.String())
		}
	}
	stdout.Close()
	time.Sleep(500 * time.Millisecond) // several summary lines go to the closed pipe
	if err := cmd.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("the demo died when its output was closed: %v\n%s", err, errOut.String())
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == -1 {
			t.Fatalf("demo killed by a signal (%v):\n%s", err, errOut.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the demo did not stop\n%s", errOut.String())
	}
	entries, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("%s left behind in TMPDIR", e.Name())
	}
}

// TestDemoTrackerLetsRequestsFinishOnStop stops a poll while its requests
// are in flight: they finish instead of being cut off (the server would log a
// cut request as an ERROR), and no new request starts.
func TestDemoTrackerLetsRequestsFinishOnStop(t *testing.T) {
	var (
		mu        sync.Mutex
		started   int
		cut       int
		completed int
	)
	inFlight := make(chan struct{}, 100)
	release := make(chan struct{})
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		started++
		mu.Unlock()
		inFlight <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		mu.Lock()
		defer mu.Unlock()
		if r.Context().Err() != nil {
			cut++
			return
		}
		completed++
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"data":[{"id":"dlv_1","status":"succeeded"}]}`)
	}))
	defer api.Close()
	tr := newDeliveryTracker(client.New(api.URL, "kh_test"), "prj_1")
	for i := range 20 {
		tr.add("evt_" + strconv.Itoa(i))
	}
	ctx, cancel := context.WithCancel(context.Background())
	polled := make(chan struct{})
	go func() { tr.poll(ctx); close(polled) }()
	for range 8 {
		<-inFlight
	}
	cancel()
	time.Sleep(100 * time.Millisecond)
	close(release)
	select {
	case <-polled:
	case <-time.After(10 * time.Second):
		t.Fatal("poll did not return after its context ended")
	}
	api.Close() // waits for the handlers
	mu.Lock()
	defer mu.Unlock()
	if cut != 0 || completed != 8 || started != 8 {
		t.Errorf("started %d, completed %d, cut off %d requests; want 8, 8, 0", started, completed, cut)
	}
	c := tr.counts()
	if c.succeeded != 8 || c.open != 12 {
		t.Errorf("counts %+v; want 8 succeeded and 12 still open", c)
	}
}

func TestDemoRateNote(t *testing.T) {
	if n := demoRateNote(160, 8*time.Second, 20); n != "" {
		t.Errorf("rate met, yet a note: %s", n)
	}
	if n := demoRateNote(3, time.Second, 20); n != "" {
		t.Errorf("too short to tell, yet a note: %s", n)
	}
	n := demoRateNote(30, 8*time.Second, 20)
	for _, want := range []string{"30 events in 8.0 s is 3.8/s", "below --rate 20/s", "1067 ms a post"} {
		if !strings.Contains(n, want) {
			t.Errorf("note %q lacks %q", n, want)
		}
	}
}
