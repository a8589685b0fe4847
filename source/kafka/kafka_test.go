package kafka

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kinehook/kinehook/source"
	"github.com/kinehook/kinehook/source/sourcetest"
)

// cluster starts kfake, franz-go's in-process Kafka, with a topic of 4
// partitions (no Kafka broker can be installed here).
func cluster(t *testing.T, topic string) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
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

// produce sends [from, to) keyed by video (one video, one partition):
// every 97th bad, every 5th with an Idempotency-Key header.
func produce(t *testing.T, addrs []string, topic string, from, to int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for i := from; i < to; i++ {
		body := sourcetest.Body(i)
		if bad(i) {
			body = sourcetest.BadBody(i)
		}
		r := &kgo.Record{Key: []byte(fmt.Sprintf("v-%d", i%sourcetest.Resources)), Value: body}
		if i%5 == 0 {
			r.Headers = []kgo.RecordHeader{{Key: DefaultKeyHeader, Value: []byte(fmt.Sprintf("key-%d", i))}}
		}
		wg.Add(1)
		cl.Produce(context.Background(), r, func(_ *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				mu.Lock()
				firstErr = err
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
}

func spec(t *testing.T, addrs []string, topic string, extra url.Values) source.Spec {
	t.Helper()
	q := url.Values{"topic": {topic}, "project": {"prj_x"}}
	for k, v := range extra {
		q[k] = v
	}
	s, err := source.ParseURL("kafka://"+strings.Join(addrs, ",")+"?"+q.Encode(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestTenThousand: 10,000 records over 4 partitions in, every good one
// delivered once, in partition order per video; the bad ones recorded and
// skipped, their ids topic/partition/offset; the offsets committed.
func TestTenThousand(t *testing.T) {
	const topic = "orders"
	addrs := cluster(t, topic)
	total := sourcetest.Messages(10_000)
	produce(t, addrs, topic, 0, total)
	st := sourcetest.NewStack(t)
	sp := spec(t, addrs, topic, nil)
	c, err := Open(t.Context(), sp, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	start := time.Now()
	stop := st.Run(t, sp.Name, c, 0)
	st.Sink.WaitDelivered(t, total-badCount(total), 60*time.Second)
	t.Logf("%d records delivered in %v (%.0f/s)", total, time.Since(start), float64(total)/time.Since(start).Seconds())
	stop()
	st.Sink.Check(t, total, bad)
	rs := st.CheckRejected(t, sp.Name, badCount(total))
	for _, r := range rs {
		if !strings.HasPrefix(r.MessageID, topic+"/") || strings.Count(r.MessageID, "/") != 2 {
			t.Errorf("rejected message id %q, want topic/partition/offset", r.MessageID)
			break
		}
	}
	_ = c.Close()
	// A new member of the group starts after the committed offsets: nothing left.
	c2, err := Open(t.Context(), sp, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if msgs, err := c2.Fetch(t.Context(), 100); err != nil || len(msgs) != 0 {
		t.Errorf("after the run a new member read %d records (err %v), want none: offsets not committed", len(msgs), err)
	}
}

// TestRestartKeepsOrder: a member that committed to the store but not to
// Kafka and died; the next resumes from the group's offsets: all records
// once, in partition order.
func TestRestartKeepsOrder(t *testing.T) {
	const topic = "orders"
	addrs := cluster(t, topic)
	const total = 3000
	produce(t, addrs, topic, 0, total/2)
	st := sourcetest.NewStack(t)
	sp := spec(t, addrs, topic, url.Values{"batch": {"100"}})
	c1, err := Open(t.Context(), sp, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := sourcetest.NewDying(c1, 3)
	stop1 := st.Run(t, sp.Name, d, sp.Batch)
	<-d.Dead
	stop1()
	_ = c1.Close()
	if n := st.Sink.Delivered(); n == 0 {
		t.Fatal("the first member delivered nothing")
	}
	produce(t, addrs, topic, total/2, total)
	c2, err := Open(t.Context(), sp, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c2.Close() })
	stop2 := st.Run(t, sp.Name, c2, sp.Batch)
	st.Sink.WaitDelivered(t, total-badCount(total), 60*time.Second)
	stop2()
	st.Sink.Check(t, total, bad)
	st.CheckRejected(t, sp.Name, badCount(total))
}
