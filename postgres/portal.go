package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kinehook/kinehook"
)

const portalCols = `id, project_id, token_hash, scope, event_types, branding, created_at, expires_at, revoked_at`

func scanPortalSession(row pgx.Row) (*kinehook.PortalSession, error) {
	var ps kinehook.PortalSession
	var scope string
	var revoked *time.Time
	if err := row.Scan(&ps.ID, &ps.ProjectID, &ps.TokenHash, &scope, &ps.EventTypes, &ps.Branding,
		&ps.CreatedAt, &ps.ExpiresAt, &revoked); err != nil {
		return nil, err
	}
	ps.Scope = kinehook.PortalScope(scope)
	if len(ps.EventTypes) == 0 {
		ps.EventTypes = nil
	}
	ps.CreatedAt, ps.ExpiresAt, ps.RevokedAt = ps.CreatedAt.UTC(), ps.ExpiresAt.UTC(), fromNull(revoked)
	return &ps, nil
}

// CreatePortalSession stores a portal session and drops the project's
// sessions expired for longer than kinehook.PortalSessionKeep.
func (s *Store) CreatePortalSession(ctx context.Context, ps *kinehook.PortalSession) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO portal_sessions (`+portalCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			ps.ID, ps.ProjectID, ps.TokenHash, string(ps.Scope), textArray(ps.EventTypes), ps.Branding,
			ps.CreatedAt.UTC(), ps.ExpiresAt.UTC(), nullTime(ps.RevokedAt))
		switch {
		case isForeignKeyViolation(err):
			return fmt.Errorf("postgres: create portal session: project %s: %w", ps.ProjectID, kinehook.ErrNotFound)
		case isUniqueViolation(err):
			return &kinehook.Error{Code: kinehook.ECONFLICT, Message: "a portal session with this id or token exists"}
		case err != nil:
			return wrap("create portal session", err)
		}
		_, err = tx.Exec(ctx, `DELETE FROM portal_sessions WHERE project_id = $1 AND expires_at < $2`,
			ps.ProjectID, ps.CreatedAt.Add(-kinehook.PortalSessionKeep).UTC())
		return wrap("create portal session: prune", err)
	})
}

// PortalSessionByHash finds a portal session by its token's hash.
func (s *Store) PortalSessionByHash(ctx context.Context, hash []byte) (*kinehook.PortalSession, error) {
	ps, err := scanPortalSession(s.pool.QueryRow(ctx, `SELECT `+portalCols+` FROM portal_sessions WHERE token_hash = $1`, hash))
	return ps, wrap("portal session by hash", err)
}

// ListPortalSessions lists a project's portal sessions, newest first.
func (s *Store) ListPortalSessions(ctx context.Context, projectID string) ([]*kinehook.PortalSession, error) {
	if _, err := s.GetProject(ctx, projectID); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT `+portalCols+` FROM portal_sessions WHERE project_id = $1 ORDER BY created_at DESC, id DESC`, projectID)
	if err != nil {
		return nil, wrap("list portal sessions", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*kinehook.PortalSession, error) { return scanPortalSession(r) })
	return out, wrap("list portal sessions", err)
}

// RevokePortalSession marks a portal session revoked (once).
func (s *Store) RevokePortalSession(ctx context.Context, projectID, id string, at time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE portal_sessions SET revoked_at = COALESCE(revoked_at, $3) WHERE id = $1 AND project_id = $2`,
		id, projectID, at.UTC())
	if err != nil {
		return wrap("revoke portal session", err)
	}
	if tag.RowsAffected() == 0 {
		return wrap("revoke portal session "+id, pgx.ErrNoRows)
	}
	return nil
}
