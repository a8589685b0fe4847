package bench

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// tcpListen is the state of a listening socket in /proc/net/tcp (TCP_LISTEN).
const tcpListen = "0A"

// ServerPID finds the process serving base URL rawURL on this machine: the
// one holding the socket listening on the URL's port of a loopback address
// (or of every address). Linux only (it reads /proc); the error says why
// the process cannot be named, so that a report can say so.
func ServerPID(rawURL string) (int, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return 0, fmt.Errorf("parse %q: %w", rawURL, err)
	}
	host := u.Hostname()
	var ips []net.IP
	if host == "localhost" {
		ips = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	} else if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		ips = []net.IP{ip}
	} else {
		return 0, fmt.Errorf("host %q is not a loopback address: its process cannot be found from here (give --pid)", host)
	}
	port := 80
	if u.Scheme == "https" {
		port = 443
	}
	if p := u.Port(); p != "" {
		if port, err = strconv.Atoi(p); err != nil || port < 1 || port > 65535 {
			return 0, fmt.Errorf("port %q of %s is not a port number", p, rawURL)
		}
	}
	return listenerPID(ips, port)
}

// ListenerPID returns the process holding the TCP socket listening on ip:port
// (or on the wildcard address and port), from /proc/net/tcp and tcp6 and the
// file descriptors of /proc/*/fd.
func ListenerPID(ip net.IP, port int) (int, error) {
	return listenerPID([]net.IP{ip}, port)
}

// listenerPID is ListenerPID for a listener on any of ips.
func listenerPID(ips []net.IP, port int) (int, error) {
	var inodes []uint64
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(f)
		if errors.Is(err, os.ErrNotExist) {
			continue // no IPv6, or not Linux (then tcp is missing too)
		}
		if err != nil {
			return 0, fmt.Errorf("read %s: %w", f, err)
		}
		ls, err := parseNetTCP(data)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", f, err)
		}
		for _, l := range ls {
			if l.port == port && (l.ip.IsUnspecified() || slices.ContainsFunc(ips, l.ip.Equal)) {
				inodes = append(inodes, l.inode)
			}
		}
	}
	if len(inodes) == 0 {
		return 0, fmt.Errorf("no socket listens on port %d of %v in /proc/net/tcp or tcp6", port, ips)
	}
	pids, err := socketOwners(inodes)
	if err != nil {
		return 0, err
	}
	switch len(pids) {
	case 0:
		return 0, fmt.Errorf("the socket listening on port %d belongs to no process whose file descriptors this user may read (give --pid)", port)
	case 1:
		return pids[0], nil
	}
	return 0, fmt.Errorf("the socket listening on port %d is held by processes %v (give --pid)", port, pids)
}

// socketOwners lists the processes with a file descriptor on one of the
// socket inodes; processes of other users are skipped (unreadable).
func socketOwners(inodes []uint64) ([]int, error) {
	want := make(map[string]bool, len(inodes))
	for _, in := range inodes {
		want["socket:["+strconv.FormatUint(in, 10)+"]"] = true
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var pids []int
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid <= 0 {
			continue
		}
		dir := filepath.Join("/proc", p.Name(), "fd")
		fds, err := os.ReadDir(dir)
		if err != nil {
			continue // gone, or another user's
		}
		for _, fd := range fds {
			if target, err := os.Readlink(filepath.Join(dir, fd.Name())); err == nil && want[target] {
				pids = append(pids, pid)
				break
			}
		}
	}
	slices.Sort(pids)
	return pids, nil
}

// netListener is one listening socket of /proc/net/tcp or tcp6.
type netListener struct {
	ip    net.IP
	port  int
	inode uint64
}

// parseNetTCP reads the listening sockets of a /proc/net/tcp or tcp6 table:
// "sl local_address rem_address st ... inode", the address as hex words of
// the kernel's byte order and the port as hex.
func parseNetTCP(data []byte) ([]netListener, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	var out []netListener
	first := true
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if first {
			first = false
			if len(f) > 0 && f[0] == "sl" {
				continue // the header
			}
		}
		if len(f) == 0 {
			continue
		}
		if len(f) < 10 {
			return nil, fmt.Errorf("short line %q", sc.Text())
		}
		if f[3] != tcpListen {
			continue
		}
		addr, portHex, ok := strings.Cut(f[1], ":")
		if !ok {
			return nil, fmt.Errorf("local address %q without a port", f[1])
		}
		ip, err := parseProcIP(addr)
		if err != nil {
			return nil, err
		}
		port, err := strconv.ParseUint(portHex, 16, 16)
		if err != nil {
			return nil, fmt.Errorf("port %q: %w", portHex, err)
		}
		inode, err := strconv.ParseUint(f[9], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("inode %q: %w", f[9], err)
		}
		out = append(out, netListener{ip: ip, port: int(port), inode: inode})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read table: %w", err)
	}
	return out, nil
}

// parseProcIP decodes an address of /proc/net/tcp (8 hex digits) or tcp6
// (32): 32-bit words printed as numbers in the kernel's (host) byte order.
func parseProcIP(s string) (net.IP, error) {
	if len(s) != 8 && len(s) != 32 {
		return nil, fmt.Errorf("address %q: want 8 or 32 hex digits", s)
	}
	raw, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("address %q: %w", s, err)
	}
	ip := make(net.IP, len(raw))
	for i := 0; i < len(raw); i += 4 {
		binary.NativeEndian.PutUint32(ip[i:], binary.BigEndian.Uint32(raw[i:]))
	}
	return ip, nil
}

// CheckPID says whether the CPU time of process pid can be read, so that a
// run learns before it starts that it could not measure a given --pid.
func CheckPID(pid int) error {
	if pid <= 0 {
		return fmt.Errorf("pid %d: want a process id", pid)
	}
	if _, err := procCPU(pid); err != nil {
		return fmt.Errorf("pid %d: %w", pid, err)
	}
	return nil
}
