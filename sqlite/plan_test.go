package sqlite

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
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
			[]string{"deliveries USING INDEX deliveries_open_endpoint (endpoint_id=?)"}, false},
		{"failed deliveries of an endpoint", deliverySelect + failedDeliveriesWhere, []any{"ep", 0, "prj"},
			[]string{"d USING INDEX deliveries_failed (endpoint_id=? AND created_at>?)"}, true},
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
