package kafka_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/kinehook/kinehook"
	kafkadest "github.com/kinehook/kinehook/kafka"
)

func TestNormalize(t *testing.T) {
	up := map[string]string{"username": "svc", "password": "pw"}
	tests := []struct {
		name, config string
		creds        map[string]string
		want         string // normalised config, or the error's field and message after "!"
	}{
		{"minimal", `{"brokers":["kafka-1.example:9092"],"topic":"kinehook-events"}`, nil,
			`{"brokers":["kafka-1.example:9092"],"topic":"kinehook-events","tls":false,"sasl":""}`},
		{"port added, host lowered, keys reordered", `{"topic":"a.b_c-d","brokers":["Kafka-1","10.0.0.2:19092"]}`, nil,
			`{"brokers":["kafka-1:9092","10.0.0.2:19092"],"topic":"a.b_c-d","tls":false,"sasl":""}`},
		{"ipv6", `{"brokers":["[::1]:9093","::1"],"topic":"t"}`, nil, `{"brokers":["[::1]:9093","[::1]:9092"],"topic":"t","tls":false,"sasl":""}`},
		{"tls with a server name", `{"brokers":["10.0.0.1:9093"],"topic":"t","tls":true,"tls_server_name":"kafka.example.com"}`, nil,
			`{"brokers":["10.0.0.1:9093"],"topic":"t","tls":true,"tls_server_name":"kafka.example.com","sasl":""}`},
		{"sasl plain", `{"brokers":["h"],"topic":"t","tls":true,"sasl":"PLAIN"}`, up, `{"brokers":["h:9092"],"topic":"t","tls":true,"sasl":"plain"}`},
		{"scram-sha-256", `{"brokers":["h"],"topic":"t","sasl":"SCRAM-SHA-256"}`, up, `{"brokers":["h:9092"],"topic":"t","tls":false,"sasl":"scram-sha-256"}`},
		{"scram-sha-512", `{"brokers":["h"],"topic":"t","sasl":"scram-sha-512"}`, up, `{"brokers":["h:9092"],"topic":"t","tls":false,"sasl":"scram-sha-512"}`},
		{"no brokers", `{"topic":"t"}`, nil, "!config.brokers!config.brokers is required"},
		{"empty brokers", `{"brokers":[],"topic":"t"}`, nil, "!config.brokers!is required"},
		{"brokers not a list", `{"brokers":"h:9092","topic":"t"}`, nil, "!config!wrong type"},
		{"scheme", `{"brokers":["kafka://h:9092"],"topic":"t"}`, nil, "!config.brokers!without a scheme"},
		{"bad port", `{"brokers":["h:99999"],"topic":"t"}`, nil, "!config.brokers!invalid port"},
		{"zero port", `{"brokers":["h:0"],"topic":"t"}`, nil, "!config.brokers!invalid port"},
		{"empty host", `{"brokers":[":9092"],"topic":"t"}`, nil, "!config.brokers!no host"},
		{"empty broker", `{"brokers":["h",""],"topic":"t"}`, nil, "!config.brokers!config.brokers[1] is empty"},
		{"twice", `{"brokers":["h","h:9092"],"topic":"t"}`, nil, "!config.brokers!listed twice"},
		{"space", `{"brokers":["h x:9092"],"topic":"t"}`, nil, "!config.brokers!invalid host"},
		{"no topic", `{"brokers":["h"]}`, nil, "!config.topic!config.topic is required"},
		{"topic with a space", `{"brokers":["h"],"topic":"a b"}`, nil, "!config.topic!letters, digits"},
		{"topic dot", `{"brokers":["h"],"topic":".."}`, nil, "!config.topic!not a topic name"},
		{"internal topic", `{"brokers":["h"],"topic":"__consumer_offsets"}`, nil, "!config.topic!internal topic"},
		{"long topic", `{"brokers":["h"],"topic":"` + strings.Repeat("t", 250) + `"}`, nil, "!config.topic!longer than 249"},
		{"unknown sasl", `{"brokers":["h"],"topic":"t","sasl":"gssapi"}`, nil, "!config.sasl!not a mechanism"},
		{"server name without tls", `{"brokers":["h"],"topic":"t","tls_server_name":"k.example"}`, nil, "!config.tls_server_name!needs \"tls\": true"},
		{"bad server name", `{"brokers":["h"],"topic":"t","tls":true,"tls_server_name":"a/b"}`, nil, "!config.tls_server_name!not a host name"},
		{"unknown key", `{"brokers":["h"],"topic":"t","acks":"1"}`, nil, `!config!unknown key "acks"`},
		{"not an object", `["h:9092"]`, nil, "!config!must be a JSON object"},
		{"sasl without credentials", `{"brokers":["h"],"topic":"t","sasl":"plain"}`, nil, "!credentials!needs credentials username and password"},
		{"sasl without password", `{"brokers":["h"],"topic":"t","sasl":"plain"}`, map[string]string{"username": "u"}, "!credentials!needs credentials"},
		{"credentials without sasl", `{"brokers":["h"],"topic":"t"}`, up, "!credentials!set config.sasl"},
		{"unknown credential", `{"brokers":["h"],"topic":"t","sasl":"plain"}`, map[string]string{"username": "u", "password": "p", "token": "x"}, `!credentials!unknown credential "token"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := kafkadest.Type{}.Normalize(json.RawMessage(tc.config), tc.creds)
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
	cfg := json.RawMessage(`{"brokers":["10.0.0.1:9092","k2.example:9093"],"topic":"kh","tls":true,"sasl":"scram-sha-512"}`)
	if h := (kafkadest.Type{}).Hosts(cfg); !reflect.DeepEqual(h, []string{"10.0.0.1:9092", "k2.example:9093"}) {
		t.Errorf("Hosts = %v", h)
	}
	if s := (kafkadest.Type{}).Summary(cfg); s != "kafka://10.0.0.1:9092,k2.example:9093 → kh (tls, sasl scram-sha-512)" {
		t.Errorf("Summary = %q", s)
	}
	if s := (kafkadest.Type{}).Summary(json.RawMessage(`{"brokers":["h:9092"],"topic":"kh","tls":false,"sasl":""}`)); s != "kafka://h:9092 → kh" {
		t.Errorf("Summary = %q", s)
	}
}

func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{
		`{"brokers":["h:9092"],"topic":"a.b"}`, `{"brokers":["[::1]","H"],"topic":"x","tls":true,"tls_server_name":"k"}`,
		`{"brokers":["h:"],"topic":"a","sasl":"Plain"}`, `{"brokers":["::1:9092"],"topic":"t"}`, `{}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := kafkadest.ParseConfig(json.RawMessage(s))
		if err != nil {
			if _, ok := err.(*kinehook.Error); !ok {
				t.Fatalf("error %T %v is not a *kinehook.Error", err, err)
			}
			return
		}
		if len(c.Brokers) == 0 || c.Topic == "" {
			t.Fatalf("accepted without brokers or topic: %+v", c)
		}
		// Normalised is a fixed point.
		b, _ := json.Marshal(c)
		again, err := kafkadest.ParseConfig(b)
		if err != nil || !reflect.DeepEqual(again, c) {
			t.Fatalf("normalised %s does not parse back to itself: %+v, %v", b, again, err)
		}
	})
}
