package netguard

import (
	"errors"
	"net/netip"
	"net/url"
	"testing"
)

// FuzzBlocked checks the classifier's invariants on arbitrary 4- and
// 16-byte addresses: no panic, a reason for every refusal, every listed
// prefix refused, IPv4 and its IPv4-mapped form judged alike, and the
// allow list and AllowPrivate opening what they name.
func FuzzBlocked(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "8.8.8.8", "::1", "::ffff:10.0.0.1", "2002:7f00:1::", "64:ff9b::1", "fe80::1", "2606:4700::1"} {
		f.Add(netip.MustParseAddr(s).AsSlice())
	}
	prefixes := BlockedPrefixes()
	f.Fuzz(func(t *testing.T, b []byte) {
		a, ok := netip.AddrFromSlice(b)
		if !ok {
			return
		}
		reason, blocked := Blocked(a)
		if blocked && reason == "" {
			t.Fatalf("%s blocked without a reason", a)
		}
		if !blocked && reason != "" {
			t.Fatalf("%s allowed with reason %q", a, reason)
		}
		for _, p := range prefixes {
			if p.Contains(a) && !blocked {
				t.Fatalf("%s is in %s but allowed", a, p)
			}
		}
		if a.Is4() {
			if _, mb := Blocked(netip.AddrFrom16(a.As16())); mb != blocked {
				t.Fatalf("%s blocked=%v but its mapped form blocked=%v", a, blocked, mb)
			}
		}
		if a.Is4In6() {
			if _, ub := Blocked(a.Unmap()); ub != blocked {
				t.Fatalf("%s blocked=%v but %s blocked=%v", a, blocked, a.Unmap(), ub)
			}
		}
		g := &Guard{}
		err := g.Check(a)
		if (err != nil) != blocked {
			t.Fatalf("Guard.Check(%s) = %v; Blocked says %v", a, err, blocked)
		}
		if err := (&Guard{AllowPrivate: true}).Check(a); err != nil {
			t.Fatalf("AllowPrivate refused %s: %v", a, err)
		}
		if err := (&Guard{AllowCIDRs: []netip.Prefix{netip.PrefixFrom(a, a.BitLen())}}).Check(a); err != nil {
			t.Fatalf("an allow list naming %s refused it: %v", a, err)
		}
		if err := g.Control("tcp", netip.AddrPortFrom(a, 443).String(), nil); (err != nil) != blocked {
			t.Fatalf("Control(%s) = %v; Blocked says %v", a, err, blocked)
		}
	})
}

// FuzzParseHost checks the host parser on arbitrary strings: no panic;
// a parsed IPv4 address prints and re-parses to itself; registration
// refuses exactly the parsed addresses the classifier blocks, and localhost
// names; dotted decimal agrees with netip. A non-ASCII host the IDNA
// mapping refuses is a *HostError instead, whatever it parses as.
func FuzzParseHost(f *testing.F) {
	for _, s := range []string{"127.1", "2130706433", "0x7f000001", "017700000001", "[::1]", "[::ffff:127.0.0.1]",
		"0.0.0.0", "localhost", "a.localhost.", "example.com", "1.2.3.4", "0x", "08", "[fe80::1%eth0]", "127.0.0.1.", "4294967296"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		a, ok := ParseHost(host)
		err := CheckLiteralHost(host)
		var be *BlockedError
		var he *HostError
		if errors.As(err, &he) {
			if isASCII(host) {
				t.Fatalf("CheckLiteralHost(%q) = %v for an ASCII host", host, err)
			}
			if _, nerr := NormalizeHost(he.Host); nerr == nil {
				t.Fatalf("CheckLiteralHost(%q) = %v but %q normalises", host, err, he.Host)
			}
			return
		}
		if err != nil && !errors.As(err, &be) {
			t.Fatalf("CheckLiteralHost(%q) = %v, not a *BlockedError", host, err)
		}
		if !ok {
			if ascii, _ := NormalizeHost(host); IsLocalhostName(ascii) && err == nil {
				t.Fatalf("localhost name %q passed", host)
			}
			if np, perr := netip.ParseAddr(host); perr == nil {
				t.Fatalf("ParseHost(%q) failed but netip parses %s", host, np)
			}
			return
		}
		if !a.IsValid() {
			t.Fatalf("ParseHost(%q) ok with an invalid address", host)
		}
		if _, blocked := Blocked(a); blocked != (err != nil) {
			t.Fatalf("ParseHost(%q) = %s (blocked %v) but CheckLiteralHost = %v", host, a, blocked, err)
		}
		if a.Is4() {
			if b, ok := ParseHost(a.String()); !ok || b != a {
				t.Fatalf("%q -> %s does not re-parse (%s, %v)", host, a, b, ok)
			}
		}
		if np, perr := netip.ParseAddr(host); perr == nil && np != a {
			t.Fatalf("ParseHost(%q) = %s; netip says %s", host, a, np)
		}
	})
}

// FuzzURLHost runs endpoint URLs through the path the API and the
// transport take: url.Parse, Hostname, CheckLiteralHost at registration,
// and a request through the real transport (net/http's own IDNA mapping of
// the host, canonicalDial, the guard's Control; only connect(2) is
// replaced). Registration and the dial path must give every host the same
// verdict: blocked, not normalisable, or let through. A URL whose host
// denotes a blocked address must be refused at registration.
func FuzzURLHost(f *testing.F) {
	for _, s := range []string{"http://127.1:8080/", "https://0x7f000001/", "http://[::ffff:127.0.0.1]:80/x",
		"http://localhost./", "https://hooks.example.com/kinescope", "http://[fe80::1%25eth0]/", "http://017700000001/",
		"http://8.8.8.8/", "http://user@10.0.0.1/", "http://0/", "http://%31%32%37.1/",
		"http://１２７.０.０.１/", "http://127。0。0。1/", "http://ⓛocalhost/", "http://１６９.２５４.１６９.２５４/",
		"http://a\u200db.example.com/", "http://münchen.de/", "http://127.0.0.1%E3%80%82/", "http://０ｘ７ｆ０００００１/"} {
		f.Add(s)
	}
	var g Guard
	tr := dialTransport(&g)
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return
		}
		host := u.Hostname()
		regErr := CheckLiteralHost(host)
		reg := verdict(t, regErr)
		if ascii, nerr := NormalizeHost(host); nerr == nil {
			a, isAddr := ParseHost(ascii)
			if !isAddr {
				a, isAddr = ParseHost("[" + ascii + "]")
			}
			if !isAddr && IsLocalhostName(ascii) && regErr == nil {
				t.Fatalf("%q: localhost name %q passed registration", raw, host)
			}
			if isAddr {
				if _, blocked := Blocked(a); blocked != (regErr != nil) {
					t.Fatalf("%q: host %q = %s blocked=%v, registration error %v", raw, host, a, blocked, regErr)
				}
			}
		} else if reg != verdictInvalid {
			t.Fatalf("%q: host %q does not normalise (%v) but registration says %v", raw, host, nerr, regErr)
		}
		u.Scheme = "http" // no TLS: the dial is all that is compared
		if dial := dialVerdict(t, tr, u); dial != reg {
			t.Fatalf("%q: registration says %s (%v), the dial path says %s", raw, reg, regErr, dial)
		}
	})
}
