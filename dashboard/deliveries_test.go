package dashboard

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
)

// The endpoint page's delivery log filters and pages the search, its bulk
// retry re-sends the failed deliveries the filters match, and the search box
// finds events, deliveries, endpoints and resources.
func TestDeliveryLogAndSearch(t *testing.T) {
	e := newEnv(t, envOpts{})
	ep := e.createEndpoint(e.a, e.sink.srv.URL)
	other := e.createEndpoint(e.a, e.sink.srv.URL+"/other", "live.*")
	e.sink.fail.Store(true)
	var evs []*kinehook.Event
	for i, body := range []string{
		`{"event":"media.update.status","data":{"id":"video-1","status":"done"}}`,
		`{"event":"media.update.status","data":{"id":"video-2","status":"done"}}`,
		`{"event":"live.created","data":{"event_id":"live-9"}}`,
	} {
		evs = append(evs, e.publish(e.a, body))
		e.waitDeliveries(e.a.ID, evs[i].ID, kinehook.DeliveryFailed)
	}
	e.sink.fail.Store(false)
	for range deliveriesPerPage + 2 {
		ev := e.publish(e.a, `{"event":"media.update.status","data":{"id":"video-3","status":"processing"}}`)
		e.waitDeliveries(e.a.ID, ev.ID, kinehook.DeliverySucceeded)
	}
	b := e.browser()
	b.login(e.keyA)
	base := "/projects/" + e.a.ID
	epPage := base + "/endpoints/" + ep.ID

	p := b.get(epPage)
	mustContain(t, p, `id="delivery-log"`, "Re-send 3 failed", "video-3", `rel="next"`)
	if n := strings.Count(p.body, `<tr data-delivery=`); n != deliveriesPerPage {
		t.Errorf("endpoint log shows %d deliveries, want a page of %d", n, deliveriesPerPage)
	}
	if strings.Contains(p.body, "/other") {
		t.Error("the endpoint's log shows another endpoint")
	}
	p = b.get(epPage + "?status=failed")
	if n := strings.Count(p.body, `<tr data-delivery=`); n != 3 {
		t.Errorf("failed filter shows %d deliveries, want 3", n)
	}
	p = b.get(epPage + "?resource=video-2&event=media.update.status")
	if n := strings.Count(p.body, `<tr data-delivery=`); n != 1 || !strings.Contains(p.body, "Re-send 1 failed") {
		t.Errorf("resource filter: %d rows\n%s", n, snippet(p.body))
	}
	p = b.get(epPage + "?status=lost")
	mustContain(t, p, `id="delivery-log-error"`, "lost")
	// Paging: the second page holds the rest.
	p = b.get(epPage)
	next := between(p.body, `href="`, `#delivery-log" rel="next"`)
	if next == "" {
		t.Fatal("no next page link")
	}
	p = b.get(strings.ReplaceAll(next, "&amp;", "&"))
	if n := strings.Count(p.body, `<tr data-delivery=`); n != 3+deliveriesPerPage+2-deliveriesPerPage {
		t.Errorf("second page: %d rows", n)
	}

	// The bulk retry of the endpoint, narrowed to one resource.
	r := b.post(epPage+"/deliveries/retry", url.Values{"resource": {"video-1"}})
	if r.status != http.StatusSeeOther || !strings.Contains(r.location, "resource=video-1") {
		t.Fatalf("bulk retry: %d %s", r.status, r.location)
	}
	mustContain(t, b.follow(r), "Re-sending 1 failed delivery")
	e.waitDeliveries(e.a.ID, evs[0].ID, kinehook.DeliverySucceeded)
	if d, _ := e.store.ListDeliveries(context.Background(), e.a.ID, evs[1].ID); d[0].Status != kinehook.DeliveryFailed {
		t.Errorf("video-2 was re-sent too: %s", d[0].Status)
	}
	// The project's log, and its bulk retry of the rest: a deleted
	// endpoint's failed delivery stays as it is.
	if err := e.store.DeleteEndpoint(context.Background(), e.a.ID, other.ID); err != nil {
		t.Fatal(err)
	}
	e.engine.EndpointChanged(context.Background(), e.a.ID, other.ID)
	p = b.get(base + "/deliveries?status=failed")
	mustContain(t, p, "Re-send 3 failed", "deleted endpoint")
	if n := strings.Count(p.body, `<tr data-delivery=`); n != 3 {
		t.Errorf("project log of failed deliveries: %d rows, want 3", n)
	}
	r = b.post(base+"/deliveries/retry", nil)
	mustContain(t, b.follow(r), "Re-sending 2 failed deliveries")
	waitFor(t, "the live event's delivery to ep to succeed", func() bool {
		ds, _ := e.store.ListDeliveries(context.Background(), e.a.ID, evs[2].ID)
		for _, d := range ds {
			if d.EndpointID == ep.ID && d.Status == kinehook.DeliverySucceeded {
				return true
			}
		}
		return false
	})
	e.waitDeliveries(e.a.ID, evs[1].ID, kinehook.DeliverySucceeded)
	p = b.get(base + "/deliveries?status=failed")
	if n := strings.Count(p.body, `<tr data-delivery=`); n != 1 || !strings.Contains(p.body, "deleted endpoint") {
		t.Errorf("after the bulk retry: %d failed rows, want the deleted endpoint's one", n)
	}

	// The search box.
	ds, _ := e.store.ListDeliveries(context.Background(), e.a.ID, evs[1].ID)
	for _, tc := range []struct{ q, want string }{
		{evs[0].ID, base + "/events/" + evs[0].ID},
		{ds[0].ID, base + "/events/" + evs[1].ID + "#" + ds[0].ID},
		{ep.ID, epPage},
		{"video-2", base + "/deliveries?resource=video-2"},
		{"msg_nope", base + "/deliveries"},
	} {
		r := b.get(base + "/search?q=" + url.QueryEscape(tc.q))
		if r.status != http.StatusSeeOther || r.location != tc.want {
			t.Errorf("search %s: %d %s, want %s", tc.q, r.status, r.location, tc.want)
		}
	}
	mustContain(t, b.follow(b.get(base+"/search?q=msg_nope")), "There is no event msg_nope in this project.")
	// Another project's ids are not found.
	evB := e.publish(e.b, `{"event":"live.created","data":{"event_id":"b-live"}}`)
	if r := b.get(base + "/search?q=" + evB.ID); r.location != base+"/deliveries" {
		t.Errorf("another project's event: %s", r.location)
	}
}

// between returns the text of s between the last start before end and end.
func between(s, start, end string) string {
	j := strings.Index(s, end)
	if j < 0 {
		return ""
	}
	i := strings.LastIndex(s[:j], start)
	if i < 0 {
		return ""
	}
	return s[i+len(start) : j]
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
