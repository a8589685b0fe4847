package netguard

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/netip"
	"time"
)

// Defaults of NewTransport and NewClient.
const (
	// DefaultTimeout bounds one request, response body included.
	DefaultTimeout = 30 * time.Second
	// DefaultDialTimeout bounds connect(2) (and each happy-eyeballs try).
	DefaultDialTimeout = 10 * time.Second
	// DefaultMaxIdleConnsPerHost keeps enough warm connections for tens of
	// thousands of deliveries per second to one receiver.
	DefaultMaxIdleConnsPerHost = 256
	// DefaultMaxIdleConns bounds idle connections over all receivers.
	DefaultMaxIdleConns = 4096
	// MaxResponseHeaderBytes bounds the response headers a receiver may
	// send back: a hostile receiver must not make the sender buffer much.
	MaxResponseHeaderBytes = 64 << 10
)

// ClientOptions configures the webhook HTTP transport. The zero value is
// the strict default: every blocked range refused.
type ClientOptions struct {
	// AllowPrivate turns the SSRF guard off (--allow-private-networks).
	AllowPrivate bool
	// AllowCIDRs opens single ranges (--allow-cidr).
	AllowCIDRs []netip.Prefix
	// Timeout bounds a whole request on the client (0: DefaultTimeout).
	Timeout time.Duration
	// DialTimeout bounds a connection attempt (0: DefaultDialTimeout).
	DialTimeout time.Duration
	// MaxIdleConnsPerHost (0: DefaultMaxIdleConnsPerHost).
	MaxIdleConnsPerHost int
	// MaxIdleConns (0: DefaultMaxIdleConns).
	MaxIdleConns int
	// Resolver resolves names (nil: net.DefaultResolver). Tests pass one
	// that never leaves the machine.
	Resolver *net.Resolver
	// TLSConfig for https endpoints (nil: system roots, TLS 1.2 minimum).
	TLSConfig *tls.Config
}

// Guard returns the Guard these options describe.
func (o ClientOptions) Guard() *Guard {
	return &Guard{AllowPrivate: o.AllowPrivate, AllowCIDRs: o.AllowCIDRs}
}

// NewTransport returns an *http.Transport for webhook delivery: every
// connection goes through the guard's Control on the resolved address;
// proxies from the environment are ignored (a proxy would be dialled
// instead of the receiver and defeat the check); HTTP/2 is attempted over
// TLS; idle connections are kept for high throughput to one host.
func NewTransport(o ClientOptions) *http.Transport {
	g := o.Guard()
	if o.DialTimeout <= 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.MaxIdleConnsPerHost <= 0 {
		o.MaxIdleConnsPerHost = DefaultMaxIdleConnsPerHost
	}
	if o.MaxIdleConns <= 0 {
		o.MaxIdleConns = DefaultMaxIdleConns
	}
	tlsConf := o.TLSConfig
	if tlsConf == nil {
		tlsConf = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	d := &net.Dialer{
		Timeout:   o.DialTimeout,
		KeepAlive: 30 * time.Second,
		Resolver:  o.Resolver,
		Control:   g.Control,
	}
	return &http.Transport{
		Proxy:                  nil,
		DialContext:            canonicalDial(g, d.DialContext),
		ForceAttemptHTTP2:      true,
		TLSClientConfig:        tlsConf,
		TLSHandshakeTimeout:    10 * time.Second,
		ExpectContinueTimeout:  time.Second,
		IdleConnTimeout:        90 * time.Second,
		MaxIdleConns:           o.MaxIdleConns,
		MaxIdleConnsPerHost:    o.MaxIdleConnsPerHost,
		MaxResponseHeaderBytes: MaxResponseHeaderBytes,
	}
}

// NewDialContext returns the guarded dial function of NewTransport for
// connections that are not HTTP (a broker's: NATS, AMQP, Redis, Kafka): odd
// address spellings rewritten, localhost names refused before any lookup,
// and the guard's Control on every address actually dialled. Only
// AllowPrivate, AllowCIDRs, DialTimeout and Resolver are used.
func NewDialContext(o ClientOptions) func(ctx context.Context, network, address string) (net.Conn, error) {
	if o.DialTimeout <= 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	g := o.Guard()
	d := &net.Dialer{Timeout: o.DialTimeout, KeepAlive: 30 * time.Second, Resolver: o.Resolver, Control: g.Control}
	return canonicalDial(g, d.DialContext)
}

// canonicalDial rewrites odd address spellings ("127.1", "0x7f000001") to
// the address they mean before dialling, so they never become DNS queries
// and always meet the guard as the address a C resolver would produce.
// The host goes through NormalizeHost first, as at registration: net/http
// has already mapped a Unicode host it could map, and one it could not
// (which it would pass on raw) is refused here with a *HostError.
// Localhost names are refused before any lookup (when loopback is blocked),
// since a resolver may send "localhost." to DNS.
func canonicalDial(g *Guard, dial func(ctx context.Context, network, address string) (net.Conn, error)) func(ctx context.Context, network, address string) (net.Conn, error) {
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(address)
		if err != nil {
			// The dialer refuses it too; say why in the same words as
			// registration when the cause is a host that does not map.
			if _, nerr := NormalizeHost(address); nerr != nil {
				return nil, nerr
			}
		} else {
			ascii, err := NormalizeHost(host)
			if err != nil {
				return nil, err
			}
			if a, ok := ParseHost(ascii); ok {
				address = net.JoinHostPort(a.String(), port)
			} else if err := g.checkLocalhostName(ascii); err != nil {
				return nil, err
			} else {
				address = net.JoinHostPort(ascii, port)
			}
		}
		return dial(ctx, network, address)
	}
}

// NewClient returns an *http.Client over NewTransport that never follows
// redirects: a 3xx is returned to the caller as the response (a redirect
// is a failed delivery, and following it would let a receiver point the
// sender anywhere).
func NewClient(o ClientOptions) *http.Client {
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &http.Client{
		Transport:     NewTransport(o),
		Timeout:       timeout,
		CheckRedirect: NoRedirects,
	}
}

// NoRedirects is an http.Client CheckRedirect that stops at the first
// response.
func NoRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
