package delivery_test

import (
	"github.com/kinehook/kinehook/delivery"
	"github.com/kinehook/kinehook/webhook"
)

// The engine's tests deliver over real HTTP through package webhook, which
// imports delivery: only an external test file may import it, so it hands
// the transport to them before any test runs.
func init() {
	delivery.NewHTTPTransport = func(maxIdle int) delivery.Transport {
		return webhook.New(webhook.Options{MaxIdleConns: maxIdle})
	}
}
