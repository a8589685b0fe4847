package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/kinehook/kinehook"
)

// Source is an inbox source as the API shows it: its credentials are
// write-only and never come back.
type Source struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Type      string    `json:"type"`
	Path      string    `json:"path"`
	ProjectID string    `json:"project_id"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// SourceInput is the body of source create and update: only non-nil
// fields are sent. Type kinescope takes Login and Password, type
// standard-webhooks a whsec_ Secret.
type SourceInput struct {
	Name     *string `json:"name,omitempty"`
	Type     *string `json:"type,omitempty"`
	Login    *string `json:"login,omitempty"`
	Password *string `json:"password,omitempty"`
	Secret   *string `json:"secret,omitempty"`
}

// CreateSource creates an inbox source; point the sender at the server's
// address followed by its Path.
func (c *Client) CreateSource(ctx context.Context, projectID string, in SourceInput) (*Source, error) {
	var out Source
	if err := c.do(ctx, request{method: http.MethodPost, path: pathf("/v1/projects/%s/sources", projectID), body: in, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListSources lists a project's inbox sources, oldest first.
func (c *Client) ListSources(ctx context.Context, projectID string) ([]*Source, error) {
	var out listBody[*Source]
	if err := c.do(ctx, request{method: http.MethodGet, path: pathf("/v1/projects/%s/sources", projectID), out: &out}); err != nil {
		return nil, err
	}
	return out.Data, nil
}

// GetSource returns one inbox source.
func (c *Client) GetSource(ctx context.Context, projectID, sourceID string) (*Source, error) {
	var out Source
	if err := c.do(ctx, request{method: http.MethodGet, path: pathf("/v1/projects/%s/sources/%s", projectID, sourceID), out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdateSource changes the set fields of in.
func (c *Client) UpdateSource(ctx context.Context, projectID, sourceID string, in SourceInput) (*Source, error) {
	var out Source
	if err := c.do(ctx, request{method: http.MethodPatch, path: pathf("/v1/projects/%s/sources/%s", projectID, sourceID), body: in, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteSource removes an inbox source; the events it brought stay.
func (c *Client) DeleteSource(ctx context.Context, projectID, sourceID string) error {
	return c.do(ctx, request{method: http.MethodDelete, path: pathf("/v1/projects/%s/sources/%s", projectID, sourceID)})
}

// StateListOptions filters and pages ListMedia and ListLive.
type StateListOptions struct {
	// Status keeps videos in this status (ListMedia) or streams in this
	// state (ListLive).
	Status string
	// Since keeps those updated at or after it.
	Since  time.Time
	Limit  int
	Cursor string
}

func (o StateListOptions) query(statusParam string) url.Values {
	q := url.Values{}
	if o.Status != "" {
		q.Set(statusParam, o.Status)
	}
	if !o.Since.IsZero() {
		q.Set("since", o.Since.UTC().Format(time.RFC3339Nano))
	}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.Cursor != "" {
		q.Set("cursor", o.Cursor)
	}
	return q
}

// MediaPage is one page of ListMedia, most recently updated first.
type MediaPage struct {
	Data       []*kinehook.MediaState `json:"data"`
	NextCursor string                 `json:"next_cursor"`
}

// LivePage is one page of ListLive, most recently updated first.
type LivePage struct {
	Data       []*kinehook.LiveState `json:"data"`
	NextCursor string                `json:"next_cursor"`
}

// GetMedia returns a video's state and history.
func (c *Client) GetMedia(ctx context.Context, projectID, videoID string) (*kinehook.MediaState, error) {
	var out kinehook.MediaState
	if err := c.do(ctx, request{method: http.MethodGet, path: pathf("/v1/projects/%s/media/%s", projectID, videoID), out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListMedia returns one page of a project's videos.
func (c *Client) ListMedia(ctx context.Context, projectID string, o StateListOptions) (*MediaPage, error) {
	var out MediaPage
	if err := c.do(ctx, request{method: http.MethodGet, path: pathf("/v1/projects/%s/media", projectID), query: o.query("status"), out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetLive returns a live stream's state and history.
func (c *Client) GetLive(ctx context.Context, projectID, eventID string) (*kinehook.LiveState, error) {
	var out kinehook.LiveState
	if err := c.do(ctx, request{method: http.MethodGet, path: pathf("/v1/projects/%s/live/%s", projectID, eventID), out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListLive returns one page of a project's live streams.
func (c *Client) ListLive(ctx context.Context, projectID string, o StateListOptions) (*LivePage, error) {
	var out LivePage
	if err := c.do(ctx, request{method: http.MethodGet, path: pathf("/v1/projects/%s/live", projectID), query: o.query("state"), out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}
