package sqlite

import (
	"context"
	"fmt"
	"time"
)

// Backup writes a consistent copy of the database to destPath while the
// store keeps serving, replacing destPath if it exists (BackupFile: one
// snapshot through a connection of its own, checked, fsynced, owner-only).
// The copy is compact and opens with Open.
func (s *Store) Backup(ctx context.Context, destPath string) error {
	if _, err := BackupFile(ctx, s.path, destPath, true); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	return nil
}

// DeleteBefore is retention: it removes the events created before before
// (of one project, or of every project when projectID is empty), with their
// deliveries, attempts and idempotency keys, in transactions of at most batch
// events (0: 1000), so the writer is never held for long and ingest goes on
// between batches. An event with a delivery still pending or retrying is kept
// whole: retention never loses work. It returns how many events it removed;
// follow it with IncrementalVacuum to give the space back. (The PostgreSQL
// store's DeleteBefore has the same signature and meaning.)
func (s *Store) DeleteBefore(ctx context.Context, projectID string, before time.Time, batch int) (int, error) {
	if batch <= 0 {
		batch = 1000
	}
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		n, err := s.deleteBatch(ctx, projectID, before, batch)
		total += n
		if err != nil || n < batch {
			return total, err
		}
	}
}

// retentionSelect picks a batch of old events without open deliveries,
// oldest first along events_project (or the table without a project), as
// PostgreSQL does: the old events come first and the scan stops at the LIMIT.
func retentionSelect(scope string) string {
	return `SELECT seq FROM events e WHERE ` + scope + `created_at < ?
		AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_seq = e.seq AND d.status IN ('pending', 'retrying'))
		ORDER BY seq LIMIT ?`
}

// deleteBatch removes up to batch events in one transaction.
func (s *Store) deleteBatch(ctx context.Context, projectID string, before time.Time, batch int) (int, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("sqlite: retention: begin: %w", err)
	}
	defer rollback(tx)
	scope, args := ``, []any{micros(before)}
	if projectID != "" {
		scope, args = `project_id = ? AND `, []any{projectID, micros(before)}
	}
	args = append(args, batch)
	if _, err := tx.ExecContext(ctx, `CREATE TEMP TABLE IF NOT EXISTS retention_batch (seq INTEGER PRIMARY KEY)`); err != nil {
		return 0, fmt.Errorf("sqlite: retention: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM temp.retention_batch`); err != nil {
		return 0, fmt.Errorf("sqlite: retention: %w", err)
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO temp.retention_batch (seq) `+retentionSelect(scope), args...)
	if err != nil {
		return 0, fmt.Errorf("sqlite: retention: select batch: %w", err)
	}
	n, _ := res.RowsAffected()
	if n == 0 {
		return 0, nil
	}
	for _, q := range []string{
		`DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE event_seq IN (SELECT seq FROM temp.retention_batch))`,
		`DELETE FROM deliveries WHERE event_seq IN (SELECT seq FROM temp.retention_batch)`,
		`DELETE FROM idempotency_keys WHERE event_seq IN (SELECT seq FROM temp.retention_batch)`,
		`DELETE FROM events WHERE seq IN (SELECT seq FROM temp.retention_batch)`,
		`DELETE FROM temp.retention_batch`,
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return 0, fmt.Errorf("sqlite: retention: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("sqlite: retention: commit: %w", err)
	}
	return int(n), nil
}

// IncrementalVacuum returns the free pages left by deletions to the file
// system (the file was created with auto_vacuum=INCREMENTAL), then
// checkpoints the WAL so the shrink reaches the main file. It returns the
// number of pages freed.
func (s *Store) IncrementalVacuum(ctx context.Context) (int64, error) {
	var free int64
	if err := s.w.QueryRowContext(ctx, `PRAGMA freelist_count`).Scan(&free); err != nil {
		return 0, fmt.Errorf("sqlite: incremental vacuum: %w", err)
	}
	if free == 0 {
		return 0, nil
	}
	if _, err := s.w.ExecContext(ctx, `PRAGMA incremental_vacuum`); err != nil {
		return 0, fmt.Errorf("sqlite: incremental vacuum: %w", err)
	}
	var left int64
	if err := s.w.QueryRowContext(ctx, `PRAGMA freelist_count`).Scan(&left); err != nil {
		return 0, fmt.Errorf("sqlite: incremental vacuum: %w", err)
	}
	if err := s.Checkpoint(ctx); err != nil {
		return free - left, err
	}
	return free - left, nil
}

// Checkpoint copies the WAL into the main file and truncates the WAL. The
// background checkpointer or a reader may hold it off for a moment (the
// answer is then "busy"); it tries again for up to two seconds, and reports
// an error when the WAL still could not be emptied.
func (s *Store) Checkpoint(ctx context.Context) error {
	deadline := time.Now().Add(2 * time.Second)
	for {
		var busy, logFrames, done int
		if err := s.w.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logFrames, &done); err != nil {
			return fmt.Errorf("sqlite: checkpoint: %w", err)
		}
		if busy == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("sqlite: checkpoint: still busy after 2s (%d of %d WAL frames copied)", done, logFrames)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("sqlite: checkpoint: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}
