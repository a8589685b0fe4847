package sqlite

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/kinehook/kinehook"
)

// searchPlan is how SearchDeliveries reads: the FROM clause that names the
// index it walks (INDEXED BY: a plan SQLite cannot follow is an error, not a
// silent table scan), the column holding the Seq it walks in, and the
// status condition written exactly as the partial index's WHERE.
type searchPlan struct {
	from   string
	seq    string
	status string
}

// The plans, from the most selective filter down (see planSearch).
var (
	// The event's deliveries: one event, a handful of rows.
	planEvent = searchPlan{from: `events e CROSS JOIN deliveries d INDEXED BY deliveries_event ON d.event_seq = e.seq`, seq: "e.seq"}
	// An endpoint's failed deliveries (written only when one fails).
	planEndpointFailed = searchPlan{from: `deliveries d INDEXED BY deliveries_failed JOIN events e ON e.seq = d.event_seq`,
		seq: "d.event_seq", status: `d.status = 'failed'`}
	// A project's or an endpoint's open deliveries: the open set, newest
	// first (the backlog of every endpoint, usually short).
	planOpen = searchPlan{from: `deliveries d INDEXED BY deliveries_open JOIN events e ON e.seq = d.event_seq`,
		seq: "d.event_seq", status: `d.status IN ('pending', 'retrying')`}
	// A resource's events, newest first, and their deliveries.
	planResource = searchPlan{from: `events e INDEXED BY events_project_resource CROSS JOIN deliveries d INDEXED BY deliveries_event ON d.event_seq = e.seq`, seq: "e.seq"}
	// Every delivery of an endpoint, newest first.
	planEndpoint = searchPlan{from: `deliveries d INDEXED BY deliveries_endpoint_seq JOIN events e ON e.seq = d.event_seq`, seq: "d.event_seq"}
	// A project's failed deliveries.
	planFailed = searchPlan{from: `deliveries d INDEXED BY deliveries_failed_project JOIN events e ON e.seq = d.event_seq`,
		seq: "d.event_seq", status: `d.status = 'failed'`}
	// A project's events of one type, newest first, and their deliveries.
	planType = searchPlan{from: `events e INDEXED BY events_project_type CROSS JOIN deliveries d INDEXED BY deliveries_event ON d.event_seq = e.seq`, seq: "e.seq"}
	// A project's events, newest first, and their deliveries.
	planProject = searchPlan{from: `events e INDEXED BY events_project CROSS JOIN deliveries d INDEXED BY deliveries_event ON d.event_seq = e.seq`, seq: "e.seq"}
)

// planSearch picks the index that f narrows most: an event, an endpoint's
// failed or open deliveries, a resource, an endpoint, the project's failed
// or open deliveries, a type, the project.
func planSearch(f *kinehook.DeliveryFilter) searchPlan {
	failed := f.OnlyStatuses(kinehook.DeliveryFailed)
	open := f.OnlyStatuses(kinehook.DeliveryPending, kinehook.DeliveryRetrying)
	switch {
	case f.EventID != "":
		return planEvent
	case f.EndpointID != "" && failed:
		return planEndpointFailed
	case f.EndpointID != "" && open:
		return planOpen
	case f.ResourceKey != "":
		return planResource
	case f.EndpointID != "":
		return planEndpoint
	case failed:
		return planFailed
	case open:
		return planOpen
	case f.EventType != "":
		return planType
	}
	return planProject
}

// searchQuery builds the query of one page: up to limit+1 rows in the
// filter's order, after the cursor, within the Seq range [lo+1, hi-1] that
// the time bounds allow (hi 0: none).
func searchQuery(projectID string, f *kinehook.DeliveryFilter, limit int, lo, hi int64) (string, []any, error) {
	p := planSearch(f)
	var w strings.Builder
	var args []any
	and := func(cond string, a ...any) {
		w.WriteString(" AND ")
		w.WriteString(cond)
		args = append(args, a...)
	}
	w.WriteString(`d.project_id = ?`)
	args = append(args, projectID)
	if strings.HasPrefix(p.from, "events e") {
		and(`e.project_id = ?`, projectID) // the events index's first column
	}
	if p.status != "" {
		and(p.status)
	}
	if len(f.Statuses) > 0 {
		and(`d.status IN (`+placeholders(len(f.Statuses))+`)`, statusArgs(f.Statuses)...)
	}
	if f.EventID != "" {
		and(`e.id = ?`, f.EventID)
	}
	if f.EndpointID != "" {
		and(`d.endpoint_id = ?`, f.EndpointID)
	}
	if f.EventType != "" {
		and(`e.type = ?`, string(f.EventType))
	}
	if f.ResourceKey != "" {
		and(`e.resource_key = ? AND e.resource_key <> ''`, f.ResourceKey) // the partial index's WHERE
	}
	if !f.Since.IsZero() {
		and(`+d.created_at >= ?`, micros(f.Since))
	}
	if !f.Until.IsZero() {
		and(`+d.created_at < ?`, micros(f.Until))
	}
	if lo > 0 {
		and(p.seq+` > ?`, lo)
	}
	if hi > 0 {
		and(p.seq+` < ?`, hi)
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
		and(p.seq+` `+cmp+`= ? AND (`+p.seq+` `+cmp+` ? OR d.id `+cmp+` ?)`, seq, seq, id)
	}
	q := deliverySelectFrom + p.from + ` WHERE ` + w.String() + ` ORDER BY ` + p.seq + ` ` + dir + `, d.id ` + dir + ` LIMIT ?`
	return q, append(args, limit+1), nil
}

func statusArgs(ss []kinehook.DeliveryStatus) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = string(s)
	}
	return out
}

// SearchDeliveries pages a project's deliveries newest first (oldest first
// with f.Oldest) by (Seq, id). A time bound becomes a Seq range too (see
// kinehook.SeqAfter), so that a search of the last hour of a long history
// reads only that hour.
func (s *Store) SearchDeliveries(ctx context.Context, projectID string, f kinehook.DeliveryFilter) ([]*kinehook.Delivery, string, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultListLimit
	}
	limit = min(limit, MaxListLimit)
	lo, hi, err := s.seqRange(ctx, f.Since, f.Until)
	if err != nil {
		return nil, "", err
	}
	q, args, err := searchQuery(projectID, &f, limit, lo, hi)
	if err != nil {
		return nil, "", err
	}
	out, err := queryDeliveriesSQL(ctx, s.r, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("sqlite: search deliveries: %w", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = kinehook.EncodeDeliveryCursor(out[limit-1].Seq, out[limit-1].ID, f.Oldest)
	}
	if out == nil {
		out = []*kinehook.Delivery{}
	}
	return out, next, nil
}

// seqSearch is a binary search over the events' Seq, in one statement: it
// narrows (lo, hi) until no event lies between them, lo being 0 or the Seq
// of an event created before ?1 and hi the last Seq + 1 or the Seq of an
// event created at or after ?1. Each step is two rows: phase 0 probes the
// first event at or after the middle (ps), phase 1 moves lo or hi to it.
const seqSearch = `WITH RECURSIVE bs(lo, hi, ps, phase) AS (
	SELECT 0, (SELECT coalesce(max(seq), 0) + 1 FROM events), NULL, 0
	UNION ALL
	SELECT
		CASE WHEN phase = 0 THEN lo
			WHEN ps IS NOT NULL AND ps < hi AND (SELECT created_at FROM events WHERE seq = ps) < ?1 THEN ps
			ELSE lo END,
		CASE WHEN phase = 0 THEN hi
			WHEN ps IS NULL OR ps >= hi THEN lo + (hi - lo) / 2
			WHEN (SELECT created_at FROM events WHERE seq = ps) < ?1 THEN hi
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
		if err := s.r.QueryRowContext(ctx, seqSearch, micros(t)).Scan(&lo, &hi); err != nil {
			return 0, 0, fmt.Errorf("sqlite: search deliveries: seq of %s: %w", t.Format(time.RFC3339), err)
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
