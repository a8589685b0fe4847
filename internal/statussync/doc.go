// Package statussync keeps a receiver's view of Kinescope webhooks in SQLite:
// a table of videos (status, error message, updated_at) and one of live
// events (status, recording video id, finished_at), filled by a Syncer whose
// callbacks plug into a kinehook.Handler, and a Notifier told when a video
// is done, fails or is aborted and when a stream's recording is available.
//
// It lives in internal/ because the binary runs it (`kinehook demo`'s
// receiver) and a binary does not import examples/. The runnable receiver
// is examples/statussync (`go run ./examples/statussync`); programs outside
// this module import it as github.com/kinehook/kinehook/examples/statussync/statussync,
// which names the same types.
package statussync
