-- The W3C trace context (traceparent, tracestate) an event was posted with:
-- every attempt to deliver it sends it on. '' when it came without one.
-- (A constant default: adding the columns rewrites no row.)
ALTER TABLE events ADD COLUMN traceparent text NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN tracestate text NOT NULL DEFAULT '';
