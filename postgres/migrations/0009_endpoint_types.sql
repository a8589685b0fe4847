-- Endpoint types (issue 17): an endpoint is a webhook (the default, every
-- row before this one) or an event destination (nats, rabbitmq, redis,
-- kafka). config holds the destination's settings as normalised JSON (''
-- for a webhook; text, not jsonb, so that it reads back byte for byte);
-- credentials holds its secrets' JSON object, sealed as the signing secrets
-- are (NULL when there is none).
ALTER TABLE endpoints ADD COLUMN type text NOT NULL DEFAULT 'webhook';
ALTER TABLE endpoints ADD COLUMN config text NOT NULL DEFAULT '';
ALTER TABLE endpoints ADD COLUMN credentials bytea;
