// Package nats delivers events to NATS JetStream: it is the transport of
// endpoints of type "nats". Each delivery is one JetStream publish to the
// endpoint's subject, acknowledged by the stream: the message data is the
// webhook body byte for byte, with the webhook-id, webhook-timestamp and
// webhook-signature headers exactly as an HTTP delivery carries them, and
// Nats-Msg-Id = the webhook id, so JetStream drops a retry's duplicate
// within the stream's duplicate window.
//
// The package has two halves: Type checks an endpoint's config and
// credentials (the application layer asks it before storing the endpoint),
// and Transport publishes (the delivery engine calls it). cmd/kinehook
// wires both; Transport dials only through the function it is given, the
// SSRF guard's.
package nats

import (
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"strings"
	"unicode"

	"github.com/kinehook/kinehook"
)

// DefaultPort is the NATS client port, added to a url without one.
const DefaultPort = "4222"

// MaxSubjectLength bounds a subject (bytes).
const MaxSubjectLength = 255

// Config is a NATS endpoint's config.
type Config struct {
	// URL is the server: nats://host[:port] (or tls://host[:port] for
	// TLS); normalised with the port.
	URL string `json:"url"`
	// Subject is where events are published; a JetStream stream must be
	// bound to it (a stream is the receiver's to create).
	Subject string `json:"subject"`
}

// Credential names a NATS endpoint accepts: user with password, or token.
const (
	CredentialUser     = "user"
	CredentialPassword = "password"
	CredentialToken    = "token"
)

// Type is the kinehook.DestinationType of NATS endpoints.
type Type struct{}

var _ kinehook.DestinationType = Type{}

// Type implements kinehook.DestinationType.
func (Type) Type() string { return kinehook.EndpointNATS }

// Normalize checks a NATS config and its credentials and returns the config
// as stored: {"url":"nats://host:port","subject":"..."}.
func (Type) Normalize(raw json.RawMessage, creds map[string]string) (json.RawMessage, error) {
	return kinehook.NormalizeDestination(raw, creds, ParseConfig, func(_ Config, creds map[string]string) error { return checkCredentials(creds) })
}

// Hosts implements kinehook.DestinationType: the server's host:port.
func (Type) Hosts(raw json.RawMessage) []string { return kinehook.ConfigURLHost(raw) }

// Summary implements kinehook.DestinationType: "nats://h:4222 → subject".
func (Type) Summary(raw json.RawMessage) string {
	var c Config
	if json.Unmarshal(raw, &c) != nil {
		return string(raw)
	}
	return c.URL + " → " + c.Subject
}

// ParseConfig reads and checks a NATS config, returning it normalised.
func ParseConfig(raw json.RawMessage) (Config, error) {
	var c Config
	if err := kinehook.DecodeConfig(raw, &c); err != nil {
		return Config{}, err
	}
	u, err := normalizeURL(c.URL)
	if err != nil {
		return Config{}, &kinehook.Error{Code: kinehook.EINVALID, Field: "config.url", Message: "config.url " + err.Error()}
	}
	c.URL = u
	if err := checkSubject(c.Subject); err != nil {
		return Config{}, &kinehook.Error{Code: kinehook.EINVALID, Field: "config.subject", Message: "config.subject " + err.Error()}
	}
	return c, nil
}

// normalizeURL checks a server url and gives it its port.
func normalizeURL(s string) (string, error) {
	if s == "" {
		return "", fmt.Errorf("is required, e.g. \"nats://nats.example.com:4222\"")
	}
	if len(s) > 2048 {
		return "", fmt.Errorf("is longer than 2048 characters")
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return "", fmt.Errorf("does not parse: %v", err)
	case u.Scheme != "nats" && u.Scheme != "tls":
		return "", fmt.Errorf("must be nats://host:port (or tls://host:port), not %q", s)
	case u.User != nil:
		return "", fmt.Errorf("must not carry a user or password: give them in credentials (user, password or token)")
	case u.Hostname() == "":
		return "", fmt.Errorf("has no host")
	case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "":
		return "", fmt.Errorf("must be only scheme, host and port, e.g. \"nats://nats.example.com:4222\"")
	}
	port := u.Port()
	if port == "" {
		port = DefaultPort
	}
	if n, ok := parsePort(port); !ok || n == 0 {
		return "", fmt.Errorf("has an invalid port %q", port)
	}
	return u.Scheme + "://" + net.JoinHostPort(u.Hostname(), port), nil
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

// checkSubject accepts a subject one can publish to: dot-separated
// non-empty tokens of printable characters without spaces, no wildcard
// (* or >), and not a reserved $ subject (JetStream's API, the system's).
func checkSubject(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("is required, e.g. \"kinehook.events\"")
	case len(s) > MaxSubjectLength:
		return fmt.Errorf("is longer than %d bytes", MaxSubjectLength)
	case strings.HasPrefix(s, "$"):
		return fmt.Errorf("must not start with '$' (reserved for NATS and JetStream)")
	}
	for _, tok := range strings.Split(s, ".") {
		switch {
		case tok == "":
			return fmt.Errorf("%q has an empty token (a leading, trailing or doubled '.')", s)
		case tok == "*" || tok == ">":
			return fmt.Errorf("%q has a wildcard: events are published to one subject", s)
		}
		for _, r := range tok {
			if r == unicode.ReplacementChar || unicode.IsSpace(r) || !unicode.IsPrint(r) {
				return fmt.Errorf("%q has a space or a control character", s)
			}
		}
	}
	return nil
}

// checkCredentials accepts user with password, token, or none.
func checkCredentials(creds map[string]string) error {
	if err := kinehook.OnlyCredentials(creds, CredentialUser, CredentialPassword, CredentialToken); err != nil {
		return err
	}
	_, user := creds[CredentialUser]
	_, pw := creds[CredentialPassword]
	_, tok := creds[CredentialToken]
	switch {
	case user != pw:
		return &kinehook.Error{Code: kinehook.EINVALID, Field: "credentials", Message: "credentials user and password go together"}
	case tok && user:
		return &kinehook.Error{Code: kinehook.EINVALID, Field: "credentials", Message: "give either user and password or token, not both"}
	}
	return nil
}
