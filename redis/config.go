// Package redis delivers events to Redis Streams: it is the transport of
// endpoints of type "redis". Each delivery is one XADD to the endpoint's
// stream (trimmed with MAXLEN ~ N when the endpoint sets max_len) with the
// fields body (the webhook body byte for byte), webhook-id,
// webhook-timestamp, webhook-signature (exactly as an HTTP delivery carries
// them) and event (the event type); the entry id Redis answers is the
// confirmation.
//
// The package has two halves: Type checks an endpoint's config and
// credentials (the application layer asks it before storing the endpoint),
// and Transport publishes (the delivery engine calls it). cmd/kinehook
// wires both; Transport dials only through the function it is given, the
// SSRF guard's.
package redis

import (
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/kinehook/kinehook"
)

// DefaultPort is the Redis port, added to a url without one.
const DefaultPort = "6379"

// Bounds of a config.
const (
	// MaxStreamLength bounds a stream key (bytes).
	MaxStreamLength = 512
	// MaxDB is the highest database number accepted in the url's path.
	MaxDB = 65535
	// MaxMaxLen bounds max_len.
	MaxMaxLen = 1 << 40
)

// Config is a Redis endpoint's config.
type Config struct {
	// URL is the server: redis://host[:port][/db] (rediss:// for TLS);
	// normalised with the port and the database (0 when absent).
	URL string `json:"url"`
	// Stream is the key of the stream entries are added to (created by the
	// first XADD when absent).
	Stream string `json:"stream"`
	// MaxLen, when set, trims the stream to about that many entries on
	// each XADD (MAXLEN ~ N).
	MaxLen *int64 `json:"max_len,omitempty"`
}

// Credential names a Redis endpoint accepts: password alone (AUTH
// password) or username with password (an ACL user).
const (
	CredentialUsername = "username"
	CredentialPassword = "password"
)

// Type is the kinehook.DestinationType of Redis endpoints.
type Type struct{}

var _ kinehook.DestinationType = Type{}

// Type implements kinehook.DestinationType.
func (Type) Type() string { return kinehook.EndpointRedis }

// Normalize checks a Redis config and its credentials and returns the
// config as stored: {"url":"redis://host:port/db","stream":"...","max_len":N}.
func (Type) Normalize(raw json.RawMessage, creds map[string]string) (json.RawMessage, error) {
	return kinehook.NormalizeDestination(raw, creds, ParseConfig, func(_ Config, creds map[string]string) error { return checkCredentials(creds) })
}

// Hosts implements kinehook.DestinationType: the server's host:port.
func (Type) Hosts(raw json.RawMessage) []string { return kinehook.ConfigURLHost(raw) }

// Summary implements kinehook.DestinationType: "redis://h:6379/0 → stream"
// (with " (max_len ~N)" when trimmed).
func (Type) Summary(raw json.RawMessage) string {
	var c Config
	if json.Unmarshal(raw, &c) != nil {
		return string(raw)
	}
	s := c.URL + " → " + c.Stream
	if c.MaxLen != nil {
		s += " (max_len ~" + strconv.FormatInt(*c.MaxLen, 10) + ")"
	}
	return s
}

// ParseConfig reads and checks a Redis config, returning it normalised.
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
	if err := checkStream(c.Stream); err != nil {
		return Config{}, &kinehook.Error{Code: kinehook.EINVALID, Field: "config.stream", Message: "config.stream " + err.Error()}
	}
	if c.MaxLen != nil && (*c.MaxLen < 1 || *c.MaxLen > MaxMaxLen) {
		return Config{}, &kinehook.Error{Code: kinehook.EINVALID, Field: "config.max_len",
			Message: fmt.Sprintf("config.max_len must be from 1 to %d (omit it to keep every entry)", int64(MaxMaxLen))}
	}
	return c, nil
}

// serverAddr is a parsed, normalised url.
type serverAddr struct {
	tls  bool
	host string // host:port
	name string // the host name, for TLS verification
	db   int
}

// parseURL splits a normalised url.
func parseURL(s string) (serverAddr, error) {
	u, err := url.Parse(s)
	if err != nil {
		return serverAddr{}, err
	}
	db, _ := strconv.Atoi(strings.TrimPrefix(u.Path, "/"))
	return serverAddr{tls: u.Scheme == "rediss", host: u.Host, name: u.Hostname(), db: db}, nil
}

// normalizeURL checks a server url and gives it its port and database.
func normalizeURL(s string) (string, error) {
	if s == "" {
		return "", fmt.Errorf("is required, e.g. \"redis://redis.example.com:6379/0\"")
	}
	if len(s) > 2048 {
		return "", fmt.Errorf("is longer than 2048 characters")
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return "", fmt.Errorf("does not parse: %v", err)
	case u.Scheme != "redis" && u.Scheme != "rediss":
		return "", fmt.Errorf("must be redis://host:port/db (or rediss://host:port/db for TLS), not %q", s)
	case u.User != nil:
		if _, ok := u.User.Password(); ok {
			return "", fmt.Errorf("must not carry a password: give it in credentials (password, and username for an ACL user), where it is write-only and sealed")
		}
		return "", fmt.Errorf("must not carry a user name: give it in credentials (username and password)")
	case u.Hostname() == "":
		return "", fmt.Errorf("has no host")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.Opaque != "" || u.RawPath != "":
		return "", fmt.Errorf("must be only scheme, host, port and database, e.g. \"redis://redis.example.com:6379/0\"")
	}
	port := u.Port()
	if port == "" {
		port = DefaultPort
	}
	if n, ok := parseUint(port, 5); !ok || n == 0 || n > 65535 {
		return "", fmt.Errorf("has an invalid port %q", port)
	}
	db := 0
	if p := strings.TrimPrefix(u.Path, "/"); p != "" {
		n, ok := parseUint(p, 5)
		if !ok || n > MaxDB {
			return "", fmt.Errorf("has an invalid database %q: the path is the database number, 0 to %d", u.Path, MaxDB)
		}
		db = n
	}
	return u.Scheme + "://" + net.JoinHostPort(u.Hostname(), port) + "/" + strconv.Itoa(db), nil
}

// parseUint reads 1 to maxDigits decimal digits.
func parseUint(p string, maxDigits int) (int, bool) {
	if p == "" || len(p) > maxDigits {
		return 0, false
	}
	n := 0
	for _, c := range p {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// checkStream accepts a stream key: non-empty valid UTF-8 text without
// control characters, at most MaxStreamLength bytes.
func checkStream(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("is required, e.g. \"kinehook:events\"")
	case len(s) > MaxStreamLength:
		return fmt.Errorf("is longer than %d bytes", MaxStreamLength)
	case !utf8.ValidString(s):
		return fmt.Errorf("is not valid UTF-8")
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		return fmt.Errorf("%q has a control character", s)
	}
	return nil
}

// checkCredentials accepts password, username with password, or none.
func checkCredentials(creds map[string]string) error {
	if err := kinehook.OnlyCredentials(creds, CredentialUsername, CredentialPassword); err != nil {
		return err
	}
	_, user := creds[CredentialUsername]
	if _, pw := creds[CredentialPassword]; user && !pw {
		return &kinehook.Error{Code: kinehook.EINVALID, Field: "credentials", Message: "credentials username needs a password"}
	}
	return nil
}
