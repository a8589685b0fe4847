package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kinehook/kinehook"
)

const keyCols = `k.id, k.project_id, k.name, k.scope, k.prefix, k.key_hash, k.created_at, k.last_used_at`

func scanKey(row pgx.Row, extra ...any) (*kinehook.APIKey, error) {
	var k kinehook.APIKey
	var scope string
	var used *time.Time
	dst := append([]any{&k.ID, &k.ProjectID, &k.Name, &scope, &k.Prefix, &k.Hash, &k.CreatedAt, &used}, extra...)
	if err := row.Scan(dst...); err != nil {
		return nil, err
	}
	k.Scope = kinehook.KeyScope(scope)
	k.CreatedAt = k.CreatedAt.UTC()
	if used != nil {
		k.LastUsedAt = used.UTC()
	}
	return &k, nil
}

// insertKey stores k within tx; a key whose hash exists is ECONFLICT, a
// missing project ENOTFOUND.
func insertKey(ctx context.Context, tx pgx.Tx, k *kinehook.APIKey) error {
	_, err := tx.Exec(ctx, `INSERT INTO api_keys (id, project_id, name, scope, prefix, key_hash, created_at, last_used_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		k.ID, k.ProjectID, k.Name, string(k.Scope), k.Prefix, k.Hash, k.CreatedAt.UTC(), nullTime(k.LastUsedAt))
	switch {
	case isForeignKeyViolation(err):
		return wrap("create API key: project "+k.ProjectID, pgx.ErrNoRows)
	case isUniqueViolation(err):
		return &kinehook.Error{Code: kinehook.ECONFLICT, Message: "an API key with this id or hash exists"}
	}
	return wrap("create API key", err)
}

// CreateKey stores a new API key of k.ProjectID.
func (s *Store) CreateKey(ctx context.Context, k *kinehook.APIKey) error {
	if k.CreatedAt.IsZero() {
		k.CreatedAt = now()
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return insertKey(ctx, tx, k) })
}

// ListKeys lists a project's API keys, oldest first.
func (s *Store) ListKeys(ctx context.Context, projectID string) ([]*kinehook.APIKey, error) {
	if _, err := s.GetProject(ctx, projectID); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT `+keyCols+` FROM api_keys k WHERE k.project_id = $1 ORDER BY k.created_at, k.id`, projectID)
	if err != nil {
		return nil, wrap("list API keys", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*kinehook.APIKey, error) { return scanKey(r) })
	return out, wrap("list API keys", err)
}

// KeyByHash finds an API key by its hash, with its project.
func (s *Store) KeyByHash(ctx context.Context, hash []byte) (*kinehook.APIKey, *kinehook.Project, error) {
	var p kinehook.Project
	k, err := scanKey(s.pool.QueryRow(ctx, `SELECT `+keyCols+`, p.name, p.retention_days, p.operations_url, p.created_at, p.portal_origins
		FROM api_keys k JOIN projects p ON p.id = k.project_id WHERE k.key_hash = $1`, hash),
		&p.Name, &p.RetentionDays, &p.OperationsURL, &p.CreatedAt, &p.PortalOrigins)
	if err != nil {
		return nil, nil, wrap("API key by hash", err)
	}
	p.ID, p.CreatedAt = k.ProjectID, p.CreatedAt.UTC()
	if len(p.PortalOrigins) == 0 {
		p.PortalOrigins = nil
	}
	return k, &p, nil
}

// DeleteKey removes an API key unless it is its project's last full key.
// The project's row is locked first, so that two revocations of a
// project's keys run one after the other and the count below holds.
func (s *Store) DeleteKey(ctx context.Context, projectID, id string) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM projects WHERE id = $1 FOR UPDATE`, projectID).Scan(&one); err != nil {
			return wrap("delete API key: project "+projectID, err)
		}
		var scope string
		if err := tx.QueryRow(ctx, `SELECT scope FROM api_keys WHERE id = $1 AND project_id = $2`, id, projectID).Scan(&scope); err != nil {
			return wrap("delete API key "+id, err)
		}
		if kinehook.KeyScope(scope) == kinehook.ScopeFull {
			var others int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM api_keys WHERE project_id = $1 AND scope = 'full' AND id <> $2`,
				projectID, id).Scan(&others); err != nil {
				return wrap("delete API key "+id, err)
			}
			if others == 0 {
				return &kinehook.Error{Code: kinehook.ECONFLICT,
					Message: "this is the project's last key with scope full: create another full key first (the admin key can always make one)"}
			}
		}
		_, err := tx.Exec(ctx, `DELETE FROM api_keys WHERE id = $1 AND project_id = $2`, id, projectID)
		return wrap("delete API key "+id, err)
	})
}

// NoteKeyUse moves a key's last use forward and fills in its prefix.
func (s *Store) NoteKeyUse(ctx context.Context, hash []byte, prefix string, at time.Time) error {
	_, err := s.pool.Exec(ctx, `UPDATE api_keys SET
		last_used_at = CASE WHEN $2::timestamptz IS NULL OR last_used_at >= $2 THEN last_used_at ELSE $2 END,
		prefix = CASE WHEN prefix = '' THEN $3 ELSE prefix END
		WHERE key_hash = $1`, hash, nullTime(at), prefix)
	return wrap("note API key use", err)
}

// DeleteProject removes a project and everything in it in one
// transaction. The project's row is locked first (key changes wait), then
// attempts, deliveries, idempotency keys and events go, each found through
// the project's events (events_project_seq, deliveries_event), and last the
// project (its endpoints and API keys by foreign key).
func (s *Store) DeleteProject(ctx context.Context, id string) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM projects WHERE id = $1 FOR UPDATE`, id).Scan(&one); err != nil {
			return wrap("delete project "+id, err)
		}
		for _, q := range []string{
			`DELETE FROM attempts a USING deliveries d, events e
				WHERE e.project_id = $1 AND d.event_id = e.id AND a.delivery_id = d.id`,
			`DELETE FROM deliveries d USING events e WHERE e.project_id = $1 AND d.event_id = e.id`,
			`DELETE FROM idempotency_keys WHERE project_id = $1`,
			`DELETE FROM events WHERE project_id = $1`,
			`DELETE FROM projects WHERE id = $1`,
		} {
			if _, err := tx.Exec(ctx, q, id); err != nil {
				return wrap("delete project "+id, err)
			}
		}
		return nil
	})
}
