// Package sourcetest is the shared test of ingest sources: a real stack
// (SQLite, the delivery engine, the application layer, an HTTP receiver on
// loopback) behind a source.Runner, and the checks every broker must pass:
// every message delivered, in stream order per resource, bad messages
// recorded and skipped, redeliveries not duplicated. Each broker package
// runs it against its real broker (Kafka: kfake in process).
package sourcetest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/app"
	"github.com/kinehook/kinehook/delivery"
	"github.com/kinehook/kinehook/source"
	"github.com/kinehook/kinehook/sqlite"
	"github.com/kinehook/kinehook/webhook"
)

// Resources is how many videos the messages of Body spread over.
const Resources = 50

// Body is the i-th message of a test stream: a status of video v-(i mod
// Resources) whose message field carries i, so the receiver can check the
// order.
func Body(i int) []byte {
	return []byte(fmt.Sprintf(`{"event":"media.update.status","data":{"id":"v-%d","status":"processing","message":"n=%d"}}`, i%Resources, i))
}

// BadBody is an invalid message (an unknown field) to put between good ones.
func BadBody(i int) []byte {
	return []byte(fmt.Sprintf(`{"event":"media.update.status","data":{"id":"v-%d","status":"processing","bogus":%d}}`, i%Resources, i))
}

// Messages is the size of a stream test: n, or a fifth of it under the
// race detector (the full count runs in the plain go test; under -race the
// same checks run on fewer messages, to keep CI's time).
func Messages(n int) int {
	if Race {
		return n / 5
	}
	return n
}

// Stack is the kinehook side of a source test.
type Stack struct {
	App     *app.App
	Store   *sqlite.Store
	Project string
	Sink    *Sink
}

// NewStack starts a store, engine and app with one project whose one
// endpoint is the Sink; all stop when t ends.
func NewStack(t testing.TB) *Stack {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "kinehook.db"), sqlite.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	eng, err := delivery.New(delivery.Config{Store: st, Logger: slog.New(slog.DiscardHandler), RetrySchedule: []time.Duration{20 * time.Millisecond}, RequestTimeout: 5 * time.Second,
		Transports: webhook.Transports(webhook.Options{})})
	if err != nil {
		t.Fatalf("delivery engine: %v", err)
	}
	if err := eng.Start(ctx); err != nil {
		t.Fatalf("start engine: %v", err)
	}
	uc, err := app.New(app.Config{Store: st, Dispatcher: eng, AllowPrivateNetworks: true})
	if err != nil {
		t.Fatal(err)
	}
	sink := NewSink(t)
	p, _, err := uc.CreateProject(ctx, app.ProjectInput{Name: "source test"})
	if err != nil {
		t.Fatal(err)
	}
	u := sink.URL
	if _, err := uc.CreateEndpoint(ctx, p.ID, app.EndpointInput{URL: &u}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = eng.Shutdown(sctx)
		_ = st.Close()
	})
	return &Stack{App: uc, Store: st, Project: p.ID, Sink: sink}
}

// Run runs a Runner over c until the returned stop is called (stop waits
// for it).
func (s *Stack) Run(t testing.TB, name string, c source.Consumer, batch int) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	r := &source.Runner{Name: name, ProjectID: s.Project, Consumer: c, Publisher: s.App, Rejects: s.App, Batch: batch,
		Logger: slog.New(slog.DiscardHandler)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := r.Run(ctx); err != nil {
			t.Errorf("runner: %v", err)
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

// Sink is a receiver that records the n= of every delivery, by video.
type Sink struct {
	*httptest.Server
	mu sync.Mutex
	// seen: n -> the event ids (webhook-id) it arrived as; order: per
	// video, the n in arrival order of first deliveries.
	seen  map[int]map[string]bool
	order map[string][]int
}

// NewSink starts a receiver on loopback.
func NewSink(t testing.TB) *Sink {
	s := &Sink{seen: map[int]map[string]bool{}, order: map[string][]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var body struct {
			Data struct {
				ID      string `json:"id"`
				Message string `json:"message"`
			} `json:"data"`
		}
		if err := json.Unmarshal(b, &body); err != nil {
			w.WriteHeader(400)
			return
		}
		n, err := strconv.Atoi(strings.TrimPrefix(body.Data.Message, "n="))
		if err != nil {
			w.WriteHeader(400)
			return
		}
		s.mu.Lock()
		if s.seen[n] == nil {
			s.seen[n] = map[string]bool{}
			s.order[body.Data.ID] = append(s.order[body.Data.ID], n)
		}
		s.seen[n][r.Header.Get("webhook-id")] = true
		s.mu.Unlock()
		w.WriteHeader(204)
	}))
	t.Cleanup(s.Close)
	return s
}

// Delivered is how many distinct messages arrived.
func (s *Sink) Delivered() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}

// WaitDelivered waits until n distinct messages arrived.
func (s *Sink) WaitDelivered(t testing.TB, n int, d time.Duration) {
	t.Helper()
	if Race {
		d *= 3
	}
	deadline := time.Now().Add(d)
	for s.Delivered() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages delivered after %v", s.Delivered(), n, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Check fails t unless exactly the good messages in [0, total) arrived
// (bad(i) says which were bad), each as one event (a delivery the engine
// sends again after a crash is the same event; a message published twice
// would be two), and each video's in increasing n: the stream's order.
func (s *Sink) Check(t testing.TB, total int, bad func(i int) bool) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	missing, extra, dup := 0, 0, 0
	for i := range total {
		switch {
		case bad(i) && len(s.seen[i]) > 0:
			extra++
		case !bad(i) && len(s.seen[i]) == 0:
			missing++
		case len(s.seen[i]) > 1:
			dup++
		}
	}
	if missing+extra > 0 {
		t.Errorf("%d good messages not delivered, %d bad ones delivered", missing, extra)
	}
	if dup > 0 {
		t.Errorf("%d messages became more than one event (a redelivery was not a duplicate)", dup)
	}
	for v, ns := range s.order {
		for i := 1; i < len(ns); i++ {
			if ns[i] < ns[i-1] {
				t.Errorf("video %s: message %d delivered after %d: not in stream order", v, ns[i], ns[i-1])
				break
			}
		}
	}
}

// CheckRejected fails t unless the project's rejected inputs are exactly
// the bad messages (want of them), from source name, each with its reason.
func (s *Stack) CheckRejected(t testing.TB, name string, want int) []*kinehook.RejectedInput {
	t.Helper()
	var all []*kinehook.RejectedInput
	cursor := ""
	for {
		page, next, err := s.App.ListRejected(context.Background(), s.Project, cursor, 1000, false)
		if err != nil {
			t.Fatalf("ListRejected: %v", err)
		}
		all = append(all, page...)
		if next == "" {
			break
		}
		cursor = next
	}
	if len(all) != want {
		t.Errorf("%d rejected inputs, want %d", len(all), want)
	}
	for _, r := range all {
		if r.Source != name || r.Code != kinehook.EINVALID || !strings.Contains(r.Reason, "bogus") || !strings.Contains(string(r.Body), `"bogus"`) || r.MessageID == "" {
			t.Errorf("rejected input %+v: want source %s, code invalid, a reason naming the field, the body and the broker's id", r, name)
			break
		}
	}
	return all
}
