package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/kinehook/kinehook/source"
	"github.com/kinehook/kinehook/source/sourcetest"
)

// redisURL is the machine's Redis (CI starts it).
const redisURL = "redis://127.0.0.1:6379/0"

func testStream(t *testing.T) (*goredis.Client, string) {
	t.Helper()
	opts, _ := goredis.ParseURL(redisURL)
	rdb := goredis.NewClient(opts)
	t.Cleanup(func() { _ = rdb.Close() })
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("Redis at %s: %v", redisURL, err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "khtest:" + hex.EncodeToString(b[:])
	t.Cleanup(func() { _ = rdb.Del(context.Background(), name).Err() })
	return rdb, name
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

// publish adds entries [from, to) in pipelines: every 97th bad, every 5th
// with its own idempotency key.
func publish(t *testing.T, rdb *goredis.Client, stream string, from, to int) {
	t.Helper()
	ctx := context.Background()
	for lo := from; lo < to; lo += 1000 {
		pipe := rdb.Pipeline()
		for i := lo; i < min(lo+1000, to); i++ {
			body := sourcetest.Body(i)
			if bad(i) {
				body = sourcetest.BadBody(i)
			}
			vals := []any{DefaultBodyField, string(body)}
			if i%5 == 0 {
				vals = append(vals, DefaultKeyField, fmt.Sprintf("key-%d", i))
			}
			pipe.XAdd(ctx, &goredis.XAddArgs{Stream: stream, Values: vals})
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

func spec(t *testing.T, stream string, extra url.Values) source.Spec {
	t.Helper()
	q := url.Values{"stream": {stream}, "project": {"prj_x"}}
	for k, v := range extra {
		q[k] = v
	}
	s, err := source.ParseURL(redisURL+"?"+q.Encode(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestTenThousand: 10,000 entries in, every good one delivered once, in
// stream order per video; the bad ones recorded and skipped; an entry
// without a body field rejected too; nothing left pending.
func TestTenThousand(t *testing.T) {
	rdb, stream := testStream(t)
	total := sourcetest.Messages(10_000)
	publish(t, rdb, stream, 0, total)
	if err := rdb.XAdd(context.Background(), &goredis.XAddArgs{Stream: stream, Values: []any{"payload", "x"}}).Err(); err != nil {
		t.Fatal(err)
	}
	st := sourcetest.NewStack(t)
	sp := spec(t, stream, nil)
	c, err := Open(t.Context(), sp, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	start := time.Now()
	stop := st.Run(t, sp.Name, c, 0)
	st.Sink.WaitDelivered(t, total-badCount(total), 60*time.Second)
	t.Logf("%d entries delivered in %v (%.0f/s)", total, time.Since(start), float64(total)/time.Since(start).Seconds())
	deadline := time.Now().Add(10 * time.Second)
	for {
		p, err := rdb.XPending(context.Background(), stream, DefaultGroup).Result()
		if err != nil {
			t.Fatal(err)
		}
		info, err := rdb.XInfoGroups(context.Background(), stream).Result()
		if err != nil {
			t.Fatal(err)
		}
		if p.Count == 0 && len(info) == 1 && info[0].EntriesRead == int64(total+1) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("entries still pending: %d (read %v)", p.Count, info)
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	st.Sink.Check(t, total, bad)
	// The entry without a body is rejected with its own reason; the rest as the API would.
	rs, _, err := st.App.ListRejected(context.Background(), st.Project, "", 1, false)
	if err != nil || len(rs) != 1 || rs[0].Code != "malformed" || !strings.Contains(rs[0].Reason, `no "body" field`) || !strings.Contains(string(rs[0].Body), "payload") {
		t.Fatalf("newest rejected input = %+v, %v; want the entry without a body", rs, err)
	}
	all, _, _ := st.App.ListRejected(context.Background(), st.Project, "", 1000, false)
	if len(all) != badCount(total)+1 {
		t.Errorf("%d rejected inputs, want %d", len(all), badCount(total)+1)
	}
	for _, r := range all[1:] {
		if r.Code != "invalid" || !strings.Contains(r.Reason, "bogus") || !strings.HasPrefix(r.MessageID, stream+":") {
			t.Errorf("rejected %+v", r)
			break
		}
	}
}

// TestRestartKeepsOrder: after a source died with entries read and not
// acknowledged (some committed), the next reads its pending list first:
// everything arrives once, in order.
func TestRestartKeepsOrder(t *testing.T) {
	rdb, stream := testStream(t)
	const total = 3000
	publish(t, rdb, stream, 0, total/2)
	st := sourcetest.NewStack(t)
	sp := spec(t, stream, url.Values{"batch": {"100"}})
	c1, err := Open(t.Context(), sp, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := sourcetest.NewDying(c1, 3)
	stop1 := st.Run(t, sp.Name, d, sp.Batch)
	<-d.Dead
	stop1()
	_ = c1.Close()
	p, err := rdb.XPending(context.Background(), stream, DefaultGroup).Result()
	if err != nil || p.Count != 400 {
		t.Fatalf("pending after the first source died: %+v %v; want 400 (3 batches committed, 1 held)", p, err)
	}
	publish(t, rdb, stream, total/2, total)
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
