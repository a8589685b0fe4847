package simulator

import (
	"bytes"
	"context"
	"errors"
	"math"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
)

func generate(t *testing.T, cfg Config) []*Stream {
	t.Helper()
	g, err := NewGenerator(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out []*Stream
	for {
		s, ok := g.Next()
		if !ok {
			return out
		}
		out = append(out, s)
	}
}

var (
	uuidRe   = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	liveIDRe = regexp.MustCompile(`^[a-z]{3}[0-9]{3}-[a-z]{3}[0-9]{3}-[a-z]{3}[0-9]{3}$`)
)

func TestStreamsAreValidLifecycles(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
	}{
		{"defaults", DefaultConfig()},
		{"all errors", Config{Media: 50, ErrorShare: 1, Seed: 2}},
		{"all aborted suspended", Config{Media: 50, AbortShare: 1, SuspendShare: 1, Seed: 3}},
		{"live only, many reconnects", Config{Live: 60, ReconnectsMax: 5, Seed: 4}},
		{"live all cancelled", Config{Live: 30, CancelShare: 1, Seed: 5}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Seed += 100
			streams := generate(t, tc.cfg)
			if len(streams) != tc.cfg.Media+tc.cfg.Live {
				t.Fatalf("got %d streams, want %d", len(streams), tc.cfg.Media+tc.cfg.Live)
			}
			seen := map[string]bool{}
			var media, live int
			for _, s := range streams {
				if err := CheckLifecycle(s.Bodies); err != nil {
					t.Fatalf("%s %s: %v\n%s", s.Kind, s.Resource, err, bytes.Join(s.Bodies, []byte("\n")))
				}
				if seen[s.Resource] {
					t.Fatalf("resource %s generated twice", s.Resource)
				}
				seen[s.Resource] = true
				last, _ := kinehook.ParseStrict(s.Bodies[len(s.Bodies)-1])
				switch s.Kind {
				case KindMedia:
					media++
					if !uuidRe.MatchString(s.Resource) {
						t.Errorf("video id %q is not a v4 UUID", s.Resource)
					}
					if string(last.Media.Status) != s.Outcome {
						t.Errorf("outcome %q but last status %q", s.Outcome, last.Media.Status)
					}
				case KindLive:
					live++
					if !liveIDRe.MatchString(s.Resource) {
						t.Errorf("live event id %q is not shaped like the seed's", s.Resource)
					}
					if s.Reconnects > tc.cfg.ReconnectsMax {
						t.Errorf("%d reconnects, max %d", s.Reconnects, tc.cfg.ReconnectsMax)
					}
					if last.Type != kinehook.EventType("live."+s.Outcome) {
						t.Errorf("outcome %q but last event %s", s.Outcome, last.Type)
					}
					if last.Type == kinehook.EventLiveFinished && !uuidRe.MatchString(last.Live.VideoID) {
						t.Errorf("recording video_id %q is not a UUID", last.Live.VideoID)
					}
				}
			}
			if media != tc.cfg.Media || live != tc.cfg.Live {
				t.Errorf("got %d media and %d live, want %d and %d", media, live, tc.cfg.Media, tc.cfg.Live)
			}
		})
	}
}

func TestSharesRoughlyRespected(t *testing.T) {
	cfg := Config{Media: 4000, Live: 2000, ErrorShare: 0.2, AbortShare: 0.1, SuspendShare: 0.15, CancelShare: 0.25, ReconnectsMax: 2, Seed: 42}
	streams := generate(t, cfg)
	count := map[string]int{}
	reconnects := 0
	for _, s := range streams {
		count[s.Outcome]++
		if s.Suspended {
			count["suspended"]++
		}
		reconnects += s.Reconnects
	}
	check := func(name string, got, of int, want float64) {
		share := float64(got) / float64(of)
		if math.Abs(share-want) > 0.03 {
			t.Errorf("%s share %.3f, want about %.2f", name, share, want)
		}
	}
	check("error", count[OutcomeError], cfg.Media, cfg.ErrorShare)
	check("aborted", count[OutcomeAborted], cfg.Media, cfg.AbortShare)
	check("done", count[OutcomeDone], cfg.Media, 1-cfg.ErrorShare-cfg.AbortShare)
	// Suspension needs an uploading or processing stage; aborts at pending have none.
	check("suspended", count["suspended"], cfg.Media, cfg.SuspendShare*0.98)
	check("cancelled", count[OutcomeCancelled], cfg.Live, cfg.CancelShare)
	if reconnects == 0 {
		t.Error("no live stream reconnected")
	}
}

func TestSeedIsDeterministic(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Seed = 7
	a, b := generate(t, cfg), generate(t, cfg)
	for i := range a {
		if a[i].Resource != b[i].Resource || !bytes.Equal(bytes.Join(a[i].Bodies, nil), bytes.Join(b[i].Bodies, nil)) {
			t.Fatalf("stream %d differs between two runs with one seed", i)
		}
	}
	cfg.Seed = 8
	c := generate(t, cfg)
	if a[0].Resource == c[0].Resource {
		t.Error("different seeds gave the same first resource")
	}
}

func TestErrorMessagesVary(t *testing.T) {
	streams := generate(t, Config{Media: 300, ErrorShare: 1, Seed: 9})
	msgs := map[string]bool{}
	var sawImport bool
	for _, s := range streams {
		ev, _ := kinehook.ParseStrict(s.Bodies[len(s.Bodies)-1])
		msgs[ev.Media.Message] = true
		if regexp.MustCompile(`^import error: code=610100, message=cannot download link: https://\S+, http_code=\d{3}$`).MatchString(ev.Media.Message) {
			sawImport = true
		}
	}
	if len(msgs) < 20 {
		t.Errorf("only %d distinct error messages in 300 errors", len(msgs))
	}
	if !sawImport {
		t.Error("no message in the seed's import-error format")
	}
}

func TestEndlessGenerator(t *testing.T) {
	g, err := NewGenerator(Config{Seed: 1, CancelShare: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[Kind]int{}
	for range 1000 {
		s, ok := g.Next()
		if !ok {
			t.Fatal("an endless generator ended")
		}
		kinds[s.Kind]++
	}
	if kinds[KindLive] < 120 || kinds[KindLive] > 280 {
		t.Errorf("%d live streams in 1000, want about %d", kinds[KindLive], 1000/(EndlessMediaPerLive+1))
	}
}

func TestConfigValidate(t *testing.T) {
	bad := []Config{
		{Media: -1},
		{ErrorShare: 1.5},
		{ErrorShare: 0.7, AbortShare: 0.5},
		{CancelShare: -0.1},
		{SuspendShare: math.NaN()},
		{ReconnectsMax: -1},
	}
	for _, c := range bad {
		if _, err := NewGenerator(c); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("default config: %v", err)
	}
}

func TestCheckLifecycleRejects(t *testing.T) {
	m := func(status, msg string) []byte {
		return mustBody(kinehook.EventMediaUpdateStatus, kinehook.MediaData{ID: "v1", Status: kinehook.MediaStatus(status), Message: msg})
	}
	l := func(t kinehook.EventType, video string) []byte {
		return mustBody(t, kinehook.LiveData{EventID: "abc123-def456-ghi789", VideoID: video})
	}
	cases := map[string][][]byte{
		"done before processing": {m("pending", ""), m("uploading", ""), m("done", "")},
		"processing after done":  {m("pending", ""), m("uploading", ""), m("pre-processing", ""), m("processing", ""), m("done", ""), m("processing", "")},
		"not started pending":    {m("uploading", ""), m("pre-processing", ""), m("processing", ""), m("done", "")},
		"unfinished":             {m("pending", ""), m("uploading", "")},
		"bad error message":      {m("pending", ""), m("uploading", ""), m("error", "boom")},
		"wrong resume":           {m("pending", ""), m("uploading", ""), m("suspended", ""), m("processing", ""), m("done", "")},
		"two resources": {m("pending", ""), mustBody(kinehook.EventMediaUpdateStatus, kinehook.MediaData{ID: "v2", Status: "uploading"}),
			m("pre-processing", ""), m("processing", ""), m("done", "")},
		"live finished early":   {l(kinehook.EventLiveCreated, ""), l(kinehook.EventLiveConnected, ""), l(kinehook.EventLiveFinished, "vid")},
		"live no recording":     {l(kinehook.EventLiveCreated, ""), l(kinehook.EventLiveConnected, ""), l(kinehook.EventLiveEnabled, ""), l(kinehook.EventLiveFinished, "")},
		"live double enabled":   {l(kinehook.EventLiveCreated, ""), l(kinehook.EventLiveConnected, ""), l(kinehook.EventLiveEnabled, ""), l(kinehook.EventLiveDisconnected, ""), l(kinehook.EventLiveConnected, ""), l(kinehook.EventLiveEnabled, ""), l(kinehook.EventLiveCancelled, "")},
		"live starts connected": {l(kinehook.EventLiveConnected, ""), l(kinehook.EventLiveCancelled, "")},
		"invalid body":          {[]byte(`{"event":"media.update.status","data":{"id":"v1","status":"failed"}}`)},
		"empty":                 {},
	}
	for name, bodies := range cases {
		if err := CheckLifecycle(bodies); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	ok := [][]byte{m("pending", ""), m("uploading", ""), m("suspended", ""), m("uploading", ""), m("error", "import error: code=610100, message=cannot download link: https://example.ru/test.mp4, http_code=404")}
	if err := CheckLifecycle(ok); err != nil {
		t.Errorf("valid lifecycle rejected: %v", err)
	}
}

// recorder is a Sender that keeps what it got, per resource, in arrival order.
type recorder struct {
	mu       sync.Mutex
	order    []string
	byRes    map[string][][]byte
	keys     map[string]bool
	throttle int
	calls    int
	// refuse, when set, is asked about each event (the index of the event
	// in its resource's lifecycle) before it is recorded.
	refuse func(res string, i int) error
}

func (r *recorder) send(ctx context.Context, body []byte, key string) error {
	ev, err := kinehook.ParseStrict(body)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.throttle > 0 && r.calls%r.throttle == 0 {
		return &RetryableError{Wait: time.Millisecond, Err: errors.New("429")}
	}
	res := ev.ResourceKey()
	if r.refuse != nil {
		if err := r.refuse(res, len(r.byRes[res])); err != nil {
			return err
		}
	}
	if r.keys[key] {
		return errors.New("duplicate idempotency key " + key)
	}
	r.keys[key] = true
	r.order = append(r.order, res)
	r.byRes[res] = append(r.byRes[res], body)
	return nil
}

func TestRunKeepsPerResourceOrderAndInterleaves(t *testing.T) {
	cfg := Config{Media: 40, Live: 10, ErrorShare: 0.2, AbortShare: 0.1, SuspendShare: 0.2, CancelShare: 0.2, ReconnectsMax: 3, Seed: 11}
	want := generate(t, cfg)
	g, _ := NewGenerator(cfg)
	rec := &recorder{byRes: map[string][][]byte{}, keys: map[string]bool{}, throttle: 7}
	var stats Stats
	err := Run(context.Background(), g, rec.send, RunConfig{Concurrency: 8, Active: 16, RunID: "run1"}, &stats)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, s := range want {
		total += len(s.Bodies)
		got := rec.byRes[s.Resource]
		if !bytes.Equal(bytes.Join(got, []byte("\n")), bytes.Join(s.Bodies, []byte("\n"))) {
			t.Fatalf("resource %s arrived as\n%s\nwant\n%s", s.Resource, bytes.Join(got, []byte("\n")), bytes.Join(s.Bodies, []byte("\n")))
		}
	}
	if got := stats.Sent.Load(); got != int64(total) {
		t.Errorf("sent %d, want %d", got, total)
	}
	if stats.Errors.Load() != 0 || stats.Throttled.Load() == 0 {
		t.Errorf("errors %d throttled %d; want 0 and some", stats.Errors.Load(), stats.Throttled.Load())
	}
	if stats.Completed.Load() != int64(len(want)) {
		t.Errorf("completed %d lifecycles, want %d", stats.Completed.Load(), len(want))
	}
	// Interleaving: within the first 30 events, several resources take turns.
	switches := 0
	for i := 1; i < 30; i++ {
		if rec.order[i] != rec.order[i-1] {
			switches++
		}
	}
	if switches < 15 {
		t.Errorf("only %d resource switches in the first 30 events: streams are not interleaved", switches)
	}
	outcomes := stats.Outcomes()
	sum := outcomes[OutcomeDone] + outcomes[OutcomeError] + outcomes[OutcomeAborted] + outcomes[OutcomeFinished] + outcomes[OutcomeCancelled]
	if sum != len(want) {
		t.Errorf("outcomes %v sum to %d, want %d", outcomes, sum, len(want))
	}
}

func TestRunCountsFailuresAndHonoursRate(t *testing.T) {
	g, _ := NewGenerator(Config{Media: 25, Seed: 3})
	var stats Stats
	var failed int
	send := func(ctx context.Context, body []byte, key string) error { return errors.New("refused") }
	start := time.Now()
	err := Run(context.Background(), g, send, RunConfig{Rate: 200, Concurrency: 2, OnError: func([]byte, error) { failed++ }}, &stats)
	if err != nil {
		t.Fatal(err)
	}
	// 25 lifecycles, each abandoned at its first event, at 200/s: at least ~120 ms.
	if el := time.Since(start); el < 100*time.Millisecond {
		t.Errorf("25 events at 200/s took %v", el)
	}
	if stats.Errors.Load() != 25 || stats.Sent.Load() != 0 || failed != 25 {
		t.Errorf("errors %d sent %d callbacks %d; want 25, 0, 25", stats.Errors.Load(), stats.Sent.Load(), failed)
	}
	if stats.Started.Load() != 25 || stats.Abandoned.Load() != 25 || stats.Completed.Load() != 0 || stats.AbandonedByKind()[KindMedia] != 25 {
		t.Errorf("started %d abandoned %d (%v) completed %d; want 25, 25, 0", stats.Started.Load(), stats.Abandoned.Load(), stats.AbandonedByKind(), stats.Completed.Load())
	}
	if stats.LastError() == nil {
		t.Error("no last error")
	}
}

// TestRunAbandonsALifecycleAtAFailedEvent refuses one event in the middle of
// one resource's lifecycle (outright, or by throttling it past MaxRetries):
// none of that resource's later events is posted, its lifecycle counts as
// abandoned and not completed, and every other resource goes through whole.
func TestRunAbandonsALifecycleAtAFailedEvent(t *testing.T) {
	cfg := Config{Media: 30, Live: 10, ErrorShare: 0.1, AbortShare: 0.1, SuspendShare: 0.2, CancelShare: 0.2, ReconnectsMax: 2, Seed: 17}
	want := generate(t, cfg)
	// The victim: a live stream of at least 4 events, refused at its third.
	var victim *Stream
	for _, s := range want {
		if s.Kind == KindLive && len(s.Bodies) >= 4 {
			victim = s
			break
		}
	}
	if victim == nil {
		t.Fatal("no live stream of 4 events or more")
	}
	const at = 2
	cases := []struct {
		name      string
		err       error
		throttled bool
	}{
		{"refused", errors.New("422 invalid"), false},
		{"throttled past the retries", &RetryableError{Wait: time.Millisecond, Err: errors.New("429")}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g, _ := NewGenerator(cfg)
			rec := &recorder{byRes: map[string][][]byte{}, keys: map[string]bool{}}
			rec.refuse = func(res string, i int) error {
				if res == victim.Resource && i == at {
					return tc.err
				}
				return nil
			}
			var stats Stats
			var failedBodies [][]byte
			err := Run(context.Background(), g, rec.send, RunConfig{Concurrency: 4, Active: 8, MaxRetries: 3, RunID: "r",
				OnError: func(b []byte, _ error) { failedBodies = append(failedBodies, b) }}, &stats)
			if err != nil {
				t.Fatal(err)
			}
			sent := 0
			for _, s := range want {
				got := rec.byRes[s.Resource]
				wantBodies := s.Bodies
				if s == victim {
					wantBodies = s.Bodies[:at]
				}
				if !bytes.Equal(bytes.Join(got, []byte("\n")), bytes.Join(wantBodies, []byte("\n"))) {
					t.Fatalf("resource %s (victim %v) arrived as\n%s\nwant\n%s", s.Resource, s == victim, bytes.Join(got, []byte("\n")), bytes.Join(wantBodies, []byte("\n")))
				}
				sent += len(wantBodies)
			}
			if got := stats.Sent.Load(); got != int64(sent) {
				t.Errorf("sent %d, want %d", got, sent)
			}
			if stats.Errors.Load() != 1 || len(failedBodies) != 1 || !bytes.Equal(failedBodies[0], victim.Bodies[at]) {
				t.Errorf("errors %d, failed bodies %q; want the victim's event %d only", stats.Errors.Load(), failedBodies, at)
			}
			if stats.Started.Load() != int64(len(want)) || stats.Completed.Load() != int64(len(want)-1) || stats.Abandoned.Load() != 1 {
				t.Errorf("started %d completed %d abandoned %d; want %d, %d, 1", stats.Started.Load(), stats.Completed.Load(), stats.Abandoned.Load(), len(want), len(want)-1)
			}
			if by := stats.AbandonedByKind(); by[KindLive] != 1 || by[KindMedia] != 0 {
				t.Errorf("abandoned by kind %v; want one live", by)
			}
			outcomes := stats.Outcomes()
			sum := outcomes[OutcomeDone] + outcomes[OutcomeError] + outcomes[OutcomeAborted] + outcomes[OutcomeFinished] + outcomes[OutcomeCancelled]
			if sum != len(want)-1 {
				t.Errorf("outcomes %v sum to %d, want %d (the abandoned lifecycle has no outcome)", outcomes, sum, len(want)-1)
			}
			if th := stats.Throttled.Load(); (th == 3) != tc.throttled || (!tc.throttled && th != 0) {
				t.Errorf("throttled retries %d", th)
			}
		})
	}
}

func TestRunStopsWithContext(t *testing.T) {
	g, _ := NewGenerator(Config{Seed: 5})
	var stats Stats
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	send := func(ctx context.Context, body []byte, key string) error { return nil }
	done := make(chan error)
	go func() { done <- Run(ctx, g, send, RunConfig{Rate: 500, Concurrency: 3}, &stats) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop when its context ended")
	}
	if n := stats.Sent.Load(); n < 20 || n > 120 {
		t.Errorf("sent %d events in 150 ms at 500/s", n)
	}
}

func FuzzCheckLifecycle(f *testing.F) {
	f.Add([]byte(`{"event":"media.update.status","data":{"id":"v","status":"pending"}}`), []byte(`{"event":"media.update.status","data":{"id":"v","status":"aborted"}}`))
	f.Add([]byte(`{"event":"live.created","data":{"event_id":"e"}}`), []byte(`{"event":"live.cancelled","data":{"event_id":"e"}}`))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		err := CheckLifecycle([][]byte{a, b})
		if err == nil {
			if _, err := kinehook.ParseStrict(a); err != nil {
				t.Fatalf("accepted a body ParseStrict rejects: %v", err)
			}
		}
	})
}
