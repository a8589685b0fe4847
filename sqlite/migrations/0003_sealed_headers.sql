-- Custom header values are sealed like secrets (they may carry credentials:
-- a bearer token in a custom Authorization header): headers_sealed holds the
-- headers' JSON object, tagged and sealed as secrets are; empty when there
-- is none. The plain headers column stays for rows written before: Open
-- seals what it holds and empties it (sealing needs the encryption key,
-- which this SQL does not have).
ALTER TABLE endpoints ADD COLUMN headers_sealed BLOB NOT NULL DEFAULT x'';

-- Attempts recorded the values of custom headers in clear; mask them as the
-- engine now records them: "****" and, from 12 characters on, the last 4.
-- Only the headers the engine itself sets are kept as they are.
UPDATE attempts SET request_headers = (
    SELECT json_group_object(h.key, CASE
        WHEN h.key IN ('Content-Type', 'User-Agent', 'Webhook-Id', 'Webhook-Timestamp', 'Webhook-Signature',
                       'Authorization', 'Proxy-Authorization') THEN h.value
        WHEN h.value = '' THEN ''
        WHEN length(h.value) < 12 THEN '****'
        ELSE '****' || substr(h.value, -4) END)
    FROM json_each(attempts.request_headers) AS h)
WHERE json_valid(request_headers) AND json_type(request_headers) = 'object'
  AND EXISTS (SELECT 1 FROM json_each(attempts.request_headers) AS k
              WHERE k.key NOT IN ('Content-Type', 'User-Agent', 'Webhook-Id', 'Webhook-Timestamp', 'Webhook-Signature',
                                  'Authorization', 'Proxy-Authorization'));
