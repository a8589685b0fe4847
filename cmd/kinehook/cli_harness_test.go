package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/client"
	"github.com/kinehook/kinehook/delivery"
	khttp "github.com/kinehook/kinehook/http"
	"github.com/kinehook/kinehook/sqlite"
)

const cliAdminKey = "kh_admin_cli_test_key"

// cliEnv is a real API server (http.Server on a real SQLite file with the
// real delivery engine) and a sink that endpoints can point at.
type cliEnv struct {
	url   string
	admin *client.Client
	sink  *cliSink
}

// cliSink answers webhooks with a settable status and counts them.
type cliSink struct {
	*httptest.Server
	mu     sync.Mutex
	status int
	bodies [][]byte
}

func (s *cliSink) setStatus(code int) {
	s.mu.Lock()
	s.status = code
	s.mu.Unlock()
}

func (s *cliSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.bodies)
}

func newCLIEnv(t *testing.T) *cliEnv {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "kinehook.db"), sqlite.Options{})
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	eng, err := delivery.New(delivery.Config{
		Store:          st,
		RetrySchedule:  []time.Duration{20 * time.Millisecond},
		RequestTimeout: 2 * time.Second,
	})
	if err != nil {
		t.Fatalf("delivery engine: %v", err)
	}
	if err := eng.Start(ctx); err != nil {
		t.Fatalf("start engine: %v", err)
	}
	srv, err := khttp.NewServer(khttp.Config{Store: st, Dispatcher: eng, AdminKeyHash: kinehook.HashKey(cliAdminKey), AllowPrivateNetworks: true, RateLimit: -1})
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	api := httptest.NewServer(srv)
	sink := &cliSink{status: 200}
	sink.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		sink.mu.Lock()
		sink.bodies = append(sink.bodies, b)
		code := sink.status
		sink.mu.Unlock()
		w.WriteHeader(code)
		_, _ = io.WriteString(w, "sink answers "+http.StatusText(code))
	}))
	t.Cleanup(func() {
		sink.Close()
		api.Close()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = eng.Shutdown(sctx)
		_ = st.Close()
	})
	t.Setenv("KINEHOOK_URL", "")
	t.Setenv("KINEHOOK_API_KEY", "")
	t.Setenv("KINEHOOK_PROJECT", "")
	return &cliEnv{url: api.URL, admin: client.New(api.URL, cliAdminKey), sink: sink}
}

// cliRoot returns a fresh command tree with the API commands, so flag values
// never leak from one run to the next.
func cliRoot() *cobra.Command {
	root := &cobra.Command{Use: "kinehook", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(newProjectsCmd(), newEndpointsCmd(), newEventsCmd(), newDeliveriesCmd(), newSimulateCmd())
	return root
}

// run executes the kinehook command line args against e's server with the
// admin key unless args set --key, and returns stdout, stderr and the error.
func (e *cliEnv) run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	return cliExec(t, cliRoot(), args...)
}

func cliExec(t *testing.T, root *cobra.Command, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errb)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := root.ExecuteContext(ctx)
	return out.String(), errb.String(), err
}

// must runs args and fails the test on an error.
func (e *cliEnv) must(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := e.run(t, args...)
	if err != nil {
		t.Fatalf("kinehook %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// waitUntil polls cond until it holds or 10 s pass.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}
