// Package stacktest runs kinehook's real stack in a test: the HTTP API on a
// real SQLite file with the real delivery engine (webhook and NATS transports), served by httptest. Tests of
// the client and the CLI use it so they speak to the same server a user would,
// never to a mock.
package stacktest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/delivery"
	khttp "github.com/kinehook/kinehook/http"
	"github.com/kinehook/kinehook/internal/netguard"
	kafkadest "github.com/kinehook/kinehook/kafka"
	natsdest "github.com/kinehook/kinehook/nats"
	rabbitdest "github.com/kinehook/kinehook/rabbitmq"
	redisdest "github.com/kinehook/kinehook/redis"
	"github.com/kinehook/kinehook/sqlite"
	"github.com/kinehook/kinehook/webhook"
)

// Stack is a running API with its store and engine.
type Stack struct {
	URL    string
	Store  *sqlite.Store
	Engine *delivery.Engine
}

// Start runs the stack until t ends. adminKey is the admin key; private
// networks are allowed (sinks are on loopback), the API rate limit is off, and
// retries come after 20 ms. wrap, when not nil, wraps the API handler (to
// observe requests); config, when not nil, adjusts the API's configuration.
func Start(t testing.TB, adminKey string, config func(*khttp.Config), wrap func(http.Handler) http.Handler) *Stack {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "kinehook.db"), sqlite.Options{})
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	// Destination endpoints too: the CLI and client tests create them.
	natsTr := natsdest.New(natsdest.Options{Dial: netguard.NewDialContext(netguard.ClientOptions{AllowPrivate: true})})
	rabbitTr := rabbitdest.New(rabbitdest.Options{Dial: netguard.NewDialContext(netguard.ClientOptions{AllowPrivate: true})})
	redisTr := redisdest.New(redisdest.Options{Dial: netguard.NewDialContext(netguard.ClientOptions{AllowPrivate: true})})
	kafkaTr := kafkadest.New(kafkadest.Options{Dial: netguard.NewDialContext(netguard.ClientOptions{AllowPrivate: true})})
	eng, err := delivery.New(delivery.Config{Store: st, RetrySchedule: []time.Duration{20 * time.Millisecond}, RequestTimeout: 2 * time.Second,
		Transports: map[string]delivery.Transport{delivery.TransportWebhook: webhook.New(webhook.Options{}), kinehook.EndpointNATS: natsTr,
			kinehook.EndpointRabbitMQ: rabbitTr, kinehook.EndpointRedis: redisTr, kinehook.EndpointKafka: kafkaTr}})
	if err != nil {
		t.Fatalf("delivery engine: %v", err)
	}
	if err := eng.Start(ctx); err != nil {
		t.Fatalf("start engine: %v", err)
	}
	c := khttp.Config{Store: st, Dispatcher: eng, AdminKeyHash: kinehook.HashKey(adminKey), AllowPrivateNetworks: true, RateLimit: -1,
		Destinations: []kinehook.DestinationType{natsdest.Type{}, rabbitdest.Type{}, redisdest.Type{}, kafkadest.Type{}}}
	if config != nil {
		config(&c)
	}
	srv, err := khttp.NewServer(c)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	var h http.Handler = srv
	if wrap != nil {
		h = wrap(h)
	}
	api := httptest.NewServer(h)
	t.Cleanup(func() {
		api.Close()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = eng.Shutdown(sctx)
		_ = st.Close()
	})
	return &Stack{URL: api.URL, Store: st, Engine: eng}
}
