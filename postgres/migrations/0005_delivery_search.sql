-- Delivery search (GET .../deliveries) pages newest first by (seq, id).
-- deliveries already carries its event's type, resource key and time, so
-- nothing is backfilled. Two indexes are added per delivery, both appended
-- at the right end of their key (seq grows):
-- * deliveries_project_seq: a project's search, with any residual filter;
-- * deliveries_endpoint_seq: an endpoint's search.
-- Failed deliveries are found by (endpoint, seq) and (project, seq) in
-- partial indexes written only when a delivery fails. They replace
-- deliveries_failed (endpoint_id, created_at), whose only reader, an
-- endpoint's recover, now pages by seq like any search.
CREATE INDEX deliveries_project_seq ON deliveries (project_id, seq, id);
CREATE INDEX deliveries_endpoint_seq ON deliveries (endpoint_id, seq, id);
DROP INDEX deliveries_failed;
CREATE INDEX deliveries_failed ON deliveries (endpoint_id, seq, id) WHERE status = 'failed';
CREATE INDEX deliveries_failed_project ON deliveries (project_id, seq, id) WHERE status = 'failed';
