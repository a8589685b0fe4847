package dashboard

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
)

// A cli endpoint (kinehook listen --server) has no settings form: its page
// says whose it is and whether its listener is connected.
func TestCLIEndpointPage(t *testing.T) {
	e := newEnv(t, envOpts{})
	now := time.Now().UTC()
	for _, c := range []struct {
		state kinehook.ListenerState
		want  string
	}{
		{kinehook.ListenerState{Session: "lsn_1", Connected: true, SeenAt: now, Client: "kinehook-cli/test"}, "(connected, kinehook-cli/test)"},
		{kinehook.ListenerState{Session: "lsn_2", SeenAt: now.Add(-30 * time.Second)}, "(disconnected "},
	} {
		ep := &kinehook.Endpoint{ID: kinehook.NewID(kinehook.PrefixEndpoint), ProjectID: e.a.ID, Type: kinehook.EndpointCLI,
			Config: c.state.Marshal(), Scheme: kinehook.SchemeV1, CreatedAt: now, UpdatedAt: now}
		sec, err := kinehook.NewEndpointSecret(kinehook.SchemeV1)
		if err != nil {
			t.Fatal(err)
		}
		ep.Secrets = []kinehook.EndpointSecret{{Value: sec}}
		if err := e.store.CreateEndpoint(context.Background(), ep); err != nil {
			t.Fatal(err)
		}
		b := e.browser()
		b.login(e.keyA)
		p := b.get("/projects/" + e.a.ID + "/endpoints/" + ep.ID)
		if p.status != http.StatusOK {
			t.Fatalf("endpoint page: %d %s", p.status, snippet(p.body))
		}
		mustContain(t, p, `id="cli-endpoint-note"`, "kinehook listen --server", c.want)
		if strings.Contains(p.body, `id="save-endpoint"`) {
			t.Error("a cli endpoint's page offers the settings form")
		}
	}
	// Other endpoints keep their form.
	ep := e.createEndpoint(e.a, "http://127.0.0.1:9/hook")
	b := e.browser()
	b.login(e.keyA)
	p := b.get("/projects/" + e.a.ID + "/endpoints/" + ep.ID)
	mustContain(t, p, `id="save-endpoint"`)
	if strings.Contains(p.body, `id="cli-endpoint-note"`) {
		t.Error("a webhook endpoint's page has the cli note")
	}
}
