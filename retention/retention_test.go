package retention_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	prom "github.com/prometheus/client_golang/prometheus"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/internal/pgtest"
	"github.com/kinehook/kinehook/postgres"
	"github.com/kinehook/kinehook/retention"
	"github.com/kinehook/kinehook/sqlite"
	"github.com/kinehook/kinehook/storetest"
)

// store is a backend as the tests use it: the full Store plus what the
// cleaner needs.
type store interface {
	kinehook.Store
	retention.Store
}

// backends opens a fresh, empty store of each kind.
var backends = []struct {
	name string
	open func(t *testing.T) store
}{
	{"sqlite", openSQLite},
	{"postgres", openPostgres},
}

func openSQLite(t *testing.T) store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "kinehook.db"), sqlite.Options{})
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// openPostgres opens the store on a fresh database (which migrates it),
// dropped at the end; see internal/pgtest.
func openPostgres(t *testing.T) store {
	t.Helper()
	// Generous: under CI's load (every package's tests at once) creating
	// and migrating a database took over 10 s.
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	s, err := postgres.Open(ctx, pgtest.New(t), postgres.Options{})
	if err != nil {
		t.Fatalf("postgres.Open: %v", err)
	}
	// Cleanups run last-in first-out: the store closes before the drop.
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// fixture builds projects, endpoints and events at chosen ages.
type fixture struct {
	t  *testing.T
	s  store
	t0 time.Time
}

func (f *fixture) project(name string, days int) *kinehook.Project {
	f.t.Helper()
	p := &kinehook.Project{ID: kinehook.NewID(kinehook.PrefixProject), Name: name, RetentionDays: days, CreatedAt: f.t0.Add(-100 * 24 * time.Hour)}
	key := make([]byte, 16)
	_, _ = rand.Read(key)
	if err := f.s.CreateProject(f.t.Context(), p, kinehook.HashKey(hex.EncodeToString(key))); err != nil {
		f.t.Fatalf("CreateProject: %v", err)
	}
	return p
}

func (f *fixture) endpoint(p *kinehook.Project) *kinehook.Endpoint {
	f.t.Helper()
	e := &kinehook.Endpoint{
		ID: kinehook.NewID(kinehook.PrefixEndpoint), ProjectID: p.ID, URL: "https://example.com/hooks",
		Secrets: []kinehook.EndpointSecret{{Value: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}, Scheme: kinehook.SchemeV1,
		CreatedAt: f.t0, UpdatedAt: f.t0,
	}
	if err := f.s.CreateEndpoint(f.t.Context(), e); err != nil {
		f.t.Fatalf("CreateEndpoint: %v", err)
	}
	return e
}

// event ingests one event of p created age ago and returns it with its deliveries.
func (f *fixture) event(p *kinehook.Project, age time.Duration) (*kinehook.Event, []*kinehook.Delivery) {
	f.t.Helper()
	id := kinehook.NewID(kinehook.PrefixEvent)
	ev := &kinehook.Event{
		ID: id, ProjectID: p.ID, Type: "media.update.status", ResourceKey: "video-" + id,
		Payload:   []byte(fmt.Sprintf(`{"event":"media.update.status","data":{"id":"video-%s","status":"done"}}`, id)),
		CreatedAt: f.t0.Add(-age),
	}
	res, err := f.s.IngestEvents(f.t.Context(), []*kinehook.Event{ev})
	if err != nil || len(res) != 1 {
		f.t.Fatalf("IngestEvents: %v", err)
	}
	return res[0].Event, res[0].Deliveries
}

// finish records one attempt with the status it leads to.
func (f *fixture) finish(d *kinehook.Delivery, st kinehook.DeliveryStatus) {
	f.t.Helper()
	code, next := 200, time.Time{}
	switch st {
	case kinehook.DeliveryFailed:
		code = 500
	case kinehook.DeliveryRetrying:
		code, next = 503, time.Now().Add(time.Hour)
	}
	err := f.s.RecordAttempts(f.t.Context(), []kinehook.AttemptResult{{
		Attempt:  kinehook.Attempt{DeliveryID: d.ID, AttemptedAt: time.Now().UTC(), StatusCode: code, DurationMS: 1.5, ResponseBody: "ok"},
		Status:   st,
		Attempts: d.Attempts + 1, NextAttemptAt: next,
	}})
	if err != nil {
		f.t.Fatalf("RecordAttempts: %v", err)
	}
	d.Attempts++
}

// gone checks that the event, its deliveries and their attempts are no
// longer readable.
func (f *fixture) gone(what string, ev *kinehook.Event, ds []*kinehook.Delivery) {
	f.t.Helper()
	ctx := f.t.Context()
	if _, err := f.s.GetEvent(ctx, ev.ProjectID, ev.ID); !errors.Is(err, kinehook.ErrNotFound) {
		f.t.Errorf("%s: GetEvent after retention: err %v, want not found", what, err)
	}
	for _, d := range ds {
		if _, err := f.s.GetDelivery(ctx, d.ProjectID, d.ID); !errors.Is(err, kinehook.ErrNotFound) {
			f.t.Errorf("%s: GetDelivery(%s) after retention: err %v, want not found", what, d.ID, err)
		}
		if _, err := f.s.ListAttempts(ctx, d.ProjectID, d.ID); !errors.Is(err, kinehook.ErrNotFound) {
			f.t.Errorf("%s: ListAttempts(%s) after retention: err %v, want not found", what, d.ID, err)
		}
	}
}

// kept checks that the event and its deliveries are there with the given
// statuses, and that each delivery keeps its attempts.
func (f *fixture) kept(what string, ev *kinehook.Event, ds []*kinehook.Delivery, want ...kinehook.DeliveryStatus) {
	f.t.Helper()
	ctx := f.t.Context()
	if _, err := f.s.GetEvent(ctx, ev.ProjectID, ev.ID); err != nil {
		f.t.Errorf("%s: event removed (GetEvent: %v), want kept", what, err)
		return
	}
	for i, d := range ds {
		got, err := f.s.GetDelivery(ctx, d.ProjectID, d.ID)
		if err != nil {
			f.t.Errorf("%s: delivery %s removed (%v), want kept", what, d.ID, err)
			continue
		}
		if got.Status != want[i] {
			f.t.Errorf("%s: delivery %s is %s, want %s", what, d.ID, got.Status, want[i])
		}
		atts, err := f.s.ListAttempts(ctx, d.ProjectID, d.ID)
		if err != nil || len(atts) != d.Attempts {
			f.t.Errorf("%s: delivery %s has %d attempts (err %v), want %d", what, d.ID, len(atts), err, d.Attempts)
		}
	}
}

const day = 24 * time.Hour

// TestCleaner runs the same scenario on both backends with a clock the test
// moves: old finished work goes, open work and its event stay, a project's
// own retention beats the default, and a second run changes nothing.
func TestCleaner(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t)
			t0 := time.Now().UTC().Truncate(time.Microsecond)
			f := &fixture{t: t, s: s, t0: t0}

			dflt := f.project("default 30 days", 0)
			f.endpoint(dflt)
			short := f.project("own 7 days", 7)
			f.endpoint(short)
			f.endpoint(short) // two deliveries per event
			forever := f.project("kept by its override", 3650)
			f.endpoint(forever)

			// Default project: 40-day-old events in every state, one 10 days old.
			oldOK, oldOKd := f.event(dflt, 40*day)
			f.finish(oldOKd[0], kinehook.DeliverySucceeded)
			oldFailed, oldFailedd := f.event(dflt, 40*day)
			f.finish(oldFailedd[0], kinehook.DeliveryFailed)
			oldPending, oldPendingd := f.event(dflt, 40*day)
			oldRetrying, oldRetryingd := f.event(dflt, 40*day)
			f.finish(oldRetryingd[0], kinehook.DeliveryRetrying)
			young, youngd := f.event(dflt, 10*day)
			f.finish(youngd[0], kinehook.DeliverySucceeded)

			// 7-day project: a 10-day-old event goes (the default would keep it),
			// another of the same age stays because one of its two deliveries is
			// retrying; a 3-day-old one stays.
			shortOld, shortOldd := f.event(short, 10*day)
			f.finish(shortOldd[0], kinehook.DeliverySucceeded)
			f.finish(shortOldd[1], kinehook.DeliveryFailed)
			shortMixed, shortMixedd := f.event(short, 10*day)
			f.finish(shortMixedd[0], kinehook.DeliverySucceeded)
			f.finish(shortMixedd[1], kinehook.DeliveryRetrying)
			shortYoung, shortYoungd := f.event(short, 3*day)
			f.finish(shortYoungd[0], kinehook.DeliverySucceeded)
			f.finish(shortYoungd[1], kinehook.DeliverySucceeded)

			// Long override: a 400-day-old event is past the default but within
			// the project's own 3650 days; it stays.
			ancient, ancientd := f.event(forever, 400*day)
			f.finish(ancientd[0], kinehook.DeliverySucceeded)

			before := storetest.CheckConsistency(t, s)

			var now atomic.Int64
			now.Store(t0.UnixNano())
			var logs syncBuffer
			c, err := retention.New(retention.Config{
				Store: s, DefaultDays: retention.DefaultDays, Batch: 2,
				Now:    func() time.Time { return time.Unix(0, now.Load()) },
				Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			})
			if err != nil {
				t.Fatal(err)
			}
			reg := prom.NewRegistry()
			reg.MustRegister(c.Collectors()...)

			res, err := c.RunOnce(t.Context())
			if err != nil {
				t.Fatalf("RunOnce: %v", err)
			}
			if res.Events != 3 || res.Projects != 3 {
				t.Errorf("first run removed %d events over %d projects, want 3 over 3", res.Events, res.Projects)
			}
			f.gone("old succeeded", oldOK, oldOKd)
			f.gone("old failed", oldFailed, oldFailedd)
			f.gone("10-day event of the 7-day project", shortOld, shortOldd)
			f.kept("old pending", oldPending, oldPendingd, kinehook.DeliveryPending)
			f.kept("old retrying", oldRetrying, oldRetryingd, kinehook.DeliveryRetrying)
			f.kept("10-day event of the default project", young, youngd, kinehook.DeliverySucceeded)
			f.kept("old event with a retrying delivery", shortMixed, shortMixedd, kinehook.DeliverySucceeded, kinehook.DeliveryRetrying)
			f.kept("3-day event of the 7-day project", shortYoung, shortYoungd, kinehook.DeliverySucceeded, kinehook.DeliverySucceeded)
			f.kept("400-day event of the 3650-day project", ancient, ancientd, kinehook.DeliverySucceeded)

			after := storetest.CheckConsistency(t, s)
			if after.Events != before.Events-3 || after.Deliveries != before.Deliveries-4 || after.Attempts != before.Attempts-4 {
				t.Errorf("counts before %+v, after %+v: want 3 events, 4 deliveries, 4 attempts fewer", before, after)
			}
			if after.OpenDeliveries != before.OpenDeliveries {
				t.Errorf("open deliveries went from %d to %d", before.OpenDeliveries, after.OpenDeliveries)
			}
			if !strings.Contains(logs.String(), "events_removed=3") {
				t.Errorf("log does not say how much was removed:\n%s", logs.String())
			}
			if got := gauge(t, reg, "kinehook_retention_events_removed_total"); got != 3 {
				t.Errorf("kinehook_retention_events_removed_total = %v, want 3", got)
			}

			// The same clock again: nothing left to do.
			res, err = c.RunOnce(t.Context())
			if err != nil || res.Events != 0 {
				t.Errorf("second run: removed %d, err %v; want a no-op", res.Events, err)
			}
			if again := storetest.CheckConsistency(t, s); again != after {
				t.Errorf("second run changed the store: %+v, then %+v", after, again)
			}

			// 25 days later the 10-day-old event is 35 days old and goes, as
			// does the 3-day one of the 7-day project; open work still stays
			// until it finishes, then goes on the next run.
			now.Store(t0.Add(25 * day).UnixNano())
			res, err = c.RunOnce(t.Context())
			if err != nil || res.Events != 2 {
				t.Errorf("run 25 days later: removed %d, err %v; want 2", res.Events, err)
			}
			f.gone("35-day event", young, youngd)
			f.gone("28-day event of the 7-day project", shortYoung, shortYoungd)
			f.kept("old pending, later", oldPending, oldPendingd, kinehook.DeliveryPending)
			f.finish(oldPendingd[0], kinehook.DeliverySucceeded)
			res, err = c.RunOnce(t.Context())
			if err != nil || res.Events != 1 {
				t.Errorf("run after the pending delivery succeeded: removed %d, err %v; want 1", res.Events, err)
			}
			f.gone("old pending, now succeeded", oldPending, oldPendingd)
			f.kept("old retrying, later", oldRetrying, oldRetryingd, kinehook.DeliveryRetrying)
			f.kept("ancient, later", ancient, ancientd, kinehook.DeliverySucceeded)
			storetest.CheckConsistency(t, s)
			if got := c.Removed(); got != 6 {
				t.Errorf("Removed() = %d, want 6", got)
			}
		})
	}
}

// TestCleanerDefaultZeroKeepsForever: --retention-days 0 keeps projects
// without an override forever, while an override still applies.
func TestCleanerDefaultZeroKeepsForever(t *testing.T) {
	s := openSQLite(t)
	t0 := time.Now().UTC().Truncate(time.Microsecond)
	f := &fixture{t: t, s: s, t0: t0}
	keepAll := f.project("no override", 0)
	withOverride := f.project("override 1 day", 1)
	a, ad := f.event(keepAll, 1000*day)
	b, bd := f.event(withOverride, 2*day)
	c, err := retention.New(retention.Config{Store: s, DefaultDays: 0, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.RunOnce(t.Context())
	if err != nil || res.Events != 1 || res.Projects != 1 {
		t.Fatalf("RunOnce = %+v, %v; want 1 event over 1 project", res, err)
	}
	f.kept("1000-day event without override", a, ad)
	f.gone("2-day event with a 1-day override", b, bd)
}

// TestSQLiteFileShrinks: after retention removes most of the data, the
// incremental vacuum gives the pages back, so the file gets smaller.
func TestSQLiteFileShrinks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kinehook.db")
	s, err := sqlite.Open(t.Context(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t0 := time.Now().UTC().Truncate(time.Microsecond)
	f := &fixture{t: t, s: s, t0: t0}
	p := f.project("bulk", 0) // no endpoints: events without deliveries
	pad := strings.Repeat("x", 2000)
	for range 4 {
		evs := make([]*kinehook.Event, 500)
		for i := range evs {
			id := kinehook.NewID(kinehook.PrefixEvent)
			evs[i] = &kinehook.Event{ID: id, ProjectID: p.ID, Type: "media.update.status", ResourceKey: id,
				Payload:   []byte(fmt.Sprintf(`{"event":"media.update.status","data":{"id":%q,"status":"done","pad":%q}}`, id, pad)),
				CreatedAt: t0.Add(-40 * day)}
		}
		if _, err := s.IngestEvents(t.Context(), evs); err != nil {
			t.Fatal(err)
		}
	}
	f.event(p, day) // one young event stays
	if err := s.Checkpoint(t.Context()); err != nil {
		t.Fatal(err)
	}
	big := fileSize(t, path)
	c, err := retention.New(retention.Config{Store: s, DefaultDays: 30, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.RunOnce(t.Context())
	if err != nil || res.Events != 2000 {
		t.Fatalf("RunOnce = %+v, %v; want 2000 events removed (in batches of 1000)", res, err)
	}
	if res.FreedPages <= 0 {
		t.Errorf("no pages freed: %+v", res)
	}
	small := fileSize(t, path)
	if small*3 > big {
		t.Errorf("file went from %d to %d bytes after removing nearly everything; want under a third", big, small)
	}
	if got := storetest.CheckConsistency(t, s); got.Events != 1 {
		t.Errorf("%d events left, want 1", got.Events)
	}
}

// TestStartRunsOnSchedule: Start runs once at once (negative FirstDelay),
// then every Interval, picking up events as the clock ages them; stop waits.
func TestStartRunsOnSchedule(t *testing.T) {
	s := openSQLite(t)
	t0 := time.Now().UTC().Truncate(time.Microsecond)
	f := &fixture{t: t, s: s, t0: t0}
	p := f.project("p", 0)
	f.event(p, 40*day)
	f.event(p, 20*day)
	var now atomic.Int64
	now.Store(t0.UnixNano())
	c, err := retention.New(retention.Config{Store: s, DefaultDays: 30, FirstDelay: -1, Interval: 10 * time.Millisecond,
		Now: func() time.Time { return time.Unix(0, now.Load()) }})
	if err != nil {
		t.Fatal(err)
	}
	stop := c.Start(t.Context())
	defer stop()
	waitFor(t, "the first run", func() bool { return c.Removed() == 1 })
	now.Store(t0.Add(15 * day).UnixNano())
	waitFor(t, "a later run", func() bool { return c.Removed() == 2 })
	stop()
	if got := storetest.CheckConsistency(t, s); got.Events != 0 {
		t.Errorf("%d events left, want 0", got.Events)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	s := openSQLite(t)
	for _, tc := range []struct {
		name string
		cfg  retention.Config
	}{
		{"no store", retention.Config{DefaultDays: 30}},
		{"negative days", retention.Config{Store: s, DefaultDays: -1}},
		{"negative interval", retention.Config{Store: s, Interval: -time.Second}},
		{"negative batch", retention.Config{Store: s, Batch: -5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := retention.New(tc.cfg); err == nil {
				t.Errorf("New(%+v) = nil error", tc.cfg)
			}
		})
	}
}

func TestRetention(t *testing.T) {
	c, err := retention.New(retention.Config{Store: openSQLite(t), DefaultDays: 30})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		days int
		want time.Duration
	}{{0, 30 * day}, {7, 7 * day}, {400, 400 * day}, {kinehook.MaxRetentionDays, kinehook.MaxRetentionDays * day},
		// Larger counts (stored before the API bounded them) would overflow.
		{281474976710657, kinehook.MaxRetentionDays * day}, {1000000000, kinehook.MaxRetentionDays * day}} {
		if got := c.Retention(&kinehook.Project{RetentionDays: tc.days}); got != tc.want {
			t.Errorf("Retention(RetentionDays=%d) = %v, want %v", tc.days, got, tc.want)
		}
	}
}

func gauge(t *testing.T, reg *prom.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("metric %s not gathered", name)
	return 0
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// timedStore records when the cleaner's deletion phase starts and ends.
type timedStore struct {
	*sqlite.Store
	mu         sync.Mutex
	start, end time.Time
}

func (s *timedStore) DeleteBefore(ctx context.Context, projectID string, before time.Time, batch int) (int, error) {
	s.mu.Lock()
	s.start = time.Now()
	s.mu.Unlock()
	n, err := s.Store.DeleteBefore(ctx, projectID, before, batch)
	s.mu.Lock()
	s.end = time.Now()
	s.mu.Unlock()
	return n, err
}

// TestCleanerDoesNotBlockIngest: on the single-writer SQLite store, ingest
// commits go through between the cleaner's batches while it removes
// thousands of events, instead of waiting for the whole run.
func TestCleanerDoesNotBlockIngest(t *testing.T) {
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "kinehook.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ts := &timedStore{Store: s}
	t0 := time.Now().UTC().Truncate(time.Microsecond)
	f := &fixture{t: t, s: s, t0: t0}
	p := f.project("busy", 0)
	for range 3 {
		evs := make([]*kinehook.Event, 500)
		for i := range evs {
			id := kinehook.NewID(kinehook.PrefixEvent)
			evs[i] = &kinehook.Event{ID: id, ProjectID: p.ID, Type: "media.update.status", ResourceKey: id,
				Payload: []byte(`{"event":"media.update.status","data":{"id":"v","status":"done"}}`), CreatedAt: t0.Add(-40 * day)}
		}
		if _, err := s.IngestEvents(t.Context(), evs); err != nil {
			t.Fatal(err)
		}
	}
	c, err := retention.New(retention.Config{Store: ts, DefaultDays: 30, Batch: 50, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}

	var (
		mu    sync.Mutex
		times []time.Time
		stop  = make(chan struct{})
		done  = make(chan error, 1)
	)
	go func() {
		for {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			id := kinehook.NewID(kinehook.PrefixEvent)
			ev := &kinehook.Event{ID: id, ProjectID: p.ID, Type: "media.update.status", ResourceKey: id,
				Payload: []byte(`{"event":"media.update.status","data":{"id":"v","status":"done"}}`)}
			if _, err := s.IngestEvents(context.Background(), []*kinehook.Event{ev}); err != nil {
				done <- err
				return
			}
			mu.Lock()
			times = append(times, time.Now())
			mu.Unlock()
		}
	}()
	waitFor(t, "ingest running", func() bool { mu.Lock(); defer mu.Unlock(); return len(times) > 0 })
	res, err := c.RunOnce(t.Context())
	close(stop)
	if gerr := <-done; gerr != nil {
		t.Fatalf("ingest beside retention: %v", gerr)
	}
	if err != nil || res.Events != 1500 {
		t.Fatalf("RunOnce = %+v, %v; want 1500 removed", res, err)
	}
	ts.mu.Lock()
	start, end := ts.start, ts.end
	ts.mu.Unlock()
	during := 0
	mu.Lock()
	for _, at := range times {
		if at.After(start) && at.Before(end) {
			during++
		}
	}
	mu.Unlock()
	// 30 batches: ingest gets the writer between them.
	if during < 5 {
		t.Errorf("only %d ingest commits went through during the %v the cleaner was deleting; want >= 5", during, end.Sub(start))
	}
	t.Logf("%d ingest commits during %v of deletion (30 batches)", during, end.Sub(start))
}

// TestCleanerPrunesStats: each run also drops the statistics rollups older
// than their resolution keeps them (minutes after 3 h, hours after 8 days),
// on both stores, whatever the projects' retention.
func TestCleanerPrunesStats(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			s := be.open(t)
			t0 := time.Now().UTC().Truncate(time.Microsecond)
			f := &fixture{t: t, s: s, t0: t0}
			p := f.project("forever", 0)
			f.endpoint(p)
			_, ds := f.event(p, time.Minute)
			f.finish(ds[0], kinehook.DeliverySucceeded)
			count := func(size int64) int64 {
				t.Helper()
				rows, err := s.Stats(t.Context(), kinehook.StatsQuery{ProjectID: p.ID, BucketSeconds: size, From: t0.Add(-time.Hour), To: t0.Add(time.Hour)})
				if err != nil {
					t.Fatal(err)
				}
				var n int64
				for _, r := range rows {
					n += r.Counts.Succeeded
				}
				return n
			}
			if count(60) != 1 || count(3600) != 1 {
				t.Fatalf("rollups before: minute %d, hour %d", count(60), count(3600))
			}
			run := func(at time.Time) retention.Result {
				t.Helper()
				c, err := retention.New(retention.Config{Store: s, DefaultDays: 0, Now: func() time.Time { return at }})
				if err != nil {
					t.Fatal(err)
				}
				res, err := c.RunOnce(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				return res
			}
			if res := run(t0.Add(4 * time.Hour)); res.StatsRows != 1 || count(60) != 0 || count(900) != 1 || count(3600) != 1 {
				t.Errorf("after 4 h: removed %d rows; minute %d, quarter %d, hour %d; want the minute row alone gone", res.StatsRows, count(60), count(900), count(3600))
			}
			if res := run(t0.Add(9 * 24 * time.Hour)); res.StatsRows != 2 || count(3600) != 0 {
				t.Errorf("after 9 days: removed %d rows, hour %d", res.StatsRows, count(3600))
			}
		})
	}
}
