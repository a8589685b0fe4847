-- The delivery engine's breaker and pause state of each endpoint, so every
-- API answer (and every instance) shows the same health. Times are unix
-- microseconds, 0 = unset.
ALTER TABLE endpoints ADD COLUMN breaker_open INTEGER NOT NULL DEFAULT 0;
ALTER TABLE endpoints ADD COLUMN breaker_probe_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE endpoints ADD COLUMN consecutive_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE endpoints ADD COLUMN paused_until INTEGER NOT NULL DEFAULT 0;

-- Delivery statistics rollups, written in the RecordAttempts commit: one row
-- per (endpoint, bucket size, bucket start in unix seconds). l00..l24 are the
-- latency histogram's bins (kinehook.LatencyBoundsMS). No foreign key to
-- endpoints: a deleted endpoint still counts in its project's statistics
-- until the retention cleaner drops its rows.
CREATE TABLE endpoint_stats (
    endpoint_id    TEXT NOT NULL,
    bucket_seconds INTEGER NOT NULL,
    start          INTEGER NOT NULL,
    project_id     TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    succeeded      INTEGER NOT NULL DEFAULT 0,
    failed         INTEGER NOT NULL DEFAULT 0,
    retried        INTEGER NOT NULL DEFAULT 0,
    min_ms         REAL NOT NULL DEFAULT 0,
    max_ms         REAL NOT NULL DEFAULT 0,
    l00 INTEGER NOT NULL DEFAULT 0,
    l01 INTEGER NOT NULL DEFAULT 0,
    l02 INTEGER NOT NULL DEFAULT 0,
    l03 INTEGER NOT NULL DEFAULT 0,
    l04 INTEGER NOT NULL DEFAULT 0,
    l05 INTEGER NOT NULL DEFAULT 0,
    l06 INTEGER NOT NULL DEFAULT 0,
    l07 INTEGER NOT NULL DEFAULT 0,
    l08 INTEGER NOT NULL DEFAULT 0,
    l09 INTEGER NOT NULL DEFAULT 0,
    l10 INTEGER NOT NULL DEFAULT 0,
    l11 INTEGER NOT NULL DEFAULT 0,
    l12 INTEGER NOT NULL DEFAULT 0,
    l13 INTEGER NOT NULL DEFAULT 0,
    l14 INTEGER NOT NULL DEFAULT 0,
    l15 INTEGER NOT NULL DEFAULT 0,
    l16 INTEGER NOT NULL DEFAULT 0,
    l17 INTEGER NOT NULL DEFAULT 0,
    l18 INTEGER NOT NULL DEFAULT 0,
    l19 INTEGER NOT NULL DEFAULT 0,
    l20 INTEGER NOT NULL DEFAULT 0,
    l21 INTEGER NOT NULL DEFAULT 0,
    l22 INTEGER NOT NULL DEFAULT 0,
    l23 INTEGER NOT NULL DEFAULT 0,
    l24 INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (endpoint_id, bucket_seconds, start)
) WITHOUT ROWID;
CREATE INDEX endpoint_stats_project ON endpoint_stats (project_id, bucket_seconds, start);
