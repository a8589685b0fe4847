// Package statussync keeps a receiver's view of Kinescope webhooks in SQLite:
// a table of videos (status, error message, updated_at) and one of live
// events (status, recording video id, finished_at), filled by a Syncer whose
// callbacks plug into a kinehook.Handler, and a Notifier told when a video
// is done, fails or is aborted and when a stream's recording is available.
//
// It is the library half of the runnable receiver in examples/statussync
// (`go run ./examples/statussync`), importable so that other programs, such
// as `kinehook demo`, run the very same receiver.
package statussync
