// Package rabbitmq is the RabbitMQ ingest source: it consumes one queue
// with manual acknowledgements and acknowledges each batch (one multiple
// ack) after kinehook's commit.
//
// Order: the source is the queue's exclusive consumer, so one kinehook
// consumes a queue at a time (another instance given the same source waits
// and takes over when the first goes away). RabbitMQ puts the messages a
// killed consumer left unacknowledged back at their place in the queue,
// so the next consumer takes them again before the newer ones.
//
// A message's identity is its AMQP message_id: set it when publishing, and
// a message redelivered after a crash is a duplicate, not a second event.
// Without one (and without an Idempotency-Key header) RabbitMQ gives no
// stable identity, and a message redelivered after a crash between
// kinehook's commit and its ack is published again.
package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/kinehook/kinehook/source"
)

// DefaultKeyHeader is the header that carries a message's idempotency key.
const DefaultKeyHeader = "Idempotency-Key"

// Consumer consumes one queue.
type Consumer struct {
	url, queue, keyHeader, tag string
	prefetch                   int
	log                        *slog.Logger
	conn                       *amqp.Connection
	ch                         *amqp.Channel
	deliveries                 <-chan amqp.Delivery
}

// Open connects and starts consuming the spec's queue=, which must exist.
func Open(ctx context.Context, spec source.Spec, log *slog.Logger) (*Consumer, error) {
	if log == nil {
		log = slog.Default()
	}
	batch := spec.Batch
	if batch <= 0 {
		batch = source.DefaultBatch
	}
	c := &Consumer{url: spec.URL.String(), queue: spec.Param("queue", ""), keyHeader: spec.Param("key_header", DefaultKeyHeader),
		tag: "kinehook-" + spec.Name, prefetch: 2 * batch, log: log.With("source", spec.Name)}
	switch err := c.connect(); {
	case errors.Is(err, errBusy):
		c.log.Info("rabbitmq source: " + err.Error())
	case err != nil:
		return nil, fmt.Errorf("rabbitmq source %s at %s: %w", spec.Name, spec.Redacted(), err)
	}
	return c, nil
}

// errBusy: another consumer holds the queue exclusively.
var errBusy = errors.New("another consumer holds the queue exclusively (another kinehook instance runs this source); waiting")

func (c *Consumer) connect() error {
	conn, err := amqp.DialConfig(c.url, amqp.Config{Heartbeat: 10 * time.Second, Properties: amqp.Table{"connection_name": c.tag}})
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	ch, err := conn.Channel()
	if err != nil {
		_ = conn.Close()
		return fmt.Errorf("channel: %w", err)
	}
	if _, err := ch.QueueDeclarePassive(c.queue, false, false, false, false, nil); err != nil {
		_ = conn.Close()
		return fmt.Errorf("queue %q: %w", c.queue, err)
	}
	if err := ch.Qos(c.prefetch, 0, false); err != nil {
		_ = conn.Close()
		return fmt.Errorf("qos: %w", err)
	}
	d, err := ch.Consume(c.queue, c.tag, false, true, false, false, nil)
	if err != nil {
		_ = conn.Close()
		var ae *amqp.Error
		if errors.As(err, &ae) && ae.Code == amqp.AccessRefused {
			return errBusy
		}
		return fmt.Errorf("consume %q: %w", c.queue, err)
	}
	c.conn, c.ch, c.deliveries = conn, ch, d
	return nil
}

// Fetch waits up to 5 s for a first delivery, then takes what else has
// arrived, up to max. A lost connection is dialled again.
func (c *Consumer) Fetch(ctx context.Context, max int) ([]source.Message, error) {
	if c.deliveries == nil {
		if err := c.connect(); err != nil {
			return nil, err
		}
		c.log.Info("rabbitmq source: consuming", "queue", c.queue)
	}
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	var out []source.Message
	select {
	case d, ok := <-c.deliveries:
		if !ok {
			return nil, c.lost()
		}
		out = append(out, c.message(d))
	case <-t.C:
		return nil, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	for len(out) < max {
		select {
		case d, ok := <-c.deliveries:
			if !ok {
				// The batch in hand goes back to the queue with the channel.
				return nil, c.lost()
			}
			out = append(out, c.message(d))
		default:
			return out, nil
		}
	}
	return out, nil
}

// lost forgets a closed connection (Fetch dials again).
func (c *Consumer) lost() error {
	_ = c.conn.Close()
	c.conn, c.ch, c.deliveries = nil, nil, nil
	return errors.New("rabbitmq: connection lost; its unacknowledged messages go back to the queue")
}

func (c *Consumer) message(d amqp.Delivery) source.Message {
	m := source.Message{Body: d.Body, Handle: d}
	if d.MessageId != "" {
		m.ID = c.queue + ":" + d.MessageId
	}
	switch v := d.Headers[c.keyHeader].(type) {
	case string:
		m.Key = v
	case []byte:
		m.Key = string(v)
	}
	return m
}

// Ack acknowledges the batch with one multiple ack of its last delivery.
func (c *Consumer) Ack(_ context.Context, msgs []source.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	d := msgs[len(msgs)-1].Handle.(amqp.Delivery)
	if err := d.Ack(true); err != nil {
		return fmt.Errorf("rabbitmq: ack: %w", err)
	}
	return nil
}

// Close closes the connection: unacknowledged messages go back to the queue.
func (c *Consumer) Close() error {
	if c.conn != nil {
		return c.conn.Close()
	}
	return nil
}
