-- The customer portal (issue 18): short-lived sessions a platform makes per
-- customer visit (only the token's hash is stored), and the origins whose
-- pages may frame a project's portal.
ALTER TABLE projects ADD COLUMN portal_origins text[] NOT NULL DEFAULT '{}';

CREATE TABLE portal_sessions (
    id          text PRIMARY KEY,
    project_id  text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    token_hash  bytea NOT NULL UNIQUE,
    scope       text NOT NULL,
    event_types text[] NOT NULL DEFAULT '{}',
    branding    jsonb,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);
CREATE INDEX portal_sessions_project ON portal_sessions (project_id, created_at);
