package app

import (
	"encoding/json"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
)

func TestDeliverySearchFilter(t *testing.T) {
	cursor := kinehook.EncodeDeliveryCursor(9, "dlv_a", false)
	tests := []struct {
		name  string
		query string
		want  kinehook.DeliveryFilter
		field string // the refused parameter; "" when accepted
	}{
		{"nothing", "", kinehook.DeliveryFilter{Limit: DefaultPageLimit}, ""},
		{"everything", "endpoint_id=ep_1&status=failed&status=retrying,pending&event=live.created&resource=v1&event_id=msg_1" +
			"&since=2026-01-01T00:00:00Z&until=2026-01-02T00:00:00%2B01:00&limit=7&cursor=" + cursor,
			kinehook.DeliveryFilter{EndpointID: "ep_1", Statuses: []kinehook.DeliveryStatus{"failed", "retrying", "pending"}, EventType: "live.created",
				ResourceKey: "v1", EventID: "msg_1", Since: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
				Until: time.Date(2026, 1, 1, 23, 0, 0, 0, time.UTC), Limit: 7, Cursor: cursor}, ""},
		{"repeats and blanks dropped", "status=failed,,failed&status=", kinehook.DeliveryFilter{Statuses: []kinehook.DeliveryStatus{"failed"}, Limit: DefaultPageLimit}, ""},
		{"resource_id alias", "resource_id=v2", kinehook.DeliveryFilter{ResourceKey: "v2", Limit: DefaultPageLimit}, ""},
		{"same resource twice", "resource_id=v2&resource=v2", kinehook.DeliveryFilter{ResourceKey: "v2", Limit: DefaultPageLimit}, ""},
		{"operational type", "event=endpoint.disabled", kinehook.DeliveryFilter{EventType: "endpoint.disabled", Limit: DefaultPageLimit}, ""},
		{"unquoted offset", "since=2026-01-01T00:00:00 02:00", kinehook.DeliveryFilter{Since: time.Date(2025, 12, 31, 22, 0, 0, 0, time.UTC), Limit: DefaultPageLimit}, ""},
		{"unknown status", "status=failed,lost", kinehook.DeliveryFilter{}, "status"},
		{"unknown type", "event=video.done", kinehook.DeliveryFilter{}, "event"},
		{"bad since", "since=yesterday", kinehook.DeliveryFilter{}, "since"},
		{"bad until", "until=2026-01-01", kinehook.DeliveryFilter{}, "until"},
		{"until before since", "since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", kinehook.DeliveryFilter{}, "until"},
		{"empty range", "since=2026-01-02T00:00:00Z&until=2026-01-02T00:00:00Z", kinehook.DeliveryFilter{}, "until"},
		{"limit 0", "limit=0", kinehook.DeliveryFilter{}, "limit"},
		{"limit too big", "limit=1001", kinehook.DeliveryFilter{}, "limit"},
		{"bad cursor", "cursor=abc", kinehook.DeliveryFilter{}, "cursor"},
		{"oldest-first cursor", "cursor=" + kinehook.EncodeDeliveryCursor(9, "dlv_a", true), kinehook.DeliveryFilter{}, "cursor"},
		{"two resources", "resource=a&resource_id=b", kinehook.DeliveryFilter{}, "resource_id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			s, err := DeliverySearchFromQuery(q)
			var f kinehook.DeliveryFilter
			if err == nil {
				f, err = s.Filter()
			}
			if tc.field != "" {
				var ke *kinehook.Error
				if e, ok := err.(*kinehook.Error); ok {
					ke = e
				}
				if ke == nil || ke.Code != kinehook.EMALFORMED || ke.Field != tc.field {
					t.Fatalf("%s: error %v, want malformed naming %s", tc.query, err, tc.field)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s: %v", tc.query, err)
			}
			if !f.Since.Equal(tc.want.Since) || !f.Until.Equal(tc.want.Until) {
				t.Errorf("times %v %v, want %v %v", f.Since, f.Until, tc.want.Since, tc.want.Until)
			}
			f.Since, f.Until, tc.want.Since, tc.want.Until = time.Time{}, time.Time{}, time.Time{}, time.Time{}
			if f.EndpointID != tc.want.EndpointID || !slices.Equal(f.Statuses, tc.want.Statuses) || f.EventType != tc.want.EventType ||
				f.ResourceKey != tc.want.ResourceKey || f.EventID != tc.want.EventID || f.Limit != tc.want.Limit || f.Cursor != tc.want.Cursor {
				t.Errorf("filter %+v, want %+v", f, tc.want)
			}
		})
	}
}

func TestRetrySearchStatus(t *testing.T) {
	for _, tc := range []struct {
		body string
		want []string
		bad  bool
	}{
		{`{"status":"failed"}`, []string{"failed"}, false},
		{`{"status":"failed,retrying"}`, []string{"failed,retrying"}, false},
		{`{"status":["failed","pending"]}`, []string{"failed", "pending"}, false},
		{`{}`, nil, false},
		{`{"status":7}`, nil, true},
		{`{"status":{"a":1}}`, nil, true},
	} {
		var r RetrySearch
		err := json.Unmarshal([]byte(tc.body), &r)
		if tc.bad {
			if err == nil {
				t.Errorf("%s: accepted", tc.body)
			}
			continue
		}
		if err != nil || !slices.Equal([]string(r.Status), tc.want) {
			t.Errorf("%s: %v %v, want %v", tc.body, r.Status, err, tc.want)
		}
	}
}

// FuzzDeliverySearch: any query gives a filter or a malformed error naming
// a parameter, never a panic; an accepted filter's statuses are known and
// unique, its limit in range, its time range not empty.
func FuzzDeliverySearch(f *testing.F) {
	f.Add("status=failed,retrying&event=live.created&since=2026-01-01T00:00:00Z&limit=5")
	f.Add("status=,,&until=2026-01-01T00:00:00+01:00&resource_id=x&resource=y")
	f.Add("cursor=%ff&limit=-1")
	f.Fuzz(func(t *testing.T, query string) {
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		s, err := DeliverySearchFromQuery(q)
		var fl kinehook.DeliveryFilter
		if err == nil {
			fl, err = s.Filter()
		}
		if err != nil {
			if e, ok := err.(*kinehook.Error); !ok || e.Code != kinehook.EMALFORMED || e.Field == "" {
				t.Fatalf("%q: error %v", query, err)
			}
			return
		}
		seen := map[kinehook.DeliveryStatus]bool{}
		for _, st := range fl.Statuses {
			if !st.Known() || seen[st] {
				t.Fatalf("%q: statuses %v", query, fl.Statuses)
			}
			seen[st] = true
		}
		if fl.Limit < 1 || fl.Limit > MaxPageLimit {
			t.Fatalf("%q: limit %d", query, fl.Limit)
		}
		if !fl.Since.IsZero() && !fl.Until.IsZero() && !fl.Until.After(fl.Since) {
			t.Fatalf("%q: empty range accepted", query)
		}
	})
}
