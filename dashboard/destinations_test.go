package dashboard

import (
	"context"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// The edit form of a destination: credentials show as "name: ****"; a
// line left so keeps the value, a new value replaces it, a removed line
// removes the credential; a bad config is refused under its field; values
// never reach the page.
func TestDestinationEdit(t *testing.T) {
	e := newEnv(t, envOpts{nats: true})
	b := e.browser()
	b.login(e.keyA)
	base := "/projects/" + e.a.ID + "/endpoints"
	p := b.post(base, url.Values{"type": {"nats"}, "config": {`{"url":"nats://127.0.0.1:4222","subject":"dash.edit"}`},
		"credentials": {"user: svc\npassword: first-pw-value"}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("create: %d %s", p.status, snippet(p.body))
	}
	path := strings.TrimSuffix(p.location, "?reveal=1")
	page := b.get(path)
	mustContain(t, page, "password: ****", "user: ****", "nats://127.0.0.1:4222 → dash.edit", `<option value="nats" selected>`)
	if strings.Contains(page.body, "first-pw-value") {
		t.Fatal("the page shows a credential's value")
	}
	eps, _ := e.store.ListEndpoints(context.Background(), e.a.ID)
	id := eps[0].ID

	steps := []struct {
		creds string
		want  map[string]string
	}{
		{"user: ****\npassword: second-pw", map[string]string{"user": "svc", "password": "second-pw"}},
		{"password: ****\nuser: ****", map[string]string{"user": "svc", "password": "second-pw"}},
		{"token: t0k", map[string]string{"token": "t0k"}},
	}
	for _, st := range steps {
		p := b.post(path, url.Values{"type": {"nats"}, "config": {`{"url":"nats://127.0.0.1:4222","subject":"dash.edit"}`}, "credentials": {st.creds}})
		if p.status != http.StatusSeeOther {
			t.Fatalf("edit with %q: %d %s", st.creds, p.status, snippet(p.body))
		}
		got, err := e.store.GetEndpoint(context.Background(), e.a.ID, id)
		if err != nil || !maps.Equal(got.Credentials, st.want) {
			t.Fatalf("after %q: credentials %v (%v), want %v", st.creds, got.Credentials, err, st.want)
		}
	}
	p = b.post(path, url.Values{"type": {"nats"}, "config": {`{"url":"nats://127.0.0.1:4222","subject":"a.*"}`}, "credentials": {"token: ****"}})
	if p.status != http.StatusUnprocessableEntity {
		t.Fatalf("bad config: %d", p.status)
	}
	mustContain(t, p, `id="config-error"`, "wildcard")
	p = b.post(path, url.Values{"type": {"nats"}, "config": {`{"url":"nats://127.0.0.1:4222","subject":"a"}`}, "credentials": {"no colon"}})
	if p.status != http.StatusUnprocessableEntity {
		t.Fatalf("bad credentials: %d", p.status)
	}
	mustContain(t, p, `id="credentials-error"`, "name: value")
}

// A destination's deliveries name it by its summary on the event page and
// in the delivery log, whose endpoint filter names it the same way (all
// three showed its empty URL). Each place is checked by its own markup, so
// that one cannot pass for another.
func TestDestinationNamedInLogs(t *testing.T) {
	e := newEnv(t, envOpts{nats: true})
	b := e.browser()
	b.login(e.keyA)
	p := b.post("/projects/"+e.a.ID+"/endpoints", url.Values{"type": {"nats"}, "config": {`{"url":"nats://127.0.0.1:4222","subject":"dash.named"}`}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("create: %d %s", p.status, snippet(p.body))
	}
	ev := e.publish(e.a, `{"event":"media.update.status","data":{"id":"v-named","status":"done"}}`) // its delivery is stored
	const summary = "nats://127.0.0.1:4222 → dash.named"
	mustContain(t, b.get("/projects/"+e.a.ID+"/events/"+ev.ID), ">"+string(breakURL(summary))+"</a></h3>")
	mustContain(t, b.get("/projects/"+e.a.ID+"/deliveries"), ">"+summary+"</a></td>", ">"+summary+"</option>")
}
