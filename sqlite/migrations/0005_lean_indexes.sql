-- Fewer index pages per commit on the hot tables (each commit writes every
-- b-tree page it touched to the WAL); the first two as PostgreSQL has them:
-- * events_project_created served only retention; retention now walks
--   events_project (project_id, seq) from the oldest, as PostgreSQL does.
-- * deliveries_endpoint_status indexed every delivery of an endpoint, so each
--   final status moved an entry from one part of it to another. Only two
--   lookups by endpoint exist: its open deliveries (DeleteEndpoint) and its
--   failed ones (FailedDeliveries); a delivery that succeeds leaves both.
-- * events_project_resource held every event, most without a resource key;
--   only a non-empty key is ever looked up (ListEvents writes the index's
--   WHERE into its query so that SQLite uses it).
DROP INDEX events_project_created;
DROP INDEX deliveries_endpoint_status;
CREATE INDEX deliveries_open_endpoint ON deliveries (endpoint_id) WHERE status IN ('pending', 'retrying');
CREATE INDEX deliveries_failed ON deliveries (endpoint_id, created_at) WHERE status = 'failed';
DROP INDEX events_project_resource;
CREATE INDEX events_project_resource ON events (project_id, resource_key) WHERE resource_key <> '';
