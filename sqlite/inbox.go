package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/kinehook/kinehook"
)

// inboxCredentials is what an inbox source's credentials column seals.
type inboxCredentials struct {
	Login    string `json:"login,omitempty"`
	Password string `json:"password,omitempty"`
	Secret   string `json:"secret,omitempty"`
}

const inboxCols = `id, project_id, name, type, credentials, created_at, updated_at`

func (s *Store) sealInbox(src *kinehook.InboxSource) ([]byte, error) {
	b, err := json.Marshal(inboxCredentials{Login: src.Login, Password: src.Password, Secret: src.Secret})
	if err != nil {
		return nil, fmt.Errorf("sqlite: inbox source credentials: %w", err)
	}
	return s.seal(b)
}

func (s *Store) scanInbox(row interface{ Scan(...any) error }) (*kinehook.InboxSource, error) {
	var src kinehook.InboxSource
	var sealed []byte
	var created, updated int64
	if err := row.Scan(&src.ID, &src.ProjectID, &src.Name, &src.Type, &sealed, &created, &updated); err != nil {
		return nil, err
	}
	plain, err := s.unseal(sealed)
	if err != nil {
		return nil, fmt.Errorf("inbox source %s: %w", src.ID, err)
	}
	var c inboxCredentials
	if len(plain) > 0 {
		if err := json.Unmarshal(plain, &c); err != nil {
			return nil, fmt.Errorf("inbox source %s credentials: %w", src.ID, err)
		}
	}
	src.Login, src.Password, src.Secret = c.Login, c.Password, c.Secret
	src.CreatedAt, src.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &src, nil
}

// CreateInboxSource stores a new inbox source, its credentials sealed.
func (s *Store) CreateInboxSource(ctx context.Context, src *kinehook.InboxSource) error {
	sealed, err := s.sealInbox(src)
	if err != nil {
		return err
	}
	if _, err := s.w.ExecContext(ctx, `INSERT INTO inbox_sources (`+inboxCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		src.ID, src.ProjectID, src.Name, src.Type, sealed, micros(src.CreatedAt), micros(src.UpdatedAt)); err != nil {
		return fmt.Errorf("sqlite: create inbox source %s: %w", src.ID, err)
	}
	return nil
}

// GetInboxSource returns a project's inbox source or ErrNotFound.
func (s *Store) GetInboxSource(ctx context.Context, projectID, id string) (*kinehook.InboxSource, error) {
	src, err := s.scanInbox(s.r.QueryRowContext(ctx, `SELECT `+inboxCols+` FROM inbox_sources WHERE id = ? AND project_id = ?`, id, projectID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("inbox source", id)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get inbox source %s: %w", id, err)
	}
	return src, nil
}

// InboxSourceByID returns an inbox source of any project or ErrNotFound.
func (s *Store) InboxSourceByID(ctx context.Context, id string) (*kinehook.InboxSource, error) {
	src, err := s.scanInbox(s.r.QueryRowContext(ctx, `SELECT `+inboxCols+` FROM inbox_sources WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("inbox source", id)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get inbox source %s: %w", id, err)
	}
	return src, nil
}

// ListInboxSources lists a project's inbox sources, oldest first.
func (s *Store) ListInboxSources(ctx context.Context, projectID string) ([]*kinehook.InboxSource, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+inboxCols+` FROM inbox_sources WHERE project_id = ? ORDER BY created_at, id`, projectID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list inbox sources: %w", err)
	}
	defer rows.Close()
	out := []*kinehook.InboxSource{}
	for rows.Next() {
		src, err := s.scanInbox(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list inbox sources: %w", err)
		}
		out = append(out, src)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list inbox sources: %w", err)
	}
	return out, nil
}

// UpdateInboxSource stores a source's name, type and credentials.
func (s *Store) UpdateInboxSource(ctx context.Context, src *kinehook.InboxSource) error {
	sealed, err := s.sealInbox(src)
	if err != nil {
		return err
	}
	res, err := s.w.ExecContext(ctx, `UPDATE inbox_sources SET name = ?, type = ?, credentials = ?, updated_at = ? WHERE id = ? AND project_id = ?`,
		src.Name, src.Type, sealed, micros(src.UpdatedAt), src.ID, src.ProjectID)
	if err != nil {
		return fmt.Errorf("sqlite: update inbox source %s: %w", src.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("inbox source", src.ID)
	}
	return nil
}

// DeleteInboxSource removes a source; its events stay in the log.
func (s *Store) DeleteInboxSource(ctx context.Context, projectID, id string) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: delete inbox source: begin: %w", err)
	}
	defer rollback(tx)
	res, err := tx.ExecContext(ctx, `DELETE FROM inbox_sources WHERE id = ? AND project_id = ?`, id, projectID)
	if err != nil {
		return fmt.Errorf("sqlite: delete inbox source %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("inbox source", id)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM inbox_latest WHERE source_id = ?`, id); err != nil {
		return fmt.Errorf("sqlite: delete inbox source %s: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: delete inbox source %s: commit: %w", id, err)
	}
	return nil
}

// resealInbox re-seals every inbox source's credentials (key rotation).
func resealInbox(ctx context.Context, tx *sql.Tx, reseal func([]byte) ([]byte, error)) (int, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, credentials FROM inbox_sources`)
	if err != nil {
		return 0, fmt.Errorf("sqlite: reseal inbox sources: %w", err)
	}
	type row struct {
		id string
		c  []byte
	}
	var all []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.c); err != nil {
			rows.Close()
			return 0, fmt.Errorf("sqlite: reseal inbox sources: %w", err)
		}
		all = append(all, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("sqlite: reseal inbox sources: %w", err)
	}
	n := 0
	for _, r := range all {
		if len(r.c) == 0 || r.c[0] != tagSealed {
			continue
		}
		out, err := reseal(r.c[1:])
		if err != nil {
			return 0, fmt.Errorf("sqlite: reseal inbox source %s: %w", r.id, err)
		}
		if bytes.Equal(out, r.c[1:]) {
			continue
		}
		if _, err := tx.ExecContext(ctx, `UPDATE inbox_sources SET credentials = ? WHERE id = ?`, append([]byte{tagSealed}, out...), r.id); err != nil {
			return 0, fmt.Errorf("sqlite: reseal inbox source %s: %w", r.id, err)
		}
		n++
	}
	return n, nil
}

// inboxRetries marks the fresh events that repeat the latest body accepted
// from their source for their resource within kinehook.InboxRetryWindow as
// duplicates of it, and records the new latest body of the others.
func (s *Store) inboxRetries(ctx context.Context, tx *sql.Tx, b *ingestBatch) error {
	type key struct{ source, resource string }
	var batchLatest map[key]int // in this batch: key -> result index
	kept := b.fresh[:0]
	for _, i := range b.fresh {
		ev := b.results[i].Event
		if ev.SourceID == "" || len(ev.BodyHash) == 0 {
			kept = append(kept, i)
			continue
		}
		if batchLatest == nil {
			batchLatest = map[key]int{}
		}
		k := key{ev.SourceID, ev.ResourceKey}
		if j, ok := batchLatest[k]; ok {
			prev := b.results[j].Event
			if bytes.Equal(prev.BodyHash, ev.BodyHash) && ev.CreatedAt.Sub(prev.CreatedAt) < kinehook.InboxRetryWindow {
				b.results[i] = kinehook.IngestResult{Event: prev, Duplicate: true}
				continue
			}
		} else {
			var hash []byte
			var eventID string
			var at int64
			err := tx.QueryRowContext(ctx, `SELECT body_hash, event_id, at FROM inbox_latest WHERE source_id = ? AND resource_key = ?`,
				ev.SourceID, ev.ResourceKey).Scan(&hash, &eventID, &at)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("sqlite: ingest: inbox latest: %w", err)
			}
			if err == nil && bytes.Equal(hash, ev.BodyHash) && ev.CreatedAt.Sub(fromMicros(at)) < kinehook.InboxRetryWindow {
				first, err := scanEvent(tx.QueryRowContext(ctx, `SELECT `+eventCols+` FROM events WHERE id = ?`, eventID))
				if err == nil {
					b.results[i] = kinehook.IngestResult{Event: first, Duplicate: true}
					continue
				}
				if !errors.Is(err, sql.ErrNoRows) {
					return fmt.Errorf("sqlite: ingest: inbox retry: %w", err)
				}
			}
		}
		batchLatest[k] = i
		kept = append(kept, i)
	}
	b.fresh = kept
	for k, i := range batchLatest {
		ev := b.results[i].Event
		if _, err := tx.ExecContext(ctx, `INSERT INTO inbox_latest (source_id, resource_key, body_hash, event_id, at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (source_id, resource_key) DO UPDATE SET body_hash = excluded.body_hash, event_id = excluded.event_id, at = excluded.at`,
			k.source, k.resource, ev.BodyHash, ev.ID, micros(ev.CreatedAt)); err != nil {
			return fmt.Errorf("sqlite: ingest: inbox latest: %w", err)
		}
	}
	return nil
}
