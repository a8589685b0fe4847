// Package kafka is the Kafka ingest source: a member of a consumer group
// (franz-go) reading one topic, committing a batch's offsets after
// kinehook's commit (auto-commit is off).
//
// Order: Kafka keeps order within a partition, so producers key records by
// resource (the video or live event id) and one resource stays in one
// partition. Records are polled in partition order, and a restarted member
// resumes from the committed offsets, so what a killed kinehook committed
// to its store but not to Kafka is read again, in order, as duplicates.
// Rebalances wait for the batch in hand (BlockRebalanceOnPoll), so a
// partition never moves while its records are being committed.
//
// This package is tested against kfake, franz-go's in-process Kafka
// cluster (no Kafka broker can be installed on the build machines); it
// speaks the Kafka protocol, but it is not Apache Kafka.
package kafka

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/kinehook/kinehook/source"
)

// DefaultKeyHeader is the record header that carries an idempotency key.
const DefaultKeyHeader = "Idempotency-Key"

// DefaultGroup is the consumer group when the URL names none.
const DefaultGroup = "kinehook"

// Consumer is one member of a consumer group.
type Consumer struct {
	cl        *kgo.Client
	keyHeader string
	log       *slog.Logger
	// polled: a poll's records are in hand (the rebalance waits for Ack).
	polled bool
}

// Options returns the client options of a spec: seed brokers from the
// URL's host list (kafka://h1:9092,h2:9092), TLS for kafka+tls://, SASL
// (sasl_mechanism=PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 with the URL's
// user and password).
func Options(spec source.Spec) ([]kgo.Opt, error) {
	brokers := strings.Split(spec.URL.Host, ",")
	opts := []kgo.Opt{kgo.SeedBrokers(brokers...), kgo.ClientID("kinehook-source")}
	if spec.URL.Scheme == "kafka+tls" {
		opts = append(opts, kgo.DialTLSConfig(&tls.Config{MinVersion: tls.VersionTLS12}))
	}
	user, pass := "", ""
	if spec.URL.User != nil {
		user = spec.URL.User.Username()
		pass, _ = spec.URL.User.Password()
	}
	switch m := strings.ToUpper(spec.Param("sasl_mechanism", "")); m {
	case "":
		if user != "" {
			return nil, errors.New("the URL has a user but no sasl_mechanism (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)")
		}
	case "PLAIN":
		opts = append(opts, kgo.SASL(plain.Auth{User: user, Pass: pass}.AsMechanism()))
	case "SCRAM-SHA-256":
		opts = append(opts, kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha256Mechanism()))
	case "SCRAM-SHA-512":
		opts = append(opts, kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()))
	default:
		return nil, fmt.Errorf("sasl_mechanism=%q is not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", m)
	}
	return opts, nil
}

// Open joins the spec's group= (default "kinehook") on topic=, reading a
// partition from its start when the group has no offset for it.
func Open(ctx context.Context, spec source.Spec, log *slog.Logger) (*Consumer, error) {
	if log == nil {
		log = slog.Default()
	}
	opts, err := Options(spec)
	if err != nil {
		return nil, fmt.Errorf("kafka source %s: %w", spec.Name, err)
	}
	opts = append(opts,
		kgo.ConsumerGroup(spec.Param("group", DefaultGroup)),
		kgo.ConsumeTopics(spec.Param("topic", "")),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka source %s: %w", spec.Name, err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := cl.Ping(pctx); err != nil {
		cl.Close()
		return nil, fmt.Errorf("kafka source %s at %s: %w", spec.Name, spec.Redacted(), err)
	}
	return &Consumer{cl: cl, keyHeader: spec.Param("key_header", DefaultKeyHeader), log: log.With("source", spec.Name)}, nil
}

// Fetch polls up to max records, waiting up to 5 s.
func (c *Consumer) Fetch(ctx context.Context, max int) ([]source.Message, error) {
	if c.polled {
		c.cl.AllowRebalance() // the previous batch was not acknowledged (a failed commit)
		c.polled = false
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	fs := c.cl.PollRecords(pctx, max)
	cancel()
	c.polled = true
	var errs []error
	fs.EachError(func(topic string, p int32, err error) {
		if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			errs = append(errs, fmt.Errorf("%s/%d: %w", topic, p, err))
		}
	})
	recs := fs.Records()
	if len(recs) == 0 {
		c.cl.AllowRebalance()
		c.polled = false
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if len(errs) > 0 {
			return nil, fmt.Errorf("kafka: poll: %w", errors.Join(errs...))
		}
		return nil, nil
	}
	for _, err := range errs {
		c.log.Warn("kafka source: fetch error beside records", "err", err)
	}
	out := make([]source.Message, len(recs))
	for i, r := range recs {
		m := source.Message{ID: r.Topic + "/" + strconv.Itoa(int(r.Partition)) + "/" + strconv.FormatInt(r.Offset, 10), Body: r.Value, Handle: r}
		for _, h := range r.Headers {
			if h.Key == c.keyHeader {
				m.Key = string(h.Value)
			}
		}
		out[i] = m
	}
	return out, nil
}

// Ack commits the batch's offsets (synchronously) and lets a waiting
// rebalance go.
func (c *Consumer) Ack(ctx context.Context, msgs []source.Message) error {
	recs := make([]*kgo.Record, len(msgs))
	for i, m := range msgs {
		recs[i] = m.Handle.(*kgo.Record)
	}
	err := c.cl.CommitRecords(ctx, recs...)
	c.cl.AllowRebalance()
	c.polled = false
	if err != nil {
		return fmt.Errorf("kafka: commit offsets: %w", err)
	}
	return nil
}

// Close leaves the group and closes the client.
func (c *Consumer) Close() error {
	// Leaving the group is a rebalance, which BlockRebalanceOnPoll would
	// hold; records in hand go back unacknowledged. Bounded: the group's
	// session timeout removes a member that could not say goodbye.
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.cl.CloseAllowingRebalance()
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		c.log.Warn("kafka source: leaving the consumer group timed out")
	}
	return nil
}
