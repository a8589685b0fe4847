-- The customer portal (issue 18): short-lived sessions a platform makes per
-- customer visit (only the token's hash is stored), and the origins whose
-- pages may frame a project's portal (a JSON array; '' for none).
ALTER TABLE projects ADD COLUMN portal_origins TEXT NOT NULL DEFAULT '';

CREATE TABLE portal_sessions (
    id          TEXT PRIMARY KEY,
    project_id  TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    token_hash  BLOB NOT NULL UNIQUE,
    scope       TEXT NOT NULL,
    event_types TEXT NOT NULL DEFAULT '',
    branding    TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    revoked_at  INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX portal_sessions_project ON portal_sessions (project_id, created_at);
