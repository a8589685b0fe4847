package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/kinehook/kinehook/internal/pgtest"
	"github.com/kinehook/kinehook/internal/secretbox"
	"io"
	"net"
	nethttp "net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
)

// privatePostgres runs a PostgreSQL cluster of its own (initdb in a temporary
// directory, a free port on 127.0.0.1), so a test may restart it without
// disturbing anything else. It returns the cluster's URL and a restart
// function. Without the PostgreSQL binaries it fails under CI and skips
// loudly elsewhere.
func privatePostgres(t *testing.T) (dsn string, restart func()) {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	if len(bins) == 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("PostgreSQL server binaries (pg_ctl, initdb) not found; CI must run the PostgreSQL tests")
		}
		t.Skip("SKIPPING POSTGRESQL END-TO-END TEST: PostgreSQL server binaries (pg_ctl, initdb) not found")
	}
	binDir := filepath.Dir(bins[len(bins)-1])
	dir, err := os.MkdirTemp("", "kinehook-pg-")
	if err != nil {
		t.Fatal(err)
	}
	// As root, the cluster runs as the postgres user (PostgreSQL refuses root).
	asUser := func(name string, args ...string) *exec.Cmd {
		if os.Geteuid() == 0 {
			return exec.Command("runuser", append([]string{"-u", "postgres", "--", filepath.Join(binDir, name)}, args...)...)
		}
		return exec.Command(filepath.Join(binDir, name), args...)
	}
	if os.Geteuid() == 0 {
		if out, err := exec.Command("chown", "postgres", dir).CombinedOutput(); err != nil {
			t.Fatalf("chown %s: %v %s", dir, err, out)
		}
	}
	data := filepath.Join(dir, "data")
	if out, err := asUser("initdb", "-D", data, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	port := freePort(t)
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c max_connections=100", port, dir)
	logf := filepath.Join(dir, "log")
	start := func() {
		if out, err := asUser("pg_ctl", "-D", data, "-o", opts, "-l", logf, "-w", "-t", "30", "start").CombinedOutput(); err != nil {
			t.Fatalf("pg_ctl start: %v\n%s", err, out)
		}
	}
	start()
	t.Cleanup(func() {
		_ = asUser("pg_ctl", "-D", data, "-m", "immediate", "-w", "stop").Run()
		_ = os.RemoveAll(dir)
	})
	restart = func() {
		if out, err := asUser("pg_ctl", "-D", data, "-m", "fast", "-w", "-t", "30", "stop").CombinedOutput(); err != nil {
			t.Fatalf("pg_ctl stop: %v\n%s", err, out)
		}
		time.Sleep(500 * time.Millisecond) // down for a moment, as in a real restart
		start()
	}
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port), restart
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// orderSink records every delivery it receives, in arrival order, with the
// resource it is about.
type orderSink struct {
	*httptest.Server
	mu       sync.Mutex
	arrivals []string            // event ids in arrival order
	resource map[string]string   // event id -> resource
	first    map[string]int      // event id -> index of its first arrival
	perRes   map[string][]string // resource -> event ids in first-arrival order
}

func newOrderSink(t *testing.T) *orderSink {
	s := &orderSink{resource: map[string]string{}, first: map[string]int{}, perRes: map[string][]string{}}
	s.Server = httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		b, _ := io.ReadAll(r.Body)
		var body struct {
			Data struct {
				ID string `json:"id"`
			} `json:"data"`
		}
		_ = json.Unmarshal(b, &body)
		id := r.Header.Get("webhook-id")
		time.Sleep(2 * time.Millisecond) // a receiver that takes a moment: attempts are in flight at a kill
		s.mu.Lock()
		if _, seen := s.first[id]; !seen {
			s.first[id] = len(s.arrivals)
			s.perRes[body.Data.ID] = append(s.perRes[body.Data.ID], id)
		}
		s.arrivals = append(s.arrivals, id)
		s.resource[id] = body.Data.ID
		s.mu.Unlock()
		w.WriteHeader(204)
	}))
	t.Cleanup(s.Close)
	return s
}

// postEvent posts with an Idempotency-Key, so a retry after a failure (a
// killed instance, PostgreSQL restarting) never makes a second event.
func postEvent(url, projectID, key, idemKey, body string) (int, string, error) {
	req, err := nethttp.NewRequest("POST", url+"/v1/projects/"+projectID+"/events", strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", idemKey)
	res, err := nethttp.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	var ev struct{ ID string }
	raw, _ := io.ReadAll(res.Body)
	_ = json.Unmarshal(raw, &ev)
	return res.StatusCode, ev.ID, nil
}

// TestPostgresInstancesShareWork is the acceptance test: three
// `kinehook serve` processes on one real PostgreSQL; under load one is
// SIGKILLed and later restarted, and PostgreSQL itself restarts. Every event
// answered 202 is delivered, per-resource order holds, and duplicates are
// counted.
func TestPostgresInstancesShareWork(t *testing.T) {
	bin := buildKinehook(t)
	dsn, restartPG := privatePostgres(t)
	sink := newOrderSink(t)
	const admin = "kh_admin_pg_e2e_key"
	env := []string{"KINEHOOK_ADMIN_KEY=" + admin, "KINEHOOK_API_RATE_LIMIT=0", "KINEHOOK_DATABASE=" + dsn, "KINEHOOK_ENCRYPTION_KEY=" + testEncryptionKey}
	args := []string{"--allow-private-networks", "--log-level", "debug", "--retry-schedule", strings.TrimSuffix(strings.Repeat("200ms,", 30), ",")}
	start := func(i int) *serveProc {
		return startServe(t, bin, filepath.Join(t.TempDir(), "data"+strconv.Itoa(i)), env, args...)
	}
	procs := []*serveProc{start(0), start(1), start(2)}

	// Things made through one instance work through the others at once.
	var prj struct {
		ID     string `json:"id"`
		APIKey string `json:"api_key"`
	}
	procs[0].mustCall("POST", "/v1/projects", admin, map[string]any{"name": "shared"}, 201, &prj)
	var ep struct{ ID, Secret string }
	procs[1].mustCall("POST", "/v1/projects/"+prj.ID+"/endpoints", prj.APIKey, map[string]any{"url": sink.URL + "/hook"}, 201, &ep)
	var sec struct{ Secret string }
	procs[2].mustCall("GET", "/v1/projects/"+prj.ID+"/endpoints/"+ep.ID+"/secret", prj.APIKey, nil, 200, &sec)
	if sec.Secret != ep.Secret {
		t.Fatalf("the secret read through another instance differs")
	}

	// Load: each worker sends its resources' events in sequence, each to the
	// next live instance (a load balancer), retrying elsewhere on failure.
	var (
		live      sync.Mutex
		instances = []*serveProc{procs[0], procs[1], procs[2]}
		accMu     sync.Mutex
		accepted  = map[string][]string{} // resource -> event ids in acceptance order
		via       = map[string]string{}   // event id -> the instance that accepted it, and when
		total     int
		failures  int
	)
	pick := func(n int) *serveProc {
		live.Lock()
		defer live.Unlock()
		return instances[n%len(instances)]
	}
	ctx, stopLoad := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	statuses := []string{"uploading", "pre-processing", "processing", "done", "error"}
	for w := range 6 {
		wg.Go(func() {
			n := w
			for i := 0; ctx.Err() == nil; i++ {
				res := fmt.Sprintf("video-%d-%d", w, i%4)
				body := fmt.Sprintf(`{"event":"media.update.status","data":{"id":%q,"status":%q}}`, res, statuses[i%len(statuses)])
				idem := fmt.Sprintf("w%d-e%d", w, i)
				deadline := time.Now().Add(30 * time.Second)
				for {
					n++
					inst := pick(n)
					st, id, err := postEvent(inst.url, prj.ID, prj.APIKey, idem, body)
					if err == nil && st == 202 {
						accMu.Lock()
						accepted[res] = append(accepted[res], id)
						via[id] = fmt.Sprintf("%s at %s", inst.url, time.Now().Format("15:04:05.000"))
						total++
						accMu.Unlock()
						break
					}
					accMu.Lock()
					failures++
					accMu.Unlock()
					if time.Now().After(deadline) {
						t.Errorf("event %s not accepted for 30 s (last: %d %v)", idem, st, err)
						return
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
	count := func() int {
		accMu.Lock()
		defer accMu.Unlock()
		return total
	}

	time.Sleep(1500 * time.Millisecond)
	// SIGKILL instance 2 mid-load.
	live.Lock()
	instances = instances[:2]
	live.Unlock()
	if err := procs[2].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var ee *exec.ExitError
	if err := <-procs[2].done; !errors.As(err, &ee) {
		t.Fatalf("SIGKILL: %v", err)
	}
	t.Logf("%s: %d events accepted when instance 2 (%s) was killed", time.Now().Format("15:04:05.000"), count(), procs[2].url)
	time.Sleep(1500 * time.Millisecond)

	// PostgreSQL restarts mid-load: instances ride through it.
	before := count()
	restartPG()
	t.Logf("%s: PostgreSQL restarted; %d events accepted before", time.Now().Format("15:04:05.000"), before)
	time.Sleep(1500 * time.Millisecond)

	// The killed instance comes back and takes its share again.
	p2 := start(3)
	t.Logf("%s: instance 2 restarted as %s", time.Now().Format("15:04:05.000"), p2.url)
	live.Lock()
	instances = append(instances, p2)
	live.Unlock()
	time.Sleep(1500 * time.Millisecond)
	stopLoad()
	wg.Wait()

	accMu.Lock()
	all := []string{}
	for _, ids := range accepted {
		all = append(all, ids...)
	}
	accMu.Unlock()
	t.Logf("%d events accepted in all (%d failed requests retried)", len(all), failures)
	if len(all) < 100 {
		t.Fatalf("only %d events accepted under load", len(all))
	}
	missing := func() int {
		sink.mu.Lock()
		defer sink.mu.Unlock()
		n := 0
		for _, id := range all {
			if _, ok := sink.first[id]; !ok {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(60 * time.Second)
	for missing() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d accepted events never delivered\ninstance 0 stderr (tail): %s", missing(), len(all), tail(procs[0].stderr.String(), 3000))
		}
		time.Sleep(50 * time.Millisecond)
	}

	sink.mu.Lock()
	defer sink.mu.Unlock()
	if os.Getenv("KINEHOOK_E2E_DEBUG") != "" {
		for i, p := range []*serveProc{procs[0], procs[1], procs[2], p2} {
			for _, line := range strings.Split(p.stderr.String(), "\n") {
				if strings.Contains(line, "coordinator") || strings.Contains(line, "WARN") || strings.Contains(line, "ERROR") {
					t.Logf("instance %d %s: %s", i, p.url, line)
				}
			}
		}
		for res := range accepted {
			t.Logf("resource %s is in partition %d", res, kinehook.PartitionOf(ep.ID, res))
		}
	}
	// Per resource, first arrivals follow acceptance order.
	for res, ids := range accepted {
		for k := 1; k < len(ids); k++ {
			if sink.first[ids[k]] < sink.first[ids[k-1]] {
				t.Errorf("%s: event %d (%s, accepted by %s) arrived before event %d (%s, accepted by %s)",
					res, k, ids[k], via[ids[k]], k-1, ids[k-1], via[ids[k-1]])
			}
		}
	}
	dups := len(sink.arrivals) - len(sink.first)
	t.Logf("delivered %d events with %d duplicate deliveries (attempts in flight at the SIGKILL or unrecorded at the PostgreSQL restart)", len(sink.first), dups)
	// Only attempts in flight can repeat: at most the per-endpoint in-flight
	// bound per disruption, far from everything.
	if dups > 3*64 {
		t.Errorf("%d duplicate deliveries: more than attempts in flight can explain", dups)
	}
	for _, p := range []*serveProc{procs[0], procs[1], p2} {
		if err := p.stop(syscall.SIGTERM); err != nil {
			t.Errorf("SIGTERM exit: %v\nstderr: %s", err, tail(p.stderr.String(), 2000))
		}
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// BenchmarkPostgresServe drives the real HTTP API of one, then two, `kinehook
// serve` processes on one PostgreSQL database into a local sink, and reports
// deliveries/s under full load (one endpoint, 64 concurrent posters, 20,000
// events) and the p50/p99 latency from POST to the sink at a steady 200
// events/s. The workload is fixed; run it once:
//
//	go test ./cmd/kinehook -run XXX -bench PostgresServe -benchtime 1x
func BenchmarkPostgresServe(b *testing.B) {
	for _, n := range []int{1, 2} {
		b.Run(fmt.Sprintf("instances=%d", n), func(b *testing.B) { benchServe(b, n) })
	}
}

// benchProc is a `kinehook serve` started by a benchmark.
type benchProc struct {
	cmd  *exec.Cmd
	url  string
	done chan error
}

func startBenchServe(b *testing.B, bin string, env []string) *benchProc {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	cmd := exec.Command(bin, "serve", "--addr", addr, "--data", b.TempDir(), "--allow-private-networks")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KINEHOOK_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	p := &benchProc{cmd: cmd, url: "http://" + addr, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	b.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
		}
	})
	for deadline := time.Now().Add(20 * time.Second); ; {
		if res, err := nethttp.Get(p.url + "/readyz"); err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return p
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("serve did not become ready: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func benchServe(b *testing.B, n int) {
	dsn := pgtest.New(b)
	if testing.Short() {
		b.Skip("builds the binary")
	}
	bin := filepath.Join(b.TempDir(), "kinehook")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	var (
		mu      sync.Mutex
		got     int
		sentAt  = map[string]time.Time{}
		latency []time.Duration
	)
	sink := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		raw, _ := io.ReadAll(r.Body)
		now := time.Now()
		var body struct {
			Data struct {
				ID string `json:"id"`
			} `json:"data"`
		}
		_ = json.Unmarshal(raw, &body)
		mu.Lock()
		got++
		if t0, ok := sentAt[body.Data.ID]; ok {
			latency = append(latency, now.Sub(t0))
			delete(sentAt, body.Data.ID)
		}
		mu.Unlock()
		w.WriteHeader(204)
	}))
	defer sink.Close()
	const admin = "kh_admin_bench_key"
	env := []string{"KINEHOOK_ADMIN_KEY=" + admin, "KINEHOOK_API_RATE_LIMIT=0", "KINEHOOK_DATABASE=" + dsn, "KINEHOOK_ENCRYPTION_KEY=" + testEncryptionKey}
	var procs []*benchProc
	for range n {
		procs = append(procs, startBenchServe(b, bin, env))
	}
	client := &nethttp.Client{Transport: &nethttp.Transport{MaxIdleConnsPerHost: 128}}
	call := func(url, key, body string, out any) (int, error) {
		req, _ := nethttp.NewRequest("POST", url, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		res, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		defer res.Body.Close()
		if out != nil {
			_ = json.NewDecoder(res.Body).Decode(out)
		} else {
			_, _ = io.Copy(io.Discard, res.Body)
		}
		return res.StatusCode, nil
	}
	var prj struct {
		ID     string `json:"id"`
		APIKey string `json:"api_key"`
	}
	if st, err := call(procs[0].url+"/v1/projects", admin, `{"name":"bench"}`, &prj); err != nil || st != 201 {
		b.Fatalf("create project: %d %v", st, err)
	}
	if st, err := call(procs[0].url+"/v1/projects/"+prj.ID+"/endpoints", prj.APIKey, `{"url":"`+sink.URL+`/hook"}`, nil); err != nil || st != 201 {
		b.Fatalf("create endpoint: %d %v", st, err)
	}
	time.Sleep(3 * time.Second) // let the instances settle their partitions
	post := func(i int, resource string) error {
		body := fmt.Sprintf(`{"event":"media.update.status","data":{"id":%q,"status":"done"}}`, resource)
		st, err := call(procs[i%n].url+"/v1/projects/"+prj.ID+"/events", prj.APIKey, body, nil)
		if err == nil && st != 202 {
			err = fmt.Errorf("status %d", st)
		}
		return err
	}

	// Throughput.
	const total = 20000
	b.ResetTimer()
	start := time.Now()
	var (
		wg   sync.WaitGroup
		next sync.Mutex
		k    int
	)
	for range 64 {
		wg.Go(func() {
			for {
				next.Lock()
				i := k
				k++
				next.Unlock()
				if i >= total {
					return
				}
				if err := post(i, fmt.Sprintf("video-%d", i%500)); err != nil {
					b.Errorf("post: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	accepted := time.Since(start)
	for {
		mu.Lock()
		done := got >= total
		mu.Unlock()
		if done {
			break
		}
		if time.Since(start) > 5*time.Minute {
			b.Fatalf("only %d of %d delivered", got, total)
		}
		time.Sleep(5 * time.Millisecond)
	}
	el := time.Since(start)
	b.ReportMetric(float64(total)/el.Seconds(), "deliveries/s")
	b.ReportMetric(float64(total)/accepted.Seconds(), "accepted/s")

	// Latency at a steady 200 events/s for 5 s.
	const samples = 1000
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var lwg sync.WaitGroup
	for i := range samples {
		<-tick.C
		res := fmt.Sprintf("lat-%d", i)
		mu.Lock()
		sentAt[res] = time.Now()
		mu.Unlock()
		lwg.Go(func() {
			if err := post(i, res); err != nil {
				b.Errorf("post: %v", err)
			}
		})
	}
	lwg.Wait()
	for deadline := time.Now().Add(30 * time.Second); ; {
		mu.Lock()
		have := len(latency)
		mu.Unlock()
		if have >= samples || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.StopTimer()
	mu.Lock()
	lat := append([]time.Duration(nil), latency...)
	mu.Unlock()
	if len(lat) < samples {
		b.Errorf("%d of %d latency samples delivered", len(lat), samples)
	}
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99_ms")
}

// testEncryptionKey seals the endpoint secrets of the PostgreSQL tests' servers.
var testEncryptionKey = func() string {
	k, err := secretbox.GenerateKey()
	if err != nil {
		panic(err)
	}
	return k
}()
