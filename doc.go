// Package kinehook is the vocabulary of Kinescope-compatible webhooks and a
// receiver for them.
//
// The event catalog (EventTypes, MediaStatuses, Catalog, SampleEvent) follows
// Kinescope's "Webhook Types" document byte for byte: a body is
// {"event": TYPE, "data": {...}}. ParseStrict checks what a producer may
// send (it agrees with the embedded JSON Schemas); ParseLenient is for
// receivers and passes unknown types and statuses on, flagged.
//
// Signatures follow Standard Webhooks: Sign and SignRequest make the
// webhook-id, webhook-timestamp and webhook-signature headers ("v1" HMAC
// with whsec_ secrets, "v1a" ed25519 with whsk_ keys), Verify and Verifier
// check them (5-minute tolerance both ways, constant-time comparison), and
// CheckBasicAuth checks the HTTP Basic credentials Kinescope itself sends.
//
// Handler is an http.Handler for receivers: it reads the raw body (1 MiB
// limit), authenticates, parses leniently, drops duplicates through a
// Deduper and calls a typed callback per event type, answering with the
// status codes a sender's retry logic expects.
//
// The rest of the package (Store, Dispatcher, Endpoint, ...) is the domain
// of the kinehook server, which sends these webhooks.
package kinehook
