-- Initial schema. Times are unix microseconds (0 = unset); statuses are text.

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;

CREATE TABLE projects (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    api_key_hash   BLOB NOT NULL UNIQUE,
    retention_days INTEGER NOT NULL DEFAULT 0,
    operations_url TEXT NOT NULL DEFAULT '',
    created_at     INTEGER NOT NULL
) WITHOUT ROWID;

-- secrets, login and password are sealed blobs: one tag byte (0 = plain,
-- 1 = sealed with the SecretBox) followed by the bytes.
CREATE TABLE endpoints (
    id              TEXT PRIMARY KEY,
    project_id      TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    url             TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    event_types     TEXT NOT NULL DEFAULT '[]',
    headers         TEXT NOT NULL DEFAULT '{}',
    disabled        INTEGER NOT NULL DEFAULT 0,
    disabled_reason TEXT NOT NULL DEFAULT '',
    secrets         BLOB NOT NULL,
    scheme          TEXT NOT NULL DEFAULT 'v1',
    name            TEXT NOT NULL DEFAULT '',
    login           BLOB NOT NULL DEFAULT x'',
    password        BLOB NOT NULL DEFAULT x'',
    rate_limit      REAL NOT NULL DEFAULT 0,
    max_in_flight   INTEGER NOT NULL DEFAULT 0,
    failing_since   INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX endpoints_project ON endpoints (project_id, created_at);

-- seq (the rowid) is the acceptance order; AUTOINCREMENT so it is never reused
-- after retention removed the newest rows.
CREATE TABLE events (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT NOT NULL UNIQUE,
    project_id      TEXT NOT NULL,
    type            TEXT NOT NULL,
    resource_key    TEXT NOT NULL,
    payload         BLOB NOT NULL,
    idempotency_key TEXT NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL
);
-- Newest first per project (the rowid is implied at the end of each index).
CREATE INDEX events_project ON events (project_id);
CREATE INDEX events_project_type ON events (project_id, type);
CREATE INDEX events_project_resource ON events (project_id, resource_key);
CREATE INDEX events_project_created ON events (project_id, created_at);

-- One row per live idempotency key; a key older than 24 h may be taken over.
CREATE TABLE idempotency_keys (
    project_id TEXT NOT NULL,
    key        TEXT NOT NULL,
    event_seq  INTEGER NOT NULL REFERENCES events(seq) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (project_id, key)
) WITHOUT ROWID;
CREATE INDEX idempotency_keys_event ON idempotency_keys (event_seq);

-- No foreign key to endpoints: a deleted endpoint's history stays.
CREATE TABLE deliveries (
    id               TEXT PRIMARY KEY,
    project_id       TEXT NOT NULL,
    event_seq        INTEGER NOT NULL REFERENCES events(seq) ON DELETE CASCADE,
    endpoint_id      TEXT NOT NULL,
    partition        INTEGER NOT NULL,
    status           TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL DEFAULT 0,
    last_status_code INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT NOT NULL DEFAULT '',
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX deliveries_event ON deliveries (event_seq);
-- Only open deliveries are indexed here; the engine recovers them in Seq order.
CREATE INDEX deliveries_open ON deliveries (event_seq, partition) WHERE status IN ('pending', 'retrying');
CREATE INDEX deliveries_endpoint_status ON deliveries (endpoint_id, status, created_at);

CREATE TABLE attempts (
    id              INTEGER PRIMARY KEY,
    delivery_id     TEXT NOT NULL REFERENCES deliveries(id) ON DELETE CASCADE,
    attempted_at    INTEGER NOT NULL,
    status_code     INTEGER NOT NULL,
    error           TEXT NOT NULL,
    duration_ms     REAL NOT NULL,
    response_body   BLOB NOT NULL,
    request_headers TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX attempts_delivery ON attempts (delivery_id, attempted_at);
