package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/app"
	"github.com/kinehook/kinehook/prometheus"
	"github.com/kinehook/kinehook/source"
	kafkasource "github.com/kinehook/kinehook/source/kafka"
	natssource "github.com/kinehook/kinehook/source/nats"
	rabbitsource "github.com/kinehook/kinehook/source/rabbitmq"
	redissource "github.com/kinehook/kinehook/source/redis"
)

// parseSourceFlags reads --source values and the --sources file.
func parseSourceFlags(urls []string, file string) ([]source.Spec, error) {
	var specs []source.Spec
	for _, u := range urls {
		s, err := source.ParseURL(u, "", "")
		if err != nil {
			return nil, fmt.Errorf("--source: %w", err)
		}
		specs = append(specs, s)
	}
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("--sources: %w", err)
		}
		fs, err := source.ParseFile(data)
		if err != nil {
			return nil, fmt.Errorf("--sources %s: %w", file, err)
		}
		specs = append(specs, fs...)
	}
	if err := source.CheckUnique(specs); err != nil {
		return nil, fmt.Errorf("--source/--sources: %w", err)
	}
	return specs, nil
}

// openSource connects a spec's broker package.
func openSource(ctx context.Context, spec source.Spec, log *slog.Logger) (source.Consumer, error) {
	switch spec.Broker {
	case "nats":
		return natssource.Open(ctx, spec, log)
	case "kafka":
		return kafkasource.Open(ctx, spec, log)
	case "rabbitmq":
		return rabbitsource.Open(ctx, spec, log)
	case "redis":
		return redissource.Open(ctx, spec, log)
	}
	return nil, fmt.Errorf("source %s: broker %s is not supported", spec.Name, spec.Broker)
}

// startSources checks each source's project, connects every source and
// runs them until ctx ends. A source that cannot start stops serve: a
// misspelt stream is better found at once than by a backlog. With other
// instances (gate not nil), a source that must be alone in the cluster
// (NATS, Redis: source.Exclusive) is not opened here but handed to the gate,
// which opens and runs it while this instance owns its partition. The
// returned wait blocks until the sources stopped (their batch in hand
// committed and acknowledged) and closes their connections.
func startSources(ctx context.Context, specs []source.Spec, st kinehook.Store, uc *app.App, metrics *prometheus.Metrics, gate *source.Gate, log *slog.Logger) (func(), error) {
	var consumers []source.Consumer // by spec; nil for a gated source
	closeAll := func() {
		for _, c := range consumers {
			if c != nil {
				_ = c.Close()
			}
		}
	}
	for _, spec := range specs {
		if _, err := st.GetProject(ctx, spec.Project); err != nil {
			closeAll()
			if errors.Is(err, kinehook.ErrNotFound) {
				return nil, fmt.Errorf("source %s: project %s does not exist", spec.Name, spec.Project)
			}
			return nil, fmt.Errorf("source %s: project %s: %w", spec.Name, spec.Project, err)
		}
		if gate != nil && source.Exclusive(spec.Broker) {
			consumers = append(consumers, nil)
			continue
		}
		c, err := openSource(ctx, spec, log)
		if err != nil {
			closeAll()
			return nil, err
		}
		consumers = append(consumers, c)
	}
	var wg sync.WaitGroup
	for i, spec := range specs {
		r := source.Runner{Name: spec.Name, ProjectID: spec.Project, Consumer: consumers[i], Publisher: uc, Rejects: uc,
			Observer: metrics, Logger: log, Batch: spec.Batch}
		if consumers[i] == nil {
			log.Info("ingest source (runs on the instance that owns its partition)", "source", spec.Name, "broker", spec.Broker,
				"url", spec.Redacted(), "project", spec.Project, "partition", source.Partition(spec.Name))
			gate.Add(ctx, spec.Name, func(ctx context.Context) { runGated(ctx, spec, r, log) })
			continue
		}
		log.Info("ingest source", "source", spec.Name, "broker", spec.Broker, "url", spec.Redacted(), "project", spec.Project)
		wg.Go(func() { _ = r.Run(ctx) })
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			if gate != nil {
				gate.Close()
			}
			wg.Wait()
			closeAll()
		})
	}, nil
}

// runGated opens a gated source and runs it until ctx ends (its partition
// went elsewhere, or serve stops). It opens the consumer afresh each time,
// so a source taken over from an instance that died with messages in hand
// starts as after a restart (the broker package's order-keeping start). A
// broker that cannot be reached is tried again with a growing pause.
func runGated(ctx context.Context, spec source.Spec, r source.Runner, log *slog.Logger) {
	pause := time.Second
	for ctx.Err() == nil {
		c, err := openSource(ctx, spec, log)
		if err != nil {
			log.Warn("ingest source: cannot open; trying again", "source", spec.Name, "err", err, "pause", pause)
			select {
			case <-ctx.Done():
			case <-time.After(pause):
			}
			pause = min(2*pause, 30*time.Second)
			continue
		}
		r.Consumer = c
		_ = r.Run(ctx)
		_ = c.Close()
		return
	}
}

// startRejectedPruner removes old rejected inputs a minute after start and
// then hourly: beyond keep per project, or older than days. It returns a
// stop that waits for it.
func startRejectedPruner(ctx context.Context, rs kinehook.RejectStore, keep, days int, log *slog.Logger) func() {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTimer(time.Minute)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			before := time.Time{}
			if days > 0 {
				before = time.Now().Add(-time.Duration(days) * 24 * time.Hour)
			}
			if n, err := rs.PruneRejected(ctx, keep, before); err != nil {
				log.Warn("pruning rejected inputs", "err", err)
			} else if n > 0 {
				log.Info("pruned rejected inputs", "removed", n)
			}
			t.Reset(time.Hour)
		}
	}()
	return func() { cancel(); <-done }
}
