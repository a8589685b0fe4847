package kinehook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// EndpointCLI is the type of the temporary endpoint a `kinehook listen
// --server` connection holds: its deliveries go down that connection to the
// developer's machine, not to a URL. Only a listener makes one (the API
// refuses to create it), so it is not in EndpointTypes.
const EndpointCLI = "cli"

// ListenerState is a cli endpoint's Config: which connection holds it and
// since when it was last seen. The instance holding the connection
// refreshes SeenAt while it is connected, so an endpoint not seen for the
// grace period (its CLI gone, or the instance crashed) can be removed by
// any instance.
type ListenerState struct {
	// Session identifies one connection; a reconnect gets a new one, so a
	// late disconnect of the old connection does not mark the new one gone.
	Session string `json:"session"`
	// Instance is the server instance holding the connection.
	Instance string `json:"instance"`
	// Connected is whether a CLI holds the endpoint now.
	Connected bool `json:"connected"`
	// SeenAt is the last heartbeat while connected, or the disconnect.
	SeenAt time.Time `json:"seen_at"`
	// Client is the CLI's User-Agent, for people.
	Client string `json:"client,omitempty"`
}

// ParseListenerState reads a cli endpoint's Config; the zero state (not
// connected, never seen) when it does not parse.
func ParseListenerState(config json.RawMessage) ListenerState {
	var s ListenerState
	if len(config) > 0 {
		_ = json.Unmarshal(config, &s)
	}
	return s
}

// Marshal is the state as an endpoint's Config.
func (s ListenerState) Marshal() json.RawMessage {
	b, _ := json.Marshal(s) // a struct of strings, a bool and a time: cannot fail
	return b
}

// Listen wire protocol: JSON text frames over the WebSocket of
// GET /v1/projects/{pid}/listen. The server sends one ListenHello, then a
// ListenDelivery per attempt; the CLI answers each delivery with a
// ListenResult carrying the same ID.
const (
	FrameHello    = "hello"
	FrameDelivery = "delivery"
	FrameResult   = "result"
)

// Bounds of the wire protocol.
const (
	// MaxListenResponse bounds the response excerpt a result carries.
	MaxListenResponse = 4 << 10
	// MaxListenError bounds a result's error text.
	MaxListenError = 1 << 10
	// MaxListenFrameID bounds a delivery's correlation id.
	MaxListenFrameID = 200
)

// ListenFrame is one message of the listen protocol. Type says which of
// its field groups is set.
type ListenFrame struct {
	Type string `json:"type"`

	// Hello (server to CLI, first): the temporary endpoint, its project,
	// filter and current signing secret.
	EndpointID string   `json:"endpoint_id,omitempty"`
	ProjectID  string   `json:"project_id,omitempty"`
	Secret     string   `json:"secret,omitempty"`
	EventTypes []string `json:"event_types,omitempty"`
	// Resumed is true when the hello continues an existing endpoint.
	Resumed bool `json:"resumed,omitempty"`

	// ID correlates a delivery and its result: one attempt.
	ID string `json:"id,omitempty"`

	// Delivery (server to CLI): the request to make, exactly as signed.
	// Body is the payload's bytes (base64 in JSON, so any byte survives).
	WebhookID string            `json:"webhook_id,omitempty"`
	EventType string            `json:"event_type,omitempty"`
	Resource  string            `json:"resource,omitempty"`
	Headers   map[string]string `json:"headers,omitempty"`
	Body      []byte            `json:"body,omitempty"`
	// TimeoutMS is what is left of the attempt's time when it was sent.
	TimeoutMS int64 `json:"timeout_ms,omitempty"`
	// Attempt is the attempt's number for its delivery, from 1.
	Attempt int `json:"attempt,omitempty"`

	// Result (CLI to server): the local answer. Status is the HTTP status
	// (0 when there was none, with Error saying why; Timeout when the
	// local app did not answer in time). RetryAfter is the answer's
	// Retry-After header as given.
	Status     int     `json:"status,omitempty"`
	DurationMS float64 `json:"duration_ms,omitempty"`
	Response   string  `json:"response,omitempty"`
	Error      string  `json:"error,omitempty"`
	Timeout    bool    `json:"timeout,omitempty"`
	RetryAfter string  `json:"retry_after,omitempty"`
}

// ParseListenFrame reads one frame and checks what its type requires: a
// hello has an endpoint id and a secret, a delivery an id and a body, a
// result an id, a status 0 or 100..599, and texts within the bounds above.
// Unknown fields are ignored (a newer peer may send more).
func ParseListenFrame(data []byte) (*ListenFrame, error) {
	var f ListenFrame
	d := json.NewDecoder(bytes.NewReader(data))
	if err := d.Decode(&f); err != nil {
		return nil, fmt.Errorf("listen frame: %w", err)
	}
	if d.More() {
		return nil, fmt.Errorf("listen frame: data after the JSON object")
	}
	if err := f.check(); err != nil {
		return nil, fmt.Errorf("listen frame: %w", err)
	}
	return &f, nil
}

func (f *ListenFrame) check() error {
	switch f.Type {
	case FrameHello:
		if f.EndpointID == "" || f.Secret == "" {
			return fmt.Errorf("hello without endpoint_id or secret")
		}
		return nil
	case FrameDelivery:
		if err := checkFrameID(f.ID); err != nil {
			return err
		}
		if len(f.Body) == 0 {
			return fmt.Errorf("delivery %s without body", f.ID)
		}
		if f.TimeoutMS < 0 {
			return fmt.Errorf("delivery %s: negative timeout_ms", f.ID)
		}
		return nil
	case FrameResult:
		if err := checkFrameID(f.ID); err != nil {
			return err
		}
		switch {
		case f.Status != 0 && (f.Status < 100 || f.Status > 599):
			return fmt.Errorf("result %s: status %d is not an HTTP status", f.ID, f.Status)
		case f.Status == 0 && f.Error == "":
			return fmt.Errorf("result %s: neither status nor error", f.ID)
		case !(f.DurationMS >= 0 && f.DurationMS < 1e9): // refuses NaN too
			return fmt.Errorf("result %s: duration_ms out of range", f.ID)
		case len(f.Response) > MaxListenResponse || !utf8.ValidString(f.Response):
			return fmt.Errorf("result %s: response is not valid text of at most %d bytes", f.ID, MaxListenResponse)
		case len(f.Error) > MaxListenError || !utf8.ValidString(f.Error):
			return fmt.Errorf("result %s: error is not valid text of at most %d bytes", f.ID, MaxListenError)
		case len(f.RetryAfter) > 64:
			return fmt.Errorf("result %s: retry_after longer than 64 bytes", f.ID)
		}
		return nil
	}
	return fmt.Errorf("unknown frame type %q", f.Type)
}

func checkFrameID(id string) error {
	if id == "" || len(id) > MaxListenFrameID || strings.ContainsFunc(id, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
		return fmt.Errorf("id must be 1 to %d printable ASCII characters", MaxListenFrameID)
	}
	return nil
}

// Listener is one connected `kinehook listen --server`, as the HTTP adapter
// holds it: the relay sends delivery frames through it. Implementations
// must be safe for concurrent use.
type Listener interface {
	// Send writes one frame to the CLI.
	Send(ctx context.Context, f *ListenFrame) error
	// Close ends the connection, telling the CLI why.
	Close(reason string)
}

// Peers carries messages between the instances sharing a database (the
// cluster coordinator on PostgreSQL): the instance owning a cli endpoint's
// delivery hands it to the instance holding the listener's connection, and
// gets the answer back. Delivery of a message is at most once.
type Peers interface {
	// ID is this instance's id, as the others address it.
	ID() string
	// SendPeer sends payload (at most MaxPeerPayload bytes) to instance to.
	SendPeer(ctx context.Context, to, payload string) error
	// OnPeer sets the handler of the messages sent to this instance.
	OnPeer(handle func(from, payload string))
	// MaxPeerPayload is the largest payload SendPeer takes.
	MaxPeerPayload() int
}
