package dashboard

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// A RabbitMQ destination made in the dashboard: the form offers the type,
// the page shows the summary and masked credentials, and a url carrying a
// user and password is refused under config, pointing to credentials.
func TestDestinationRabbitMQ(t *testing.T) {
	e := newEnv(t, envOpts{rabbitmq: true})
	b := e.browser()
	b.login(e.keyA)
	base := "/projects/" + e.a.ID + "/endpoints"
	mustContain(t, b.get(base+"/new"), `<option value="rabbitmq"`)
	p := b.post(base, url.Values{"type": {"rabbitmq"}, "config": {`{"url":"amqp://guest:guest@127.0.0.1/","routing_key":"dash.q"}`}})
	if p.status != http.StatusUnprocessableEntity {
		t.Fatalf("url with credentials: %d", p.status)
	}
	mustContain(t, p, `id="config-error"`, "give them in credentials (username, password)")
	p = b.post(base, url.Values{"type": {"rabbitmq"}, "config": {`{"url":"amqp://127.0.0.1/","routing_key":"dash.q"}`},
		"credentials": {"username: svc\npassword: rabbit-pw-value"}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("create: %d %s", p.status, snippet(p.body))
	}
	page := b.get(strings.TrimSuffix(p.location, "?reveal=1"))
	mustContain(t, page, "password: ****", "username: ****", "amqp://127.0.0.1:5672/ → queue dash.q", `<option value="rabbitmq" selected>`)
	if strings.Contains(page.body, "rabbit-pw-value") {
		t.Fatal("the page shows a credential's value")
	}
	eps, _ := e.store.ListEndpoints(context.Background(), e.a.ID)
	if len(eps) != 1 || eps[0].Credentials["password"] != "rabbit-pw-value" || eps[0].Type != "rabbitmq" {
		t.Fatalf("stored %+v", eps)
	}
}
