package source

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Spec is one configured ingest source: which broker, where, and which
// project its events go to.
type Spec struct {
	// Name names the source in logs, metrics, rejected inputs and derived
	// idempotency keys; by default broker:stream (or queue, topic).
	Name string
	// Project is the id of the project the events are published to.
	Project string
	// Broker is nats, rabbitmq, redis or kafka.
	Broker string
	// URL is the broker's address without kinehook's parameters.
	URL *url.URL
	// Params are the broker parameters kinehook reads (stream, consumer,
	// queue, group, topic, ...), see Brokers.
	Params url.Values
	// Batch bounds the messages of one commit (0: DefaultBatch).
	Batch int
}

// Param returns a broker parameter, or def when it is not given.
func (s Spec) Param(name, def string) string {
	if v := s.Params.Get(name); v != "" {
		return v
	}
	return def
}

// Brokers lists, per broker, the URL schemes that select it and the query
// parameters it reads beside the common ones (project, name, batch).
// Parameters not listed are refused, except on rabbitmq and redis URLs,
// whose clients take options of their own in the query (heartbeat,
// dial_timeout, ...).
var Brokers = map[string]struct {
	Schemes []string
	Params  []string
	// Main is the parameter that names the default source (stream,
	// queue, topic); required.
	Main string
	// PassThrough lets unknown parameters through to the client.
	PassThrough bool
}{
	"nats":     {Schemes: []string{"nats", "tls"}, Params: []string{"stream", "consumer", "subject", "ack_wait", "key_header"}, Main: "stream"},
	"rabbitmq": {Schemes: []string{"amqp", "amqps"}, Params: []string{"queue", "key_header"}, Main: "queue", PassThrough: true},
	"redis":    {Schemes: []string{"redis", "rediss"}, Params: []string{"stream", "group", "consumer", "key_field", "body_field"}, Main: "stream", PassThrough: true},
	"kafka":    {Schemes: []string{"kafka", "kafka+tls"}, Params: []string{"topic", "group", "key_header", "sasl_mechanism"}, Main: "topic"},
}

// MaxNameLen bounds a source's name (it is part of derived idempotency keys).
const MaxNameLen = 100

// ParseURL reads one --source value, such as
// nats://127.0.0.1:4222?stream=S&consumer=C&project=prj_...; name and
// project, when not empty, are used where the URL has none (a config
// file's fields).
func ParseURL(raw, name, project string) (Spec, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return Spec{}, fmt.Errorf("source %q is not a URL: %w", redact(raw), err)
	}
	var s Spec
	for b, def := range Brokers {
		if slices.Contains(def.Schemes, u.Scheme) {
			s.Broker = b
		}
	}
	if s.Broker == "" {
		return Spec{}, fmt.Errorf("source %s: scheme %q is not one of nats://, amqp://, amqps://, redis://, rediss://, kafka://", redactURL(u), u.Scheme)
	}
	if u.Host == "" {
		return Spec{}, fmt.Errorf("source %s: the URL has no host", redactURL(u))
	}
	def := Brokers[s.Broker]
	q := u.Query()
	s.Params = url.Values{}
	pass := url.Values{}
	for k, vs := range q {
		switch {
		case k == "project" || k == "name" || k == "batch":
		case slices.Contains(def.Params, k):
			s.Params[k] = vs
		case def.PassThrough:
			pass[k] = vs
		default:
			return Spec{}, fmt.Errorf("source %s: unknown parameter %q (a %s source takes project, name, batch, %s)", redactURL(u), k, s.Broker, strings.Join(def.Params, ", "))
		}
		if len(vs) > 1 {
			return Spec{}, fmt.Errorf("source %s: parameter %q is given %d times", redactURL(u), k, len(vs))
		}
	}
	s.Project = q.Get("project")
	if s.Project == "" {
		s.Project = project
	}
	if s.Project == "" {
		return Spec{}, fmt.Errorf("source %s: no project (add project=prj_... to the URL)", redactURL(u))
	}
	if s.Params.Get(def.Main) == "" {
		return Spec{}, fmt.Errorf("source %s: no %s (add %s=... to the URL)", redactURL(u), def.Main, def.Main)
	}
	s.Name = q.Get("name")
	if s.Name == "" {
		s.Name = name
	}
	if s.Name == "" {
		s.Name = s.Broker + ":" + s.Params.Get(def.Main)
	}
	if err := checkName(s.Name); err != nil {
		return Spec{}, fmt.Errorf("source %s: %w", redactURL(u), err)
	}
	if b := q.Get("batch"); b != "" {
		n, err := strconv.Atoi(b)
		if err != nil || n < 1 || n > 10000 {
			return Spec{}, fmt.Errorf("source %s: batch=%q is not a number from 1 to 10000", redactURL(u), b)
		}
		s.Batch = n
	}
	u.RawQuery = pass.Encode()
	u.Fragment = ""
	s.URL = u
	return s, nil
}

// checkName allows letters, digits and . _ : - (it shows in metrics' labels,
// logs and idempotency keys).
func checkName(n string) error {
	if n == "" || len(n) > MaxNameLen {
		return fmt.Errorf("name %q must have 1 to %d characters", n, MaxNameLen)
	}
	for _, c := range n {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._:-/", c)) {
			return fmt.Errorf("name %q may hold only letters, digits and . _ : - /", n)
		}
	}
	return nil
}

// ParseFile reads a --sources file: JSON, {"sources": [{"url": "...",
// "name"?: "...", "project"?: "prj_..."}, ...]}. JSON keeps kinehook free of
// a YAML dependency and is what the API speaks; name and project may also
// be given in each URL's query.
func ParseFile(data []byte) ([]Spec, error) {
	var f struct {
		Sources []struct {
			URL     string `json:"url"`
			Name    string `json:"name"`
			Project string `json:"project"`
		} `json:"sources"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf(`sources file: %w (expected {"sources": [{"url": "...", "name": "...", "project": "..."}]})`, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("sources file: text after the JSON object")
	}
	var out []Spec
	for i, src := range f.Sources {
		if src.URL == "" {
			return nil, fmt.Errorf("sources file: sources[%d] has no url", i)
		}
		s, err := ParseURL(src.URL, src.Name, src.Project)
		if err != nil {
			return nil, fmt.Errorf("sources file: sources[%d]: %w", i, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// CheckUnique refuses two sources of one name: their derived idempotency
// keys and rejected inputs would mix.
func CheckUnique(specs []Spec) error {
	seen := map[string]bool{}
	for _, s := range specs {
		if seen[s.Name] {
			return fmt.Errorf("two sources are named %q; give each a name=...", s.Name)
		}
		seen[s.Name] = true
	}
	return nil
}

// Redacted is the spec's URL with any password hidden, for logs.
func (s Spec) Redacted() string { return redactURL(s.URL) }

func redactURL(u *url.URL) string {
	c := *u
	if c.User != nil {
		if _, ok := c.User.Password(); ok {
			c.User = url.UserPassword(c.User.Username(), "xxx")
		}
	}
	c.RawQuery = ""
	return c.String()
}

func redact(raw string) string {
	if i := strings.Index(raw, "@"); i >= 0 {
		if j := strings.Index(raw, "://"); j >= 0 && j < i {
			return raw[:j+3] + "xxx" + raw[i:]
		}
	}
	return raw
}
