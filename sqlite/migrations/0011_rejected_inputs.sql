-- Messages an ingest source acknowledged without publishing (invalid
-- bodies), newest first per project; pruned by count and age.
CREATE TABLE rejected_inputs (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT NOT NULL UNIQUE,
    project_id  TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    source      TEXT NOT NULL,
    message_id  TEXT NOT NULL DEFAULT '',
    code        TEXT NOT NULL,
    reason      TEXT NOT NULL,
    body        BLOB NOT NULL,
    body_size   INTEGER NOT NULL,
    received_at INTEGER NOT NULL
);
CREATE INDEX rejected_inputs_project ON rejected_inputs (project_id, seq);
CREATE INDEX rejected_inputs_received ON rejected_inputs (received_at);
-- A message redelivered after a crash is recorded once.
CREATE UNIQUE INDEX rejected_inputs_message ON rejected_inputs (project_id, source, message_id) WHERE message_id <> '';
