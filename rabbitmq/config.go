// Package rabbitmq delivers events to RabbitMQ: it is the transport of
// endpoints of type "rabbitmq". Each delivery is one AMQP 0-9-1 publish to
// the endpoint's exchange with its routing key, persistent (delivery mode
// 2) and mandatory, on a channel in confirm mode: the broker's ack is a
// success; a nack, or the message returned as unroutable, is its refusal.
// The message body is the webhook body byte for byte, message_id is the
// webhook id, and the webhook-id, webhook-timestamp and webhook-signature
// headers are exactly those of an HTTP delivery.
//
// Type checks an endpoint's config and credentials (the application layer
// asks it before storing the endpoint); Transport publishes (the delivery
// engine calls it). cmd/kinehook wires both; Transport dials only through
// the function it is given, the SSRF guard's.
package rabbitmq

import (
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/kinehook/kinehook"
)

// Default ports, added to a url without one.
const (
	DefaultPort    = "5672"
	DefaultTLSPort = "5671"
)

// MaxNameLength bounds an exchange name, a routing key and a vhost
// (bytes): AMQP's short string.
const MaxNameLength = 255

// DefaultVhost is RabbitMQ's default virtual host, the one of a url
// without a path (or with "/").
const DefaultVhost = "/"

// Config is a RabbitMQ endpoint's config.
type Config struct {
	// URL is the broker: amqp://host[:port][/vhost] (amqps:// for TLS);
	// normalised with the port, the vhost path-escaped ("/" for the
	// default vhost, whose url ends in "/").
	URL string `json:"url"`
	// Exchange is where messages are published; "" is the default
	// exchange, which routes to the queue named by the routing key.
	Exchange string `json:"exchange"`
	// RoutingKey is the routing key of every message; required with the
	// default exchange (it is the queue's name there).
	RoutingKey string `json:"routing_key"`
}

// Credential names a RabbitMQ endpoint accepts.
const (
	CredentialUsername = "username"
	CredentialPassword = "password"
)

// Type is the kinehook.DestinationType of RabbitMQ endpoints.
type Type struct{}

var _ kinehook.DestinationType = Type{}

// Type implements kinehook.DestinationType.
func (Type) Type() string { return kinehook.EndpointRabbitMQ }

// Normalize checks a RabbitMQ config and its credentials and returns the
// config as stored: {"url":"amqp://host:port/vhost","exchange":"...","routing_key":"..."}.
func (Type) Normalize(raw json.RawMessage, creds map[string]string) (json.RawMessage, error) {
	return kinehook.NormalizeDestination(raw, creds, ParseConfig, func(_ Config, creds map[string]string) error { return checkCredentials(creds) })
}

// Hosts implements kinehook.DestinationType: the broker's host:port.
func (Type) Hosts(raw json.RawMessage) []string { return kinehook.ConfigURLHost(raw) }

// Summary implements kinehook.DestinationType:
// "amqp://h:5672/ → exchange "x", routing key "k"".
func (Type) Summary(raw json.RawMessage) string {
	var c Config
	if json.Unmarshal(raw, &c) != nil {
		return string(raw)
	}
	if c.Exchange == "" {
		return c.URL + " → queue " + c.RoutingKey
	}
	return fmt.Sprintf("%s → exchange %s, routing key %q", c.URL, c.Exchange, c.RoutingKey)
}

// ParseConfig reads and checks a RabbitMQ config, returning it normalised.
func ParseConfig(raw json.RawMessage) (Config, error) {
	var c Config
	if err := kinehook.DecodeConfig(raw, &c); err != nil {
		return Config{}, err
	}
	u, _, err := normalizeURL(c.URL)
	if err != nil {
		return Config{}, &kinehook.Error{Code: kinehook.EINVALID, Field: "config.url", Message: "config.url " + err.Error()}
	}
	c.URL = u
	if err := checkName(c.Exchange); err != nil {
		return Config{}, &kinehook.Error{Code: kinehook.EINVALID, Field: "config.exchange", Message: "config.exchange " + err.Error()}
	}
	if err := checkName(c.RoutingKey); err != nil {
		return Config{}, &kinehook.Error{Code: kinehook.EINVALID, Field: "config.routing_key", Message: "config.routing_key " + err.Error()}
	}
	if c.Exchange == "" && c.RoutingKey == "" {
		return Config{}, &kinehook.Error{Code: kinehook.EINVALID, Field: "config.routing_key",
			Message: "config.routing_key is required with the default exchange (\"exchange\": \"\"): it is the name of the queue"}
	}
	return c, nil
}

// Vhost is the virtual host of a normalised url.
func Vhost(normalized string) string {
	_, v, err := normalizeURL(normalized)
	if err != nil {
		return DefaultVhost
	}
	return v
}

// normalizeURL checks a broker url and returns it with its port and its
// vhost escaped, and the vhost.
func normalizeURL(s string) (string, string, error) {
	if s == "" {
		return "", "", fmt.Errorf("is required, e.g. \"amqp://rabbitmq.example.com:5672/vhost\"")
	}
	if len(s) > 2048 {
		return "", "", fmt.Errorf("is longer than 2048 characters")
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return "", "", fmt.Errorf("does not parse: %v", err)
	case u.Scheme != "amqp" && u.Scheme != "amqps":
		return "", "", fmt.Errorf("must be amqp://host:port/vhost (or amqps:// for TLS), not %q", s)
	case u.User != nil:
		return "", "", fmt.Errorf("must not carry a username or password: give them in credentials (username, password)")
	case u.Hostname() == "":
		return "", "", fmt.Errorf("has no host")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.Opaque != "":
		return "", "", fmt.Errorf("must be only scheme, host, port and vhost, e.g. \"amqp://rabbitmq.example.com:5672/vhost\" (no query or fragment)")
	}
	port := u.Port()
	if port == "" {
		port = DefaultPort
		if u.Scheme == "amqps" {
			port = DefaultTLSPort
		}
	}
	if n, ok := parsePort(port); !ok || n == 0 {
		return "", "", fmt.Errorf("has an invalid port %q", port)
	}
	vhost := DefaultVhost
	if p := u.EscapedPath(); p != "" && p != "/" {
		rest := p[1:]
		if strings.Contains(rest, "/") {
			return "", "", fmt.Errorf("has a path with a '/': the vhost is one path segment (write a '/' in a vhost name as %%2F)")
		}
		v, err := url.PathUnescape(rest)
		if err != nil {
			return "", "", fmt.Errorf("has a badly escaped vhost: %v", err)
		}
		if err := checkName(v); err != nil {
			return "", "", fmt.Errorf("vhost %v", err)
		}
		vhost = v
	}
	path := "/"
	if vhost != DefaultVhost {
		path += url.PathEscape(vhost)
	}
	out := u.Scheme + "://" + net.JoinHostPort(u.Hostname(), port) + path
	if _, err := url.Parse(out); err != nil {
		return "", "", fmt.Errorf("has an invalid host %q", u.Hostname())
	}
	return out, vhost, nil
}

func parsePort(p string) (int, bool) {
	if p == "" || len(p) > 5 {
		return 0, false
	}
	n := 0
	for _, c := range p {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n <= 65535
}

// checkName accepts an AMQP short string one can name things with: at
// most 255 bytes of valid UTF-8 without control characters.
func checkName(s string) error {
	switch {
	case len(s) > MaxNameLength:
		return fmt.Errorf("is longer than %d bytes", MaxNameLength)
	case !utf8.ValidString(s):
		return fmt.Errorf("is not valid UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return fmt.Errorf("%q has a control character", s)
		}
	}
	return nil
}

// checkCredentials accepts username with password, or none (the broker's
// default user then: guest, which RabbitMQ admits only on loopback).
func checkCredentials(creds map[string]string) error {
	if err := kinehook.OnlyCredentials(creds, CredentialUsername, CredentialPassword); err != nil {
		return err
	}
	_, user := creds[CredentialUsername]
	_, pw := creds[CredentialPassword]
	if user != pw {
		return &kinehook.Error{Code: kinehook.EINVALID, Field: "credentials", Message: "credentials username and password go together"}
	}
	return nil
}
