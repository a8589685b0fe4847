-- Each attempt keeps the id its log line carries (empty for older rows).
ALTER TABLE attempts ADD COLUMN request_id TEXT NOT NULL DEFAULT '';
