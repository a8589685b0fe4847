package statussync

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/kinehook/kinehook"
)

// Notification kinds.
const (
	VideoDone          = "video.done"
	VideoFailed        = "video.failed"
	VideoAborted       = "video.aborted"
	RecordingAvailable = "recording.available"
)

// Notification is something a person should hear about.
type Notification struct {
	Kind    string // VideoDone, VideoFailed, VideoAborted or RecordingAvailable
	VideoID string // the video, or the recording of a live event
	EventID string // the live event, for RecordingAvailable
	Message string // Kinescope's error message, for VideoFailed
}

// Notifier tells people about notifications (e-mail, chat, push...). An
// error makes the webhook answer 500, so the sender retries it and the
// notification is tried again: delivery is at least once.
type Notifier interface {
	Notify(ctx context.Context, n Notification) error
}

// LogNotifier is the default Notifier: it writes each notification to a log.
type LogNotifier struct{ Logger *slog.Logger }

// Notify implements Notifier.
func (l LogNotifier) Notify(_ context.Context, n Notification) error {
	l.Logger.Info("notify", "kind", n.Kind, "video_id", n.VideoID, "event_id", n.EventID, "message", n.Message)
	return nil
}

// Syncer applies webhooks to the Store and notifies on the transitions that
// matter.
//
// Ordering: Kinescope's webhooks carry no event time or sequence number (the
// webhook-timestamp, when a sender sets one, is the time of the attempt, and
// a retry is later than the attempt it repeats), and a video may legitimately
// go back to processing after done (a re-encode, a replaced file). So the
// Syncer cannot tell a stale status from a new one, and applies statuses in
// arrival order instead of guessing; updated_at alone is kept monotonic.
// Notifications fire on a change into done, error or aborted, so a repeat of
// the same status does not notify twice.
type Syncer struct {
	Store    *Store
	Notifier Notifier
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (s *Syncer) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// OnMediaStatus records a video's status; it is a kinehook callback.
func (s *Syncer) OnMediaStatus(ctx context.Context, _ *kinehook.Incoming, m kinehook.MediaData) error {
	return s.Store.inTx(ctx, func(tx *sql.Tx) error {
		prev, err := setVideoStatus(ctx, tx, m.ID, string(m.Status), m.Message, s.now())
		if err != nil {
			return err
		}
		if prev == string(m.Status) {
			return nil
		}
		n := Notification{VideoID: m.ID, Message: m.Message}
		switch m.Status {
		case kinehook.StatusDone:
			n.Kind = VideoDone
		case kinehook.StatusError:
			n.Kind = VideoFailed
		case kinehook.StatusAborted:
			n.Kind = VideoAborted
		default:
			return nil
		}
		// Notifying inside the transaction: if it fails, the status is not
		// recorded either, and the retry does both.
		if err := s.Notifier.Notify(ctx, n); err != nil {
			return fmt.Errorf("notify %s of %s: %w", n.Kind, m.ID, err)
		}
		return nil
	})
}

// onLive returns the callback of one live.* event type.
func (s *Syncer) onLive(t kinehook.EventType) func(context.Context, *kinehook.Incoming, kinehook.LiveData) error {
	status := strings.TrimPrefix(string(t), "live.")
	return func(ctx context.Context, _ *kinehook.Incoming, l kinehook.LiveData) error {
		return s.Store.inTx(ctx, func(tx *sql.Tx) error {
			finished := t == kinehook.EventLiveFinished
			_, prevRecording, err := setLiveStatus(ctx, tx, l.EventID, status, l.VideoID, finished, s.now())
			if err != nil {
				return err
			}
			if !finished || l.VideoID == "" || prevRecording == l.VideoID {
				return nil
			}
			n := Notification{Kind: RecordingAvailable, EventID: l.EventID, VideoID: l.VideoID}
			if err := s.Notifier.Notify(ctx, n); err != nil {
				return fmt.Errorf("notify %s of %s: %w", n.Kind, l.EventID, err)
			}
			return nil
		})
	}
}

// HandlerOptions fills the callbacks of opts (credentials, logger... are the
// caller's) with the Syncer's.
func (s *Syncer) HandlerOptions(opts kinehook.HandlerOptions) kinehook.HandlerOptions {
	opts.OnMediaStatus = s.OnMediaStatus
	opts.OnLiveCreated = s.onLive(kinehook.EventLiveCreated)
	opts.OnLiveConnected = s.onLive(kinehook.EventLiveConnected)
	opts.OnLiveDisconnected = s.onLive(kinehook.EventLiveDisconnected)
	opts.OnLiveFinished = s.onLive(kinehook.EventLiveFinished)
	opts.OnLiveCancelled = s.onLive(kinehook.EventLiveCancelled)
	opts.OnLiveEnabled = s.onLive(kinehook.EventLiveEnabled)
	return opts
}
