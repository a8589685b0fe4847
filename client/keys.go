package client

import (
	"context"
	"net/http"
	"time"
)

// Key scopes: what a project API key may do.
const (
	// ScopeFull may do everything in its project, manage keys included.
	ScopeFull = "full"
	// ScopeRead may only read (GET).
	ScopeRead = "read"
	// ScopeIngest may only post events (single and batch).
	ScopeIngest = "ingest"
)

// APIKey is a project API key as the API lists it: never the key itself.
type APIKey struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Scope string `json:"scope"`
	// Prefix is the key's first characters (kh_ and 8 more), to tell keys
	// apart; empty for a key made before keys were listed, until its first use.
	Prefix    string    `json:"prefix"`
	CreatedAt time.Time `json:"created_at"`
	// LastUsedAt is when the key last authenticated a request, to about a
	// minute; nil if never.
	LastUsedAt *time.Time `json:"last_used_at"`
}

// NewAPIKey is a key just made, with the key itself: the API shows it only
// in this answer.
type NewAPIKey struct {
	APIKey
	Key string `json:"key"`
}

// CreateKey makes an API key of a project with a name and a scope
// (ScopeFull, ScopeRead or ScopeIngest). It needs the admin key or a full
// key of the project.
func (c *Client) CreateKey(ctx context.Context, projectID, name, scope string) (*NewAPIKey, error) {
	var out NewAPIKey
	body := map[string]string{"name": name, "scope": scope}
	if err := c.do(ctx, request{method: http.MethodPost, path: pathf("/v1/projects/%s/keys", projectID), body: body, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListKeys lists a project's API keys, oldest first (the admin key or a
// full key of the project).
func (c *Client) ListKeys(ctx context.Context, projectID string) ([]*APIKey, error) {
	var out listBody[*APIKey]
	if err := c.do(ctx, request{method: http.MethodGet, path: pathf("/v1/projects/%s/keys", projectID), out: &out}); err != nil {
		return nil, err
	}
	return out.Data, nil
}

// RevokeKey removes an API key at once, on every instance. The project's
// last full key cannot be revoked (conflict): make another one first.
func (c *Client) RevokeKey(ctx context.Context, projectID, keyID string) error {
	return c.do(ctx, request{method: http.MethodDelete, path: pathf("/v1/projects/%s/keys/%s", projectID, keyID)})
}

// DeleteProject removes a project with everything in it: endpoints, events,
// deliveries, attempts and keys (admin key only). It cannot be undone.
func (c *Client) DeleteProject(ctx context.Context, projectID string) error {
	return c.do(ctx, request{method: http.MethodDelete, path: pathf("/v1/projects/%s", projectID)})
}
