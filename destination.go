package kinehook

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"
)

// Endpoint types: where an endpoint's deliveries go. A webhook is an HTTP
// POST to Endpoint.URL; every other type is an event destination, a broker
// described by Endpoint.Config (and Endpoint.Credentials) and carried by its
// own transport package.
const (
	EndpointWebhook  = "webhook"
	EndpointNATS     = "nats"
	EndpointRabbitMQ = "rabbitmq"
	EndpointRedis    = "redis"
	EndpointKafka    = "kafka"
)

// EndpointTypes lists every endpoint type kinehook knows, webhook first. A
// server accepts only those it has a transport for (see DestinationType).
var EndpointTypes = []string{EndpointWebhook, EndpointNATS, EndpointRabbitMQ, EndpointRedis, EndpointKafka}

// TypeOf is e's type: EndpointWebhook when unset (endpoints stored before
// types existed, and every endpoint Kinescope's facade makes).
func (e *Endpoint) TypeOf() string {
	if e.Type == "" {
		return EndpointWebhook
	}
	return e.Type
}

// DestinationType checks the settings of one endpoint type other than
// webhook: the application layer asks it before storing an endpoint, and
// the dashboard shows its summary. Each destination package (nats, ...)
// provides one beside its delivery transport; cmd/kinehook wires both.
// Implementations must be safe for concurrent use and do no I/O.
type DestinationType interface {
	// Type is the endpoint type served (EndpointNATS, ...).
	Type() string
	// Normalize checks config and credentials and returns the config in
	// its canonical form (compact JSON, defaults filled in), which is what
	// is stored. A refusal is an *Error with Field "config",
	// "config.<key>" or "credentials" and a message naming what is wrong.
	// credentials is the merged set the endpoint will hold; it is not
	// changed.
	Normalize(config json.RawMessage, credentials map[string]string) (json.RawMessage, error)
	// Hosts lists the hosts (host or host:port) a normalised config
	// connects to, so the caller applies the SSRF guard's literal-host
	// check to them as it does to a webhook URL's host. The transport
	// checks each address again at dial time.
	Hosts(config json.RawMessage) []string
	// Summary is a short line for lists, e.g. "nats://h:4222 → orders".
	Summary(config json.RawMessage) string
}

// Limits on credentials.
const (
	MaxCredentials      = 16
	MaxCredentialLength = 8192
	// MaxConfigBytes bounds an endpoint's config as given.
	MaxConfigBytes = 16 << 10
)

// MaskedCredential is how every credential value is answered on read: the
// names are shown, never the values, not even their last characters (a
// password's tail is still part of the password).
const MaskedCredential = "****"

// MaskCredentials returns the names of creds, each with the value
// MaskedCredential; nil for none.
func MaskCredentials(creds map[string]string) map[string]string {
	if len(creds) == 0 {
		return nil
	}
	out := make(map[string]string, len(creds))
	for k := range creds {
		out[k] = MaskedCredential
	}
	return out
}

// CredentialNames lists the names of creds, sorted.
func CredentialNames(creds map[string]string) []string {
	return slices.Sorted(maps.Keys(creds))
}

// MergeCredentials applies a change of credentials to the stored ones, as
// every update does (PATCH, dashboard, CLI): a name given with a value sets
// it; given with MaskedCredential (as read back) keeps the stored value;
// given with "" removes it; a name not given stays. A nil change keeps
// everything. The result is a new map (nil when empty); stored is not
// changed.
func MergeCredentials(stored, change map[string]string) map[string]string {
	out := maps.Clone(stored)
	for k, v := range change {
		switch v {
		case MaskedCredential:
		case "":
			delete(out, k)
		default:
			if out == nil {
				out = map[string]string{}
			}
			out[k] = v
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// ValidateCredentials checks credentials as given: at most MaxCredentials,
// names of letters, digits and _ . -, values of at most MaxCredentialLength
// bytes of valid UTF-8 without NUL. Which names a type accepts is its
// DestinationType's check.
func ValidateCredentials(creds map[string]string) error {
	if len(creds) > MaxCredentials {
		return &Error{Code: EINVALID, Field: "credentials", Message: fmt.Sprintf("at most %d credentials", MaxCredentials)}
	}
	for k, v := range creds {
		if k == "" || len(k) > 64 || strings.IndexFunc(k, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-')
		}) >= 0 {
			return &Error{Code: EINVALID, Field: "credentials", Message: fmt.Sprintf("credential name %q must be 1 to 64 letters, digits, '_', '.' or '-'", k)}
		}
		if len(v) > MaxCredentialLength || !utf8.ValidString(v) || strings.IndexByte(v, 0) >= 0 {
			return &Error{Code: EINVALID, Field: "credentials", Message: fmt.Sprintf("credential %q must be valid text without NUL, at most %d bytes", k, MaxCredentialLength)}
		}
	}
	return nil
}

// OnlyCredentials refuses a credential whose name is not in allowed (a
// DestinationType's check), naming the accepted ones.
func OnlyCredentials(creds map[string]string, allowed ...string) error {
	for _, k := range CredentialNames(creds) {
		if !slices.Contains(allowed, k) {
			return &Error{Code: EINVALID, Field: "credentials", Message: fmt.Sprintf("unknown credential %q; expected %s", k, strings.Join(allowed, ", "))}
		}
	}
	return nil
}

// DecodeConfig reads an endpoint's config into v strictly: a JSON object,
// no unknown key, nothing after the object. Destination packages use it in Normalize.
func DecodeConfig(config json.RawMessage, v any) error {
	if len(config) == 0 || string(config) == "null" {
		return &Error{Code: EINVALID, Field: "config", Message: "config is required: a JSON object"}
	}
	if len(config) > MaxConfigBytes {
		return &Error{Code: EINVALID, Field: "config", Message: fmt.Sprintf("config is larger than %d bytes", MaxConfigBytes)}
	}
	if !json.Valid(config) {
		return &Error{Code: EINVALID, Field: "config", Message: "config is not valid JSON"}
	}
	if t := strings.TrimLeft(string(config), " \t\r\n"); !strings.HasPrefix(t, "{") {
		return &Error{Code: EINVALID, Field: "config", Message: "config must be a JSON object"}
	}
	d := json.NewDecoder(strings.NewReader(string(config)))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		msg := err.Error()
		if s, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
			msg = "unknown key " + s
		} else if strings.Contains(msg, "cannot unmarshal") {
			msg = "wrong type: " + strings.TrimPrefix(msg, "json: ")
		}
		return &Error{Code: EINVALID, Field: "config", Message: "config: " + msg}
	}
	return nil
}

// NormalizeDestination is a DestinationType's Normalize as every
// destination package writes it: the config read, checked and normalised by
// parse, the credentials checked against it by check, the config encoded as
// it is stored and answered.
func NormalizeDestination[T any](raw json.RawMessage, creds map[string]string, parse func(json.RawMessage) (T, error), check func(T, map[string]string) error) (json.RawMessage, error) {
	c, err := parse(raw)
	if err != nil {
		return nil, err
	}
	if err := check(c, creds); err != nil {
		return nil, err
	}
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	return b, nil
}

// ConfigURLHost is a DestinationType's Hosts for a config with one broker
// URL in its "url" member: that URL's host:port (none when it does not
// parse: Normalize refuses such a config).
func ConfigURLHost(raw json.RawMessage) []string {
	var c struct {
		URL string `json:"url"`
	}
	if json.Unmarshal(raw, &c) != nil {
		return nil
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		return nil
	}
	return []string{u.Host}
}
