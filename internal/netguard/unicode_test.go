package netguard

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Verdicts of registration and of the dial path on one URL host.
const (
	verdictBlocked = "blocked" // a *BlockedError
	verdictInvalid = "invalid" // a *HostError: the host cannot be normalised
	verdictPass    = "pass"    // a name for the resolver, or an allowed address
)

// errReachedDial stands for the connect(2) the real dialer would make: the
// test transport returns it instead of opening a connection.
var errReachedDial = errors.New("test: reached the dialer with an allowed address or a name")

// verdict classifies an error of CheckLiteralHost or of a round trip.
func verdict(t testing.TB, err error) string {
	t.Helper()
	var be *BlockedError
	var he *HostError
	switch {
	case err == nil || errors.Is(err, errReachedDial):
		return verdictPass
	case errors.As(err, &be):
		return verdictBlocked
	case errors.As(err, &he):
		return verdictInvalid
	}
	t.Fatalf("unexpected error %T: %v", err, err)
	return ""
}

// dialTransport is NewTransport's transport with the last step, connect(2),
// replaced: the address the guard lets through is not dialled but reported
// as errReachedDial. Everything before it is the real path a delivery
// takes: net/http's own host mapping (idnaASCII in canonicalAddr), then
// canonicalDial, then the guard's Control on the address.
func dialTransport(g *Guard) *http.Transport {
	tr := NewTransport(ClientOptions{AllowPrivate: g.AllowPrivate, AllowCIDRs: g.AllowCIDRs})
	tr.DialContext = canonicalDial(g, func(_ context.Context, network, address string) (net.Conn, error) {
		if ap, err := netip.ParseAddrPort(address); err == nil {
			if err := g.Control(network, ap.String(), nil); err != nil {
				return nil, err
			}
		}
		return nil, errReachedDial
	})
	return tr
}

// dialVerdict sends one request to raw through tr and classifies how the
// dial path treated it.
func dialVerdict(t testing.TB, tr *http.Transport, u *url.URL) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req := (&http.Request{Method: http.MethodPost, URL: u, Header: http.Header{}, Host: u.Host}).WithContext(ctx)
	resp, err := tr.RoundTrip(req)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("%s: a round trip succeeded; nothing should have been dialled", u)
	}
	return verdict(t, err)
}

// TestUnicodeHostSpellings: hosts written with full-width digits and dots,
// the ideographic full stop, enclosed and mathematical letters and digits,
// soft hyphens and mixed case mean the ASCII host the HTTP client maps them
// to. Registration (CheckLiteralHost on url.Hostname, as the API does) and
// the real dial path must give each the same verdict.
func TestUnicodeHostSpellings(t *testing.T) {
	tests := []struct {
		host   string
		want   string
		reason string // for blocked: a substring of the message
	}{
		{"１２７.０.０.１", verdictBlocked, `address 127.0.0.1 (written "１２７.０.０.１") is blocked: loopback`},
		{"127．0．0．1", verdictBlocked, ReasonLoopback},  // U+FF0E full-width full stop
		{"127。0。0。1", verdictBlocked, ReasonLoopback},  // U+3002 ideographic full stop
		{"127｡0｡0｡1", verdictBlocked, ReasonLoopback},  // U+FF61 half-width ideographic full stop
		{"1２7.0.0.1", verdictBlocked, ReasonLoopback},  // mixed
		{"１２７.１", verdictBlocked, ReasonLoopback},      // short inet_aton form
		{"０ｘ７ｆ０００００１", verdictBlocked, ReasonLoopback}, // hexadecimal
		{"①②⑦.0.0.1", verdictBlocked, ReasonLoopback},  // circled digits
		{"𝟏𝟐𝟕.0.0.1", verdictBlocked, ReasonLoopback},  // mathematical bold digits
		{"127.0.0.1\u00ad", verdictBlocked, ReasonLoopback},
		{"127.0.0.1。", verdictBlocked, ReasonLoopback}, // trailing ideographic full stop
		{"１６９.２５４.１６９.２５４", verdictBlocked, ReasonLinkLocal},
		{"⑯⑨.254.169.254", verdictBlocked, ReasonLinkLocal},
		{"１０.0.0.1", verdictBlocked, ReasonPrivate},
		{"１９２.１６８.0.1", verdictBlocked, ReasonPrivate},
		{"０", verdictBlocked, "this network"},
		{"ⓛocalhost", verdictBlocked, `host ⓛocalhost is blocked: loopback name ("localhost" once mapped`},
		{"ＬＯＣＡＬＨＯＳＴ", verdictBlocked, "loopback name"},
		{"LocalＨost", verdictBlocked, "loopback name"},
		{"api.ⓛocalhost", verdictBlocked, "loopback name"},
		{"ｌｏｃａｌｈｏｓｔ。", verdictBlocked, "loopback name"},
		{"ip6-ⓛocalhost", verdictBlocked, "loopback name"},
		{"８.８.８.８", verdictPass, ""},
		{"ＥＸＡＭＰＬＥ.com", verdictPass, ""},
		{"münchen.de", verdictPass, ""},
		{"ⓛocalhost.example.com", verdictPass, ""},
		{"a\u200db.example.com", verdictInvalid, "not a valid internationalised domain name"}, // zero-width joiner
		{"127.0.0.1\uff1a80", verdictInvalid, "not a valid internationalised domain name"},    // full-width colon
		{"exa mple.cöm", verdictInvalid, ""},
		// ASCII spellings, for contrast.
		{"127.0.0.1", verdictBlocked, ReasonLoopback},
		{"[::1]", verdictBlocked, ReasonLoopback},
		{"[::ffff:169.254.169.254]", verdictBlocked, ReasonLinkLocal},
		{"[fe80::1%25eth0]", verdictBlocked, ReasonLinkLocal},
		{"[2606:4700:4700::1111]", verdictPass, ""},
		{"example.com", verdictPass, ""},
	}
	var g Guard
	tr := dialTransport(&g)
	open := &Guard{AllowPrivate: true}
	openTr := dialTransport(open)
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			u := &url.URL{Scheme: "http", Host: tt.host, Path: "/hook"}
			if strings.HasPrefix(tt.host, "[") {
				var err error
				if u, err = url.Parse("http://" + tt.host + "/hook"); err != nil {
					t.Fatal(err)
				}
			}
			regErr := CheckLiteralHost(u.Hostname())
			if got := verdict(t, regErr); got != tt.want {
				t.Fatalf("registration: %s (%v); want %s", got, regErr, tt.want)
			}
			if tt.reason != "" && !strings.Contains(regErr.Error(), tt.reason) {
				t.Errorf("registration message %q does not say %q", regErr, tt.reason)
			}
			if got := dialVerdict(t, tr, u); got != tt.want {
				t.Fatalf("registration says %s, the dial path says %s", tt.want, got)
			}
			// --allow-private-networks opens addresses, never a host that
			// cannot be normalised.
			wantOpen := verdictPass
			if tt.want == verdictInvalid {
				wantOpen = verdictInvalid
			}
			if got := verdict(t, open.CheckLiteralHost(u.Hostname())); got != wantOpen {
				t.Errorf("allow-private registration: %s; want %s", got, wantOpen)
			}
			if got := dialVerdict(t, openTr, u); got != wantOpen {
				t.Errorf("allow-private dial: %s; want %s", got, wantOpen)
			}
		})
	}
}

// TestUnicodeIPv6Refused: url.Parse refuses a bracketed IPv6 literal in
// Unicode, so such a URL is refused before any host check and never dialled.
func TestUnicodeIPv6Refused(t *testing.T) {
	for _, raw := range []string{"http://[：：１]/", "http://[::ffff:１２７.0.0.1]/", "http://[::ｆｆｆｆ:127.0.0.1]/", "http://[fe８0::1]/"} {
		if u, err := url.Parse(raw); err == nil {
			t.Errorf("url.Parse(%q) = host %q; want an error", raw, u.Host)
		}
	}
}

// TestNormalizeHost pins the mapping on the forms the table relies on.
func TestNormalizeHost(t *testing.T) {
	for in, want := range map[string]string{
		"１２７.０.０.１": "127.0.0.1", "127。0。0。1": "127.0.0.1", "ⓛocalhost": "localhost",
		"ＥＸＡＭＰＬＥ.com": "example.com", "münchen.de": "xn--mnchen-3ya.de",
		"Example.COM": "Example.COM", "0x7f.1": "0x7f.1", "": "",
	} {
		got, err := NormalizeHost(in)
		if err != nil || got != want {
			t.Errorf("NormalizeHost(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	_, err := NormalizeHost("a\u200db.com")
	var he *HostError
	if !errors.As(err, &he) || he.Host != "a\u200db.com" {
		t.Errorf("NormalizeHost(ZWJ) = %v; want a *HostError", err)
	}
}
