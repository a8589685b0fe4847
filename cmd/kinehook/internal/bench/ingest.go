package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// NATSIngest is the ingest scenario: Events events published to a NATS
// JetStream stream, taken by the server's ingest source (`serve --source`)
// and delivered to the sink: deliveries/s from the first publish to the
// last arrival. It is not in AllScenarios (it needs a NATS server):
// --scenarios throughput,nats-ingest.
const NATSIngest = "nats-ingest"

// IngestFunc starts a server whose ingest source reads a fresh broker
// stream into a project with one endpoint at endpointURL. publish puts n
// events (body(i) each) on the stream and returns once the broker has them.
type IngestFunc func(ctx context.Context, endpointURL string) (srv *Server, publish func(ctx context.Context, n int, body func(int) []byte) error, err error)

// runIngest runs the NATS ingest scenario.
func runIngest(ctx context.Context, cfg Config) (res *Result, err error) {
	if cfg.Ingest == nil {
		return nil, errors.New("no ingest server (this build cannot start one)")
	}
	sink, err := NewSink(http.StatusNoContent)
	if err != nil {
		return nil, err
	}
	defer sink.Close()
	srv, publish, err := cfg.Ingest(ctx, sink.URL+"/e/0")
	if err != nil {
		return nil, fmt.Errorf("start ingest server: %w", err)
	}
	defer func() {
		if serr := srv.Stop(); serr != nil && err == nil {
			err = fmt.Errorf("stop server: %w", serr)
		}
	}()
	b, err := newBodies()
	if err != nil {
		return nil, err
	}
	sink.Reset(cfg.Events)
	use := startUsage(srv)
	t0 := time.Now()
	if err := publish(ctx, cfg.Events, b.body); err != nil {
		return nil, fmt.Errorf("publish to the broker: %w", err)
	}
	posted := time.Since(t0)
	wctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	werr := sink.Wait(wctx)
	got, dups, hits, last := sink.Stats()
	res = &Result{Scenario: NATSIngest, Endpoints: 1, Events: cfg.Events, Deliveries: got, Duplicates: dups, SinkHits: hits}
	use.finish(res, got)
	if werr != nil {
		return res, werr
	}
	el := max(last.Sub(t0), posted)
	res.Seconds = el.Seconds()
	res.DeliveriesPerSec = float64(got) / el.Seconds()
	res.EventsPerSec = float64(cfg.Events) / el.Seconds()
	return res, nil
}
