// Package statussync keeps a receiver's view of Kinescope webhooks in SQLite:
// a table of videos (status, error message, updated_at) and one of live
// events (status, recording video id, finished_at), filled by a Syncer whose
// callbacks plug into a kinehook.Handler, and a Notifier told when a video
// is done, fails or is aborted and when a stream's recording is available.
//
// It is the library half of the runnable receiver in examples/statussync
// (`go run ./examples/statussync`), importable by other programs. The code
// is in internal/statussync, which `kinehook demo` runs as its receiver (a
// binary does not import examples/); the names here are those same types,
// so the rules live in one place.
package statussync

import (
	"context"

	"github.com/kinehook/kinehook/internal/statussync"
)

// Store is the SQLite database of videos and live events.
type Store = statussync.Store

// Video is a video's row.
type Video = statussync.Video

// LiveEvent is a live event's row.
type LiveEvent = statussync.LiveEvent

// Counts is how many videos and live events are in each status.
type Counts = statussync.Counts

// Notification is something a person should hear about.
type Notification = statussync.Notification

// Notifier tells people about notifications (e-mail, chat, push...).
type Notifier = statussync.Notifier

// LogNotifier is the default Notifier: it writes each notification to a log.
type LogNotifier = statussync.LogNotifier

// Syncer applies webhooks to the Store and notifies on the transitions that matter.
type Syncer = statussync.Syncer

// Kinds of Notification.
const (
	VideoDone          = statussync.VideoDone
	VideoFailed        = statussync.VideoFailed
	VideoAborted       = statussync.VideoAborted
	RecordingAvailable = statussync.RecordingAvailable
)

// ErrNotFound is returned for an unknown video or live event.
var ErrNotFound = statussync.ErrNotFound

// OpenStore opens (creating if needed) the SQLite file at path.
func OpenStore(ctx context.Context, path string) (*Store, error) {
	return statussync.OpenStore(ctx, path)
}
