package redis

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/delivery"
)

// Defaults of Options.
const (
	DefaultMaxClients     = 256
	DefaultPoolSize       = 32
	DefaultIdleTimeout    = 5 * time.Minute
	DefaultConnectTimeout = 10 * time.Second
)

// The fields of a stream entry, besides the endpoint's custom headers.
const (
	FieldBody  = "body"
	FieldEvent = "event"
)

// HeaderStream is the recorded header naming the stream an attempt added to.
const HeaderStream = "Redis-Stream"

// Options configures a Transport.
type Options struct {
	// Dial opens every connection to a server. It is where the caller puts
	// the SSRF guard (netguard.NewDialContext). Required.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// TLS is the base TLS configuration of rediss:// servers (nil: the
	// system's roots, TLS 1.2 at least); ServerName is set per server.
	TLS *tls.Config
	// MaxClients bounds the clients kept, one per (server, credentials)
	// (0: DefaultMaxClients). At the bound the least recently used idle
	// one is closed; when none is idle the attempt fails, to be retried.
	MaxClients int
	// PoolSize bounds the connections of one client (0: DefaultPoolSize).
	PoolSize int
	// IdleTimeout closes a client no delivery used for that long, and a
	// pooled connection idle that long (0: DefaultIdleTimeout).
	IdleTimeout time.Duration
	// ConnectTimeout bounds connecting, TLS included (0:
	// DefaultConnectTimeout); an attempt's own deadline bounds it too.
	ConnectTimeout time.Duration
}

// Transport adds each message to its endpoint's stream with one XADD and
// takes Redis's entry id as the confirmation. go-redis never retries a
// command here (MaxRetries -1): retrying is the engine's, on its schedule
// and in per-resource order, so one attempt is one XADD. Clients (each a
// pool of connections) are shared by every endpoint with the same server
// and credentials, and closed when idle, when no endpoint uses them any
// more (Forget), or by Close.
type Transport struct {
	o       Options
	pool    *delivery.Pool[clientKey, *goredis.Client]
	configs delivery.EndpointCache[cachedConfig]
}

var (
	_ delivery.Transport          = (*Transport)(nil)
	_ delivery.TransportCloser    = (*Transport)(nil)
	_ delivery.TransportForgetter = (*Transport)(nil)
)

// clientKey identifies a shareable client.
type clientKey struct {
	url, username, password string
}

// cachedConfig is an endpoint's parsed config and its client's key.
type cachedConfig struct {
	cfg Config
	key clientKey
}

// quietLogger takes go-redis's own log lines (a failed dial, per attempt
// while a server is down) to slog at debug level: the attempt's error
// already says it, in the delivery log.
type quietLogger struct{}

func (quietLogger) Printf(_ context.Context, format string, v ...any) {
	slog.Debug("redis client: " + fmt.Sprintf(format, v...))
}

var setLogger sync.Once

// New returns the Redis transport.
func New(o Options) *Transport {
	setLogger.Do(func() { goredis.SetLogger(quietLogger{}) })
	if o.MaxClients <= 0 {
		o.MaxClients = DefaultMaxClients
	}
	if o.PoolSize <= 0 {
		o.PoolSize = DefaultPoolSize
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	t := &Transport{o: o}
	t.pool = delivery.NewPool(delivery.PoolOptions[clientKey, *goredis.Client]{
		Open:        t.newClient,
		Close:       func(rc *goredis.Client) { _ = rc.Close() },
		Max:         o.MaxClients,
		IdleTimeout: o.IdleTimeout,
		FullError:   "redis: %d server clients in use, the most this server keeps",
	})
	return t
}

// Send adds m to the endpoint's stream and waits for the entry id within
// ctx: an id is a success; an error reply (WRONGTYPE, NOAUTH, WRONGPASS,
// OOM, READONLY, ...) is OutcomeRefused; a server that cannot be reached
// or a connection lost is a network error; no reply in time is a timeout.
// Err carries the server's words.
func (t *Transport) Send(ctx context.Context, m delivery.Message) delivery.Result {
	start := time.Now()
	cc, err := t.configs.Get(m.Endpoint, parseEndpoint)
	if err != nil {
		return delivery.Result{Outcome: delivery.OutcomeNetworkError, Err: err.Error(), Duration: time.Since(start)}
	}
	values := make([]any, 0, 10+2*len(m.Endpoint.Headers))
	values = append(values,
		FieldBody, m.Body,
		kinehook.HeaderID, m.ID,
		kinehook.HeaderTimestamp, m.Timestamp,
		kinehook.HeaderSignature, m.Signature,
		FieldEvent, string(m.EventType))
	out := delivery.Result{Headers: make(map[string]string, 5+len(m.Endpoint.Headers))}
	out.Headers[kinehook.HeaderID] = m.ID
	out.Headers[kinehook.HeaderTimestamp] = m.Timestamp
	out.Headers[kinehook.HeaderSignature] = m.Signature
	out.Headers[FieldEvent] = string(m.EventType)
	out.Headers[HeaderStream] = cc.cfg.Stream
	for k, v := range m.Endpoint.Headers {
		if reservedField(k) {
			continue
		}
		values = append(values, k, v)
		out.Headers[k] = kinehook.MaskHeaderValue(v)
	}
	args := &goredis.XAddArgs{Stream: cc.cfg.Stream, ID: "*", Values: values}
	if cc.cfg.MaxLen != nil {
		args.MaxLen, args.Approx = *cc.cfg.MaxLen, true
	}

	c, err := t.pool.Acquire(ctx, cc.key, m.Endpoint.ID)
	if err != nil {
		if errors.Is(err, delivery.ErrPoolClosed) {
			err = fmt.Errorf("redis: %w", err)
		}
		out.Outcome, out.Err, out.Duration = delivery.OutcomeNetworkError, err.Error(), time.Since(start)
		return out
	}
	id, err := c.Value().XAdd(ctx, args).Result()
	c.Release()
	out.Duration = time.Since(start)
	if err != nil {
		out.Outcome, out.Err = classify(ctx, err, cc.cfg)
		return out
	}
	out.Outcome = delivery.OutcomeSuccess
	out.Response = id
	return out
}

// reservedField is a custom header name that would repeat one of the
// entry's own fields; such a header is not added.
func reservedField(name string) bool {
	switch strings.ToLower(name) {
	case FieldBody, FieldEvent, kinehook.HeaderID, kinehook.HeaderTimestamp, kinehook.HeaderSignature:
		return true
	}
	return false
}

// parseEndpoint parses an endpoint's config (for the EndpointCache).
func parseEndpoint(ep *kinehook.Endpoint) (cachedConfig, error) {
	cfg, err := ParseConfig(ep.Config)
	if err != nil {
		return cachedConfig{}, fmt.Errorf("redis: endpoint config: %w", err)
	}
	return cachedConfig{cfg: cfg, key: clientKey{url: cfg.URL,
		username: ep.Credentials[CredentialUsername], password: ep.Credentials[CredentialPassword]}}, nil
}

// newClient is a go-redis client for key: every connection through the
// guarded dialer (TLS on top for rediss://), no retry of a command
// (MaxRetries -1) nor of a dial (DialerRetries 1), deadlines from the
// attempt's context, RESP2 without the client's identity or maintenance
// handshakes (plain AUTH and SELECT, which any Redis and ACL user takes).
func (t *Transport) newClient(key clientKey) (*goredis.Client, error) {
	addr, err := parseURL(key.url)
	if err != nil {
		return nil, fmt.Errorf("redis: url %q: %w", key.url, err)
	}
	dial := t.o.Dial
	if dial == nil {
		return nil, errors.New("redis: no dial function configured")
	}
	var tlsConf *tls.Config
	if addr.tls {
		if t.o.TLS != nil {
			tlsConf = t.o.TLS.Clone()
		} else {
			tlsConf = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		if tlsConf.ServerName == "" {
			tlsConf.ServerName = addr.name
		}
	}
	return goredis.NewClient(&goredis.Options{
		Addr:     addr.host,
		Username: key.username,
		Password: key.password,
		DB:       addr.db,
		Protocol: 2,
		Dialer: func(ctx context.Context, network, address string) (net.Conn, error) {
			conn, err := dial(ctx, network, address)
			if err != nil || tlsConf == nil {
				return conn, err
			}
			tc := tls.Client(conn, tlsConf)
			if err := tc.HandshakeContext(ctx); err != nil {
				conn.Close()
				return nil, fmt.Errorf("tls handshake with %s: %w", address, err)
			}
			return tc, nil
		},
		MaxRetries:               -1,
		DialerRetries:            1,
		DialTimeout:              t.o.ConnectTimeout,
		ContextTimeoutEnabled:    true,
		PoolSize:                 t.o.PoolSize,
		ConnMaxIdleTime:          t.o.IdleTimeout,
		DisableIdentity:          true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	}), nil
}

// Forget implements delivery.TransportForgetter: the endpoint changed or
// is gone; a client no other endpoint uses is closed once idle.
func (t *Transport) Forget(endpointID string) {
	t.configs.Forget(endpointID)
	t.pool.Forget(endpointID)
}

// Clients is how many clients are open (tests, metrics).
func (t *Transport) Clients() int { return t.pool.Len() }

// Close implements delivery.TransportCloser: every client is closed and
// later attempts fail.
func (t *Transport) Close() error {
	t.pool.Close()
	return nil
}

// classify words a failed XADD: the server's error reply is its refusal;
// a deadline first is a timeout; anything else (refused, blocked,
// unreachable, a connection lost) a network error.
func classify(ctx context.Context, err error, cfg Config) (delivery.Outcome, string) {
	var rerr goredis.Error
	var nerr net.Error
	switch {
	case errors.As(err, &rerr) && !isTimeoutErr(err):
		return delivery.OutcomeRefused, fmt.Sprintf("redis: %s refused XADD to stream %q: %v", cfg.URL, cfg.Stream, err)
	case errors.Is(err, context.DeadlineExceeded) || (ctx.Err() != nil && errors.Is(err, context.Canceled)) ||
		(errors.As(err, &nerr) && nerr.Timeout()) || errors.Is(err, goredis.ErrPoolTimeout):
		return delivery.OutcomeTimeout, fmt.Sprintf("timeout: no reply from %s to XADD on stream %q within the request timeout (%v)", cfg.URL, cfg.Stream, err)
	case errors.Is(err, goredis.ErrClosed):
		return delivery.OutcomeNetworkError, fmt.Sprintf("redis: client for %s closed (%v)", cfg.URL, err)
	}
	return delivery.OutcomeNetworkError, fmt.Sprintf("redis: XADD to %s: %v", cfg.URL, err)
}

func isTimeoutErr(err error) bool {
	var nerr net.Error
	return errors.As(err, &nerr) && nerr.Timeout()
}
