-- Messages an ingest source acknowledged without publishing (invalid
-- bodies), newest first per project; pruned by count and age.
CREATE TABLE rejected_inputs (
    seq         bigserial PRIMARY KEY,
    id          text NOT NULL UNIQUE,
    project_id  text NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    source      text NOT NULL,
    message_id  text NOT NULL DEFAULT '',
    code        text NOT NULL,
    reason      text NOT NULL,
    body        bytea NOT NULL,
    body_size   integer NOT NULL,
    received_at timestamptz NOT NULL
);
CREATE INDEX rejected_inputs_project ON rejected_inputs (project_id, seq);
CREATE INDEX rejected_inputs_received ON rejected_inputs (received_at);
-- A message redelivered after a crash is recorded once.
CREATE UNIQUE INDEX rejected_inputs_message ON rejected_inputs (project_id, source, message_id) WHERE message_id <> '';
