package netguard

import (
	"net/netip"
	"strings"
	"testing"
)

// TestBlockedTable walks every range of the SSRF list: its first and last
// address are refused with the right reason, and the addresses just outside
// are allowed (or refused for a different, named reason).
func TestBlockedTable(t *testing.T) {
	tests := []struct {
		addr   string
		reason string // "" means allowed; otherwise a substring of the reason
	}{
		// 0.0.0.0/8
		{"0.0.0.0", "this network"},
		{"0.255.255.255", "this network"},
		{"1.0.0.0", ""},
		// 10.0.0.0/8
		{"9.255.255.255", ""},
		{"10.0.0.0", ReasonPrivate},
		{"10.255.255.255", ReasonPrivate},
		{"11.0.0.0", ""},
		// 100.64.0.0/10
		{"100.63.255.255", ""},
		{"100.64.0.0", "carrier-grade NAT"},
		{"100.127.255.255", "carrier-grade NAT"},
		{"100.128.0.0", ""},
		// 127.0.0.0/8
		{"126.255.255.255", ""},
		{"127.0.0.0", ReasonLoopback},
		{"127.0.0.1", ReasonLoopback},
		{"127.255.255.255", ReasonLoopback},
		{"128.0.0.0", ""},
		// 169.254.0.0/16
		{"169.253.255.255", ""},
		{"169.254.0.0", ReasonLinkLocal},
		{"169.254.169.254", ReasonLinkLocal},
		{"169.254.255.255", ReasonLinkLocal},
		{"169.255.0.0", ""},
		// 172.16.0.0/12
		{"172.15.255.255", ""},
		{"172.16.0.0", ReasonPrivate},
		{"172.31.255.255", ReasonPrivate},
		{"172.32.0.0", ""},
		// 192.0.0.0/24
		{"191.255.255.255", ""},
		{"192.0.0.0", "IETF protocol"},
		{"192.0.0.255", "IETF protocol"},
		{"192.0.1.0", ""},
		// 192.0.2.0/24
		{"192.0.1.255", ""},
		{"192.0.2.0", ReasonDocumentation},
		{"192.0.2.255", ReasonDocumentation},
		{"192.0.3.0", ""},
		// 192.168.0.0/16
		{"192.167.255.255", ""},
		{"192.168.0.0", ReasonPrivate},
		{"192.168.255.255", ReasonPrivate},
		{"192.169.0.0", ""},
		// 198.18.0.0/15
		{"198.17.255.255", ""},
		{"198.18.0.0", "benchmarking"},
		{"198.19.255.255", "benchmarking"},
		{"198.20.0.0", ""},
		// 198.51.100.0/24
		{"198.51.99.255", ""},
		{"198.51.100.0", ReasonDocumentation},
		{"198.51.100.255", ReasonDocumentation},
		{"198.51.101.0", ""},
		// 203.0.113.0/24
		{"203.0.112.255", ""},
		{"203.0.113.0", ReasonDocumentation},
		{"203.0.113.255", ReasonDocumentation},
		{"203.0.114.0", ""},
		// 224.0.0.0/4, then 240.0.0.0/4 right after it
		{"223.255.255.255", ""},
		{"224.0.0.0", ReasonMulticast},
		{"239.255.255.255", ReasonMulticast},
		{"240.0.0.0", "reserved"},
		{"255.255.255.254", "reserved"},
		// 255.255.255.255/32
		{"255.255.255.255", ReasonBroadcast},
		// Public IPv4 for contrast.
		{"8.8.8.8", ""},
		{"1.1.1.1", ""},
		{"93.184.216.34", ""},

		// ::/128 and ::1/128
		{"::", ReasonUnspecified},
		{"::1", ReasonLoopback},
		// IPv4-compatible ::a.b.c.d is judged by the embedded address.
		{"::2", "IPv4-compatible 0.0.0.2"},
		{"::127.0.0.1", "IPv4-compatible 127.0.0.1"},
		{"::8.8.8.8", ""},
		// ::ffff:0:0/96, IPv4-mapped: the embedded IPv4 decides.
		{"::fffe:ffff:ffff", ""},
		{"::ffff:0.0.0.0", "IPv4-mapped 0.0.0.0"},
		{"::ffff:127.0.0.1", "IPv4-mapped 127.0.0.1"},
		{"::ffff:7f00:1", "IPv4-mapped 127.0.0.1"},
		{"::ffff:10.1.2.3", "IPv4-mapped 10.1.2.3"},
		{"::ffff:169.254.169.254", "IPv4-mapped 169.254.169.254"},
		{"::ffff:255.255.255.255", ReasonBroadcast},
		{"::ffff:8.8.8.8", ""},
		{"::1:0:0:0", ""},
		// 64:ff9b::/96, NAT64: refused whatever the embedded IPv4.
		{"64:ff9a:ffff:ffff:ffff:ffff:ffff:ffff", ""},
		{"64:ff9b::", ReasonNAT64},
		{"64:ff9b::8.8.8.8", ReasonNAT64},
		{"64:ff9b::ffff:ffff", ReasonNAT64},
		{"64:ff9b::1:0:0", ""},
		// 2002::/16, 6to4: the embedded IPv4 decides.
		{"2001:ffff:ffff:ffff:ffff:ffff:ffff:ffff", ""},
		{"2002::", "6to4 for 0.0.0.0"},
		{"2002:7f00:1::", "6to4 for 127.0.0.1"},
		{"2002:a00:1::1", "6to4 for 10.0.0.1"},
		{"2002:c0a8:101::", "6to4 for 192.168.1.1"},
		{"2002:a9fe:a9fe::", "6to4 for 169.254.169.254"},
		{"2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff", ReasonBroadcast},
		{"2002:808:808::", ""},
		{"2003::", ""},
		// fc00::/7
		{"fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", ""},
		{"fc00::", ReasonUniqueLocal},
		{"fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", ReasonUniqueLocal},
		// fe80::/10
		{"fe00::", ""},
		{"fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", ""},
		{"fe80::", ReasonLinkLocal},
		{"fe80::1%eth0", ReasonLinkLocal},
		{"febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", ReasonLinkLocal},
		{"fec0::", ""},
		// ff00::/8
		{"feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", ""},
		{"ff00::", ReasonMulticast},
		{"ff02::1", ReasonMulticast},
		{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", ReasonMulticast},
		// Public IPv6 for contrast.
		{"2606:4700:4700::1111", ""},
		{"2001:4860:4860::8888", ""},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			reason, blocked := Blocked(netip.MustParseAddr(tt.addr))
			if tt.reason == "" {
				if blocked {
					t.Fatalf("Blocked(%s) = %q, true; want allowed", tt.addr, reason)
				}
				return
			}
			if !blocked {
				t.Fatalf("Blocked(%s) allowed; want blocked (%s)", tt.addr, tt.reason)
			}
			if !strings.Contains(reason, tt.reason) {
				t.Fatalf("Blocked(%s) reason %q; want it to contain %q", tt.addr, reason, tt.reason)
			}
		})
	}
}

// TestBlockedPrefixesEdges checks every listed range generically: first and
// last address refused, IPv4-mapped form of IPv4 ranges refused too.
func TestBlockedPrefixesEdges(t *testing.T) {
	want := []string{
		"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
		"192.0.0.0/24", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
		"203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4", "255.255.255.255/32",
		"::/128", "::1/128", "64:ff9b::/96", "fc00::/7", "fe80::/10", "ff00::/8",
	}
	got := map[netip.Prefix]bool{}
	for _, p := range BlockedPrefixes() {
		got[p] = true
	}
	for _, s := range want {
		p := netip.MustParsePrefix(s)
		if !got[p] {
			t.Errorf("BlockedPrefixes lacks %s", p)
		}
		first := p.Addr()
		last := lastAddr(p)
		for _, a := range []netip.Addr{first, last} {
			if r, b := Blocked(a); !b {
				t.Errorf("%s: %s allowed", p, a)
			} else if r == "" {
				t.Errorf("%s: %s blocked without a reason", p, a)
			}
			if a.Is4() {
				if _, b := Blocked(netip.AddrFrom16(a.As16())); !b {
					t.Errorf("%s: mapped %s allowed", p, netip.AddrFrom16(a.As16()))
				}
			}
		}
	}
	if _, b := Blocked(netip.Addr{}); !b {
		t.Error("the zero Addr is allowed")
	}
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	bits := p.Bits()
	for i := range b {
		for j := 0; j < 8; j++ {
			if i*8+j >= bits {
				b[i] |= 0x80 >> j
			}
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func TestParseHost(t *testing.T) {
	tests := []struct {
		host string
		want string // "" means not an address
	}{
		{"127.0.0.1", "127.0.0.1"},
		{"127.1", "127.0.0.1"},
		{"127.0.1", "127.0.0.1"},
		{"2130706433", "127.0.0.1"},
		{"0x7f000001", "127.0.0.1"},
		{"0X7F000001", "127.0.0.1"},
		{"017700000001", "127.0.0.1"},
		{"0177.0.0.1", "127.0.0.1"},
		{"0x7f.1", "127.0.0.1"},
		{"0x7f.0x0.0x0.0x1", "127.0.0.1"},
		{"127.000.000.001", "127.0.0.1"},
		{"127.0.0.1.", "127.0.0.1"},
		{"0", "0.0.0.0"},
		{"0x", "0.0.0.0"},
		{"0.0.0.0", "0.0.0.0"},
		{"10.1", "10.0.0.1"},
		{"192.168.257", "192.168.1.1"},
		{"4294967295", "255.255.255.255"},
		{"[::1]", "::1"},
		{"::1", "::1"},
		{"[::ffff:127.0.0.1]", "::ffff:127.0.0.1"},
		{"[fe80::1%eth0]", "fe80::1%eth0"},
		{"[0:0:0:0:0:0:0:1]", "::1"},
		// Not addresses: names, overflow, bad digits, too many parts.
		{"4294967296", ""},
		{"256.0.0.1", ""},
		{"127.0.0.256", ""},
		{"127.65536", "127.1.0.0"},
		{"127.16777216", ""},
		{"1.2.3.4.5", ""},
		{"08", ""},
		{"0x7g", ""},
		{"-1", ""},
		{"+1", ""},
		{"1..2", ""},
		{".", ""},
		{"", ""},
		{"[127.0.0.1]", ""},
		{"[]", ""},
		{"example.com", ""},
		{"localhost", ""},
		{"1e3", ""},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			a, ok := ParseHost(tt.host)
			if tt.want == "" {
				if ok {
					t.Fatalf("ParseHost(%q) = %s; want not an address", tt.host, a)
				}
				return
			}
			if !ok || a.String() != tt.want {
				t.Fatalf("ParseHost(%q) = %s, %v; want %s", tt.host, a, ok, tt.want)
			}
		})
	}
}

func TestIsLocalhostName(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "LOCALHOST": true, "localhost.": true, "a.localhost": true,
		"x.y.LocalHost.": true, "localhost.localdomain": true, "ip6-localhost": true,
		"localhost.example.com": false, "notlocalhost": false, "example.com": false, "": false,
	} {
		if got := IsLocalhostName(host); got != want {
			t.Errorf("IsLocalhostName(%q) = %v; want %v", host, got, want)
		}
	}
}
