// Package source takes events from message brokers into kinehook: the part
// every ingest source shares. A broker package (source/nats,
// source/rabbitmq, source/redis, source/kafka) implements Consumer; Runner
// takes batches of messages from it in broker order, publishes them through
// the application layer's PublishEvents (the API's validation, one commit
// per batch), records the invalid ones as rejected inputs, and only then
// acknowledges the batch to the broker. So a message is acknowledged only
// after kinehook's commit (at least once: nothing is lost across a crash),
// an invalid message never blocks the ones behind it, and events are
// accepted in the order of the stream, partition or queue.
//
// A redelivered message is not a second event: it carries an idempotency
// key, its own (a header or field) or one derived from the broker's stable
// identity of the message (DerivedKey).
package source

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/app"
)

// Message is one message taken from a broker.
type Message struct {
	// ID is the broker's stable identity of the message (stream sequence,
	// Redis entry id, topic/partition/offset, AMQP message id), the same on
	// every redelivery; "" when the broker gives none.
	ID string
	// Key is the idempotency key the message carries ("" for none).
	Key string
	// Body is the event as POST /v1/projects/{pid}/events takes it.
	Body []byte
	// Missing, when set, says why the message has no body at all (a Redis
	// entry without the body field): it is rejected with this reason.
	Missing string
	// Handle is the broker's own handle of the message, for Ack.
	Handle any
}

// Consumer is one broker subscription: a JetStream consumer, a RabbitMQ
// queue, a Redis consumer group, a Kafka consumer group.
type Consumer interface {
	// Fetch waits for messages and returns at most max of them in broker
	// order. It may return none when it waited a while (an idle stream);
	// it returns ctx's error once ctx ends.
	Fetch(ctx context.Context, max int) ([]Message, error)
	// Ack acknowledges messages Fetch returned, once kinehook has committed
	// them; msgs is the whole batch of one Fetch, in order.
	Ack(ctx context.Context, msgs []Message) error
	// Close releases the connection.
	Close() error
}

// Publisher accepts events (app.App.PublishEvents).
type Publisher interface {
	PublishEvents(ctx context.Context, projectID string, ins []app.EventInput) ([]app.Outcome, error)
}

// RejectRecorder keeps inputs that were refused (app.App.RecordRejected).
type RejectRecorder interface {
	RecordRejected(ctx context.Context, ins []app.RejectInput) error
}

// Observer counts what sources do (prometheus.Metrics implements it).
type Observer interface {
	// SourceMessages counts n messages of a source by outcome: published,
	// duplicate or rejected.
	SourceMessages(source, outcome string, n int)
	// SourceError counts a failed fetch, publish, record or ack.
	SourceError(source, op string)
}

// Outcomes of SourceMessages.
const (
	OutcomePublished = "published"
	OutcomeDuplicate = "duplicate"
	OutcomeRejected  = "rejected"
)

// DerivedKey is the idempotency key of a message that carries none: the
// source's name and the broker's identity of the message. A message the
// broker delivers again after a crash gets the same key and so is a
// duplicate, not a second event. "" when the broker gave no identity.
func DerivedKey(source, messageID string) string {
	if messageID == "" {
		return ""
	}
	k := "src:" + source + ":" + messageID
	if len(k) > app.MaxIdempotencyKey {
		return "" // cannot be derived safely; a configured name this long is refused at parse time
	}
	return k
}

// Runner moves messages from one Consumer into one project.
type Runner struct {
	// Name names the source in logs, metrics and rejected inputs.
	Name      string
	ProjectID string
	Consumer  Consumer
	Publisher Publisher
	Rejects   RejectRecorder
	// Observer may be nil.
	Observer Observer
	// Logger may be nil (slog.Default()).
	Logger *slog.Logger
	// Batch bounds the messages of one commit (0: DefaultBatch).
	Batch int
	// CommitTimeout bounds the commit of the batch in hand when Run's
	// context ends (0: 30s): the batch is finished, not dropped.
	CommitTimeout time.Duration
}

// DefaultBatch is the most messages one commit takes.
const DefaultBatch = 256

// Run takes messages until ctx ends; it returns nil then. Every failure
// (the broker, the store) is logged and retried with a growing pause, never
// skipping a message: order and at-least-once hold through an outage.
func (r *Runner) Run(ctx context.Context) error {
	if r.Batch <= 0 {
		r.Batch = DefaultBatch
	}
	if r.Logger == nil {
		r.Logger = slog.Default()
	}
	if r.CommitTimeout <= 0 {
		r.CommitTimeout = 30 * time.Second
	}
	r.Logger = r.Logger.With("source", r.Name, "project", r.ProjectID)
	r.Logger.Info("ingest source started")
	var pause backoff
	for {
		msgs, err := r.Consumer.Fetch(ctx, r.Batch)
		if ctx.Err() != nil {
			r.Logger.Info("ingest source stopped")
			return nil
		}
		if err != nil {
			r.observeError("fetch")
			r.Logger.Warn("ingest source: fetch failed; trying again", "err", err, "pause", pause.peek())
			if !pause.wait(ctx) {
				return nil
			}
			continue
		}
		pause.reset()
		if len(msgs) == 0 {
			continue
		}
		// The batch in hand is finished even when ctx ends meanwhile: a
		// commit cut short would only be redelivered, but finishing it
		// saves the broker's redelivery delay.
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.CommitTimeout)
		r.handle(bctx, ctx, msgs)
		cancel()
	}
}

// handle publishes one batch, records its rejects and acknowledges it. It
// returns without acknowledging only when stop ends before the commit.
func (r *Runner) handle(ctx, stop context.Context, msgs []Message) {
	ins := make([]app.EventInput, 0, len(msgs))
	pos := make([]int, 0, len(msgs))    // ins[j] is msgs[pos[j]]
	refused := make([]error, len(msgs)) // by message, in stream order
	for i, m := range msgs {
		if m.Missing != "" {
			refused[i] = &kinehook.Error{Code: kinehook.EMALFORMED, Field: "body", Message: m.Missing}
			continue
		}
		key := m.Key
		if key == "" {
			key = DerivedKey(r.Name, m.ID)
		}
		ins = append(ins, app.EventInput{ProjectID: r.ProjectID, Body: m.Body, IdempotencyKey: key})
		pos = append(pos, i)
	}
	var outs []app.Outcome
	if len(ins) > 0 {
		var pause backoff
		for {
			var err error
			outs, err = r.Publisher.PublishEvents(ctx, r.ProjectID, ins)
			if err == nil {
				break
			}
			r.observeError("publish")
			if stop.Err() != nil {
				r.Logger.Warn("ingest source: stopping with a batch not committed; the broker will deliver it again", "messages", len(msgs), "err", err)
				return
			}
			r.Logger.Warn("ingest source: publish failed; trying the same messages again", "err", err, "pause", pause.peek())
			if !pause.wait(stop) {
				return
			}
		}
	}
	published, duplicates := 0, 0
	for j, o := range outs {
		switch {
		case o.Err != nil:
			refused[pos[j]] = o.Err
		case o.Published.Duplicate:
			duplicates++
		default:
			published++
		}
	}
	// Recorded in stream order: the list's newest is the stream's latest.
	var rejects []app.RejectInput
	for i, err := range refused {
		if err != nil {
			rejects = append(rejects, r.reject(msgs[i], err))
		}
	}
	if len(rejects) > 0 {
		var pause backoff
		for {
			err := r.Rejects.RecordRejected(ctx, rejects)
			if err == nil {
				break
			}
			r.observeError("record")
			if stop.Err() != nil {
				r.Logger.Warn("ingest source: stopping before rejected inputs were recorded; the broker will deliver the batch again", "err", err)
				return
			}
			r.Logger.Warn("ingest source: recording rejected inputs failed; trying again", "err", err, "pause", pause.peek())
			if !pause.wait(stop) {
				return
			}
		}
		for _, rj := range rejects {
			r.Logger.Warn("ingest source: message rejected", "message_id", rj.MessageID, "code", kinehook.ErrorCode(rj.Err), "reason", kinehook.ErrorMessage(rj.Err))
		}
	}
	r.observe(OutcomePublished, published)
	r.observe(OutcomeDuplicate, duplicates)
	r.observe(OutcomeRejected, len(rejects))
	if err := r.Consumer.Ack(ctx, msgs); err != nil {
		// Committed but not acknowledged: the broker delivers these again,
		// and their idempotency keys make them duplicates.
		r.observeError("ack")
		r.Logger.Warn("ingest source: acknowledging committed messages failed; the broker may deliver them again (duplicates)", "messages", len(msgs), "err", err)
	}
}

func (r *Runner) reject(m Message, err error) app.RejectInput {
	var ke *kinehook.Error
	if !errors.As(err, &ke) {
		err = &kinehook.Error{Code: kinehook.EINVALID, Message: err.Error()}
	}
	return app.RejectInput{ProjectID: r.ProjectID, Source: r.Name, MessageID: m.ID, Body: m.Body, Err: err}
}

func (r *Runner) observe(outcome string, n int) {
	if r.Observer != nil && n > 0 {
		r.Observer.SourceMessages(r.Name, outcome, n)
	}
}

func (r *Runner) observeError(op string) {
	if r.Observer != nil {
		r.Observer.SourceError(r.Name, op)
	}
}

// backoff is the pause between tries of a failing step: 100 ms doubling to 10 s.
type backoff struct{ d time.Duration }

func (b *backoff) peek() time.Duration {
	if b.d == 0 {
		return 100 * time.Millisecond
	}
	return b.d
}

func (b *backoff) reset() { b.d = 0 }

// wait sleeps the pause and grows it; false when ctx ended first.
func (b *backoff) wait(ctx context.Context) bool {
	d := b.peek()
	b.d = min(2*d, 10*time.Second)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// String names a runner for errors.
func (r *Runner) String() string { return fmt.Sprintf("source %s (project %s)", r.Name, r.ProjectID) }
