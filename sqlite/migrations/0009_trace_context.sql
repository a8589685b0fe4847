-- The W3C trace context (traceparent, tracestate) an event was posted with:
-- every attempt to deliver it sends it on. '' when it came without one.
ALTER TABLE events ADD COLUMN traceparent TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN tracestate TEXT NOT NULL DEFAULT '';
