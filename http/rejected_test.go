package http

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
)

// recordRejected stores n rejected inputs of project pid, the i-th received
// i seconds after the first, the last with a body longer than the excerpt
// and not UTF-8.
func recordRejected(t *testing.T, st kinehook.Store, pid string, n int) {
	t.Helper()
	rs := st.(kinehook.RejectStore)
	base := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	for i := range n {
		body := []byte(fmt.Sprintf(`{"event":"nope","data":{"n":%d}}`, i))
		size := len(body)
		if i == n-1 {
			body = append([]byte{0xff}, strings.Repeat("x", kinehook.RejectedBodyExcerpt-1)...)
			size = 5000
		}
		err := rs.RecordRejected(t.Context(), []*kinehook.RejectedInput{{
			ID: kinehook.NewID(kinehook.PrefixRejected), ProjectID: pid, Source: "nats:ORDERS", MessageID: fmt.Sprintf("ORDERS:%d", i+1),
			Code: kinehook.EINVALID, Reason: "event: unknown", Body: body, BodySize: size, ReceivedAt: base.Add(time.Duration(i) * time.Second),
		}})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestListRejected: newest first, paged by cursor, with the fields the
// docs promise; another project's key and a bad cursor are refused.
func TestListRejected(t *testing.T) {
	e := newEnv(t)
	pid, key := e.project("rejected")
	_, otherKey := e.project("other")
	recordRejected(t, e.store, pid, 5)

	type page struct {
		Data       []rejectedView `json:"data"`
		NextCursor string         `json:"next_cursor"`
	}
	var all []rejectedView
	path := "/v1/projects/" + pid + "/rejected?limit=2"
	for range 5 {
		r := e.do("GET", path, key, nil)
		if r.status != 200 {
			t.Fatalf("GET %s: %d %s", path, r.status, r.body)
		}
		var p page
		if err := json.Unmarshal(r.body, &p); err != nil {
			t.Fatal(err)
		}
		all = append(all, p.Data...)
		if p.NextCursor == "" {
			break
		}
		path = "/v1/projects/" + pid + "/rejected?limit=2&cursor=" + p.NextCursor
	}
	if len(all) != 5 {
		t.Fatalf("listed %d, want 5", len(all))
	}
	for i, r := range all {
		if want := fmt.Sprintf("ORDERS:%d", 5-i); r.MessageID != want {
			t.Errorf("item %d has message_id %s, want %s (newest first)", i, r.MessageID, want)
		}
		if r.Source != "nats:ORDERS" || r.Code != "invalid" || r.Reason != "event: unknown" || r.ReceivedAt.IsZero() {
			t.Errorf("item %d = %+v", i, r)
		}
	}
	if first := all[0]; !first.Truncated || first.BodySize != 5000 || !strings.HasPrefix(first.Body, "\uFFFD") {
		t.Errorf("long body: truncated=%v size=%d body starts %q", first.Truncated, first.BodySize, first.Body[:5])
	}
	if last := all[4]; last.Truncated || last.Body != `{"event":"nope","data":{"n":0}}` {
		t.Errorf("short body: truncated=%v body %q", last.Truncated, last.Body)
	}
	for _, tc := range []struct {
		path, key string
		status    int
	}{
		{"/v1/projects/" + pid + "/rejected?cursor=zzz", key, 422},
		{"/v1/projects/" + pid + "/rejected?limit=5000", key, 422},
		{"/v1/projects/" + pid + "/rejected", otherKey, 404},
		{"/v1/projects/prj_nope/rejected", testAdminKey, 404},
		{"/v1/projects/" + pid + "/rejected", "", 401},
	} {
		if r := e.do("GET", tc.path, tc.key, nil); r.status != tc.status {
			t.Errorf("GET %s: %d %s, want %d", tc.path, r.status, r.body, tc.status)
		}
	}
}
