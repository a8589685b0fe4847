package delivery

import (
	"maps"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
)

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"120", 120 * time.Second, true},
		{" 5 ", 5 * time.Second, true},
		{"0", 0, true},
		{"-1", 0, false},
		{"", 0, false},
		{"soon", 0, false},
		{"99999999999999", MaxRetryAfter, true},
		{now.Add(time.Minute).Format(http.TimeFormat), time.Minute, true},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0, true},
	}
	for _, tc := range tests {
		got, ok := ParseRetryAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"120", "Fri, 27 Nov 2026 03:00:00 GMT", "", "-5", "1e9"} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := ParseRetryAfter(s, now)
		if d < 0 || (!ok && d != 0) {
			t.Fatalf("ParseRetryAfter(%q) = %v, %v", s, d, ok)
		}
	})
}

// Every status maps to one outcome, the same for every transport.
func TestClassifyHTTPStatus(t *testing.T) {
	now := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		status     int
		retryAfter string
		outcome    Outcome
		err        string
		after      time.Duration
	}{
		{200, "", OutcomeSuccess, "", 0},
		{204, "", OutcomeSuccess, "", 0},
		{410, "", OutcomeGone, "HTTP 410 Gone: endpoint disabled", 0},
		{429, "", OutcomeHTTPError, "HTTP 429", 0},
		{429, "7", OutcomeBackoff, "HTTP 429 with Retry-After: backing off 7s", 7 * time.Second},
		{503, "0", OutcomeBackoff, "HTTP 503 with Retry-After: backing off 1s", time.Second},
		{503, now.Add(2 * time.Minute).Format(http.TimeFormat), OutcomeBackoff, "HTTP 503 with Retry-After: backing off 2m0s", 2 * time.Minute},
		{500, "30", OutcomeHTTPError, "HTTP 500", 0},
		{301, "", OutcomeHTTPError, "HTTP 301: redirects are not followed", 0},
		{404, "", OutcomeHTTPError, "HTTP 404", 0},
	} {
		out := Result{StatusCode: tc.status}
		ClassifyHTTPStatus(&out, tc.retryAfter, now)
		if out.Outcome != tc.outcome || out.Err != tc.err || out.RetryAfter != tc.after {
			t.Errorf("%d %q: %v %q %v; want %v %q %v", tc.status, tc.retryAfter, out.Outcome, out.Err, out.RetryAfter, tc.outcome, tc.err, tc.after)
		}
	}
}

// A webhook request's headers: the fixed ones over custom headers of the
// same name (any case), the trace context's pair kept together, and what an
// attempt records: credentials redacted, custom values masked.
func TestRequestHeaders(t *testing.T) {
	ep := &kinehook.Endpoint{Headers: map[string]string{"x-token": "secret-value", "webhook-id": "forged", "tracestate": "stale=1"},
		Login: "user", Password: "pw"}
	m := Message{Endpoint: ep, ID: "msg_1", Timestamp: "1700000000", Signature: "v1,c2ln", TraceParent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
	h := flat(RequestHeaders("kinehook/test", m))
	want := map[string]string{
		"X-Token": "secret-value", "Content-Type": "application/json", "User-Agent": "kinehook/test",
		"Authorization": "Basic dXNlcjpwdw==", "Webhook-Id": "msg_1", "Webhook-Timestamp": "1700000000",
		"Webhook-Signature": "v1,c2ln", "Traceparent": m.TraceParent,
	}
	if !maps.Equal(h, want) {
		t.Errorf("headers %v\nwant %v", h, want)
	}
	rec := RecordedHeaders(RequestHeaders("kinehook/test", m), ep.Headers)
	if rec["Authorization"] != "Basic [redacted]" || rec["X-Token"] == "secret-value" || rec["Webhook-Timestamp"] != "1700000000" {
		t.Errorf("recorded %v: want credentials redacted, custom values masked, the rest kept", rec)
	}
	m.TraceParent, ep.Login, ep.Password = "", "", ""
	h = flat(RequestHeaders("kinehook/test", m))
	if h["Tracestate"] != "stale=1" || h["Authorization"] != "" {
		t.Errorf("without a trace context or credentials: %v", h)
	}
}

// flat is h with each header's one value.
func flat(h map[string][]string) map[string]string {
	out := make(map[string]string, len(h))
	for k, vs := range h {
		if len(vs) != 1 {
			panic("header " + k + " has " + strconv.Itoa(len(vs)) + " values")
		}
		out[k] = vs[0]
	}
	return out
}
