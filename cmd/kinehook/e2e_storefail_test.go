package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	nethttp "net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kinehook/kinehook/internal/pgtest"
)

// smallFilesystem mounts a tmpfs of size bytes for the test and returns its
// path. Mounting needs root: without it the test fails under CI and skips
// loudly elsewhere.
func smallFilesystem(t *testing.T, size int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "vol")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0700", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		msg := fmt.Sprintf("cannot mount a small tmpfs (needs root and mount): %v %s", err, strings.TrimSpace(string(out)))
		if os.Getenv("CI") != "" {
			t.Fatalf("%s; CI must run the full-disk test", msg)
		}
		t.Skipf("SKIPPING FULL-DISK TEST: %s", msg)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
	return dir
}

// fillDisk writes path until the file system is full.
func fillDisk(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, n := range []int{1 << 16, 1 << 12, 1 << 9, 1} {
		buf := make([]byte, n)
		for {
			if _, err := f.Write(buf); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("fill disk: %v", err)
				}
				break
			}
		}
	}
}

// logLines returns the JSON log lines of a serve process.
func logLines(t *testing.T, stderr string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(stderr))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			lines = append(lines, m)
		}
	}
	return lines
}

// countLogs counts the log lines at level whose message contains msg ("" = any).
func countLogs(lines []map[string]any, level, msg string) int {
	n := 0
	for _, l := range lines {
		if (level == "" || l["level"] == level) && strings.Contains(fmt.Sprint(l["msg"]), msg) {
			n++
		}
	}
	return n
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// getStatus answers the status, the error code and Retry-After of a GET.
func getStatus(url string) (int, string, string, error) {
	res, err := nethttp.Get(url)
	if err != nil {
		return 0, "", "", err
	}
	defer res.Body.Close()
	var body struct {
		Error struct{ Code string } `json:"error"`
	}
	raw, _ := io.ReadAll(res.Body)
	_ = json.Unmarshal(raw, &body)
	return res.StatusCode, body.Error.Code, res.Header.Get("Retry-After"), nil
}

// TestServeFullDisk runs `kinehook serve` on a small file system and fills
// it: event posts answer 503 storage_full with Retry-After (not 500),
// /readyz fails while writes fail, the log says so once (not per request),
// and when space returns everything recovers by itself and every event
// answered 202 is kept and delivered.
func TestServeFullDisk(t *testing.T) {
	vol := smallFilesystem(t, 16<<20)
	bin := buildKinehook(t)
	data := filepath.Join(vol, "data")
	sink := newE2ESink(t)
	const admin = "kh_admin_full_disk_test_key_0123456789"
	env := []string{"KINEHOOK_ADMIN_KEY=" + admin, "KINEHOOK_ALLOW_PRIVATE_NETWORKS=true", "KINEHOOK_RETRY_SCHEDULE=100ms,100ms,100ms"}
	p := startServe(t, bin, data, env, "--log-format", "json")

	var prj struct {
		ID     string `json:"id"`
		APIKey string `json:"api_key"`
	}
	p.mustCall("POST", "/v1/projects", admin, map[string]any{"name": "full disk"}, 201, &prj)
	p.mustCall("POST", "/v1/projects/"+prj.ID+"/endpoints", prj.APIKey,
		map[string]any{"url": sink.URL + "/hook", "event_types": []string{"*"}}, 201, nil)

	var mu sync.Mutex
	var acked []string
	codes := map[string]int{} // "503 storage_full" -> count
	var retryAfterMissing int
	post := func(i int) {
		// Bodies of a few KB, so that a full disk shows within a few posts.
		body := fmt.Sprintf(`{"event":"media.update.status","data":{"id":"7127f2d7-0e96-40d0-9a03-%012d","status":"error","message":%q}}`, i, strings.Repeat("x", 4000))
		req, _ := nethttp.NewRequest("POST", p.url+"/v1/projects/"+prj.ID+"/events", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+prj.APIKey)
		res, err := nethttp.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("post %d: %v", i, err)
			return
		}
		defer res.Body.Close()
		var out struct {
			ID    string                `json:"id"`
			Error struct{ Code string } `json:"error"`
		}
		raw, _ := io.ReadAll(res.Body)
		_ = json.Unmarshal(raw, &out)
		mu.Lock()
		defer mu.Unlock()
		if res.StatusCode == 202 {
			acked = append(acked, out.ID)
			return
		}
		codes[fmt.Sprintf("%d %s", res.StatusCode, out.Error.Code)]++
		if res.StatusCode == 503 && res.Header.Get("Retry-After") == "" {
			retryAfterMissing++
		}
	}
	for i := range 20 {
		post(i)
	}
	if len(acked) != 20 {
		t.Fatalf("before the disk filled: %d of 20 accepted (%v)", len(acked), codes)
	}

	filler := filepath.Join(vol, "filler")
	fillDisk(t, filler)
	// Post until a good number of posts have been refused; small writes
	// may still fit in space SQLite had already allocated.
	next := 20
	deadline := time.Now().Add(30 * time.Second)
	for codes["503 storage_full"] < 50 {
		if time.Now().After(deadline) {
			t.Fatalf("a full disk did not answer 503 storage_full: %v\nlog:\n%s", codes, lastLines(p.stderr.String(), 30))
		}
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func(i int) { defer wg.Done(); post(i) }(next)
			next++
		}
		wg.Wait()
	}
	for k := range codes {
		if k != "503 storage_full" {
			t.Errorf("while the disk was full some posts answered %q (%v)", k, codes)
		}
	}
	if retryAfterMissing > 0 {
		t.Errorf("%d 503 answers without Retry-After", retryAfterMissing)
	}
	if st, code, ra, err := getStatus(p.url + "/readyz"); err != nil || st != 503 || code != "storage_full" || ra == "" {
		t.Errorf("/readyz with a full disk: %d %q Retry-After %q %v, want 503 storage_full with Retry-After", st, code, ra, err)
	}
	// A moment more: the background loops (checkpoints, results) fail too.
	time.Sleep(1500 * time.Millisecond)
	if st, _, _, _ := getStatus(p.url + "/readyz"); st != 503 {
		t.Errorf("/readyz turned %d while the disk is still full", st)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitE2E(t, 15*time.Second, "/readyz to recover by itself", func() bool {
		st, _, _, _ := getStatus(p.url + "/readyz")
		return st == 200
	})
	for i := range 20 {
		post(next + i)
	}
	mu.Lock()
	ackedNow := append([]string(nil), acked...)
	mu.Unlock()
	waitE2E(t, 30*time.Second, "every acknowledged event delivered", func() bool { return sink.has(ackedNow) == 0 })

	lines := logLines(t, p.stderr.String())
	if n := countLogs(lines, "ERROR", ""); n != 1 {
		t.Errorf("%d ERROR lines for one full-disk episode of %d refused posts, want 1:\n%s", n, codes["503 storage_full"], lastLines(p.stderr.String(), 40))
	}
	if n := countLogs(lines, "ERROR", "store unavailable"); n != 1 {
		t.Errorf("%d 'store unavailable' lines, want 1", n)
	}
	var recovered []map[string]any
	for _, l := range lines {
		if strings.Contains(fmt.Sprint(l["msg"]), "store recovered") {
			recovered = append(recovered, l)
		}
	}
	if len(recovered) != 1 {
		t.Fatalf("%d 'store recovered' lines, want 1:\n%s", len(recovered), lastLines(p.stderr.String(), 40))
	}
	if n, _ := recovered[0]["failed_meanwhile"].(float64); int(n) < codes["503 storage_full"] {
		t.Errorf("recovery line counts %v failures, want at least the %d refused posts", recovered[0]["failed_meanwhile"], codes["503 storage_full"])
	}

	// Nothing acknowledged is lost, across a restart too.
	if err := p.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("serve exit: %v\n%s", err, lastLines(p.stderr.String(), 20))
	}
	p = startServe(t, bin, data, env, "--log-format", "json")
	for _, id := range ackedNow {
		p.mustCall("GET", "/v1/projects/"+prj.ID+"/events/"+id, prj.APIKey, nil, 200, nil)
	}
	t.Logf("%d events acknowledged, %d refused with 503 storage_full while the disk was full", len(ackedNow), codes["503 storage_full"])
}

// cutProxy is a loopback TCP proxy to PostgreSQL that a test can cut: every
// open connection drops and new ones are closed at once, as when the server
// restarts, without touching the server other tests share.
type cutProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	conns  map[net.Conn]struct{}
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.setCut(true); p.setCut(false) })
	return p
}

func (p *cutProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		cut := p.cut
		p.mu.Unlock()
		if cut {
			c.Close()
			continue
		}
		go p.pipe(c)
	}
}

func (p *cutProxy) pipe(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.cut {
		p.mu.Unlock()
		c.Close()
		up.Close()
		return
	}
	p.conns[c], p.conns[up] = struct{}{}, struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done
	c.Close()
	up.Close()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

// setCut cuts (true: drop every connection, refuse new ones) or restores.
func (p *cutProxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for c := range p.conns {
			c.Close()
		}
	}
}

// TestServePostgresOutage: PostgreSQL lost twice for 3 s under load (ingest
// and delivery) is two ERROR lines, "store unavailable", each followed by one
// "store recovered" with the count of what failed meanwhile; not an ERROR
// per failed request or loop turn. Posts meanwhile answer 503
// store_unavailable with Retry-After, /readyz fails, everything recovers by
// itself, and every event answered 202 is delivered.
func TestServePostgresOutage(t *testing.T) {
	dsn := pgtest.New(t)
	bin := buildKinehook(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newCutProxy(t, u.Host)
	u.Host = proxy.ln.Addr().String()
	sink := newE2ESink(t)
	const admin = "kh_admin_pg_outage_test_key_0123456789"
	env := []string{"KINEHOOK_ADMIN_KEY=" + admin, "KINEHOOK_ALLOW_PRIVATE_NETWORKS=true",
		"KINEHOOK_RETRY_SCHEDULE=100ms,100ms,100ms", "KINEHOOK_DATABASE=" + u.String(), "KINEHOOK_ENCRYPTION_KEY=" + testEncryptionKey}
	p := startServe(t, bin, t.TempDir(), env, "--log-format", "json")

	var prj struct {
		ID     string `json:"id"`
		APIKey string `json:"api_key"`
	}
	p.mustCall("POST", "/v1/projects", admin, map[string]any{"name": "pg outage"}, 201, &prj)
	p.mustCall("POST", "/v1/projects/"+prj.ID+"/endpoints", prj.APIKey,
		map[string]any{"url": sink.URL + "/hook", "event_types": []string{"*"}}, 201, nil)

	var mu sync.Mutex
	acked := map[string]bool{}
	codes := map[string]int{}
	var retryAfterMissing int
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				body := fmt.Sprintf(`{"event":"media.update.status","data":{"id":"7127f2d7-0e96-40d0-9a03-%06d%06d","status":"done"}}`, w, i)
				req, _ := nethttp.NewRequest("POST", p.url+"/v1/projects/"+prj.ID+"/events", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+prj.APIKey)
				res, err := nethttp.DefaultClient.Do(req)
				if err != nil {
					t.Errorf("post: %v", err)
					return
				}
				var out struct {
					ID    string                `json:"id"`
					Error struct{ Code string } `json:"error"`
				}
				raw, _ := io.ReadAll(res.Body)
				res.Body.Close()
				_ = json.Unmarshal(raw, &out)
				mu.Lock()
				if res.StatusCode == 202 {
					acked[out.ID] = true
				} else {
					codes[fmt.Sprintf("%d %s", res.StatusCode, out.Error.Code)]++
					if res.StatusCode == 503 && res.Header.Get("Retry-After") == "" {
						retryAfterMissing++
					}
				}
				mu.Unlock()
				if res.StatusCode != 202 {
					time.Sleep(20 * time.Millisecond) // a client backing off a little
				}
			}
		}()
	}

	for outage := range 2 {
		time.Sleep(time.Second)
		proxy.setCut(true)
		waitE2E(t, 5*time.Second, "/readyz to fail while PostgreSQL is away", func() bool {
			st, _, _, _ := getStatus(p.url + "/readyz")
			return st == 503
		})
		time.Sleep(3 * time.Second)
		proxy.setCut(false)
		waitE2E(t, 15*time.Second, fmt.Sprintf("/readyz to recover after outage %d", outage+1), func() bool {
			st, _, _, _ := getStatus(p.url + "/readyz")
			return st == 200
		})
	}
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()

	mu.Lock()
	ids := make([]string, 0, len(acked))
	for id := range acked {
		ids = append(ids, id)
	}
	mu.Unlock()
	waitE2E(t, 60*time.Second, "every acknowledged event delivered", func() bool { return sink.has(ids) == 0 })

	log := p.stderr.String()
	lines := logLines(t, log)
	if n := countLogs(lines, "ERROR", ""); n != 2 {
		t.Errorf("%d ERROR lines for two outages, want 2 (one each):\n%s", n, lastLines(log, 40))
	}
	if n := countLogs(lines, "ERROR", "store unavailable"); n != 2 {
		t.Errorf("%d 'store unavailable' ERROR lines, want 2", n)
	}
	var failed []int
	for _, l := range lines {
		if strings.Contains(fmt.Sprint(l["msg"]), "store recovered") {
			n, _ := l["failed_meanwhile"].(float64)
			failed = append(failed, int(n))
		}
	}
	if len(failed) != 2 || failed[0] < 1 || failed[1] < 1 {
		t.Errorf("'store recovered' lines with failure counts %v, want two with counts", failed)
	}
	if warns := countLogs(lines, "WARN", ""); warns > 20 {
		t.Errorf("%d WARN lines for two short outages: a line per failure?\n%s", warns, lastLines(log, 40))
	}
	for k := range codes {
		if k != "503 store_unavailable" {
			t.Errorf("posts during the outages answered %q (%v), want 503 store_unavailable", k, codes)
		}
	}
	if retryAfterMissing > 0 {
		t.Errorf("%d 503 answers without Retry-After", retryAfterMissing)
	}
	t.Logf("%d events acknowledged and delivered; refused meanwhile: %v; failures counted per outage: %v", len(ids), codes, failed)
}
