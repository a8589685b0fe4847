-- The delivery engine's breaker and pause state of each endpoint, so every
-- instance's API shows the same health.
ALTER TABLE endpoints ADD COLUMN breaker_open boolean NOT NULL DEFAULT false;
ALTER TABLE endpoints ADD COLUMN breaker_probe_at timestamptz;
ALTER TABLE endpoints ADD COLUMN consecutive_failures integer NOT NULL DEFAULT 0;
ALTER TABLE endpoints ADD COLUMN paused_until timestamptz;

-- Delivery statistics rollups, written in the RecordAttempts commit: one row
-- per (endpoint, bucket size, bucket start in unix seconds, shard). Each
-- store opened picks a shard, so instances never wait on each other's row
-- locks; reads sum the shards. l00..l24 are the latency histogram's bins
-- (kinehook.LatencyBoundsMS). No foreign key to endpoints: a deleted
-- endpoint still counts in its project's statistics until the retention
-- cleaner drops its rows.
CREATE TABLE endpoint_stats (
    endpoint_id    text NOT NULL,
    bucket_seconds integer NOT NULL,
    start          bigint NOT NULL,
    shard          smallint NOT NULL,
    project_id     text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    succeeded      bigint NOT NULL DEFAULT 0,
    failed         bigint NOT NULL DEFAULT 0,
    retried        bigint NOT NULL DEFAULT 0,
    min_ms         double precision NOT NULL DEFAULT 0,
    max_ms         double precision NOT NULL DEFAULT 0,
    l00 bigint NOT NULL DEFAULT 0,
    l01 bigint NOT NULL DEFAULT 0,
    l02 bigint NOT NULL DEFAULT 0,
    l03 bigint NOT NULL DEFAULT 0,
    l04 bigint NOT NULL DEFAULT 0,
    l05 bigint NOT NULL DEFAULT 0,
    l06 bigint NOT NULL DEFAULT 0,
    l07 bigint NOT NULL DEFAULT 0,
    l08 bigint NOT NULL DEFAULT 0,
    l09 bigint NOT NULL DEFAULT 0,
    l10 bigint NOT NULL DEFAULT 0,
    l11 bigint NOT NULL DEFAULT 0,
    l12 bigint NOT NULL DEFAULT 0,
    l13 bigint NOT NULL DEFAULT 0,
    l14 bigint NOT NULL DEFAULT 0,
    l15 bigint NOT NULL DEFAULT 0,
    l16 bigint NOT NULL DEFAULT 0,
    l17 bigint NOT NULL DEFAULT 0,
    l18 bigint NOT NULL DEFAULT 0,
    l19 bigint NOT NULL DEFAULT 0,
    l20 bigint NOT NULL DEFAULT 0,
    l21 bigint NOT NULL DEFAULT 0,
    l22 bigint NOT NULL DEFAULT 0,
    l23 bigint NOT NULL DEFAULT 0,
    l24 bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (endpoint_id, bucket_seconds, start, shard)
) WITH (fillfactor = 70);
CREATE INDEX endpoint_stats_project ON endpoint_stats (project_id, bucket_seconds, start);
