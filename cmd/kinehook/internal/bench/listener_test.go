package bench

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
)

// listen opens a TCP listener on addr for the test's life, or skips when
// the address family is missing.
func listen(t *testing.T, network, addr string) int {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Skipf("listen %s %s: %v", network, addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

func TestServerPIDFindsTheListeningProcess(t *testing.T) {
	if _, err := os.Stat("/proc/net/tcp"); err != nil {
		t.Skip("no /proc/net/tcp (not Linux)")
	}
	tests := []struct {
		name    string
		network string
		listen  string
		url     string // %d is the port
	}{
		{"ipv4 loopback", "tcp4", "127.0.0.1:0", "http://127.0.0.1:%d"},
		{"localhost, trailing slash", "tcp4", "127.0.0.1:0", "http://localhost:%d/"},
		{"every address, as net/http's :port", "tcp", ":0", "http://127.0.0.1:%d"},
		{"ipv6 loopback", "tcp6", "[::1]:0", "http://[::1]:%d"},
		{"localhost on ipv6 only", "tcp6", "[::1]:0", "http://localhost:%d"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			port := listen(t, tt.network, tt.listen)
			u := fmt.Sprintf(tt.url, port)
			pid, err := ServerPID(u)
			if err != nil || pid != os.Getpid() {
				t.Fatalf("ServerPID(%s) = %d, %v; want this test's pid %d", u, pid, err, os.Getpid())
			}
			if err := CheckPID(pid); err != nil {
				t.Errorf("CheckPID(%d): %v", pid, err)
			}
		})
	}
}

func TestServerPIDSaysWhyNot(t *testing.T) {
	if _, err := os.Stat("/proc/net/tcp"); err != nil {
		t.Skip("no /proc/net/tcp (not Linux)")
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	tests := []struct {
		url, want string
	}{
		{"http://192.0.2.1:8080", "not a loopback address"},
		{"http://example.com", "not a loopback address"},
		{"http://127.0.0.1:99999", "not a port number"},
		{"http://127.0.0.1:" + strconv.Itoa(closed), "no socket listens on port " + strconv.Itoa(closed)},
		{"://x", "parse"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			pid, err := ServerPID(tt.url)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ServerPID(%s) = %d, %v; want an error mentioning %q", tt.url, pid, err, tt.want)
			}
		})
	}
	for _, pid := range []int{0, -1, 1 << 30} {
		if err := CheckPID(pid); err == nil {
			t.Errorf("CheckPID(%d) = nil, want an error", pid)
		}
	}
}

// bigEndian reports whether /proc's addresses are printed big-endian here.
func bigEndian() bool { return binary.NativeEndian.Uint16([]byte{0, 1}) == 1 }

func TestParseNetTCP(t *testing.T) {
	if bigEndian() {
		t.Skip("the samples are of a little-endian kernel")
	}
	const head4 = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
	const head6 = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
	tests := []struct {
		name    string
		in      string
		want    []string // "ip port inode"
		wantErr bool
	}{
		{"ipv4 listeners, an established one skipped", head4 +
			"   0: 0100007F:6448 00000000:0000 0A 00000000:00000000 00:00000000 00000000   106        0 7296 1 00000000a79f9454 100 0 0 10 0\n" +
			"   1: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 42 1 0 100 0 0 10 0\n" +
			"   2: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000  1000        0 43 1 0 20 4 30 10 -1\n",
			[]string{"127.0.0.1 25672 7296", "0.0.0.0 8080 42"}, false},
		{"ipv6", head6 +
			"   0: 00000000000000000000000001000000:18EB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4939 1 0 100 0 0 10 0\n" +
			"   1: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 77 1 0 100 0 0 10 0\n" +
			"   2: 0000000000000000FFFF00000100007F:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 78 1 0 100 0 0 10 0\n",
			[]string{"::1 6379 4939", ":: 8080 77", "127.0.0.1 80 78"}, false},
		{"header only", head4, nil, false},
		{"empty", "", nil, false},
		{"short line", head4 + "   0: 0100007F:6448 00000000:0000 0A\n", nil, true},
		{"odd address", head4 + "   0: 0100007:6448 00000000:0000 0A 0:0 00:0 0 1 0 5 1\n", nil, true},
		{"no port", head4 + "   0: 0100007F 00000000:0000 0A 0:0 00:0 0 1 0 5 1\n", nil, true},
		{"port not hex", head4 + "   0: 0100007F:XYZ0 00000000:0000 0A 0:0 00:0 0 1 0 5 1\n", nil, true},
		{"inode not a number", head4 + "   0: 0100007F:0050 00000000:0000 0A 0:0 00:0 0 1 0 x 1\n", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ls, err := parseNetTCP([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			var got []string
			for _, l := range ls {
				got = append(got, fmt.Sprintf("%s %d %d", l.ip, l.port, l.inode))
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("listeners = %q, want %q", got, tt.want)
			}
		})
	}
}

func FuzzParseNetTCP(f *testing.F) {
	f.Add("  sl  local_address rem_address   st\n   0: 0100007F:6448 00000000:0000 0A 00000000:00000000 00:00000000 00000000 106 0 7296 1\n")
	f.Add("   0: 00000000000000000000000001000000:18EB 00000000000000000000000000000000:0000 0A 0:0 00:0 0 0 0 4939 1\n")
	f.Fuzz(func(t *testing.T, s string) {
		ls, err := parseNetTCP([]byte(s))
		if err != nil && ls != nil {
			t.Errorf("error %v with listeners %v", err, ls)
		}
		for _, l := range ls {
			if (len(l.ip) != 4 && len(l.ip) != 16) || l.port < 0 || l.port > 65535 {
				t.Errorf("listener %+v from %q", l, s)
			}
		}
	})
}
