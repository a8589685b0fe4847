package app

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/kinehook/kinehook"
)

// Limits of inbox source fields, in characters.
const (
	MaxSourceName  = 200
	MaxSourceLogin = 200
	// MaxSourcePassword bounds a Basic Auth password; Kinescope's own
	// webhook API takes shorter ones.
	MaxSourcePassword = 500
)

// MaxInboxBody bounds a body posted to an inbox (/in/{id}): 1 MiB, far above
// anything Kinescope sends.
const MaxInboxBody = 1 << 20

// SourceInput is an inbox source's settings as given. Nil fields are left
// alone by an update; a create requires name, type and the type's
// credentials.
type SourceInput struct {
	Name     *string
	Type     *string
	Login    *string
	Password *string
	Secret   *string
}

// CreateSource validates and stores a new inbox source of an existing project.
func (a *App) CreateSource(ctx context.Context, pid string, in SourceInput) (*kinehook.InboxSource, error) {
	if _, err := a.store.GetProject(ctx, pid); err != nil {
		return nil, fmt.Errorf("get project: %w", err)
	}
	if in.Name == nil {
		return nil, &kinehook.Error{Code: kinehook.EINVALID, Field: "name", Message: "name is required"}
	}
	if in.Type == nil {
		return nil, &kinehook.Error{Code: kinehook.EINVALID, Field: "type", Message: `type is required: "kinescope" or "standard-webhooks"`}
	}
	now := a.stamp()
	src := &kinehook.InboxSource{ID: kinehook.NewID(kinehook.PrefixInbox), ProjectID: pid, CreatedAt: now, UpdatedAt: now}
	if err := applySource(src, &in); err != nil {
		return nil, err
	}
	if err := a.store.CreateInboxSource(ctx, src); err != nil {
		return nil, fmt.Errorf("store inbox source: %w", err)
	}
	return src, nil
}

// applySource applies in to src and checks the result.
func applySource(src *kinehook.InboxSource, in *SourceInput) error {
	if in.Name != nil {
		name := strings.TrimSpace(*in.Name)
		if name == "" || utf8.RuneCountInString(name) > MaxSourceName || strings.ContainsFunc(name, isControl) {
			return &kinehook.Error{Code: kinehook.EINVALID, Field: "name", Message: fmt.Sprintf("name must be 1 to %d characters without control characters", MaxSourceName)}
		}
		src.Name = name
	}
	if in.Type != nil {
		switch *in.Type {
		case kinehook.InboxKinescope, kinehook.InboxStandardWebhooks:
		default:
			return &kinehook.Error{Code: kinehook.EINVALID, Field: "type", Message: fmt.Sprintf(`type must be "kinescope" or "standard-webhooks", not %q`, *in.Type)}
		}
		if *in.Type != src.Type {
			// Another type takes other credentials: none carry over.
			src.Login, src.Password, src.Secret = "", "", ""
		}
		src.Type = *in.Type
	}
	switch src.Type {
	case kinehook.InboxKinescope:
		if in.Secret != nil {
			return &kinehook.Error{Code: kinehook.EINVALID, Field: "secret", Message: `a kinescope source takes login and password, not a secret (that is for "standard-webhooks")`}
		}
		if in.Login != nil {
			if *in.Login == "" || utf8.RuneCountInString(*in.Login) > MaxSourceLogin || strings.ContainsRune(*in.Login, ':') || strings.ContainsFunc(*in.Login, isControl) {
				return &kinehook.Error{Code: kinehook.EINVALID, Field: "login", Message: fmt.Sprintf("login must be 1 to %d characters, without ':' or control characters (Basic Auth)", MaxSourceLogin)}
			}
			src.Login = *in.Login
		}
		if in.Password != nil {
			if *in.Password == "" || utf8.RuneCountInString(*in.Password) > MaxSourcePassword || strings.ContainsFunc(*in.Password, isControl) {
				return &kinehook.Error{Code: kinehook.EINVALID, Field: "password", Message: fmt.Sprintf("password must be 1 to %d characters without control characters", MaxSourcePassword)}
			}
			src.Password = *in.Password
		}
		if src.Login == "" {
			return &kinehook.Error{Code: kinehook.EINVALID, Field: "login", Message: "a kinescope source needs a login (Kinescope sends it with Basic Auth)"}
		}
		if src.Password == "" {
			return &kinehook.Error{Code: kinehook.EINVALID, Field: "password", Message: "a kinescope source needs a password (Kinescope sends it with Basic Auth)"}
		}
	case kinehook.InboxStandardWebhooks:
		if in.Login != nil || in.Password != nil {
			field := "login"
			if in.Login == nil {
				field = "password"
			}
			return &kinehook.Error{Code: kinehook.EINVALID, Field: field, Message: `a standard-webhooks source takes a secret, not login and password (those are for "kinescope")`}
		}
		if in.Secret != nil {
			if err := CheckSecret(kinehook.SchemeV1, *in.Secret); err != nil {
				return err
			}
			src.Secret = *in.Secret
		}
		if src.Secret == "" {
			return &kinehook.Error{Code: kinehook.EINVALID, Field: "secret", Message: "a standard-webhooks source needs the sender's whsec_ secret"}
		}
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// GetSource returns an inbox source of a project.
func (a *App) GetSource(ctx context.Context, pid, id string) (*kinehook.InboxSource, error) {
	return a.store.GetInboxSource(ctx, pid, id)
}

// ListSources lists a project's inbox sources, oldest first.
func (a *App) ListSources(ctx context.Context, pid string, projectKnown bool) ([]*kinehook.InboxSource, error) {
	if err := a.projectExists(ctx, pid, projectKnown); err != nil {
		return nil, err
	}
	return a.store.ListInboxSources(ctx, pid)
}

// PatchSource changes the given settings of an inbox source.
func (a *App) PatchSource(ctx context.Context, pid, id string, in SourceInput) (*kinehook.InboxSource, error) {
	src, err := a.store.GetInboxSource(ctx, pid, id)
	if err != nil {
		return nil, err
	}
	if err := applySource(src, &in); err != nil {
		return nil, err
	}
	src.UpdatedAt = a.stamp()
	if err := a.store.UpdateInboxSource(ctx, src); err != nil {
		return nil, fmt.Errorf("store inbox source: %w", err)
	}
	return src, nil
}

// DeleteSource removes an inbox source; the events it brought stay.
func (a *App) DeleteSource(ctx context.Context, pid, id string) error {
	return a.store.DeleteInboxSource(ctx, pid, id)
}

// InboxRequest is one webhook posted to an inbox: its headers (for Basic
// Auth or the signature) and its body as received.
type InboxRequest struct {
	SourceID string
	Header   http.Header
	Body     []byte
}

// Received is what became of a webhook posted to an inbox.
type Received struct {
	Source *kinehook.InboxSource
	Event  *kinehook.Event
	// Duplicate: a retry of the latest body of this resource from this
	// source; nothing was stored.
	Duplicate bool
	// UnknownType and UnknownStatus flag what the catalog does not know:
	// kept, never refused.
	UnknownType, UnknownStatus bool
}

// Receive is the inbox: it authenticates a webhook posted to a source (the
// source's Basic Auth or signature, in constant time), parses it
// leniently as the receiver SDK does, and publishes it into the source's
// project; it returns after the commit. Errors: ENOTFOUND (no such
// source), EUNAUTHORIZED, EMALFORMED (not a webhook body).
func (a *App) Receive(ctx context.Context, in InboxRequest) (Received, error) {
	src, err := a.store.InboxSourceByID(ctx, in.SourceID)
	if err != nil {
		if kinehook.ErrorCode(err) == kinehook.ENOTFOUND {
			return Received{}, &kinehook.Error{Code: kinehook.ENOTFOUND, Message: fmt.Sprintf("no inbox source %q", in.SourceID)}
		}
		return Received{}, fmt.Errorf("get inbox source: %w", err)
	}
	if err := a.authenticateInbox(src, in); err != nil {
		return Received{Source: src}, err
	}
	if err := CheckJSONDepth(in.Body, a.limits.MaxJSONDepth); err != nil {
		return Received{Source: src}, &kinehook.Error{Code: kinehook.EMALFORMED, Field: "body", Message: kinehook.ErrorMessage(err)}
	}
	parsed, err := kinehook.ParseLenient(in.Body)
	if err != nil {
		return Received{Source: src}, &kinehook.Error{Code: kinehook.EMALFORMED, Field: fieldOf(err), Message: err.Error()}
	}
	sum := sha256.Sum256(in.Body)
	ev := &kinehook.Event{
		ID:          kinehook.NewID(kinehook.PrefixEvent),
		ProjectID:   src.ProjectID,
		Type:        parsed.Type,
		Payload:     in.Body,
		ResourceKey: parsed.ResourceKey(),
		CreatedAt:   a.now().UTC(),
		SourceID:    src.ID,
		BodyHash:    sum[:],
		State:       stateOf(parsed),
	}
	res, err := a.disp.Publish(ctx, ev)
	if err != nil {
		return Received{Source: src}, fmt.Errorf("publish inbox event: %w", err)
	}
	out := Received{Source: src, Event: res.Event, Duplicate: res.Duplicate, UnknownType: parsed.UnknownType, UnknownStatus: parsed.UnknownStatus}
	if out.Event == nil {
		out.Event = ev
	}
	return out, nil
}

func fieldOf(err error) string {
	var ve *kinehook.ValidationError
	if errors.As(err, &ve) {
		return ve.Field
	}
	return "body"
}

// authenticateInbox checks a posted webhook's credentials against the source's.
func (a *App) authenticateInbox(src *kinehook.InboxSource, in InboxRequest) error {
	switch src.Type {
	case kinehook.InboxKinescope:
		r := &http.Request{Header: in.Header}
		if _, _, ok := r.BasicAuth(); !ok {
			return &kinehook.Error{Code: kinehook.EUNAUTHORIZED, Message: "missing Basic Auth credentials"}
		}
		if !kinehook.CheckBasicAuth(r, src.Login, src.Password) {
			return &kinehook.Error{Code: kinehook.EUNAUTHORIZED, Message: "wrong Basic Auth credentials"}
		}
	case kinehook.InboxStandardWebhooks:
		if err := kinehook.Verify([]string{src.Secret}, in.Header, in.Body, a.now()); err != nil {
			return &kinehook.Error{Code: kinehook.EUNAUTHORIZED, Message: "signature: " + err.Error()}
		}
	default:
		return &kinehook.Error{Code: kinehook.EUNAUTHORIZED, Message: "the source has no credentials"}
	}
	return nil
}

// InboxFlags names what the catalog does not know in an event an inbox
// kept ("unknown_event_type", "unknown_status"); nil when nothing.
func InboxFlags(ev *kinehook.Event) []string {
	if ev.Type.Operational() {
		return nil
	}
	p, err := kinehook.ParseLenient(ev.Payload)
	switch {
	case err != nil:
		return nil
	case p.UnknownType:
		return []string{"unknown_event_type"}
	case p.UnknownStatus:
		return []string{"unknown_status"}
	}
	return nil
}
