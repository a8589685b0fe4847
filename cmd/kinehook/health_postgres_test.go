package main

import (
	"context"
	"encoding/json"
	"io"
	nethttp "net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/cluster"
	"github.com/kinehook/kinehook/delivery"
	khttp "github.com/kinehook/kinehook/http"
	"github.com/kinehook/kinehook/internal/pgtest"
	"github.com/kinehook/kinehook/postgres"
	"github.com/kinehook/kinehook/webhook"
)

// breakerWatch records which instance's engine opened a breaker.
type breakerWatch struct {
	delivery.NopObserver
	mu     *sync.Mutex
	opened *[]int
	n      int
}

func (w breakerWatch) BreakerChanged(_ string, st delivery.BreakerState) {
	if st == delivery.BreakerOpen {
		w.mu.Lock()
		*w.opened = append(*w.opened, w.n)
		w.mu.Unlock()
	}
}

// TestPostgresEndpointHealthAcrossInstances: two instances share one
// database, each with its engine, coordinator and API. The breaker opens
// in the engine of the instance that delivers the failing endpoint's
// partition; the other instance's API shows it open too (the state goes
// through the store), and both answer the same statistics.
func TestPostgresEndpointHealthAcrossInstances(t *testing.T) {
	const admin = "kh_admin_health"
	dsn := pgtest.New(t)
	sink := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		w.WriteHeader(500)
	}))
	t.Cleanup(sink.Close)
	var mu sync.Mutex
	var opened []int
	apis := make([]string, 2)
	coords := make([]*cluster.Coordinator, 2)
	for i := range apis {
		ctx := context.Background()
		st, err := postgres.Open(ctx, dsn, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		drv, err := postgres.NewDriver(st)
		if err != nil {
			t.Fatal(err)
		}
		coord, err := cluster.New(drv, cluster.Options{Heartbeat: 200 * time.Millisecond, LeaseTTL: 5 * time.Second, StopTimeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		coords[i] = coord
		eng, err := delivery.New(delivery.Config{Store: st, Coordinator: coord, Transports: webhook.Transports(webhook.Options{}),
			RetrySchedule:  []time.Duration{10 * time.Millisecond, 10 * time.Millisecond, 10 * time.Millisecond, 10 * time.Millisecond},
			RequestTimeout: 2 * time.Second, BreakerThreshold: 3, BreakerBackoff: time.Minute, BreakerMaxBackoff: time.Minute,
			Observer: breakerWatch{mu: &mu, opened: &opened, n: i}})
		if err != nil {
			t.Fatal(err)
		}
		if err := eng.Start(ctx); err != nil {
			t.Fatal(err)
		}
		srv, err := khttp.NewServer(khttp.Config{Store: st, Dispatcher: eng, AdminKeyHash: kinehook.HashKey(admin), AllowPrivateNetworks: true, RateLimit: -1})
		if err != nil {
			t.Fatal(err)
		}
		api := httptest.NewServer(srv)
		apis[i] = api.URL
		t.Cleanup(func() {
			api.Close()
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = eng.Shutdown(sctx)
			_ = st.Close()
		})
	}
	call := func(api, method, path, body string) map[string]any {
		t.Helper()
		req, _ := nethttp.NewRequest(method, api+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+admin)
		req.Header.Set("Content-Type", "application/json")
		res, err := nethttp.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode >= 300 {
			t.Fatalf("%s %s: %d %s", method, path, res.StatusCode, b)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	pid := call(apis[0], "POST", "/v1/projects", `{"name":"p"}`)["id"].(string)
	eid := call(apis[0], "POST", "/v1/projects/"+pid+"/endpoints", `{"url":"`+sink.URL+`/hook"}`)["id"].(string)
	epPath := "/v1/projects/" + pid + "/endpoints/" + eid
	// One resource: one partition, delivered by one instance alone, once
	// the instances have shared the partitions (a partition handed over
	// while its delivery retried had both instances attempt it: 4 retried).
	waitShared(t, coords)
	call(apis[1], "POST", "/v1/projects/"+pid+"/events", `{"event":"media.update.status","data":{"id":"v1","status":"error"}}`)

	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		n := len(opened)
		mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no instance opened the breaker")
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	owner := opened[0]
	mu.Unlock()
	other := 1 - owner
	var h map[string]any
	for {
		h = call(apis[other], "GET", epPath, "")["health"].(map[string]any)
		if h["breaker"] == "open" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("instance %d opened the breaker; instance %d's API still shows %v", owner, other, h)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if h["consecutive_failures"].(float64) < 3 || h["paused_until"] == nil || h["failing_since"] == nil {
		t.Errorf("instance %d's health = %v", other, h)
	}
	mu.Lock()
	if len(opened) != 1 {
		t.Errorf("breakers opened by instances %v; the other instance never delivered this endpoint", opened)
	}
	mu.Unlock()
	// The list of the instance that opened it says the same.
	list := call(apis[owner], "GET", "/v1/projects/"+pid+"/endpoints", "")["data"].([]any)
	if got := list[0].(map[string]any)["health"].(map[string]any)["breaker"]; got != "open" {
		t.Errorf("instance %d's list shows breaker %v", owner, got)
	}
	// Statistics are the same from both instances: 3 attempts retried.
	for i, api := range apis {
		tot := call(api, "GET", "/v1/projects/"+pid+"/stats?window=1h", "")["totals"].(map[string]any)
		if tot["retried"] != 3.0 || tot["succeeded"] != 0.0 {
			t.Errorf("instance %d's project stats totals = %v, want 3 retried", i, tot)
		}
	}
}

// waitShared waits until the coordinators own every partition between them,
// each its share, so no partition moves while the test runs.
func waitShared(t *testing.T, coords []*cluster.Coordinator) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		total, least := 0, kinehook.NumPartitions
		for _, c := range coords {
			n := len(c.Owned())
			total += n
			least = min(least, n)
		}
		if total == kinehook.NumPartitions && least >= kinehook.NumPartitions/len(coords) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("partitions not shared after 30 s: %d owned in all, %d by the instance with fewest", total, least)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
