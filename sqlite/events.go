package sqlite

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kinehook/kinehook"
)

// IdempotencyWindow is how long an idempotency key maps to its first event.
const IdempotencyWindow = 24 * time.Hour

// Paging limits of ListEvents.
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
)

type endpointFilter struct {
	id string
	ep kinehook.Endpoint // only EventTypes is set; used for Matches
}

type idemKey struct{ project, key string }

// IngestEvents stores events and their deliveries in one transaction (one
// commit for the whole batch). Each project's enabled endpoints are read
// once per call; events and deliveries are written with multi-row INSERTs
// (see bulkInsert), which is most of the hot path's speed on SQLite.
func (s *Store) IngestEvents(ctx context.Context, events []*kinehook.Event) ([]kinehook.IngestResult, error) {
	if len(events) == 0 {
		return nil, nil
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("sqlite: ingest: begin: %w", err)
	}
	defer rollback(tx)
	b := ingestBatch{results: make([]kinehook.IngestResult, len(events)), fresh: make([]int, 0, len(events))}
	if err := s.claimKeys(ctx, tx, &b, events, now); err != nil {
		return nil, err
	}
	if err := s.inboxRetries(ctx, tx, &b); err != nil {
		return nil, err
	}
	args, err := s.insertEvents(ctx, tx, &b)
	if err != nil {
		return nil, err
	}
	if err := s.applyState(ctx, tx, &b); err != nil {
		return nil, err
	}
	if err := s.insertDeliveries(ctx, tx, &b, args[:0], now); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("sqlite: ingest: commit: %w", err)
	}
	return b.results, nil
}

// ingestBatch is one IngestEvents call on its way: the results in input
// order, the events to insert (fresh) and the in-batch repeats of an
// idempotency key (dupOf: index -> the index holding its event).
type ingestBatch struct {
	results []kinehook.IngestResult
	fresh   []int
	dupOf   map[int]int
}

// claimKeys gives each event its id and time, and settles its idempotency
// key: an event whose key was seen before (earlier, or in this batch)
// becomes a duplicate of the first one; the others are fresh.
func (s *Store) claimKeys(ctx context.Context, tx *sql.Tx, b *ingestBatch, events []*kinehook.Event, now time.Time) error {
	owner := map[idemKey]int{}
	for i, in := range events {
		ev := *in
		if ev.ID == "" {
			ev.ID = kinehook.NewID(kinehook.PrefixEvent)
		}
		if ev.CreatedAt.IsZero() {
			ev.CreatedAt = now
		} else {
			ev.CreatedAt = ev.CreatedAt.UTC().Truncate(time.Microsecond)
		}
		b.results[i].Event = &ev
		if ev.IdempotencyKey != "" {
			k := idemKey{ev.ProjectID, ev.IdempotencyKey}
			if j, ok := owner[k]; ok {
				if b.dupOf == nil {
					b.dupOf = map[int]int{}
				}
				b.dupOf[i] = j
				continue
			}
			owner[k] = i
			first, err := s.idempotentHit(ctx, tx, &ev)
			if err != nil {
				return err
			}
			if first != nil {
				b.results[i] = kinehook.IngestResult{Event: first, Duplicate: true}
				continue
			}
		}
		b.fresh = append(b.fresh, i)
	}
	return nil
}

// insertEvents inserts the fresh events and their idempotency keys. A
// multi-row INSERT assigns consecutive seqs (one writer, AUTOINCREMENT, no
// explicit seq), so the last rowid gives all. It returns its argument
// buffer for the deliveries to reuse.
func (s *Store) insertEvents(ctx context.Context, tx *sql.Tx, b *ingestBatch) ([]any, error) {
	// A batch without trace context writes the columns it has (the others
	// take their default): tracing costs nothing to those who do not use it.
	ins := &eventInsert
	for _, i := range b.fresh {
		if b.results[i].Event.Trace != nil {
			ins = &eventInsertTraced
			break
		}
	}
	args := make([]any, 0, len(b.fresh)*ins.cols)
	for _, i := range b.fresh {
		ev := b.results[i].Event
		args = append(args, ev.ID, ev.ProjectID, string(ev.Type), ev.ResourceKey, []byte(ev.Payload), ev.IdempotencyKey, micros(ev.CreatedAt), ev.SourceID)
		if ins == &eventInsertTraced {
			args = append(args, ev.Trace.TraceParent(), ev.Trace.TraceState())
		}
	}
	_, err := s.bulk(ctx, tx, ins, args, func(row, n int, last int64) {
		for k := range n {
			b.results[b.fresh[row+k]].Event.Seq = last - int64(n-1-k)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: ingest: insert events: %w", err)
	}
	for _, i := range b.fresh {
		if ev := b.results[i].Event; ev.IdempotencyKey != "" {
			if _, err := tx.StmtContext(ctx, s.insIdem).ExecContext(ctx, ev.ProjectID, ev.IdempotencyKey, ev.Seq, micros(ev.CreatedAt)); err != nil {
				return nil, fmt.Errorf("sqlite: ingest: idempotency key: %w", err)
			}
		}
	}
	for i, j := range b.dupOf {
		b.results[i] = kinehook.IngestResult{Event: b.results[j].Event, Duplicate: true}
	}
	return args, nil
}

// insertDeliveries makes one pending delivery per fresh event and enabled
// endpoint of its project whose filter matches, and inserts them.
func (s *Store) insertDeliveries(ctx context.Context, tx *sql.Tx, b *ingestBatch, args []any, now time.Time) error {
	nowUS := now.UnixMicro()
	endpoints := map[string][]endpointFilter{}
	for _, i := range b.fresh {
		ev := b.results[i].Event
		eps, ok := endpoints[ev.ProjectID]
		if !ok {
			var err error
			if eps, err = s.enabledEndpoints(ctx, tx, ev.ProjectID); err != nil {
				return err
			}
			endpoints[ev.ProjectID] = eps
		}
		for k := range eps {
			if !eps[k].ep.Matches(ev.Type) || !ev.Targets(eps[k].id) {
				continue
			}
			d := kinehook.NewDelivery(ev, eps[k].id, now)
			args = append(args, d.ID, d.ProjectID, d.Seq, d.EndpointID, d.Partition, nowUS, micros(d.CreatedAt), nowUS)
			b.results[i].Deliveries = append(b.results[i].Deliveries, d)
		}
	}
	if _, err := s.bulk(ctx, tx, &deliveryInsert, args, nil); err != nil {
		return fmt.Errorf("sqlite: ingest: insert deliveries: %w", err)
	}
	return nil
}

// bulkInsert is a multi-row INSERT: one statement per power-of-two row count
// up to maxRows, prepared once on the writer and reused, so a batch of n rows
// takes about log2(n) statement executions instead of n.
type bulkInsert struct {
	head string // INSERT INTO t (...) VALUES
	row  string // (?, ?, ...)
	tail string // after the rows (may be empty)
	cols int    // parameters per row
}

const maxBulkRows = 64

var (
	eventInsert = bulkInsert{
		head: `INSERT INTO events (id, project_id, type, resource_key, payload, idempotency_key, created_at, source_id) VALUES `,
		row:  `(?, ?, ?, ?, ?, ?, ?, ?)`, cols: 8,
	}
	// eventInsert with the W3C trace context, for batches that carry one.
	eventInsertTraced = bulkInsert{
		head: `INSERT INTO events (id, project_id, type, resource_key, payload, idempotency_key, created_at, source_id, traceparent, tracestate) VALUES `,
		row:  `(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, cols: 10,
	}
	deliveryInsert = bulkInsert{
		head: `INSERT INTO deliveries (id, project_id, event_seq, endpoint_id, partition, status, next_attempt_at, created_at, updated_at) VALUES `,
		row:  `(?, ?, ?, ?, ?, 'pending', ?, ?, ?)`, cols: 8,
	}
	// Attempts of deliveries that no longer exist are skipped.
	attemptInsert = bulkInsert{
		head: `INSERT INTO attempts (delivery_id, attempted_at, status_code, error, duration_ms, response_body, request_headers, request_id)
			SELECT v.column1, v.column2, v.column3, v.column4, v.column5, v.column6, v.column7, v.column8 FROM (VALUES `,
		row:  `(?, ?, ?, ?, ?, ?, ?, ?)`,
		tail: `) AS v WHERE EXISTS (SELECT 1 FROM deliveries d WHERE d.id = v.column1)`,
		cols: 8,
	}
	// The new states of a batch of deliveries (ids unique within a call).
	deliveryUpdate = bulkInsert{
		head: `UPDATE deliveries SET status = v.column2, attempts = v.column3, next_attempt_at = v.column4,
			last_status_code = v.column5, last_error = v.column6, updated_at = v.column7 FROM (VALUES `,
		row:  `(?, ?, ?, ?, ?, ?, ?)`,
		tail: `) AS v WHERE deliveries.id = v.column1`,
		cols: 7,
	}
)

// bulk runs b over the rows in args (cols values each) in chunks, calling
// after (when not nil) with each chunk's first row, row count and last rowid.
// It returns the number of rows changed.
func (s *Store) bulk(ctx context.Context, tx *sql.Tx, b *bulkInsert, args []any, after func(row, n int, last int64)) (int64, error) {
	var changed int64
	rows := len(args) / b.cols
	for row := 0; row < rows; {
		n := maxBulkRows
		for n > rows-row {
			n /= 2
		}
		st, err := s.bulkStmt(b, n)
		if err != nil {
			return changed, err
		}
		res, err := tx.StmtContext(ctx, st).ExecContext(ctx, args[row*b.cols:(row+n)*b.cols]...)
		if err != nil {
			return changed, err
		}
		if c, err := res.RowsAffected(); err == nil {
			changed += c
		}
		if after != nil {
			last, err := res.LastInsertId()
			if err != nil {
				return changed, err
			}
			after(row, n, last)
		}
		row += n
	}
	return changed, nil
}

func (s *Store) bulkStmt(b *bulkInsert, n int) (*sql.Stmt, error) {
	if st := s.bulkStmts[bulkKey{b, n}]; st != nil {
		return st, nil
	}
	return nil, fmt.Errorf("no prepared %d-row insert", n)
}

// prepareBulk prepares every chunk size of every bulk insert on the writer.
// It runs at Open: preparing later, inside a transaction, would wait for the
// writer's only connection, which that transaction holds.
func (s *Store) prepareBulk(ctx context.Context) error {
	s.bulkStmts = map[bulkKey]*sql.Stmt{}
	for _, b := range []*bulkInsert{&eventInsert, &eventInsertTraced, &deliveryInsert, &attemptInsert, &deliveryUpdate, &statsUpsert, &stateUpsert} {
		for n := 1; n <= maxBulkRows; n *= 2 {
			q := b.head + strings.Repeat(b.row+", ", n-1) + b.row + b.tail
			st, err := s.w.PrepareContext(ctx, q)
			if err != nil {
				return fmt.Errorf("sqlite: prepare %d-row insert: %w", n, err)
			}
			s.bulkStmts[bulkKey{b, n}] = st
		}
	}
	return nil
}

type bulkKey struct {
	b *bulkInsert
	n int
}

// idempotentHit returns the stored event that ev's idempotency key still maps
// to, or nil when the key is new or older than the window.
func (s *Store) idempotentHit(ctx context.Context, tx *sql.Tx, ev *kinehook.Event) (*kinehook.Event, error) {
	var seq, created int64
	err := tx.StmtContext(ctx, s.selIdem).QueryRowContext(ctx, ev.ProjectID, ev.IdempotencyKey).Scan(&seq, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: ingest: idempotency lookup: %w", err)
	}
	if created <= micros(ev.CreatedAt.Add(-IdempotencyWindow)) {
		return nil, nil // expired: the key may be reused
	}
	first, err := scanEvent(tx.QueryRowContext(ctx, `SELECT `+eventCols+` FROM events WHERE seq = ?`, seq))
	if err != nil {
		return nil, fmt.Errorf("sqlite: ingest: load event of idempotency key: %w", err)
	}
	return first, nil
}

func (s *Store) enabledEndpoints(ctx context.Context, tx *sql.Tx, projectID string) ([]endpointFilter, error) {
	rows, err := tx.StmtContext(ctx, s.selEndpointsLite).QueryContext(ctx, projectID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: ingest: endpoints of %s: %w", projectID, err)
	}
	defer rows.Close()
	var out []endpointFilter
	found := false
	for rows.Next() {
		found = true
		var id, types sql.NullString
		if err := rows.Scan(&id, &types); err != nil {
			return nil, fmt.Errorf("sqlite: ingest: endpoints of %s: %w", projectID, err)
		}
		if !id.Valid {
			continue // the project has no enabled endpoint
		}
		f := endpointFilter{id: id.String}
		if err := json.Unmarshal([]byte(types.String), &f.ep.EventTypes); err != nil {
			return nil, fmt.Errorf("sqlite: ingest: endpoint %s event_types: %w", f.id, err)
		}
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: ingest: endpoints of %s: %w", projectID, err)
	}
	if !found {
		// Deleted after the request was authenticated: its event would be
		// stored with nothing to reach or remove it.
		return nil, kinehook.Errorf(kinehook.ENOTFOUND, "project %s not found", projectID)
	}
	return out, nil
}

const eventCols = `seq, id, project_id, type, resource_key, payload, idempotency_key, created_at, traceparent, tracestate, source_id`

func scanEvent(row interface{ Scan(...any) error }) (*kinehook.Event, error) {
	var e kinehook.Event
	var typ, tp, ts string
	var payload []byte
	var created int64
	if err := row.Scan(&e.Seq, &e.ID, &e.ProjectID, &typ, &e.ResourceKey, &payload, &e.IdempotencyKey, &created, &tp, &ts, &e.SourceID); err != nil {
		return nil, err
	}
	e.Trace = kinehook.NewTraceContext(tp, ts)
	e.Type = kinehook.EventType(typ)
	e.Payload = payload
	e.CreatedAt = fromMicros(created)
	return &e, nil
}

// GetEvent returns an event of the project or kinehook.ErrNotFound.
func (s *Store) GetEvent(ctx context.Context, projectID, id string) (*kinehook.Event, error) {
	e, err := scanEvent(s.r.QueryRowContext(ctx, `SELECT `+eventCols+` FROM events WHERE id = ? AND project_id = ?`, id, projectID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("event", id)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get event %s: %w", id, err)
	}
	return e, nil
}

// Cursors are the Seq of the last event of a page, base64url-encoded.
const cursorPrefix = "s1:"

func encodeCursor(seq int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + strconv.FormatInt(seq, 10)))
}

func decodeCursor(c string) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err == nil {
		if v, ok := strings.CutPrefix(string(b), cursorPrefix); ok {
			if seq, err := strconv.ParseInt(v, 10, 64); err == nil && seq > 0 {
				return seq, nil
			}
		}
	}
	return 0, &kinehook.Error{Code: kinehook.EINVALID, Field: "cursor", Message: "cursor is not one this server returned"}
}

// ListEvents pages a project's events newest first. The cursor is the last
// Seq returned, so events accepted meanwhile never shift a page.
func (s *Store) ListEvents(ctx context.Context, projectID string, f kinehook.EventFilter) ([]*kinehook.Event, string, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultListLimit
	}
	limit = min(limit, MaxListLimit)
	var where strings.Builder
	where.WriteString(`project_id = ?`)
	args := []any{projectID}
	if f.Cursor != "" {
		seq, err := decodeCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		where.WriteString(` AND seq < ?`)
		args = append(args, seq)
	}
	if f.SourceID != "" {
		where.WriteString(` AND source_id = ? AND source_id <> ''`) // the partial index's WHERE
		args = append(args, f.SourceID)
	}
	if f.Type != "" {
		where.WriteString(` AND type = ?`)
		args = append(args, string(f.Type))
	}
	if f.ResourceKey != "" {
		where.WriteString(` AND resource_key = ? AND resource_key <> ''`) // the partial index's WHERE
		args = append(args, f.ResourceKey)
	}
	if !f.Since.IsZero() {
		where.WriteString(` AND +created_at >= ?`)
		args = append(args, micros(f.Since))
	}
	if !f.Until.IsZero() {
		where.WriteString(` AND +created_at < ?`)
		args = append(args, micros(f.Until))
	}
	if f.DeliveryStatus != "" {
		where.WriteString(` AND EXISTS (SELECT 1 FROM deliveries d WHERE d.event_seq = events.seq AND d.status = ?)`)
		args = append(args, string(f.DeliveryStatus))
	}
	args = append(args, limit+1)
	rows, err := s.r.QueryContext(ctx, `SELECT `+eventCols+` FROM events WHERE `+where.String()+` ORDER BY seq DESC LIMIT ?`, args...)
	if err != nil {
		return nil, "", fmt.Errorf("sqlite: list events: %w", err)
	}
	defer rows.Close()
	out := make([]*kinehook.Event, 0, min(limit, 64))
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, "", fmt.Errorf("sqlite: list events: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("sqlite: list events: %w", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = encodeCursor(out[limit-1].Seq)
	}
	return out, next, nil
}

// EventPayloads returns the payloads of the given events keyed by id;
// unknown ids are skipped.
func (s *Store) EventPayloads(ctx context.Context, eventIDs []string) (map[string][]byte, error) {
	out := make(map[string][]byte, len(eventIDs))
	for start := 0; start < len(eventIDs); start += chunkSize {
		chunk := eventIDs[start:min(start+chunkSize, len(eventIDs))]
		rows, err := s.r.QueryContext(ctx, `SELECT id, payload FROM events WHERE id IN (`+placeholders(len(chunk))+`)`, anySlice(chunk)...)
		if err != nil {
			return nil, fmt.Errorf("sqlite: event payloads: %w", err)
		}
		for rows.Next() {
			var id string
			var p []byte
			if err := rows.Scan(&id, &p); err != nil {
				rows.Close()
				return nil, fmt.Errorf("sqlite: event payloads: %w", err)
			}
			out[id] = p
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("sqlite: event payloads: %w", err)
		}
	}
	return out, nil
}

// chunkSize bounds the ids bound in one IN (...) list.
const chunkSize = 500

func anySlice(ids []string) []any {
	out := make([]any, len(ids))
	for i, id := range ids {
		out[i] = id
	}
	return out
}
