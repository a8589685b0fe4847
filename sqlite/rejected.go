package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/kinehook/kinehook"
)

var _ kinehook.RejectStore = (*Store)(nil)

// RecordRejected stores rejected inputs in one transaction; a second record
// of one (project, source, message id) is ignored.
func (s *Store) RecordRejected(ctx context.Context, rs []*kinehook.RejectedInput) error {
	if len(rs) == 0 {
		return nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: record rejected: begin: %w", err)
	}
	defer rollback(tx)
	for _, r := range rs {
		if _, err := tx.ExecContext(ctx, `INSERT INTO rejected_inputs
			(id, project_id, source, message_id, code, reason, body, body_size, received_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			r.ID, r.ProjectID, r.Source, r.MessageID, r.Code, r.Reason, nonNilBytes(r.Body), r.BodySize, micros(r.ReceivedAt)); err != nil {
			return fmt.Errorf("sqlite: record rejected %s: %w", r.ID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: record rejected: commit: %w", err)
	}
	return nil
}

// nonNilBytes keeps an empty body from being stored as NULL.
func nonNilBytes(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// ListRejected pages a project's rejected inputs newest first.
func (s *Store) ListRejected(ctx context.Context, projectID, cursor string, limit int) ([]*kinehook.RejectedInput, string, error) {
	limit = min(max(limit, 1), MaxListLimit)
	where, args := `WHERE project_id = ?`, []any{projectID}
	if cursor != "" {
		seq, err := kinehook.DecodeRejectedCursor(cursor)
		if err != nil {
			return nil, "", err
		}
		where += ` AND seq < ?`
		args = append(args, seq)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT seq, id, project_id, source, message_id, code, reason, body, body_size, received_at
		FROM rejected_inputs `+where+` ORDER BY seq DESC LIMIT ?`, append(args, limit+1)...)
	if err != nil {
		return nil, "", fmt.Errorf("sqlite: list rejected: %w", err)
	}
	defer rows.Close()
	var out []*kinehook.RejectedInput
	var seqs []int64
	for rows.Next() {
		var r kinehook.RejectedInput
		var seq, at int64
		if err := rows.Scan(&seq, &r.ID, &r.ProjectID, &r.Source, &r.MessageID, &r.Code, &r.Reason, &r.Body, &r.BodySize, &at); err != nil {
			return nil, "", fmt.Errorf("sqlite: list rejected: %w", err)
		}
		r.ReceivedAt = fromMicros(at)
		out = append(out, &r)
		seqs = append(seqs, seq)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("sqlite: list rejected: %w", err)
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
	res, err := s.w.ExecContext(ctx, `DELETE FROM rejected_inputs WHERE received_at < ?`, micros(before))
	if err != nil {
		return 0, fmt.Errorf("sqlite: prune rejected: %w", err)
	}
	n, _ := res.RowsAffected()
	if keep > 0 {
		res, err = s.w.ExecContext(ctx, `DELETE FROM rejected_inputs WHERE seq IN (
			SELECT seq FROM (SELECT seq, row_number() OVER (PARTITION BY project_id ORDER BY seq DESC) AS rn FROM rejected_inputs)
			WHERE rn > ?)`, keep)
		if err != nil {
			return int(n), fmt.Errorf("sqlite: prune rejected: %w", err)
		}
		m, _ := res.RowsAffected()
		n += m
	}
	return int(n), nil
}
