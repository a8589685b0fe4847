package postgres

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/storetest"
)

// TestFirstAnalyze: on a fresh database (autovacuum off, so that only the
// store can analyze), the store analyzes its ingest tables once the first
// firstAnalyzeRows events are in, and the ingest's read of states by key
// then goes through the primary key, not resource_state_status (which scans
// every video of the project for each key).
func TestFirstAnalyze(t *testing.T) {
	ctx := t.Context()
	dsn, conn := freshDB(t)
	s, err := Open(ctx, dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if _, err := conn.Exec(ctx, `ALTER TABLE resource_state SET (autovacuum_enabled = false)`); err != nil {
		t.Fatal(err)
	}
	p, _ := storetest.NewProject(t, s, 1)
	const batch = 100
	for b := range firstAnalyzeRows/batch + 1 {
		evs := make([]*kinehook.Event, batch)
		for i := range evs {
			evs[i] = storetest.NewEvent(p.ID, fmt.Sprintf("video-%05d", b*batch+i), time.Now())
		}
		if _, err := s.IngestEvents(ctx, evs); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var analyzed bool
		if err := conn.QueryRow(ctx, `SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables
			WHERE relid = 'resource_state'::regclass`).Scan(&analyzed); err != nil {
			t.Fatal(err)
		}
		if analyzed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("resource_state not analyzed 30 s after %d events", firstAnalyzeRows+batch)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var plan strings.Builder
	rows, err := conn.Query(ctx, `EXPLAIN SELECT `+stateCols+` FROM resource_state
		WHERE (project_id, kind, id) IN (SELECT * FROM unnest($1::text[], $2::text[], $3::text[]))`,
		[]string{p.ID, p.ID}, []string{"video", "video"}, []string{"video-00005", "video-00007"})
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		plan.WriteString(line + "\n")
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(plan.String(), "resource_state_pkey") {
		t.Errorf("the state read does not use the primary key:\n%s", plan.String())
	}
}
