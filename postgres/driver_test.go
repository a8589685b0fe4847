package postgres

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/storetest"
)

// TestIngestSharesOnlyWhenAsked: the store announces an ingest in its
// commit, and lists a repeated event's open deliveries, only while a
// coordinator asked for it (ShareIngests) and another instance is live.
func TestIngestSharesOnlyWhenAsked(t *testing.T) {
	s := openTestStore(t, Options{})
	d, err := NewDriver(s)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := storetest.NewProject(t, s, 1)
	conn, err := pgx.Connect(t.Context(), testDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), "LISTEN test_news"); err != nil {
		t.Fatal(err)
	}
	payloads := func(ids []string, parts []int) []string { return []string{"self " + strings.Join(ids, ",")} }
	ingest := func(key string) kinehook.IngestResult {
		t.Helper()
		ev := storetest.NewEvent(p.ID, "v", time.Time{})
		ev.IdempotencyKey = key
		res, err := s.IngestEvents(t.Context(), []*kinehook.Event{ev})
		if err != nil {
			t.Fatal(err)
		}
		return res[0]
	}
	tests := []struct {
		name         string
		share, other bool
		announced    bool
	}{
		{"not shared", false, true, false},
		{"shared, alone", true, false, false},
		{"shared, another live", true, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.pool.Exec(t.Context(), `DELETE FROM instances`); err != nil {
				t.Fatal(err)
			}
			if tt.other {
				if err := d.Register(t.Context(), "other"); err != nil {
					t.Fatal(err)
				}
			}
			if tt.share {
				d.ShareIngests("self", time.Minute, "test_news", payloads)
			}
			defer d.ShareIngests("", 0, "", nil)
			key := kinehook.NewID("k")
			r := ingest(key)
			if r.Announced != tt.announced {
				t.Errorf("Announced = %v, want %v", r.Announced, tt.announced)
			}
			if tt.announced {
				wctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
				defer cancel()
				n, err := conn.WaitForNotification(wctx)
				if err != nil || n.Payload != "self "+r.Deliveries[0].ID {
					t.Errorf("notification %+v (%v), want the new delivery", n, err)
				}
			}
			again := ingest(key)
			if got, want := len(again.OpenDeliveries), map[bool]int{false: 0, true: 1}[tt.share]; !again.Duplicate || got != want {
				t.Errorf("repeat: Duplicate %v, %d open deliveries, want %d", again.Duplicate, got, want)
			}
		})
	}
}
