-- Inbox sources (issue 19): URLs a sender such as Kinescope calls, whose
-- webhooks join the project's event log; and the state of every video and
-- live stream, kept from the events a project accepts.

-- credentials: the JSON {"login","password","secret"}, sealed with the
-- SecretBox when one is configured.
CREATE TABLE inbox_sources (
    id          text PRIMARY KEY,
    project_id  text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name        text NOT NULL DEFAULT '',
    type        text NOT NULL,
    credentials bytea NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX inbox_sources_project ON inbox_sources (project_id, created_at, id);

ALTER TABLE events ADD COLUMN source_id text NOT NULL DEFAULT '';
CREATE INDEX events_project_source ON events (project_id, source_id, seq) WHERE source_id <> '';

-- The latest event accepted from a source per resource: an equal body
-- within 5 minutes is a retry of it.
CREATE TABLE inbox_latest (
    source_id    text NOT NULL,
    resource_key bytea NOT NULL,
    body_hash    bytea NOT NULL,
    event_id     text NOT NULL,
    at           timestamptz NOT NULL,
    PRIMARY KEY (source_id, resource_key)
);

-- One row per video (kind 'media') or live stream (kind 'live'); history is
-- a JSON array of at most 50 entries (kinehook.StateHistoryLimit).
CREATE TABLE resource_state (
    project_id text NOT NULL,
    kind       text NOT NULL,
    id         text NOT NULL,
    status     text NOT NULL,
    message    text NOT NULL DEFAULT '',
    video_id   text NOT NULL DEFAULT '',
    updated_at timestamptz NOT NULL,
    started_at timestamptz,
    last_seq   bigint NOT NULL DEFAULT 0,
    history    jsonb NOT NULL DEFAULT '[]',
    PRIMARY KEY (project_id, kind, id)
);
CREATE INDEX resource_state_updated ON resource_state (project_id, kind, updated_at, id);
CREATE INDEX resource_state_status ON resource_state (project_id, kind, status, updated_at, id);

-- How many videos (streams) of a project are in each status, kept with
-- resource_state in the same transaction: the dashboard's counts never scan.
CREATE TABLE state_counts (
    project_id text NOT NULL,
    kind       text NOT NULL,
    status     text NOT NULL,
    count      bigint NOT NULL,
    PRIMARY KEY (project_id, kind, status)
);

-- Automatic certificates (serve --acme-domain): the ACME account key and the
-- certificates with their private keys, sealed like endpoint secrets, shared
-- by every instance.
CREATE TABLE acme_cache (
    key        text PRIMARY KEY,
    data       bytea NOT NULL,
    updated_at timestamptz NOT NULL
);
