package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kinehook/kinehook"
)

const portalCols = `id, project_id, token_hash, scope, event_types, branding, created_at, expires_at, revoked_at`

func scanPortalSession(row interface{ Scan(...any) error }) (*kinehook.PortalSession, error) {
	var ps kinehook.PortalSession
	var scope, types, branding string
	var created, expires, revoked int64
	if err := row.Scan(&ps.ID, &ps.ProjectID, &ps.TokenHash, &scope, &types, &branding, &created, &expires, &revoked); err != nil {
		return nil, err
	}
	ps.Scope = kinehook.PortalScope(scope)
	ps.CreatedAt, ps.ExpiresAt, ps.RevokedAt = fromMicros(created), fromMicros(expires), fromMicros(revoked)
	var err error
	if ps.EventTypes, err = decodeStrings(types); err != nil {
		return nil, fmt.Errorf("portal session %s event_types: %w", ps.ID, err)
	}
	if branding != "" {
		ps.Branding = new(kinehook.PortalBranding)
		if err := json.Unmarshal([]byte(branding), ps.Branding); err != nil {
			return nil, fmt.Errorf("portal session %s branding: %w", ps.ID, err)
		}
	}
	return &ps, nil
}

// CreatePortalSession stores a portal session and drops the project's
// sessions expired for longer than kinehook.PortalSessionKeep.
func (s *Store) CreatePortalSession(ctx context.Context, ps *kinehook.PortalSession) error {
	branding := ""
	if ps.Branding != nil {
		b, err := json.Marshal(ps.Branding)
		if err != nil {
			return fmt.Errorf("sqlite: create portal session: branding: %w", err)
		}
		branding = string(b)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: create portal session: %w", err)
	}
	defer rollback(tx)
	_, err = tx.ExecContext(ctx, `INSERT INTO portal_sessions (`+portalCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		ps.ID, ps.ProjectID, ps.TokenHash, string(ps.Scope), encodeStrings(ps.EventTypes), branding,
		micros(ps.CreatedAt), micros(ps.ExpiresAt), micros(ps.RevokedAt))
	switch {
	case err != nil && strings.Contains(err.Error(), "FOREIGN KEY constraint failed"):
		return notFound("project", ps.ProjectID)
	case err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed"):
		return &kinehook.Error{Code: kinehook.ECONFLICT, Message: "a portal session with this id or token exists"}
	case err != nil:
		return fmt.Errorf("sqlite: create portal session: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM portal_sessions WHERE project_id = ? AND expires_at < ?`,
		ps.ProjectID, micros(ps.CreatedAt.Add(-kinehook.PortalSessionKeep))); err != nil {
		return fmt.Errorf("sqlite: create portal session: prune: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: create portal session: commit: %w", err)
	}
	return nil
}

// PortalSessionByHash finds a portal session by its token's hash.
func (s *Store) PortalSessionByHash(ctx context.Context, hash []byte) (*kinehook.PortalSession, error) {
	ps, err := scanPortalSession(s.r.QueryRowContext(ctx, `SELECT `+portalCols+` FROM portal_sessions WHERE token_hash = ?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("portal session with", "hash")
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: portal session by hash: %w", err)
	}
	return ps, nil
}

// ListPortalSessions lists a project's portal sessions, newest first.
func (s *Store) ListPortalSessions(ctx context.Context, projectID string) ([]*kinehook.PortalSession, error) {
	if _, err := s.GetProject(ctx, projectID); err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+portalCols+` FROM portal_sessions WHERE project_id = ? ORDER BY created_at DESC, id DESC`, projectID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list portal sessions of %s: %w", projectID, err)
	}
	defer rows.Close()
	var out []*kinehook.PortalSession
	for rows.Next() {
		ps, err := scanPortalSession(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list portal sessions of %s: %w", projectID, err)
		}
		out = append(out, ps)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list portal sessions of %s: %w", projectID, err)
	}
	return out, nil
}

// RevokePortalSession marks a portal session revoked (once).
func (s *Store) RevokePortalSession(ctx context.Context, projectID, id string, at time.Time) error {
	res, err := s.w.ExecContext(ctx, `UPDATE portal_sessions SET revoked_at = CASE WHEN revoked_at = 0 THEN ? ELSE revoked_at END
		WHERE id = ? AND project_id = ?`, micros(at), id, projectID)
	if err != nil {
		return fmt.Errorf("sqlite: revoke portal session %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("portal session", id)
	}
	return nil
}
