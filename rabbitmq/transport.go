package rabbitmq

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/delivery"
)

// Defaults of Options.
const (
	DefaultMaxConns       = 256
	DefaultMaxChannels    = 32
	DefaultIdleTimeout    = 5 * time.Minute
	DefaultConnectTimeout = 10 * time.Second
)

// Options configures a Transport.
type Options struct {
	// Dial opens every connection to a broker (after a broker restart
	// too). It is where the caller puts the SSRF guard
	// (netguard.NewDialContext). Required.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// MaxConns bounds the connections kept, one per (url, credentials)
	// (0: DefaultMaxConns). At the bound the least recently used idle one
	// is closed; when none is idle the attempt fails, to be retried.
	MaxConns int
	// MaxChannels bounds the confirm-mode channels of one connection, one
	// per publish in flight (0: DefaultMaxChannels); an attempt beyond it
	// waits for a free one within its deadline.
	MaxChannels int
	// IdleTimeout closes a connection no delivery used for that long
	// (0: DefaultIdleTimeout).
	IdleTimeout time.Duration
	// ConnectTimeout bounds connecting, TLS and the AMQP handshake
	// (0: DefaultConnectTimeout). An attempt waits for it within its own
	// deadline only; the connection is kept for the next one.
	ConnectTimeout time.Duration
	// Name is the connection name the broker shows (empty: "kinehook").
	Name string
}

// Transport publishes each message to its endpoint's exchange and waits for
// the broker's confirm. Connections are shared by every endpoint with the
// same url and credentials, reused across deliveries with a bounded pool
// of confirm-mode channels, dialled again after the broker went away, and
// closed when idle, when no endpoint uses them any more (Forget), or by
// Close.
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
	url, username, password string
}

// cachedConfig is an endpoint's parsed config and its connection's key.
type cachedConfig struct {
	cfg Config
	key connKey
}

// conn is one connection with its pool of confirm-mode channels.
type conn struct {
	ac    *amqp.Connection
	slots chan struct{} // one token per channel that may be open
	// blocked is the reason the broker gave for blocking publishers (a
	// resource alarm), "" while it does not.
	blocked atomic.Pointer[string]

	mu      sync.Mutex
	idle    []*channel // confirm-mode channels free for a publish
	dropped bool       // the pool let the connection go: keep no channel
}

// channel is a confirm-mode channel with the notifications one publish
// reads: the message returned as unroutable, the channel's closing error.
type channel struct {
	ch      *amqp.Channel
	returns chan amqp.Return
	closed  chan *amqp.Error
}

// New returns the RabbitMQ transport.
func New(o Options) *Transport {
	if o.MaxConns <= 0 {
		o.MaxConns = DefaultMaxConns
	}
	if o.MaxChannels <= 0 {
		o.MaxChannels = DefaultMaxChannels
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.Name == "" {
		o.Name = "kinehook"
	}
	t := &Transport{o: o}
	t.pool = delivery.NewPool(delivery.PoolOptions[connKey, *conn]{
		Open:        t.connect,
		Close:       closeConn,
		Dead:        func(c *conn) bool { return c.ac.IsClosed() }, // the broker went away (its channels with it): dial again
		Max:         o.MaxConns,
		IdleTimeout: o.IdleTimeout,
		FullError:   "rabbitmq: %d broker connections in use, the most this server keeps",
	})
	return t
}

// Send publishes m to the endpoint's exchange and waits for the broker's
// confirm within ctx: an ack is a success; a nack, an unroutable message
// (returned: it is published mandatory), a refused login or a channel the
// broker closed (no such exchange, access refused) is OutcomeRefused; a
// broker that cannot be reached or dropped the connection is a network
// error; no confirm in time is a timeout. Err carries the broker's words.
func (t *Transport) Send(ctx context.Context, m delivery.Message) delivery.Result {
	start := time.Now()
	cc, err := t.configs.Get(m.Endpoint, parseEndpoint)
	if err != nil {
		return delivery.Result{Outcome: delivery.OutcomeNetworkError, Err: err.Error(), Duration: time.Since(start)}
	}
	headers := make(amqp.Table, 3+len(m.Endpoint.Headers))
	for k, v := range m.Endpoint.Headers {
		headers[k] = v
	}
	headers[kinehook.HeaderID] = m.ID
	headers[kinehook.HeaderTimestamp] = m.Timestamp
	headers[kinehook.HeaderSignature] = m.Signature
	pub := amqp.Publishing{
		Headers:      headers,
		ContentType:  "application/json",
		DeliveryMode: amqp.Persistent,
		MessageId:    m.ID,
		Type:         string(m.EventType),
		AppId:        t.o.Name,
		Body:         m.Body,
	}
	if !m.Now.IsZero() {
		pub.Timestamp = m.Now
	}
	out := delivery.Result{Headers: recordedHeaders(headers, m.Endpoint.Headers, cc.cfg, m.ID)}

	e, err := t.pool.Acquire(ctx, cc.key, m.Endpoint.ID)
	if err != nil {
		out.Outcome, out.Err = classifyConnect(ctx, err, cc.cfg.URL)
		out.Duration = time.Since(start)
		return out
	}
	defer e.Release()
	c := e.Value()
	if r := c.blocked.Load(); r != nil && *r != "" {
		// A publish would wait until the alarm clears: fail now, retried.
		out.Outcome = delivery.OutcomeRefused
		out.Err = fmt.Sprintf("rabbitmq: %s blocks publishers (resource alarm): %s", cc.cfg.URL, *r)
		out.Duration = time.Since(start)
		return out
	}
	ch, err := c.channel(ctx)
	if err != nil {
		out.Outcome, out.Err = classifyConnect(ctx, err, cc.cfg.URL)
		out.Duration = time.Since(start)
		return out
	}
	out.Outcome, out.Err = publish(ctx, ch, cc.cfg, pub)
	out.Duration = time.Since(start)
	if out.Outcome == delivery.OutcomeSuccess {
		out.Response = "confirmed by " + cc.cfg.URL
		c.putChannel(ch)
		return out
	}
	// A channel that failed (closed, or left with a confirm or a return
	// outstanding) serves no other publish.
	c.dropChannel(ch)
	return out
}

// publish sends pub on ch and waits for its confirm (and a return that
// comes before it).
func publish(ctx context.Context, ch *channel, cfg Config, pub amqp.Publishing) (delivery.Outcome, string) {
	dc, err := ch.ch.PublishWithDeferredConfirmWithContext(ctx, cfg.Exchange, cfg.RoutingKey, true, false, pub)
	if err != nil {
		return classifyChannel(ctx, err, ch, cfg)
	}
	acked, err := dc.WaitContext(ctx)
	if err != nil {
		return classifyChannel(ctx, err, ch, cfg)
	}
	// The broker sends basic.return before the confirm; the client hands
	// it over before it reads the confirm, so it is here by now.
	select {
	case r, ok := <-ch.returns:
		if !ok { // closed with the channel: its error says why
			break
		}
		return delivery.OutcomeRefused, fmt.Sprintf("rabbitmq: unroutable: %s returned the message published to %s with routing key %q: %d %s (no queue bound)",
			cfg.URL, exchangeName(cfg.Exchange), cfg.RoutingKey, r.ReplyCode, r.ReplyText)
	default:
	}
	if !acked {
		select {
		case e, ok := <-ch.closed:
			if ok && e != nil {
				return channelError(e, cfg)
			}
		case <-time.After(50 * time.Millisecond):
		}
		return delivery.OutcomeRefused, fmt.Sprintf("rabbitmq: %s nacked the message published to %s with routing key %q (the broker could not take it)",
			cfg.URL, exchangeName(cfg.Exchange), cfg.RoutingKey)
	}
	return delivery.OutcomeSuccess, ""
}

func exchangeName(x string) string {
	if x == "" {
		return "the default exchange"
	}
	return fmt.Sprintf("exchange %q", x)
}

// parseEndpoint parses an endpoint's config (for the EndpointCache).
func parseEndpoint(ep *kinehook.Endpoint) (cachedConfig, error) {
	cfg, err := ParseConfig(ep.Config)
	if err != nil {
		return cachedConfig{}, fmt.Errorf("rabbitmq: endpoint config: %w", err)
	}
	return cachedConfig{cfg: cfg, key: connKey{url: cfg.URL, username: ep.Credentials[CredentialUsername],
		password: ep.Credentials[CredentialPassword]}}, nil
}

// channel takes a free confirm-mode channel of c, or opens one when fewer
// than MaxChannels are open, or waits for one within ctx.
func (c *conn) channel(ctx context.Context) (*channel, error) {
	select {
	case c.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	c.mu.Lock()
	if n := len(c.idle); n > 0 {
		ch := c.idle[n-1]
		c.idle = c.idle[:n-1]
		c.mu.Unlock()
		if !ch.ch.IsClosed() {
			return ch, nil
		}
	} else {
		c.mu.Unlock()
	}
	ch, err := openChannel(c.ac)
	if err != nil {
		<-c.slots
		return nil, err
	}
	return ch, nil
}

// openChannel opens a channel in confirm mode with its notifications.
func openChannel(ac *amqp.Connection) (*channel, error) {
	ch, err := ac.Channel()
	if err != nil {
		return nil, err
	}
	if err := ch.Confirm(false); err != nil {
		_ = ch.Close()
		return nil, err
	}
	out := &channel{ch: ch, returns: make(chan amqp.Return, 1), closed: make(chan *amqp.Error, 1)}
	ch.NotifyReturn(out.returns)
	ch.NotifyClose(out.closed)
	return out, nil
}

// putChannel gives ch back to c's pool.
func (c *conn) putChannel(ch *channel) {
	c.mu.Lock()
	keep := !c.dropped
	if keep {
		c.idle = append(c.idle, ch)
	}
	c.mu.Unlock()
	<-c.slots
	if !keep {
		_ = ch.ch.Close()
	}
}

// dropChannel closes ch and frees its place.
func (c *conn) dropChannel(ch *channel) {
	go func() { _ = ch.ch.Close() }() // a dead connection may not answer
	<-c.slots
}

// closeConn closes c's connection, its channels with it (the pool's Close).
func closeConn(c *conn) {
	c.mu.Lock()
	c.dropped, c.idle = true, nil
	c.mu.Unlock()
	_ = c.ac.Close()
}

// connect opens the connection of key (the pool's Open) and follows the
// broker's blocking of publishers.
func (t *Transport) connect(key connKey) (*conn, error) {
	ac, err := t.dial(key)
	if err != nil {
		return nil, err
	}
	c := &conn{ac: ac, slots: make(chan struct{}, t.o.MaxChannels)}
	blocking := ac.NotifyBlocked(make(chan amqp.Blocking, 4))
	go func() { // ends when the connection closes (the client closes the channel)
		for b := range blocking {
			r := ""
			if b.Active {
				r = b.Reason
				if r == "" {
					r = "blocked"
				}
			}
			c.blocked.Store(&r)
		}
	}()
	return c, nil
}

// dial opens an AMQP connection to key through the guarded dialer, with
// the credentials given (the client's defaults, guest/guest, without).
func (t *Transport) dial(key connKey) (*amqp.Connection, error) {
	if t.o.Dial == nil {
		return nil, errors.New("rabbitmq: no dial function configured")
	}
	_, vhost, err := normalizeURL(key.url)
	if err != nil {
		return nil, err
	}
	cfg := amqp.Config{
		Vhost:      vhost,
		Properties: amqp.NewConnectionProperties(),
		Dial: func(network, addr string) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(context.Background(), t.o.ConnectTimeout)
			defer cancel()
			nc, err := t.o.Dial(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			// The handshake is bounded too; amqp091 clears the deadline
			// once the connection is open.
			if err := nc.SetDeadline(time.Now().Add(t.o.ConnectTimeout)); err != nil {
				nc.Close()
				return nil, err
			}
			return &writeBounded{Conn: nc, limit: t.o.ConnectTimeout}, nil
		},
	}
	cfg.Properties.SetClientConnectionName(t.o.Name)
	if key.username != "" || key.password != "" {
		cfg.SASL = []amqp.Authentication{&amqp.PlainAuth{Username: key.username, Password: key.password}}
	}
	if u, err := amqp.ParseURI(key.url); err == nil && u.Scheme == "amqps" {
		cfg.TLSClientConfig = &tls.Config{ServerName: u.Host, MinVersion: tls.VersionTLS12}
	}
	return amqp.DialConfig(key.url, cfg)
}

// writeBounded bounds every write: amqp091 does not stop a publish whose
// write blocks (a broker that stopped reading), so a write that takes
// longer than limit fails and the connection with it, dialled again at the
// next attempt.
type writeBounded struct {
	net.Conn
	limit time.Duration
}

// Write implements net.Conn.
func (w *writeBounded) Write(b []byte) (int, error) {
	if err := w.Conn.SetWriteDeadline(time.Now().Add(w.limit)); err != nil {
		return 0, err
	}
	return w.Conn.Write(b)
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
// message id, exchange and routing key, and custom headers masked.
func recordedHeaders(h amqp.Table, custom map[string]string, cfg Config, id string) map[string]string {
	out := make(map[string]string, len(h)+4)
	for k, v := range h {
		s, _ := v.(string)
		if _, ok := custom[k]; ok {
			out[k] = kinehook.MaskHeaderValue(s)
			continue
		}
		out[k] = s
	}
	out["AMQP-Message-Id"] = id
	out["AMQP-Exchange"] = cfg.Exchange
	out["AMQP-Routing-Key"] = cfg.RoutingKey
	out["Content-Type"] = "application/json"
	return out
}

// classifyConnect words a failed connection or channel: a refused login or
// vhost is the broker's refusal, everything else (refused, blocked,
// unreachable) a network error; a deadline first is a timeout.
func classifyConnect(ctx context.Context, err error, url string) (delivery.Outcome, string) {
	var ae *amqp.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || (ctx.Err() != nil && errors.Is(err, context.Canceled)):
		return delivery.OutcomeTimeout, fmt.Sprintf("timeout: not connected to %s within the request timeout", url)
	case errors.Is(err, amqp.ErrCredentials) || errors.Is(err, amqp.ErrSASL):
		return delivery.OutcomeRefused, fmt.Sprintf("rabbitmq: %s refused the credentials: %v", url, err)
	case errors.Is(err, amqp.ErrVhost) || (errors.As(err, &ae) && ae.Code == amqp.NotAllowed):
		return delivery.OutcomeRefused, fmt.Sprintf("rabbitmq: %s refused access to vhost %q: %v", url, Vhost(url), err)
	case errors.As(err, &ae) && ae.Code == amqp.AccessRefused:
		return delivery.OutcomeRefused, fmt.Sprintf("rabbitmq: %s refused the connection: %v", url, err)
	case errors.Is(err, delivery.ErrPoolClosed):
		return delivery.OutcomeNetworkError, "rabbitmq: " + err.Error()
	}
	return delivery.OutcomeNetworkError, fmt.Sprintf("rabbitmq: cannot connect to %s: %v", url, err)
}

// classifyChannel words a failed publish or confirm: the channel's own
// closing error from the broker (no such exchange, access refused) is its
// refusal; a lost connection a network error; the deadline a timeout.
func classifyChannel(ctx context.Context, err error, ch *channel, cfg Config) (delivery.Outcome, string) {
	if errors.Is(err, context.DeadlineExceeded) || (ctx.Err() != nil && errors.Is(err, context.Canceled)) {
		return delivery.OutcomeTimeout, fmt.Sprintf("timeout: no confirm from %s for the message published to %s with routing key %q within the request timeout",
			cfg.URL, exchangeName(cfg.Exchange), cfg.RoutingKey)
	}
	select {
	case e, ok := <-ch.closed:
		if ok && e != nil {
			return channelError(e, cfg)
		}
	case <-time.After(50 * time.Millisecond):
	}
	var ae *amqp.Error
	if errors.As(err, &ae) && !ae.Server {
		return delivery.OutcomeNetworkError, fmt.Sprintf("rabbitmq: publish to %s: %v", cfg.URL, err)
	}
	if ae != nil {
		return channelError(ae, cfg)
	}
	return delivery.OutcomeNetworkError, fmt.Sprintf("rabbitmq: publish to %s: %v", cfg.URL, err)
}

// channelError words the error a channel or connection closed with: the
// broker's (a channel exception, a forced close) or the network's.
func channelError(e *amqp.Error, cfg Config) (delivery.Outcome, string) {
	if e.Code == amqp.ConnectionForced || !e.Server || e.Code == amqp.FrameError {
		return delivery.OutcomeNetworkError, fmt.Sprintf("rabbitmq: connection to %s lost: %v", cfg.URL, e)
	}
	return delivery.OutcomeRefused, fmt.Sprintf("rabbitmq: %s refused the message published to %s with routing key %q: %v",
		cfg.URL, exchangeName(cfg.Exchange), cfg.RoutingKey, e)
}
