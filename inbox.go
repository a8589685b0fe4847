package kinehook

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// An inbox source is a URL (/in/{id}) that a sender, such as Kinescope
// itself, calls with webhooks; each accepted webhook joins the project's
// event log and goes to its endpoints like any other event.

// Inbox source types.
const (
	// InboxKinescope authenticates with HTTP Basic Auth (Kinescope's login
	// and password), the only check Kinescope offers.
	InboxKinescope = "kinescope"
	// InboxStandardWebhooks verifies a Standard Webhooks signature
	// (a whsec_ secret): another kinehook, or any sender that signs so.
	InboxStandardWebhooks = "standard-webhooks"
)

// PrefixInbox is the id prefix of inbox sources.
const PrefixInbox = "inb"

// InboxRetryWindow is how long a body equal to the latest event accepted
// from a source for the same resource counts as a retry of it (Kinescope
// publishes no retry schedule; its retries come within seconds).
const InboxRetryWindow = 5 * time.Minute

// InboxSource is an inbound webhook source of a project. Its credentials
// are write-only: sealed at rest and never shown.
type InboxSource struct {
	ID        string `json:"id"`
	ProjectID string `json:"project_id"`
	Name      string `json:"name"`
	Type      string `json:"type"`
	// Login and Password are the Basic Auth credentials of a kinescope source.
	Login    string `json:"-"`
	Password string `json:"-"`
	// Secret is the whsec_ secret of a standard-webhooks source.
	Secret    string    `json:"-"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Path is the source's inbox path, what the sender is configured to call.
func (s *InboxSource) Path() string { return "/in/" + s.ID }

// InboxStore keeps a project's inbox sources.
type InboxStore interface {
	CreateInboxSource(ctx context.Context, s *InboxSource) error
	GetInboxSource(ctx context.Context, projectID, id string) (*InboxSource, error)
	// InboxSourceByID finds a source of any project (the /in/{id} route
	// knows no project), or ErrNotFound.
	InboxSourceByID(ctx context.Context, id string) (*InboxSource, error)
	ListInboxSources(ctx context.Context, projectID string) ([]*InboxSource, error)
	UpdateInboxSource(ctx context.Context, s *InboxSource) error
	// DeleteInboxSource removes the source; its events stay.
	DeleteInboxSource(ctx context.Context, projectID, id string) error
}

// StateKind tells a video's state from a live stream's.
type StateKind string

// The kinds of state.
const (
	StateMedia StateKind = "media"
	StateLive  StateKind = "live"
)

// StateHistoryLimit bounds the history kept per video or stream: the
// newest entries are kept, older ones dropped. A video passes through about
// five statuses; a stream that reconnects often has more.
const StateHistoryLimit = 50

// StateUpdate is what one event says about its video or stream.
type StateUpdate struct {
	Kind StateKind
	// ID is the video id (media) or the live event id (live).
	ID string
	// Status is the media status or the live state (the type without
	// "live."), kept as it came even when unknown.
	Status  string
	Message string
	VideoID string
}

// StateUpdateOf returns what a parsed event says about state, or nil for
// events that say nothing (operational ones, unknown types without an id).
func StateUpdateOf(p *ParsedEvent) *StateUpdate {
	switch {
	case p.Media != nil:
		return &StateUpdate{Kind: StateMedia, ID: p.Media.ID, Status: string(p.Media.Status), Message: p.Media.Message}
	case p.Live != nil:
		return &StateUpdate{Kind: StateLive, ID: p.Live.EventID, Status: strings.TrimPrefix(string(p.Type), "live."), VideoID: p.Live.VideoID}
	case p.UnknownType && p.Type.IsLive():
		// A live event type Kinescope added: its state is kept as it came.
		var d struct {
			EventID string `json:"event_id"`
			VideoID string `json:"video_id"`
		}
		if json.Unmarshal(p.Raw, &d) != nil || d.EventID == "" {
			return nil
		}
		return &StateUpdate{Kind: StateLive, ID: d.EventID, Status: strings.TrimPrefix(string(p.Type), "live."), VideoID: d.VideoID}
	}
	return nil
}

// StateUpdateOfEvent returns ev.State, or what its payload says when the
// entry point did not parse it (stores call this for every new event).
func StateUpdateOfEvent(ev *Event) *StateUpdate {
	if ev.State != nil {
		if ev.State.ID == "" {
			return nil
		}
		return ev.State
	}
	if ev.Type.Operational() {
		return nil
	}
	// The common shapes in one decoding into a struct; anything else
	// (a field of another type, ...) the way receivers parse.
	var b struct {
		Event string `json:"event"`
		Data  struct {
			ID      string `json:"id"`
			Status  string `json:"status"`
			Message string `json:"message"`
			EventID string `json:"event_id"`
			VideoID string `json:"video_id"`
		} `json:"data"`
	}
	if json.Unmarshal(ev.Payload, &b) == nil && EventType(b.Event) == ev.Type {
		d := &b.Data
		switch {
		case ev.Type == EventMediaUpdateStatus && d.ID != "" && d.Status != "":
			return &StateUpdate{Kind: StateMedia, ID: d.ID, Status: d.Status, Message: d.Message}
		case ev.Type.IsLive() && d.EventID != "":
			u := &StateUpdate{Kind: StateLive, ID: d.EventID, Status: strings.TrimPrefix(string(ev.Type), "live.")}
			if ev.Type == EventLiveFinished || !ev.Type.Known() {
				u.VideoID = d.VideoID
			}
			return u
		}
	}
	p, err := ParseLenient(ev.Payload)
	if err != nil {
		return nil
	}
	return StateUpdateOf(p)
}

// NoState is the Event.State of an event known to say nothing about state.
var NoState = &StateUpdate{}

// StateEntry is one step of a video's or stream's history.
type StateEntry struct {
	// Status is the media status or the live state.
	Status  string    `json:"status"`
	Message string    `json:"message,omitempty"`
	VideoID string    `json:"video_id,omitempty"`
	At      time.Time `json:"at"`
	EventID string    `json:"event_id"`
	// Seq is the event's acceptance order.
	Seq int64 `json:"seq"`
}

// ResourceState is the state of one video or stream: its latest entry in
// acceptance order and its bounded history, oldest first.
type ResourceState struct {
	ProjectID string
	Kind      StateKind
	ID        string
	Status    string
	Message   string
	VideoID   string
	UpdatedAt time.Time
	// StartedAt is when the video's current processing began (its first
	// pending or uploading); zero when none is under way.
	StartedAt time.Time
	History   []StateEntry
	// LastSeq is the Seq of the newest entry, what a repeat is checked
	// against before the history is even read.
	LastSeq int64
	// RawHistory, when not nil, is the history as stored, not yet decoded
	// into History: a store reading states on the hot path leaves it so,
	// and Apply decodes it only when it must change it.
	RawHistory []byte
}

// DecodeHistory decodes RawHistory into History.
func (st *ResourceState) DecodeHistory() error {
	if st.RawHistory == nil {
		return nil
	}
	raw := st.RawHistory
	st.RawHistory = nil
	st.History = nil
	if err := json.Unmarshal(raw, &st.History); err != nil {
		return fmt.Errorf("state %s history: %w", st.ID, err)
	}
	return nil
}

// StateChange is what one accepted event did to a state: the metrics
// follow it.
type StateChange struct {
	Kind   StateKind
	ID     string
	Prev   string // the status before ("" for a new resource)
	Status string
	// Processing is the time from the video's first pending or uploading
	// to this done or error; zero otherwise.
	Processing time.Duration
}

// Apply adds one event to the state, in acceptance order. An event that
// repeats the current status (and message and video) changes nothing: the
// history lists changes. An event with a lower Seq than the newest entry,
// possible when instances commit concurrently, joins the history in place
// and leaves the current status alone. It returns the change the event
// made (Prev equals Status for a repeat; nil for an older event) and
// whether the state must be written.
func (st *ResourceState) Apply(u *StateUpdate, e StateEntry) (*StateChange, bool, error) {
	e.Status, e.Message, e.VideoID = u.Status, u.Message, u.VideoID
	if st.LastSeq > 0 && e.Seq > st.LastSeq && st.Status == e.Status && st.Message == e.Message && (e.VideoID == "" || st.VideoID == e.VideoID) {
		return &StateChange{Kind: st.Kind, ID: st.ID, Prev: st.Status, Status: e.Status}, false, nil
	}
	if err := st.DecodeHistory(); err != nil {
		return nil, false, err
	}
	at := len(st.History)
	for at > 0 && st.History[at-1].Seq > e.Seq {
		at--
	}
	newest := at == len(st.History)
	st.History = slices.Insert(st.History, at, e)
	if n := len(st.History); n > StateHistoryLimit {
		st.History = slices.Delete(st.History, 0, n-StateHistoryLimit)
	}
	if !newest {
		return nil, true, nil // an older event: history only
	}
	st.LastSeq = e.Seq
	ch := &StateChange{Kind: st.Kind, ID: st.ID, Prev: st.Status, Status: e.Status}
	st.Status, st.Message, st.UpdatedAt = e.Status, e.Message, e.At
	if e.VideoID != "" {
		st.VideoID = e.VideoID
	}
	if st.Kind == StateMedia {
		switch MediaStatus(e.Status) {
		case StatusPending, StatusUploading:
			if st.StartedAt.IsZero() {
				st.StartedAt = e.At
			}
		case StatusDone, StatusError:
			if !st.StartedAt.IsZero() {
				ch.Processing = max(e.At.Sub(st.StartedAt), 0)
			}
			st.StartedAt = time.Time{}
		}
	}
	return ch, true, nil
}

// MediaState is a video's state as the API shows it.
type MediaState struct {
	ID        string       `json:"id"`
	Status    string       `json:"status"`
	Message   string       `json:"message"`
	UpdatedAt time.Time    `json:"updated_at"`
	History   []MediaEntry `json:"history"`
}

// MediaEntry is one step of a video's history.
type MediaEntry struct {
	Status  string    `json:"status"`
	Message string    `json:"message"`
	At      time.Time `json:"at"`
	EventID string    `json:"event_id"`
}

// LiveState is a live stream's state as the API shows it.
type LiveState struct {
	EventID   string      `json:"event_id"`
	State     string      `json:"state"`
	VideoID   string      `json:"video_id"`
	UpdatedAt time.Time   `json:"updated_at"`
	History   []LiveEntry `json:"history"`
}

// LiveEntry is one step of a stream's history.
type LiveEntry struct {
	State   string    `json:"state"`
	VideoID string    `json:"video_id,omitempty"`
	At      time.Time `json:"at"`
	EventID string    `json:"event_id"`
}

// Media returns the state of a video as the API shows it.
func (st *ResourceState) Media() *MediaState {
	out := &MediaState{ID: st.ID, Status: st.Status, Message: st.Message, UpdatedAt: st.UpdatedAt, History: make([]MediaEntry, len(st.History))}
	for i, e := range st.History {
		out.History[i] = MediaEntry{Status: e.Status, Message: e.Message, At: e.At, EventID: e.EventID}
	}
	return out
}

// Live returns the state of a stream as the API shows it.
func (st *ResourceState) Live() *LiveState {
	out := &LiveState{EventID: st.ID, State: st.Status, VideoID: st.VideoID, UpdatedAt: st.UpdatedAt, History: make([]LiveEntry, len(st.History))}
	for i, e := range st.History {
		out.History[i] = LiveEntry{State: e.Status, VideoID: e.VideoID, At: e.At, EventID: e.EventID}
	}
	return out
}

// StateFilter selects states in ListStates: by status, updated at or
// after Since, newest update first, paged by Cursor.
type StateFilter struct {
	Status string
	Since  time.Time
	Cursor string
	Limit  int
}

// StateCount is how many videos or streams of a project are in one status.
type StateCount struct {
	ProjectID string
	Status    string
	Count     int64
	// Oldest is the earliest UpdatedAt among them: how long the longest
	// of them has been in this status.
	Oldest time.Time
}

// StateStore answers from the state tables that IngestEvents keeps.
type StateStore interface {
	// GetState returns one video's or stream's state, or ErrNotFound.
	GetState(ctx context.Context, projectID string, kind StateKind, id string) (*ResourceState, error)
	// ListStates pages a project's states, most recently updated first;
	// it returns the next cursor ("" at the end).
	ListStates(ctx context.Context, projectID string, kind StateKind, f StateFilter) ([]*ResourceState, string, error)
	// CountStates counts states by status: of one project, or of every
	// project when projectID is "".
	CountStates(ctx context.Context, projectID string, kind StateKind) ([]StateCount, error)
}

// StateCountKey names one count of StateCounts: a project's videos or
// streams in one status.
type StateCountKey struct {
	ProjectID string
	Kind      StateKind
	Status    string
}

// CountDeltas collects how a batch moves the per-status counts: each
// resource leaves the status it had before the batch (Before) for the one
// it has after. Stores apply the result with the states.
type CountDeltas map[StateCountKey]int64

// Move records that a resource went from status before ("" for a new
// one) to after.
func (d CountDeltas) Move(projectID string, kind StateKind, before, after string) {
	if before == after {
		return
	}
	if before != "" {
		d[StateCountKey{projectID, kind, before}]--
	}
	d[StateCountKey{projectID, kind, after}]++
}
