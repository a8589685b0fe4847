package rabbitmq

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/kinehook/kinehook/source"
	"github.com/kinehook/kinehook/source/sourcetest"
)

// amqpURL is the machine's RabbitMQ (CI starts it).
const amqpURL = "amqp://guest:guest@127.0.0.1:5672/"

// testQueue declares a queue of a unique name, deleted when t ends.
func testQueue(t *testing.T) (*amqp.Channel, string) {
	t.Helper()
	conn, err := amqp.Dial(amqpURL)
	if err != nil {
		t.Fatalf("RabbitMQ at %s: %v", amqpURL, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "khtest." + hex.EncodeToString(b[:])
	if _, err := ch.QueueDeclare(name, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = ch.QueueDelete(name, false, false, false) })
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	return ch, name
}

func bad(i int) bool { return i%97 == 13 }

func badCount(n int) int {
	c := 0
	for i := range n {
		if bad(i) {
			c++
		}
	}
	return c
}

// publish sends [from, to) with publisher confirms: every 97th bad, every
// 5th with an Idempotency-Key header, every message with a message_id
// unless withoutID says otherwise.
func publish(t *testing.T, ch *amqp.Channel, queue string, from, to int, withoutID func(int) bool) {
	t.Helper()
	ctx := context.Background()
	var confs []*amqp.DeferredConfirmation
	for i := from; i < to; i++ {
		body := sourcetest.Body(i)
		if bad(i) {
			body = sourcetest.BadBody(i)
		}
		p := amqp.Publishing{Body: body, DeliveryMode: amqp.Persistent, ContentType: "application/json"}
		if withoutID == nil || !withoutID(i) {
			p.MessageId = fmt.Sprintf("m-%d", i)
		}
		if i%5 == 0 {
			p.Headers = amqp.Table{DefaultKeyHeader: fmt.Sprintf("key-%d", i)}
		}
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, false, false, p)
		if err != nil {
			t.Fatal(err)
		}
		confs = append(confs, dc)
	}
	for _, dc := range confs {
		if ok, err := dc.WaitContext(ctx); !ok || err != nil {
			t.Fatalf("publish not confirmed: %v", err)
		}
	}
}

func spec(t *testing.T, queue string, extra url.Values) source.Spec {
	t.Helper()
	q := url.Values{"queue": {queue}, "project": {"prj_x"}}
	for k, v := range extra {
		q[k] = v
	}
	s, err := source.ParseURL(amqpURL+"?"+q.Encode(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestTenThousand: 10,000 messages (some without a message_id) in, every
// good one delivered once, in queue order per video; the bad ones recorded
// and skipped; the queue empty afterwards.
func TestTenThousand(t *testing.T) {
	ch, queue := testQueue(t)
	total := sourcetest.Messages(10_000)
	publish(t, ch, queue, 0, total, func(i int) bool { return i%7 == 3 && !bad(i) })
	st := sourcetest.NewStack(t)
	sp := spec(t, queue, nil)
	c, err := Open(t.Context(), sp, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	start := time.Now()
	stop := st.Run(t, sp.Name, c, 0)
	st.Sink.WaitDelivered(t, total-badCount(total), 60*time.Second)
	t.Logf("%d messages delivered in %v (%.0f/s)", total, time.Since(start), float64(total)/time.Since(start).Seconds())
	stop()
	st.Sink.Check(t, total, bad)
	rs := st.CheckRejected(t, sp.Name, badCount(total))
	if last := total - 1 - (total-1-13)%97; len(rs) > 0 && rs[0].MessageID != fmt.Sprintf("%s:m-%d", queue, last) {
		t.Errorf("newest rejected input's message id = %q", rs[0].MessageID)
	}
	_ = c.Close()
	qi, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil || qi.Messages != 0 {
		t.Errorf("queue after the run: %+v %v; want empty (all acknowledged)", qi, err)
	}
}

// TestRestartKeepsOrder: a consumer that committed without acknowledging
// and died; the next (waiting meanwhile: the queue is exclusive) gets the
// messages back in queue order, the committed ones as duplicates.
func TestRestartKeepsOrder(t *testing.T) {
	ch, queue := testQueue(t)
	const total = 3000
	publish(t, ch, queue, 0, total/2, nil)
	st := sourcetest.NewStack(t)
	sp := spec(t, queue, url.Values{"batch": {"100"}})
	c1, err := Open(t.Context(), sp, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := sourcetest.NewDying(c1, 3)
	stop1 := st.Run(t, sp.Name, d, sp.Batch)
	<-d.Dead
	stop1()
	// A second consumer of the same source waits while the first lives.
	c2, err := Open(t.Context(), sp, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c2.Close() })
	if msgs, err := c2.Fetch(t.Context(), 10); err == nil || len(msgs) > 0 {
		t.Fatalf("a second consumer took %d messages (err %v) while the first held the queue", len(msgs), err)
	}
	_ = c1.Close()
	publish(t, ch, queue, total/2, total, nil)
	stop2 := st.Run(t, sp.Name, c2, sp.Batch)
	st.Sink.WaitDelivered(t, total-badCount(total), 60*time.Second)
	stop2()
	st.Sink.Check(t, total, bad)
	st.CheckRejected(t, sp.Name, badCount(total))
}
