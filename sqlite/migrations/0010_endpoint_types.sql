-- Endpoint types (issue 17): an endpoint is a webhook (the default, every
-- row before this one) or an event destination (nats, rabbitmq, redis,
-- kafka). config holds the destination's settings as normalised JSON (''
-- for a webhook); credentials holds its secrets' JSON object, tagged and
-- sealed as the signing secrets are (empty when there is none).
ALTER TABLE endpoints ADD COLUMN type TEXT NOT NULL DEFAULT 'webhook';
ALTER TABLE endpoints ADD COLUMN config TEXT NOT NULL DEFAULT '';
ALTER TABLE endpoints ADD COLUMN credentials BLOB NOT NULL DEFAULT x'';
