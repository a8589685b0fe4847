package kafka_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/kinehook/kinehook/delivery"
	kafkadest "github.com/kinehook/kinehook/kafka"
)

// BenchmarkSend is one attempt (produce and acks=all acknowledgement) to
// an in-process kfake cluster over loopback, from parallel senders on 64
// resources, as the engine's per-resource workers would send.
func BenchmarkSend(b *testing.B) {
	c := newCluster(b, kfake.NumBrokers(1), kfake.SeedTopics(8, "bench"))
	tr := kafkadest.New(kafkadest.Options{Dial: allowLoopback})
	defer tr.Close()
	ep := kafkaEndpoint(brokersConfig(c.ListenAddrs(), "bench", ""), nil)
	body := `{"event":"media.update.status","data":{"id":"v","status":"done"}}`
	var n atomic.Int64
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m := signed(b, ep, fmt.Sprintf("vid-%d", n.Add(1)%64), body)
			if res := tr.Send(b.Context(), m); res.Outcome != delivery.OutcomeSuccess {
				b.Fatalf("Send = %+v", res)
			}
		}
	})
}
