package nats

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/delivery"
)

// Defaults of Options.
const (
	DefaultMaxConns       = 256
	DefaultIdleTimeout    = 5 * time.Minute
	DefaultConnectTimeout = 10 * time.Second
)

// HeaderMsgID is JetStream's de-duplication header.
const HeaderMsgID = "Nats-Msg-Id"

// Options configures a Transport.
type Options struct {
	// Dial opens every connection to a server (after a reconnect too). It
	// is where the caller puts the SSRF guard (netguard.NewDialContext).
	// Required.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// MaxConns bounds the connections kept, one per (server, credentials)
	// (0: DefaultMaxConns). At the bound the least recently used idle one
	// is closed; when none is idle the attempt fails, to be retried.
	MaxConns int
	// IdleTimeout closes a connection no delivery used for that long
	// (0: DefaultIdleTimeout).
	IdleTimeout time.Duration
	// ConnectTimeout bounds connecting, TLS and the NATS handshake
	// included (0: DefaultConnectTimeout). An attempt waits for it within
	// its own deadline only; the connection is kept for the next one.
	ConnectTimeout time.Duration
	// ReconnectWait is the pause between reconnection tries of a
	// connection that dropped (0: 250 ms).
	ReconnectWait time.Duration
	// Name is the client name the server shows (empty: "kinehook").
	Name string
}

// Transport publishes each message to its endpoint's subject on JetStream
// and waits for the stream's acknowledgement. Connections are shared by
// every endpoint with the same server and credentials, reused across
// deliveries, and closed when idle, when no endpoint uses them any more
// (Forget), or by Close (a delivery.Pool).
type Transport struct {
	o       Options
	pool    *delivery.Pool[connKey, *conn]
	configs delivery.EndpointCache[cachedConfig]
}

var (
	_ delivery.Transport          = (*Transport)(nil)
	_ delivery.TransportCloser    = (*Transport)(nil)
	_ delivery.TransportForgetter = (*Transport)(nil)
)

// connKey identifies a shareable connection.
type connKey struct {
	url, user, password, token string
}

// cachedConfig is an endpoint's parsed config and its connection's key.
type cachedConfig struct {
	cfg Config
	key connKey
}

// conn is one connection with its JetStream context.
type conn struct {
	nc *natsgo.Conn
	js jetstream.JetStream
}

// New returns the NATS transport.
func New(o Options) *Transport {
	if o.MaxConns <= 0 {
		o.MaxConns = DefaultMaxConns
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.ReconnectWait <= 0 {
		o.ReconnectWait = 250 * time.Millisecond
	}
	if o.Name == "" {
		o.Name = "kinehook"
	}
	t := &Transport{o: o}
	t.pool = delivery.NewPool(delivery.PoolOptions[connKey, *conn]{
		Open:        t.connect,
		Close:       func(c *conn) { c.nc.Close() },
		Dead:        func(c *conn) bool { return c.nc.IsClosed() }, // gave up reconnecting: dial again
		Max:         o.MaxConns,
		IdleTimeout: o.IdleTimeout,
		FullError:   "nats: %d broker connections in use, the most this server keeps",
	})
	return t
}

// Send publishes m to the endpoint's subject and waits for JetStream's
// acknowledgement within ctx: an ack is a success; a server that cannot be
// reached or is not connected is a network error; no stream on the
// subject, a refused publish or a refused login is OutcomeRefused; no ack
// in time is a timeout. Err carries the server's words.
func (t *Transport) Send(ctx context.Context, m delivery.Message) delivery.Result {
	start := time.Now()
	cc, err := t.configs.Get(m.Endpoint, parseEndpoint)
	if err != nil {
		return delivery.Result{Outcome: delivery.OutcomeNetworkError, Err: err.Error(), Duration: time.Since(start)}
	}
	msg := &natsgo.Msg{Subject: cc.cfg.Subject, Data: m.Body, Header: make(natsgo.Header, 5+len(m.Endpoint.Headers))}
	for k, v := range m.Endpoint.Headers {
		msg.Header[k] = []string{v}
	}
	msg.Header[kinehook.HeaderID] = []string{m.ID}
	msg.Header[kinehook.HeaderTimestamp] = []string{m.Timestamp}
	msg.Header[kinehook.HeaderSignature] = []string{m.Signature}
	msg.Header[HeaderMsgID] = []string{m.ID}
	msg.Header["Content-Type"] = []string{"application/json"}
	out := delivery.Result{Headers: recordedHeaders(msg.Header, m.Endpoint.Headers, cc.cfg)}

	e, err := t.pool.Acquire(ctx, cc.key, m.Endpoint.ID)
	if err != nil {
		out.Outcome, out.Err = classifyConnect(ctx, err, cc.cfg.URL)
		out.Duration = time.Since(start)
		return out
	}
	defer e.Release()
	c := e.Value()
	if st := c.nc.Status(); st != natsgo.CONNECTED {
		out.Outcome = delivery.OutcomeNetworkError
		out.Err = fmt.Sprintf("nats: not connected to %s (%s)", cc.cfg.URL, statusText(st))
		if last := c.nc.LastError(); last != nil {
			out.Err += ": " + last.Error()
		}
		out.Duration = time.Since(start)
		return out
	}
	ack, err := c.js.PublishMsg(ctx, msg)
	out.Duration = time.Since(start)
	if err != nil {
		out.Outcome, out.Err = classifyPublish(ctx, err, cc.cfg)
		return out
	}
	out.Outcome = delivery.OutcomeSuccess
	out.Response = "stream " + ack.Stream + " seq " + strconv.FormatUint(ack.Sequence, 10)
	if ack.Duplicate {
		out.Response += " (duplicate: already stored)"
	}
	return out
}

// parseEndpoint parses an endpoint's config (for the EndpointCache).
func parseEndpoint(ep *kinehook.Endpoint) (cachedConfig, error) {
	cfg, err := ParseConfig(ep.Config)
	if err != nil {
		return cachedConfig{}, fmt.Errorf("nats: endpoint config: %w", err)
	}
	return cachedConfig{cfg: cfg, key: connKey{url: cfg.URL, user: ep.Credentials[CredentialUser],
		password: ep.Credentials[CredentialPassword], token: ep.Credentials[CredentialToken]}}, nil
}

// connect opens the connection of key (the pool's Open).
func (t *Transport) connect(key connKey) (*conn, error) {
	d := &dialer{dial: t.o.Dial, timeout: t.o.ConnectTimeout}
	nc, err := natsgo.Connect(key.url, t.natsOptions(key, d)...)
	if err != nil {
		if errors.Is(err, natsgo.ErrNoServers) {
			if derr := d.lastError(); derr != nil {
				err = fmt.Errorf("%w (%w)", derr, err) // the dial's words, not only "no servers available"
			}
		}
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return &conn{nc: nc, js: js}, nil
}

// natsOptions are the client's options for a connection to key: the
// guarded dialer (no lookup of its own, so every address goes through it),
// credentials, endless reconnection without buffering (a publish while
// disconnected fails at once instead of waiting in a buffer).
func (t *Transport) natsOptions(key connKey, d *dialer) []natsgo.Option {
	opts := []natsgo.Option{
		natsgo.Name(t.o.Name),
		natsgo.SetCustomDialer(d),
		natsgo.SkipHostLookup(),
		natsgo.Timeout(t.o.ConnectTimeout),
		natsgo.MaxReconnects(-1),
		natsgo.ReconnectWait(t.o.ReconnectWait),
		natsgo.ReconnectBufSize(-1),
		natsgo.NoCallbacksAfterClientClose(),
	}
	switch {
	case key.token != "":
		opts = append(opts, natsgo.Token(key.token))
	case key.user != "":
		opts = append(opts, natsgo.UserInfo(key.user, key.password))
	}
	return opts
}

// dialer is nats.go's CustomDialer over a context dial function. It keeps
// the last dial error, which nats.go reports only as "no servers".
type dialer struct {
	dial    func(ctx context.Context, network, address string) (net.Conn, error)
	timeout time.Duration
	mu      sync.Mutex
	last    error
}

// Dial implements natsgo.CustomDialer.
func (d *dialer) Dial(network, address string) (net.Conn, error) {
	if d.dial == nil {
		return nil, errors.New("nats: no dial function configured")
	}
	ctx, cancel := context.WithTimeout(context.Background(), d.timeout)
	defer cancel()
	c, err := d.dial(ctx, network, address)
	d.mu.Lock()
	d.last = err
	d.mu.Unlock()
	return c, err
}

func (d *dialer) lastError() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.last
}

// Forget implements delivery.TransportForgetter: the endpoint changed or
// is gone; a connection no other endpoint uses is closed once idle.
func (t *Transport) Forget(endpointID string) {
	t.configs.Forget(endpointID)
	t.pool.Forget(endpointID)
}

// Conns is how many connections are open or being set up (tests, metrics).
func (t *Transport) Conns() int { return t.pool.Len() }

// Close implements delivery.TransportCloser: every connection is closed
// and later attempts fail.
func (t *Transport) Close() error {
	t.pool.Close()
	return nil
}

// recordedHeaders is what an attempt records: the signature headers, the
// message id and subject, and custom headers masked.
func recordedHeaders(h natsgo.Header, custom map[string]string, cfg Config) map[string]string {
	out := make(map[string]string, len(h)+1)
	for k, v := range h {
		if _, ok := custom[k]; ok {
			out[k] = kinehook.MaskHeaderValue(v[0])
			continue
		}
		out[k] = v[0]
	}
	out["Nats-Subject"] = cfg.Subject
	return out
}

func statusText(s natsgo.Status) string {
	switch s {
	case natsgo.RECONNECTING:
		return "reconnecting"
	case natsgo.CLOSED:
		return "closed"
	case natsgo.CONNECTING:
		return "connecting"
	case natsgo.DRAINING_PUBS, natsgo.DRAINING_SUBS:
		return "draining"
	default:
		return "disconnected"
	}
}

// classifyConnect words a failed connection: refused logins are the
// broker's refusal, everything else (refused, blocked, unreachable) a
// network error; a deadline first is a timeout.
func classifyConnect(ctx context.Context, err error, url string) (delivery.Outcome, string) {
	switch {
	case errors.Is(err, context.DeadlineExceeded) || (ctx.Err() != nil && errors.Is(err, context.Canceled)):
		return delivery.OutcomeTimeout, fmt.Sprintf("timeout: not connected to %s within the request timeout", url)
	case errors.Is(err, natsgo.ErrAuthorization) || errors.Is(err, natsgo.ErrAuthExpired) || errors.Is(err, natsgo.ErrAuthRevoked):
		return delivery.OutcomeRefused, fmt.Sprintf("nats: %s refused the credentials: %v", url, err)
	case errors.Is(err, delivery.ErrPoolClosed):
		return delivery.OutcomeNetworkError, "nats: " + err.Error()
	}
	return delivery.OutcomeNetworkError, fmt.Sprintf("nats: cannot connect to %s: %v", url, err)
}

// classifyPublish words a failed publish.
func classifyPublish(ctx context.Context, err error, cfg Config) (delivery.Outcome, string) {
	var apiErr *jetstream.APIError
	switch {
	case errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, natsgo.ErrNoResponders):
		return delivery.OutcomeRefused, fmt.Sprintf("nats: no JetStream stream bound to subject %q on %s (%v)", cfg.Subject, cfg.URL, err)
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, natsgo.ErrTimeout) || (ctx.Err() != nil && errors.Is(err, context.Canceled)):
		return delivery.OutcomeTimeout, fmt.Sprintf("timeout: no JetStream acknowledgement from %s for subject %q within the request timeout", cfg.URL, cfg.Subject)
	case errors.As(err, &apiErr):
		return delivery.OutcomeRefused, fmt.Sprintf("nats: JetStream refused the message on subject %q: %v", cfg.Subject, err)
	case errors.Is(err, natsgo.ErrMaxPayload), errors.Is(err, natsgo.ErrBadSubject), errors.Is(err, natsgo.ErrPermissionViolation):
		return delivery.OutcomeRefused, fmt.Sprintf("nats: %s refused the message on subject %q: %v", cfg.URL, cfg.Subject, err)
	}
	return delivery.OutcomeNetworkError, fmt.Sprintf("nats: publish to %s: %v", cfg.URL, err)
}
