-- Delivery search (GET .../deliveries) pages newest first by (seq, id).
-- deliveries already carries its event's type, resource key and time, so
-- nothing is backfilled. Two indexes are added per delivery, both appended
-- at the right end of their key (seq grows):
-- * deliveries_project_seq: a project's search, with any residual filter;
-- * deliveries_endpoint_seq: an endpoint's search.
-- The partial indexes of open and failed deliveries by endpoint now end in
-- (seq, id), so that an endpoint's open or failed deliveries come newest
-- first straight from them (the open one was (endpoint_id) alone: a search
-- read and sorted the endpoint's whole backlog); failed ones get a (project,
-- seq) twin. deliveries_failed (endpoint_id, created_at) had one reader, an
-- endpoint's recover, which now pages by seq like any search. The partial
-- ones are written as before: an open entry at ingest, a failed one when a
-- delivery fails.
CREATE INDEX deliveries_project_seq ON deliveries (project_id, seq, id);
CREATE INDEX deliveries_endpoint_seq ON deliveries (endpoint_id, seq, id);
DROP INDEX deliveries_open_endpoint;
CREATE INDEX deliveries_open_endpoint ON deliveries (endpoint_id, seq, id) WHERE status IN ('pending', 'retrying');
DROP INDEX deliveries_failed;
CREATE INDEX deliveries_failed ON deliveries (endpoint_id, seq, id) WHERE status = 'failed';
CREATE INDEX deliveries_failed_project ON deliveries (project_id, seq, id) WHERE status = 'failed';
