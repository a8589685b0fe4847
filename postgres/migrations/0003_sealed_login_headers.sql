-- Basic Auth logins and custom header values are sealed like secrets: they
-- may carry credentials (a bearer token in a custom Authorization header).
-- login_sealed and headers_sealed (the JSON object of the headers) are NULL
-- when there is none. The plain columns login and headers stay for rows an
-- older binary wrote: Open seals what they hold and empties them (sealing
-- needs the encryption key, which this SQL does not have).
ALTER TABLE endpoints ADD COLUMN login_sealed bytea;
ALTER TABLE endpoints ADD COLUMN headers_sealed bytea;

-- Attempts recorded the values of custom headers in clear; mask them as the
-- engine now records them: "****" and, from 12 characters on, the last 4.
-- Only the headers the engine itself sets are kept as they are.
UPDATE attempts SET request_headers = (
    SELECT jsonb_object_agg(h.key, CASE
        WHEN h.key IN ('Content-Type', 'User-Agent', 'Webhook-Id', 'Webhook-Timestamp', 'Webhook-Signature',
                       'Authorization', 'Proxy-Authorization') THEN h.value
        WHEN h.value = '' THEN ''
        WHEN char_length(h.value) < 12 THEN '****'
        ELSE '****' || right(h.value, 4) END)
    FROM jsonb_each_text(request_headers) AS h)
WHERE request_headers IS NOT NULL AND jsonb_typeof(request_headers) = 'object'
  AND EXISTS (SELECT 1 FROM jsonb_object_keys(request_headers) AS k
              WHERE k NOT IN ('Content-Type', 'User-Agent', 'Webhook-Id', 'Webhook-Timestamp', 'Webhook-Signature',
                              'Authorization', 'Proxy-Authorization'));
