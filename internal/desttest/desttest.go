// Package desttest is a destination type for the tests of the layers above
// the transports (app, http, dashboard), which import no transport: it
// checks a NATS-shaped config ({"url": "nats://host:port", "subject"}) and
// the credentials user, password and token, as package nats does.
package desttest

import (
	"encoding/json"
	"net/url"
	"strings"

	"github.com/kinehook/kinehook"
)

// NATS is the test destination type "nats".
type NATS struct{}

var _ kinehook.DestinationType = NATS{}

// Type implements kinehook.DestinationType.
func (NATS) Type() string { return kinehook.EndpointNATS }

type config struct {
	URL     string `json:"url"`
	Subject string `json:"subject"`
}

// Normalize implements kinehook.DestinationType.
func (NATS) Normalize(raw json.RawMessage, creds map[string]string) (json.RawMessage, error) {
	var c config
	if err := kinehook.DecodeConfig(raw, &c); err != nil {
		return nil, err
	}
	if c.Subject == "" {
		return nil, &kinehook.Error{Code: kinehook.EINVALID, Field: "config.subject", Message: "config.subject is required"}
	}
	if u, err := url.Parse(c.URL); err != nil || u.Scheme != "nats" || u.Host == "" {
		return nil, &kinehook.Error{Code: kinehook.EINVALID, Field: "config.url", Message: "config.url must be nats://host:port"}
	}
	if err := kinehook.OnlyCredentials(creds, "user", "password", "token"); err != nil {
		return nil, err
	}
	return json.Marshal(c)
}

// Hosts implements kinehook.DestinationType.
func (NATS) Hosts(raw json.RawMessage) []string {
	var c config
	_ = json.Unmarshal(raw, &c)
	return []string{strings.TrimPrefix(c.URL, "nats://")}
}

// Summary implements kinehook.DestinationType.
func (NATS) Summary(raw json.RawMessage) string {
	var c config
	_ = json.Unmarshal(raw, &c)
	return c.URL + " → " + c.Subject
}
