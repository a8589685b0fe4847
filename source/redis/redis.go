// Package redis is the Redis Streams ingest source: it reads a stream
// through a consumer group (creating the group, from the stream's start,
// when it does not exist) and acknowledges entries (XACK) after kinehook's
// commit.
//
// Order across a restart: entries a killed kinehook read but never
// acknowledged stay in the consumer's pending list. On start the source
// reads that list first (XREADGROUP from id 0), in id order, and only then
// new entries (id >): the stream's order holds. It needs a stable consumer
// name, which is why it has one by default ("kinehook").
package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/kinehook/kinehook/source"
)

// Defaults of a Redis source's parameters.
const (
	DefaultGroup     = "kinehook"
	DefaultConsumer  = "kinehook"
	DefaultBodyField = "body"
	DefaultKeyField  = "idempotency_key"
)

// Consumer reads one stream through one consumer of a group.
type Consumer struct {
	rdb                     *goredis.Client
	stream, group, consumer string
	bodyField, keyField     string
	log                     *slog.Logger
	pending                 bool   // still reading the consumer's pending list
	after                   string // last pending id read
	block                   time.Duration
}

// Open connects to the spec's server and makes sure its group exists.
func Open(ctx context.Context, spec source.Spec, log *slog.Logger) (*Consumer, error) {
	if log == nil {
		log = slog.Default()
	}
	opts, err := goredis.ParseURL(spec.URL.String())
	if err != nil {
		return nil, fmt.Errorf("redis source %s: %w", spec.Name, err)
	}
	opts.ClientName = "kinehook-source"
	c := &Consumer{
		rdb:    goredis.NewClient(opts),
		stream: spec.Param("stream", ""), group: spec.Param("group", DefaultGroup), consumer: spec.Param("consumer", DefaultConsumer),
		bodyField: spec.Param("body_field", DefaultBodyField), keyField: spec.Param("key_field", DefaultKeyField),
		log: log.With("source", spec.Name), pending: true, after: "0", block: 5 * time.Second,
	}
	err = c.rdb.XGroupCreateMkStream(ctx, c.stream, c.group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		_ = c.rdb.Close()
		return nil, fmt.Errorf("redis source %s: create group %s on stream %s at %s: %w", spec.Name, c.group, c.stream, spec.Redacted(), err)
	}
	return c, nil
}

// Fetch reads the consumer's pending entries first, then new ones
// (blocking up to 5 s).
func (c *Consumer) Fetch(ctx context.Context, max int) ([]source.Message, error) {
	for c.pending {
		res, err := c.rdb.XReadGroup(ctx, &goredis.XReadGroupArgs{Group: c.group, Consumer: c.consumer, Streams: []string{c.stream, c.after}, Count: int64(max)}).Result()
		if err != nil {
			return nil, fmt.Errorf("redis: read pending entries: %w", err)
		}
		var entries []goredis.XMessage
		if len(res) > 0 {
			entries = res[0].Messages
		}
		if len(entries) == 0 {
			c.pending = false
			break
		}
		c.after = entries[len(entries)-1].ID
		if out := c.messages(ctx, entries); len(out) > 0 {
			return out, nil
		}
	}
	res, err := c.rdb.XReadGroup(ctx, &goredis.XReadGroupArgs{Group: c.group, Consumer: c.consumer, Streams: []string{c.stream, ">"}, Count: int64(max), Block: c.block}).Result()
	if errors.Is(err, goredis.Nil) {
		return nil, nil
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if strings.HasPrefix(err.Error(), "NOGROUP") {
			// The stream or group was removed: make them again, from the start.
			if cerr := c.rdb.XGroupCreateMkStream(ctx, c.stream, c.group, "0").Err(); cerr != nil && !strings.HasPrefix(cerr.Error(), "BUSYGROUP") {
				return nil, fmt.Errorf("redis: group %s is gone and cannot be made again: %w", c.group, cerr)
			}
		}
		return nil, fmt.Errorf("redis: read new entries: %w", err)
	}
	if len(res) == 0 {
		return nil, nil
	}
	return c.messages(ctx, res[0].Messages), nil
}

// messages converts entries; a pending entry deleted from the stream (no
// fields left) is acknowledged and skipped: there is nothing to publish.
func (c *Consumer) messages(ctx context.Context, entries []goredis.XMessage) []source.Message {
	out := make([]source.Message, 0, len(entries))
	var gone []string
	for _, e := range entries {
		if e.Values == nil {
			gone = append(gone, e.ID)
			continue
		}
		m := source.Message{ID: c.stream + ":" + e.ID, Handle: e.ID}
		if k, ok := e.Values[c.keyField].(string); ok {
			m.Key = k
		}
		if b, ok := e.Values[c.bodyField].(string); ok {
			m.Body = []byte(b)
		} else {
			m.Missing = fmt.Sprintf("the stream entry has no %q field (fields: %s)", c.bodyField, fieldNames(e.Values))
			m.Body, _ = json.Marshal(e.Values) // what the list shows of it
		}
		out = append(out, m)
	}
	if len(gone) > 0 {
		if err := c.rdb.XAck(ctx, c.stream, c.group, gone...).Err(); err != nil {
			c.log.Warn("redis source: acknowledging pending entries deleted from the stream", "err", err)
		}
	}
	return out
}

func fieldNames(v map[string]any) string {
	var names []string
	for k := range v {
		names = append(names, k)
	}
	if len(names) == 0 {
		return "none"
	}
	if len(names) > 10 {
		names = append(names[:10], "...")
	}
	return strings.Join(names, ", ")
}

// Ack acknowledges the entries with one XACK.
func (c *Consumer) Ack(ctx context.Context, msgs []source.Message) error {
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.Handle.(string)
	}
	if err := c.rdb.XAck(ctx, c.stream, c.group, ids...).Err(); err != nil {
		return fmt.Errorf("redis: xack: %w", err)
	}
	return nil
}

// Close closes the connection pool.
func (c *Consumer) Close() error { return c.rdb.Close() }
