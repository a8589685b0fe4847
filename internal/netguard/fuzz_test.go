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
// names; dotted decimal agrees with netip.
func FuzzParseHost(f *testing.F) {
	for _, s := range []string{"127.1", "2130706433", "0x7f000001", "017700000001", "[::1]", "[::ffff:127.0.0.1]",
		"0.0.0.0", "localhost", "a.localhost.", "example.com", "1.2.3.4", "0x", "08", "[fe80::1%eth0]", "127.0.0.1.", "4294967296"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		a, ok := ParseHost(host)
		err := CheckLiteralHost(host)
		var be *BlockedError
		if err != nil && !errors.As(err, &be) {
			t.Fatalf("CheckLiteralHost(%q) = %v, not a *BlockedError", host, err)
		}
		if !ok {
			if IsLocalhostName(host) && err == nil {
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
// and the dial-time rewrite of the host. A URL whose host denotes a blocked
// address must be refused at registration, and what registration lets
// through must, if it is an address, pass the dial-time check too.
func FuzzURLHost(f *testing.F) {
	for _, s := range []string{"http://127.1:8080/", "https://0x7f000001/", "http://[::ffff:127.0.0.1]:80/x",
		"http://localhost./", "https://hooks.example.com/kinescope", "http://[fe80::1%25eth0]/", "http://017700000001/",
		"http://8.8.8.8/", "http://user@10.0.0.1/", "http://0/", "http://%31%32%37.1/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.Parse(raw)
		if err != nil {
			return
		}
		host := u.Hostname()
		regErr := CheckLiteralHost(host)
		a, isAddr := ParseHost(host)
		if !isAddr {
			a, isAddr = ParseHost("[" + host + "]")
		}
		if !isAddr {
			if IsLocalhostName(host) && regErr == nil {
				t.Fatalf("%q: localhost name %q passed registration", raw, host)
			}
			return
		}
		_, blocked := Blocked(a)
		if blocked != (regErr != nil) {
			t.Fatalf("%q: host %q = %s blocked=%v, registration error %v", raw, host, a, blocked, regErr)
		}
		var g Guard
		if dialErr := g.Control("tcp", netip.AddrPortFrom(a, 443).String(), nil); (dialErr != nil) != (regErr != nil) {
			t.Fatalf("%q: registration says %v, dial says %v", raw, regErr, dialErr)
		}
	})
}
