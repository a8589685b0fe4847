package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kinehook/kinehook"
)

// Relay carries the deliveries of cli endpoints over the connections of
// `kinehook listen --server` (relay.Hub, which cmd/kinehook also gives the
// delivery engine as the transport of kinehook.EndpointCLI). The HTTP
// adapter reaches it only through App.
type Relay interface {
	// Attach makes l the endpoint's listener on this instance; release
	// detaches it, reporting whether it was still the current one.
	Attach(endpointID string, l kinehook.Listener) (release func() bool)
	// Resolve hands a result frame to the attempt waiting for it.
	Resolve(endpointID string, f *kinehook.ListenFrame)
	// Instance names this instance in kinehook.ListenerState.
	Instance() string
}

// Listener rules.
const (
	// DefaultListenGrace is how long a cli endpoint outlives its CLI's
	// disconnect: a reconnect within it resumes the endpoint and its
	// pending deliveries; after it the endpoint is removed.
	DefaultListenGrace = 60 * time.Second
	// MaxListeners bounds the cli endpoints of one project.
	MaxListeners = 20
	// maxHeartbeat bounds the interval at which a connected listener's
	// endpoint is marked seen (a third of the grace when shorter).
	maxHeartbeat = 20 * time.Second
)

// ListenInput is what a CLI asks for when it connects.
type ListenInput struct {
	// EventTypes is the endpoint's filter (empty: every catalog type).
	EventTypes []string
	// EndpointID resumes that cli endpoint when it still exists; a new one
	// is made when it is gone (or when empty).
	EndpointID string
	// Client is the CLI's User-Agent, shown in the endpoint's description.
	Client string
}

// Listening is one connection's endpoint, as OpenListener made or resumed it.
type Listening struct {
	Endpoint *kinehook.Endpoint
	// Secret is the endpoint's current signing secret, which the CLI
	// prints so the local app can verify signatures.
	Secret  string
	Session string
	Resumed bool
}

// Hello is the first frame the CLI gets.
func (l *Listening) Hello() *kinehook.ListenFrame {
	return &kinehook.ListenFrame{Type: kinehook.FrameHello, EndpointID: l.Endpoint.ID, ProjectID: l.Endpoint.ProjectID,
		Secret: l.Secret, EventTypes: l.Endpoint.EventTypes, Resumed: l.Resumed}
}

// ListenGrace is the grace period in force.
func (a *App) ListenGrace() time.Duration { return a.listenGrace }

func (a *App) relayOrErr() (Relay, error) {
	if a.relay == nil {
		return nil, &kinehook.Error{Code: kinehook.EUNAVAILABLE, Message: "this server does not relay listeners (kinehook listen --server)"}
	}
	return a.relay, nil
}

// OpenListener makes a cli endpoint for a connecting CLI, or resumes the one
// it names (same project, still there): marked connected to a new session
// on this instance, with a fresh signing secret when new. The caller then
// runs ServeListener for the connection's life.
func (a *App) OpenListener(ctx context.Context, pid string, in ListenInput) (*Listening, error) {
	r, err := a.relayOrErr()
	if err != nil {
		return nil, err
	}
	if _, err := a.store.GetProject(ctx, pid); err != nil {
		return nil, fmt.Errorf("get project: %w", err)
	}
	var filter []string
	if in.EventTypes != nil {
		if filter, err = kinehook.NormalizeEventTypeFilter(in.EventTypes); err != nil {
			return nil, err
		}
	}
	client := in.Client
	if len(client) > 200 || !utf8.ValidString(client) {
		client = "kinehook listen"
	}
	now := a.stamp()
	st := kinehook.ListenerState{Session: kinehook.NewID("lsn"), Instance: r.Instance(), Connected: true, SeenAt: now, Client: client}
	if in.EndpointID != "" {
		e, err := a.UpdateEndpoint(ctx, pid, in.EndpointID, func(e *kinehook.Endpoint) error {
			if e.TypeOf() != kinehook.EndpointCLI {
				return &kinehook.Error{Code: kinehook.EINVALID, Field: "endpoint_id", Message: fmt.Sprintf("endpoint %s is a %s endpoint, not a listener's", e.ID, e.TypeOf())}
			}
			e.Config = st.Marshal()
			if in.EventTypes != nil {
				e.EventTypes = filter
			}
			return nil
		})
		switch {
		case err == nil:
			return &Listening{Endpoint: e, Secret: e.Secrets[0].Value, Session: st.Session, Resumed: true}, nil
		case kinehook.ErrorCode(err) != kinehook.ENOTFOUND:
			return nil, err
		}
		// Gone (the grace ran out, or it was deleted): a new one.
	}
	eps, err := a.store.ListEndpoints(ctx, pid)
	if err != nil {
		return nil, fmt.Errorf("list endpoints: %w", err)
	}
	n := 0
	for _, e := range eps {
		if e.TypeOf() == kinehook.EndpointCLI {
			n++
		}
	}
	if n >= MaxListeners {
		return nil, &kinehook.Error{Code: kinehook.ECONFLICT, Message: fmt.Sprintf("project has %d listeners already (at most %d); stop one or delete its cli endpoint", n, MaxListeners)}
	}
	sec, err := kinehook.NewEndpointSecret(kinehook.SchemeV1)
	if err != nil {
		return nil, err
	}
	e := &kinehook.Endpoint{ID: kinehook.NewID(kinehook.PrefixEndpoint), ProjectID: pid, Type: kinehook.EndpointCLI,
		Config: st.Marshal(), EventTypes: filter, Description: "kinehook listen: " + client, Scheme: kinehook.SchemeV1,
		Secrets: []kinehook.EndpointSecret{{Value: sec}}, CreatedAt: now, UpdatedAt: now}
	if err := a.store.CreateEndpoint(ctx, e); err != nil {
		return nil, fmt.Errorf("store endpoint: %w", err)
	}
	a.disp.EndpointChanged(ctx, pid, e.ID)
	return &Listening{Endpoint: e, Secret: sec, Session: st.Session}, nil
}

// ErrListenerReplaced ends ServeListener when another connection resumed
// the endpoint.
var ErrListenerReplaced = &kinehook.Error{Code: kinehook.ECONFLICT, Message: "another connection resumed this endpoint"}

// ServeListener attaches l as lst's listener, then sends it the hello, and
// serves it until ctx ends, marking the endpoint seen every heartbeat (a
// third of the grace, at most 20 s). Attached first: a CLI that acts on the
// hello (say, a trigger right after "ready") must find its deliveries
// coming, not backing off as "listener not connected". The listener must
// write the hello before any delivery sent meanwhile. ServeListener ends
// early, with an error, when the hello cannot be sent, the endpoint is
// deleted (ENOTFOUND) or another connection resumed it
// (ErrListenerReplaced). When it ends with the connection still current,
// the endpoint is marked disconnected: the grace starts.
func (a *App) ServeListener(ctx context.Context, lst *Listening, l kinehook.Listener) error {
	r, err := a.relayOrErr()
	if err != nil {
		return err
	}
	pid, eid := lst.Endpoint.ProjectID, lst.Endpoint.ID
	release := r.Attach(eid, l)
	if err := l.Send(ctx, lst.Hello()); err != nil {
		if derr := a.detachListener(ctx, lst, release); derr != nil {
			return fmt.Errorf("send hello: %w (and %w)", err, derr)
		}
		return fmt.Errorf("send hello: %w", err)
	}
	beat := min(a.listenGrace/3, maxHeartbeat)
	t := time.NewTicker(beat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return a.detachListener(ctx, lst, release)
		case <-t.C:
			if err := a.markListener(ctx, pid, eid, lst.Session, true); err != nil {
				if kinehook.ErrorCode(err) == kinehook.ENOTFOUND || errors.Is(err, ErrListenerReplaced) {
					release()
					return err
				}
				a.logListen("listener heartbeat", err, eid) // the store may come back before the grace ends
			}
		}
	}
}

// detachListener releases a connection's attachment and, when it was still
// the endpoint's current one, marks the endpoint disconnected.
func (a *App) detachListener(ctx context.Context, lst *Listening, release func() bool) error {
	if !release() {
		return nil
	}
	mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err := a.markListener(mctx, lst.Endpoint.ProjectID, lst.Endpoint.ID, lst.Session, false)
	if err != nil && kinehook.ErrorCode(err) != kinehook.ENOTFOUND && !errors.Is(err, ErrListenerReplaced) {
		return fmt.Errorf("mark listener disconnected: %w", err)
	}
	return nil
}

// AbandonListener marks the endpoint of a connection that never came up
// (the upgrade failed) as disconnected, so its grace starts.
func (a *App) AbandonListener(ctx context.Context, lst *Listening) error {
	err := a.markListener(ctx, lst.Endpoint.ProjectID, lst.Endpoint.ID, lst.Session, false)
	if kinehook.ErrorCode(err) == kinehook.ENOTFOUND || errors.Is(err, ErrListenerReplaced) {
		return nil
	}
	return err
}

// markListener records a heartbeat (connected) or the disconnect of
// session; ErrListenerReplaced when another session holds the endpoint.
func (a *App) markListener(ctx context.Context, pid, eid, session string, connected bool) error {
	_, err := a.UpdateEndpoint(ctx, pid, eid, func(e *kinehook.Endpoint) error {
		st := kinehook.ParseListenerState(e.Config)
		if e.TypeOf() != kinehook.EndpointCLI || st.Session != session {
			return ErrListenerReplaced
		}
		st.Connected, st.SeenAt = connected, a.stamp()
		e.Config = st.Marshal()
		return nil
	})
	return err
}

// ListenerResult passes a CLI's result frame to the attempt waiting for it.
func (a *App) ListenerResult(endpointID string, f *kinehook.ListenFrame) {
	if a.relay != nil {
		a.relay.Resolve(endpointID, f)
	}
}

// ListenerExpired reports whether a cli endpoint's grace is over: not seen
// (no heartbeat while connected, or since its disconnect) for the grace.
func (a *App) ListenerExpired(e *kinehook.Endpoint, now time.Time) bool {
	if e.TypeOf() != kinehook.EndpointCLI {
		return false
	}
	return now.Sub(kinehook.ParseListenerState(e.Config).SeenAt) > a.listenGrace
}

// SweepListeners removes the cli endpoints whose grace is over, on every
// project (those left by a CLI gone away, or by a crashed instance), and
// returns how many. Their pending deliveries fail, as for any deleted
// endpoint.
func (a *App) SweepListeners(ctx context.Context) (int, error) {
	eps, err := a.store.AllEndpoints(ctx)
	if err != nil {
		return 0, fmt.Errorf("list endpoints: %w", err)
	}
	now := a.now()
	n := 0
	var errs []error
	for _, e := range eps {
		if !a.ListenerExpired(e, now) {
			continue
		}
		if err := a.DeleteEndpoint(ctx, e.ProjectID, e.ID); err != nil && kinehook.ErrorCode(err) != kinehook.ENOTFOUND {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// RunListenerSweeper runs SweepListeners every quarter of the grace (at
// least every second, at most every minute) until ctx ends.
func (a *App) RunListenerSweeper(ctx context.Context, log *slog.Logger) {
	every := min(max(a.listenGrace/4, time.Second), time.Minute)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n, err := a.SweepListeners(ctx)
			if err != nil && ctx.Err() == nil {
				log.Warn("listener sweep", "err", err)
			}
			if n > 0 {
				log.Info("removed expired listener endpoints", "count", n)
			}
		}
	}
}

func (a *App) logListen(what string, err error, eid string) {
	a.log.Warn(what, "endpoint_id", eid, "err", err)
}

// listenerSummary is a cli endpoint's line in lists.
func listenerSummary(e *kinehook.Endpoint) string {
	st := kinehook.ParseListenerState(e.Config)
	var b strings.Builder
	b.WriteString("kinehook listen")
	if st.Connected {
		b.WriteString(" (connected)")
	} else if !st.SeenAt.IsZero() {
		b.WriteString(" (disconnected " + st.SeenAt.UTC().Format(time.RFC3339) + ")")
	}
	return b.String()
}

// applyListenerEndpoint is applyType for a cli endpoint: only a listener
// makes one, and what connects it (type, config) is not for an update.
func applyListenerEndpoint(e *kinehook.Endpoint, in *EndpointInput, creating bool) error {
	msg := "cli endpoints are made by `kinehook listen --server` (GET /v1/projects/{pid}/listen), not through the API"
	switch {
	case creating:
		return &kinehook.Error{Code: kinehook.EINVALID, Field: "type", Message: msg}
	case in.Type != nil && *in.Type != kinehook.EndpointCLI:
		return &kinehook.Error{Code: kinehook.EINVALID, Field: "type", Message: "a cli endpoint keeps its type; delete it and create another endpoint instead"}
	case in.URL != nil && *in.URL != "":
		return &kinehook.Error{Code: kinehook.EINVALID, Field: "url", Message: "a cli endpoint has no url: its deliveries go to the connected CLI"}
	case in.Config != nil && len(*in.Config) > 0 && string(*in.Config) != "null" && string(*in.Config) != string(e.Config):
		return &kinehook.Error{Code: kinehook.EINVALID, Field: "config", Message: "a cli endpoint's config is its connection's state, kept by the server"}
	case in.Credentials != nil && len(*in.Credentials) > 0:
		return &kinehook.Error{Code: kinehook.EINVALID, Field: "credentials", Message: "a cli endpoint takes no credentials"}
	}
	return nil
}
