package netguard

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"golang.org/x/net/idna"
)

// NormalizeHost returns a URL host (without port or brackets, as
// url.URL.Hostname gives it) as net/http's client hands it to the dialer
// and so to the resolver: an all-ASCII host unchanged, anything else
// through the UTS #46 mapping of idna.Lookup, the profile net/http uses
// (idnaASCII in net/http). The mapping turns full-width digits and dots,
// the ideographic full stop, enclosed letters and other compatibility
// forms into ASCII ("１２７。０．０．１" is "127.0.0.1", "ⓛocalhost" is
// "localhost"), so a host must be classified after it, never before.
// A host the mapping refuses is a *HostError: net/http would then dial the
// raw bytes, so kinehook refuses it at registration and at dial time alike.
func NormalizeHost(host string) (string, error) {
	if isASCII(host) {
		return host, nil
	}
	a, err := idna.Lookup.ToASCII(host)
	if err != nil {
		return "", &HostError{Host: host, Err: err}
	}
	return a, nil
}

// HostError is a URL host that cannot be normalised to the ASCII form the
// HTTP client and the resolver would use (see NormalizeHost).
type HostError struct {
	// Host is the host as written.
	Host string
	// Err is the IDNA mapping's error.
	Err error
}

// Error names the host and the IDNA rule it breaks.
func (e *HostError) Error() string {
	return fmt.Sprintf("host %q is not a valid internationalised domain name (%v); write it in ASCII or punycode (xn--)", e.Host, e.Err)
}

// Unwrap returns the IDNA error.
func (e *HostError) Unwrap() error { return e.Err }

// isASCII is net/http's test for skipping the IDNA mapping: every byte
// below 0x80.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// ParseHost reads a URL host as an IP address the way resolvers do, so that
// the spellings a C resolver (inet_aton) or a browser would turn into an
// address are recognised: bracketed IPv6 with or without a zone
// ("[::1]", "[fe80::1%eth0]"), dotted quads, and the shortened, decimal,
// hexadecimal and octal IPv4 forms ("127.1", "2130706433", "0x7f000001",
// "017700000001", "0177.0.0.1", "0x7f.1"), with an optional trailing dot.
// It reports false for anything that is a name rather than an address.
func ParseHost(host string) (netip.Addr, bool) {
	if len(host) > 2 && host[0] == '[' && host[len(host)-1] == ']' {
		a, err := netip.ParseAddr(host[1 : len(host)-1])
		return a, err == nil && a.Is6()
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return a, true
	}
	return parseInetAton(host)
}

// parseInetAton parses the 1- to 4-part IPv4 forms of inet_aton(3): each
// part decimal, octal (leading 0) or hexadecimal (0x); the last part fills
// the remaining bytes. A single trailing dot is accepted, as resolvers treat
// "127.0.0.1." as the absolute form of the same name.
func parseInetAton(host string) (netip.Addr, bool) {
	host = strings.TrimSuffix(host, ".")
	if host == "" || len(host) > 64 {
		return netip.Addr{}, false
	}
	parts := strings.Split(host, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	var vals [4]uint64
	for i, p := range parts {
		v, ok := parseAtonPart(p)
		if !ok {
			return netip.Addr{}, false
		}
		vals[i] = v
	}
	last := len(parts) - 1
	var n uint64
	for i := 0; i < last; i++ {
		if vals[i] > 0xff {
			return netip.Addr{}, false
		}
		n |= vals[i] << (8 * (3 - i))
	}
	if vals[last] >= 1<<(8*(4-last)) {
		return netip.Addr{}, false
	}
	n |= vals[last]
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), true
}

// parseAtonPart parses one part of an inet_aton address: "0x1F" (hex, "0x"
// alone is 0 as strtoul reads it), "017" (octal), "17" (decimal). Signs,
// spaces and underscores are refused.
func parseAtonPart(p string) (uint64, bool) {
	if p == "" {
		return 0, false
	}
	base := 10
	switch {
	case len(p) >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X'):
		base, p = 16, p[2:]
		if p == "" {
			return 0, true
		}
	case len(p) > 1 && p[0] == '0':
		base, p = 8, p[1:]
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		ok := c >= '0' && c <= '9' || base == 16 && (c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F')
		if !ok {
			return 0, false
		}
	}
	v, err := strconv.ParseUint(p, base, 32)
	if err != nil {
		return 0, false
	}
	return v, true
}

// IsLocalhostName reports whether host is a name that means this machine
// whatever DNS says: "localhost" and every name under ".localhost"
// (RFC 6761), plus the loopback aliases common in /etc/hosts
// ("localhost.localdomain", "ip6-localhost", "ip6-loopback"). Case and one
// trailing dot are ignored.
func IsLocalhostName(host string) bool {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	switch h {
	case "localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback":
		return true
	}
	return strings.HasSuffix(h, ".localhost")
}

// CheckLiteralHost refuses, with a *BlockedError, a URL host that is a
// blocked address however it is spelled (see ParseHost, NormalizeHost) or a
// localhost name, under the default policy (nothing allowed), and with a
// *HostError a host NormalizeHost cannot map. Names that are not
// addresses pass: whatever they resolve to is checked at dial time. Use it
// when an endpoint is registered, to answer 422 at once instead of failing
// every delivery later; Guard.CheckLiteralHost applies a Guard's allow list.
func CheckLiteralHost(host string) error {
	var g Guard
	return g.CheckLiteralHost(host)
}
