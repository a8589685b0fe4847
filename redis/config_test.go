package redis_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/kinehook/kinehook"
	redisdest "github.com/kinehook/kinehook/redis"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		name, config string
		creds        map[string]string
		want         string // normalised config, or the error's field and message after "!"
	}{
		{"full", `{"url":"redis://cache.example:6380/2","stream":"kinehook:events","max_len":1000}`, nil, `{"url":"redis://cache.example:6380/2","stream":"kinehook:events","max_len":1000}`},
		{"port and db added, keys reordered", `{"stream":"s","url":"redis://h"}`, nil, `{"url":"redis://h:6379/0","stream":"s"}`},
		{"trailing slash", `{"url":"redis://h:1/","stream":"s"}`, nil, `{"url":"redis://h:1/0","stream":"s"}`},
		{"tls", `{"url":"rediss://h/15","stream":"s"}`, nil, `{"url":"rediss://h:6379/15","stream":"s"}`},
		{"ipv6", `{"url":"redis://[::1]:6379/0","stream":"s"}`, nil, `{"url":"redis://[::1]:6379/0","stream":"s"}`},
		{"unicode stream", `{"url":"redis://h","stream":"événements vidéo"}`, nil, `{"url":"redis://h:6379/0","stream":"événements vidéo"}`},
		{"password", `{"url":"redis://h","stream":"s"}`, map[string]string{"password": "p"}, `{"url":"redis://h:6379/0","stream":"s"}`},
		{"username and password", `{"url":"redis://h","stream":"s"}`, map[string]string{"username": "u", "password": "p"}, `{"url":"redis://h:6379/0","stream":"s"}`},
		{"no url", `{"stream":"s"}`, nil, "!config.url!config.url is required"},
		{"http url", `{"url":"http://h:6379","stream":"s"}`, nil, "!config.url!must be redis://host:port/db"},
		{"password in url", `{"url":"redis://:secret@h:6379/0","stream":"s"}`, nil, "!config.url!must not carry a password: give it in credentials"},
		{"user and password in url", `{"url":"redis://u:secret@h:6379/0","stream":"s"}`, nil, "!config.url!must not carry a password: give it in credentials"},
		{"user in url", `{"url":"redis://u@h:6379/0","stream":"s"}`, nil, "!config.url!give it in credentials"},
		{"query", `{"url":"redis://h:6379/0?protocol=3","stream":"s"}`, nil, "!config.url!only scheme, host, port and database"},
		{"bad db", `{"url":"redis://h:6379/x","stream":"s"}`, nil, "!config.url!invalid database"},
		{"db too high", `{"url":"redis://h:6379/65536","stream":"s"}`, nil, "!config.url!invalid database"},
		{"bad port", `{"url":"redis://h:99999","stream":"s"}`, nil, "!config.url!invalid port"},
		{"no host", `{"url":"redis://:6379","stream":"s"}`, nil, "!config.url!no host"},
		{"no stream", `{"url":"redis://h"}`, nil, "!config.stream!config.stream is required"},
		{"control character", `{"url":"redis://h","stream":"a\nb"}`, nil, "!config.stream!control character"},
		{"long stream", `{"url":"redis://h","stream":"` + strings.Repeat("x", 513) + `"}`, nil, "!config.stream!longer than 512"},
		{"max_len 0", `{"url":"redis://h","stream":"s","max_len":0}`, nil, "!config.max_len!from 1"},
		{"max_len negative", `{"url":"redis://h","stream":"s","max_len":-5}`, nil, "!config.max_len!from 1"},
		{"max_len fraction", `{"url":"redis://h","stream":"s","max_len":1.5}`, nil, "!config!wrong type"},
		{"max_len string", `{"url":"redis://h","stream":"s","max_len":"10"}`, nil, "!config!wrong type"},
		{"unknown key", `{"url":"redis://h","stream":"s","subject":"x"}`, nil, `!config!unknown key "subject"`},
		{"not an object", `["redis://h"]`, nil, "!config!must be a JSON object"},
		{"username without password", `{"url":"redis://h","stream":"s"}`, map[string]string{"username": "u"}, "!credentials!needs a password"},
		{"unknown credential", `{"url":"redis://h","stream":"s"}`, map[string]string{"user": "x"}, `!credentials!unknown credential "user"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := redisdest.Type{}.Normalize(json.RawMessage(tc.config), tc.creds)
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
	cfg := json.RawMessage(`{"url":"redis://10.0.0.1:6379/0","stream":"kh:events","max_len":500}`)
	if h := (redisdest.Type{}).Hosts(cfg); len(h) != 1 || h[0] != "10.0.0.1:6379" {
		t.Errorf("Hosts = %v", h)
	}
	if s := (redisdest.Type{}).Summary(cfg); s != "redis://10.0.0.1:6379/0 → kh:events (max_len ~500)" {
		t.Errorf("Summary = %q", s)
	}
}

func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{`{"url":"redis://h:6379/0","stream":"a"}`, `{"url":"rediss://[::1]/3","stream":"x","max_len":9}`,
		`{"url":"redis://:p@h:","stream":"a"}`, `{"url":"redis://h:6379/0?x=1","stream":"a"}`, `{}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := redisdest.ParseConfig(json.RawMessage(s))
		if err != nil {
			if _, ok := err.(*kinehook.Error); !ok {
				t.Fatalf("error %T %v is not a *kinehook.Error", err, err)
			}
			return
		}
		if strings.Contains(c.URL, "@") {
			t.Fatalf("normalised url %q carries credentials", c.URL)
		}
		// Normalised is a fixed point.
		b, _ := json.Marshal(c)
		again, err := redisdest.ParseConfig(b)
		if err != nil {
			t.Fatalf("normalised %s does not parse back: %v", b, err)
		}
		b2, _ := json.Marshal(again)
		if string(b2) != string(b) {
			t.Fatalf("normalised %s parses back to %s", b, b2)
		}
	})
}
