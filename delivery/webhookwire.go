package delivery

import (
	"encoding/base64"
	"fmt"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/kinehook/kinehook"
)

// The webhook wire rules every transport that hands a webhook to an HTTP
// receiver shares (the webhook transport, the listen relay): which headers
// a request carries and how an attempt records them, and how the answer's
// status is classified.

// RequestHeaders are the headers of m's webhook request, by canonical name,
// in the shape of net/http's Header (the webhook transport sends it as is,
// without a copy): the endpoint's custom headers, then Content-Type,
// User-Agent, Basic Auth and the Standard Webhooks headers over any custom
// header of the same name, and the attempt's W3C trace context (a
// tracestate only with its traceparent).
func RequestHeaders(userAgent string, m Message) map[string][]string {
	ep := m.Endpoint
	h := make(map[string][]string, 8+len(ep.Headers))
	for k, v := range ep.Headers {
		h[textproto.CanonicalMIMEHeaderKey(k)] = []string{v}
	}
	h["Content-Type"] = []string{"application/json"}
	h["User-Agent"] = []string{userAgent}
	if ep.Login != "" || ep.Password != "" {
		h["Authorization"] = []string{"Basic " + base64.StdEncoding.EncodeToString([]byte(ep.Login+":"+ep.Password))}
	}
	h[headerID] = []string{m.ID}
	h[headerTimestamp] = []string{m.Timestamp}
	h[headerSignature] = []string{m.Signature}
	if m.TraceParent != "" {
		h[headerTraceParent] = []string{m.TraceParent}
		delete(h, headerTraceState)
		if m.TraceState != "" {
			h[headerTraceState] = []string{m.TraceState}
		}
	}
	return h
}

// The canonical names of the headers RequestHeaders sets, computed once.
var (
	headerID          = textproto.CanonicalMIMEHeaderKey(kinehook.HeaderID)
	headerTimestamp   = textproto.CanonicalMIMEHeaderKey(kinehook.HeaderTimestamp)
	headerSignature   = textproto.CanonicalMIMEHeaderKey(kinehook.HeaderSignature)
	headerTraceParent = textproto.CanonicalMIMEHeaderKey(kinehook.HeaderTraceParent)
	headerTraceState  = textproto.CanonicalMIMEHeaderKey(kinehook.HeaderTraceState)
)

// RecordedHeaders is h as an attempt records it: credentials redacted
// (their scheme kept), the endpoint's custom header values masked as the
// API shows them, since they often carry API keys and the attempts table is
// not sealed.
func RecordedHeaders(h map[string][]string, custom map[string]string) map[string]string {
	out := make(map[string]string, len(h))
	for k, vs := range h {
		v := strings.Join(vs, ", ")
		switch strings.ToLower(k) {
		case "authorization", "proxy-authorization":
			if i := strings.IndexByte(v, ' '); i > 0 {
				v = v[:i] + " [redacted]"
			} else {
				v = "[redacted]"
			}
		default:
			for c := range custom {
				if textproto.CanonicalMIMEHeaderKey(c) == k {
					v = kinehook.MaskHeaderValue(v)
					break
				}
			}
		}
		out[k] = v
	}
	return out
}

// ClassifyHTTPStatus sets out's outcome from the HTTP status in
// out.StatusCode: 2xx success; 410 gone (the endpoint is disabled); 429 and
// 503 a failure, or a back-off when retryAfter (the Retry-After header)
// parses; 3xx a failure (redirects are not followed); anything else a
// failure. now is when the attempt began, from which a Retry-After date
// counts. Every transport that relays an HTTP answer (the webhook
// transport, the listen relay) classifies it here, so they cannot drift.
func ClassifyHTTPStatus(out *Result, retryAfter string, now time.Time) {
	status := out.StatusCode
	switch {
	case status >= 200 && status < 300:
		out.Outcome = OutcomeSuccess
	case status == 410:
		out.Outcome, out.Err = OutcomeGone, "HTTP 410 Gone: endpoint disabled"
	case status == 429 || status == 503:
		out.Outcome, out.Err = OutcomeHTTPError, "HTTP "+strconv.Itoa(status)
		if d, ok := ParseRetryAfter(retryAfter, now); ok {
			out.Outcome = OutcomeBackoff
			out.RetryAfter = BoundRetryAfter(d)
			out.Err += fmt.Sprintf(" with Retry-After: backing off %s", out.RetryAfter)
		}
	case status >= 300 && status < 400:
		out.Outcome, out.Err = OutcomeHTTPError, fmt.Sprintf("HTTP %d: redirects are not followed", status)
	default:
		out.Outcome, out.Err = OutcomeHTTPError, "HTTP "+strconv.Itoa(status)
	}
}

// httpDates are the date forms an HTTP/1.1 Retry-After may take (RFC 9110:
// IMF-fixdate, and the obsolete RFC 850 and asctime forms).
var httpDates = []string{"Mon, 02 Jan 2006 15:04:05 GMT", time.RFC850, time.ANSIC}

// ParseRetryAfter reads a Retry-After value: delay-seconds (capped at
// MaxRetryAfter) or an HTTP date counted from now (0 when past).
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		if n > int64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter, true
		}
		return time.Duration(n) * time.Second, true
	}
	for _, layout := range httpDates {
		if t, err := time.Parse(layout, v); err == nil {
			return max(t.Sub(now), 0), true
		}
	}
	return 0, false
}
