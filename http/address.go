package http

import (
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/kinehook/kinehook"
)

// blockedPrefixes are the ranges a sender must not reach unless private
// networks are allowed (loopback, private, link-local, CGNAT, documentation,
// benchmarking, multicast, reserved; see the SSRF list in shared/README.md).
var blockedPrefixes = mustPrefixes(
	"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
	"192.0.0.0/24", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
	"203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4", "255.255.255.255/32",
	"::/128", "::1/128", "64:ff9b::/96", "fc00::/7", "fe80::/10", "ff00::/8",
)

func mustPrefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(ss))
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

// blockedAddr reports whether a is in a refused range, looking through
// IPv4-mapped and 6to4 addresses at the IPv4 address they carry.
func blockedAddr(a netip.Addr) bool {
	a = a.WithZone("")
	if a.Is4In6() {
		a = a.Unmap()
	}
	if a.Is6() && netip.MustParsePrefix("2002::/16").Contains(a) {
		b := a.As16()
		a = netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]})
	}
	for _, p := range blockedPrefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseHostAddr reads a URL host as an IP address, accepting the spellings
// a resolver would: bracketed IPv6 with zone, dotted quads, and the inet_aton
// forms (127.1, 2130706433, 0x7f000001, 0177.0.0.1).
func parseHostAddr(host string) (netip.Addr, bool) {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if a, err := netip.ParseAddr(host); err == nil {
		return a, true
	}
	parts := strings.Split(strings.TrimSuffix(host, "."), ".")
	if len(parts) == 0 || len(parts) > 4 {
		return netip.Addr{}, false
	}
	vals := make([]uint64, len(parts))
	for i, p := range parts {
		if p == "" {
			return netip.Addr{}, false
		}
		base := 10
		switch {
		case strings.HasPrefix(p, "0x") || strings.HasPrefix(p, "0X"):
			base, p = 16, p[2:]
			if p == "" {
				p = "0"
			}
		case len(p) > 1 && p[0] == '0':
			base, p = 8, p[1:]
		}
		v, err := strconv.ParseUint(p, base, 32)
		if err != nil {
			return netip.Addr{}, false
		}
		vals[i] = v
	}
	var n uint64
	last := len(vals) - 1
	for i := 0; i < last; i++ {
		if vals[i] > 255 {
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

// checkURL validates an endpoint URL and, unless private networks are
// allowed, refuses literal private addresses and localhost names (422).
func (s *Server) checkURL(raw, field string) error {
	if err := kinehook.ValidateEndpointURL(raw); err != nil {
		if ke, ok := err.(*kinehook.Error); ok {
			ke2 := *ke
			ke2.Field = field
			return &ke2
		}
		return &kinehook.Error{Code: kinehook.EINVALID, Field: field, Message: err.Error()}
	}
	if s.cfg.AllowPrivateNetworks {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return &kinehook.Error{Code: kinehook.EINVALID, Field: field, Message: fmt.Sprintf("url does not parse: %v", err)}
	}
	host := strings.ToLower(u.Hostname())
	if host == "localhost" || strings.HasSuffix(host, ".localhost") || host == "localhost." || strings.HasSuffix(host, ".localhost.") {
		return &kinehook.Error{Code: kinehook.EINVALID, Field: field, Message: fmt.Sprintf("%s points at this machine; private networks are not allowed (start the server with --allow-private-networks)", host)}
	}
	a, ok := parseHostAddr(host)
	if !ok || !blockedAddr(a) {
		return nil
	}
	for _, p := range s.cfg.AllowCIDRs {
		if p.Contains(a.Unmap()) || p.Contains(a) {
			return nil
		}
	}
	return &kinehook.Error{Code: kinehook.EINVALID, Field: field, Message: fmt.Sprintf("%s is a private, loopback or reserved address; private networks are not allowed (start the server with --allow-private-networks or --allow-cidr)", a)}
}
