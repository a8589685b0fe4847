package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// DeleteBefore removes the project's events created before before, with
// their deliveries, attempts and idempotency keys, in transactions of at most
// batch events (0: 500) so that retention never holds long locks or bloats
// one transaction. An event is kept while any of its deliveries is pending or
// retrying: retention never loses work. It returns how many events it removed.
func (s *Store) DeleteBefore(ctx context.Context, projectID string, before time.Time, batch int) (int, error) {
	if batch <= 0 {
		batch = 500
	}
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		removed, selected, err := s.deleteBatch(ctx, projectID, before.UTC(), batch)
		total += removed
		if err != nil {
			return total, err
		}
		if selected < batch || removed == 0 {
			return total, nil
		}
	}
}

func (s *Store) deleteBatch(ctx context.Context, projectID string, before time.Time, batch int) (removed, selected int, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Lists of ids below: plans made for them (see customPlan).
		if _, err := tx.Exec(ctx, customPlans); err != nil {
			return wrap("retention", err)
		}
		rows, err := tx.Query(ctx, `SELECT e.id FROM events e
			WHERE e.project_id = $1 AND e.created_at < $2
			AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND d.status NOT IN ('succeeded', 'failed'))
			ORDER BY e.seq LIMIT $3 FOR UPDATE OF e SKIP LOCKED`, projectID, before, batch)
		if err != nil {
			return wrap("retention: select events", err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return wrap("retention: select events", err)
		}
		selected = len(ids)
		if len(ids) == 0 {
			return nil
		}
		// Lock the deliveries and look at their latest state: one may have
		// been reopened (manual retry) since the check above.
		rows, err = tx.Query(ctx, `SELECT event_id, status FROM deliveries WHERE event_id = ANY($1) FOR UPDATE`, ids)
		if err != nil {
			return wrap("retention: lock deliveries", err)
		}
		keep := map[string]bool{}
		for rows.Next() {
			var eid, st string
			if err := rows.Scan(&eid, &st); err != nil {
				rows.Close()
				return wrap("retention: lock deliveries", err)
			}
			if st == "pending" || st == "retrying" {
				keep[eid] = true
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return wrap("retention: lock deliveries", err)
		}
		victims := ids[:0]
		for _, id := range ids {
			if !keep[id] {
				victims = append(victims, id)
			}
		}
		if len(victims) == 0 {
			return nil
		}
		var b pgx.Batch
		b.Queue(`DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE event_id = ANY($1))`, victims)
		b.Queue(`DELETE FROM deliveries WHERE event_id = ANY($1)`, victims)
		b.Queue(`DELETE FROM idempotency_keys WHERE project_id = $1 AND event_id = ANY($2)`, projectID, victims)
		b.Queue(`DELETE FROM events WHERE id = ANY($1)`, victims)
		if err := tx.SendBatch(ctx, &b).Close(); err != nil {
			return wrap("retention: delete", err)
		}
		removed = len(victims)
		return nil
	})
	if err != nil {
		return 0, selected, err
	}
	return removed, selected, nil
}
