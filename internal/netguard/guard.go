package netguard

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
)

// BlockedError is the refusal of an address (or a localhost name). The
// delivery engine finds it with errors.As in the error of a failed request
// and records its message on the attempt; the API turns it into a 422.
type BlockedError struct {
	// Addr is the refused address; it is the zero Addr when a name was
	// refused (Host is set then).
	Addr netip.Addr
	// Host is the host as written, when the refusal came from
	// CheckLiteralHost; empty at dial time.
	Host string
	// Reason names the range, e.g. "loopback" or "private network".
	Reason string
}

// Error says what was refused, why, and how an operator allows it.
func (e *BlockedError) Error() string {
	var what string
	switch {
	case !e.Addr.IsValid():
		what = "host " + e.Host
	case e.Host != "" && e.Host != e.Addr.String():
		what = fmt.Sprintf("address %s (written %q)", e.Addr, e.Host)
	default:
		what = "address " + e.Addr.String()
	}
	return what + " is blocked: " + e.Reason + "; start with --allow-private-networks or --allow-cidr to allow it"
}

// Guard decides which addresses the sender may connect to: everything
// Blocked does not refuse, plus the AllowCIDRs ranges; with AllowPrivate,
// everything. The zero Guard is the default, strict policy. A Guard must not
// be changed once in use.
type Guard struct {
	// AllowPrivate turns the guard off (--allow-private-networks).
	AllowPrivate bool
	// AllowCIDRs opens single ranges (--allow-cidr), e.g. 10.1.2.0/24 for
	// an internal receiver. An IPv4 range also covers the IPv4-mapped
	// IPv6 form of its addresses.
	AllowCIDRs []netip.Prefix
}

// ParseCIDRs parses --allow-cidr values. A bare address is taken as a
// single-address range (/32 or /128).
func ParseCIDRs(values []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(values))
	for _, v := range values {
		for _, s := range strings.Split(v, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			if p, err := netip.ParsePrefix(s); err == nil {
				out = append(out, p.Masked())
				continue
			}
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, fmt.Errorf("--allow-cidr %q: not a CIDR range or address", s)
			}
			out = append(out, netip.PrefixFrom(a.WithZone(""), a.BitLen()))
		}
	}
	return out, nil
}

// allowed reports whether addr is in one of the guard's allowed ranges
// (ignoring AllowPrivate).
func (g *Guard) allowed(addr netip.Addr) bool {
	addr = addr.WithZone("")
	for _, p := range g.AllowCIDRs {
		if p.Contains(addr) || addr.Is4In6() && p.Contains(addr.Unmap()) {
			return true
		}
	}
	return false
}

// Check returns a *BlockedError if the guard refuses addr, nil otherwise.
func (g *Guard) Check(addr netip.Addr) error {
	if g.AllowPrivate {
		return nil
	}
	reason, blocked := Blocked(addr)
	if !blocked || g.allowed(addr) {
		return nil
	}
	return &BlockedError{Addr: addr, Reason: reason}
}

// Control is for net.Dialer.Control: it runs after DNS resolution, just
// before connect(2), with the address actually dialled, so a name that
// resolves (or re-resolves) to a blocked address is refused before a single
// packet leaves. It fails closed on an address it cannot parse.
func (g *Guard) Control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		host, _, serr := net.SplitHostPort(address)
		if serr != nil {
			host = address
		}
		a, perr := netip.ParseAddr(host)
		if perr != nil {
			return &BlockedError{Host: address, Reason: fmt.Sprintf("%s dial to an address that does not parse", network)}
		}
		ap = netip.AddrPortFrom(a, 0)
	}
	return g.Check(ap.Addr())
}

// CheckLiteralHost refuses a URL host that is, however spelled, an address
// the guard blocks, or a localhost name (unless AllowPrivate). The host is
// classified as the HTTP client will dial it: after NormalizeHost, so
// "１２７.０.０.１" is 127.0.0.1; a host that cannot be normalised is a
// *HostError whatever the policy, as the dialer refuses it too. A
// "host:port" or "[v6]:port" is accepted too. Names pass: they are checked
// when dialled.
func (g *Guard) CheckLiteralHost(host string) error {
	if _, ok := ParseHost(host); !ok {
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
	}
	written := strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	ascii, err := NormalizeHost(host)
	if err != nil {
		return err
	}
	if g.AllowPrivate {
		return nil
	}
	a, ok := ParseHost(ascii)
	if !ok {
		if err := g.checkLocalhostName(ascii); err != nil {
			be := err.(*BlockedError)
			if written != ascii {
				be.Host = written
				be.Reason += fmt.Sprintf(" (%q once mapped as the HTTP client maps it)", ascii)
			}
			return be
		}
		return nil
	}
	if err := g.Check(a); err != nil {
		be := err.(*BlockedError)
		be.Host = written
		return be
	}
	return nil
}

// checkLocalhostName refuses a localhost name unless the guard opens
// loopback (then the dial-time check decides on the resolved address).
func (g *Guard) checkLocalhostName(host string) error {
	if !IsLocalhostName(host) || g.Check(netip.AddrFrom4([4]byte{127, 0, 0, 1})) == nil || g.Check(netip.IPv6Loopback()) == nil {
		return nil
	}
	return &BlockedError{Host: host, Reason: ReasonLoopback + " name"}
}
