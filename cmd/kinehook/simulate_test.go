package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/client"
	"github.com/kinehook/kinehook/cmd/kinehook/internal/simulator"
	"github.com/kinehook/kinehook/internal/stacktest"
)

func TestSimulateAgainstServer(t *testing.T) {
	e := newCLIEnv(t)
	ctx := context.Background()
	p, err := e.admin.CreateProject(ctx, "sim")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.CreateEndpoint(ctx, p.ID, client.EndpointCreate{URL: e.sink.URL}); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := e.run(t, "simulate", "--url", e.url, "--key", p.APIKey, "--project", p.ID,
		"--media", "8", "--live", "4", "--rate", "0", "--concurrency", "3", "--seed", "21",
		"--error-share", "0.3", "--abort-share", "0.2", "--suspend-share", "0.3", "--cancel-share", "0.25", "--reconnects-max", "2")
	if err != nil {
		t.Fatalf("simulate: %v\n%s\n%s", err, out, errOut)
	}

	// What the seed generates is what the server received.
	cfg := simulator.Config{Media: 8, Live: 4, ErrorShare: 0.3, AbortShare: 0.2, SuspendShare: 0.3, CancelShare: 0.25, ReconnectsMax: 2, Seed: 21}
	gen, _ := simulator.NewGenerator(cfg)
	want := map[string][]string{}
	total := 0
	for s, ok := gen.Next(); ok; s, ok = gen.Next() {
		for _, b := range s.Bodies {
			want[s.Resource] = append(want[s.Resource], string(b))
		}
		total += len(s.Bodies)
	}
	if !strings.Contains(out, "sent "+itoa(total)+" events") || !strings.Contains(out, "0 errors") ||
		!strings.Contains(out, "media: 8 complete") || !strings.Contains(out, "live:  4 complete") || !strings.Contains(out, "seed: 21") {
		t.Fatalf("summary:\n%s", out)
	}
	var events []*client.Event
	for ev, err := range e.admin.AllEvents(ctx, p.ID, client.EventListOptions{Limit: 50}) {
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, ev)
	}
	if len(events) != total {
		t.Fatalf("server has %d events, simulator generated %d", len(events), total)
	}
	// Newest first: reversed, each resource's events are in lifecycle order.
	slices.Reverse(events)
	got := map[string][]string{}
	for _, ev := range events {
		b, err := ev.Body()
		if err != nil {
			t.Fatal(err)
		}
		res := eventResource(ev)
		got[res] = append(got[res], string(b))
	}
	for res, bodies := range want {
		if !slices.Equal(got[res], bodies) {
			t.Errorf("resource %s stored as\n%v\nwant\n%v", res, got[res], bodies)
		}
		raw := make([][]byte, len(got[res]))
		for i, b := range got[res] {
			raw[i] = []byte(b)
		}
		if err := simulator.CheckLifecycle(raw); err != nil {
			t.Errorf("resource %s: %v", res, err)
		}
	}
	waitUntil(t, "every event to reach the sink", func() bool { return e.sink.count() >= total })

	// --json: the same numbers, machine-readable.
	out, _, err = e.run(t, "simulate", "--url", e.url, "--key", p.APIKey, "--project", p.ID,
		"--media", "3", "--live", "1", "--rate", "0", "--seed", "4", "--json")
	if err != nil {
		t.Fatal(err)
	}
	sum := decodeJSON[simSummary](t, out)
	if sum.Sent == 0 || sum.Errors != 0 || sum.Completed != 4 || sum.Seed != 4 || len(sum.Outcomes) == 0 {
		t.Fatalf("--json summary: %+v", sum)
	}

	// Progress lines go to stderr when it is not a terminal.
	if strings.Contains(errOut, "\r") {
		t.Errorf("carriage returns in non-terminal progress: %q", errOut)
	}
}

func TestSimulateErrors(t *testing.T) {
	e := newCLIEnv(t)
	p, err := e.admin.CreateProject(context.Background(), "sim")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"wrong project", []string{"--project", "prj_nope"}, "not_found"},
		{"bad rate", []string{"--project", p.ID, "--rate", "fast"}, "rate"},
		{"bad share", []string{"--project", p.ID, "--error-share", "1.5"}, "error-share"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"simulate", "--url", e.url, "--key", p.APIKey, "--media", "1", "--live", "0"}, tc.args...)
			_, _, err := e.run(t, args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestProgressLine(t *testing.T) {
	var s simulator.Stats
	s.Sent.Store(120)
	s.Errors.Store(2)
	s.Completed.Store(7)
	s.Abandoned.Store(2)
	line := progressLine(&s, 30, 41.5, 3e9)
	for _, want := range []string{"sent 120", "rate 41.5/s", "errors 2", "lifecycles 7/30 (2 abandoned)"} {
		if !strings.Contains(line, want) {
			t.Errorf("progress line %q lacks %q", line, want)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestDrawProgress(t *testing.T) {
	cases := []struct {
		name  string
		tty   bool
		check func(t *testing.T, out string)
	}{
		{"terminal", true, func(t *testing.T, out string) {
			if !strings.Contains(out, "\r\x1b[K") || strings.Contains(out, "\n") || !strings.Contains(out, "sent 42") {
				t.Fatalf("terminal progress %q: want lines redrawn with \\r and no newline", out)
			}
			if !strings.HasSuffix(out, "\r\x1b[K") {
				t.Fatalf("the progress line is not cleared at the end: %q", out)
			}
		}},
		{"plain", false, func(t *testing.T, out string) {
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if strings.Contains(out, "\r") || len(lines) < 2 || !strings.Contains(lines[0], "sent 42") {
				t.Fatalf("plain progress %q: want several newline-ended lines", out)
			}
		}},
	}
	old := progressEvery
	progressEvery = 100 * time.Millisecond
	defer func() { progressEvery = old }()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var s simulator.Stats
			s.Sent.Store(42)
			var out strings.Builder
			done := make(chan struct{})
			finished := make(chan struct{})
			go func() {
				drawProgress(&out, tc.tty, &s, 10, time.Now(), done)
				close(finished)
			}()
			time.Sleep(1800 * time.Millisecond)
			close(done)
			<-finished
			tc.check(t, out.String())
		})
	}
}

// TestSimulateAbandonsAFailedLifecycle puts a server in front of which one
// event in the middle of one live stream's lifecycle is refused (422): the
// simulator posts none of that stream's later events, counts its lifecycle as
// abandoned (not complete) in the summary and in --json, and exits 1; every
// other lifecycle is posted whole.
func TestSimulateAbandonsAFailedLifecycle(t *testing.T) {
	// The flags below on top of simulate's defaults.
	cfg := simulator.DefaultConfig()
	cfg.Media, cfg.Live, cfg.CancelShare, cfg.ReconnectsMax, cfg.Seed = 6, 4, 0, 1, 33
	gen, _ := simulator.NewGenerator(cfg)
	var victim *simulator.Stream
	total := 0
	for s, ok := gen.Next(); ok; s, ok = gen.Next() {
		total += len(s.Bodies)
		if victim == nil && s.Kind == simulator.KindLive {
			victim = s
		}
	}
	if victim == nil || len(victim.Bodies) < 4 {
		t.Fatalf("seed %d: want a live stream of 4 events or more first, got %+v", cfg.Seed, victim)
	}
	const at = 2 // live.enabled is refused: live.finished must not follow
	var (
		mu      sync.Mutex
		seen    = map[string]int{}
		refused int
	)
	wrap := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/events") {
				h.ServeHTTP(w, r)
				return
			}
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			ev, err := kinehook.ParseStrict(body)
			if err == nil && ev.ResourceKey() == victim.Resource {
				mu.Lock()
				n := seen[victim.Resource]
				seen[victim.Resource]++
				if n == at {
					refused++
				}
				mu.Unlock()
				if n == at {
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusUnprocessableEntity)
					_, _ = io.WriteString(w, `{"error":{"code":"invalid","message":"refused by the test"}}`)
					return
				}
			}
			h.ServeHTTP(w, r)
		})
	}
	stack := stacktest.Start(t, cliAdminKey, nil, wrap)
	t.Setenv("KINEHOOK_URL", "")
	t.Setenv("KINEHOOK_API_KEY", "")
	t.Setenv("KINEHOOK_PROJECT", "")
	admin := client.New(stack.URL, cliAdminKey)
	ctx := context.Background()
	p, err := admin.CreateProject(ctx, "sim-abandon")
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"simulate", "--url", stack.URL, "--key", p.APIKey, "--project", p.ID,
		"--media", "6", "--live", "4", "--cancel-share", "0", "--reconnects-max", "1", "--rate", "0", "--seed", "33"}
	out, errOut, err := cliExec(t, cliRoot(), args...)
	if err == nil || !strings.Contains(err.Error(), "1 events failed, 1 lifecycles abandoned") || !strings.Contains(err.Error(), "refused by the test") {
		t.Fatalf("simulate: err %v, want 1 failed event and 1 abandoned lifecycle\n%s\n%s", err, out, errOut)
	}
	mu.Lock()
	posts, refusals := seen[victim.Resource], refused
	mu.Unlock()
	if refusals != 1 || posts != at+1 {
		t.Fatalf("the victim's events reached the server %d times (refused %d); want %d then nothing", posts, refusals, at+1)
	}
	sent := total - (len(victim.Bodies) - at)
	for _, want := range []string{"sent " + itoa(sent) + " events", "1 errors", "media: 6 complete", "live:  3 complete", "1 abandoned at a failed event", "seed: 33"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "cut short") {
		t.Errorf("the abandoned lifecycle is reported as cut short:\n%s", out)
	}
	// The server holds the victim's events before the refused one, and no more.
	var victimEvents int
	for ev, err := range admin.AllEvents(ctx, p.ID, client.EventListOptions{ResourceKey: victim.Resource}) {
		if err != nil {
			t.Fatal(err)
		}
		_ = ev
		victimEvents++
	}
	if victimEvents != at {
		t.Errorf("the server holds %d events of the abandoned stream, want %d", victimEvents, at)
	}

	// --json says the same.
	p2, err := admin.CreateProject(ctx, "sim-abandon-json")
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	seen = map[string]int{}
	mu.Unlock()
	args[4], args[6] = p2.APIKey, p2.ID
	out, _, err = cliExec(t, cliRoot(), append(args, "--json")...)
	if err == nil {
		t.Fatal("simulate --json: no error after a refused event")
	}
	sum := decodeJSON[simSummary](t, out)
	if sum.Errors != 1 || sum.Abandoned != 1 || sum.AbandonedBy["live"] != 1 || sum.AbandonedBy["media"] != 0 ||
		sum.Completed != 9 || sum.Started != 10 || sum.Sent != int64(sent) {
		t.Fatalf("--json summary: %+v", sum)
	}
}

// TestSimSenderRetryable: what the server could not take just now, and
// posts that got no answer at all, are retried (the idempotency key makes
// that safe); a refusal is final.
func TestSimSenderRetryable(t *testing.T) {
	var status atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(int(status.Load()))
		_, _ = io.WriteString(w, `{"error":{"code":"x","message":"x"}}`)
	}))
	defer srv.Close()
	body := kinehook.SampleEvent(kinehook.EventLiveCreated)
	for _, tc := range []struct {
		status    int
		retryable bool
	}{{429, true}, {502, true}, {503, true}, {504, true}, {422, false}, {400, false}, {500, false}} {
		status.Store(int32(tc.status))
		err := simSender(client.New(srv.URL, "kh_x"), "prj_x")(t.Context(), body, "k")
		var re *simulator.RetryableError
		if errors.As(err, &re) != tc.retryable {
			t.Errorf("%d: err %v, retryable %v, want %v", tc.status, err, !tc.retryable, tc.retryable)
		}
	}
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	err := simSender(client.New(dead.URL, "kh_x"), "prj_x")(t.Context(), body, "k")
	var re *simulator.RetryableError
	if !errors.As(err, &re) {
		t.Errorf("a refused connection: %v, want a retryable error", err)
	}
}
