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
	"github.com/kinehook/kinehook/internal/stacktest"
)

const cliAdminKey = "kh_admin_cli_test_key"

// cliEnv is a real API server (http.Server on a real SQLite file with the
// real delivery engine) and a sink that endpoints can point at.
type cliEnv struct {
	url   string
	store kinehook.Store
	admin *client.Client
	sink  *cliSink
	// answers records what the API answered, byte for byte.
	answers *apiRecorder
}

// apiAnswer is one answer of the API as the server wrote it.
type apiAnswer struct {
	method, uri string
	status      int
	body        []byte
}

// apiRecorder wraps the API handler and records its answers.
type apiRecorder struct {
	mu  sync.Mutex
	all []apiAnswer
}

func (rec *apiRecorder) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tw := &teeWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(tw, r)
		rec.mu.Lock()
		rec.all = append(rec.all, apiAnswer{method: r.Method, uri: r.URL.RequestURI(), status: tw.status, body: tw.body.Bytes()})
		rec.mu.Unlock()
	})
}

// take returns the answers recorded since the last take and forgets them.
func (rec *apiRecorder) take() []apiAnswer {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	out := rec.all
	rec.all = nil
	return out
}

// teeWriter copies an answer's status and body while writing them.
type teeWriter struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (w *teeWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *teeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *teeWriter) Write(b []byte) (int, error) {
	w.body.Write(b)
	return w.ResponseWriter.Write(b)
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
	rec := &apiRecorder{}
	stack := stacktest.Start(t, cliAdminKey, nil, rec.wrap)
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
	t.Cleanup(sink.Close)
	t.Setenv("KINEHOOK_URL", "")
	t.Setenv("KINEHOOK_API_KEY", "")
	t.Setenv("KINEHOOK_PROJECT", "")
	// Never the user's own settings file (kinehook config).
	t.Setenv("KINEHOOK_CONFIG", filepath.Join(t.TempDir(), "config.json"))
	return &cliEnv{url: stack.URL, store: stack.Store, admin: client.New(stack.URL, cliAdminKey), sink: sink, answers: rec}
}

// cliRoot returns a fresh command tree with the API commands, so flag values
// never leak from one run to the next.
func cliRoot() *cobra.Command {
	root := &cobra.Command{Use: "kinehook", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(newProjectsCmd(), newEndpointsCmd(), newEventsCmd(), newDeliveriesCmd(), newSimulateCmd(), newKeysCmd(),
		newSourcesCmd(), newMediaCmd(), newLiveCmd(), newPortalCmd())
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
