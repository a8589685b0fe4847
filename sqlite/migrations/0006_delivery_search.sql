-- Delivery search (GET .../deliveries) pages newest first by event_seq:
-- * deliveries_endpoint_seq serves every search of one endpoint. It takes
--   the place of deliveries_open_endpoint (endpoint_id) WHERE open, so that
--   an ingest commit writes as many index entries as before: that one was
--   written for each new delivery too, and again when it became final (the
--   entry left the index); this one is written once and a status change
--   leaves it alone. An endpoint's entries are appended at the right end of
--   its part of the b-tree: a commit writes about one more page per endpoint
--   it wrote to (sqlite/search_frames_test.go has the figures). The lookups
--   of an endpoint's open deliveries (DeleteEndpoint, the search by an open
--   status) walk deliveries_open, the open set, instead.
-- * A project's search without an endpoint walks the events indexes
--   (events_project, events_project_type, events_project_resource) newest
--   first and joins deliveries_event: nothing new to write at ingest.
-- * Failed deliveries are found by (endpoint, seq) and (project, seq) in
--   partial indexes written only when a delivery fails. They replace
--   deliveries_failed (endpoint_id, created_at), whose only reader, an
--   endpoint's recover, now pages by seq like any search.
CREATE INDEX deliveries_endpoint_seq ON deliveries (endpoint_id, event_seq);
DROP INDEX deliveries_open_endpoint;
DROP INDEX deliveries_failed;
CREATE INDEX deliveries_failed ON deliveries (endpoint_id, event_seq) WHERE status = 'failed';
CREATE INDEX deliveries_failed_project ON deliveries (project_id, event_seq) WHERE status = 'failed';
