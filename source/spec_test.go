package source

import (
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		raw, name, project string
		wantErr            string
		check              func(t *testing.T, s Spec)
	}{
		{raw: "nats://127.0.0.1:4222?stream=ORDERS&consumer=C&subject=orders.>&project=prj_1", check: func(t *testing.T, s Spec) {
			if s.Broker != "nats" || s.Name != "nats:ORDERS" || s.Project != "prj_1" || s.Param("consumer", "") != "C" || s.Param("subject", "") != "orders.>" || s.URL.RawQuery != "" {
				t.Errorf("%+v", s)
			}
		}},
		{raw: "amqp://u:secret@h:5672/vh?queue=q&heartbeat=5&name=jobs&batch=50", project: "prj_2", check: func(t *testing.T, s Spec) {
			if s.Broker != "rabbitmq" || s.Name != "jobs" || s.Project != "prj_2" || s.Batch != 50 || s.URL.Query().Get("heartbeat") != "5" || strings.Contains(s.Redacted(), "secret") {
				t.Errorf("%+v redacted %s", s, s.Redacted())
			}
		}},
		{raw: "redis://h:6379/0?stream=s&group=g&project=prj_1", name: "from-file", check: func(t *testing.T, s Spec) {
			if s.Broker != "redis" || s.Name != "from-file" || s.Param("group", "x") != "g" {
				t.Errorf("%+v", s)
			}
		}},
		{raw: "kafka://a:9092,b:9092?topic=t&project=prj_1", check: func(t *testing.T, s Spec) {
			if s.Broker != "kafka" || s.URL.Host != "a:9092,b:9092" || s.Name != "kafka:t" {
				t.Errorf("%+v", s)
			}
		}},
		{raw: "http://h?project=p", wantErr: "scheme"},
		{raw: "nats://h?stream=S", wantErr: "no project"},
		{raw: "nats://h?project=p", wantErr: "no stream"},
		{raw: "nats://h?stream=S&project=p&strem=x", wantErr: `unknown parameter "strem"`},
		{raw: "nats://h?stream=S&stream=T&project=p", wantErr: "2 times"},
		{raw: "nats://h?stream=S&project=p&batch=0", wantErr: "batch"},
		{raw: "nats://h?stream=S&project=p&name=a%20b", wantErr: "may hold only"},
		{raw: "nats:///?stream=S&project=p", wantErr: "no host"},
		{raw: "kafka://h:9092?topic=t&project=p&name=" + strings.Repeat("x", MaxNameLen+1), wantErr: "characters"},
	} {
		s, err := ParseURL(tc.raw, tc.name, tc.project)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseURL(%q) = %v, want an error with %q", tc.raw, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseURL(%q): %v", tc.raw, err)
			continue
		}
		tc.check(t, s)
	}
}

func TestParseFile(t *testing.T) {
	specs, err := ParseFile([]byte(`{"sources": [
		{"url": "nats://127.0.0.1:4222?stream=S", "project": "prj_1", "name": "orders"},
		{"url": "redis://127.0.0.1:6379/0?stream=s&project=prj_2"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) != 2 || specs[0].Name != "orders" || specs[0].Project != "prj_1" || specs[1].Project != "prj_2" {
		t.Errorf("%+v", specs)
	}
	for _, bad := range []string{`{"sources": [{"url": ""}]}`, `{"sources": [{"url": "nats://h?stream=S", "projekt": "p"}]}`, `{"sources": []} {}`, `[]`, `{"sources": [{"url": "nats://h?stream=S"}]}`} {
		if _, err := ParseFile([]byte(bad)); err == nil {
			t.Errorf("ParseFile(%s) accepted", bad)
		}
	}
	if err := CheckUnique(append(specs, specs[0])); err == nil || !strings.Contains(err.Error(), "orders") {
		t.Errorf("CheckUnique: %v", err)
	}
}

func TestDerivedKey(t *testing.T) {
	if k := DerivedKey("nats:S", "S:42"); k != "src:nats:S:S:42" {
		t.Errorf("DerivedKey = %q", k)
	}
	if DerivedKey("x", "") != "" {
		t.Error("a message without an identity got a key")
	}
	if DerivedKey(strings.Repeat("n", 100), strings.Repeat("i", 200)) != "" {
		t.Error("an over-long key was derived")
	}
}

// FuzzParseURL: any input is refused or gives a spec that holds what it
// promises (a known broker, a project, a valid name).
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"nats://127.0.0.1:4222?stream=S&project=p", "amqp://u:p@h/v?queue=q&project=p&x=1", "redis://h?stream=s&project=p&batch=10", "kafka://a:1,b:2?topic=t&project=p&sasl_mechanism=PLAIN", "nats://%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		s, err := ParseURL(raw, "", "")
		if err != nil {
			return
		}
		if _, ok := Brokers[s.Broker]; !ok || s.Project == "" || checkName(s.Name) != nil || s.URL == nil || s.Batch < 0 || s.Batch > 10000 {
			t.Fatalf("ParseURL(%q) = %+v", raw, s)
		}
	})
}

// FuzzParseFile: any file is refused or gives valid specs.
func FuzzParseFile(f *testing.F) {
	f.Add([]byte(`{"sources": [{"url": "nats://h?stream=S", "project": "p"}]}`))
	f.Add([]byte(`{"sources": null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		specs, err := ParseFile(data)
		if err != nil {
			return
		}
		for _, s := range specs {
			if s.Project == "" || checkName(s.Name) != nil {
				t.Fatalf("ParseFile(%q) gave %+v", data, s)
			}
		}
	})
}
