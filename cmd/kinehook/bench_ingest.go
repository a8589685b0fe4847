package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kinehook/kinehook/client"
	"github.com/kinehook/kinehook/cmd/kinehook/internal/bench"
)

// startBenchIngest starts the server of the nats-ingest scenario: a fresh
// data directory with a project and one endpoint (made through the API of
// a first start), a fresh JetStream stream, and the server started again
// with --source reading that stream into the project. Stopping it removes
// the stream and the directory. Only in process and on SQLite or
// --database; not against --url (a running server has no such source).
func startBenchIngest(ctx context.Context, o *benchOptions, endpointURL string, stderr io.Writer) (*bench.Server, func(context.Context, int, func(int) []byte) error, error) {
	if o.url != "" {
		return nil, nil, errors.New("nats-ingest starts its own server; it cannot measure --url")
	}
	key, err := newBenchKey()
	if err != nil {
		return nil, nil, err
	}
	dir, err := os.MkdirTemp("", "kinehook-bench-")
	if err != nil {
		return nil, nil, fmt.Errorf("temporary data directory: %w", err)
	}
	fail := func(err error) (*bench.Server, func(context.Context, int, func(int) []byte) error, error) {
		_ = os.RemoveAll(dir)
		return nil, nil, err
	}
	first, err := startBenchInProcess(o, dir, key, stderr)
	if err != nil {
		return fail(err)
	}
	p, err := client.New(first.URL, key).CreateProject(ctx, "bench-nats-ingest")
	if err == nil {
		_, err = client.New(first.URL, p.APIKey).CreateEndpoint(ctx, p.ID, client.EndpointCreate{URL: endpointURL, Description: "kinehook bench sink"})
	}
	if serr := first.Stop(); err == nil {
		err = serr
	}
	if err != nil {
		return fail(fmt.Errorf("project and endpoint: %w", err))
	}

	nc, err := natsgo.Connect(o.natsURL)
	if err != nil {
		return fail(fmt.Errorf("NATS at %s: %w", o.natsURL, err))
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return fail(err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	stream := "kinehook_bench_" + hex.EncodeToString(b[:])
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: stream, Subjects: []string{stream + ".>"}}); err != nil {
		nc.Close()
		return fail(fmt.Errorf("create stream: %w", err))
	}
	cleanup := func() {
		_ = js.DeleteStream(context.Background(), stream)
		nc.Close()
		_ = os.RemoveAll(dir)
	}
	srv, err := startBenchInProcess(o, dir, key, stderr, o.natsURL+"?stream="+stream+"&project="+p.ID+"&name=bench")
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	stop := srv.Stop
	srv.Stop = func() error {
		err := stop()
		cleanup()
		return err
	}
	publish := func(ctx context.Context, n int, body func(int) []byte) error {
		for i := range n {
			if _, err := js.PublishAsync(stream+".events", body(i)); err != nil {
				return fmt.Errorf("publish: %w", err)
			}
		}
		select {
		case <-js.PublishAsyncComplete():
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return srv, publish, nil
}
