package kafka

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/delivery"
)

// Defaults of Options.
const (
	DefaultMaxClients      = 64
	DefaultIdleTimeout     = 5 * time.Minute
	DefaultDialTimeout     = 10 * time.Second
	DefaultDeliveryTimeout = time.Minute
)

// Record headers beyond the webhook-* ones.
const (
	// HeaderEvent carries the event type (media.update.status, ...).
	HeaderEvent = "event"
	// HeaderContentType is "application/json", as on an HTTP delivery.
	HeaderContentType = "content-type"
)

// Options configures a Transport.
type Options struct {
	// Dial opens every connection to a broker, bootstrap or learnt from
	// metadata. It is where the caller puts the SSRF guard
	// (netguard.NewDialContext). Required.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// MaxClients bounds the producer clients kept, one per (brokers, TLS,
	// SASL, credentials) (0: DefaultMaxClients). At the bound the least
	// recently used idle one is closed; when none is idle the attempt
	// fails, to be retried.
	MaxClients int
	// IdleTimeout closes a client no delivery used for that long
	// (0: DefaultIdleTimeout).
	IdleTimeout time.Duration
	// DialTimeout bounds one connection, TLS included (0: DefaultDialTimeout).
	DialTimeout time.Duration
	// DeliveryTimeout is how long the client keeps retrying a record whose
	// attempt has given up waiting while it is in a request already sent
	// (the idempotent producer cannot drop it then) (0:
	// DefaultDeliveryTimeout). An attempt itself never waits beyond its
	// context's deadline.
	DeliveryTimeout time.Duration
	// ClientID is the client id the brokers see (empty: "kinehook").
	ClientID string
	// TLSConfig is the base TLS configuration of endpoints with "tls": true
	// (nil: system roots); tests give their own roots here.
	TLSConfig *tls.Config
}

// Transport produces each message to its endpoint's topic and waits for
// the acknowledgement of all in-sync replicas. Producer clients are shared
// by every endpoint with the same brokers, TLS, SASL and credentials,
// reused across deliveries, and closed when idle, when no endpoint uses
// them any more (Forget), or by Close.
type Transport struct {
	o       Options
	pool    *delivery.Pool[clientKey, *client]
	configs delivery.EndpointCache[cachedConfig]
}

var (
	_ delivery.Transport          = (*Transport)(nil)
	_ delivery.TransportCloser    = (*Transport)(nil)
	_ delivery.TransportForgetter = (*Transport)(nil)
)

// clientKey identifies a shareable producer client.
type clientKey struct {
	brokers            string // joined with ","
	tls                bool
	serverName         string
	sasl               string
	username, password string
}

// cachedConfig is an endpoint's parsed config and its client's key.
type cachedConfig struct {
	cfg Config
	key clientKey
}

// client is one producer client with what it last failed to dial.
type client struct {
	kc    *kgo.Client
	conns *connHook
}

// New returns the Kafka transport.
func New(o Options) *Transport {
	if o.MaxClients <= 0 {
		o.MaxClients = DefaultMaxClients
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.DeliveryTimeout <= 0 {
		o.DeliveryTimeout = DefaultDeliveryTimeout
	}
	if o.ClientID == "" {
		o.ClientID = "kinehook"
	}
	t := &Transport{o: o}
	t.pool = delivery.NewPool(delivery.PoolOptions[clientKey, *client]{
		Open: t.newClient,
		// Close waits for buffered records (a record still in a sent
		// request is given up); the pool never makes an attempt wait for it.
		Close:       func(c *client) { c.kc.Close() },
		Max:         o.MaxClients,
		IdleTimeout: o.IdleTimeout,
		FullError:   "kafka: %d producer clients in use, the most this server keeps",
	})
	return t
}

// produced is a record's promise.
type produced struct {
	r   *kgo.Record
	err error
}

// Send produces m to the endpoint's topic and waits within ctx for the
// acknowledgement of every in-sync replica: an ack is a success; a broker's
// error (unknown topic, refused login, record too large, ...) is
// OutcomeRefused with its words; brokers that cannot be reached are a
// network error; no ack in time is a timeout.
func (t *Transport) Send(ctx context.Context, m delivery.Message) delivery.Result {
	start := time.Now()
	cc, err := t.configs.Get(m.Endpoint, parseEndpoint)
	if err != nil {
		return delivery.Result{Outcome: delivery.OutcomeNetworkError, Err: err.Error(), Duration: time.Since(start)}
	}
	rec := &kgo.Record{Topic: cc.cfg.Topic, Value: m.Body, Headers: make([]kgo.RecordHeader, 0, 5+len(m.Endpoint.Headers))}
	if m.ResourceKey != "" {
		rec.Key = []byte(m.ResourceKey)
	}
	for k, v := range m.Endpoint.Headers {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
	}
	rec.Headers = append(rec.Headers,
		kgo.RecordHeader{Key: kinehook.HeaderID, Value: []byte(m.ID)},
		kgo.RecordHeader{Key: kinehook.HeaderTimestamp, Value: []byte(m.Timestamp)},
		kgo.RecordHeader{Key: kinehook.HeaderSignature, Value: []byte(m.Signature)},
		kgo.RecordHeader{Key: HeaderEvent, Value: []byte(m.EventType)},
		kgo.RecordHeader{Key: HeaderContentType, Value: []byte("application/json")})
	out := delivery.Result{Headers: recordedHeaders(rec, m.Endpoint.Headers)}

	e, err := t.pool.Acquire(ctx, cc.key, m.Endpoint.ID)
	if err != nil {
		if errors.Is(err, delivery.ErrPoolClosed) {
			err = fmt.Errorf("kafka: %w", err)
		}
		out.Outcome, out.Err, out.Duration = delivery.OutcomeNetworkError, err.Error(), time.Since(start)
		return out
	}
	defer e.Release()
	c := e.Value()
	// The record's own context ends early when every broker turned out
	// unreachable or refused the login: the client then drops the record
	// (it was never sent) instead of retrying it until the deadline.
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan produced, 1)
	c.kc.Produce(pctx, rec, func(r *kgo.Record, err error) { done <- produced{r, err} })
	var connErr error
	for {
		select {
		case p := <-done:
			out.Duration = time.Since(start)
			if p.err != nil {
				out.Outcome, out.Err = classify(ctx, p.err, cc.cfg, connErr)
				return out
			}
			out.Outcome = delivery.OutcomeSuccess
			out.Response = "topic " + p.r.Topic + " partition " + strconv.FormatInt(int64(p.r.Partition), 10) +
				" offset " + strconv.FormatInt(p.r.Offset, 10)
			return out
		case <-ctx.Done():
			// The record is in a request already sent: the idempotent
			// producer keeps it (DeliveryTimeout) and may still store it;
			// the retry is a new record, after it in the partition.
			out.Duration = time.Since(start)
			if connErr == nil {
				connErr = c.conns.failedSince(start, 1)
			}
			out.Outcome, out.Err = classify(ctx, ctx.Err(), cc.cfg, connErr)
			return out
		case <-c.conns.changed():
			if connErr == nil {
				if connErr = c.conns.failedSince(start, len(cc.cfg.Brokers)); connErr != nil {
					cancel()
				}
			}
		}
	}
}

// parseEndpoint parses an endpoint's config (for the EndpointCache).
func parseEndpoint(ep *kinehook.Endpoint) (cachedConfig, error) {
	cfg, err := ParseConfig(ep.Config)
	if err != nil {
		return cachedConfig{}, fmt.Errorf("kafka: endpoint config: %w", err)
	}
	cc := cachedConfig{cfg: cfg, key: clientKey{brokers: strings.Join(cfg.Brokers, ","), tls: cfg.TLS,
		serverName: cfg.TLSServerName, sasl: cfg.SASL}}
	if cfg.SASL != SASLNone {
		cc.key.username, cc.key.password = ep.Credentials[CredentialUsername], ep.Credentials[CredentialPassword]
	}
	return cc, nil
}

// newClient makes the producer client of key: idempotent, acks=all, no
// linger, every connection through the guarded dialer, topics never
// created by producing.
func (t *Transport) newClient(key clientKey) (*client, error) {
	d := &dialer{dial: t.o.Dial, timeout: t.o.DialTimeout}
	if key.tls {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if t.o.TLSConfig != nil {
			cfg = t.o.TLSConfig.Clone()
		}
		if key.serverName != "" {
			cfg.ServerName = key.serverName
		}
		d.tls = cfg
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(strings.Split(key.brokers, ",")...),
		kgo.ClientID(t.o.ClientID),
		kgo.Dialer(d.DialContext),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0),
		kgo.RecordDeliveryTimeout(t.o.DeliveryTimeout),
		kgo.UnknownTopicRetries(2),
		kgo.MetadataMinAge(500 * time.Millisecond),
		kgo.ConnIdleTimeout(time.Minute),
	}
	switch key.sasl {
	case SASLPlain:
		opts = append(opts, kgo.SASL(plain.Auth{User: key.username, Pass: key.password}.AsMechanism()))
	case SASLScramSHA256:
		opts = append(opts, kgo.SASL(scramAuth(key).AsSha256Mechanism()))
	case SASLScramSHA512:
		opts = append(opts, kgo.SASL(scramAuth(key).AsSha512Mechanism()))
	}
	hook := newConnHook()
	opts = append(opts, kgo.WithHooks(hook))
	kc, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka: producer client for %s: %w", key.brokers, err)
	}
	return &client{kc: kc, conns: hook}, nil
}

func scramAuth(key clientKey) scram.Auth {
	return scram.Auth{User: key.username, Pass: key.password}
}

// dialer dials through the guard, with TLS on top when configured.
type dialer struct {
	dial    func(ctx context.Context, network, address string) (net.Conn, error)
	timeout time.Duration
	tls     *tls.Config
}

// dialError is a failure to open a connection (TCP, the guard, TLS), as
// opposed to one after it opened (ApiVersions, SASL).
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// DialContext is the client's kgo.Dialer.
func (d *dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	c, err := d.open(ctx, network, address)
	if err != nil {
		return nil, &dialError{err}
	}
	return c, nil
}

func (d *dialer) open(ctx context.Context, network, address string) (net.Conn, error) {
	if d.dial == nil {
		return nil, errors.New("kafka: no dial function configured")
	}
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	c, err := d.dial(ctx, network, address)
	if err != nil || d.tls == nil {
		return c, err
	}
	cfg := d.tls.Clone()
	if cfg.ServerName == "" {
		host, _, _ := net.SplitHostPort(address)
		cfg.ServerName = host
	}
	tc := tls.Client(c, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("tls handshake with %s: %w", address, err)
	}
	return tc, nil
}

// connHook follows the client's connections (dial, TLS, ApiVersions and
// SASL): a broker that cannot be reached or refuses the login shows
// otherwise only as records waiting until their deadline.
type connHook struct {
	mu     sync.Mutex
	last   error     // the last connection's error, nil after a success
	lastAt time.Time // when it was made
	fails  int       // connections failed in a row
	ch     chan struct{}
}

var _ kgo.HookBrokerConnect = (*connHook)(nil)

func newConnHook() *connHook { return &connHook{ch: make(chan struct{})} }

// OnBrokerConnect implements kgo.HookBrokerConnect.
func (h *connHook) OnBrokerConnect(meta kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lastAt = time.Now()
	if err == nil {
		h.last, h.fails = nil, 0
	} else {
		h.last = fmt.Errorf("%s: %w", net.JoinHostPort(meta.Host, strconv.Itoa(int(meta.Port))), err)
		h.fails++
	}
	close(h.ch)
	h.ch = make(chan struct{})
}

// changed is closed at the next connection made or failed.
func (h *connHook) changed() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ch
}

// failedSince is the last connection's error when it happened at or after
// t and at least n connections failed in a row (every bootstrap broker
// tried, say).
func (h *connHook) failedSince(t time.Time, n int) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.last != nil && !h.lastAt.Before(t) && h.fails >= n {
		return h.last
	}
	return nil
}

// Forget implements delivery.TransportForgetter: the endpoint changed or
// is gone; a client no other endpoint uses is closed once idle.
func (t *Transport) Forget(endpointID string) {
	t.configs.Forget(endpointID)
	t.pool.Forget(endpointID)
}

// Clients is how many producer clients are open (tests, metrics).
func (t *Transport) Clients() int { return t.pool.Len() }

// Close implements delivery.TransportCloser: every client is closed (a
// record still in a sent request is given up) and later attempts fail.
func (t *Transport) Close() error {
	t.pool.Close()
	return nil
}

// recordedHeaders is what an attempt records: the record's headers (custom
// ones masked), its topic and key.
func recordedHeaders(r *kgo.Record, custom map[string]string) map[string]string {
	out := make(map[string]string, len(r.Headers)+2)
	for _, h := range r.Headers {
		if _, ok := custom[h.Key]; ok {
			out[h.Key] = kinehook.MaskHeaderValue(string(h.Value))
			continue
		}
		out[h.Key] = string(h.Value)
	}
	out["Kafka-Topic"] = r.Topic
	out["Kafka-Key"] = string(r.Key)
	return out
}

// classify words a failed produce. connErr is a connection that failed
// during the attempt: brokers that cannot be reached or refuse the login
// show only as a record given up, so it says what the failure was.
func classify(ctx context.Context, err error, cfg Config, connErr error) (delivery.Outcome, string) {
	brokers := strings.Join(cfg.Brokers, ",")
	var ke *kerr.Error
	if connErr != nil && !errors.As(err, &ke) {
		var de *dialError
		if isSASL(connErr) {
			return delivery.OutcomeRefused, fmt.Sprintf("kafka: %s refused the SASL %s login: %v", brokers, cfg.SASL, connErr)
		}
		if cfg.SASL != SASLNone && !errors.As(connErr, &de) {
			// Kafka answers a wrong password with SASL_AUTHENTICATION_FAILED;
			// some brokers (and kfake) just close the connection.
			return delivery.OutcomeRefused, fmt.Sprintf("kafka: %s refused the SASL %s login (closed the connection after it opened: wrong username or password?): %v", brokers, cfg.SASL, connErr)
		}
		if errors.As(connErr, &ke) {
			return delivery.OutcomeRefused, fmt.Sprintf("kafka: %s refused the connection: %v", brokers, connErr)
		}
		return delivery.OutcomeNetworkError, fmt.Sprintf("kafka: cannot connect to %s: %v", brokers, connErr)
	}
	switch {
	case errors.Is(err, delivery.ErrPoolClosed) || errors.Is(err, kgo.ErrClientClosed):
		return delivery.OutcomeNetworkError, fmt.Sprintf("kafka: producer to %s closed: %v", brokers, err)
	case errors.As(err, &ke):
		msg := fmt.Sprintf("kafka: %s refused the record for topic %q: %v", brokers, cfg.Topic, err)
		if isSASL(err) {
			msg = fmt.Sprintf("kafka: %s refused the SASL %s login: %v", brokers, cfg.SASL, err)
		}
		return delivery.OutcomeRefused, msg
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, kgo.ErrRecordTimeout) || (ctx.Err() != nil && errors.Is(err, context.Canceled)):
		return delivery.OutcomeTimeout, fmt.Sprintf("timeout: no acknowledgement from %s for topic %q within the request timeout", brokers, cfg.Topic)
	}
	if isSASL(err) {
		return delivery.OutcomeRefused, fmt.Sprintf("kafka: %s refused the SASL %s login: %v", brokers, cfg.SASL, err)
	}
	return delivery.OutcomeNetworkError, fmt.Sprintf("kafka: produce to %s: %v", brokers, err)
}

// isSASL tells a refused login.
func isSASL(err error) bool {
	return errors.Is(err, kerr.SaslAuthenticationFailed) || errors.Is(err, kerr.IllegalSaslState) ||
		errors.Is(err, kerr.UnsupportedSaslMechanism) || strings.Contains(strings.ToLower(err.Error()), "sasl")
}
