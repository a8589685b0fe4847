package webhook

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/delivery"
)

func message(url string) delivery.Message {
	return delivery.Message{
		Endpoint: &kinehook.Endpoint{ID: "ep_1", URL: url, Login: "user", Password: "pa:ss",
			Headers: map[string]string{"x-api-key": "key-0123456789abcdef"}},
		ID: "evt_1", Timestamp: "1700000000", Signature: "v1,c2ln", Body: []byte(`{"a":1}`),
		Now: time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC),
	}
}

// Each answer is classified by its status alone; what the engine needs
// (outcome, status, error text, pause) comes back transport-neutral.
func TestSendClassifies(t *testing.T) {
	t.Parallel()
	now := message("").Now
	tests := []struct {
		name       string
		status     int
		retryAfter string
		outcome    delivery.Outcome
		err        string
		pause      time.Duration
	}{
		{"200", 200, "", delivery.OutcomeSuccess, "", 0},
		{"204", 204, "", delivery.OutcomeSuccess, "", 0},
		{"410", 410, "", delivery.OutcomeGone, "HTTP 410 Gone: endpoint disabled", 0},
		{"429 seconds", 429, "120", delivery.OutcomeBackoff, "HTTP 429 with Retry-After: backing off 2m0s", 2 * time.Minute},
		{"429 zero is a second", 429, "0", delivery.OutcomeBackoff, "HTTP 429 with Retry-After: backing off 1s", time.Second},
		{"503 date", 503, now.Add(90 * time.Second).Format(http.TimeFormat), delivery.OutcomeBackoff, "HTTP 503 with Retry-After: backing off 1m30s", 90 * time.Second},
		{"503 capped", 503, "86400", delivery.OutcomeBackoff, "HTTP 503 with Retry-After: backing off 1h0m0s", time.Hour},
		{"429 without Retry-After", 429, "", delivery.OutcomeHTTPError, "HTTP 429", 0},
		{"307 not followed", 307, "", delivery.OutcomeHTTPError, "HTTP 307: redirects are not followed", 0},
		{"500", 500, "", delivery.OutcomeHTTPError, "HTTP 500", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			followed := false
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/elsewhere" {
					followed = true
					return
				}
				if tc.retryAfter != "" {
					w.Header().Set("Retry-After", tc.retryAfter)
				}
				w.Header().Set("Location", "/elsewhere")
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte("answer"))
			}))
			defer srv.Close()
			res := New(Options{Client: srv.Client()}).Send(t.Context(), message(srv.URL+"/hook"))
			if res.Outcome != tc.outcome || res.StatusCode != tc.status || res.Err != tc.err || res.RetryAfter != tc.pause {
				t.Errorf("result = %s %d %q pause %v; want %s %d %q pause %v", res.Outcome, res.StatusCode, res.Err, res.RetryAfter,
					tc.outcome, tc.status, tc.err, tc.pause)
			}
			if (res.Response != "answer" && tc.status != 204) || res.Duration <= 0 || followed {
				t.Errorf("response %q, duration %v, redirect followed %v", res.Response, res.Duration, followed)
			}
		})
	}
}

// The request carries the message as signed, the endpoint's credentials and
// custom headers; the recorded copy hides credentials and masks custom values.
func TestSendHeaders(t *testing.T) {
	t.Parallel()
	var got http.Header
	var body string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		b := make([]byte, 100)
		n, _ := r.Body.Read(b)
		body = string(b[:n])
		_, _ = w.Write([]byte(strings.Repeat("x", delivery.ResponseBodyLimit+100)))
	}))
	defer srv.Close()
	m := message(srv.URL)
	res := New(Options{Client: srv.Client()}).Send(t.Context(), m)
	for k, want := range map[string]string{
		"Content-Type": "application/json", "User-Agent": "kinehook/" + delivery.Version, "X-Api-Key": "key-0123456789abcdef",
		kinehook.HeaderID: "evt_1", kinehook.HeaderTimestamp: "1700000000", kinehook.HeaderSignature: "v1,c2ln",
		"Authorization": "Basic dXNlcjpwYTpzcw==",
	} {
		if v := got.Get(k); v != want {
			t.Errorf("sent %s = %q, want %q", k, v, want)
		}
	}
	if body != string(m.Body) {
		t.Errorf("body %q", body)
	}
	for k, want := range map[string]string{"Authorization": "Basic [redacted]", "X-Api-Key": "****cdef", "Webhook-Id": "evt_1", "User-Agent": "kinehook/" + delivery.Version} {
		if v := res.Headers[k]; v != want {
			t.Errorf("recorded %s = %q, want %q", k, v, want)
		}
	}
	if len(res.Response) != delivery.ResponseBodyLimit {
		t.Errorf("response excerpt %d bytes, want %d", len(res.Response), delivery.ResponseBodyLimit)
	}
}

// No answer: the deadline is a timeout the engine words, a refused
// connection a network error without net/http's "Post <url>:" prefix, a
// bad URL a network error before anything is sent.
func TestSendFailures(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer hang.Close()
	defer close(release)
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	tr := New(Options{UserAgent: "test/1"})
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if res := tr.Send(ctx, message(hang.URL)); res.Outcome != delivery.OutcomeTimeout || res.Err != "" || res.Headers["User-Agent"] != "test/1" {
		t.Errorf("deadline: %+v, want a timeout without text", res)
	}
	res := tr.Send(t.Context(), message(closedURL))
	if res.Outcome != delivery.OutcomeNetworkError || !strings.Contains(res.Err, "refused") || strings.HasPrefix(res.Err, "Post ") {
		t.Errorf("refused: %+v", res)
	}
	res = tr.Send(t.Context(), message("http://[::1"))
	if res.Outcome != delivery.OutcomeNetworkError || !strings.HasPrefix(res.Err, "bad request: ") || res.Headers["Webhook-Id"] != "evt_1" {
		t.Errorf("bad URL: %+v", res)
	}
}

// The attempt's trace context goes out as the W3C headers, over an
// endpoint's custom headers of the same names, and is recorded; none is
// sent when the message has none.
func TestSendTraceContext(t *testing.T) {
	t.Parallel()
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	var got http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header.Clone() }))
	defer srv.Close()
	tr := New(Options{Client: srv.Client()})
	for _, tc := range []struct {
		name         string
		parent       string
		state        string
		custom       map[string]string
		wantP, wantS string
	}{
		{name: "none"},
		{name: "parent", parent: tp, wantP: tp},
		{name: "parent and state", parent: tp, state: "rojo=1", wantP: tp, wantS: "rojo=1"},
		{name: "over custom headers", parent: tp, custom: map[string]string{"Traceparent": "00-x", "Tracestate": "old=1"}, wantP: tp},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := message(srv.URL)
			ep := *m.Endpoint
			if tc.custom != nil {
				ep.Headers = tc.custom
			}
			m.Endpoint, m.TraceParent, m.TraceState = &ep, tc.parent, tc.state
			res := tr.Send(t.Context(), m)
			if res.Outcome != delivery.OutcomeSuccess {
				t.Fatalf("outcome %s: %s", res.Outcome, res.Err)
			}
			if p, s := got.Values("Traceparent"), got.Values("Tracestate"); strings.Join(p, ",") != tc.wantP || strings.Join(s, ",") != tc.wantS {
				t.Errorf("sent traceparent %q tracestate %q, want %q %q", p, s, tc.wantP, tc.wantS)
			}
			if tc.custom == nil && res.Headers["Traceparent"] != tc.wantP {
				t.Errorf("recorded traceparent %q, want %q", res.Headers["Traceparent"], tc.wantP)
			}
		})
	}
}
