// Package webhook sends deliveries as HTTP POST webhooks: it is the delivery
// engine's HTTP transport. It owns everything HTTP about an attempt (the
// client, Basic Auth, custom headers, redirect refusal, the response body
// limit, status classification and Retry-After); the engine signs, orders,
// retries and keeps endpoint health whatever transport it drives.
package webhook

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/kinehook/kinehook/delivery"
)

// Options configures a Transport.
type Options struct {
	// Client's Transport sends the requests: it is where the caller puts
	// the SSRF guard. Only its Transport is used: redirects are never
	// followed (a 3xx is the answer), whatever its CheckRedirect says, its
	// Timeout is ignored (the engine bounds each attempt) and it keeps no
	// cookies. Nil: a plain transport keeping MaxIdleConns idle connections
	// per host.
	Client *http.Client
	// MaxIdleConns sizes the default client's idle pool, per host and in
	// all: as many as the engine may have in flight, since several endpoints
	// may share a host (0: delivery.DefaultMaxInFlight).
	MaxIdleConns int
	// UserAgent overrides "kinehook/<delivery.Version>".
	UserAgent string
}

// Transport posts each message to its endpoint's URL.
type Transport struct {
	// rt sends each request. Calling it directly, not through an
	// http.Client, is what refuses redirects, and it spares each attempt
	// the client's copy of the request headers (kept for redirects it would
	// follow): 2-3% of the server's CPU per delivery in a profile.
	rt        http.RoundTripper
	userAgent string
}

var _ delivery.Transport = (*Transport)(nil)

// New returns the HTTP transport.
func New(o Options) *Transport {
	var rt http.RoundTripper
	switch {
	case o.Client == nil:
		n := o.MaxIdleConns
		if n <= 0 {
			n = delivery.DefaultMaxInFlight
		}
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConns, t.MaxIdleConnsPerHost = n, n
		rt = t
	case o.Client.Transport == nil:
		rt = http.DefaultTransport
	default:
		rt = o.Client.Transport
	}
	if o.UserAgent == "" {
		o.UserAgent = "kinehook/" + delivery.Version
	}
	return &Transport{rt: rt, userAgent: o.UserAgent}
}

// Send posts m.Body to m.Endpoint.URL with the signature headers, and
// classifies the answer: 2xx success, 410 gone, 429/503 with Retry-After
// back off, 3xx (not followed) and every other status failure.
func (t *Transport) Send(ctx context.Context, m delivery.Message) delivery.Result {
	// The attempt's clock starts with Send, as its deadline did: a timed-out
	// attempt then records about the endpoint's timeout, even when building
	// the request waited for the CPU.
	start := time.Now()
	ep := m.Endpoint
	h := http.Header(delivery.RequestHeaders(t.userAgent, m))
	out := delivery.Result{Headers: delivery.RecordedHeaders(h, ep.Headers)}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(m.Body))
	if err != nil {
		out.Outcome, out.Err = delivery.OutcomeNetworkError, "bad request: "+err.Error()
		return out
	}
	req.Header = h
	resp, err := t.rt.RoundTrip(req)
	var retryAfter string
	if err == nil {
		out.Response = readExcerpt(resp.Body)
		resp.Body.Close()
		out.StatusCode = resp.StatusCode
		retryAfter = resp.Header.Get("Retry-After")
	}
	out.Duration = time.Since(start)
	if err != nil {
		classifyError(&out, err)
	} else {
		delivery.ClassifyHTTPStatus(&out, retryAfter, m.Now)
	}
	return out
}

// readExcerpt reads the first delivery.ResponseBodyLimit bytes of a
// response body. The status decides; a body cut short is only noted.
func readExcerpt(body io.Reader) string {
	b, err := io.ReadAll(io.LimitReader(body, delivery.ResponseBodyLimit))
	s := string(b)
	if err != nil {
		return s + "\n[response body cut short: " + err.Error() + "]"
	}
	// Drain a little more so the connection can be reused.
	_, _ = io.CopyN(io.Discard, body, 64<<10)
	return s
}

// classifyError sorts a request that got no answer: the deadline (the
// engine writes its text), a network timeout, anything else.
func classifyError(out *delivery.Result, err error) {
	if errors.Is(err, context.DeadlineExceeded) {
		out.Outcome = delivery.OutcomeTimeout
		return
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		out.Outcome = delivery.OutcomeTimeout
	} else {
		out.Outcome = delivery.OutcomeNetworkError
	}
	out.Err = err.Error()
}

// Transports is delivery.Config.Transports holding only the HTTP transport
// New(o) makes: all an engine needs while every endpoint is a webhook.
func Transports(o Options) map[string]delivery.Transport {
	return map[string]delivery.Transport{delivery.TransportWebhook: New(o)}
}
