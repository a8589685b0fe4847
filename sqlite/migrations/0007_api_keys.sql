-- A project has any number of API keys, each with a name and a scope. The
-- key a project had becomes its first key: "default", scope full, prefix
-- unknown (only its hash is stored; the server fills the prefix in at the
-- key's first use). Ids of migrated keys are "key_" and 26 hex digits.
CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    project_id   TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    scope        TEXT NOT NULL,
    prefix       TEXT NOT NULL DEFAULT '',
    key_hash     BLOB NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX api_keys_project ON api_keys (project_id, created_at);

INSERT INTO api_keys (id, project_id, name, scope, key_hash, created_at)
SELECT 'key_' || lower(hex(randomblob(13))), id, 'default', 'full', api_key_hash, created_at FROM projects;

-- projects.api_key_hash is no longer read. SQLite cannot drop a UNIQUE
-- column, so it keeps a random placeholder (new projects get one too): a
-- revoked key's hash must not linger there.
UPDATE projects SET api_key_hash = randomblob(32);
