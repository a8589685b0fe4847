package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
)

// BenchStateAPI fills a project with n videos through IngestEvents (1% in
// error, 10% processing, the rest done; each its own event) and measures
// the state API's queries on it: one video, the videos in error, those
// updated since a time, and a deep page.
func BenchStateAPI(b *testing.B, s kinehook.Store, n int) {
	ctx := b.Context()
	p := &kinehook.Project{ID: kinehook.NewID(kinehook.PrefixProject), Name: "million", CreatedAt: now()}
	requireNoErr(b, s.CreateProject(ctx, p, kinehook.HashKey(p.ID)), "CreateProject")
	t0 := now().Add(-time.Duration(n) * time.Millisecond)
	const batch = 1000
	start := time.Now()
	for i := 0; i < n; i += batch {
		evs := make([]*kinehook.Event, 0, batch)
		for j := i; j < min(i+batch, n); j++ {
			status, msg := "done", ""
			switch {
			case j%100 == 7:
				status, msg = "error", "import error: code=610100"
			case j%10 == 3:
				status = "processing"
			}
			id := fmt.Sprintf("video-%08d", j)
			evs = append(evs, &kinehook.Event{ID: kinehook.NewID(kinehook.PrefixEvent), ProjectID: p.ID, Type: kinehook.EventMediaUpdateStatus,
				Payload:     fmt.Appendf(nil, `{"event":"media.update.status","data":{"id":%q,"status":%q,"message":%q}}`, id, status, msg),
				ResourceKey: id, CreatedAt: t0.Add(time.Duration(j) * time.Millisecond),
				State: &kinehook.StateUpdate{Kind: kinehook.StateMedia, ID: id, Status: status, Message: msg}})
		}
		if _, err := s.IngestEvents(ctx, evs); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("filled %d videos in %v", n, time.Since(start).Round(time.Second))
	mid := fmt.Sprintf("video-%08d", n/2)
	b.Run("GetMedia", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.GetState(ctx, p.ID, kinehook.StateMedia, mid); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ListErrors50", func(b *testing.B) {
		for b.Loop() {
			page, _, err := s.ListStates(ctx, p.ID, kinehook.StateMedia, kinehook.StateFilter{Status: "error", Limit: 50})
			if err != nil || len(page) != 50 {
				b.Fatal(len(page), err)
			}
		}
	})
	b.Run("ListErrorsSinceHalf50", func(b *testing.B) {
		since := t0.Add(time.Duration(n/2) * time.Millisecond)
		for b.Loop() {
			page, _, err := s.ListStates(ctx, p.ID, kinehook.StateMedia, kinehook.StateFilter{Status: "error", Since: since, Limit: 50})
			if err != nil || len(page) != 50 {
				b.Fatal(len(page), err)
			}
		}
	})
	b.Run("ListAll50Page100", func(b *testing.B) {
		// The 100th page of all videos: the cursor keeps it an index seek.
		_, next, err := s.ListStates(ctx, p.ID, kinehook.StateMedia, kinehook.StateFilter{Limit: 1000})
		if err != nil {
			b.Fatal(err)
		}
		for range 4 {
			_, next, err = s.ListStates(ctx, p.ID, kinehook.StateMedia, kinehook.StateFilter{Limit: 1000, Cursor: next})
			if err != nil {
				b.Fatal(err)
			}
		}
		for b.Loop() {
			page, _, err := s.ListStates(ctx, p.ID, kinehook.StateMedia, kinehook.StateFilter{Limit: 50, Cursor: next})
			if err != nil || len(page) != 50 {
				b.Fatal(len(page), err)
			}
		}
	})
	b.Run("CountByStatus", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.CountStates(ctx, p.ID, kinehook.StateMedia); err != nil {
				b.Fatal(err)
			}
		}
	})
}
