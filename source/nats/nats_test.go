package nats

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kinehook/kinehook/source"
	"github.com/kinehook/kinehook/source/sourcetest"
)

// natsURL is the machine's NATS server with JetStream (CI starts it).
const natsURL = "nats://127.0.0.1:4222"

// testStream makes a stream of a unique name and subject, removed when t ends.
func testStream(t *testing.T) (jetstream.JetStream, string, string) {
	t.Helper()
	nc, err := natsgo.Connect(natsURL)
	if err != nil {
		t.Fatalf("NATS at %s: %v", natsURL, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "khtest_" + hex.EncodeToString(b[:])
	subject := "khtest." + hex.EncodeToString(b[:])
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: name, Subjects: []string{subject + ".>"}}); err != nil {
		t.Fatalf("create stream: %v", err)
	}
	t.Cleanup(func() { _ = js.DeleteStream(context.Background(), name) })
	return js, name, subject
}

// publish sends messages [from, to) of the test stream, every 97th bad and
// every 5th with its own Idempotency-Key.
func publish(t *testing.T, js jetstream.JetStream, subject string, from, to int) {
	t.Helper()
	ctx := context.Background()
	for i := from; i < to; i++ {
		m := natsgo.NewMsg(fmt.Sprintf("%s.v%d", subject, i%sourcetest.Resources))
		m.Data = sourcetest.Body(i)
		if bad(i) {
			m.Data = sourcetest.BadBody(i)
		}
		if i%5 == 0 {
			m.Header.Set(DefaultKeyHeader, fmt.Sprintf("key-%d", i))
		}
		if _, err := js.PublishMsgAsync(m); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		t.Fatal("publishing did not complete")
	}
	_ = ctx
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

func spec(t *testing.T, stream, subject string, extra url.Values) source.Spec {
	t.Helper()
	q := url.Values{"stream": {stream}, "subject": {subject + ".>"}, "project": {"prj_x"}}
	for k, v := range extra {
		q[k] = v
	}
	s, err := source.ParseURL(natsURL+"?"+q.Encode(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestTenThousand: 10,000 messages in, every good one delivered once, in
// stream order per video; the bad ones recorded and skipped.
func TestTenThousand(t *testing.T) {
	js, stream, subject := testStream(t)
	total := sourcetest.Messages(10_000)
	publish(t, js, subject, 0, total)
	st := sourcetest.NewStack(t)
	sp := spec(t, stream, subject, nil)
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
	// Newest first; the broker's id is the stream sequence (1-based).
	if last := total - 1 - (total-1-13)%97; len(rs) > 0 && rs[0].MessageID != fmt.Sprintf("%s:%d", stream, last+1) {
		t.Errorf("newest rejected input has message id %s, want %s:%d", rs[0].MessageID, stream, last+1)
	}
	info, err := c.cons.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.NumAckPending != 0 || info.NumPending != 0 {
		t.Errorf("after the run the consumer has %d unacknowledged and %d undelivered messages, want 0 and 0", info.NumAckPending, info.NumPending)
	}
}

// TestRestartKeepsOrder: a source that committed batches without
// acknowledging them and then died holding fetched messages; the next one
// gets the unacknowledged messages again before any newer one (the held
// max_ack_pending), takes the committed ones as duplicates, and the
// consumer's own max_ack_pending comes back.
func TestRestartKeepsOrder(t *testing.T) {
	js, stream, subject := testStream(t)
	const total = 3000
	publish(t, js, subject, 0, total/2)
	st := sourcetest.NewStack(t)
	sp := spec(t, stream, subject, url.Values{"ack_wait": {"1s"}, "batch": {"100"}})
	c1, err := Open(t.Context(), sp, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := sourcetest.NewDying(c1, 3)
	stop1 := st.Run(t, sp.Name, d, sp.Batch)
	<-d.Dead
	stop1()
	info, err := c1.cons.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_ = c1.Close()
	if n := st.Sink.Delivered(); n == 0 || n >= total/2 {
		t.Fatalf("the first source delivered %d messages before dying; want some", n)
	}
	want := info.Config.MaxAckPending
	publish(t, js, subject, total/2, total)

	c2, err := Open(t.Context(), sp, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c2.Close() })
	if !c2.restoring {
		t.Error("the second source did not hold new messages behind the unacknowledged ones")
	}
	stop2 := st.Run(t, sp.Name, c2, sp.Batch)
	st.Sink.WaitDelivered(t, total-badCount(total), 60*time.Second)
	stop2()
	st.Sink.Check(t, total, bad)
	st.CheckRejected(t, sp.Name, badCount(total))
	info, err = c2.cons.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, held := heldOriginal(info.Config); info.Config.MaxAckPending != want || held {
		t.Errorf("max_ack_pending after recovery = %d (description %q), want the consumer's own %d", info.Config.MaxAckPending, info.Config.Description, want)
	}
}

// TestOpenRefusesPushConsumer: a consumer kinehook cannot ack after its
// commit is refused with a clear error.
func TestOpenRefusesAckNone(t *testing.T) {
	js, stream, subject := testStream(t)
	if _, err := js.CreateConsumer(context.Background(), stream, jetstream.ConsumerConfig{Durable: "noack", AckPolicy: jetstream.AckNonePolicy}); err != nil {
		t.Fatal(err)
	}
	_, err := Open(t.Context(), spec(t, stream, subject, url.Values{"consumer": {"noack"}}), nil)
	if err == nil {
		t.Fatal("Open accepted a consumer without acks")
	}
	t.Log(err)
}

// TestRestartSortsRedeliveries: JetStream redelivers pending messages in
// the order their ack_wait runs out, not in stream order. A predecessor
// that had some messages delivered again (a nak, or an ack_wait that ran
// out while it lived) leaves them due later than newer ones; the next
// source must still commit them in stream order.
func TestRestartSortsRedeliveries(t *testing.T) {
	js, stream, subject := testStream(t)
	const total = 2 * sourcetest.Resources // each video twice
	publish(t, js, subject, 0, total)
	sp := spec(t, stream, subject, url.Values{"ack_wait": {"1s"}, "batch": {"20"}})
	c0, err := Open(t.Context(), sp, nil) // makes the durable consumer
	if err != nil {
		t.Fatal(err)
	}
	name := c0.cons.CachedInfo().Name
	_ = c0.Close()

	// The predecessor: takes every message, has the first half delivered
	// again (nak), and dies holding all of them.
	nc, err := natsgo.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	pjs, _ := jetstream.New(nc)
	pc, err := pjs.Consumer(t.Context(), stream, name)
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for got < total {
		batch, err := pc.Fetch(total-got, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			if got < total/2 {
				_ = m.Nak()
			}
			got++
		}
	}
	again := 0
	for again < total/2 {
		batch, err := pc.Fetch(total/2-again, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			md, _ := m.Metadata()
			if md.NumDelivered != 2 {
				t.Fatalf("stream message %d delivered %d times, want 2", md.Sequence.Stream, md.NumDelivered)
			}
			again++
		}
	}
	nc.Close()

	st := sourcetest.NewStack(t)
	c, err := Open(t.Context(), sp, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	stop := st.Run(t, sp.Name, c, sp.Batch)
	st.Sink.WaitDelivered(t, total-badCount(total), 30*time.Second)
	stop()
	st.Sink.Check(t, total, bad)
}
