package dashboard

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// A Kafka destination made from the dashboard's form: the config is
// stored normalised, the list and the edit page show its summary, the
// credentials only as names; a SASL mechanism without credentials is
// refused under the credentials field.
func TestKafkaDestinationForm(t *testing.T) {
	e := newEnv(t, envOpts{kafka: true})
	b := e.browser()
	b.login(e.keyA)
	base := "/projects/" + e.a.ID + "/endpoints"
	p := b.post(base, url.Values{"type": {"kafka"}, "config": {`{"brokers":["127.0.0.1"],"topic":"dash-events","sasl":"SCRAM-SHA-256"}`},
		"credentials": {"username: svc\npassword: kafka-pw-value"}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("create: %d %s", p.status, snippet(p.body))
	}
	eps, _ := e.store.ListEndpoints(context.Background(), e.a.ID)
	if len(eps) != 1 || string(eps[0].Config) != `{"brokers":["127.0.0.1:9092"],"topic":"dash-events","tls":false,"sasl":"scram-sha-256"}` ||
		eps[0].Credentials["password"] != "kafka-pw-value" {
		t.Fatalf("stored %+v", eps)
	}
	page := b.get(strings.TrimSuffix(p.location, "?reveal=1"))
	mustContain(t, page, "kafka://127.0.0.1:9092 → dash-events (sasl scram-sha-256)", "password: ****", `<option value="kafka" selected>`)
	if strings.Contains(page.body, "kafka-pw-value") {
		t.Fatal("the page shows a credential's value")
	}
	mustContain(t, b.get(base), "kafka://127.0.0.1:9092 → dash-events")
	p = b.post(base, url.Values{"type": {"kafka"}, "config": {`{"brokers":["127.0.0.1"],"topic":"t","sasl":"plain"}`}})
	if p.status != http.StatusUnprocessableEntity {
		t.Fatalf("sasl without credentials: %d", p.status)
	}
	mustContain(t, p, `id="credentials-error"`, "needs credentials username and password")
}
