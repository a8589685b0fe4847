package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kinehook/kinehook"
)

// searchQuery builds the query of one page: up to limit+1 rows in the
// filter's order, after the cursor, within the Seq range (lo, hi) that the
// time bounds allow (0: no bound).
func searchQuery(projectID string, f *kinehook.DeliveryFilter, limit int, lo, hi int64) (string, []any, error) {
	where := []string{"project_id = $1"}
	args := []any{projectID}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if len(f.Statuses) > 0 {
		// Constants, not a parameter: the planner then proves the partial
		// indexes' WHERE from them and estimates the rows right (a
		// parameter array made it read and sort an endpoint's whole backlog).
		ss := make([]string, len(f.Statuses))
		for i, st := range f.Statuses {
			if !st.Known() {
				return "", nil, &kinehook.Error{Code: kinehook.EINVALID, Field: "status", Message: fmt.Sprintf("unknown delivery status %q", st)}
			}
			ss[i] = "'" + string(st) + "'"
		}
		where = append(where, "status IN ("+strings.Join(ss, ", ")+")")
	}
	if f.EndpointID != "" {
		where = append(where, "endpoint_id = "+arg(f.EndpointID))
	}
	if f.EventID != "" {
		where = append(where, "event_id = "+arg(f.EventID))
	}
	if f.EventType != "" {
		where = append(where, "event_type = "+arg(string(f.EventType)))
	}
	if f.ResourceKey != "" {
		// The resource's events (events_project_resource) name the
		// deliveries to read: a rare resource is found without walking
		// the project's deliveries.
		r := arg([]byte(f.ResourceKey))
		where = append(where, "resource_key = "+r,
			"seq IN (SELECT e.seq FROM events e WHERE e.project_id = $1 AND e.resource_key = "+r+")")
	}
	if !f.Since.IsZero() {
		where = append(where, "created_at >= "+arg(f.Since.UTC()))
	}
	if !f.Until.IsZero() {
		where = append(where, "created_at < "+arg(f.Until.UTC()))
	}
	if lo > 0 {
		where = append(where, "seq > "+arg(lo))
	}
	if hi > 0 {
		where = append(where, "seq < "+arg(hi))
	}
	dir, cmp := "DESC", "<"
	if f.Oldest {
		dir, cmp = "ASC", ">"
	}
	if f.Cursor != "" {
		seq, id, err := kinehook.DecodeDeliveryCursor(f.Cursor, f.Oldest)
		if err != nil {
			return "", nil, err
		}
		where = append(where, "(seq, id) "+cmp+" ("+arg(seq)+", "+arg(id)+")")
	}
	page := `SELECT * FROM deliveries WHERE ` + strings.Join(where, " AND ") +
		` ORDER BY seq ` + dir + `, id ` + dir + ` LIMIT ` + arg(limit+1)
	// The page's deliveries with their events' trace context, as every
	// read of deliveries has them.
	q := `SELECT ` + tracedCols + ` FROM (` + page + `) d ` + tracedJoin + `ORDER BY d.seq ` + dir + `, d.id ` + dir
	return q, args, nil
}

// SearchDeliveries pages a project's deliveries newest first (oldest first
// with f.Oldest) by (Seq, id). A time bound becomes a Seq range too (see
// kinehook.SeqAfter), so that a search of the last hour of a long history
// reads only that hour.
func (s *Store) SearchDeliveries(ctx context.Context, projectID string, f kinehook.DeliveryFilter) ([]*kinehook.Delivery, string, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = defaultListLimit
	}
	limit = min(limit, maxListLimit)
	lo, hi, err := s.seqRange(ctx, f.Since, f.Until)
	if err != nil {
		return nil, "", err
	}
	q, args, err := searchQuery(projectID, &f, limit, lo, hi)
	if err != nil {
		return nil, "", err
	}
	// Planned for these values each time: how selective a filter is
	// decides the index, and a generic plan would fix one for all.
	out, err := s.queryTraced(ctx, nil, "search deliveries", q, append([]any{customPlan}, args...)...)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = kinehook.EncodeDeliveryCursor(out[limit-1].Seq, out[limit-1].ID, f.Oldest)
	}
	return out, next, nil
}

// seqSearch is a binary search over the events' Seq, in one statement: it
// narrows (lo, hi) until no event lies between them, lo being 0 or the Seq
// of an event created before $1 and hi the last Seq + 1 or the Seq of an
// event created at or after $1. Each step is two rows: phase 0 probes the
// first event at or after the middle (ps), phase 1 moves lo or hi to it.
const seqSearch = `WITH RECURSIVE bs(lo, hi, ps, phase) AS (
	SELECT 0::bigint, (SELECT coalesce(max(seq), 0) + 1 FROM events), NULL::bigint, 0
	UNION ALL
	SELECT
		CASE WHEN phase = 0 THEN lo
			WHEN ps IS NOT NULL AND ps < hi AND (SELECT created_at FROM events WHERE seq = ps) < $1 THEN ps
			ELSE lo END,
		CASE WHEN phase = 0 THEN hi
			WHEN ps IS NULL OR ps >= hi THEN lo + (hi - lo) / 2
			WHEN (SELECT created_at FROM events WHERE seq = ps) < $1 THEN hi
			ELSE ps END,
		CASE WHEN phase = 0 THEN (SELECT seq FROM events WHERE seq >= lo + (hi - lo) / 2 ORDER BY seq LIMIT 1) END,
		1 - phase
	FROM bs WHERE hi - lo > 1)
SELECT lo, hi FROM bs WHERE hi - lo <= 1`

// seqRange turns the time bounds into the Seq range (lo, hi) they allow (0
// for a bound not given), through kinehook.StampSkew: every event created
// at or after since comes after an event created before since-StampSkew,
// and every event created before until comes before one created at or
// after until+StampSkew.
func (s *Store) seqRange(ctx context.Context, since, until time.Time) (lo, hi int64, err error) {
	search := func(t time.Time) (lo, hi int64, err error) {
		if err := s.pool.QueryRow(ctx, seqSearch, t.UTC()).Scan(&lo, &hi); err != nil {
			return 0, 0, wrap("search deliveries: seq of a time", err)
		}
		return lo, hi, nil
	}
	if !since.IsZero() {
		if lo, _, err = search(since.Add(-kinehook.StampSkew)); err != nil {
			return 0, 0, err
		}
	}
	if !until.IsZero() {
		if _, hi, err = search(until.Add(kinehook.StampSkew)); err != nil {
			return 0, 0, err
		}
	}
	return lo, hi, nil
}
