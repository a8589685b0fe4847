package delivery

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/internal/cputime"
	"github.com/kinehook/kinehook/sqlite"
)

// nopTransport answers every message with success at once.
type nopTransport struct{}

func (nopTransport) Send(context.Context, Message) Result { return Result{Outcome: OutcomeSuccess} }

// benchSendEngine is an engine (not started) whose webhook transport does
// nothing: BenchmarkSend measures what the engine itself does per attempt.
func benchSendEngine(b *testing.B) (*Engine, *kinehook.Endpoint) {
	b.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"), sqlite.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	eng, err := New(Config{Store: st, Transports: map[string]Transport{TransportWebhook: nopTransport{}}})
	if err != nil {
		b.Fatal(err)
	}
	ep := &kinehook.Endpoint{ID: "ep_bench", URL: "http://127.0.0.1:1/", Secrets: []kinehook.EndpointSecret{{Value: testSecret}}}
	return eng, ep
}

// BenchmarkSend is one attempt's engine side (sign, build the message, call
// the transport, clean the result) for an event posted without a trace
// context, tracing off: the hot path as it was before tracing existed.
//
//	go test -run '^$' -bench 'Send$' -benchmem ./delivery
func BenchmarkSend(b *testing.B) {
	eng, ep := benchSendEngine(b)
	j := job{it: &item{id: "dlv_bench", eventID: "evt_bench"}, ep: ep, body: []byte(`{"event":"media.update.status","data":{"id":"v","status":"done"}}`)}
	now := time.Now()
	b.ReportAllocs()
	cpu0 := cputime.Self()
	for b.Loop() {
		if out, ok := eng.send(j, now); !ok || out.Outcome != OutcomeSuccess {
			b.Fatal(out)
		}
	}
	// CPU time per attempt hardly depends on how busy the machine is.
	b.ReportMetric(float64(cputime.Self()-cpu0)/float64(b.N), "cpu-ns/op")
}
