// Package nats is the NATS JetStream ingest source: it takes events from a
// durable pull consumer of a stream (creating it when it does not exist)
// and acknowledges each message after kinehook's commit.
//
// Order across a restart: JetStream redelivers a message left
// unacknowledged (kinehook was killed before its commit) only once the
// consumer's ack_wait has passed, and would meanwhile deliver newer
// messages; and it redelivers pending messages in the order their ack_wait
// runs out, which is not stream order when some were delivered again
// meanwhile (a nak, an ack_wait that ran out while the predecessor lived).
// So on start, when the consumer has messages pending, the source lowers
// the consumer's max_ack_pending to their number (the server then delivers
// nothing new until they come again), collects every one of them, puts
// the consumer's own max_ack_pending back and hands them on sorted by
// stream sequence, before anything newer. The lowered value's original is
// remembered in the consumer's description, which every JetStream server
// version keeps, so a second crash meanwhile does not lose it.
package nats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kinehook/kinehook/source"
)

// DefaultKeyHeader is the header that carries a message's idempotency key.
const DefaultKeyHeader = "Idempotency-Key"

// DefaultAckWait is the ack wait of a consumer the source creates.
const DefaultAckWait = 30 * time.Second

// heldMark ends a consumer's description while the source holds its
// max_ack_pending lowered: " [kinehook held max_ack_pending=N]".
var heldMark = regexp.MustCompile(` \[kinehook held max_ack_pending=(-?[0-9]+)\]$`)

// heldOriginal returns the max_ack_pending a description remembers.
func heldOriginal(cfg jetstream.ConsumerConfig) (int, bool) {
	m := heldMark.FindStringSubmatch(cfg.Description)
	if m == nil {
		return 0, false
	}
	n, err := strconv.Atoi(m[1])
	return n, err == nil
}

// Consumer reads one JetStream consumer.
type Consumer struct {
	nc        *natsgo.Conn
	js        jetstream.JetStream
	cons      jetstream.Consumer
	iter      jetstream.MessagesContext
	stream    string
	keyHeader string
	log       *slog.Logger
	// restoring is set while max_ack_pending is lowered after a crash:
	// the messages pending then (want of them, at stream sequences up to
	// lastDelivered) are collected in pending, the latest delivery of
	// each, and then handed on from queue in stream order.
	restoring     bool
	want          int
	lastDelivered uint64
	pending       map[uint64]jetstream.Msg
	later         []jetstream.Msg // newer messages that came while collecting
	queue         []jetstream.Msg
	orig          int // the consumer's own max_ack_pending
}

// Open connects to the spec's server and binds to its consumer: the
// durable named consumer= (default "kinehook-" + the source's name), made
// on stream= with filter subject=, explicit acks and ack_wait= when it does
// not exist yet.
func Open(ctx context.Context, spec source.Spec, log *slog.Logger) (*Consumer, error) {
	if log == nil {
		log = slog.Default()
	}
	ackWait := DefaultAckWait
	if s := spec.Param("ack_wait", ""); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < time.Second {
			return nil, fmt.Errorf("nats source %s: ack_wait=%q is not a duration of at least 1s", spec.Name, s)
		}
		ackWait = d
	}
	u := *spec.URL
	u.RawQuery = ""
	nc, err := natsgo.Connect(u.String(), natsgo.Name("kinehook source "+spec.Name), natsgo.MaxReconnects(-1), natsgo.ReconnectWait(time.Second))
	if err != nil {
		return nil, fmt.Errorf("nats source %s: connect to %s: %w", spec.Name, spec.Redacted(), err)
	}
	c := &Consumer{nc: nc, stream: spec.Param("stream", ""), keyHeader: spec.Param("key_header", DefaultKeyHeader), log: log.With("source", spec.Name)}
	if err := c.bind(ctx, spec, ackWait); err != nil {
		nc.Close()
		return nil, fmt.Errorf("nats source %s: %w", spec.Name, err)
	}
	return c, nil
}

func (c *Consumer) bind(ctx context.Context, spec source.Spec, ackWait time.Duration) error {
	js, err := jetstream.New(c.nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	c.js = js
	name := spec.Param("consumer", "kinehook-"+consumerSafe(spec.Name))
	cons, err := js.Consumer(ctx, c.stream, name)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		cons, err = js.CreateOrUpdateConsumer(ctx, c.stream, jetstream.ConsumerConfig{
			Durable: name, AckPolicy: jetstream.AckExplicitPolicy, AckWait: ackWait,
			DeliverPolicy: jetstream.DeliverAllPolicy, FilterSubject: spec.Param("subject", ""),
			Description: "kinehook ingest source " + spec.Name,
		})
	}
	if err != nil {
		return fmt.Errorf("consumer %s on stream %s: %w", name, c.stream, err)
	}
	info := cons.CachedInfo()
	if info.Config.AckPolicy != jetstream.AckExplicitPolicy {
		return fmt.Errorf("consumer %s acknowledges %s; kinehook needs explicit acks (ack_policy explicit) to acknowledge after its commit", name, info.Config.AckPolicy)
	}
	if info.Config.DeliverSubject != "" {
		return fmt.Errorf("consumer %s is a push consumer; kinehook needs a pull consumer", name)
	}
	orig, held := heldOriginal(info.Config)
	if !held {
		orig = info.Config.MaxAckPending
	}
	switch {
	case info.NumAckPending > 0:
		// Messages of a killed predecessor: nothing new until they are back.
		cfg := info.Config
		cfg.MaxAckPending = info.NumAckPending
		cfg.Description = heldMark.ReplaceAllString(cfg.Description, "") + fmt.Sprintf(" [kinehook held max_ack_pending=%d]", orig)
		if cons, err = js.UpdateConsumer(ctx, c.stream, cfg); err != nil {
			return fmt.Errorf("consumer %s: hold new messages behind the %d unacknowledged ones: %w", name, info.NumAckPending, err)
		}
		c.restoring, c.want, c.lastDelivered, c.pending, c.orig = true, info.NumAckPending, info.Delivered.Stream, map[uint64]jetstream.Msg{}, orig
		c.log.Info("nats source: collecting the messages left unacknowledged (delivered again after ack_wait) before new ones",
			"pending", info.NumAckPending, "ack_wait", info.Config.AckWait)
	case held:
		if cons, err = c.restore(ctx, info.Config, orig); err != nil {
			return err
		}
	}
	c.cons = cons
	iter, err := cons.Messages(jetstream.PullMaxMessages(2 * source.DefaultBatch))
	if err != nil {
		return fmt.Errorf("consumer %s: pull: %w", name, err)
	}
	c.iter = iter
	return nil
}

// restore puts the consumer's own max_ack_pending back.
func (c *Consumer) restore(ctx context.Context, cfg jetstream.ConsumerConfig, orig int) (jetstream.Consumer, error) {
	cfg.MaxAckPending = orig
	cfg.Description = heldMark.ReplaceAllString(cfg.Description, "")
	cons, err := c.js.UpdateConsumer(ctx, c.stream, cfg)
	if err != nil {
		return nil, fmt.Errorf("consumer %s: restore max_ack_pending %d: %w", cfg.Durable, orig, err)
	}
	return cons, nil
}

// consumerSafe turns a source name into a consumer name (no dots, slashes).
func consumerSafe(s string) string {
	return strings.NewReplacer(".", "_", "/", "_", ":", "_", "*", "_", ">", "_").Replace(s)
}

// Fetch waits up to 5 s for a first message, then takes what else is
// already buffered, up to max. After a crash it first hands on the
// collected pending messages in stream order.
func (c *Consumer) Fetch(ctx context.Context, max int) ([]source.Message, error) {
	if c.restoring {
		if err := c.collect(ctx); err != nil || c.restoring {
			return nil, err
		}
	}
	if len(c.queue) > 0 {
		n := min(max, len(c.queue))
		out := make([]source.Message, n)
		for i, m := range c.queue[:n] {
			out[i] = c.message(m)
		}
		clear(c.queue[:n])
		c.queue = c.queue[n:]
		return out, nil
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	m, err := c.iter.Next(jetstream.NextContext(wctx))
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, nil
		}
		return nil, fmt.Errorf("nats: next message: %w", err)
	}
	out := []source.Message{c.message(m)}
	for len(out) < max {
		m, err := c.iter.Next(jetstream.NextMaxWait(time.Millisecond))
		if err != nil {
			break
		}
		out = append(out, c.message(m))
	}
	return out, nil
}

// collect takes the pending messages as the server delivers them again
// until all want of them are in hand, or until a pause of 5 s finds that
// nothing else is pending (a message removed from the stream meanwhile);
// then finish. It returns after such a pause with restoring still set, so
// that the caller can stop.
func (c *Consumer) collect(ctx context.Context) error {
	for c.restoring {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		m, err := c.iter.Next(jetstream.NextContext(wctx))
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				return fmt.Errorf("nats: next message: %w", err)
			}
			info, err := c.cons.Info(ctx)
			if err != nil {
				return fmt.Errorf("nats: consumer info: %w", err)
			}
			if info.NumAckPending > len(c.pending)+len(c.later) {
				return nil // more to come after their ack_wait
			}
			return c.finish(ctx)
		}
		md, err := m.Metadata()
		switch {
		case err != nil:
			return fmt.Errorf("nats: message metadata: %w", err)
		case md.Sequence.Stream <= c.lastDelivered:
			c.pending[md.Sequence.Stream] = m // the latest delivery: its ack counts
		default:
			c.later = append(c.later, m)
		}
		if len(c.pending) >= c.want {
			return c.finish(ctx)
		}
	}
	return nil
}

// finish queues the collected messages in stream order, then the newer
// ones, and puts the consumer's own max_ack_pending back. A crash from here
// on leaves every unacknowledged message pending again, so the next start
// sorts them the same way.
func (c *Consumer) finish(ctx context.Context) error {
	seqs := slices.Sorted(maps.Keys(c.pending))
	for _, q := range seqs {
		c.queue = append(c.queue, c.pending[q])
	}
	c.queue = append(c.queue, c.later...)
	info, err := c.cons.Info(ctx)
	if err != nil {
		return fmt.Errorf("nats: consumer info: %w", err)
	}
	if c.cons, err = c.restore(ctx, info.Config, c.orig); err != nil {
		return err
	}
	c.restoring, c.pending, c.later = false, nil, nil
	c.log.Info("nats source: the messages left unacknowledged are back; committing them in stream order, then new ones", "messages", len(c.queue))
	return nil
}

func (c *Consumer) message(m jetstream.Msg) source.Message {
	id := ""
	if md, err := m.Metadata(); err == nil {
		id = c.stream + ":" + strconv.FormatUint(md.Sequence.Stream, 10)
	}
	return source.Message{ID: id, Key: m.Headers().Get(c.keyHeader), Body: m.Data(), Handle: m}
}

// Ack acknowledges each message, the last one waiting for the server's
// confirmation (the earlier acks precede it on the connection).
func (c *Consumer) Ack(ctx context.Context, msgs []source.Message) error {
	jms := make([]jetstream.Msg, len(msgs))
	for i, m := range msgs {
		jms[i] = m.Handle.(jetstream.Msg)
	}
	return ackAll(ctx, jms)
}

func ackAll(ctx context.Context, msgs []jetstream.Msg) error {
	for i, jm := range msgs {
		var err error
		if i == len(msgs)-1 {
			err = jm.DoubleAck(ctx)
		} else {
			err = jm.Ack()
		}
		if err != nil {
			return fmt.Errorf("nats: ack: %w", err)
		}
	}
	return nil
}

// Close stops pulling and closes the connection.
func (c *Consumer) Close() error {
	c.iter.Stop()
	c.nc.Close()
	return nil
}
