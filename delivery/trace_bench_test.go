package delivery

import (
	"testing"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/internal/cputime"
)

// BenchmarkSendTraceParent is BenchmarkSend for an event posted with a
// traceparent, tracing off: the stored string is copied into the message,
// nothing else (compare with BenchmarkSend in the same run).
func BenchmarkSendTraceParent(b *testing.B) {
	eng, ep := benchSendEngine(b)
	tr := kinehook.NewTraceContext("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "")
	j := job{it: &item{id: "dlv_bench", eventID: "evt_bench", trace: tr}, ep: ep, body: []byte(`{"event":"media.update.status","data":{"id":"v","status":"done"}}`)}
	now := time.Now()
	b.ReportAllocs()
	cpu0 := cputime.Self()
	for b.Loop() {
		if out, ok := eng.send(j, now); !ok || out.Outcome != OutcomeSuccess {
			b.Fatal(out)
		}
	}
	b.ReportMetric(float64(cputime.Self()-cpu0)/float64(b.N), "cpu-ns/op")
}
