package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	nethttp "net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kinehook/kinehook/internal/pgtest"
)

// pgInstance is one in-process `kinehook serve` on a shared PostgreSQL
// database.
type pgInstance struct {
	url  string
	done chan error
}

// startPGInstances runs n serve instances on one fresh PostgreSQL database
// until the test ends.
func startPGInstances(t *testing.T, n int, admin string) []*pgInstance {
	t.Helper()
	dsn := pgtest.New(t)
	t.Setenv("KINEHOOK_ENCRYPTION_KEY", testEncryptionKey)
	ctx, cancel := context.WithCancel(context.Background())
	var out []*pgInstance
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		o := &serveOptions{addr: ln.Addr().String(), data: t.TempDir(), database: dsn, allowPrivate: true, retrySchedule: "100ms",
			requestTimeout: 2 * time.Second, logFormat: "text", logLevel: "warn", shutdownTimeout: 5 * time.Second,
			retentionEvery: time.Hour, listener: ln, adminKey: admin}
		inst := &pgInstance{url: "http://" + ln.Addr().String(), done: make(chan error, 1)}
		go func() { inst.done <- runServe(ctx, o, io.Discard, io.Discard) }()
		out = append(out, inst)
	}
	t.Cleanup(func() {
		cancel()
		for _, inst := range out {
			if err := <-inst.done; err != nil {
				t.Errorf("serve: %v", err)
			}
		}
	})
	for _, inst := range out {
		deadline := time.Now().Add(20 * time.Second)
		for {
			if st, _ := inst.call(t, "GET", "/readyz", "", nil, nil); st == 200 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("instance %s not ready", inst.url)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return out
}

// call sends a request and decodes a JSON answer into out (when not nil).
func (p *pgInstance) call(t *testing.T, method, path, key string, body, out any) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		if s, ok := body.(string); ok {
			b = []byte(s)
		}
		rd = bytes.NewReader(b)
	}
	req, err := nethttp.NewRequest(method, p.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	res, err := nethttp.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if out != nil && res.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	return res.StatusCode, string(b)
}

func (p *pgInstance) must(t *testing.T, method, path, key string, body any, status int, out any) {
	t.Helper()
	if st, b := p.call(t, method, path, key, body, out); st != status {
		t.Fatalf("%s %s via %s: %d %s, want %d", method, path, p.url, st, b, status)
	}
}

// TestPostgresKeyRevokedEverywhere: a key revoked through one instance is
// refused (401) by another, which had it cached, within a second.
func TestPostgresKeyRevokedEverywhere(t *testing.T) {
	const admin = "kh_admin_keys_pg_test"
	inst := startPGInstances(t, 2, admin)
	a, b := inst[0], inst[1]
	var prj struct {
		ID     string `json:"id"`
		APIKey string `json:"api_key"`
	}
	a.must(t, "POST", "/v1/projects", admin, map[string]any{"name": "shared"}, 201, &prj)
	for round := range 3 {
		var k struct{ ID, Key string }
		a.must(t, "POST", "/v1/projects/"+prj.ID+"/keys", prj.APIKey, map[string]any{"name": fmt.Sprint("ci-", round), "scope": "read"}, 201, &k)
		// B knows (and caches) the key.
		for range 5 {
			b.must(t, "GET", "/v1/projects/"+prj.ID, k.Key, nil, 200, nil)
		}
		a.must(t, "DELETE", "/v1/projects/"+prj.ID+"/keys/"+k.ID, prj.APIKey, nil, 204, nil)
		revoked := time.Now()
		a.must(t, "GET", "/v1/projects/"+prj.ID, k.Key, nil, 401, nil)
		for {
			st, body := b.call(t, "GET", "/v1/projects/"+prj.ID, k.Key, nil, nil)
			if st == 401 {
				t.Logf("round %d: refused by the other instance %v after the revocation", round, time.Since(revoked).Round(time.Millisecond))
				break
			}
			if st != 200 {
				t.Fatalf("other instance: %d %s", st, body)
			}
			if time.Since(revoked) > time.Second {
				t.Fatalf("round %d: the other instance still accepts the revoked key after 1 s", round)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// TestPostgresProjectDeletedEverywhere: deleting a project through one
// instance drops its queued deliveries on all instances (each owns some of
// its queues; here they wait behind a rate limit, their payloads in
// memory), and its ids answer 404 (401 with its keys) on all.
func TestPostgresProjectDeletedEverywhere(t *testing.T) {
	const admin = "kh_admin_keys_pg_test"
	var hits atomic.Int64
	sink := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		hits.Add(1)
		w.WriteHeader(204)
	}))
	defer sink.Close()
	inst := startPGInstances(t, 2, admin)
	a, b := inst[0], inst[1]
	var prj struct {
		ID     string `json:"id"`
		APIKey string `json:"api_key"`
	}
	a.must(t, "POST", "/v1/projects", admin, map[string]any{"name": "doomed"}, 201, &prj)
	var ep struct{ ID string }
	a.must(t, "POST", "/v1/projects/"+prj.ID+"/endpoints", prj.APIKey, map[string]any{"url": sink.URL + "/hook", "rate_limit": 2}, 201, &ep)
	var evID string
	for i := range 60 { // 60 resources: both instances own some of their partitions
		var ev struct{ ID string }
		inst[i%2].must(t, "POST", "/v1/projects/"+prj.ID+"/events", prj.APIKey,
			fmt.Sprintf(`{"event":"media.update.status","data":{"id":"video-%d","status":"done"}}`, i), 202, &ev)
		evID = ev.ID
	}
	deadline := time.Now().Add(20 * time.Second)
	for hits.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d attempts reached the sink", hits.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	a.must(t, "DELETE", "/v1/projects/"+prj.ID, admin, nil, 204, nil)
	time.Sleep(300 * time.Millisecond) // attempts in flight at the deletion land
	n := hits.Load()
	time.Sleep(2 * time.Second)
	if more := hits.Load() - n; more != 0 {
		t.Errorf("%d deliveries of the deleted project reached the sink after the deletion (%d before)", more, n)
	}
	for _, p := range inst {
		for _, path := range []string{"", "/endpoints/" + ep.ID, "/events/" + evID} {
			p.must(t, "GET", "/v1/projects/"+prj.ID+path, admin, nil, 404, nil)
			p.must(t, "GET", "/v1/projects/"+prj.ID+path, prj.APIKey, nil, 401, nil)
		}
	}
	if st, body := b.call(t, "GET", "/v1/projects", admin, nil, nil); st != 200 || strings.Contains(body, prj.ID) {
		t.Errorf("project list after deletion: %d %s", st, body)
	}
}
