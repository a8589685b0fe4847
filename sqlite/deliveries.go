package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/kinehook/kinehook"
)

// Deliveries are read joined with their event (id, type, resource key,
// trace context).
const (
	deliverySelectFrom = `SELECT d.id, d.project_id, e.id, d.endpoint_id, e.type, e.resource_key, d.event_seq, d.partition,
	d.status, d.attempts, d.next_attempt_at, d.last_status_code, d.last_error, d.created_at, d.updated_at,
	e.traceparent, e.tracestate
	FROM `
	deliverySelect = deliverySelectFrom + `deliveries d JOIN events e ON e.seq = d.event_seq `
)

func scanDelivery(row interface{ Scan(...any) error }) (*kinehook.Delivery, error) {
	var d kinehook.Delivery
	var typ, status, tp, ts string
	var next, created, updated int64
	if err := row.Scan(&d.ID, &d.ProjectID, &d.EventID, &d.EndpointID, &typ, &d.ResourceKey, &d.Seq, &d.Partition,
		&status, &d.Attempts, &next, &d.LastStatusCode, &d.LastError, &created, &updated, &tp, &ts); err != nil {
		return nil, err
	}
	d.Trace = kinehook.NewTraceContext(tp, ts)
	d.EventType, d.Status = kinehook.EventType(typ), kinehook.DeliveryStatus(status)
	d.NextAttemptAt, d.CreatedAt, d.UpdatedAt = fromMicros(next), fromMicros(created), fromMicros(updated)
	return &d, nil
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func queryDeliveries(ctx context.Context, q querier, where string, args ...any) ([]*kinehook.Delivery, error) {
	return queryDeliveriesSQL(ctx, q, deliverySelect+where, args...)
}

// queryDeliveriesSQL runs a whole query whose columns are deliverySelectFrom's.
func queryDeliveriesSQL(ctx context.Context, q querier, query string, args ...any) ([]*kinehook.Delivery, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*kinehook.Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// GetDelivery returns a delivery of the project or kinehook.ErrNotFound.
func (s *Store) GetDelivery(ctx context.Context, projectID, id string) (*kinehook.Delivery, error) {
	d, err := scanDelivery(s.r.QueryRowContext(ctx, deliverySelect+`WHERE d.id = ? AND d.project_id = ?`, id, projectID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("delivery", id)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get delivery %s: %w", id, err)
	}
	return d, nil
}

// ListDeliveries returns an event's deliveries, or kinehook.ErrNotFound when
// the project has no such event.
func (s *Store) ListDeliveries(ctx context.Context, projectID, eventID string) ([]*kinehook.Delivery, error) {
	var seq int64
	err := s.r.QueryRowContext(ctx, `SELECT seq FROM events WHERE id = ? AND project_id = ?`, eventID, projectID).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("event", eventID)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: list deliveries of %s: %w", eventID, err)
	}
	ds, err := queryDeliveries(ctx, s.r, `WHERE d.event_seq = ? ORDER BY d.created_at, d.id`, seq)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list deliveries of %s: %w", eventID, err)
	}
	return ds, nil
}

// OpenDeliveries calls fn for each pending or retrying delivery in the given
// partitions (all when nil), in Seq order, from one consistent snapshot.
func (s *Store) OpenDeliveries(ctx context.Context, partitions []int, fn func(*kinehook.Delivery) error) error {
	where := `WHERE d.status IN ('pending', 'retrying')`
	var args []any
	if partitions != nil {
		if len(partitions) == 0 {
			return nil
		}
		where += ` AND d.partition IN (` + placeholders(len(partitions)) + `)`
		for _, p := range partitions {
			args = append(args, p)
		}
	}
	rows, err := s.r.QueryContext(ctx, deliverySelect+where+` ORDER BY d.event_seq`, args...)
	if err != nil {
		return fmt.Errorf("sqlite: open deliveries: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return fmt.Errorf("sqlite: open deliveries: %w", err)
		}
		if err := fn(d); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlite: open deliveries: %w", err)
	}
	return nil
}

// DeliveriesByID returns the deliveries with the given ids in any project;
// unknown ids are skipped.
func (s *Store) DeliveriesByID(ctx context.Context, ids []string) ([]*kinehook.Delivery, error) {
	var out []*kinehook.Delivery
	for start := 0; start < len(ids); start += chunkSize {
		chunk := ids[start:min(start+chunkSize, len(ids))]
		ds, err := queryDeliveries(ctx, s.r, `WHERE d.id IN (`+placeholders(len(chunk))+`) ORDER BY d.event_seq`, anySlice(chunk)...)
		if err != nil {
			return nil, fmt.Errorf("sqlite: deliveries by id: %w", err)
		}
		out = append(out, ds...)
	}
	return out, nil
}

// RecordAttempts stores a batch of attempts and the delivery states they lead
// to, and adds them to the statistics rollups (recordStats), in one commit. A result for a delivery that no longer exists is skipped
// (and logged) rather than failing the batch.
func (s *Store) RecordAttempts(ctx context.Context, results []kinehook.AttemptResult) error {
	if len(results) == 0 {
		return nil
	}
	now := time.Now().UnixMicro()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: record attempts: begin: %w", err)
	}
	defer rollback(tx)
	// Every attempt is stored; each delivery takes the state of its last
	// result in the batch.
	last := make(map[string]int, len(results))
	attempts := make([]any, 0, len(results)*attemptInsert.cols)
	for i := range results {
		a := &results[i].Attempt
		last[a.DeliveryID] = i
		headers := "{}"
		if len(a.RequestHeaders) > 0 {
			b, err := json.Marshal(a.RequestHeaders)
			if err != nil {
				return fmt.Errorf("sqlite: record attempts: encode headers: %w", err)
			}
			headers = string(b)
		}
		attempts = append(attempts, a.DeliveryID, micros(a.AttemptedAt), a.StatusCode, a.Error, a.DurationMS, []byte(a.ResponseBody), headers, a.ID)
	}
	states := make([]any, 0, len(last)*deliveryUpdate.cols)
	for i := range results {
		r := &results[i]
		if last[r.Attempt.DeliveryID] != i {
			continue
		}
		states = append(states, r.Attempt.DeliveryID, string(r.Status), r.Attempts, micros(r.NextAttemptAt), r.Attempt.StatusCode, r.Attempt.Error, now)
	}
	updated, err := s.bulk(ctx, tx, &deliveryUpdate, states, nil)
	if err != nil {
		return fmt.Errorf("sqlite: record attempts: update deliveries: %w", err)
	}
	if updated != int64(len(last)) {
		s.log.Warn("sqlite: attempts for deliveries that no longer exist were skipped", "missing", int64(len(last))-updated)
	}
	if _, err := s.bulk(ctx, tx, &attemptInsert, attempts, nil); err != nil {
		return fmt.Errorf("sqlite: record attempts: insert attempts: %w", err)
	}
	if err := s.recordStats(ctx, tx, results); err != nil {
		return fmt.Errorf("sqlite: record attempts: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: record attempts: commit: %w", err)
	}
	return nil
}

// ListAttempts returns a delivery's attempts oldest first, or
// kinehook.ErrNotFound when the project has no such delivery.
func (s *Store) ListAttempts(ctx context.Context, projectID, deliveryID string) ([]*kinehook.Attempt, error) {
	var one int
	err := s.r.QueryRowContext(ctx, `SELECT 1 FROM deliveries WHERE id = ? AND project_id = ?`, deliveryID, projectID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("delivery", deliveryID)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: list attempts of %s: %w", deliveryID, err)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT request_id, delivery_id, attempted_at, status_code, error, duration_ms, response_body, request_headers
		FROM attempts WHERE delivery_id = ? ORDER BY attempted_at, id`, deliveryID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list attempts of %s: %w", deliveryID, err)
	}
	defer rows.Close()
	out := []*kinehook.Attempt{}
	for rows.Next() {
		var a kinehook.Attempt
		var at int64
		var body []byte
		var headers string
		if err := rows.Scan(&a.ID, &a.DeliveryID, &at, &a.StatusCode, &a.Error, &a.DurationMS, &body, &headers); err != nil {
			return nil, fmt.Errorf("sqlite: list attempts of %s: %w", deliveryID, err)
		}
		a.AttemptedAt, a.ResponseBody = fromMicros(at), string(body)
		if headers != "" && headers != "{}" {
			if err := json.Unmarshal([]byte(headers), &a.RequestHeaders); err != nil {
				return nil, fmt.Errorf("sqlite: attempt headers of %s: %w", deliveryID, err)
			}
		}
		out = append(out, &a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list attempts of %s: %w", deliveryID, err)
	}
	return out, nil
}

// ReopenDeliveries sets the project's given final deliveries back to pending,
// due now, and returns the given deliveries as they now are (ids of other
// projects or unknown ids are skipped; open ones are returned unchanged).
func (s *Store) ReopenDeliveries(ctx context.Context, projectID string, ids []string) ([]*kinehook.Delivery, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	now := time.Now().UnixMicro()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("sqlite: reopen deliveries: begin: %w", err)
	}
	defer rollback(tx)
	var out []*kinehook.Delivery
	for start := 0; start < len(ids); start += chunkSize {
		chunk := anySlice(ids[start:min(start+chunkSize, len(ids))])
		args := append([]any{now, now, projectID}, chunk...)
		if _, err := tx.ExecContext(ctx, `UPDATE deliveries SET status = 'pending', next_attempt_at = ?, updated_at = ?
			WHERE project_id = ? AND status IN ('succeeded', 'failed') AND id IN (`+placeholders(len(chunk))+`)`, args...); err != nil {
			return nil, fmt.Errorf("sqlite: reopen deliveries: %w", err)
		}
		ds, err := queryDeliveries(ctx, tx, `WHERE d.project_id = ? AND d.id IN (`+placeholders(len(chunk))+`) ORDER BY d.event_seq`,
			append([]any{projectID}, chunk...)...)
		if err != nil {
			return nil, fmt.Errorf("sqlite: reopen deliveries: %w", err)
		}
		out = append(out, ds...)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("sqlite: reopen deliveries: commit: %w", err)
	}
	return out, nil
}

// failEndpointDeliveries fails the open deliveries of a deleted endpoint.
// It walks the open set (the partial index deliveries_open, whose WHERE is
// written here the same way), not the endpoint's whole history.
const failEndpointDeliveries = `UPDATE deliveries INDEXED BY deliveries_open SET status = 'failed', last_error = 'endpoint deleted', updated_at = ?
	WHERE endpoint_id = ? AND status IN ('pending', 'retrying')`
