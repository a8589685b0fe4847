package dashboard

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/kinehook/kinehook"
)

// BenchmarkPages measures rendering the heaviest pages of a project with
// three endpoints and HealthWindow (200) recent events, each delivered to
// all three: the endpoint list (health over 600 deliveries), the event list
// and an event's page. Run: go test -run '^$' -bench Pages ./dashboard
func BenchmarkPages(b *testing.B) {
	e := newEnv(b, envOpts{})
	for i := 0; i < 3; i++ {
		e.createEndpoint(e.a, e.sink.srv.URL)
	}
	var last *kinehook.Event
	for i := 0; i < 200; i++ {
		last = e.publish(e.a, fmt.Sprintf(`{"event":"media.update.status","data":{"id":"video-%d","status":"done"}}`, i))
	}
	e.waitDeliveries(e.a.ID, last.ID, kinehook.DeliverySucceeded)
	br := e.browser()
	br.login(e.keyA)
	base := "/projects/" + e.a.ID
	for _, page := range []string{"/endpoints", "/events", "/events/" + last.ID} {
		b.Run(page, func(b *testing.B) {
			for b.Loop() {
				if p := br.get(base + page); p.status != http.StatusOK {
					b.Fatalf("%s: %d", page, p.status)
				}
			}
		})
	}
}
