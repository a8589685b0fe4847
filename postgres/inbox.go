package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

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
		return nil, fmt.Errorf("postgres: inbox source credentials: %w", err)
	}
	return s.seal(b)
}

func (s *Store) scanInbox(row pgx.Row) (*kinehook.InboxSource, error) {
	var src kinehook.InboxSource
	var sealed []byte
	if err := row.Scan(&src.ID, &src.ProjectID, &src.Name, &src.Type, &sealed, &src.CreatedAt, &src.UpdatedAt); err != nil {
		return nil, err
	}
	plain, err := s.open(sealed)
	if err != nil {
		return nil, fmt.Errorf("inbox source %s: %w", src.ID, err)
	}
	var c inboxCredentials
	if err := json.Unmarshal(plain, &c); err != nil {
		return nil, fmt.Errorf("inbox source %s credentials: %w", src.ID, err)
	}
	src.Login, src.Password, src.Secret = c.Login, c.Password, c.Secret
	src.CreatedAt, src.UpdatedAt = src.CreatedAt.UTC(), src.UpdatedAt.UTC()
	return &src, nil
}

// CreateInboxSource stores a new inbox source, its credentials sealed.
func (s *Store) CreateInboxSource(ctx context.Context, src *kinehook.InboxSource) error {
	sealed, err := s.sealInbox(src)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO inbox_sources (`+inboxCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		src.ID, src.ProjectID, cleanText(src.Name), src.Type, sealed, src.CreatedAt.UTC(), src.UpdatedAt.UTC())
	if err != nil && isForeignKeyViolation(err) {
		return fmt.Errorf("postgres: create inbox source: project %s: %w", src.ProjectID, kinehook.ErrNotFound)
	}
	return wrap("create inbox source", err)
}

// GetInboxSource returns a project's inbox source or ErrNotFound.
func (s *Store) GetInboxSource(ctx context.Context, projectID, id string) (*kinehook.InboxSource, error) {
	src, err := s.scanInbox(s.pool.QueryRow(ctx, `SELECT `+inboxCols+` FROM inbox_sources WHERE id = $1 AND project_id = $2`, id, projectID))
	return src, wrap("get inbox source", err)
}

// InboxSourceByID returns an inbox source of any project or ErrNotFound.
func (s *Store) InboxSourceByID(ctx context.Context, id string) (*kinehook.InboxSource, error) {
	src, err := s.scanInbox(s.pool.QueryRow(ctx, `SELECT `+inboxCols+` FROM inbox_sources WHERE id = $1`, id))
	return src, wrap("get inbox source", err)
}

// ListInboxSources lists a project's inbox sources, oldest first.
func (s *Store) ListInboxSources(ctx context.Context, projectID string) ([]*kinehook.InboxSource, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+inboxCols+` FROM inbox_sources WHERE project_id = $1 ORDER BY created_at, id`, projectID)
	if err != nil {
		return nil, wrap("list inbox sources", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*kinehook.InboxSource, error) { return s.scanInbox(r) })
	if out == nil {
		out = []*kinehook.InboxSource{}
	}
	return out, wrap("list inbox sources", err)
}

// UpdateInboxSource stores a source's name, type and credentials.
func (s *Store) UpdateInboxSource(ctx context.Context, src *kinehook.InboxSource) error {
	sealed, err := s.sealInbox(src)
	if err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, `UPDATE inbox_sources SET name = $3, type = $4, credentials = $5, updated_at = $6 WHERE id = $1 AND project_id = $2`,
		src.ID, src.ProjectID, cleanText(src.Name), src.Type, sealed, src.UpdatedAt.UTC())
	if err != nil {
		return wrap("update inbox source", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: update inbox source %s: %w", src.ID, kinehook.ErrNotFound)
	}
	return nil
}

// DeleteInboxSource removes a source; its events stay in the log.
func (s *Store) DeleteInboxSource(ctx context.Context, projectID, id string) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM inbox_sources WHERE id = $1 AND project_id = $2`, id, projectID)
		if err != nil {
			return wrap("delete inbox source", err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("postgres: delete inbox source %s: %w", id, kinehook.ErrNotFound)
		}
		_, err = tx.Exec(ctx, `DELETE FROM inbox_latest WHERE source_id = $1`, id)
		return wrap("delete inbox source", err)
	})
}

// resealInbox re-seals every inbox source's credentials (key rotation).
func resealInbox(ctx context.Context, tx pgx.Tx, reseal func([]byte) ([]byte, error)) (int, error) {
	rows, err := tx.Query(ctx, `SELECT id, credentials FROM inbox_sources ORDER BY id FOR UPDATE`)
	if err != nil {
		return 0, err
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
			return 0, err
		}
		all = append(all, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	n := 0
	for _, r := range all {
		out, err := reseal(r.c)
		if err != nil {
			return 0, fmt.Errorf("inbox source %s: %w", r.id, err)
		}
		if bytes.Equal(out, r.c) {
			continue
		}
		if _, err := tx.Exec(ctx, `UPDATE inbox_sources SET credentials = $2 WHERE id = $1`, r.id, out); err != nil {
			return 0, fmt.Errorf("inbox source %s: %w", r.id, err)
		}
		n++
	}
	return n, nil
}
