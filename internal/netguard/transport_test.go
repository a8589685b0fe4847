package netguard

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// countingListener counts the connections a server accepts and the bytes it
// reads, so a test can assert that a refused client sent nothing at all.
type countingListener struct {
	net.Listener
	conns atomic.Int64
	bytes *atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.conns.Add(1)
	return &countingConn{Conn: c, n: l.bytes}, nil
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

type countingServer struct {
	*httptest.Server
	ln       *countingListener
	requests atomic.Int64
	bytes    atomic.Int64
}

// startCounting starts a server on addr (e.g. "127.0.0.1:0"); it skips the
// test if the address cannot be bound (no IPv6 loopback, say).
func startCounting(t *testing.T, addr string, h http.Handler) *countingServer {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	s := &countingServer{}
	s.ln = &countingListener{Listener: ln, bytes: &s.bytes}
	if h == nil {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "reached") })
	}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		h.ServeHTTP(w, r)
	}))
	s.Server.Listener = s.ln
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func (s *countingServer) port() string {
	_, p, _ := net.SplitHostPort(s.ln.Addr().String())
	return p
}

func (s *countingServer) assertUntouched(t *testing.T) {
	t.Helper()
	if c, b, r := s.ln.conns.Load(), s.bytes.Load(), s.requests.Load(); c != 0 || b != 0 || r != 0 {
		t.Fatalf("server was reached: %d connections, %d bytes, %d requests", c, b, r)
	}
}

// offlineResolver resolves from /etc/hosts only; a DNS query fails at once
// instead of leaving the machine.
func offlineResolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
		return nil, errors.New("no DNS in tests")
	}}
}

func post(c *http.Client, url string) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return resp, err
}

// TestGuardedClientNeverReachesLoopback: an endpoint registered at a
// loopback port receives no byte, however the URL writes the address.
func TestGuardedClientNeverReachesLoopback(t *testing.T) {
	srv := startCounting(t, "127.0.0.1:0", nil)
	p := srv.port()
	client := NewClient(ClientOptions{Resolver: offlineResolver(), Timeout: 5 * time.Second})
	hosts := []string{
		"127.0.0.1", "127.1", "127.0.1", "2130706433", "0x7f000001", "0X7F000001", "017700000001",
		"0177.0.0.1", "0x7f.1", "127.000.000.001", "127.0.0.1.", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]",
		"0.0.0.0", "0", "localhost", "LOCALHOST", "localhost.", "127.255.255.254",
	}
	for _, h := range hosts {
		t.Run(h, func(t *testing.T) {
			url := "http://" + h + ":" + p + "/hook"
			resp, err := post(client, url)
			if err == nil {
				t.Fatalf("POST %s succeeded (%d); want refused", url, resp.StatusCode)
			}
			var be *BlockedError
			if !errors.As(err, &be) {
				t.Fatalf("POST %s: error %v (%T) is not a *BlockedError", url, err, err)
			}
		})
	}
	srv.assertUntouched(t)
}

// TestGuardedClientNeverReachesIPv6Loopback does the same over ::1, when the
// machine has it.
func TestGuardedClientNeverReachesIPv6Loopback(t *testing.T) {
	srv := startCounting(t, "[::1]:0", nil)
	p := srv.port()
	client := NewClient(ClientOptions{Resolver: offlineResolver(), Timeout: 5 * time.Second})
	for _, h := range []string{"[::1]", "[0:0:0:0:0:0:0:1]", "[::]", "[0::1]"} {
		url := "http://" + h + ":" + p + "/"
		_, err := post(client, url)
		var be *BlockedError
		if !errors.As(err, &be) {
			t.Errorf("POST %s: %v; want a *BlockedError", url, err)
		}
	}
	srv.assertUntouched(t)
}

// TestUnguardedReachesLoopback is the control: the same URLs do reach the
// server when private networks are allowed, so the zero counts above mean
// the guard stopped them.
func TestUnguardedReachesLoopback(t *testing.T) {
	srv := startCounting(t, "127.0.0.1:0", nil)
	p := srv.port()
	client := NewClient(ClientOptions{AllowPrivate: true, Resolver: offlineResolver(), Timeout: 5 * time.Second})
	for _, h := range []string{"127.0.0.1", "127.1", "0x7f000001", "localhost"} {
		resp, err := post(client, "http://"+h+":"+p+"/")
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("AllowPrivate POST via %s: %v", h, err)
		}
	}
	if srv.requests.Load() != 4 || srv.bytes.Load() == 0 {
		t.Fatalf("server saw %d requests, %d bytes; want 4 and some", srv.requests.Load(), srv.bytes.Load())
	}
	// --allow-cidr for exactly this address opens it too.
	client = NewClient(ClientOptions{AllowCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, Resolver: offlineResolver()})
	if resp, err := post(client, "http://127.0.0.1:"+p+"/"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("AllowCIDRs 127.0.0.1/32: %v", err)
	}
}

// TestRedirectToLoopbackNotFollowed: an allowed receiver answering a
// redirect to a loopback server gets its 3xx back as the response; the
// loopback server is never contacted. Even a client that does follow
// redirects is stopped by the dial-time check.
func TestRedirectToLoopbackNotFollowed(t *testing.T) {
	target := startCounting(t, "127.0.0.1:0", nil)
	redirector := startCounting(t, "127.0.0.2:0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://127.0.0.1:"+target.port()+"/internal", http.StatusFound)
	}))
	opts := ClientOptions{AllowCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}, Resolver: offlineResolver()}
	client := NewClient(opts)
	resp, err := post(client, redirector.URL+"/hook")
	if err != nil {
		t.Fatalf("POST to allowed redirector: %v", err)
	}
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("status %d; want the 302 itself", resp.StatusCode)
	}
	if redirector.requests.Load() != 1 {
		t.Fatalf("redirector saw %d requests; want 1", redirector.requests.Load())
	}

	following := &http.Client{Transport: NewTransport(opts)}
	_, err = post(following, redirector.URL+"/hook")
	var be *BlockedError
	if !errors.As(err, &be) || be.Addr != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("following client: %v; want a *BlockedError for 127.0.0.1", err)
	}
	target.assertUntouched(t)
}

// TestRedirectToAllowedNotFollowed: redirects are not followed even to an
// address the guard allows.
func TestRedirectToAllowedNotFollowed(t *testing.T) {
	target := startCounting(t, "127.0.0.1:0", nil)
	redirector := startCounting(t, "127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL, http.StatusTemporaryRedirect)
	}))
	client := NewClient(ClientOptions{AllowPrivate: true, Resolver: offlineResolver()})
	resp, err := post(client, redirector.URL)
	if err != nil || resp.StatusCode != http.StatusTemporaryRedirect {
		t.Fatalf("POST: %v, %v; want the 307", resp, err)
	}
	target.assertUntouched(t)
}

// TestTransportSettings checks the properties the delivery engine relies on.
func TestTransportSettings(t *testing.T) {
	tr := NewTransport(ClientOptions{})
	if tr.Proxy != nil {
		t.Error("transport takes a proxy from the environment")
	}
	if tr.MaxIdleConnsPerHost != DefaultMaxIdleConnsPerHost || tr.MaxIdleConnsPerHost < 256 {
		t.Errorf("MaxIdleConnsPerHost = %d", tr.MaxIdleConnsPerHost)
	}
	if !tr.ForceAttemptHTTP2 {
		t.Error("HTTP/2 not attempted")
	}
	if tr.MaxResponseHeaderBytes != MaxResponseHeaderBytes {
		t.Errorf("MaxResponseHeaderBytes = %d", tr.MaxResponseHeaderBytes)
	}
	c := NewClient(ClientOptions{})
	if c.Timeout != DefaultTimeout {
		t.Errorf("Timeout = %v", c.Timeout)
	}
	if c.CheckRedirect == nil || c.CheckRedirect(nil, nil) != http.ErrUseLastResponse {
		t.Error("client follows redirects")
	}
}

// TestProxyEnvIgnored: with HTTP_PROXY pointing at a server, requests still
// go straight to the receiver (a proxy would be checked instead of it).
func TestProxyEnvIgnored(t *testing.T) {
	proxy := startCounting(t, "127.0.0.1:0", nil)
	recv := startCounting(t, "127.0.0.1:0", nil)
	t.Setenv("HTTP_PROXY", proxy.URL)
	t.Setenv("http_proxy", proxy.URL)
	client := NewClient(ClientOptions{AllowPrivate: true, Resolver: offlineResolver()})
	// A name, not 127.0.0.1, since Go bypasses proxies for loopback literals.
	if _, err := post(client, "http://localhost:"+recv.port()+"/"); err != nil {
		t.Fatal(err)
	}
	if recv.requests.Load() != 1 {
		t.Fatalf("receiver saw %d requests", recv.requests.Load())
	}
	proxy.assertUntouched(t)
}

// TestHTTP2 shows HTTP/2 is negotiated over TLS with the guarded dialer.
func TestHTTP2(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.Proto)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	client := NewClient(ClientOptions{
		AllowCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		TLSConfig:  &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
	})
	resp, err := client.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Fatalf("protocol %s; want HTTP/2", resp.Proto)
	}
	// And the guard still applies over TLS.
	strict := NewClient(ClientOptions{TLSConfig: &tls.Config{RootCAs: pool}})
	u := "https://127.0.0.1:" + strconv.Itoa(srv.Listener.Addr().(*net.TCPAddr).Port)
	_, err = strict.Get(u)
	var be *BlockedError
	if !errors.As(err, &be) {
		t.Fatalf("strict TLS client: %v; want a *BlockedError", err)
	}
}

// loopbackDNS is a resolver whose DNS server, spoken to over an in-memory
// pipe, answers every A query with 127.0.0.1 and every other query with no
// records: the situation of a customer's domain pointed (or rebound) at the
// sender's own machine.
func loopbackDNS() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
		client, server := net.Pipe()
		go serveFakeDNS(server)
		return client, nil
	}}
}

// serveFakeDNS answers DNS-over-TCP framed queries (a non-packet conn makes
// Go's resolver use TCP framing) until the conn closes.
func serveFakeDNS(c net.Conn) {
	defer c.Close()
	for {
		var l [2]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			return
		}
		q := make([]byte, int(l[0])<<8|int(l[1]))
		if _, err := io.ReadFull(c, q); err != nil || len(q) < 12 {
			return
		}
		i := 12
		for i < len(q) && q[i] != 0 {
			i += int(q[i]) + 1
		}
		end := i + 5 // zero label, QTYPE, QCLASS
		if end > len(q) {
			return
		}
		qtype := int(q[i+1])<<8 | int(q[i+2])
		resp := append([]byte{q[0], q[1], 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0}, q[12:end]...)
		if qtype == 1 {
			resp[7] = 1
			resp = append(resp, 0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1)
		}
		if _, err := c.Write(append([]byte{byte(len(resp) >> 8), byte(len(resp))}, resp...)); err != nil {
			return
		}
	}
}

// TestNameResolvingToLoopback: the check is on the resolved address, so a
// public-looking name that resolves to loopback is refused at dial time.
func TestNameResolvingToLoopback(t *testing.T) {
	srv := startCounting(t, "127.0.0.1:0", nil)
	url := "http://hooks.customer.example:" + srv.port() + "/"
	if err := CheckLiteralHost("hooks.customer.example"); err != nil {
		t.Fatalf("a name is refused at registration: %v", err)
	}
	_, err := post(NewClient(ClientOptions{Resolver: loopbackDNS()}), url)
	var be *BlockedError
	if !errors.As(err, &be) || be.Addr != netip.MustParseAddr("127.0.0.1") || be.Reason != ReasonLoopback {
		t.Fatalf("POST %s: %v; want a *BlockedError for 127.0.0.1", url, err)
	}
	srv.assertUntouched(t)

	// Control: the fake DNS does resolve, and the name then reaches the
	// server once private networks are allowed.
	resp, err := post(NewClient(ClientOptions{AllowPrivate: true, Resolver: loopbackDNS()}), url)
	if err != nil || resp.StatusCode != 200 || srv.requests.Load() != 1 {
		t.Fatalf("AllowPrivate POST %s: %v (requests %d)", url, err, srv.requests.Load())
	}
}

// NewDialContext, for brokers, refuses loopback unless allowed, however
// the address is written, and dials it when allowed.
func TestNewDialContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	strict := NewDialContext(ClientOptions{})
	for _, host := range []string{"127.0.0.1", "127.1", "localhost", "0x7f000001"} {
		c, err := strict(t.Context(), "tcp", net.JoinHostPort(host, port))
		if err == nil {
			c.Close()
			t.Errorf("dial %s: no refusal", host)
			continue
		}
		var be *BlockedError
		if !errors.As(err, &be) {
			t.Errorf("dial %s: %v, want a *BlockedError", host, err)
		}
	}
	c, err := NewDialContext(ClientOptions{AllowPrivate: true})(t.Context(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("dial with private networks allowed: %v", err)
	}
	c.Close()
}
