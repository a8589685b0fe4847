package main

import (
	"context"
	"net"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/delivery"
	"github.com/kinehook/kinehook/internal/netguard"
	kafkadest "github.com/kinehook/kinehook/kafka"
	natsdest "github.com/kinehook/kinehook/nats"
	rabbitdest "github.com/kinehook/kinehook/rabbitmq"
	redisdest "github.com/kinehook/kinehook/redis"
)

// destination is one endpoint type beyond webhook, as this binary wires it:
// the check the application layer runs on an endpoint's config and
// credentials, and the transport the delivery engine sends with.
type destination struct {
	check     kinehook.DestinationType
	transport delivery.Transport
}

// dialFunc dials a broker; every one this binary makes goes through the
// SSRF guard (netguard.NewDialContext).
type dialFunc = func(ctx context.Context, network, address string) (net.Conn, error)

// newDestinations lists the event destinations this binary delivers to.
// Adding a type is its package (a kinehook.DestinationType and a
// delivery.Transport dialling with dial) and one line here.
func newDestinations(dial dialFunc) []destination {
	return []destination{
		{natsdest.Type{}, natsdest.New(natsdest.Options{Dial: dial})},
		{rabbitdest.Type{}, rabbitdest.New(rabbitdest.Options{Dial: dial})},
		{redisdest.Type{}, redisdest.New(redisdest.Options{Dial: dial})},
		{kafkadest.Type{}, kafkadest.New(kafkadest.Options{Dial: dial})},
	}
}

// destinationDial is the guarded dialer of broker connections: the same
// policy as webhooks (--allow-private-networks, --allow-cidr).
func destinationDial(o *serveOptions, flags *serveFlags) dialFunc {
	return netguard.NewDialContext(netguard.ClientOptions{AllowPrivate: o.allowPrivate, AllowCIDRs: flags.cidrs})
}

// destinationTransports is the engine's Config.Transports: the HTTP one and
// each destination's, keyed by endpoint type.
func destinationTransports(web delivery.Transport, ds []destination) map[string]delivery.Transport {
	out := map[string]delivery.Transport{delivery.TransportWebhook: web}
	for _, d := range ds {
		out[d.check.Type()] = d.transport
	}
	return out
}

// destinationChecks is app.Config.Destinations.
func destinationChecks(ds []destination) []kinehook.DestinationType {
	out := make([]kinehook.DestinationType, 0, len(ds))
	for _, d := range ds {
		out = append(out, d.check)
	}
	return out
}
