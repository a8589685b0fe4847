// Package client is a typed Go client for the kinehook HTTP API: projects,
// endpoints, events, deliveries, the event catalog and the Kinescope-shaped
// /v1/webhooks routes. Every method takes a context; every API error comes
// back as an *Error carrying the API's machine-readable code.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/kinehook/kinehook"
)

// DefaultUserAgent is sent when no WithUserAgent option is given.
const DefaultUserAgent = "kinehook-client/1"

// maxResponseBytes bounds how much of an answer the client reads (a page of
// events with 1 MiB payloads can be large, but not unbounded).
const maxResponseBytes = 64 << 20

// Client calls one kinehook server with one API key (the admin key or a
// project key). It is safe for concurrent use.
type Client struct {
	base      string
	key       string
	hc        *http.Client
	userAgent string
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient makes the client send its requests through hc (timeouts,
// transports, test servers).
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.hc = hc
		}
	}
}

// WithUserAgent sets the User-Agent header of every request.
func WithUserAgent(ua string) Option {
	return func(c *Client) {
		if ua != "" {
			c.userAgent = ua
		}
	}
}

// New returns a client of the server at baseURL (e.g. http://127.0.0.1:8080)
// authenticating with key. Without WithHTTPClient it uses a client with a
// 30-second timeout.
func New(baseURL, key string, opts ...Option) *Client {
	c := &Client{
		base:      strings.TrimRight(baseURL, "/"),
		key:       key,
		hc:        &http.Client{Timeout: 30 * time.Second},
		userAgent: DefaultUserAgent,
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// BaseURL returns the server address the client talks to.
func (c *Client) BaseURL() string { return c.base }

// Error is an answer of the API outside 2xx. Code is the API's error code
// (kinehook.ENOTFOUND, "invalid", ...); when the answer carries no error
// envelope, Code is derived from the status.
type Error struct {
	StatusCode int
	Code       string
	Message    string
	// Field names the input field at fault, when the API says.
	Field string
	// RetryAfter is the server's Retry-After on 429 and 503 answers.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	msg := e.Message
	if e.Field != "" && !mentions(msg, e.Field) {
		msg = e.Field + ": " + msg
	}
	return fmt.Sprintf("%s (HTTP %d): %s", e.Code, e.StatusCode, msg)
}

// mentions reports whether an API message already names field: as is, or,
// for an event of a batch, as "events[3]: data.status: ..." for the field
// events[3].data.status.
func mentions(msg, field string) bool {
	if strings.Contains(msg, field) {
		return true
	}
	head, rest, ok := strings.Cut(field, "].")
	return ok && strings.HasPrefix(msg, head+"]: ") && strings.Contains(msg, rest)
}

// ErrorCode returns the API code of the first *Error in err's chain, or ""
// when there is none (a network error, for example).
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// IsNotFound reports whether err is the API's 404 answer.
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.StatusCode == http.StatusNotFound
}

// codeOfStatus guesses an error code for answers without an error envelope.
func codeOfStatus(status int) string {
	switch status {
	case http.StatusBadRequest:
		return kinehook.EMALFORMED
	case http.StatusUnauthorized:
		return kinehook.EUNAUTHORIZED
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusNotFound:
		return kinehook.ENOTFOUND
	case http.StatusConflict:
		return kinehook.ECONFLICT
	case http.StatusRequestEntityTooLarge:
		return kinehook.ETOOLARGE
	case http.StatusUnprocessableEntity:
		return kinehook.EINVALID
	case http.StatusTooManyRequests:
		return kinehook.ERATELIMITED
	case http.StatusServiceUnavailable:
		return kinehook.EUNAVAILABLE
	}
	return kinehook.EINTERNAL
}

// request describes one API call.
type request struct {
	method string
	path   string
	query  url.Values
	// body is marshalled to JSON unless it is a []byte (sent as is).
	body   any
	header http.Header
	out    any
	// answerHeader, when not nil, receives the header of a 2xx answer.
	answerHeader *http.Header
}

// do performs r and decodes a 2xx answer into r.out.
func (c *Client) do(ctx context.Context, r request) error {
	u := c.base + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	var body io.Reader
	if r.body != nil {
		b, ok := r.body.([]byte)
		if !ok {
			var err error
			if b, err = json.Marshal(r.body); err != nil {
				return fmt.Errorf("%s %s: encode request: %w", r.method, r.path, err)
			}
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", r.method, r.path, err)
	}
	for k, vs := range r.header {
		req.Header[k] = vs
	}
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", r.method, r.path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", r.method, r.path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return apiError(resp, data)
	}
	if r.answerHeader != nil {
		*r.answerHeader = resp.Header
	}
	if hook, _ := ctx.Value(responseHookKey{}).(func(*Response)); hook != nil {
		hook(&Response{Method: r.method, Path: r.path, StatusCode: resp.StatusCode, Header: resp.Header, Body: data})
	}
	if r.out == nil || len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if raw, ok := r.out.(*json.RawMessage); ok {
		*raw = append((*raw)[:0], data...)
		return nil
	}
	if err := json.Unmarshal(data, r.out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", r.method, r.path, err)
	}
	return nil
}

// Response is a successful (2xx) answer of the API as it came over the wire,
// before the client decoded it into its typed result.
type Response struct {
	Method string
	// Path is the request's path, without the query.
	Path       string
	StatusCode int
	Header     http.Header
	// Body is the answer's body byte for byte (empty for 204 No Content).
	// The hook must not modify it.
	Body []byte
}

type responseHookKey struct{}

// WithResponseHook returns a copy of ctx under which every successful answer
// to a request made with it is passed to hook, before it is decoded. It gives
// the API's own JSON next to the typed result: keys the typed structs leave
// out, null values, the exact answer. Methods that make several requests
// (AllEvents, one per page) call hook once per answer, in order. Hooks of
// enclosing contexts are called too, outermost first.
func WithResponseHook(ctx context.Context, hook func(*Response)) context.Context {
	if prev, _ := ctx.Value(responseHookKey{}).(func(*Response)); prev != nil {
		inner := hook
		hook = func(r *Response) {
			prev(r)
			inner(r)
		}
	}
	return context.WithValue(ctx, responseHookKey{}, hook)
}

// apiError turns a non-2xx answer into an *Error.
func apiError(resp *http.Response, data []byte) *Error {
	e := &Error{StatusCode: resp.StatusCode}
	var env struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Field   string `json:"field"`
			Detail  string `json:"detail"`
		} `json:"error"`
	}
	if json.Unmarshal(data, &env) == nil && env.Error != nil && env.Error.Code != "" {
		e.Code, e.Message, e.Field = env.Error.Code, env.Error.Message, env.Error.Field
		if e.Message == "" {
			e.Message = env.Error.Detail
		}
	} else {
		e.Code = codeOfStatus(resp.StatusCode)
		msg := strings.TrimSpace(string(data))
		if len(msg) > 200 {
			msg = msg[:200] + "..."
		}
		if msg == "" {
			msg = http.StatusText(resp.StatusCode)
		}
		e.Message = msg
	}
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		if secs, err := time.ParseDuration(ra + "s"); err == nil {
			e.RetryAfter = secs
		} else if t, err := http.ParseTime(ra); err == nil {
			e.RetryAfter = time.Until(t)
		}
	}
	return e
}

// pathf builds a path from a format whose %s verbs are path-escaped.
func pathf(format string, args ...string) string {
	esc := make([]any, len(args))
	for i, a := range args {
		esc[i] = url.PathEscape(a)
	}
	return fmt.Sprintf(format, esc...)
}

// listBody is the {"data": [...]} envelope of list answers.
type listBody[T any] struct {
	Data []T `json:"data"`
}

// dataBody is the {"data": {...}} envelope of Kinescope-shaped answers.
type dataBody[T any] struct {
	Data T `json:"data"`
}

// Health calls GET /healthz: nil when the server is up.
func (c *Client) Health(ctx context.Context) error {
	return c.do(ctx, request{method: http.MethodGet, path: "/healthz"})
}

// Ready calls GET /readyz: nil when the server's store answers.
func (c *Client) Ready(ctx context.Context) error {
	return c.do(ctx, request{method: http.MethodGet, path: "/readyz"})
}

// EventTypes returns the server's event catalog with a JSON Schema per type.
func (c *Client) EventTypes(ctx context.Context) ([]kinehook.EventTypeInfo, error) {
	var out listBody[kinehook.EventTypeInfo]
	if err := c.do(ctx, request{method: http.MethodGet, path: "/v1/event-types", out: &out}); err != nil {
		return nil, err
	}
	return out.Data, nil
}

// OpenAPI returns the server's OpenAPI document as raw JSON.
func (c *Client) OpenAPI(ctx context.Context) (json.RawMessage, error) {
	var out json.RawMessage
	if err := c.do(ctx, request{method: http.MethodGet, path: "/openapi.json", out: &out}); err != nil {
		return nil, err
	}
	return out, nil
}
