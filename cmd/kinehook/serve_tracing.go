package main

import (
	"context"
	"fmt"
	"log/slog"
	nethttp "net/http"
	"os"
	"time"

	"github.com/kinehook/kinehook/delivery"
	"github.com/kinehook/kinehook/internal/buildinfo"
	"github.com/kinehook/kinehook/tracing"
)

// serveTracing is serve's OpenTelemetry tracing, nil when the OTEL_*
// environment does not turn it on; its methods then do nothing, and the
// engine gets no Tracer at all (no cost on the hot path).
type serveTracing struct {
	t       *tracing.Tracer
	log     *slog.Logger
	timeout time.Duration
}

// startTracing builds the tracer the environment configures (tracing.FromEnv).
func startTracing(ctx context.Context, log *slog.Logger, timeout time.Duration) (*serveTracing, error) {
	t, err := tracing.FromEnv(ctx, tracing.Options{ServiceVersion: buildinfo.Version(), Logger: log})
	if err != nil {
		return nil, fmt.Errorf("OpenTelemetry tracing (OTEL_* environment): %w", err)
	}
	if t == nil {
		return nil, nil
	}
	endpoint := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
	if endpoint == "" {
		endpoint = os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT")
	}
	log.Info("tracing: exporting spans with OTLP/HTTP", "endpoint", redactURL(endpoint), "sampler", os.Getenv("OTEL_TRACES_SAMPLER"))
	return &serveTracing{t: t, log: log, timeout: timeout}, nil
}

// engineHook is the engine's Tracer: a nil interface when tracing is off.
func (s *serveTracing) engineHook() delivery.Tracer {
	if s == nil {
		return nil
	}
	return s.t
}

// wrap adds the ingest spans to the server's handler.
func (s *serveTracing) wrap(h nethttp.Handler) nethttp.Handler {
	if s == nil {
		return h
	}
	return s.t.Handler(h)
}

// stop exports what is buffered and stops the exporter.
func (s *serveTracing) stop() {
	if s == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	if err := s.t.Shutdown(ctx); err != nil {
		s.log.Warn("tracing: shutdown", "err", err)
	}
}
