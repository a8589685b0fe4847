package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kinehook/kinehook"
)

const keyCols = `id, project_id, name, scope, prefix, key_hash, created_at, last_used_at`

func scanKey(row interface{ Scan(...any) error }, extra ...any) (*kinehook.APIKey, error) {
	var k kinehook.APIKey
	var scope string
	var created, used int64
	dst := append([]any{&k.ID, &k.ProjectID, &k.Name, &scope, &k.Prefix, &k.Hash, &created, &used}, extra...)
	if err := row.Scan(dst...); err != nil {
		return nil, err
	}
	k.Scope = kinehook.KeyScope(scope)
	k.CreatedAt, k.LastUsedAt = fromMicros(created), fromMicros(used)
	return &k, nil
}

// insertKey stores k within tx; a key whose hash exists is ECONFLICT, a
// missing project ENOTFOUND.
func insertKey(ctx context.Context, tx *sql.Tx, k *kinehook.APIKey) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO api_keys (`+keyCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		k.ID, k.ProjectID, k.Name, string(k.Scope), k.Prefix, k.Hash, micros(k.CreatedAt), micros(k.LastUsedAt))
	switch {
	case err == nil:
		return nil
	case strings.Contains(err.Error(), "FOREIGN KEY constraint failed"):
		return notFound("project", k.ProjectID)
	case strings.Contains(err.Error(), "UNIQUE constraint failed"):
		return &kinehook.Error{Code: kinehook.ECONFLICT, Message: "an API key with this id or hash exists"}
	default:
		return fmt.Errorf("insert API key: %w", err)
	}
}

// CreateKey stores a new API key of k.ProjectID.
func (s *Store) CreateKey(ctx context.Context, k *kinehook.APIKey) error {
	if k.CreatedAt.IsZero() {
		k.CreatedAt = time.Now().UTC().Truncate(time.Microsecond)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: create API key: %w", err)
	}
	defer rollback(tx)
	if err := insertKey(ctx, tx, k); err != nil {
		return fmt.Errorf("sqlite: create API key: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: create API key: commit: %w", err)
	}
	return nil
}

// ListKeys lists a project's API keys, oldest first.
func (s *Store) ListKeys(ctx context.Context, projectID string) ([]*kinehook.APIKey, error) {
	if _, err := s.GetProject(ctx, projectID); err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+keyCols+` FROM api_keys WHERE project_id = ? ORDER BY created_at, id`, projectID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list API keys of %s: %w", projectID, err)
	}
	defer rows.Close()
	var out []*kinehook.APIKey
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list API keys of %s: %w", projectID, err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list API keys of %s: %w", projectID, err)
	}
	return out, nil
}

// KeyByHash finds an API key by its hash, with its project.
func (s *Store) KeyByHash(ctx context.Context, hash []byte) (*kinehook.APIKey, *kinehook.Project, error) {
	var p kinehook.Project
	var created int64
	var origins string
	k, err := scanKey(s.r.QueryRowContext(ctx, `SELECT k.id, k.project_id, k.name, k.scope, k.prefix, k.key_hash, k.created_at, k.last_used_at,
			p.name, p.retention_days, p.operations_url, p.created_at, p.portal_origins
		FROM api_keys k JOIN projects p ON p.id = k.project_id WHERE k.key_hash = ?`, hash),
		&p.Name, &p.RetentionDays, &p.OperationsURL, &created, &origins)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, notFound("API key with", "hash")
	}
	if err != nil {
		return nil, nil, fmt.Errorf("sqlite: API key by hash: %w", err)
	}
	p.ID, p.CreatedAt = k.ProjectID, fromMicros(created)
	if p.PortalOrigins, err = decodeStrings(origins); err != nil {
		return nil, nil, fmt.Errorf("sqlite: API key by hash: project portal_origins: %w", err)
	}
	return k, &p, nil
}

// DeleteKey removes an API key unless it is its project's last full key.
func (s *Store) DeleteKey(ctx context.Context, projectID, id string) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: delete API key %s: %w", id, err)
	}
	defer rollback(tx)
	var scope string
	err = tx.QueryRowContext(ctx, `SELECT scope FROM api_keys WHERE id = ? AND project_id = ?`, id, projectID).Scan(&scope)
	if errors.Is(err, sql.ErrNoRows) {
		return notFound("API key", id)
	}
	if err != nil {
		return fmt.Errorf("sqlite: delete API key %s: %w", id, err)
	}
	if kinehook.KeyScope(scope) == kinehook.ScopeFull {
		var others int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM api_keys WHERE project_id = ? AND scope = 'full' AND id <> ?`,
			projectID, id).Scan(&others); err != nil {
			return fmt.Errorf("sqlite: delete API key %s: %w", id, err)
		}
		if others == 0 {
			return errLastFullKey
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM api_keys WHERE id = ? AND project_id = ?`, id, projectID); err != nil {
		return fmt.Errorf("sqlite: delete API key %s: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: delete API key %s: commit: %w", id, err)
	}
	return nil
}

// errLastFullKey refuses to remove a project's last full key.
var errLastFullKey = &kinehook.Error{Code: kinehook.ECONFLICT,
	Message: "this is the project's last key with scope full: create another full key first (the admin key can always make one)"}

// NoteKeyUse moves a key's last use forward and fills in its prefix.
func (s *Store) NoteKeyUse(ctx context.Context, hash []byte, prefix string, at time.Time) error {
	_, err := s.w.ExecContext(ctx, `UPDATE api_keys SET last_used_at = max(last_used_at, ?),
		prefix = CASE WHEN prefix = '' THEN ? ELSE prefix END WHERE key_hash = ?`, micros(at), prefix, hash)
	if err != nil {
		return fmt.Errorf("sqlite: note API key use: %w", err)
	}
	return nil
}

// DeleteProject removes a project and everything in it in one
// transaction: its events (and so, by foreign key, their deliveries, the
// attempts and the idempotency keys), then the project (and so its
// endpoints and API keys).
func (s *Store) DeleteProject(ctx context.Context, id string) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: delete project %s: %w", id, err)
	}
	defer rollback(tx)
	var one int
	err = tx.QueryRowContext(ctx, `SELECT 1 FROM projects WHERE id = ?`, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return notFound("project", id)
	}
	if err != nil {
		return fmt.Errorf("sqlite: delete project %s: %w", id, err)
	}
	for _, q := range []string{
		`DELETE FROM idempotency_keys WHERE project_id = ?`,
		`DELETE FROM events WHERE project_id = ?`,
		`DELETE FROM projects WHERE id = ?`,
	} {
		if _, err := tx.ExecContext(ctx, q, id); err != nil {
			return fmt.Errorf("sqlite: delete project %s: %w", id, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: delete project %s: commit: %w", id, err)
	}
	return nil
}
