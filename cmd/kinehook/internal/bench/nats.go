package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/client"
)

// DefaultNATSURL is the NATS server (with JetStream) of the nats scenario.
const DefaultNATSURL = "nats://127.0.0.1:4222"

// natsPath is the arrival key's path of the nats scenario's messages.
const natsPath = "/nats"

// runNATS is the throughput scenario with a NATS JetStream destination
// instead of an HTTP endpoint: events POSTed to the API, published by the
// server to a stream of this run's own (deleted afterwards), consumed here
// by an ordered consumer that times each message's arrival.
func runNATS(ctx context.Context, cfg Config, srv *Server) (*Result, error) {
	url := cfg.NATSURL
	if url == "" {
		url = DefaultNATSURL
	}
	nc, err := natsgo.Connect(url, natsgo.Timeout(5*time.Second), natsgo.Name("kinehook bench"))
	if err != nil {
		return nil, fmt.Errorf("no NATS server at %s (start nats-server -js, give --nats-url, or leave %s out of --scenarios): %w", url, NATSDest, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	id := strings.ToUpper(kinehook.NewID("b")[2:])
	subject, name := "kinehook.bench."+id, "KHBENCH_"+id
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	stream, err := js.CreateStream(sctx, jetstream.StreamConfig{Name: name, Subjects: []string{subject}, Storage: jetstream.FileStorage})
	cancel()
	if err != nil {
		return nil, fmt.Errorf("create stream %s on %s (is JetStream enabled?): %w", name, url, err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = js.DeleteStream(dctx, name)
	}()
	sink := NewRecorder()
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, fmt.Errorf("consumer: %w", err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		sink.Record(natsPath, m.Headers().Get(kinehook.HeaderID))
	})
	if err != nil {
		return nil, fmt.Errorf("consume: %w", err)
	}
	defer cc.Stop()

	admin := client.New(srv.URL, srv.AdminKey)
	p, err := admin.CreateProject(ctx, fmt.Sprintf("bench-nats-%d", time.Now().UnixNano()))
	if err != nil {
		return nil, fmt.Errorf("create project: %w", err)
	}
	config, err := json.Marshal(map[string]string{"url": url, "subject": subject})
	if err != nil {
		return nil, err
	}
	pc := client.New(srv.URL, p.APIKey)
	if _, err := pc.CreateEndpoint(ctx, p.ID, client.EndpointCreate{Type: kinehook.EndpointNATS, Config: config, Description: "kinehook bench stream"}); err != nil {
		return nil, fmt.Errorf("create the NATS endpoint (does the server deliver to NATS?): %w", err)
	}
	poster, err := newPoster(srv.URL, p.ID, p.APIKey, cfg.Concurrency)
	if err != nil {
		return nil, err
	}
	return measure(ctx, cfg, poster, sink, srv, NATSDest, 1, cfg.Events)
}
