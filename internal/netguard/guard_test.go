package netguard

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestBlockedErrorMessage(t *testing.T) {
	var g Guard
	err := g.Check(netip.MustParseAddr("127.0.0.1"))
	want := "address 127.0.0.1 is blocked: loopback; start with --allow-private-networks or --allow-cidr to allow it"
	if err == nil || err.Error() != want {
		t.Fatalf("Check(127.0.0.1) = %v; want %q", err, want)
	}
	var be *BlockedError
	if !errors.As(err, &be) || be.Addr != netip.MustParseAddr("127.0.0.1") || be.Reason != ReasonLoopback {
		t.Fatalf("errors.As: %#v", be)
	}
}

func TestGuardCheck(t *testing.T) {
	allow := []netip.Prefix{netip.MustParsePrefix("10.1.2.0/24"), netip.MustParsePrefix("fd00:1::/32"), netip.MustParsePrefix("127.0.0.2/32")}
	tests := []struct {
		name  string
		guard Guard
		addr  string
		ok    bool
	}{
		{"default refuses private", Guard{}, "10.1.2.3", false},
		{"default allows public", Guard{}, "8.8.8.8", true},
		{"allow-private opens all", Guard{AllowPrivate: true}, "127.0.0.1", true},
		{"allow-private opens v6", Guard{AllowPrivate: true}, "::1", true},
		{"cidr opens its range", Guard{AllowCIDRs: allow}, "10.1.2.3", true},
		{"cidr first", Guard{AllowCIDRs: allow}, "10.1.2.0", true},
		{"cidr last", Guard{AllowCIDRs: allow}, "10.1.2.255", true},
		{"cidr neighbour stays closed", Guard{AllowCIDRs: allow}, "10.1.3.0", false},
		{"cidr opens mapped form", Guard{AllowCIDRs: allow}, "::ffff:10.1.2.3", true},
		{"cidr single address", Guard{AllowCIDRs: allow}, "127.0.0.2", true},
		{"cidr single address neighbour", Guard{AllowCIDRs: allow}, "127.0.0.1", false},
		{"cidr v6", Guard{AllowCIDRs: allow}, "fd00:1::5", true},
		{"cidr v6 outside", Guard{AllowCIDRs: allow}, "fd00:2::5", false},
		{"cidr zone ignored", Guard{AllowCIDRs: []netip.Prefix{netip.MustParsePrefix("fe80::/64")}}, "fe80::1%eth0", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.guard.Check(netip.MustParseAddr(tt.addr))
			if (err == nil) != tt.ok {
				t.Fatalf("Check(%s) = %v; want ok=%v", tt.addr, err, tt.ok)
			}
		})
	}
}

func TestGuardControl(t *testing.T) {
	g := &Guard{AllowCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}}
	tests := []struct {
		network, address string
		ok               bool
	}{
		{"tcp4", "127.0.0.1:80", false},
		{"tcp4", "127.0.0.2:80", true},
		{"tcp6", "[::1]:443", false},
		{"tcp6", "[::ffff:127.0.0.1]:443", false},
		{"tcp6", "[fe80::1%eth0]:443", false},
		{"tcp4", "0.0.0.0:80", false},
		{"tcp4", "8.8.8.8:53", true},
		{"tcp6", "[2606:4700:4700::1111]:443", true},
		{"tcp", "not-an-address:80", false},
		{"tcp", "", false},
	}
	for _, tt := range tests {
		err := g.Control(tt.network, tt.address, nil)
		if (err == nil) != tt.ok {
			t.Errorf("Control(%s, %q) = %v; want ok=%v", tt.network, tt.address, err, tt.ok)
		}
		var be *BlockedError
		if err != nil && !errors.As(err, &be) {
			t.Errorf("Control(%s, %q) error %T is not a *BlockedError", tt.network, tt.address, err)
		}
	}
}

func TestCheckLiteralHost(t *testing.T) {
	refused := []string{
		"127.0.0.1", "127.1", "2130706433", "0x7f000001", "017700000001", "0177.0.0.1", "127.0.0.1.",
		"[::1]", "::1", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "0.0.0.0", "0", "[::]",
		"localhost", "LocalHost", "localhost.", "api.localhost", "10.0.0.1", "169.254.169.254",
		"0xa9fea9fe", "[fe80::1%25eth0]", "[fe80::1%eth0]", "192.168.1.1:8080", "[::1]:443", "127.1:80",
		"[2002:7f00:1::]", "[64:ff9b::8.8.8.8]",
	}
	for _, h := range refused {
		err := CheckLiteralHost(h)
		var be *BlockedError
		if !errors.As(err, &be) {
			t.Errorf("CheckLiteralHost(%q) = %v; want a *BlockedError", h, err)
			continue
		}
		if !strings.Contains(err.Error(), "--allow-private-networks") {
			t.Errorf("CheckLiteralHost(%q) message %q does not say how to allow it", h, err)
		}
	}
	allowed := []string{"example.com", "8.8.8.8", "[2606:4700:4700::1111]", "134744072", "hooks.example.com:8443", "localhost.example.com"}
	for _, h := range allowed {
		if err := CheckLiteralHost(h); err != nil {
			t.Errorf("CheckLiteralHost(%q) = %v; want nil", h, err)
		}
	}
	// The written form is kept in the message.
	err := CheckLiteralHost("0x7f000001")
	if err == nil || !strings.Contains(err.Error(), `address 127.0.0.1 (written "0x7f000001") is blocked: loopback`) {
		t.Errorf("message = %v", err)
	}
	// A guard's allow list and AllowPrivate apply.
	g := &Guard{AllowCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	for _, h := range []string{"127.1", "localhost", "[::ffff:127.0.0.1]"} {
		if err := g.CheckLiteralHost(h); err != nil {
			t.Errorf("with 127/8 allowed, CheckLiteralHost(%q) = %v", h, err)
		}
	}
	if err := g.CheckLiteralHost("10.0.0.1"); err == nil {
		t.Error("with 127/8 allowed, 10.0.0.1 passed")
	}
	if err := (&Guard{AllowPrivate: true}).CheckLiteralHost("localhost"); err != nil {
		t.Errorf("AllowPrivate: %v", err)
	}
}

func TestParseCIDRs(t *testing.T) {
	got, err := ParseCIDRs([]string{"10.1.2.3/24", "192.168.1.5", "fd00::/8,::1", " "})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.1.2.0/24", "192.168.1.5/32", "fd00::/8", "::1/128"}
	if len(got) != len(want) {
		t.Fatalf("ParseCIDRs = %v; want %v", got, want)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("ParseCIDRs[%d] = %s; want %s", i, got[i], want[i])
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "example.com", "10.0.0.0/8/8"} {
		if _, err := ParseCIDRs([]string{bad}); err == nil || !strings.Contains(err.Error(), "--allow-cidr") {
			t.Errorf("ParseCIDRs(%q) = %v; want an --allow-cidr error", bad, err)
		}
	}
}
