package client

import (
	"context"
	"net/http"
	"time"
)

// Portal session scopes: what a customer portal session may do.
const (
	// PortalManage may also create, change and delete endpoints, rotate
	// their secrets, retry deliveries and send test events.
	PortalManage = "manage"
	// PortalRead may only look.
	PortalRead = "read"
)

// PortalBranding is how the customer portal's header presents the platform.
type PortalBranding struct {
	Name    string `json:"name,omitempty"`
	LogoURL string `json:"logo_url,omitempty"`
	Color   string `json:"color,omitempty"`
}

// PortalSessionInput is the body of POST /v1/projects/{pid}/portal-sessions.
type PortalSessionInput struct {
	// ExpiresIn is the session's life in seconds (nil: an hour; at most 7 days).
	ExpiresIn *int64 `json:"expires_in,omitempty"`
	// Scope is PortalManage or PortalRead.
	Scope string `json:"scope"`
	// EventTypes, when set, are the only event types the portal shows and
	// lets the customer subscribe to ("media.*" and the like allowed).
	EventTypes []string        `json:"event_types,omitempty"`
	Branding   *PortalBranding `json:"branding,omitempty"`
}

// PortalSession is a customer portal session as the API lists it: never its
// URL or token.
type PortalSession struct {
	ID         string          `json:"id"`
	ProjectID  string          `json:"project_id"`
	Scope      string          `json:"scope"`
	EventTypes []string        `json:"event_types"`
	Branding   *PortalBranding `json:"branding,omitempty"`
	CreatedAt  time.Time       `json:"created_at"`
	ExpiresAt  time.Time       `json:"expires_at"`
	RevokedAt  *time.Time      `json:"revoked_at"`
}

// NewPortalSession is a session just made, with the URL that opens it (shown
// only in this answer).
type NewPortalSession struct {
	PortalSession
	URL string `json:"url"`
}

// CreatePortalSession makes a customer portal session of a project (the
// admin key or a full key of the project) and returns its URL.
func (c *Client) CreatePortalSession(ctx context.Context, projectID string, in PortalSessionInput) (*NewPortalSession, error) {
	var out NewPortalSession
	if err := c.do(ctx, request{method: http.MethodPost, path: pathf("/v1/projects/%s/portal-sessions", projectID), body: in, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListPortalSessions lists a project's portal sessions, newest first.
func (c *Client) ListPortalSessions(ctx context.Context, projectID string) ([]*PortalSession, error) {
	var out listBody[*PortalSession]
	if err := c.do(ctx, request{method: http.MethodGet, path: pathf("/v1/projects/%s/portal-sessions", projectID), out: &out}); err != nil {
		return nil, err
	}
	return out.Data, nil
}

// RevokePortalSession ends a portal session at once (on every instance
// within a second).
func (c *Client) RevokePortalSession(ctx context.Context, projectID, sessionID string) error {
	return c.do(ctx, request{method: http.MethodDelete, path: pathf("/v1/projects/%s/portal-sessions/%s", projectID, sessionID)})
}
