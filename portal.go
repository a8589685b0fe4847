package kinehook

import (
	"context"
	"time"
)

// PrefixPortalSession is the id prefix of a portal session (its token
// starts "kpt_").
const PrefixPortalSession = "pts"

// PortalScope is what a customer portal session may do.
type PortalScope string

// Portal scopes: read may only look; manage may also create, change and
// delete endpoints, rotate their secrets, retry deliveries and send test
// events.
const (
	PortalRead   PortalScope = "read"
	PortalManage PortalScope = "manage"
)

// Valid reports whether s is one of the portal scopes.
func (s PortalScope) Valid() bool { return s == PortalRead || s == PortalManage }

// PortalBranding is how the portal's header presents the platform that
// embeds it. Every field is optional.
type PortalBranding struct {
	Name    string `json:"name,omitempty"`
	LogoURL string `json:"logo_url,omitempty"`
	Color   string `json:"color,omitempty"`
}

// PortalSession is a short-lived grant of one project's customer portal: a
// platform makes one per customer visit with a project key, and the
// customer's browser carries its token (only the token's hash is stored).
type PortalSession struct {
	ID        string      `json:"id"`
	ProjectID string      `json:"project_id"`
	TokenHash []byte      `json:"-"`
	Scope     PortalScope `json:"scope"`
	// EventTypes, when set, are the only event types (an endpoint filter's
	// syntax) the portal shows and lets the customer subscribe to.
	EventTypes []string        `json:"event_types,omitempty"`
	Branding   *PortalBranding `json:"branding,omitempty"`
	CreatedAt  time.Time       `json:"created_at"`
	ExpiresAt  time.Time       `json:"expires_at"`
	RevokedAt  time.Time       `json:"revoked_at,omitzero"`
}

// PortalStore keeps portal sessions. Deleting a project removes its
// sessions (Store.DeleteProject).
type PortalStore interface {
	// CreatePortalSession stores s (ENOTFOUND when its project does not
	// exist) and drops the project's sessions that expired before
	// s.CreatedAt minus PortalSessionKeep, so that they do not pile up.
	CreatePortalSession(ctx context.Context, s *PortalSession) error
	// PortalSessionByHash finds the session whose token hash is hash,
	// expired and revoked ones included, or ErrNotFound.
	PortalSessionByHash(ctx context.Context, hash []byte) (*PortalSession, error)
	// ListPortalSessions lists a project's sessions, newest first
	// (ENOTFOUND when there is no such project).
	ListPortalSessions(ctx context.Context, projectID string) ([]*PortalSession, error)
	// RevokePortalSession marks a session revoked at at (a revoked one
	// keeps its first revocation time); ENOTFOUND when the project has no
	// such session.
	RevokePortalSession(ctx context.Context, projectID, id string, at time.Time) error
}

// PortalSessionKeep is how long an expired portal session stays listed.
const PortalSessionKeep = 24 * time.Hour
