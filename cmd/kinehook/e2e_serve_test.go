package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	nethttp "net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
)

// buildKinehook builds the binary into a temporary directory.
func buildKinehook(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "kinehook")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// freeAddr returns a loopback address with a port free at the time of the call.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// syncBuffer is a bytes.Buffer safe for a writer process and a reading test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// serveProc is a running `kinehook serve`.
type serveProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	url    string
	stdout *syncBuffer
	stderr *syncBuffer
	done   chan error
}

// startServe runs `kinehook serve` on a free port with the given extra
// environment and arguments, and waits until /healthz answers.
func startServe(t *testing.T, bin, data string, env []string, args ...string) *serveProc {
	t.Helper()
	addr := freeAddr(t)
	p := startServeNoWait(t, bin, data, addr, env, args...)
	deadline := time.Now().Add(15 * time.Second)
	for {
		res, err := nethttp.Get(p.url + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return p
			}
		}
		select {
		case err := <-p.done:
			t.Fatalf("serve exited at start: %v\nstdout: %s\nstderr: %s", err, p.stdout, p.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not answer /healthz\nstderr: %s", p.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startServeNoWait starts `kinehook serve` on addr without waiting for it.
func startServeNoWait(t *testing.T, bin, data, addr string, env []string, args ...string) *serveProc {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve", "--addr", addr, "--data", data}, args...)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KINEHOOK_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	p := &serveProc{t: t, cmd: cmd, url: "http://" + addr, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start serve: %v", err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// stop sends sig and returns the exit error (nil for exit 0).
func (p *serveProc) stop(sig os.Signal) error {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal: %v", err)
	}
	select {
	case err := <-p.done:
		return err
	case <-time.After(20 * time.Second):
		p.t.Fatalf("serve did not exit after %v\nstderr: %s", sig, p.stderr)
		return nil
	}
}

// call sends a JSON request with a Bearer key and decodes the answer into out.
func (p *serveProc) call(method, path, key string, body any, out any) (int, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, err := nethttp.NewRequest(method, p.url+path, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	res, err := nethttp.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return res.StatusCode, fmt.Errorf("decode %s: %w", raw, err)
		}
	}
	return res.StatusCode, nil
}

// mustCall is call that fails the test on a transport error or another status.
func (p *serveProc) mustCall(method, path, key string, body any, want int, out any) {
	p.t.Helper()
	st, err := p.call(method, path, key, body, out)
	if err != nil || st != want {
		p.t.Fatalf("%s %s: status %d err %v, want %d", method, path, st, err, want)
	}
}

// e2eSink records deliveries by webhook-id.
type e2eSink struct {
	*httptest.Server
	mu       sync.Mutex
	fail     bool     // answer 500 to everything
	order    []string // webhook-ids in arrival order
	arrivals []string // "path webhook-id" in arrival order
	reqs     map[string]*e2eReq
}

type e2eReq struct {
	header nethttp.Header
	body   []byte
}

func newE2ESink(t *testing.T) *e2eSink {
	s := &e2eSink{reqs: map[string]*e2eReq{}}
	s.Server = httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		b, _ := io.ReadAll(r.Body)
		id := r.Header.Get("webhook-id")
		s.mu.Lock()
		if s.fail {
			s.mu.Unlock()
			w.WriteHeader(500)
			return
		}
		s.order = append(s.order, id)
		s.arrivals = append(s.arrivals, r.URL.Path+" "+id)
		if _, seen := s.reqs[id]; !seen {
			s.reqs[id] = &e2eReq{header: r.Header.Clone(), body: b}
		}
		s.mu.Unlock()
		w.WriteHeader(204)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *e2eSink) has(ids []string) (missing int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		if _, ok := s.reqs[id]; !ok {
			missing++
		}
	}
	return missing
}

func waitE2E(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var adminKeyLine = regexp.MustCompile(`generated admin key .*: (kh_admin_[A-Za-z0-9_-]+)`)

// TestServeEndToEnd runs the binary as a new user would: generated admin
// key, project, endpoint, signed ordered deliveries, SIGTERM, restart.
func TestServeEndToEnd(t *testing.T) {
	bin := buildKinehook(t)
	data := filepath.Join(t.TempDir(), "data")
	sink := newE2ESink(t)
	env := []string{"KINEHOOK_ALLOW_PRIVATE_NETWORKS=true", "KINEHOOK_RETRY_SCHEDULE=100ms,100ms"}
	p := startServe(t, bin, data, env)

	m := adminKeyLine.FindStringSubmatch(p.stdout.String())
	if m == nil {
		t.Fatalf("no generated admin key on stdout: %q", p.stdout)
	}
	admin := m[1]
	var prj struct {
		ID     string `json:"id"`
		APIKey string `json:"api_key"`
	}
	p.mustCall("POST", "/v1/projects", admin, map[string]any{"name": "e2e"}, 201, &prj)
	var ep struct{ ID, Secret string }
	p.mustCall("POST", "/v1/projects/"+prj.ID+"/endpoints", prj.APIKey, map[string]any{"url": sink.URL + "/hook", "headers": map[string]string{"X-From": "e2e"}}, 201, &ep)

	statuses := []string{"uploading", "pre-processing", "processing", "done"}
	var ids []string
	bodies := map[string]string{}
	for i := range 20 {
		body := fmt.Sprintf(`{"event":"media.update.status","data":{"id":"video-%d","status":"%s"}}`, i%5, statuses[i/5])
		var ev struct{ ID string }
		p.mustCall("POST", "/v1/projects/"+prj.ID+"/events", prj.APIKey, body, 202, &ev)
		ids = append(ids, ev.ID)
		bodies[ev.ID] = body
	}
	waitE2E(t, 15*time.Second, "20 deliveries", func() bool { return sink.has(ids) == 0 })

	verifier, err := kinehook.NewVerifier([]string{ep.Secret})
	if err != nil {
		t.Fatal(err)
	}
	sink.mu.Lock()
	for _, id := range ids {
		r := sink.reqs[id]
		if string(r.body) != bodies[id] {
			t.Errorf("%s: body %s, want %s", id, r.body, bodies[id])
		}
		if err := verifier.Verify(r.header, r.body, time.Now()); err != nil {
			t.Errorf("%s: signature: %v", id, err)
		}
		if r.header.Get("X-From") != "e2e" || !strings.Contains(r.header.Get("User-Agent"), "kinehook") {
			t.Errorf("%s: headers %v", id, r.header)
		}
	}
	// Per video, the statuses arrive in the order they were accepted.
	pos := map[string]int{}
	for i, id := range sink.order {
		if _, ok := pos[id]; !ok {
			pos[id] = i
		}
	}
	sink.mu.Unlock()
	for i := 5; i < len(ids); i++ {
		if pos[ids[i]] < pos[ids[i-5]] {
			t.Errorf("video-%d: %s arrived before the earlier %s", i%5, ids[i], ids[i-5])
		}
	}

	// Oversized headers and URLs get the API's JSON error, not net/http's
	// plain text, well past the API's own limits.
	for _, tc := range []struct {
		name, path, header string
		status             int
	}{
		{"100 KB header", "/healthz", strings.Repeat("a", 100_000), 431},
		{"100 KB URL", "/v1/projects?x=" + strings.Repeat("a", 100_000), "", 414},
	} {
		req, _ := nethttp.NewRequest("GET", p.url+tc.path, nil)
		req.Header.Set("Authorization", "Bearer "+admin)
		if tc.header != "" {
			req.Header.Set("X-Big", tc.header)
		}
		res, err := nethttp.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != tc.status || !strings.Contains(res.Header.Get("Content-Type"), "application/json") || !strings.Contains(string(b), `"error"`) {
			t.Errorf("%s: %d %s %.200s, want a JSON %d", tc.name, res.StatusCode, res.Header.Get("Content-Type"), b, tc.status)
		}
	}

	if err := p.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM exit: %v\nstderr: %s", err, p.stderr)
	}

	// A restart without KINEHOOK_ADMIN_KEY keeps the stored key and prints none.
	p2 := startServe(t, bin, data, env)
	if strings.Contains(p2.stdout.String(), "kh_admin_") {
		t.Errorf("restart printed a new admin key: %q", p2.stdout)
	}
	var list struct{ Data []map[string]any }
	p2.mustCall("GET", "/v1/projects", admin, nil, 200, &list)
	if len(list.Data) != 1 {
		t.Errorf("projects after restart: %v", list.Data)
	}
	var evs struct{ Data []map[string]any }
	p2.mustCall("GET", "/v1/projects/"+prj.ID+"/events?limit=100", prj.APIKey, nil, 200, &evs)
	if len(evs.Data) != 20 {
		t.Errorf("%d events after restart, want 20", len(evs.Data))
	}
	if err := p2.stop(syscall.SIGINT); err != nil {
		t.Fatalf("SIGINT exit: %v", err)
	}
}

// TestServeSIGKILLLosesNothing kills the server mid-load and restarts it on
// the same data: every event answered 202 is delivered at least once. The
// receiver fails until the restart, so at the kill every delivery is
// pending, in flight or waiting for a retry.
func TestServeSIGKILLLosesNothing(t *testing.T) {
	bin := buildKinehook(t)
	data := filepath.Join(t.TempDir(), "data")
	sink := newE2ESink(t)
	const admin = "kh_admin_e2e_fixed_key"
	env := []string{"KINEHOOK_ADMIN_KEY=" + admin, "KINEHOOK_API_RATE_LIMIT=0"}
	args := []string{"--allow-private-networks", "--retry-schedule", "200ms,500ms,500ms,500ms,500ms,500ms,500ms,500ms"}
	p := startServe(t, bin, data, env, args...)
	if strings.Contains(p.stdout.String(), "kh_admin_") {
		t.Errorf("an admin key was printed although KINEHOOK_ADMIN_KEY is set")
	}
	var prj struct {
		ID     string `json:"id"`
		APIKey string `json:"api_key"`
	}
	p.mustCall("POST", "/v1/projects", admin, map[string]any{"name": "kill"}, 201, &prj)
	p.mustCall("POST", "/v1/projects/"+prj.ID+"/endpoints", prj.APIKey, map[string]any{"url": sink.URL + "/a"}, 201, nil)
	p.mustCall("POST", "/v1/projects/"+prj.ID+"/endpoints", prj.APIKey, map[string]any{"url": sink.URL + "/b", "event_types": []string{"live.*"}}, 201, nil)

	sink.mu.Lock()
	sink.fail = true
	sink.mu.Unlock()
	var (
		mu       sync.Mutex
		accepted []string
		resource = map[string]string{} // event id -> resource key
		wg       sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(context.Background())
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				res := fmt.Sprintf("v-%d-%d", w, i%7)
				body := `{"event":"media.update.status","data":{"id":"` + res + `","status":"done"}}`
				if i%3 == 0 {
					res = fmt.Sprintf("l-%d-%d", w, i%5)
					body = `{"event":"live.connected","data":{"event_id":"` + res + `"}}`
				}
				var ev struct{ ID string }
				st, err := p.call("POST", "/v1/projects/"+prj.ID+"/events", prj.APIKey, body, &ev)
				if err != nil {
					return // the server is gone
				}
				if st == 202 {
					mu.Lock()
					accepted = append(accepted, ev.ID)
					resource[ev.ID] = res
					mu.Unlock()
				}
			}
		}()
	}
	// Kill mid-load: once enough events are in (however slow the machine), and
	// a little later so that requests are in flight at the kill.
	waitE2E(t, 20*time.Second, "100 accepted events", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(accepted) >= 100
	})
	time.Sleep(50 * time.Millisecond)
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := <-p.done
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("SIGKILL: %v", err)
	}
	cancel()
	wg.Wait()
	mu.Lock()
	ids := append([]string(nil), accepted...)
	mu.Unlock()
	if len(ids) < 100 {
		t.Fatalf("only %d events accepted before the kill\nstderr: %s", len(ids), p.stderr)
	}
	t.Logf("%d events accepted before SIGKILL", len(ids))

	sink.mu.Lock()
	sink.fail = false
	sink.mu.Unlock()
	p2 := startServe(t, bin, data, env, args...)
	waitE2E(t, 20*time.Second, "every accepted event delivered after restart", func() bool { return sink.has(ids) == 0 })

	// Ordering survives the crash: per endpoint and resource, the first
	// successful delivery of each event comes in acceptance order (each
	// worker posts its resources' events one after another).
	sink.mu.Lock()
	first := map[string]int{}
	for i, a := range sink.arrivals {
		if _, ok := first[a]; !ok {
			first[a] = i
		}
	}
	sink.mu.Unlock()
	for _, path := range []string{"/a", "/b"} {
		last := map[string]string{} // resource -> previous event id
		for _, id := range ids {
			pos, ok := first[path+" "+id]
			if !ok {
				continue // /b receives live events only
			}
			res := resource[id]
			if prev, ok := last[res]; ok && first[path+" "+prev] > pos {
				t.Errorf("%s %s: %s delivered before the earlier %s", path, res, id, prev)
			}
			last[res] = id
		}
	}
	if err := p2.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM exit: %v\nstderr: %s", err, p2.stderr)
	}
}
