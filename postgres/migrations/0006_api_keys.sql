-- A project has any number of API keys, each with a name and a scope. The
-- key a project had becomes its first key: "default", scope full, prefix
-- unknown (only its hash is stored; the server fills the prefix in at the
-- key's first use). Ids of migrated keys are "key_" and 26 hex digits.
CREATE TABLE api_keys (
    id           text PRIMARY KEY,
    project_id   text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name         text NOT NULL,
    scope        text NOT NULL,
    prefix       text NOT NULL DEFAULT '',
    key_hash     bytea NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL,
    last_used_at timestamptz
);
CREATE INDEX api_keys_project ON api_keys (project_id, created_at);

INSERT INTO api_keys (id, project_id, name, scope, key_hash, created_at)
SELECT 'key_' || substr(encode(sha256(convert_to(id || random()::text || clock_timestamp()::text, 'UTF8')), 'hex'), 1, 26),
       id, 'default', 'full', api_key_hash, created_at
FROM projects;

ALTER TABLE projects DROP COLUMN api_key_hash;
