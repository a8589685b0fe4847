// Package kafka delivers events to Apache Kafka: it is the transport of
// endpoints of type "kafka". Each delivery is one record produced to the
// endpoint's topic by an idempotent producer with acks=all: the record key
// is the event's resource (the video or live event id), so one resource
// stays in one partition, in order; the value is the webhook body byte for
// byte; the headers carry webhook-id, webhook-timestamp and
// webhook-signature exactly as an HTTP delivery does, the event type and
// the endpoint's custom headers.
//
// The package has two halves: Type checks an endpoint's config and
// credentials (the application layer asks it before storing the endpoint),
// and Transport produces (the delivery engine calls it). cmd/kinehook wires
// both; Transport dials every broker, the bootstrap ones and those the
// cluster's metadata names, only through the function it is given, the
// SSRF guard's.
package kafka

import (
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/kinehook/kinehook"
)

// DefaultPort is Kafka's port, added to a broker address without one.
const DefaultPort = "9092"

// Limits of a config.
const (
	// MaxBrokers bounds the bootstrap brokers of one endpoint.
	MaxBrokers = 16
	// MaxTopicLength is Kafka's own limit on a topic name.
	MaxTopicLength = 249
)

// SASL mechanisms a config names (lower case as stored; given in any case).
const (
	SASLNone        = ""
	SASLPlain       = "plain"
	SASLScramSHA256 = "scram-sha-256"
	SASLScramSHA512 = "scram-sha-512"
)

// Credential names: the SASL user and password.
const (
	CredentialUsername = "username"
	CredentialPassword = "password"
)

// Config is a Kafka endpoint's config.
type Config struct {
	// Brokers are the bootstrap brokers, host:port (the port defaults to
	// 9092); the client learns the others from the cluster's metadata.
	Brokers []string `json:"brokers"`
	// Topic is where records are produced; it must exist (creating it,
	// with its partitions and retention, is the receiver's business).
	Topic string `json:"topic"`
	// TLS connects with TLS (system roots), as Kafka's SSL and SASL_SSL
	// listeners expect.
	TLS bool `json:"tls"`
	// TLSServerName is the name the brokers' certificates are checked
	// against, when it is not the host dialled (only with TLS).
	TLSServerName string `json:"tls_server_name,omitempty"`
	// SASL is the mechanism: "plain", "scram-sha-256", "scram-sha-512",
	// or "" for none; with one, credentials username and password are
	// required.
	SASL string `json:"sasl"`
}

// Type is the kinehook.DestinationType of Kafka endpoints.
type Type struct{}

var _ kinehook.DestinationType = Type{}

// Type implements kinehook.DestinationType.
func (Type) Type() string { return kinehook.EndpointKafka }

// Normalize checks a Kafka config and its credentials and returns the
// config as stored, e.g.
// {"brokers":["h:9092"],"topic":"t","tls":false,"sasl":""}.
func (Type) Normalize(raw json.RawMessage, creds map[string]string) (json.RawMessage, error) {
	return kinehook.NormalizeDestination(raw, creds, ParseConfig, checkCredentials)
}

// Hosts implements kinehook.DestinationType: the bootstrap brokers.
func (Type) Hosts(raw json.RawMessage) []string {
	var c Config
	if json.Unmarshal(raw, &c) != nil {
		return nil
	}
	return c.Brokers
}

// Summary implements kinehook.DestinationType:
// "kafka://h1:9092,h2:9092 → topic (tls, sasl scram-sha-256)".
func (Type) Summary(raw json.RawMessage) string {
	var c Config
	if json.Unmarshal(raw, &c) != nil {
		return string(raw)
	}
	s := "kafka://" + strings.Join(c.Brokers, ",") + " → " + c.Topic
	var extra []string
	if c.TLS {
		extra = append(extra, "tls")
	}
	if c.SASL != "" {
		extra = append(extra, "sasl "+c.SASL)
	}
	if len(extra) > 0 {
		s += " (" + strings.Join(extra, ", ") + ")"
	}
	return s
}

// ParseConfig reads and checks a Kafka config, returning it normalised.
func ParseConfig(raw json.RawMessage) (Config, error) {
	var c Config
	if err := kinehook.DecodeConfig(raw, &c); err != nil {
		return Config{}, err
	}
	if len(c.Brokers) == 0 {
		return Config{}, invalid("config.brokers", "config.brokers is required: a list of host:port, e.g. [\"kafka-1.example.com:9092\"]")
	}
	if len(c.Brokers) > MaxBrokers {
		return Config{}, invalid("config.brokers", fmt.Sprintf("config.brokers has %d entries, at most %d", len(c.Brokers), MaxBrokers))
	}
	seen := make(map[string]bool, len(c.Brokers))
	brokers := make([]string, 0, len(c.Brokers))
	for i, b := range c.Brokers {
		n, err := normalizeBroker(b)
		if err != nil {
			return Config{}, invalid("config.brokers", fmt.Sprintf("config.brokers[%d] %v", i, err))
		}
		if seen[n] {
			return Config{}, invalid("config.brokers", fmt.Sprintf("config.brokers[%d] %q is listed twice", i, n))
		}
		seen[n] = true
		brokers = append(brokers, n)
	}
	c.Brokers = brokers
	if err := checkTopic(c.Topic); err != nil {
		return Config{}, invalid("config.topic", "config.topic "+err.Error())
	}
	switch s := strings.ToLower(c.SASL); s {
	case SASLNone, SASLPlain, SASLScramSHA256, SASLScramSHA512:
		c.SASL = s
	default:
		return Config{}, invalid("config.sasl", fmt.Sprintf("config.sasl %q is not a mechanism kinehook speaks: use \"plain\", \"scram-sha-256\", \"scram-sha-512\" or \"\" (none)", c.SASL))
	}
	if c.TLSServerName != "" {
		switch {
		case !c.TLS:
			return Config{}, invalid("config.tls_server_name", "config.tls_server_name needs \"tls\": true")
		case len(c.TLSServerName) > 253 || strings.ContainsAny(c.TLSServerName, " /:@\t\r\n\x00") || !printable(c.TLSServerName):
			return Config{}, invalid("config.tls_server_name", fmt.Sprintf("config.tls_server_name %q is not a host name", c.TLSServerName))
		}
	}
	return c, nil
}

func invalid(field, msg string) error {
	return &kinehook.Error{Code: kinehook.EINVALID, Field: field, Message: msg}
}

// normalizeBroker checks host[:port] and gives it its port. A URL-like
// address (kafka://h, SASL_SSL://h) is refused with a hint: Kafka clients
// take bare host:port, the protocol is the tls and sasl settings.
func normalizeBroker(s string) (string, error) {
	if s == "" {
		return "", fmt.Errorf("is empty")
	}
	if len(s) > 260 {
		return "", fmt.Errorf("is longer than 260 characters")
	}
	if strings.Contains(s, "://") {
		return "", fmt.Errorf("%q must be host:port without a scheme (TLS and SASL are the \"tls\" and \"sasl\" settings)", s)
	}
	host, port := s, ""
	if h, p, err := net.SplitHostPort(s); err == nil {
		host, port = h, p
	} else if strings.Count(s, ":") > 1 && !strings.HasPrefix(s, "[") {
		host = s // a bare IPv6 address
	} else if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		host = s[1 : len(s)-1]
	} else if strings.Contains(s, ":") {
		return "", fmt.Errorf("%q is not host:port: %v", s, err)
	}
	if strings.Count(host, ":") > 0 && net.ParseIP(host) == nil {
		return "", fmt.Errorf("%q has an invalid IPv6 address", s)
	}
	if host == "" {
		return "", fmt.Errorf("%q has no host", s)
	}
	if !printable(host) || strings.ContainsAny(host, " /?#@[]\\%,") {
		return "", fmt.Errorf("%q has an invalid host", s)
	}
	if port == "" {
		port = DefaultPort
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
		return "", fmt.Errorf("%q has an invalid port %q", s, port)
	}
	return net.JoinHostPort(strings.ToLower(host), port), nil
}

func printable(s string) bool {
	for _, r := range s {
		if r <= ' ' || r == 0x7f || r >= 0x80 {
			return false
		}
	}
	return true
}

// checkTopic accepts what Kafka accepts: 1 to 249 of [a-zA-Z0-9._-], not
// "." or "..", and not an internal topic (a name starting "__").
func checkTopic(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("is required, e.g. \"kinehook-events\"")
	case len(s) > MaxTopicLength:
		return fmt.Errorf("is longer than %d characters", MaxTopicLength)
	case s == "." || s == "..":
		return fmt.Errorf("%q is not a topic name Kafka allows", s)
	case strings.HasPrefix(s, "__"):
		return fmt.Errorf("%q is an internal topic (names starting \"__\" are Kafka's)", s)
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("%q has %q: Kafka topics are letters, digits, '.', '_' and '-'", s, r)
		}
	}
	return nil
}

// checkCredentials requires username and password with a SASL mechanism
// and refuses them without one (they would be silently unused).
func checkCredentials(c Config, creds map[string]string) error {
	if err := kinehook.OnlyCredentials(creds, CredentialUsername, CredentialPassword); err != nil {
		return err
	}
	_, user := creds[CredentialUsername]
	_, pw := creds[CredentialPassword]
	switch {
	case c.SASL == SASLNone && (user || pw):
		return invalid("credentials", "credentials username and password are for SASL: set config.sasl to \"plain\", \"scram-sha-256\" or \"scram-sha-512\"")
	case c.SASL != SASLNone && (!user || !pw || creds[CredentialUsername] == ""):
		return invalid("credentials", fmt.Sprintf("config.sasl %q needs credentials username and password", c.SASL))
	}
	return nil
}
