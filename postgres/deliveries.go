package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kinehook/kinehook"
)

const deliveryCols = `id, project_id, event_id, endpoint_id, event_type, resource_key, seq, partition, status, attempts,
	next_attempt_at, last_status_code, last_error, created_at, updated_at`

// tracedDeliveries reads deliveries (as d) with their event's trace context
// (Delivery.Trace): what the engine queues. The event's row is found
// by its primary key; one that retention removed leaves it empty.
const tracedDeliveries = `SELECT ` + tracedCols + ` FROM deliveries d ` + tracedJoin

// tracedCols and tracedJoin read deliveries as d, joined to their event:
// tracedDeliveries over the table, the delivery search over a page of it.
const (
	tracedCols = `d.id, d.project_id, d.event_id, d.endpoint_id, d.event_type, d.resource_key, d.seq, d.partition,
	d.status, d.attempts, d.next_attempt_at, d.last_status_code, d.last_error, d.created_at, d.updated_at,
	COALESCE(e.traceparent, ''), COALESCE(e.tracestate, '')`
	tracedJoin = `LEFT JOIN events e ON e.seq = d.seq `
)

func scanTracedDelivery(row pgx.Row) (*kinehook.Delivery, error) {
	var tp, ts string
	d, err := scanDelivery(row, &tp, &ts)
	if err != nil {
		return nil, err
	}
	d.Trace = kinehook.NewTraceContext(tp, ts)
	return d, nil
}

// scanDelivery reads deliveryCols, then the columns after them into after.
func scanDelivery(row pgx.Row, after ...any) (*kinehook.Delivery, error) {
	var (
		d         kinehook.Delivery
		typ, st   string
		res       []byte
		part      int16
		nextAtPtr *time.Time
	)
	dest := append([]any{&d.ID, &d.ProjectID, &d.EventID, &d.EndpointID, &typ, &res, &d.Seq, &part, &st, &d.Attempts,
		&nextAtPtr, &d.LastStatusCode, &d.LastError, &d.CreatedAt, &d.UpdatedAt}, after...)
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	d.EventType, d.ResourceKey, d.Partition, d.Status = kinehook.EventType(typ), string(res), int(part), kinehook.DeliveryStatus(st)
	d.NextAttemptAt = fromNull(nextAtPtr)
	d.CreatedAt, d.UpdatedAt = d.CreatedAt.UTC(), d.UpdatedAt.UTC()
	return &d, nil
}

func (s *Store) queryDeliveries(ctx context.Context, q pgx.Tx, what, sql string, args ...any) ([]*kinehook.Delivery, error) {
	return s.queryWith(ctx, q, scanDeliveryRow, what, sql, args...)
}

// queryTraced is queryDeliveries for a query of tracedDeliveries: the
// deliveries the engine queues carry their event's trace context.
func (s *Store) queryTraced(ctx context.Context, q pgx.Tx, what, sql string, args ...any) ([]*kinehook.Delivery, error) {
	return s.queryWith(ctx, q, scanTracedDelivery, what, sql, args...)
}

func scanDeliveryRow(r pgx.Row) (*kinehook.Delivery, error) { return scanDelivery(r) }

func (s *Store) queryWith(ctx context.Context, q pgx.Tx, scan func(pgx.Row) (*kinehook.Delivery, error), what, sql string, args ...any) ([]*kinehook.Delivery, error) {
	var (
		rows pgx.Rows
		err  error
	)
	if q != nil {
		rows, err = q.Query(ctx, sql, args...)
	} else {
		rows, err = s.pool.Query(ctx, sql, args...)
	}
	if err != nil {
		return nil, wrap(what, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*kinehook.Delivery, error) { return scan(r) })
	return out, wrap(what, err)
}

// customPlan, as a query's first argument, makes PostgreSQL plan it for its
// arguments each time (an unnamed statement) instead of running a generic
// plan cached on the connection. Queries by a list of ids need it: a generic
// plan made while a table was small scans the table, and keeps scanning it as
// the table grows.
const customPlan = pgx.QueryExecModeExec

// customPlans does the same for every statement after it in a transaction.
const customPlans = `SET LOCAL plan_cache_mode = force_custom_plan`

// cachedPlans ends customPlans: the statements after it in the transaction
// use the server's setting again (cached plans once they prove as good).
const cachedPlans = `SET LOCAL plan_cache_mode = DEFAULT`

// GetDelivery returns a delivery of the project, or ErrNotFound.
func (s *Store) GetDelivery(ctx context.Context, projectID, id string) (*kinehook.Delivery, error) {
	d, err := scanTracedDelivery(s.pool.QueryRow(ctx, tracedDeliveries+`WHERE d.id = $1 AND d.project_id = $2`, id, projectID))
	return d, wrap("get delivery", err)
}

// ListDeliveries returns an event's deliveries; ErrNotFound when the project
// has no such event.
func (s *Store) ListDeliveries(ctx context.Context, projectID, eventID string) ([]*kinehook.Delivery, error) {
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM events WHERE id = $1 AND project_id = $2)`, eventID, projectID).Scan(&exists); err != nil {
		return nil, wrap("list deliveries", err)
	}
	if !exists {
		return nil, wrap("list deliveries", pgx.ErrNoRows)
	}
	return s.queryDeliveries(ctx, nil, "list deliveries",
		`SELECT `+deliveryCols+` FROM deliveries WHERE event_id = $1 AND project_id = $2 ORDER BY created_at, id`, eventID, projectID)
}

// OpenDeliveries streams the pending and retrying deliveries of the given
// partitions (all when nil) in Seq order. Rows are streamed, not collected,
// so a large backlog costs no memory here.
func (s *Store) OpenDeliveries(ctx context.Context, partitions []int, fn func(*kinehook.Delivery) error) error {
	q := tracedDeliveries + `WHERE d.status IN ('pending', 'retrying')`
	var args []any
	if partitions != nil {
		ps := make([]int16, len(partitions))
		for i, p := range partitions {
			ps[i] = int16(p)
		}
		q += ` AND d.partition = ANY($1)`
		args = append(args, ps)
	}
	rows, err := s.pool.Query(ctx, q+` ORDER BY d.seq, d.endpoint_id`, args...)
	if err != nil {
		return wrap("open deliveries", err)
	}
	defer rows.Close()
	for rows.Next() {
		d, err := scanTracedDelivery(rows)
		if err != nil {
			return wrap("open deliveries", err)
		}
		if err := fn(d); err != nil {
			return err
		}
	}
	return wrap("open deliveries", rows.Err())
}

// DeliveriesByID returns the deliveries with the given ids, of any project.
func (s *Store) DeliveriesByID(ctx context.Context, ids []string) ([]*kinehook.Delivery, error) {
	if len(ids) == 0 {
		return []*kinehook.Delivery{}, nil
	}
	return s.queryTraced(ctx, nil, "deliveries by id", tracedDeliveries+`WHERE d.id = ANY($1) ORDER BY d.seq, d.endpoint_id`, customPlan, ids)
}

// RecordAttempts stores a batch of attempts and the delivery states they lead
// to in one transaction and one round trip. A delivery already final is not
// changed by a late result (an instance that lost its partition while an
// attempt was in flight), though the attempt itself is kept.
func (s *Store) RecordAttempts(ctx context.Context, results []kinehook.AttemptResult) error {
	if len(results) == 0 {
		return nil
	}
	att, err := attemptRows(results)
	if err != nil {
		return err
	}
	upd := deliveryUpdates(results)
	if results, err = s.withEndpoints(ctx, results); err != nil {
		return err
	}
	var b pgx.Batch
	// The statistics rollups (stats.go), first: planned once and cached,
	// before the custom plans below take over the transaction.
	b.Queue(statsUpsert, statsArgs(results)...)
	// Plans made for these ids, not a generic plan cached on a connection
	// while the table was small: that one scans deliveries, and each call
	// then costs time in proportion to the table (5 ms for 8 results at
	// 20,000 rows, against 1 ms planned each time).
	b.Queue(customPlans)
	// Only for deliveries that still exist: a result that was in flight
	// when its project was deleted must not leave an attempt behind.
	b.Queue(`INSERT INTO attempts (delivery_id, attempted_at, status_code, error, duration_ms, response_body, request_headers, request_id)
		SELECT u.id, u.at, u.code, u.err, u.dur, u.body, u.hdr, u.rid
		FROM unnest($1::text[], $2::timestamptz[], $3::int[], $4::text[], $5::float8[], $6::bytea[], $7::jsonb[], $8::text[])
			WITH ORDINALITY AS u(id, at, code, err, dur, body, hdr, rid, n)
		WHERE EXISTS (SELECT 1 FROM deliveries d WHERE d.id = u.id)
		ORDER BY u.n`,
		att.ids, att.ats, att.codes, att.errs, att.dur, att.bodies, att.headers, att.reqIDs)
	// "d.id = ANY($1)" lets the planner find the rows by primary key; a
	// join on unnest alone is estimated badly and scans the table. The
	// open-status test is written so that no partial index matches it:
	// "status IN ('pending', 'retrying')" let the planner AND the primary
	// key with deliveries_open_endpoint, reading every open delivery's
	// index entry on each call (0.8 ms for 8 results with 20,000 open).
	b.Queue(`UPDATE deliveries d SET status = u.st, attempts = u.att, next_attempt_at = u.next,
			last_status_code = u.code, last_error = u.err, updated_at = $7
		FROM unnest($1::text[], $2::text[], $3::int[], $4::timestamptz[], $5::int[], $6::text[]) AS u(id, st, att, next, code, err)
		WHERE d.id = ANY($1) AND d.id = u.id AND d.status NOT IN ('succeeded', 'failed')`,
		upd.ids, upd.st, upd.att, upd.next, upd.codes, upd.errs, now())
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		return tx.SendBatch(ctx, &b).Close()
	})
	return wrap("record attempts", err)
}

// attemptColumns are the attempts to insert, a column each (for unnest).
type attemptColumns struct {
	ids, reqIDs, errs []string
	ats               []time.Time
	codes             []int32
	dur               []float64
	bodies, headers   [][]byte
}

// attemptRows turns results into the attempts to insert.
func attemptRows(results []kinehook.AttemptResult) (attemptColumns, error) {
	n := len(results)
	c := attemptColumns{ids: make([]string, n), reqIDs: make([]string, n), errs: make([]string, n), ats: make([]time.Time, n),
		codes: make([]int32, n), dur: make([]float64, n), bodies: make([][]byte, n), headers: make([][]byte, n)}
	for i, r := range results {
		a := r.Attempt
		c.ids[i], c.ats[i], c.codes[i], c.errs[i], c.dur[i] = a.DeliveryID, a.AttemptedAt.UTC(), int32(a.StatusCode), cleanText(a.Error), a.DurationMS
		c.bodies[i], c.reqIDs[i] = []byte(a.ResponseBody), a.ID
		if len(a.RequestHeaders) > 0 {
			h, err := json.Marshal(a.RequestHeaders)
			if err != nil {
				return c, fmt.Errorf("postgres: record attempts: encode headers: %w", err)
			}
			c.headers[i] = h
		}
	}
	return c, nil
}

// deliveryColumns are the deliveries' new states, a column each.
type deliveryColumns struct {
	ids, st, errs []string
	att, codes    []int32
	next          []*time.Time
}

// deliveryUpdates gives each delivery the state of its last result in the
// batch, deliveries in the order they first appear.
func deliveryUpdates(results []kinehook.AttemptResult) deliveryColumns {
	last := map[string]int{}
	var order []string
	for i, r := range results {
		if _, seen := last[r.Attempt.DeliveryID]; !seen {
			order = append(order, r.Attempt.DeliveryID)
		}
		last[r.Attempt.DeliveryID] = i
	}
	var c deliveryColumns
	for _, id := range order {
		r := results[last[id]]
		c.ids, c.st, c.errs = append(c.ids, id), append(c.st, string(r.Status)), append(c.errs, cleanText(r.Attempt.Error))
		c.att, c.codes = append(c.att, int32(r.Attempts)), append(c.codes, int32(r.Attempt.StatusCode))
		next := nullTime(r.NextAttemptAt)
		if r.Status.Final() {
			next = nil
		}
		c.next = append(c.next, next)
	}
	return c
}

// ListAttempts returns a delivery's attempts in time order; ErrNotFound when
// the project has no such delivery.
func (s *Store) ListAttempts(ctx context.Context, projectID, deliveryID string) ([]*kinehook.Attempt, error) {
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM deliveries WHERE id = $1 AND project_id = $2)`, deliveryID, projectID).Scan(&exists); err != nil {
		return nil, wrap("list attempts", err)
	}
	if !exists {
		return nil, wrap("list attempts", pgx.ErrNoRows)
	}
	rows, err := s.pool.Query(ctx, `SELECT request_id, delivery_id, attempted_at, status_code, error, duration_ms, response_body, request_headers
		FROM attempts WHERE delivery_id = $1 ORDER BY attempted_at, id`, deliveryID)
	if err != nil {
		return nil, wrap("list attempts", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*kinehook.Attempt, error) {
		var (
			a       kinehook.Attempt
			body    []byte
			headers []byte
		)
		if err := r.Scan(&a.ID, &a.DeliveryID, &a.AttemptedAt, &a.StatusCode, &a.Error, &a.DurationMS, &body, &headers); err != nil {
			return nil, err
		}
		a.AttemptedAt = a.AttemptedAt.UTC()
		a.ResponseBody = string(body)
		if headers != nil {
			if err := json.Unmarshal(headers, &a.RequestHeaders); err != nil {
				return nil, fmt.Errorf("attempt headers: %w", err)
			}
		}
		return &a, nil
	})
	return out, wrap("list attempts", err)
}

// ReopenDeliveries sets the project's final deliveries among ids back to
// pending, due now, and returns every one of ids the project has, as stored.
func (s *Store) ReopenDeliveries(ctx context.Context, projectID string, ids []string) ([]*kinehook.Delivery, error) {
	if len(ids) == 0 {
		return []*kinehook.Delivery{}, nil
	}
	var out []*kinehook.Delivery
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		t := now()
		if _, err := tx.Exec(ctx, customPlans); err != nil {
			return wrap("reopen deliveries", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE deliveries SET status = 'pending', next_attempt_at = $3, updated_at = $3
			WHERE id = ANY($1) AND project_id = $2 AND status IN ('succeeded', 'failed')`, ids, projectID, t); err != nil {
			return wrap("reopen deliveries", err)
		}
		var err error
		out, err = s.queryTraced(ctx, tx, "reopen deliveries",
			tracedDeliveries+`WHERE d.id = ANY($1) AND d.project_id = $2 ORDER BY d.seq, d.endpoint_id`, ids, projectID)
		return err
	})
	return out, err
}
