package http

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// searchItem is one item of a delivery search answer.
type searchItem struct {
	ID          string    `json:"id"`
	EventID     string    `json:"event_id"`
	EndpointID  string    `json:"endpoint_id"`
	Status      string    `json:"status"`
	Attempts    int       `json:"attempts"`
	EventType   string    `json:"event_type"`
	Resource    *string   `json:"resource"`
	CreatedAt   time.Time `json:"created_at"`
	NextAttempt *string   `json:"next_attempt_at"`
}

// searchEnv is a project with two endpoints and deliveries in every final
// state: A gets media.* events, B every event; the first five events
// succeed, the last three fail.
type searchEnv struct {
	*env
	pid, key string
	a, b     string
	events   []string // event ids, oldest first
	started  time.Time
}

func newSearchEnv(t *testing.T) *searchEnv {
	e := newEnv(t)
	se := &searchEnv{env: e, started: time.Now().UTC()}
	se.pid, se.key = e.project("p")
	se.a = e.endpoint(se.pid, se.key, map[string]any{"event_types": []string{"media.*"}})["id"].(string)
	se.b = e.endpoint(se.pid, se.key, nil)["id"].(string)
	bodies := []string{mediaEvent("v1", "done"), mediaEvent("v2", "done"), `{"event":"live.created","data":{"event_id":"live-1"}}`,
		mediaEvent("v1", "error"), mediaEvent("v2", "processing")}
	post := func(body string) {
		ev := e.must(e.do("POST", "/v1/projects/"+se.pid+"/events", se.key, body), 202).json(t)
		se.events = append(se.events, ev["id"].(string))
	}
	for _, b := range bodies {
		post(b)
	}
	waitFor(t, "9 deliveries to succeed", func() bool { return len(se.search(t, "?status=succeeded")) == 9 })
	e.sink.setStatus(500)
	for _, b := range []string{mediaEvent("v1", "done"), `{"event":"live.created","data":{"event_id":"live-1"}}`, mediaEvent("v3", "done")} {
		post(b)
	}
	waitFor(t, "5 deliveries to fail", func() bool { return len(se.search(t, "?status=failed")) == 5 })
	return se
}

// search pages through GET /v1/projects/{pid}/deliveries + query in pages
// of 2, checking the envelope.
func (se *searchEnv) search(t *testing.T, query string) []searchItem {
	return se.searchPath(t, "/v1/projects/"+se.pid+"/deliveries", query)
}

func (se *searchEnv) searchPath(t *testing.T, path, query string) []searchItem {
	t.Helper()
	sep := "?"
	if strings.Contains(query, "?") {
		sep = "&"
	}
	var out []searchItem
	cursor := ""
	for pages := 0; pages < 100; pages++ {
		q := query + sep + "limit=2"
		if cursor != "" {
			q += "&cursor=" + url.QueryEscape(cursor)
		}
		var b struct {
			Data       []searchItem `json:"data"`
			NextCursor *string      `json:"next_cursor"`
		}
		if err := json.Unmarshal(se.must(se.do("GET", path+q, se.key, nil), 200).body, &b); err != nil {
			t.Fatal(err)
		}
		if b.NextCursor == nil || b.Data == nil {
			t.Fatalf("answer without data or next_cursor")
		}
		out = append(out, b.Data...)
		if *b.NextCursor == "" {
			return out
		}
		cursor = *b.NextCursor
	}
	t.Fatal("search never ends")
	return nil
}

func TestDeliverySearch(t *testing.T) {
	se := newSearchEnv(t)
	all := se.search(t, "")
	if len(all) != 14 {
		t.Fatalf("%d deliveries, want 14", len(all))
	}
	// Newest first; each item has its event's type, resource and time.
	for i, d := range all {
		if i > 0 && d.CreatedAt.After(all[i-1].CreatedAt) {
			t.Errorf("item %d is newer than the one before", i)
		}
		if d.EventType == "" || d.Resource == nil || *d.Resource == "" || d.CreatedAt.IsZero() || d.EventID == "" || d.EndpointID == "" {
			t.Errorf("item lacks fields: %+v", d)
		}
	}
	if all[0].EventID != se.events[7] || all[len(all)-1].EventID != se.events[0] {
		t.Errorf("first %s and last %s, want the newest and the oldest event", all[0].EventID, all[len(all)-1].EventID)
	}
	ids := func(items []searchItem) []string {
		out := make([]string, len(items))
		for i, d := range items {
			out[i] = d.ID
		}
		return out
	}
	keep := func(ok func(searchItem) bool) []string {
		var out []searchItem
		for _, d := range all {
			if ok(d) {
				out = append(out, d)
			}
		}
		return ids(out)
	}
	mid := all[6].CreatedAt // the event of the 7th newest delivery
	tests := []struct {
		query string
		want  []string
	}{
		{"?endpoint_id=" + se.a, keep(func(d searchItem) bool { return d.EndpointID == se.a })},
		{"?status=failed", keep(func(d searchItem) bool { return d.Status == "failed" })},
		{"?status=failed,succeeded", ids(all)},
		{"?status=failed&status=pending", keep(func(d searchItem) bool { return d.Status == "failed" })},
		{"?status=retrying", nil},
		{"?event=live.created", keep(func(d searchItem) bool { return d.EventType == "live.created" })},
		{"?resource=v1", keep(func(d searchItem) bool { return *d.Resource == "v1" })},
		{"?resource_id=live-1&endpoint_id=" + se.a, nil},
		{"?resource=v1&status=failed&endpoint_id=" + se.b, keep(func(d searchItem) bool { return *d.Resource == "v1" && d.Status == "failed" && d.EndpointID == se.b })},
		{"?event_id=" + se.events[3], keep(func(d searchItem) bool { return d.EventID == se.events[3] })},
		{"?since=" + url.QueryEscape(mid.Format(time.RFC3339Nano)), keep(func(d searchItem) bool { return !d.CreatedAt.Before(mid) })},
		{"?until=" + url.QueryEscape(mid.Format(time.RFC3339Nano)), keep(func(d searchItem) bool { return d.CreatedAt.Before(mid) })},
		{"?since=" + url.QueryEscape(se.started.Add(-time.Hour).Format(time.RFC3339)) + "&until=" + url.QueryEscape(time.Now().Add(time.Hour).Format(time.RFC3339)), ids(all)},
		{"?since=" + url.QueryEscape(time.Now().Add(time.Hour).Format(time.RFC3339)), nil},
		{"?endpoint_id=ep_deleted_or_never", nil},
	}
	for _, tc := range tests {
		if got := ids(se.search(t, tc.query)); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.query, got, tc.want)
		}
	}
	if len(keep(func(d searchItem) bool { return *d.Resource == "v1" && d.Status == "failed" && d.EndpointID == se.b })) != 1 {
		t.Error("fixture: want one failed delivery of v1 to B")
	}
	// The endpoint's route is the endpoint_id filter.
	epPath := "/v1/projects/" + se.pid + "/endpoints/" + se.b + "/deliveries"
	for _, q := range []string{"", "?status=failed", "?event=live.created&status=succeeded"} {
		want := ids(se.search(t, q+map[bool]string{true: "?", false: "&"}[q == ""]+"endpoint_id="+se.b))
		if got := ids(se.searchPath(t, epPath, q)); !slices.Equal(got, want) {
			t.Errorf("endpoint route %s: %v, want %v", q, got, want)
		}
	}
	// The per-event list has the same items.
	var perEvent struct{ Data []searchItem }
	if err := json.Unmarshal(se.must(se.do("GET", "/v1/projects/"+se.pid+"/events/"+se.events[0]+"/deliveries", se.key, nil), 200).body, &perEvent); err != nil {
		t.Fatal(err)
	}
	if len(perEvent.Data) != 2 || *perEvent.Data[0].Resource != "v1" {
		t.Errorf("per-event list: %+v", perEvent.Data)
	}
}

func TestDeliverySearchRefusals(t *testing.T) {
	se := newSearchEnv(t)
	path := "/v1/projects/" + se.pid + "/deliveries"
	for _, tc := range []struct{ query, field string }{
		{"?status=lost", "status"},
		{"?status=failed,lost", "status"},
		{"?since=monday", "since"},
		{"?until=2026", "until"},
		{"?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", "until"},
		{"?limit=0", "limit"},
		{"?limit=x", "limit"},
		{"?limit=1001", "limit"},
		{"?cursor=garbage!", "cursor"},
		{"?event=video.done", "event"},
		{"?resource=a&resource_id=b", "resource_id"},
	} {
		r := se.do("GET", path+tc.query, se.key, nil)
		if r.status != 400 || r.errCode() != "malformed" || r.errField() != tc.field {
			t.Errorf("%s: %d %s, want 400 naming %s", tc.query, r.status, r.body, tc.field)
		}
		r = se.do("GET", "/v1/projects/"+se.pid+"/endpoints/"+se.a+"/deliveries"+tc.query, se.key, nil)
		if r.status != 400 || r.errField() != tc.field {
			t.Errorf("endpoint route %s: %d %s, want 400 naming %s", tc.query, r.status, r.body, tc.field)
		}
	}
	se.must(se.do("GET", "/v1/projects/"+se.pid+"/endpoints/ep_nope/deliveries", se.key, nil), 404)
	se.must(se.do("GET", "/v1/projects/"+se.pid+"/endpoints/"+se.a+"/deliveries?endpoint_id="+se.b, se.key, nil), 400)
	se.must(se.do("GET", "/v1/projects/prj_nope/deliveries", testAdminKey, nil), 404)
	se.must(se.do("GET", path, "", nil), 401)
	// Another project's key sees nothing of this one.
	_, other := se.project("q")
	if r := se.do("GET", path, other, nil); r.status == 200 {
		t.Errorf("another project's key: %d", r.status)
	}
	se.must(se.do("GET", path, testAdminKey, nil), 200)
}

func TestBulkRetry(t *testing.T) {
	se := newSearchEnv(t)
	path := "/v1/projects/" + se.pid + "/deliveries/retry"
	retried := func(body any, status int) float64 {
		t.Helper()
		r := se.must(se.do("POST", path, se.key, body), status)
		if status != 200 {
			return -1
		}
		return r.json(t)["retried"].(float64)
	}
	// Refusals first: nothing is re-queued.
	for _, tc := range []struct {
		body   string
		status int
		field  string
	}{
		{`{"status":"lost"}`, 400, "status"},
		{`{"status":["failed","lost"]}`, 400, "status"},
		{`{"status":7}`, 400, "status"},
		{`{"since":"yesterday"}`, 400, "since"},
		{`{"event":"video.done"}`, 400, "event"},
		{`{"limit":5}`, 422, "limit"},
		{`[]`, 400, ""},
	} {
		r := se.do("POST", path, se.key, tc.body)
		if r.status != tc.status || (tc.field != "" && r.errField() != tc.field) {
			t.Errorf("%s: %d %s, want %d naming %q", tc.body, r.status, r.body, tc.status, tc.field)
		}
	}
	se.must(se.do("POST", path, se.key, map[string]any{"endpoint_id": "ep_nope"}), 404)
	// Statuses without failed match nothing; the filters narrow.
	if n := retried(map[string]any{"status": "succeeded"}, 200); n != 0 {
		t.Errorf("status succeeded retried %v, want 0", n)
	}
	if n := retried(map[string]any{"resource": "nothing-here"}, 200); n != 0 {
		t.Errorf("unknown resource retried %v, want 0", n)
	}
	se.sink.setStatus(200)
	if n := retried(map[string]any{"endpoint_id": se.b, "event": "live.created", "status": []string{"failed", "succeeded"}}, 200); n != 1 {
		t.Errorf("B's failed live event retried %v, want 1", n)
	}
	waitFor(t, "the retried delivery to succeed", func() bool { return len(se.search(t, "?status=failed")) == 4 })
	// A disabled endpoint: 409, nothing re-queued.
	se.must(se.do("PATCH", "/v1/projects/"+se.pid+"/endpoints/"+se.a, se.key, map[string]any{"disabled": true}), 200)
	r := se.do("POST", path, se.key, map[string]any{"endpoint_id": se.a})
	if r.status != 409 {
		t.Errorf("disabled endpoint: %d %s", r.status, r.body)
	}
	se.must(se.do("PATCH", "/v1/projects/"+se.pid+"/endpoints/"+se.a, se.key, map[string]any{"disabled": false}), 200)
	// An empty body retries every failed delivery of the project.
	if n := retried("", 200); n != 4 {
		t.Errorf("empty body retried %v, want 4", n)
	}
	waitFor(t, "every delivery to succeed", func() bool { return len(se.search(t, "?status=succeeded")) == 14 })
	if n := retried(`{}`, 200); n != 0 {
		t.Errorf("nothing failed, retried %v", n)
	}
}
