package dashboard

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseHeaders(t *testing.T) {
	tests := []struct {
		in      string
		want    map[string]string
		wantErr string
	}{
		{"", nil, ""},
		{"  \n\n", nil, ""},
		{"X-Team: video", map[string]string{"X-Team": "video"}, ""},
		{"X-A: 1\r\nX-B:  two words \n", map[string]string{"X-A": "1", "X-B": "two words"}, ""},
		{"Authorization: Bearer a:b", map[string]string{"Authorization": "Bearer a:b"}, ""},
		{"X-Empty:", map[string]string{"X-Empty": ""}, ""},
		{"no colon", nil, "line 1"},
		{"X-A: 1\nBad Name: x", nil, "line 2"},
		{"Host: evil", nil, "cannot be customised"},
		{"content-type: text/plain", nil, "cannot be customised"},
		{"Webhook-Signature: v1,x", nil, "reserved"},
		{"X-Nul: a\x00b", nil, "control character"},
		{"X-Long: " + strings.Repeat("a", 4097), nil, "longer than 4096"},
	}
	for _, tc := range tests {
		got, err := parseHeaders(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("parseHeaders(%q) error %v, want one containing %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseHeaders(%q): %v", tc.in, err)
			continue
		}
		if len(got) != len(tc.want) {
			t.Errorf("parseHeaders(%q) = %v, want %v", tc.in, got, tc.want)
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("parseHeaders(%q)[%s] = %q, want %q", tc.in, k, got[k], v)
			}
		}
	}
	many := strings.Repeat("X-H: v\n", 1)
	for i := 0; i < 51; i++ {
		many += "X-H" + string(rune('a'+i%26)) + string(rune('a'+i/26)) + ": v\n"
	}
	if _, err := parseHeaders(many); err == nil {
		t.Error("52 headers accepted")
	}
}

// headerToken is RFC 9110's token, written independently of the code under test.
var headerToken = regexp.MustCompile("^[!#$%&'*+\\-.^_`|~0-9A-Za-z]+$")

func FuzzParseHeaders(f *testing.F) {
	for _, s := range []string{"X-A: 1", "a:b\nc:d", "Host: x", ":", "\r\n:\x00", "webhook-id: 1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := parseHeaders(s)
		if err != nil {
			return
		}
		for k, v := range h {
			if !headerToken.MatchString(k) || strings.ContainsAny(v, "\r\n\x00") || strings.HasPrefix(strings.ToLower(k), "webhook-") {
				t.Fatalf("accepted header %q: %q", k, v)
			}
		}
	})
}

func TestParseSince(t *testing.T) {
	at := time.Date(2026, 1, 31, 14, 5, 0, 0, time.UTC)
	tests := []struct {
		in      string
		want    time.Time
		wantErr string // in the error when the input is refused
	}{
		{"2026-01-31 14:05", at, ""}, // as the placeholder shows
		{" 2026-01-31 14:05 ", at, ""},
		{"2026-01-31 14:05:00", at, ""},
		{"2026-01-31T14:05", at, ""}, // what datetime-local inputs sent: old links
		{"2026-01-31T14:05:00", at, ""},
		{"2026-01-31T14:05:00.250", at.Add(250 * time.Millisecond), ""},
		{"2026-01-31T14:05:00Z", at, ""},
		{"2026-01-31T15:05:00+01:00", at, ""},
		{"2026-01-31T14:05:00.5Z", at.Add(500 * time.Millisecond), ""},
		{"2026-01-31", time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC), ""},
		{"", time.Time{}, "no date and time given: write YYYY-MM-DD HH:MM in UTC"},
		{"yesterday", time.Time{}, `"yesterday" is not a date and time: write YYYY-MM-DD HH:MM in UTC, such as 2026-12-03 13:00`},
		{"31/01/2026", time.Time{}, "write YYYY-MM-DD HH:MM"},
		{"01/31/2026 02:05 PM", time.Time{}, "write YYYY-MM-DD HH:MM"}, // a US-locale display, typed back
		{"2026-01-31T1:05", time.Time{}, "write YYYY-MM-DD HH:MM"},     // time.Parse alone takes it
		{"2026-01-31 14", time.Time{}, "write YYYY-MM-DD HH:MM"},
		{"2026-1-31", time.Time{}, "write YYYY-MM-DD HH:MM"},
		{"2026-01-31 14:05Z", time.Time{}, "write YYYY-MM-DD HH:MM"}, // a zone needs seconds and the T
		{"2026-01-31 14:05:00Z", time.Time{}, "write YYYY-MM-DD HH:MM"},
		{"2026-01-31T14:05:00+0100", time.Time{}, "write YYYY-MM-DD HH:MM"},
		{"２０２６-01-31", time.Time{}, "write YYYY-MM-DD HH:MM"}, // full-width digits
		{"2026-13-01 00:00", time.Time{}, `"2026-13-01 00:00" is not a date and time that exists`},
		{"2026-02-30", time.Time{}, "that exists"},
		{"2026-01-31 24:00", time.Time{}, "that exists"},
		{"2026-01-31T14:05:60Z", time.Time{}, "that exists"},
		{"2026-01-31T14:05:00+24:00", time.Time{}, "that exists"},
	}
	for _, tc := range tests {
		got, err := parseSince(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("parseSince(%q) = %v, %v; want an error containing %q", tc.in, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("parseSince(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestHealthGrades(t *testing.T) {
	tests := []struct {
		h     health
		level string
		rate  float64
	}{
		{health{}, "info", 0},
		{health{Attempts: 10, Successes: 10}, "ok", 1},
		{health{Attempts: 10, Successes: 8}, "warn", 0.8},
		{health{Attempts: 10, Successes: 1}, "bad", 0.1},
	}
	for _, tc := range tests {
		if got := tc.h.Level(); got != tc.level {
			t.Errorf("%+v: level %s, want %s", tc.h, got, tc.level)
		}
		if got := tc.h.Rate(); got != tc.rate {
			t.Errorf("%+v: rate %v, want %v", tc.h, got, tc.rate)
		}
	}
	if got := failureText(500, ""); got != "HTTP 500" {
		t.Errorf("failureText: %q", got)
	}
	if got := failureText(0, "connection refused"); got != "connection refused" {
		t.Errorf("failureText: %q", got)
	}
}

func FuzzParseSince(f *testing.F) {
	for _, s := range []string{"2026-01-31T14:05", "2026-01-31 14:05", "2026-01-31T14:05:00Z", "2026-01-31T14:05:00.123+05:30", "2026-01-31",
		"", "yesterday", "2026-01-31T25:00", "2026-01-31T1:05", "2026-01-31 14:05:00.5", "2026-02-29"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseSince(s)
		if err != nil {
			if !strings.Contains(err.Error(), "YYYY-MM-DD HH:MM") && !strings.Contains(err.Error(), "that exists") {
				t.Fatalf("parseSince(%q): %v, which does not say what to type", s, err)
			}
			return
		}
		// Whatever parsed must parse again to the same instant in its RFC 3339 form.
		again, err := parseSince(got.Format(time.RFC3339Nano))
		if err != nil || !again.Equal(got) {
			t.Fatalf("parseSince(%q) = %v, which does not round-trip: %v %v", s, got, again, err)
		}
		// What was typed is what was read: the date, the hour and the
		// minute, as written (no day 32 rolled over, no one-digit hour).
		s = strings.TrimSpace(s)
		if len(s) < 10 || got.Format("2006-01-02") != s[:10] {
			t.Fatalf("parseSince(%q) = %v: not the date typed", s, got)
		}
		if len(s) > 10 && (len(s) < 16 || got.Format("15:04") != s[11:16] || (s[10] != 'T' && s[10] != ' ')) {
			t.Fatalf("parseSince(%q) = %v: not the time typed", s, got)
		}
		// Without a zone, it is UTC whichever separator was used.
		if !strings.ContainsAny(s[min(len(s), 19):], "Z+-") {
			if _, off := got.Zone(); off != 0 {
				t.Fatalf("parseSince(%q) = %v, not UTC", s, got)
			}
			other := strings.NewReplacer("T", " ", " ", "T").Replace(s)
			if o, err := parseSince(other); err != nil || !o.Equal(got) {
				t.Fatalf("parseSince(%q) = %v but parseSince(%q) = %v, %v", s, got, other, o, err)
			}
		}
	})
}

func FuzzParseEventFilter(f *testing.F) {
	f.Add("live.created", "failed", "video-1", "2026-01-01T00:00", "2026-02-01T00:00")
	f.Add("nope", "lost", "", "x", "")
	f.Fuzz(func(t *testing.T, typ, status, resource, since, until string) {
		q := map[string][]string{"type": {typ}, "status": {status}, "resource": {resource}, "since": {since}, "until": {until}}
		form, ef, msg := parseEventFilter(q)
		if msg != "" {
			return
		}
		if ef.Type != "" && !ef.Type.Known() {
			t.Fatalf("unknown type %q accepted", ef.Type)
		}
		if ef.DeliveryStatus != "" && !slices.Contains(allStatuses, ef.DeliveryStatus) {
			t.Fatalf("unknown status %q accepted", ef.DeliveryStatus)
		}
		if !ef.Since.IsZero() && !ef.Until.IsZero() && ef.Until.Before(ef.Since) {
			t.Fatal("an inverted range was accepted")
		}
		if ef.Limit != eventsPerPage || form.Resource != ef.ResourceKey {
			t.Fatalf("filter %+v from form %+v", ef, form)
		}
	})
}
