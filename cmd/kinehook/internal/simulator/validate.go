package simulator

import (
	"fmt"
	"regexp"

	"github.com/kinehook/kinehook"
)

// errorMessageRe is the shape of the seed's error message:
// "import error: code=610100, message=cannot download link: ..., http_code=404".
var errorMessageRe = regexp.MustCompile(`^[a-z]+ error: code=\d{6}, message=\S.*$`)

// mediaNext lists the statuses allowed after each media status (suspended is
// handled apart: it must resume the status it paused, or end in aborted).
var mediaNext = map[kinehook.MediaStatus][]kinehook.MediaStatus{
	kinehook.StatusPending:       {kinehook.StatusUploading, kinehook.StatusAborted, kinehook.StatusError, kinehook.StatusSuspended},
	kinehook.StatusUploading:     {kinehook.StatusPreProcessing, kinehook.StatusAborted, kinehook.StatusError, kinehook.StatusSuspended},
	kinehook.StatusPreProcessing: {kinehook.StatusProcessing, kinehook.StatusAborted, kinehook.StatusError, kinehook.StatusSuspended},
	kinehook.StatusProcessing:    {kinehook.StatusDone, kinehook.StatusAborted, kinehook.StatusError, kinehook.StatusSuspended},
}

// liveNext lists the events allowed after each live event.
var liveNext = map[kinehook.EventType][]kinehook.EventType{
	kinehook.EventLiveCreated:      {kinehook.EventLiveConnected, kinehook.EventLiveCancelled},
	kinehook.EventLiveConnected:    {kinehook.EventLiveEnabled, kinehook.EventLiveDisconnected, kinehook.EventLiveFinished, kinehook.EventLiveCancelled},
	kinehook.EventLiveEnabled:      {kinehook.EventLiveDisconnected, kinehook.EventLiveFinished, kinehook.EventLiveCancelled},
	kinehook.EventLiveDisconnected: {kinehook.EventLiveConnected, kinehook.EventLiveCancelled},
}

func contains[T comparable](xs []T, x T) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// CheckLifecycle reports whether bodies form one complete, valid lifecycle of
// a single resource: every body passes kinehook.ParseStrict, all are about the
// same resource, and the order follows the platform's rules. Media: pending ->
// uploading -> pre-processing -> processing -> done, ending early in error
// (with a message in the seed's format) or aborted, and any suspended resuming
// the status it paused. Live: created -> connected -> enabled ->
// (disconnected -> connected)* -> finished with a video_id, or cancelled.
func CheckLifecycle(bodies [][]byte) error {
	if len(bodies) == 0 {
		return fmt.Errorf("empty lifecycle")
	}
	evs := make([]*kinehook.ParsedEvent, len(bodies))
	for i, b := range bodies {
		ev, err := kinehook.ParseStrict(b)
		if err != nil {
			return fmt.Errorf("event %d: %w", i, err)
		}
		if i > 0 && ev.ResourceKey() != evs[0].ResourceKey() {
			return fmt.Errorf("event %d is about %q, not %q", i, ev.ResourceKey(), evs[0].ResourceKey())
		}
		evs[i] = ev
	}
	if evs[0].Media != nil {
		return checkMedia(evs)
	}
	return checkLive(evs)
}

func checkMedia(evs []*kinehook.ParsedEvent) error {
	var prev, paused kinehook.MediaStatus
	for i, ev := range evs {
		if ev.Media == nil {
			return fmt.Errorf("event %d: %s in a media lifecycle", i, ev.Type)
		}
		st := ev.Media.Status
		switch {
		case i == 0 && st != kinehook.StatusPending:
			return fmt.Errorf("media lifecycle starts with %q, not pending", st)
		case i == 0:
		case prev == kinehook.StatusSuspended:
			if st != paused && st != kinehook.StatusAborted {
				return fmt.Errorf("event %d: suspended resumes to %q, not the paused %q", i, st, paused)
			}
		case !contains(mediaNext[prev], st):
			return fmt.Errorf("event %d: %q may not follow %q", i, st, prev)
		}
		if st == kinehook.StatusSuspended {
			paused = prev
		}
		if st == kinehook.StatusError {
			if !errorMessageRe.MatchString(ev.Media.Message) {
				return fmt.Errorf("event %d: error message %q is not in the seed's format", i, ev.Media.Message)
			}
		} else if ev.Media.Message != "" {
			return fmt.Errorf("event %d: status %q carries a message", i, st)
		}
		prev = st
	}
	switch prev {
	case kinehook.StatusDone, kinehook.StatusError, kinehook.StatusAborted:
		return nil
	}
	return fmt.Errorf("media lifecycle ends with %q, not done, error or aborted", prev)
}

func checkLive(evs []*kinehook.ParsedEvent) error {
	var prev kinehook.EventType
	enabled := false
	for i, ev := range evs {
		if ev.Live == nil {
			return fmt.Errorf("event %d: %s in a live lifecycle", i, ev.Type)
		}
		t := ev.Type
		switch {
		case i == 0 && t != kinehook.EventLiveCreated:
			return fmt.Errorf("live lifecycle starts with %s, not live.created", t)
		case i == 0:
		case !contains(liveNext[prev], t):
			return fmt.Errorf("event %d: %s may not follow %s", i, t, prev)
		case t == kinehook.EventLiveEnabled && enabled:
			return fmt.Errorf("event %d: live.enabled twice", i)
		case t == kinehook.EventLiveDisconnected && !enabled:
			return fmt.Errorf("event %d: live.disconnected before live.enabled", i)
		case t == kinehook.EventLiveFinished && !enabled:
			return fmt.Errorf("event %d: live.finished before live.enabled", i)
		}
		if t == kinehook.EventLiveEnabled {
			enabled = true
		}
		if t == kinehook.EventLiveFinished && ev.Live.VideoID == "" {
			return fmt.Errorf("event %d: live.finished without the recording's video_id", i)
		}
		prev = t
	}
	if prev != kinehook.EventLiveFinished && prev != kinehook.EventLiveCancelled {
		return fmt.Errorf("live lifecycle ends with %s, not live.finished or live.cancelled", prev)
	}
	return nil
}
