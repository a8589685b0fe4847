// Package netguard keeps kinehook's webhook sender from being aimed at the
// network it runs in (SSRF). Customers type the URLs the sender posts to; a
// URL that names a loopback, private, link-local or otherwise reserved
// address, directly or through a DNS name that resolves to one, must not be
// reached. The check runs on the resolved address at dial time
// (net.Dialer.Control), so DNS tricks and odd address spellings cannot slip
// past it; CheckLiteralHost refuses the obvious cases earlier, when an
// endpoint is registered.
package netguard

import (
	"fmt"
	"net/netip"
)

// blockedRange is one refused range and the reason given for it.
type blockedRange struct {
	prefix netip.Prefix
	reason string
}

// Reasons, as they appear in BlockedError messages.
const (
	ReasonThisNetwork   = "\"this network\" (0.0.0.0/8)"
	ReasonPrivate       = "private network"
	ReasonSharedCGNAT   = "shared address space (carrier-grade NAT, 100.64.0.0/10)"
	ReasonLoopback      = "loopback"
	ReasonLinkLocal     = "link-local"
	ReasonIETFProtocol  = "IETF protocol assignments (192.0.0.0/24)"
	ReasonDocumentation = "documentation range"
	ReasonBenchmarking  = "benchmarking range (198.18.0.0/15)"
	ReasonMulticast     = "multicast"
	ReasonReserved      = "reserved (240.0.0.0/4)"
	ReasonBroadcast     = "broadcast"
	ReasonUnspecified   = "unspecified address"
	ReasonNAT64         = "NAT64 translation prefix (64:ff9b::/96)"
	ReasonUniqueLocal   = "unique local (fc00::/7)"
	ReasonInvalid       = "not a valid IP address"
)

// ipv4Blocked lists the IPv4 ranges a webhook sender must refuse by default.
// Order matters only for the reason reported: 255.255.255.255 comes before
// 240.0.0.0/4, which contains it.
var ipv4Blocked = []blockedRange{
	{netip.MustParsePrefix("0.0.0.0/8"), ReasonThisNetwork},
	{netip.MustParsePrefix("10.0.0.0/8"), ReasonPrivate},
	{netip.MustParsePrefix("100.64.0.0/10"), ReasonSharedCGNAT},
	{netip.MustParsePrefix("127.0.0.0/8"), ReasonLoopback},
	{netip.MustParsePrefix("169.254.0.0/16"), ReasonLinkLocal},
	{netip.MustParsePrefix("172.16.0.0/12"), ReasonPrivate},
	{netip.MustParsePrefix("192.0.0.0/24"), ReasonIETFProtocol},
	{netip.MustParsePrefix("192.0.2.0/24"), ReasonDocumentation},
	{netip.MustParsePrefix("192.168.0.0/16"), ReasonPrivate},
	{netip.MustParsePrefix("198.18.0.0/15"), ReasonBenchmarking},
	{netip.MustParsePrefix("198.51.100.0/24"), ReasonDocumentation},
	{netip.MustParsePrefix("203.0.113.0/24"), ReasonDocumentation},
	{netip.MustParsePrefix("224.0.0.0/4"), ReasonMulticast},
	{netip.MustParsePrefix("255.255.255.255/32"), ReasonBroadcast},
	{netip.MustParsePrefix("240.0.0.0/4"), ReasonReserved},
}

// ipv6Blocked lists the IPv6 ranges refused outright. IPv4-mapped
// (::ffff:0:0/96), 6to4 (2002::/16) and IPv4-compatible (::/96) addresses
// are judged by the IPv4 address they carry instead, in Blocked.
var ipv6Blocked = []blockedRange{
	{netip.MustParsePrefix("::/128"), ReasonUnspecified},
	{netip.MustParsePrefix("::1/128"), ReasonLoopback},
	{netip.MustParsePrefix("64:ff9b::/96"), ReasonNAT64},
	{netip.MustParsePrefix("fc00::/7"), ReasonUniqueLocal},
	{netip.MustParsePrefix("fe80::/10"), ReasonLinkLocal},
	{netip.MustParsePrefix("ff00::/8"), ReasonMulticast},
}

var (
	prefix6to4         = netip.MustParsePrefix("2002::/16")
	prefixV4Compatible = netip.MustParsePrefix("::/96")
)

// BlockedPrefixes returns every range Blocked refuses outright, for
// documentation and for callers that need the list (a copy; changing it
// changes nothing). IPv4-mapped, 6to4 and IPv4-compatible IPv6 addresses are
// judged by their embedded IPv4 address and so are not listed.
func BlockedPrefixes() []netip.Prefix {
	out := make([]netip.Prefix, 0, len(ipv4Blocked)+len(ipv6Blocked))
	for _, r := range ipv4Blocked {
		out = append(out, r.prefix)
	}
	for _, r := range ipv6Blocked {
		out = append(out, r.prefix)
	}
	return out
}

// Blocked reports whether a webhook sender must refuse to connect to addr
// and, if so, why. It covers loopback, private, CGNAT, link-local,
// documentation, benchmarking, multicast, reserved and broadcast IPv4 ranges
// and the unspecified, loopback, NAT64, unique-local, link-local and
// multicast IPv6 ranges. IPv6 forms that carry an IPv4 address
// (IPv4-mapped ::ffff:a.b.c.d, 6to4 2002:AABB:CCDD::, IPv4-compatible
// ::a.b.c.d) are judged by that IPv4 address. A zone (fe80::1%eth0) is
// ignored. The zero Addr is blocked: there is nothing safe to dial.
func Blocked(addr netip.Addr) (reason string, blocked bool) {
	if !addr.IsValid() {
		return ReasonInvalid, true
	}
	addr = addr.WithZone("")
	if addr.Is4() {
		return blocked4(addr)
	}
	if addr.Is4In6() {
		v4 := addr.Unmap()
		if r, b := blocked4(v4); b {
			return fmt.Sprintf("%s (IPv4-mapped %s)", r, v4), true
		}
		return "", false
	}
	for _, r := range ipv6Blocked {
		if r.prefix.Contains(addr) {
			return r.reason, true
		}
	}
	if prefix6to4.Contains(addr) {
		b := addr.As16()
		v4 := netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]})
		if r, bl := blocked4(v4); bl {
			return fmt.Sprintf("%s (6to4 for %s)", r, v4), true
		}
		return "", false
	}
	if prefixV4Compatible.Contains(addr) {
		// ::/128 and ::1/128 were handled above; the rest of ::/96 is the
		// deprecated IPv4-compatible form, which some stacks still tunnel.
		b := addr.As16()
		v4 := netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
		if r, bl := blocked4(v4); bl {
			return fmt.Sprintf("%s (IPv4-compatible %s)", r, v4), true
		}
	}
	return "", false
}

func blocked4(a netip.Addr) (string, bool) {
	for _, r := range ipv4Blocked {
		if r.prefix.Contains(a) {
			return r.reason, true
		}
	}
	return "", false
}
