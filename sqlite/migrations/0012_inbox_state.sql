-- Inbox sources (issue 19): URLs a sender such as Kinescope calls, whose
-- webhooks join the project's event log; and the state of every video and
-- live stream, kept from the events a project accepts.

-- credentials: a sealed blob like endpoints' secrets (tag byte, then the
-- JSON {"login","password","secret"}, sealed with the SecretBox).
CREATE TABLE inbox_sources (
    id          TEXT PRIMARY KEY,
    project_id  TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name        TEXT NOT NULL DEFAULT '',
    type        TEXT NOT NULL,
    credentials BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX inbox_sources_project ON inbox_sources (project_id, created_at);

ALTER TABLE events ADD COLUMN source_id TEXT NOT NULL DEFAULT '';
CREATE INDEX events_project_source ON events (project_id, source_id) WHERE source_id <> '';

-- The latest event accepted from a source per resource: an equal body
-- within 5 minutes is a retry of it.
CREATE TABLE inbox_latest (
    source_id    TEXT NOT NULL,
    resource_key TEXT NOT NULL,
    body_hash    BLOB NOT NULL,
    event_id     TEXT NOT NULL,
    at           INTEGER NOT NULL,
    PRIMARY KEY (source_id, resource_key)
) WITHOUT ROWID;

-- One row per video (kind 'media') or live stream (kind 'live'); history is
-- a JSON array of at most 50 entries (kinehook.StateHistoryLimit).
CREATE TABLE resource_state (
    project_id TEXT NOT NULL,
    kind       TEXT NOT NULL,
    id         TEXT NOT NULL,
    status     TEXT NOT NULL,
    message    TEXT NOT NULL DEFAULT '',
    video_id   TEXT NOT NULL DEFAULT '',
    updated_at INTEGER NOT NULL,
    started_at INTEGER NOT NULL DEFAULT 0,
    last_seq   INTEGER NOT NULL DEFAULT 0,
    history    TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (project_id, kind, id)
) WITHOUT ROWID;
CREATE INDEX resource_state_updated ON resource_state (project_id, kind, updated_at, id);
CREATE INDEX resource_state_status ON resource_state (project_id, kind, status, updated_at, id);

-- How many videos (streams) of a project are in each status, kept with
-- resource_state in the same transaction: the dashboard's counts never scan.
CREATE TABLE state_counts (
    project_id TEXT NOT NULL,
    kind       TEXT NOT NULL,
    status     TEXT NOT NULL,
    count      INTEGER NOT NULL,
    PRIMARY KEY (project_id, kind, status)
) WITHOUT ROWID;
