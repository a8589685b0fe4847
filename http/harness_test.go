package http

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	nethttp "net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/delivery"
	"github.com/kinehook/kinehook/sqlite"
	"github.com/kinehook/kinehook/webhook"
)

const testAdminKey = "kh_admin_test_key"

// env is a server on a real SQLite file with the real delivery engine, and a
// sink that records what endpoints receive.
type env struct {
	t      *testing.T
	store  kinehook.Store
	engine *delivery.Engine
	srv    *Server
	api    *httptest.Server
	sink   *sink
}

// sink is a local receiver; its status answers every request.
type sink struct {
	*httptest.Server
	mu     sync.Mutex
	status int
	got    []*received
	notify chan struct{}
}

type received struct {
	header nethttp.Header
	body   []byte
}

func newSink(t *testing.T) *sink {
	s := &sink{status: 200, notify: make(chan struct{}, 1024)}
	s.Server = httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.got = append(s.got, &received{header: r.Header.Clone(), body: b})
		st := s.status
		s.mu.Unlock()
		select {
		case s.notify <- struct{}{}:
		default:
		}
		w.WriteHeader(st)
		_, _ = io.WriteString(w, "sink says "+nethttp.StatusText(st))
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *sink) setStatus(code int) {
	s.mu.Lock()
	s.status = code
	s.mu.Unlock()
}

func (s *sink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got)
}

// events counts the distinct webhook-ids received: a delivery that timed
// out on a loaded machine and was retried arrives twice, at least once being
// the promise.
func (s *sink) events() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := map[string]bool{}
	for _, r := range s.got {
		ids[r.header.Get("webhook-id")] = true
	}
	return len(ids)
}

func (s *sink) received() []*received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*received(nil), s.got...)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

type envOption func(*Config)

// testLog writes log lines into the test's output (shown on failure).
type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func newTestLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "kinehook.db"), sqlite.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	return newEnvOn(t, st, opts...)
}

// newEnvOn is newEnv on a store the test opened (closed at the end).
func newEnvOn(t *testing.T, st kinehook.Store, opts ...envOption) *env {
	t.Helper()
	ctx := context.Background()
	eng, err := delivery.New(delivery.Config{
		Store:          st,
		Transports:     webhook.Transports(webhook.Options{}),
		RetrySchedule:  []time.Duration{50 * time.Millisecond, 50 * time.Millisecond},
		RequestTimeout: 2 * time.Second,
		Logger:         newTestLogger(t),
	})
	if err != nil {
		t.Fatalf("delivery engine: %v", err)
	}
	if err := eng.Start(ctx); err != nil {
		t.Fatalf("start engine: %v", err)
	}
	cfg := Config{Store: st, Dispatcher: eng, AdminKeyHash: kinehook.HashKey(testAdminKey), AllowPrivateNetworks: true, RateLimit: -1, Logger: newTestLogger(t)}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	e := &env{t: t, store: st, engine: eng, srv: srv, api: httptest.NewServer(srv), sink: newSink(t)}
	t.Cleanup(func() {
		e.api.Close()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = eng.Shutdown(sctx)
		_ = st.Close()
	})
	return e
}

// resp is an API answer.
type resp struct {
	status int
	header nethttp.Header
	body   []byte
}

func (r resp) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("answer %d is not a JSON object: %v: %s", r.status, err, r.body)
	}
	return m
}

// errCode returns error.code of an error answer ("" if none).
func (r resp) errCode() string {
	var m struct {
		Error struct {
			Code  string `json:"code"`
			Field string `json:"field"`
		} `json:"error"`
	}
	_ = json.Unmarshal(r.body, &m)
	return m.Error.Code
}

func (r resp) errField() string {
	var m struct {
		Error struct {
			Field string `json:"field"`
		} `json:"error"`
	}
	_ = json.Unmarshal(r.body, &m)
	return m.Error.Field
}

// do sends a request; body may be nil, a string (sent as is) or a value (JSON).
func (e *env) do(method, path, key string, body any, hdr ...string) resp {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := nethttp.NewRequest(method, e.api.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := e.api.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

// must checks the status of an answer.
func (e *env) must(r resp, status int) resp {
	e.t.Helper()
	if r.status != status {
		e.t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	return r
}

// project creates a project and returns its id and key.
func (e *env) project(name string) (string, string) {
	e.t.Helper()
	m := e.must(e.do("POST", "/v1/projects", testAdminKey, map[string]any{"name": name}), 201).json(e.t)
	return m["id"].(string), m["api_key"].(string)
}

// endpoint creates an endpoint to the sink and returns its JSON.
func (e *env) endpoint(pid, key string, extra map[string]any) map[string]any {
	e.t.Helper()
	body := map[string]any{"url": e.sink.URL + "/hook"}
	for k, v := range extra {
		body[k] = v
	}
	return e.must(e.do("POST", "/v1/projects/"+pid+"/endpoints", key, body), 201).json(e.t)
}

func mediaEvent(id, status string) string {
	return `{"event":"media.update.status","data":{"id":"` + id + `","status":"` + status + `"}}`
}
