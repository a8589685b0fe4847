package http

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	nethttp "net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/delivery"
	"github.com/kinehook/kinehook/sqlite"
	"github.com/kinehook/kinehook/webhook"
)

// BenchmarkCreateEvent measures POST /v1/projects/{pid}/events through the
// real handler, SQLite store and engine (group commit), with parallel
// clients and one endpoint that answers 204 at once.
//
//	go test -run '^$' -bench CreateEvent -benchtime 20000x ./http
func BenchmarkCreateEvent(b *testing.B) {
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)
	st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "bench.db"), sqlite.Options{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	eng, err := delivery.New(delivery.Config{Store: st, Logger: quiet, Transports: webhook.Transports(webhook.Options{})})
	if err != nil {
		b.Fatal(err)
	}
	if err := eng.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_ = eng.Shutdown(sctx)
	}()
	var delivered atomic.Int64
	sink := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		delivered.Add(1)
		w.WriteHeader(204)
	}))
	defer sink.Close()
	srv, err := NewServer(Config{Store: st, Dispatcher: eng, AdminKeyHash: kinehook.HashKey(testAdminKey), AllowPrivateNetworks: true, RateLimit: -1, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	api := httptest.NewServer(srv)
	defer api.Close()
	client := api.Client()
	client.Transport.(*nethttp.Transport).MaxIdleConnsPerHost = 256

	post := func(path, key, body string) (int, error) {
		req, _ := nethttp.NewRequest("POST", api.URL+path, bytes.NewBufferString(body))
		req.Header.Set("Authorization", "Bearer "+key)
		res, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode, nil
	}
	p := &kinehook.Project{ID: kinehook.NewID(kinehook.PrefixProject), Name: "bench"}
	key, _ := NewProjectKey()
	if err := st.CreateProject(ctx, p, kinehook.HashKey(key)); err != nil {
		b.Fatal(err)
	}
	if st, err := post("/v1/projects/"+p.ID+"/endpoints", key, `{"url":"`+sink.URL+`"}`); err != nil || st != 201 {
		b.Fatalf("endpoint: %d %v", st, err)
	}
	var n atomic.Int64
	b.SetParallelism(16)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			body := fmt.Sprintf(`{"event":"media.update.status","data":{"id":"v%d","status":"done"}}`, i%1000)
			if st, err := post("/v1/projects/"+p.ID+"/events", key, body); err != nil || st != 202 {
				b.Errorf("post: %d %v", st, err)
				return
			}
		}
	})
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/el.Seconds(), "events/s")
	deadline := time.Now().Add(30 * time.Second)
	for delivered.Load() < int64(b.N) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	b.ReportMetric(float64(delivered.Load())/time.Since(start).Seconds(), "deliveries/s")
}
