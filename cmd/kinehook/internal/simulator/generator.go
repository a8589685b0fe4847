// Package simulator generates a video platform's webhook event streams:
// media lifecycles (pending -> uploading -> pre-processing -> processing ->
// done, some ending in error or aborted, some passing through suspended) and
// live-stream lifecycles (created -> connected -> enabled -> (disconnected ->
// connected)* -> finished, or cancelled). A seeded Generator is
// deterministic; Run posts the streams, each resource's events in lifecycle
// order, many resources interleaved.
package simulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/kinehook/kinehook"
)

// Kind is what a stream is about.
type Kind string

// Stream kinds.
const (
	KindMedia Kind = "media"
	KindLive  Kind = "live"
)

// Outcomes of a stream (its last event).
const (
	OutcomeDone      = "done"
	OutcomeError     = "error"
	OutcomeAborted   = "aborted"
	OutcomeFinished  = "finished"
	OutcomeCancelled = "cancelled"
)

// Config shapes the generated streams.
type Config struct {
	// Media and Live are how many lifecycles of each kind to generate. When
	// both are 0 the generator is endless, with one live stream for every
	// EndlessMediaPerLive media.
	Media, Live int
	// ErrorShare and AbortShare are the shares of media lifecycles ending in
	// error and aborted (their sum is at most 1); SuspendShare the share
	// passing through suspended.
	ErrorShare, AbortShare, SuspendShare float64
	// CancelShare is the share of live lifecycles ending in live.cancelled.
	CancelShare float64
	// ReconnectsMax bounds the disconnected -> connected rounds of a live stream.
	ReconnectsMax int
	// Seed makes the streams reproducible.
	Seed uint64
}

// EndlessMediaPerLive is the media:live mix of an endless generator.
const EndlessMediaPerLive = 4

// DefaultConfig returns the shares kinehook simulate uses by default.
func DefaultConfig() Config {
	return Config{Media: 100, Live: 20, ErrorShare: 0.1, AbortShare: 0.05, SuspendShare: 0.05, CancelShare: 0.1, ReconnectsMax: 2}
}

// Validate checks that counts and shares make sense.
func (c Config) Validate() error {
	share := func(name string, v float64) error {
		if v < 0 || v > 1 || v != v {
			return fmt.Errorf("%s must be between 0 and 1, got %v", name, v)
		}
		return nil
	}
	switch {
	case c.Media < 0 || c.Live < 0:
		return errors.New("media and live counts must not be negative")
	case c.ReconnectsMax < 0:
		return errors.New("reconnects-max must not be negative")
	}
	for _, s := range []struct {
		n string
		v float64
	}{{"error-share", c.ErrorShare}, {"abort-share", c.AbortShare}, {"suspend-share", c.SuspendShare}, {"cancel-share", c.CancelShare}} {
		if err := share(s.n, s.v); err != nil {
			return err
		}
	}
	if c.ErrorShare+c.AbortShare > 1 {
		return fmt.Errorf("error-share + abort-share must be at most 1, got %v", c.ErrorShare+c.AbortShare)
	}
	return nil
}

// Stream is one resource's lifecycle: its webhook bodies in the order they
// must be delivered.
type Stream struct {
	Kind Kind
	// Resource is the video id (media) or live event id (live): the
	// resource key the sender orders deliveries by.
	Resource string
	// Bodies are complete webhook bodies {"event": TYPE, "data": {...}}.
	Bodies [][]byte
	// Outcome is how the lifecycle ends (OutcomeDone, ...).
	Outcome string
	// Suspended is true when a media lifecycle passes through suspended.
	Suspended bool
	// Reconnects counts the disconnected -> connected rounds of a live stream.
	Reconnects int
}

// Generator makes streams. It is not safe for concurrent use.
type Generator struct {
	cfg                 Config
	rng                 *rand.Rand
	mediaLeft, liveLeft int
	endless             bool
	generated           int
}

// NewGenerator returns a generator of the streams cfg describes.
func NewGenerator(cfg Config) (*Generator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("simulator: %w", err)
	}
	return &Generator{
		cfg:       cfg,
		rng:       rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		mediaLeft: cfg.Media,
		liveLeft:  cfg.Live,
		endless:   cfg.Media == 0 && cfg.Live == 0,
	}, nil
}

// Next returns the next stream, or false when the configured counts are done.
// Media and live streams come mixed in a random (seeded) order.
func (g *Generator) Next() (*Stream, bool) {
	var live bool
	switch {
	case g.endless:
		live = g.rng.IntN(EndlessMediaPerLive+1) == 0
	case g.mediaLeft+g.liveLeft == 0:
		return nil, false
	default:
		live = g.rng.IntN(g.mediaLeft+g.liveLeft) < g.liveLeft
		if live {
			g.liveLeft--
		} else {
			g.mediaLeft--
		}
	}
	g.generated++
	if live {
		return g.live(), true
	}
	return g.media(), true
}

// uuid returns a random (seeded) version 4 UUID, like Kinescope's video ids.
func (g *Generator) uuid() string {
	var b [16]byte
	for i := 0; i < 16; i += 8 {
		v := g.rng.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// liveEventID returns an id shaped like the seed's "abc123-def456-ghi789".
func (g *Generator) liveEventID() string {
	const letters = "abcdefghijklmnopqrstuvwxyz"
	const digits = "0123456789"
	b := make([]byte, 0, 20)
	for grp := range 3 {
		if grp > 0 {
			b = append(b, '-')
		}
		for range 3 {
			b = append(b, letters[g.rng.IntN(len(letters))])
		}
		for range 3 {
			b = append(b, digits[g.rng.IntN(len(digits))])
		}
	}
	return string(b)
}

func mustBody(t kinehook.EventType, data any) []byte {
	d, err := json.Marshal(data)
	if err != nil {
		panic(fmt.Sprintf("simulator: encode %s data: %v", t, err))
	}
	b, err := json.Marshal(kinehook.Envelope{Event: t, Data: d})
	if err != nil {
		panic(fmt.Sprintf("simulator: encode %s: %v", t, err))
	}
	return b
}

// mediaStages is the happy path of a video.
var mediaStages = []kinehook.MediaStatus{
	kinehook.StatusPending, kinehook.StatusUploading, kinehook.StatusPreProcessing,
	kinehook.StatusProcessing, kinehook.StatusDone,
}

func (g *Generator) media() *Stream {
	s := &Stream{Kind: KindMedia, Resource: g.uuid(), Outcome: OutcomeDone}
	statuses := []kinehook.MediaStatus{kinehook.StatusPending}
	u := g.rng.Float64()
	switch {
	case u < g.cfg.ErrorShare:
		s.Outcome = OutcomeError
		// Errors arise while uploading (imports by link), pre-processing or processing.
		stop := 1 + g.rng.IntN(3)
		statuses = append(statuses, mediaStages[1:stop+1]...)
	case u < g.cfg.ErrorShare+g.cfg.AbortShare:
		s.Outcome = OutcomeAborted
		stop := g.rng.IntN(4)
		statuses = append(statuses, mediaStages[1:stop+1]...)
	default:
		statuses = append(statuses, mediaStages[1:4]...)
	}
	if g.rng.Float64() < g.cfg.SuspendShare {
		// Uploading or processing pauses, then resumes where it was.
		var at []int
		for i, st := range statuses {
			if st == kinehook.StatusUploading || st == kinehook.StatusProcessing {
				at = append(at, i)
			}
		}
		if len(at) > 0 {
			i := at[g.rng.IntN(len(at))]
			resumed := append([]kinehook.MediaStatus{}, statuses[:i+1]...)
			resumed = append(resumed, kinehook.StatusSuspended, statuses[i])
			statuses = append(resumed, statuses[i+1:]...)
			s.Suspended = true
		}
	}
	for _, st := range statuses {
		s.Bodies = append(s.Bodies, mustBody(kinehook.EventMediaUpdateStatus, kinehook.MediaData{ID: s.Resource, Status: st}))
	}
	last := kinehook.MediaData{ID: s.Resource, Status: kinehook.MediaStatus(s.Outcome)}
	if s.Outcome == OutcomeError {
		last.Message = g.errorMessage(statuses[len(statuses)-1])
	}
	s.Bodies = append(s.Bodies, mustBody(kinehook.EventMediaUpdateStatus, last))
	return s
}

var (
	errorHosts = []string{"example.ru", "example.com", "media.example.org", "cdn.example.net", "files.example.ru"}
	errorFiles = []string{"test.mp4", "lecture-01.mov", "promo_final.mkv", "webinar-2024.mp4", "clip.avi", "course/intro.mp4", "raw/interview.mxf"}
	httpCodes  = []int{404, 404, 404, 403, 410, 500, 502}
)

// errorMessage returns an error message in the format of the seed's example
// ("import error: code=610100, message=cannot download link: ..., http_code=404"),
// fitting the stage the video failed in.
func (g *Generator) errorMessage(stage kinehook.MediaStatus) string {
	pick := func(xs []string) string { return xs[g.rng.IntN(len(xs))] }
	link := "https://" + pick(errorHosts) + "/" + pick(errorFiles)
	file := errorFiles[g.rng.IntN(len(errorFiles))]
	switch stage {
	case kinehook.StatusUploading:
		switch g.rng.IntN(4) {
		case 0, 1:
			return fmt.Sprintf("import error: code=610100, message=cannot download link: %s, http_code=%d", link, httpCodes[g.rng.IntN(len(httpCodes))])
		case 2:
			return fmt.Sprintf("import error: code=610102, message=download timeout: %s, http_code=504", link)
		default:
			return "upload error: code=620100, message=upload interrupted: connection reset by peer"
		}
	case kinehook.StatusPreProcessing:
		if g.rng.IntN(2) == 0 {
			return "preprocess error: code=630100, message=unsupported container format: " + file
		}
		return "preprocess error: code=630101, message=no video stream found in " + file
	default:
		switch g.rng.IntN(3) {
		case 0:
			return "transcode error: code=640100, message=unsupported codec: " + pick([]string{"prores_ks", "dnxhd", "cinepak", "vp6f"})
		case 1:
			return fmt.Sprintf("transcode error: code=640102, message=corrupted frame at 00:%02d:%02d.%03d", g.rng.IntN(60), g.rng.IntN(60), g.rng.IntN(1000))
		default:
			return "transcode error: code=640105, message=source duration exceeds the plan limit"
		}
	}
}

func (g *Generator) live() *Stream {
	s := &Stream{Kind: KindLive, Resource: g.liveEventID(), Outcome: OutcomeFinished}
	types := []kinehook.EventType{kinehook.EventLiveCreated}
	if g.rng.Float64() < g.cfg.CancelShare {
		s.Outcome = OutcomeCancelled
		// Most cancelled streams never went on air; some were cancelled mid-way.
		switch n := g.rng.IntN(10); {
		case n < 6:
		case n < 8:
			types = append(types, kinehook.EventLiveConnected)
		default:
			types = append(types, kinehook.EventLiveConnected, kinehook.EventLiveEnabled)
		}
		types = append(types, kinehook.EventLiveCancelled)
	} else {
		types = append(types, kinehook.EventLiveConnected, kinehook.EventLiveEnabled)
		s.Reconnects = g.rng.IntN(g.cfg.ReconnectsMax + 1)
		for range s.Reconnects {
			types = append(types, kinehook.EventLiveDisconnected, kinehook.EventLiveConnected)
		}
		types = append(types, kinehook.EventLiveFinished)
	}
	for _, t := range types {
		d := kinehook.LiveData{EventID: s.Resource}
		if t == kinehook.EventLiveFinished {
			d.VideoID = g.uuid()
		}
		s.Bodies = append(s.Bodies, mustBody(t, d))
	}
	return s
}
