package rabbitmq_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/kinehook/kinehook"
	rabbitdest "github.com/kinehook/kinehook/rabbitmq"
)

func TestNormalize(t *testing.T) {
	guest := map[string]string{"username": "guest", "password": "guest"}
	tests := []struct {
		name, config string
		creds        map[string]string
		want         string // normalised config, or the error's field and message after "!"
	}{
		{"full", `{"url":"amqp://mq.example:5672/prod","exchange":"events","routing_key":"kinehook.video"}`, guest,
			`{"url":"amqp://mq.example:5672/prod","exchange":"events","routing_key":"kinehook.video"}`},
		{"default exchange, port added, keys reordered", `{"routing_key":"q1","url":"amqp://h"}`, guest, `{"url":"amqp://h:5672/","exchange":"","routing_key":"q1"}`},
		{"root path is the default vhost", `{"url":"amqp://h:5672/","exchange":"","routing_key":"q"}`, nil, `{"url":"amqp://h:5672/","exchange":"","routing_key":"q"}`},
		{"escaped / is the default vhost", `{"url":"amqp://h/%2F","routing_key":"q"}`, nil, `{"url":"amqp://h:5672/","exchange":"","routing_key":"q"}`},
		{"escaped vhost", `{"url":"amqp://h/a%2Fb","routing_key":"q"}`, nil, `{"url":"amqp://h:5672/a%2Fb","exchange":"","routing_key":"q"}`},
		{"amqps port", `{"url":"amqps://h/v","exchange":"x","routing_key":""}`, nil, `{"url":"amqps://h:5671/v","exchange":"x","routing_key":""}`},
		{"ipv6", `{"url":"amqp://[::1]:5673","routing_key":"q"}`, nil, `{"url":"amqp://[::1]:5673/","exchange":"","routing_key":"q"}`},
		{"no url", `{"routing_key":"q"}`, nil, "!config.url!config.url is required"},
		{"http url", `{"url":"http://h:5672","routing_key":"q"}`, nil, "!config.url!must be amqp://host:port/vhost"},
		{"user in url", `{"url":"amqp://guest:guest@h:5672/","routing_key":"q"}`, nil, "!config.url!give them in credentials (username, password)"},
		{"user only in url", `{"url":"amqp://guest@h:5672/","routing_key":"q"}`, nil, "!config.url!must not carry a username or password"},
		{"two segments", `{"url":"amqp://h:5672/a/b","routing_key":"q"}`, nil, "!config.url!one path segment"},
		{"query", `{"url":"amqp://h:5672/?heartbeat=5","routing_key":"q"}`, nil, "!config.url!no query"},
		{"bad port", `{"url":"amqp://h:99999/","routing_key":"q"}`, nil, "!config.url!invalid port"},
		{"no host", `{"url":"amqp:///v","routing_key":"q"}`, nil, "!config.url!has no host"},
		{"default exchange without routing key", `{"url":"amqp://h","exchange":""}`, nil, "!config.routing_key!required with the default exchange"},
		{"long routing key", `{"url":"amqp://h","routing_key":"` + strings.Repeat("k", 256) + `"}`, nil, "!config.routing_key!longer than 255"},
		{"control in exchange", `{"url":"amqp://h","exchange":"a\nb","routing_key":"q"}`, nil, "!config.exchange!control character"},
		{"unknown key", `{"url":"amqp://h","routing_key":"q","queue":"q"}`, nil, `!config!unknown key "queue"`},
		{"not an object", `["amqp://h"]`, nil, "!config!must be a JSON object"},
		{"username without password", `{"url":"amqp://h","routing_key":"q"}`, map[string]string{"username": "u"}, "!credentials!go together"},
		{"unknown credential", `{"url":"amqp://h","routing_key":"q"}`, map[string]string{"user": "u", "password": "p"}, `!credentials!unknown credential "user"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := rabbitdest.Type{}.Normalize(json.RawMessage(tc.config), tc.creds)
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

func TestHostsSummaryVhost(t *testing.T) {
	cfg := json.RawMessage(`{"url":"amqp://10.0.0.1:5672/a%2Fb","exchange":"ev","routing_key":"k"}`)
	if h := (rabbitdest.Type{}).Hosts(cfg); len(h) != 1 || h[0] != "10.0.0.1:5672" {
		t.Errorf("Hosts = %v", h)
	}
	if s := (rabbitdest.Type{}).Summary(cfg); s != `amqp://10.0.0.1:5672/a%2Fb → exchange ev, routing key "k"` {
		t.Errorf("Summary = %q", s)
	}
	if s := (rabbitdest.Type{}).Summary(json.RawMessage(`{"url":"amqp://h:5672/","exchange":"","routing_key":"q"}`)); s != "amqp://h:5672/ → queue q" {
		t.Errorf("Summary = %q", s)
	}
	for url, want := range map[string]string{"amqp://h:5672/a%2Fb": "a/b", "amqp://h:5672/": "/", "amqp://h:5672/v": "v"} {
		if got := rabbitdest.Vhost(url); got != want {
			t.Errorf("Vhost(%s) = %q, want %q", url, got, want)
		}
	}
}

func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{`{"url":"amqp://h:5672/v","exchange":"x","routing_key":"k"}`, `{"url":"amqps://[::1]/%2F","routing_key":"q"}`,
		`{"url":"amqp://h:/a%20b","routing_key":"q"}`, `{}`, `{"url":"amqp://u@h","routing_key":"q"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := rabbitdest.ParseConfig(json.RawMessage(s))
		if err != nil {
			if _, ok := err.(*kinehook.Error); !ok {
				t.Fatalf("error %T %v is not a *kinehook.Error", err, err)
			}
			return
		}
		if strings.Contains(c.URL, "@") {
			t.Fatalf("accepted url %q carries userinfo", c.URL)
		}
		// Normalised is a fixed point.
		b, _ := json.Marshal(c)
		again, err := rabbitdest.ParseConfig(b)
		if err != nil || again != c {
			t.Fatalf("normalised %s does not parse back to itself: %+v, %v", b, again, err)
		}
	})
}
