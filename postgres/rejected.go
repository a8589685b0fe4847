package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kinehook/kinehook"
)

var _ kinehook.RejectStore = (*Store)(nil)

// RecordRejected stores rejected inputs in one transaction; a second record
// of one (project, source, message id) is ignored.
func (s *Store) RecordRejected(ctx context.Context, rs []*kinehook.RejectedInput) error {
	if len(rs) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	for _, r := range rs {
		body := r.Body
		if body == nil {
			body = []byte{}
		}
		b.Queue(`INSERT INTO rejected_inputs (id, project_id, source, message_id, code, reason, body, body_size, received_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING`,
			r.ID, r.ProjectID, r.Source, r.MessageID, r.Code, r.Reason, body, r.BodySize, r.ReceivedAt.UTC())
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		return tx.SendBatch(ctx, b).Close()
	})
	return wrap("record rejected", err)
}

// ListRejected pages a project's rejected inputs newest first.
func (s *Store) ListRejected(ctx context.Context, projectID, cursor string, limit int) ([]*kinehook.RejectedInput, string, error) {
	limit = min(max(limit, 1), maxListLimit)
	var after int64 = 1<<63 - 1
	if cursor != "" {
		seq, err := kinehook.DecodeRejectedCursor(cursor)
		if err != nil {
			return nil, "", err
		}
		after = seq
	}
	var out []*kinehook.RejectedInput
	var seqs []int64
	rows, err := s.pool.Query(ctx, `SELECT seq, id, project_id, source, message_id, code, reason, body, body_size, received_at
		FROM rejected_inputs WHERE project_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3`, projectID, after, limit+1)
	if err != nil {
		return nil, "", wrap("list rejected", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r kinehook.RejectedInput
		var seq int64
		if err := rows.Scan(&seq, &r.ID, &r.ProjectID, &r.Source, &r.MessageID, &r.Code, &r.Reason, &r.Body, &r.BodySize, &r.ReceivedAt); err != nil {
			return nil, "", wrap("list rejected", err)
		}
		r.ReceivedAt = r.ReceivedAt.UTC()
		out = append(out, &r)
		seqs = append(seqs, seq)
	}
	if err := rows.Err(); err != nil {
		return nil, "", wrap("list rejected", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = kinehook.EncodeRejectedCursor(seqs[limit-1])
	}
	return out, next, nil
}

// PruneRejected removes rejected inputs received before before and all but
// the newest keep of each project (keep <= 0: no count limit).
func (s *Store) PruneRejected(ctx context.Context, keep int, before time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM rejected_inputs WHERE received_at < $1`, before.UTC())
	if err != nil {
		return 0, wrap("prune rejected", err)
	}
	n := int(tag.RowsAffected())
	if keep > 0 {
		tag, err = s.pool.Exec(ctx, `DELETE FROM rejected_inputs WHERE seq IN (
			SELECT seq FROM (SELECT seq, row_number() OVER (PARTITION BY project_id ORDER BY seq DESC) AS rn FROM rejected_inputs) r
			WHERE rn > $1)`, keep)
		if err != nil {
			return n, wrap("prune rejected", err)
		}
		n += int(tag.RowsAffected())
	}
	return n, nil
}
