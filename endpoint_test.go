package kinehook

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"testing"
)

func TestValidateEndpointURL(t *testing.T) {
	long := "https://example.com/" + strings.Repeat("a", 2048)
	tests := []struct {
		url string
		ok  bool
	}{
		{"https://example.com/hooks/kinescope", true},
		{"http://example.com:8080/x?y=1", true},
		{"https://[2001:db8::1]/x", true},
		{"ftp://example.com/x", false},
		{"/relative/path", false},
		{"example.com/x", false},
		{"https://", false},
		{"https://user:pw@example.com/", false},
		{"https://example.com/#frag", false},
		{"http://exa mple.com/", false},
		{long, false},
		{"", false},
	}
	for _, tt := range tests {
		err := ValidateEndpointURL(tt.url)
		if (err == nil) != tt.ok {
			t.Errorf("ValidateEndpointURL(%q) = %v, want ok=%v", tt.url, err, tt.ok)
		}
		if err != nil && (ErrorCode(err) != EINVALID || !strings.Contains(err.Error(), "url")) {
			t.Errorf("ValidateEndpointURL(%q): error %v should be invalid and name the url field", tt.url, err)
		}
	}
}

func TestValidateEventTypeFilter(t *testing.T) {
	tests := []struct {
		filter []string
		ok     bool
	}{
		{nil, true},
		{[]string{"media.update.status", "live.*"}, true},
		{[]string{"*"}, true},
		{[]string{"live.finished"}, true},
		{[]string{"video.done"}, false},
		{[]string{"failed"}, false},
		{[]string{"media.*"}, true},
		{[]string{"nope.*"}, false},
		{[]string{".*"}, false},
		{[]string{"live."}, false},
		{[]string{"endpoint.*"}, true},
		{[]string{"endpoint.disabled", "live.*"}, true},
		{[]string{"endpoint.deleted"}, false},
	}
	for _, tt := range tests {
		err := ValidateEventTypeFilter(tt.filter)
		if (err == nil) != tt.ok {
			t.Errorf("ValidateEventTypeFilter(%q) = %v, want ok=%v", tt.filter, err, tt.ok)
		}
	}
}

func TestEndpointMatches(t *testing.T) {
	tests := []struct {
		filter []string
		typ    EventType
		want   bool
	}{
		{nil, EventLiveFinished, true},
		{[]string{"live.*"}, EventLiveFinished, true},
		{[]string{"live.*"}, EventMediaUpdateStatus, false},
		{[]string{"media.update.status"}, EventMediaUpdateStatus, true},
		{[]string{"media.update.status"}, EventLiveCreated, false},
		{[]string{"*"}, EventLiveCreated, true},
		// Operational events reach only endpoints that name them.
		{nil, EventEndpointDisabled, false},
		{[]string{"*"}, EventEndpointRecovered, false},
		{[]string{"endpoint.*"}, EventEndpointDisabled, true},
		{[]string{"endpoint.*"}, EventLiveCreated, false},
		{[]string{"live.*", "endpoint.recovered"}, EventEndpointRecovered, true},
		{[]string{"endpoint.recovered"}, EventEndpointDisabled, false},
	}
	for _, tt := range tests {
		e := &Endpoint{EventTypes: tt.filter}
		if got := e.Matches(tt.typ); got != tt.want {
			t.Errorf("filter %q matches %s = %v, want %v", tt.filter, tt.typ, got, tt.want)
		}
	}
}

// FuzzValidateEndpointURL checks that whatever the validator accepts is an
// absolute http(s) URL with a host and no credentials, and that it never panics.
func FuzzValidateEndpointURL(f *testing.F) {
	for _, s := range []string{"https://example.com/x", "http://127.1/", "http://[::1]:80/", "https://u:p@h/", "javascript:alert(1)", "http://%41/", "HTTP://EXAMPLE.COM"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ValidateEndpointURL(s) != nil {
			return
		}
		u, err := url.Parse(s)
		if err != nil {
			t.Fatalf("accepted %q but url.Parse fails: %v", s, err)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.User != nil || u.Fragment != "" {
			t.Fatalf("accepted %q: scheme %q host %q user %v", s, u.Scheme, u.Hostname(), u.User)
		}
	})
}

func TestValidateEndpointHeaders(t *testing.T) {
	tests := []struct {
		name    string
		headers map[string]string
		wantErr string
	}{
		{"none", nil, ""},
		{"custom", map[string]string{"X-Team": "video", "Authorization": "Bearer a:b", "X-Empty": ""}, ""},
		{"bad name", map[string]string{"Bad Name": "x"}, "not a valid header name"},
		{"empty name", map[string]string{"": "x"}, "not a valid header name"},
		{"hop-by-hop", map[string]string{"Connection": "close"}, "cannot be customised"},
		{"set by the sender", map[string]string{"content-type": "text/plain"}, "cannot be customised"},
		{"user agent", map[string]string{"User-Agent": "curl/8"}, "cannot be customised"},
		{"signature header", map[string]string{"Webhook-Signature": "v1,x"}, "reserved for the Standard Webhooks signature"},
		{"long value", map[string]string{"X-Long": strings.Repeat("a", MaxHeaderValue+1)}, "longer than 4096"},
		{"line break", map[string]string{"X-A": "a\r\nX-B: b"}, "line break"},
		{"NUL", map[string]string{"X-A": "a\x00b"}, "control character"},
		{"too many", manyHeaders(MaxEndpointHeaders + 1), "at most 50"},
	}
	for _, tc := range tests {
		err := ValidateEndpointHeaders(tc.headers)
		if tc.wantErr == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) || ErrorCode(err) != EINVALID {
			t.Errorf("%s: error %v, want an invalid error containing %q", tc.name, err, tc.wantErr)
		}
	}
	if err := ValidateEndpointHeaders(manyHeaders(MaxEndpointHeaders)); err != nil {
		t.Errorf("%d headers: %v", MaxEndpointHeaders, err)
	}
}

func manyHeaders(n int) map[string]string {
	h := map[string]string{}
	for i := range n {
		h[fmt.Sprintf("X-H%d", i)] = "v"
	}
	return h
}

func TestNewEndpointSecret(t *testing.T) {
	v1, err := NewEndpointSecret(SchemeV1)
	if err != nil || !strings.HasPrefix(v1, SecretPrefix) {
		t.Fatalf("v1 secret %q, %v", v1, err)
	}
	v1a, err := NewEndpointSecret(SchemeV1a)
	if err != nil || !strings.HasPrefix(v1a, "whsk_") {
		t.Fatalf("v1a secret %q, %v", v1a, err)
	}
}

func TestMaskHeaderValue(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"42", "****"},
		{"elevenchars", "****"},
		{"twelve-chars", "****hars"},
		{"Bearer eyJhbGciOiJIUzI1NiJ9.abcd", "****abcd"},
		{"ключ-ключ-ключ-ёжик", "****ёжик"}, // characters, not bytes
	} {
		if got := MaskHeaderValue(tc.in); got != tc.want {
			t.Errorf("MaskHeaderValue(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := MaskHeaders(nil); got != nil {
		t.Errorf("MaskHeaders(nil) = %v", got)
	}
	in := map[string]string{"Authorization": "Bearer 0123456789abcdef", "X-Tenant": "42"}
	got := MaskHeaders(in)
	if got["Authorization"] != "****cdef" || got["X-Tenant"] != "****" || in["X-Tenant"] != "42" {
		t.Errorf("MaskHeaders = %v (input now %v)", got, in)
	}
}

func TestKeepMaskedHeaders(t *testing.T) {
	stored := map[string]string{"Authorization": "Bearer 0123456789abcdef", "X-Tenant": "42"}
	for _, tc := range []struct {
		name string
		in   map[string]string
		want map[string]string
	}{
		{"sent back as read", map[string]string{"Authorization": "****cdef", "X-Tenant": "****"}, stored},
		{"name in another case", map[string]string{"authorization": "****cdef"}, map[string]string{"authorization": "Bearer 0123456789abcdef"}},
		{"new value", map[string]string{"Authorization": "Bearer new-token-0000", "X-Tenant": "43"}, map[string]string{"Authorization": "Bearer new-token-0000", "X-Tenant": "43"}},
		{"mask of another value", map[string]string{"Authorization": "****zzzz"}, map[string]string{"Authorization": "****zzzz"}},
		{"new header that looks masked", map[string]string{"X-New": "****"}, map[string]string{"X-New": "****"}},
		{"dropped header", map[string]string{"X-Tenant": "****"}, map[string]string{"X-Tenant": "42"}},
		{"none", map[string]string{}, map[string]string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := KeepMaskedHeaders(tc.in, stored); !maps.Equal(got, tc.want) {
				t.Errorf("KeepMaskedHeaders = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestNormalizeEventTypeFilter(t *testing.T) {
	many := func(n int, v string) []string { return slices.Repeat([]string{v}, n) }
	tests := []struct {
		name   string
		filter []string
		want   []string
		errHas string
	}{
		{"nil stays empty", nil, []string{}, ""},
		{"repeats dropped, first seen order", []string{"live.*", "media.update.status", "live.*", "media.update.status"}, []string{"live.*", "media.update.status"}, ""},
		{"64 repeats", many(MaxEventTypeFilters, "live.*"), []string{"live.*"}, ""},
		{"65 entries", many(MaxEventTypeFilters+1, "live.*"), nil, "at most 64 event types, 65 given"},
		{"100,000 entries", many(100000, "live.finished"), nil, "at most 64 event types, 100000 given"},
		{"long entry", []string{"live." + strings.Repeat("x", MaxEventTypeLength)}, nil, "longer than 100 characters"},
		{"unknown", []string{"live.*", "video.done"}, nil, `unknown event type "video.done"`},
	}
	for _, tt := range tests {
		got, err := NormalizeEventTypeFilter(tt.filter)
		if tt.errHas != "" {
			var ke *Error
			if !errors.As(err, &ke) || ke.Code != EINVALID || ke.Field != "event_types" || !strings.Contains(ke.Message, tt.errHas) {
				t.Errorf("%s: error %v, want invalid event_types containing %q", tt.name, err, tt.errHas)
			}
			if ke != nil && len(ke.Message) > 300 {
				t.Errorf("%s: message of %d bytes echoes the input", tt.name, len(ke.Message))
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("%s: = %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
}

func TestExpandEventTypeFilter(t *testing.T) {
	tests := []struct {
		filter []string
		want   []EventType
	}{
		{nil, EventTypes},
		{[]string{"*"}, EventTypes},
		{[]string{"live.*"}, []EventType{EventLiveCreated, EventLiveConnected, EventLiveDisconnected, EventLiveFinished, EventLiveCancelled, EventLiveEnabled}},
		{[]string{"live.finished", "media.update.status"}, []EventType{EventLiveFinished, EventMediaUpdateStatus}},
		{[]string{"media.*", "live.finished", "media.update.status"}, []EventType{EventMediaUpdateStatus, EventLiveFinished}},
		{[]string{"endpoint.*"}, OperationalEventTypes},
	}
	for _, tt := range tests {
		if got := ExpandEventTypeFilter(tt.filter); !slices.Equal(got, tt.want) {
			t.Errorf("ExpandEventTypeFilter(%q) = %q, want %q", tt.filter, got, tt.want)
		}
	}
}
