package sqlite

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
)

// TestQueryPlansUseIndexes pins the indexes that the queries reading by
// project, endpoint or event use after migration 0005 narrowed them: a
// query that lost its index would scan a whole table.
func TestQueryPlansUseIndexes(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "plan.db"), Options{CheckpointInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tests := []struct {
		name, query string
		args        []any
		want        []string // each must appear in the plan
		sorts       bool     // the plan may sort (a short list)
	}{
		{"fail a deleted endpoint's deliveries", failEndpointDeliveries, []any{1, "ep"},
			[]string{"deliveries USING INDEX deliveries_open"}, false},
		{"retention of a project", retentionSelect(`project_id = ? AND `), []any{"prj", 0, 10},
			[]string{"e USING INDEX events_project (project_id=?)", "USING INDEX deliveries_open"}, false},
		{"retention of every project", retentionSelect(``), []any{0, 10},
			[]string{"SCAN e", "USING INDEX deliveries_open"}, false},
		{"list events", `SELECT seq FROM events WHERE project_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?`, []any{"prj", 9, 10},
			[]string{"INDEX events_project (project_id=? AND rowid<?)"}, false},
		{"list events of a type", `SELECT seq FROM events WHERE project_id = ? AND type = ? ORDER BY seq DESC LIMIT ?`, []any{"prj", "t", 10},
			[]string{"INDEX events_project_type (project_id=? AND type=?)"}, false},
		{"list events of a resource", `SELECT seq FROM events WHERE project_id = ? AND resource_key = ? AND resource_key <> '' ORDER BY seq DESC LIMIT ?`, []any{"prj", "r", 10},
			[]string{"INDEX events_project_resource (project_id=? AND resource_key=?)"}, false},
		{"open deliveries", deliverySelect + `WHERE d.status IN ('pending', 'retrying') ORDER BY d.event_seq`, nil,
			[]string{"d USING INDEX deliveries_open"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan := explain(t, s, tt.query, tt.args)
			for _, w := range tt.want {
				if !strings.Contains(plan, w) {
					t.Errorf("plan lacks %q:\n%s", w, plan)
				}
			}
			if !tt.sorts && strings.Contains(plan, "USE TEMP B-TREE") {
				t.Errorf("plan sorts:\n%s", plan)
			}
		})
	}
}

// TestSearchPlans pins the index each delivery search walks, newest first
// and oldest first, with a cursor and a time range: none may sort (but an
// endpoint's open deliveries, its backlog) or scan a table.
func TestSearchPlans(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "plan.db"), Options{CheckpointInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	failed := []kinehook.DeliveryStatus{kinehook.DeliveryFailed}
	open := []kinehook.DeliveryStatus{kinehook.DeliveryPending, kinehook.DeliveryRetrying}
	tests := []struct {
		name  string
		f     kinehook.DeliveryFilter
		want  string
		sorts bool
	}{
		{"project", kinehook.DeliveryFilter{}, "e USING INDEX events_project (project_id=?", false},
		{"event", kinehook.DeliveryFilter{EventID: "msg", EndpointID: "ep"}, "d USING INDEX deliveries_event (event_seq=?)", false},
		{"endpoint", kinehook.DeliveryFilter{EndpointID: "ep", Statuses: []kinehook.DeliveryStatus{kinehook.DeliverySucceeded, kinehook.DeliveryFailed}, EventType: "video.ready"},
			"d USING INDEX deliveries_endpoint_seq (endpoint_id=?", false},
		{"endpoint failed", kinehook.DeliveryFilter{EndpointID: "ep", Statuses: failed}, "d USING INDEX deliveries_failed (endpoint_id=?", false},
		{"endpoint open", kinehook.DeliveryFilter{EndpointID: "ep", Statuses: open[:1]}, "d USING INDEX deliveries_open", false},
		{"resource", kinehook.DeliveryFilter{ResourceKey: "video-1", EndpointID: "ep"}, "e USING INDEX events_project_resource (project_id=? AND resource_key=?", false},
		{"failed", kinehook.DeliveryFilter{Statuses: failed}, "d USING INDEX deliveries_failed_project (project_id=?", false},
		// Sorted only within one event's deliveries (partition comes
		// between event_seq and id in the index).
		{"open", kinehook.DeliveryFilter{Statuses: open}, "d USING INDEX deliveries_open", false},
		{"type", kinehook.DeliveryFilter{EventType: "video.ready"}, "e USING INDEX events_project_type (project_id=? AND type=?", false},
	}
	for _, tt := range tests {
		for _, oldest := range []bool{false, true} {
			for _, paged := range []bool{false, true} {
				f := tt.f
				f.Oldest = oldest
				if paged {
					f.Cursor = kinehook.EncodeDeliveryCursor(42, "dlv_x", oldest)
					f.Since, f.Until = time.Unix(1, 0), time.Unix(2, 0)
				}
				q, args, err := searchQuery("prj", &f, 10, 3, 99)
				if err != nil {
					t.Fatal(err)
				}
				plan := explain(t, s, q, args)
				if !strings.Contains(plan, tt.want) {
					t.Errorf("%s (oldest %v, paged %v): plan lacks %q:\n%s", tt.name, oldest, paged, tt.want, plan)
				}
				if !tt.sorts && strings.Contains(strings.ReplaceAll(plan, "USE TEMP B-TREE FOR LAST TERM OF ORDER BY", ""), "USE TEMP B-TREE") {
					t.Errorf("%s (oldest %v, paged %v): plan sorts:\n%s", tt.name, oldest, paged, plan)
				}
				if strings.Contains(plan, "SCAN d") || strings.Contains(plan, "SCAN e") {
					t.Errorf("%s (oldest %v, paged %v): plan scans a table:\n%s", tt.name, oldest, paged, plan)
				}
			}
		}
	}
}

func explain(t *testing.T, s *Store, query string, args []any) string {
	t.Helper()
	rows, err := s.r.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		t.Fatalf("explain %s: %v", query, err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		b.WriteString(detail + "\n")
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
