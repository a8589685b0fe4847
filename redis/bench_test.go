package redis_test

import (
	"testing"

	"github.com/kinehook/kinehook/delivery"
	redisdest "github.com/kinehook/kinehook/redis"
)

// BenchmarkSend is XADDs through the transport to the machine's Redis, one
// at a time and from parallel callers (as the engine sends for many
// resources at once).
func BenchmarkSend(b *testing.B) {
	rc := redisClient(b, "127.0.0.1:6379")
	tr := redisdest.New(redisdest.Options{Dial: allowLoopback})
	defer tr.Close()
	body := `{"event":"media.update.status","data":{"id":"vid-1","status":"done","title":"a video of some length"}}`
	b.Run("serial", func(b *testing.B) {
		m := signed(b, redisEndpoint(sharedURL, uniqueStream(b, rc), 0, nil), body)
		for b.Loop() {
			if res := tr.Send(b.Context(), m); res.Outcome != delivery.OutcomeSuccess {
				b.Fatal(res.Err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		m := signed(b, redisEndpoint(sharedURL, uniqueStream(b, rc), 0, nil), body)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if res := tr.Send(b.Context(), m); res.Outcome != delivery.OutcomeSuccess {
					b.Error(res.Err)
					return
				}
			}
		})
	})
}
