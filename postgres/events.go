package postgres

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kinehook/kinehook"
)

// idempotencyWindow is how long an idempotency key maps to its first event.
const idempotencyWindow = 24 * time.Hour

type projKey struct{ project, key string }

// IngestEvents stores events and their deliveries in one transaction. It
// takes two round trips to PostgreSQL for a whole batch: the first claims the
// idempotency keys, allocates the Seq values and reads the projects' enabled
// endpoints; the second inserts the events and deliveries (multi-row INSERT
// ... SELECT FROM unnest) and commits. While a Coordinator of this store
// runs and other instances are live (read in the first trip), the second
// trip also announces the new deliveries (NOTIFY, delivered only with the
// commit: results are Announced), and IngestEvents returns only after a
// Coordinator.Sync: every delivery announced by another instance before
// this commit is queued before the caller queues these (acceptance order
// across instances). A single instance skips both. When the order cannot be
// confirmed (the LISTEN connection is down), results are Deferred and the
// coordinator reloads its partitions from the store.
func (s *Store) IngestEvents(ctx context.Context, events []*kinehook.Event) ([]kinehook.IngestResult, error) {
	if len(events) == 0 {
		return []kinehook.IngestResult{}, nil
	}
	t := now()
	evs := make([]*kinehook.Event, len(events))
	// dupOf[i] >= 0: event i repeats the idempotency key of event dupOf[i]
	// in the same batch.
	dupOf := make([]int, len(events))
	first := map[projKey]int{}
	var keyed []int
	projects := map[string]bool{}
	for i, in := range events {
		ev := *in
		if ev.ID == "" {
			ev.ID = kinehook.NewID(kinehook.PrefixEvent)
		}
		if ev.CreatedAt.IsZero() {
			ev.CreatedAt = t
		}
		ev.CreatedAt = ev.CreatedAt.UTC().Truncate(time.Microsecond)
		evs[i] = &ev
		dupOf[i] = -1
		projects[ev.ProjectID] = true
		if ev.IdempotencyKey != "" {
			k := projKey{ev.ProjectID, ev.IdempotencyKey}
			if j, ok := first[k]; ok {
				dupOf[i] = j
				continue
			}
			first[k] = i
			keyed = append(keyed, i)
		}
	}
	// Lock idempotency keys in a fixed order so concurrent batches cannot deadlock.
	slices.SortFunc(keyed, func(a, b int) int {
		if c := strings.Compare(evs[a].ProjectID, evs[b].ProjectID); c != 0 {
			return c
		}
		return strings.Compare(evs[a].IdempotencyKey, evs[b].IdempotencyKey)
	})

	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, wrap("ingest: begin", err)
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck // no-op after Commit

	// Round trip 1.
	var b pgx.Batch
	b.Queue(`SELECT id, project_id, event_types FROM endpoints WHERE project_id = ANY($1) AND NOT disabled ORDER BY created_at, id`,
		mapKeys(projects))
	b.Queue(`SELECT nextval(pg_get_serial_sequence('events', 'seq')) FROM generate_series(1, $1)`, len(evs))
	if len(keyed) > 0 {
		pids, keys, eids, ats := make([]string, len(keyed)), make([]string, len(keyed)), make([]string, len(keyed)), make([]time.Time, len(keyed))
		for n, i := range keyed {
			pids[n], keys[n], eids[n], ats[n] = evs[i].ProjectID, evs[i].IdempotencyKey, evs[i].ID, evs[i].CreatedAt
		}
		// A key is claimed when it is new or its event is older than the
		// window; otherwise the row is left alone (and not returned).
		b.Queue(`INSERT INTO idempotency_keys (project_id, key, event_id, created_at)
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[])
			ON CONFLICT (project_id, key) DO UPDATE SET event_id = excluded.event_id, created_at = excluded.created_at
			WHERE idempotency_keys.created_at <= excluded.created_at - interval '24 hours'
			RETURNING project_id, key`, pids, keys, eids, ats)
	}
	coord := s.activeCoordinator()
	if coord != nil {
		b.Queue(`SELECT EXISTS (SELECT 1 FROM instances WHERE id <> $1 AND heartbeat_at > now() - $2 * interval '1 millisecond')`,
			coord.id, coord.ttl.Milliseconds())
	}
	br := tx.SendBatch(ctx, &b)
	type epFilter struct {
		id    string
		match kinehook.Endpoint
	}
	byProject := map[string][]epFilter{}
	rows, err := br.Query()
	if err != nil {
		br.Close()
		return nil, wrap("ingest: read endpoints", err)
	}
	for rows.Next() {
		var id, pid string
		var types []string
		if err := rows.Scan(&id, &pid, &types); err != nil {
			rows.Close()
			br.Close()
			return nil, wrap("ingest: read endpoints", err)
		}
		byProject[pid] = append(byProject[pid], epFilter{id: id, match: kinehook.Endpoint{EventTypes: types}})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		br.Close()
		return nil, wrap("ingest: read endpoints", err)
	}
	rows, err = br.Query()
	if err != nil {
		br.Close()
		return nil, wrap("ingest: allocate seq", err)
	}
	seqs, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		br.Close()
		return nil, wrap("ingest: allocate seq", err)
	}
	slices.Sort(seqs)
	claimed := map[projKey]bool{}
	if len(keyed) > 0 {
		rows, err = br.Query()
		if err != nil {
			br.Close()
			return nil, wrap("ingest: idempotency keys", err)
		}
		for rows.Next() {
			var k projKey
			if err := rows.Scan(&k.project, &k.key); err != nil {
				rows.Close()
				br.Close()
				return nil, wrap("ingest: idempotency keys", err)
			}
			claimed[k] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			br.Close()
			return nil, wrap("ingest: idempotency keys", err)
		}
	}
	others := false
	if coord != nil {
		if err := br.QueryRow().Scan(&others); err != nil {
			br.Close()
			return nil, wrap("ingest: live instances", err)
		}
	}
	if err := br.Close(); err != nil {
		return nil, wrap("ingest: batch", err)
	}
	if len(seqs) != len(evs) {
		return nil, fmt.Errorf("postgres: ingest: allocated %d seq values for %d events", len(seqs), len(evs))
	}

	results := make([]kinehook.IngestResult, len(evs))
	var reopen []string // open deliveries of events repeated by idempotency key
	// Keys seen before: the earlier events come back as duplicates.
	var stale []int
	for _, i := range keyed {
		if !claimed[projKey{evs[i].ProjectID, evs[i].IdempotencyKey}] {
			stale = append(stale, i)
		}
	}
	if len(stale) > 0 {
		earlier, err := s.eventsByKey(ctx, tx, evs, stale)
		if err != nil {
			return nil, err
		}
		var earlierIDs []string
		for _, i := range stale {
			e := earlier[projKey{evs[i].ProjectID, evs[i].IdempotencyKey}]
			if e == nil {
				return nil, fmt.Errorf("postgres: ingest: idempotency key %q of project %s names a missing event", evs[i].IdempotencyKey, evs[i].ProjectID)
			}
			results[i] = kinehook.IngestResult{Event: e, Duplicate: true}
			earlierIDs = append(earlierIDs, e.ID)
		}
		if s.activeCoordinator() != nil {
			// A retry after a failure: the instance that stored the event may
			// have died before announcing its deliveries. Wake those still open.
			rows, err := tx.Query(ctx, `SELECT id FROM deliveries WHERE event_id = ANY($1) AND status NOT IN ('succeeded', 'failed') ORDER BY seq`, customPlan, earlierIDs)
			if err == nil {
				reopen, err = pgx.CollectRows(rows, pgx.RowTo[string])
			}
			if err != nil {
				return nil, wrap("ingest: open deliveries of repeated events", err)
			}
		}
	}

	// Build the rows of the new events and their deliveries.
	var (
		eIDs, ePIDs, eTypes, eKeys []string
		eRes, ePay                 [][]byte
		eSeqs                      []int64
		eAts                       []time.Time
		dIDs, dPIDs, dEIDs, dEPs   []string
		dTypes                     []string
		dRes                       [][]byte
		dSeqs                      []int64
		dParts                     []int16
		dAts                       []time.Time
	)
	for i, ev := range evs {
		if dupOf[i] >= 0 || results[i].Event != nil {
			continue
		}
		ev.Seq = seqs[i]
		eIDs, ePIDs, eTypes, eKeys = append(eIDs, ev.ID), append(ePIDs, ev.ProjectID), append(eTypes, string(ev.Type)), append(eKeys, ev.IdempotencyKey)
		eRes, ePay, eSeqs, eAts = append(eRes, []byte(ev.ResourceKey)), append(ePay, nonNil(ev.Payload)), append(eSeqs, ev.Seq), append(eAts, ev.CreatedAt)
		var ds []*kinehook.Delivery
		for _, ep := range byProject[ev.ProjectID] {
			if !ep.match.Matches(ev.Type) {
				continue
			}
			d := &kinehook.Delivery{
				ID:            kinehook.NewID(kinehook.PrefixDelivery),
				ProjectID:     ev.ProjectID,
				EventID:       ev.ID,
				EndpointID:    ep.id,
				EventType:     ev.Type,
				ResourceKey:   ev.ResourceKey,
				Seq:           ev.Seq,
				Partition:     kinehook.PartitionOf(ep.id, ev.ResourceKey),
				Status:        kinehook.DeliveryPending,
				NextAttemptAt: t,
				CreatedAt:     ev.CreatedAt,
				UpdatedAt:     t,
			}
			ds = append(ds, d)
			dIDs, dPIDs, dEIDs, dEPs = append(dIDs, d.ID), append(dPIDs, d.ProjectID), append(dEIDs, d.EventID), append(dEPs, d.EndpointID)
			dTypes, dRes, dSeqs = append(dTypes, string(d.EventType)), append(dRes, []byte(d.ResourceKey)), append(dSeqs, d.Seq)
			dParts, dAts = append(dParts, int16(d.Partition)), append(dAts, d.CreatedAt)
		}
		results[i] = kinehook.IngestResult{Event: ev, Deliveries: ds}
	}
	for i := range evs {
		if j := dupOf[i]; j >= 0 {
			results[i] = kinehook.IngestResult{Event: results[j].Event, Duplicate: true}
		}
	}

	// Round trip 2 (the commit follows in the same flight as the inserts'
	// results are read).
	if len(eIDs) > 0 {
		var b2 pgx.Batch
		b2.Queue(`INSERT INTO events (seq, id, project_id, type, resource_key, payload, idempotency_key, created_at)
			SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bytea[], $6::bytea[], $7::text[], $8::timestamptz[])`,
			eSeqs, eIDs, ePIDs, eTypes, eRes, ePay, eKeys, eAts)
		if len(dIDs) > 0 {
			b2.Queue(`INSERT INTO deliveries (id, project_id, event_id, endpoint_id, event_type, resource_key, seq, partition,
				status, attempts, next_attempt_at, last_status_code, last_error, created_at, updated_at)
				SELECT id, pid, eid, ep, typ, res, seq, part, 'pending', 0, $9, 0, '', at, $9
				FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bytea[], $7::bigint[], $8::smallint[], $10::timestamptz[])
					AS u(id, pid, eid, ep, typ, res, seq, part, at)`,
				dIDs, dPIDs, dEIDs, dEPs, dTypes, dRes, dSeqs, dParts, t, dAts)
		}
		announce := coord != nil && others && len(dIDs) > 0
		if announce {
			// In the transaction: the owners hear of these deliveries if
			// and only if they are committed, even if this process dies
			// right after the commit.
			b2.Queue(`SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p`, channelDeliveries, coord.deliveryPayloads(dIDs, dParts))
		}
		if err := tx.SendBatch(ctx, &b2).Close(); err != nil {
			return nil, wrap("ingest: insert events and deliveries", err)
		}
		if announce {
			for i := range results {
				if !results[i].Duplicate {
					results[i].Announced = true
				}
			}
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, wrap("ingest: commit", err)
	}
	if coord != nil && len(reopen) > 0 {
		coord.wakeOpen(ctx, reopen)
	}
	if coord != nil && len(dIDs) > 0 && !coord.afterIngest(ctx, others) {
		// Older deliveries of these resources may not be queued yet: the
		// reload queues these after them, in acceptance order.
		for i := range results {
			if !results[i].Duplicate {
				results[i].Deferred = true
			}
		}
		coord.reloadSoon()
	}
	return results, nil
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func mapKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// eventsByKey reads the events that the idempotency keys of evs[idx] name.
func (s *Store) eventsByKey(ctx context.Context, tx pgx.Tx, evs []*kinehook.Event, idx []int) (map[projKey]*kinehook.Event, error) {
	pids, keys := make([]string, len(idx)), make([]string, len(idx))
	for n, i := range idx {
		pids[n], keys[n] = evs[i].ProjectID, evs[i].IdempotencyKey
	}
	rows, err := tx.Query(ctx, `SELECT k.key, `+eventColsE+` FROM idempotency_keys k JOIN events e ON e.id = k.event_id
		WHERE k.key = ANY($2) AND (k.project_id, k.key) IN (SELECT * FROM unnest($1::text[], $2::text[]))`, pids, keys)
	if err != nil {
		return nil, wrap("ingest: read earlier events", err)
	}
	defer rows.Close()
	out := map[projKey]*kinehook.Event{}
	for rows.Next() {
		var key string
		e, err := scanEvent(rows, &key)
		if err != nil {
			return nil, wrap("ingest: read earlier events", err)
		}
		out[projKey{e.ProjectID, key}] = e
	}
	return out, wrap("ingest: read earlier events", rows.Err())
}

const eventColsE = `e.seq, e.id, e.project_id, e.type, e.resource_key, e.payload, e.idempotency_key, e.created_at`

func scanEvent(row pgx.Row, before ...any) (*kinehook.Event, error) {
	var (
		e   kinehook.Event
		typ string
		res []byte
	)
	dest := append(before, &e.Seq, &e.ID, &e.ProjectID, &typ, &res, &e.Payload, &e.IdempotencyKey, &e.CreatedAt)
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	e.Type = kinehook.EventType(typ)
	e.ResourceKey = string(res)
	e.CreatedAt = e.CreatedAt.UTC()
	return &e, nil
}

// GetEvent returns an event of the project, or ErrNotFound.
func (s *Store) GetEvent(ctx context.Context, projectID, id string) (*kinehook.Event, error) {
	e, err := scanEvent(s.pool.QueryRow(ctx, `SELECT `+eventColsE+` FROM events e WHERE e.id = $1 AND e.project_id = $2`, id, projectID))
	return e, wrap("get event", err)
}

// Page sizes of ListEvents.
const (
	defaultListLimit = 50
	maxListLimit     = 1000
)

// ListEvents pages a project's events newest first. The cursor is the Seq of
// the last event returned, so events accepted while paging never shift pages.
func (s *Store) ListEvents(ctx context.Context, projectID string, f kinehook.EventFilter) ([]*kinehook.Event, string, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = defaultListLimit
	}
	limit = min(limit, maxListLimit)
	where := []string{"e.project_id = $1"}
	args := []any{projectID}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.Cursor != "" {
		seq, err := strconv.ParseInt(f.Cursor, 10, 64)
		if err != nil || seq <= 0 {
			return nil, "", &kinehook.Error{Code: kinehook.EINVALID, Field: "cursor", Message: "malformed cursor"}
		}
		where = append(where, "e.seq < "+arg(seq))
	}
	if f.Type != "" {
		where = append(where, "e.type = "+arg(string(f.Type)))
	}
	if f.ResourceKey != "" {
		where = append(where, "e.resource_key = "+arg([]byte(f.ResourceKey)))
	}
	if !f.Since.IsZero() {
		where = append(where, "e.created_at >= "+arg(f.Since.UTC()))
	}
	if !f.Until.IsZero() {
		where = append(where, "e.created_at < "+arg(f.Until.UTC()))
	}
	if f.DeliveryStatus != "" {
		where = append(where, "EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND d.status = "+arg(string(f.DeliveryStatus))+")")
	}
	q := `SELECT ` + eventColsE + ` FROM events e WHERE ` + strings.Join(where, " AND ") +
		` ORDER BY e.seq DESC LIMIT ` + arg(limit+1)
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, "", wrap("list events", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*kinehook.Event, error) { return scanEvent(r) })
	if err != nil {
		return nil, "", wrap("list events", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = strconv.FormatInt(out[limit-1].Seq, 10)
	}
	return out, next, nil
}

// EventPayloads returns the payloads of the given events, keyed by id.
func (s *Store) EventPayloads(ctx context.Context, eventIDs []string) (map[string][]byte, error) {
	out := make(map[string][]byte, len(eventIDs))
	if len(eventIDs) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT id, payload FROM events WHERE id = ANY($1)`, customPlan, eventIDs)
	if err != nil {
		return nil, wrap("event payloads", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var p []byte
		if err := rows.Scan(&id, &p); err != nil {
			return nil, wrap("event payloads", err)
		}
		out[id] = p
	}
	return out, wrap("event payloads", rows.Err())
}
