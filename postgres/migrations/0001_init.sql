-- kinehook schema, version 1. The database is dedicated to kinehook.

CREATE TABLE settings (
    key   text PRIMARY KEY,
    value bytea NOT NULL
);

CREATE TABLE projects (
    id             text PRIMARY KEY,
    name           text NOT NULL,
    api_key_hash   bytea NOT NULL UNIQUE,
    retention_days integer NOT NULL DEFAULT 0,
    operations_url text NOT NULL DEFAULT '',
    created_at     timestamptz NOT NULL
);

CREATE TABLE endpoints (
    id              text PRIMARY KEY,
    project_id      text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    url             text NOT NULL,
    description     text NOT NULL DEFAULT '',
    event_types     text[] NOT NULL DEFAULT '{}',
    headers         jsonb NOT NULL DEFAULT '{}',
    disabled        boolean NOT NULL DEFAULT false,
    disabled_reason text NOT NULL DEFAULT '',
    -- JSON list of {value, expires_at}, sealed with the SecretBox when one is configured.
    secrets         bytea NOT NULL,
    scheme          text NOT NULL DEFAULT '',
    name            text NOT NULL DEFAULT '',
    login           text NOT NULL DEFAULT '',
    -- Basic Auth password, sealed like secrets; NULL when none.
    password        bytea,
    rate_limit      double precision NOT NULL DEFAULT 0,
    max_in_flight   integer NOT NULL DEFAULT 0,
    failing_since   timestamptz,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX endpoints_project ON endpoints (project_id);

-- seq orders events by acceptance; the store allocates it from the bigserial's
-- sequence before inserting, so a batch gets increasing values in input order.
CREATE TABLE events (
    seq             bigserial PRIMARY KEY,
    id              text NOT NULL UNIQUE,
    project_id      text NOT NULL,
    type            text NOT NULL,
    -- bytea so that any key (even one with a NUL) round-trips exactly: the
    -- partition is a hash of it.
    resource_key    bytea NOT NULL,
    payload         bytea NOT NULL,
    idempotency_key text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL
);
CREATE INDEX events_project_seq ON events (project_id, seq);
CREATE INDEX events_project_resource ON events (project_id, resource_key, seq);

-- One row per (project, key): the event the key last created. A key older
-- than 24 h is taken over by the next event that uses it.
CREATE TABLE idempotency_keys (
    project_id text NOT NULL,
    key        text NOT NULL,
    event_id   text NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (project_id, key)
);

CREATE TABLE deliveries (
    id               text PRIMARY KEY,
    project_id       text NOT NULL,
    event_id         text NOT NULL,
    endpoint_id      text NOT NULL,
    event_type       text NOT NULL,
    resource_key     bytea NOT NULL,
    seq              bigint NOT NULL,
    partition        smallint NOT NULL,
    status           text NOT NULL,
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz,
    last_status_code integer NOT NULL DEFAULT 0,
    last_error       text NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);
CREATE INDEX deliveries_event ON deliveries (event_id);
-- The open set, read when a partition is assigned (recovery).
CREATE INDEX deliveries_open ON deliveries (partition, seq) WHERE status IN ('pending', 'retrying');
CREATE INDEX deliveries_open_endpoint ON deliveries (endpoint_id) WHERE status IN ('pending', 'retrying');
CREATE INDEX deliveries_failed ON deliveries (endpoint_id, created_at) WHERE status = 'failed';

CREATE TABLE attempts (
    id              bigserial PRIMARY KEY,
    delivery_id     text NOT NULL,
    attempted_at    timestamptz NOT NULL,
    status_code     integer NOT NULL,
    error           text NOT NULL,
    duration_ms     double precision NOT NULL,
    -- bytea: a response body may hold bytes that text refuses (NUL, bad UTF-8).
    response_body   bytea NOT NULL,
    request_headers jsonb
);
CREATE INDEX attempts_delivery ON attempts (delivery_id, attempted_at, id);

-- Work sharing among instances (see docs/postgres.md).
CREATE TABLE instances (
    id           text PRIMARY KEY,
    started_at   timestamptz NOT NULL,
    heartbeat_at timestamptz NOT NULL
);

CREATE TABLE partition_leases (
    partition  integer PRIMARY KEY,
    owner      text,
    expires_at timestamptz
);
INSERT INTO partition_leases (partition) SELECT generate_series(0, 255);
