// Package transporttest runs kinehook's API, engine and SQLite store with
// one destination transport wired as cmd/kinehook wires it: the stack every
// destination package's tests post events through (each had a copy).
package transporttest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/app"
	"github.com/kinehook/kinehook/delivery"
	khttp "github.com/kinehook/kinehook/http"
	"github.com/kinehook/kinehook/sqlite"
	"github.com/kinehook/kinehook/webhook"
)

// AdminKey is the stack's admin key.
const AdminKey = "kh_admin_transport_test"

// Stack is the API on an httptest server over a real engine and SQLite
// store, with one project.
type Stack struct {
	T     *testing.T
	API   *httptest.Server
	Store *sqlite.Store
	// PID and Key are the project's id and API key.
	PID, Key string
}

// New starts a stack delivering endpoints of typ's type through tr (and
// webhooks through the HTTP transport), with the retry schedule and the
// request timeout given and the breaker off. It stops with the test (the
// engine's shutdown closes tr).
func New(t *testing.T, typ kinehook.DestinationType, tr delivery.Transport, retry []time.Duration, timeout time.Duration) *Stack {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "kinehook.db"), sqlite.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := delivery.New(delivery.Config{Store: st, RetrySchedule: retry, RequestTimeout: timeout, BreakerThreshold: -1,
		Transports: map[string]delivery.Transport{delivery.TransportWebhook: webhook.New(webhook.Options{}), typ.Type(): tr}})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	a, err := app.New(app.Config{Store: st, Dispatcher: eng, AdminKeyHash: kinehook.HashKey(AdminKey), AllowPrivateNetworks: true,
		Destinations: []kinehook.DestinationType{typ}})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := khttp.NewServer(khttp.Config{Store: st, Dispatcher: eng, App: a, RateLimit: -1})
	if err != nil {
		t.Fatal(err)
	}
	s := &Stack{T: t, API: httptest.NewServer(srv), Store: st}
	t.Cleanup(func() {
		s.API.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = eng.Shutdown(ctx) // closes the transport's connections
		_ = st.Close()
	})
	var p struct {
		ID     string `json:"id"`
		APIKey string `json:"api_key"`
	}
	s.Call("POST", "/v1/projects", AdminKey, fmt.Sprintf(`{"name":%q}`, typ.Type()), 201, &p)
	s.PID, s.Key = p.ID, p.APIKey
	return s
}

// Call sends a request and decodes the answer into out (when not nil),
// failing the test unless it is answered status.
func (s *Stack) Call(method, path, key, body string, status int, out any) []byte {
	s.T.Helper()
	req, err := http.NewRequest(method, s.API.URL+path, strings.NewReader(body))
	if err != nil {
		s.T.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.T.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != status {
		s.T.Fatalf("%s %s = %d %s, want %d", method, path, res.StatusCode, b, status)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			s.T.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	return b
}

// Post publishes an event through the API and returns its id.
func (s *Stack) Post(body string) string {
	s.T.Helper()
	var ev struct{ ID string }
	s.Call("POST", "/v1/projects/"+s.PID+"/events", s.Key, body, 202, &ev)
	return ev.ID
}

// WaitDelivered waits until every delivery of the events succeeded.
func (s *Stack) WaitDelivered(ids []string, within time.Duration) {
	s.T.Helper()
	deadline := time.Now().Add(within)
	for _, id := range ids {
		for {
			ds, err := s.Store.ListDeliveries(context.Background(), s.PID, id)
			if err != nil {
				s.T.Fatal(err)
			}
			if len(ds) > 0 && ds[0].Status == kinehook.DeliverySucceeded {
				break
			}
			if time.Now().After(deadline) {
				st := "none"
				if len(ds) > 0 {
					st = fmt.Sprintf("%s after %d attempts: %s", ds[0].Status, ds[0].Attempts, ds[0].LastError)
				}
				s.T.Fatalf("event %s not delivered within %s: %s", id, within, st)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// AttemptErrors are the errors recorded on the attempts of the events'
// deliveries.
func (s *Stack) AttemptErrors(ids []string) []string {
	s.T.Helper()
	var out []string
	for _, id := range ids {
		ds, err := s.Store.ListDeliveries(context.Background(), s.PID, id)
		if err != nil {
			s.T.Fatal(err)
		}
		for _, d := range ds {
			as, err := s.Store.ListAttempts(context.Background(), s.PID, d.ID)
			if err != nil {
				s.T.Fatal(err)
			}
			for _, a := range as {
				if a.Error != "" {
					out = append(out, a.Error)
				}
			}
		}
	}
	return out
}
