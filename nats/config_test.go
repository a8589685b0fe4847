package nats_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/kinehook/kinehook"
	natsdest "github.com/kinehook/kinehook/nats"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		name, config string
		creds        map[string]string
		want         string // normalised config, or the error's field and message after "!"
	}{
		{"full", `{"url":"nats://broker.example:4222","subject":"kinehook.events"}`, nil, `{"url":"nats://broker.example:4222","subject":"kinehook.events"}`},
		{"port added, keys reordered", `{"subject":"a.b","url":"nats://h"}`, nil, `{"url":"nats://h:4222","subject":"a.b"}`},
		{"tls", `{"url":"tls://h:4443/","subject":"a"}`, nil, `{"url":"tls://h:4443","subject":"a"}`},
		{"ipv6", `{"url":"nats://[::1]:4222","subject":"a"}`, nil, `{"url":"nats://[::1]:4222","subject":"a"}`},
		{"user and password", `{"url":"nats://h","subject":"a"}`, map[string]string{"user": "u", "password": "p"}, `{"url":"nats://h:4222","subject":"a"}`},
		{"token", `{"url":"nats://h","subject":"a"}`, map[string]string{"token": "t"}, `{"url":"nats://h:4222","subject":"a"}`},
		{"no url", `{"subject":"a"}`, nil, "!config.url!config.url is required"},
		{"http url", `{"url":"http://h:4222","subject":"a"}`, nil, "!config.url!must be nats://host:port"},
		{"user in url", `{"url":"nats://u:p@h:4222","subject":"a"}`, nil, "!config.url!give them in credentials"},
		{"path", `{"url":"nats://h:4222/x","subject":"a"}`, nil, "!config.url!only scheme, host and port"},
		{"bad port", `{"url":"nats://h:99999","subject":"a"}`, nil, "!config.url!"},
		{"no subject", `{"url":"nats://h"}`, nil, "!config.subject!config.subject is required"},
		{"wildcard", `{"url":"nats://h","subject":"a.*"}`, nil, "!config.subject!wildcard"},
		{"tail wildcard", `{"url":"nats://h","subject":"a.>"}`, nil, "!config.subject!wildcard"},
		{"empty token", `{"url":"nats://h","subject":"a..b"}`, nil, "!config.subject!empty token"},
		{"space", `{"url":"nats://h","subject":"a b"}`, nil, "!config.subject!space"},
		{"reserved", `{"url":"nats://h","subject":"$JS.API.STREAM.DELETE.X"}`, nil, "!config.subject!reserved"},
		{"unknown key", `{"url":"nats://h","subject":"a","stream":"S"}`, nil, `!config!unknown key "stream"`},
		{"not an object", `["nats://h"]`, nil, "!config!must be a JSON object"},
		{"user without password", `{"url":"nats://h","subject":"a"}`, map[string]string{"user": "u"}, "!credentials!go together"},
		{"token and user", `{"url":"nats://h","subject":"a"}`, map[string]string{"user": "u", "password": "p", "token": "t"}, "!credentials!not both"},
		{"unknown credential", `{"url":"nats://h","subject":"a"}`, map[string]string{"nkey": "x"}, `!credentials!unknown credential "nkey"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := natsdest.Type{}.Normalize(json.RawMessage(tc.config), tc.creds)
			if !strings.HasPrefix(tc.want, "!") {
				if err != nil || string(got) != tc.want {
					t.Fatalf("Normalize = %s, %v; want %s", got, err, tc.want)
				}
				return
			}
			parts := strings.SplitN(tc.want, "!", 3)
			ke, ok := err.(*kinehook.Error)
			if !ok || ke.Code != kinehook.EINVALID || ke.Field != parts[1] || !strings.Contains(ke.Message, parts[2]) {
				t.Fatalf("Normalize = %s, %v; want invalid %s with %q", got, err, parts[1], parts[2])
			}
		})
	}
}

func TestHostsAndSummary(t *testing.T) {
	cfg := json.RawMessage(`{"url":"nats://10.0.0.1:4222","subject":"kh.events"}`)
	if h := (natsdest.Type{}).Hosts(cfg); len(h) != 1 || h[0] != "10.0.0.1:4222" {
		t.Errorf("Hosts = %v", h)
	}
	if s := (natsdest.Type{}).Summary(cfg); s != "nats://10.0.0.1:4222 → kh.events" {
		t.Errorf("Summary = %q", s)
	}
}

func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{`{"url":"nats://h:4222","subject":"a.b"}`, `{"url":"tls://[::1]","subject":"x"}`, `{"url":"nats://h:","subject":"a"}`, `{}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := natsdest.ParseConfig(json.RawMessage(s))
		if err != nil {
			if _, ok := err.(*kinehook.Error); !ok {
				t.Fatalf("error %T %v is not a *kinehook.Error", err, err)
			}
			return
		}
		// Normalised is a fixed point.
		b, _ := json.Marshal(c)
		again, err := natsdest.ParseConfig(b)
		if err != nil || again != c {
			t.Fatalf("normalised %s does not parse back to itself: %+v, %v", b, again, err)
		}
	})
}
