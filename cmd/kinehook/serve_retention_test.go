package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/sqlite"
)

func TestRetentionCleaner(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "r.db"), sqlite.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now().UTC()
	short := &kinehook.Project{ID: kinehook.NewID(kinehook.PrefixProject), Name: "default retention"}
	long := &kinehook.Project{ID: kinehook.NewID(kinehook.PrefixProject), Name: "keeps 100 days", RetentionDays: 100}
	for i, p := range []*kinehook.Project{short, long} {
		if err := st.CreateProject(ctx, p, kinehook.HashKey("k"+string(rune('a'+i)))); err != nil {
			t.Fatal(err)
		}
	}
	// short gets an endpoint, so its events have deliveries: one stays pending.
	ep := &kinehook.Endpoint{ID: kinehook.NewID(kinehook.PrefixEndpoint), ProjectID: short.ID, URL: "http://127.0.0.1:9/", Secrets: []kinehook.EndpointSecret{{Value: "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo="}}}
	if err := st.CreateEndpoint(ctx, ep); err != nil {
		t.Fatal(err)
	}
	event := func(p *kinehook.Project, age time.Duration, id string) *kinehook.Event {
		return &kinehook.Event{ID: kinehook.NewID(kinehook.PrefixEvent), ProjectID: p.ID, Type: kinehook.EventMediaUpdateStatus,
			Payload: []byte(`{"event":"media.update.status","data":{"id":"` + id + `","status":"done"}}`), ResourceKey: id, CreatedAt: now.Add(-age)}
	}
	day := 24 * time.Hour
	evs := []*kinehook.Event{
		event(short, 40*day, "old-pending"), event(short, 40*day, "old-done"), event(short, 1*day, "new"),
		event(long, 40*day, "long-kept"), event(long, 120*day, "long-old"),
	}
	res, err := st.IngestEvents(ctx, evs)
	if err != nil {
		t.Fatal(err)
	}
	// Finish the delivery of "old-done"; "old-pending" stays pending.
	d := res[1].Deliveries[0]
	if err := st.RecordAttempts(ctx, []kinehook.AttemptResult{{Attempt: kinehook.Attempt{DeliveryID: d.ID, AttemptedAt: now, StatusCode: 200}, Status: kinehook.DeliverySucceeded, Attempts: 1}}); err != nil {
		t.Fatal(err)
	}

	c := newRetentionCleaner(st, 30, time.Hour, log)
	if c == nil {
		t.Fatal("the SQLite store has no retention support")
	}
	c.now = func() time.Time { return now }
	n, err := c.runOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("removed %d events, want 2 (old-done and long-old)", n)
	}
	kept := map[string]bool{}
	for _, p := range []*kinehook.Project{short, long} {
		list, _, err := st.ListEvents(ctx, p.ID, kinehook.EventFilter{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range list {
			kept[e.ResourceKey] = true
		}
	}
	for key, want := range map[string]bool{"old-pending": true, "old-done": false, "new": true, "long-kept": true, "long-old": false} {
		if kept[key] != want {
			t.Errorf("%s kept=%v, want %v", key, kept[key], want)
		}
	}

	off := newRetentionCleaner(st, 0, time.Hour, log)
	off.now = func() time.Time { return now.Add(1000 * day) }
	if n, err := off.runOnce(ctx); err != nil || n != 1 {
		// Only the project with its own retention (100 days) is cleaned when the default is off.
		t.Errorf("default off: removed %d (%v), want 1 (long-kept)", n, err)
	}
}
