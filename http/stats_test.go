package http

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// statsBody is the stats answer as a client reads it.
type statsBody struct {
	Window        string `json:"window"`
	BucketSeconds int64  `json:"bucket_seconds"`
	Buckets       []struct {
		Start     time.Time `json:"start"`
		Succeeded int64     `json:"succeeded"`
		Failed    int64     `json:"failed"`
		Retried   int64     `json:"retried"`
		P50MS     float64   `json:"p50_ms"`
		P99MS     float64   `json:"p99_ms"`
	} `json:"buckets"`
	Totals struct {
		Succeeded, Failed, Retried int64
		P50MS                      float64 `json:"p50_ms"`
		P99MS                      float64 `json:"p99_ms"`
	} `json:"totals"`
}

func (e *env) stats(path, key string) statsBody {
	e.t.Helper()
	var st statsBody
	if err := json.Unmarshal(e.must(e.do("GET", path, key, nil), 200).body, &st); err != nil {
		e.t.Fatal(err)
	}
	return st
}

func TestStatsAPI(t *testing.T) {
	e := newEnv(t)
	pid, key := e.project("p")
	ep := e.endpoint(pid, key, nil)
	eid := ep["id"].(string)
	epStats := "/v1/projects/" + pid + "/endpoints/" + eid + "/stats"
	projStats := "/v1/projects/" + pid + "/stats"

	// Nothing yet: every bucket of the window, all zero.
	for _, tc := range []struct {
		window  string
		buckets int
		size    int64
	}{{"", 96, 900}, {"24h", 96, 900}, {"1h", 60, 60}, {"7d", 168, 3600}} {
		st := e.stats(epStats+"?window="+tc.window, key)
		want := tc.window
		if want == "" {
			want = "24h"
		}
		if st.Window != want || st.BucketSeconds != tc.size || len(st.Buckets) != tc.buckets {
			t.Errorf("window %q: %s, %d s, %d buckets; want %s, %d s, %d", tc.window, st.Window, st.BucketSeconds, len(st.Buckets), want, tc.size, tc.buckets)
		}
		for i := 1; i < len(st.Buckets); i++ {
			if d := st.Buckets[i].Start.Sub(st.Buckets[i-1].Start); d != time.Duration(tc.size)*time.Second {
				t.Fatalf("window %q: buckets %d and %d are %v apart", tc.window, i-1, i, d)
			}
		}
		if last := st.Buckets[len(st.Buckets)-1].Start; time.Since(last) < 0 || time.Since(last) > time.Duration(tc.size)*time.Second+time.Minute {
			t.Errorf("window %q: last bucket starts at %v, not the one holding now", tc.window, last)
		}
	}
	for _, bad := range []string{"2h", "1d", "24H"} {
		r := e.do("GET", epStats+"?window="+bad, key, nil)
		if r.status != 400 || r.errField() != "window" {
			t.Errorf("window=%s: %d %s, want 400 naming window", bad, r.status, r.body)
		}
		if r := e.do("GET", projStats+"?window="+bad, key, nil); r.status != 400 {
			t.Errorf("project window=%s: %d", bad, r.status)
		}
	}
	e.must(e.do("GET", "/v1/projects/"+pid+"/endpoints/ep_nope/stats", key, nil), 404)
	e.must(e.do("GET", "/v1/projects/p_nope/stats", testAdminKey, nil), 404)
	_, otherKey := e.project("other")
	e.must(e.do("GET", epStats, otherKey, nil), 404)

	// Three successes; one delivery failing for good (500, 3 attempts: 2 retried, 1 failed).
	for i := range 3 {
		e.must(e.do("POST", "/v1/projects/"+pid+"/events", key, mediaEvent("ok"+string(rune('a'+i)), "done")), 202)
	}
	waitFor(t, "3 deliveries", func() bool { return e.sink.events() == 3 })
	e.sink.setStatus(500)
	ev := e.must(e.do("POST", "/v1/projects/"+pid+"/events", key, mediaEvent("bad", "error")), 202).json(t)
	waitFor(t, "the failing delivery to fail", func() bool {
		return strings.Contains(string(e.do("GET", "/v1/projects/"+pid+"/events/"+ev["id"].(string)+"/deliveries", key, nil).body), `"status":"failed"`)
	})
	for _, path := range []string{epStats + "?window=1h", projStats + "?window=1h", epStats, projStats + "?window=7d"} {
		st := e.stats(path, key)
		var s, f, r int64
		for _, b := range st.Buckets {
			s, f, r = s+b.Succeeded, f+b.Failed, r+b.Retried
			if b.Succeeded+b.Failed+b.Retried > 0 && (b.P50MS <= 0 || b.P99MS < b.P50MS) {
				t.Errorf("%s: bucket %v latency p50 %v p99 %v", path, b.Start, b.P50MS, b.P99MS)
			}
		}
		if s != 3 || f != 1 || r != 2 {
			t.Errorf("%s: buckets sum to %d/%d/%d, want 3 succeeded, 1 failed, 2 retried", path, s, f, r)
		}
		if st.Totals.Succeeded != 3 || st.Totals.Failed != 1 || st.Totals.Retried != 2 || st.Totals.P50MS <= 0 {
			t.Errorf("%s: totals %+v", path, st.Totals)
		}
	}
}

func TestEndpointHealthInAnswers(t *testing.T) {
	e := newEnv(t)
	pid, key := e.project("p")
	ep := e.endpoint(pid, key, nil)
	eid := ep["id"].(string)
	epPath := "/v1/projects/" + pid + "/endpoints/" + eid
	health := func(m map[string]any) map[string]any {
		t.Helper()
		h, ok := m["health"].(map[string]any)
		if !ok {
			t.Fatalf("no health in %v", m)
		}
		return h
	}
	h := health(ep)
	for k, want := range map[string]any{"breaker": "closed", "consecutive_failures": 0.0, "failing_since": nil, "paused_until": nil, "disabled_reason": ""} {
		if got, ok := h[k]; !ok || got != want {
			t.Errorf("new endpoint's health.%s = %v (present %v), want %v", k, got, ok, want)
		}
	}

	// Ten failures in a row open the breaker (the default threshold).
	e.sink.setStatus(500)
	for i := range 5 {
		e.must(e.do("POST", "/v1/projects/"+pid+"/events", key, mediaEvent("r"+string(rune('a'+i)), "error")), 202)
	}
	waitFor(t, "the breaker to show open", func() bool {
		return health(e.must(e.do("GET", epPath, key, nil), 200).json(t))["breaker"] == "open"
	})
	before := time.Now()
	for _, m := range []map[string]any{
		e.must(e.do("GET", epPath, key, nil), 200).json(t),
		e.must(e.do("GET", "/v1/projects/"+pid+"/endpoints", key, nil), 200).json(t)["data"].([]any)[0].(map[string]any),
		e.must(e.do("PATCH", epPath, key, map[string]any{"description": "x"}), 200).json(t),
	} {
		h := health(m)
		if h["breaker"] != "open" || h["consecutive_failures"].(float64) < 10 || h["failing_since"] == nil {
			t.Errorf("health while open = %v", h)
		}
		until, err := time.Parse(time.RFC3339Nano, h["paused_until"].(string))
		if err != nil || until.Before(before) || until.After(before.Add(11*time.Second)) {
			t.Errorf("paused_until %v while the breaker waits 10 s for its probe", h["paused_until"])
		}
	}

	// The test event goes through the normal path: it waits behind the breaker.
	d := e.must(e.do("POST", epPath+"/test", key, nil), 202).json(t)
	if d["endpoint_id"] != eid || d["status"] != "pending" || d["event_type"] == "" {
		t.Errorf("test delivery = %v", d)
	}

	// Disable, then enable: the breaker is reset and the reason cleared.
	dis := e.must(e.do("PATCH", epPath, key, map[string]any{"disabled": true}), 200).json(t)
	if health(dis)["disabled_reason"] == "" {
		t.Errorf("disabled endpoint's health = %v", health(dis))
	}
	e.must(e.do("POST", epPath+"/test", key, nil), 409)
	e.sink.setStatus(200)
	en := e.must(e.do("PATCH", epPath, key, map[string]any{"disabled": false}), 200).json(t)
	for _, m := range []map[string]any{en, e.must(e.do("GET", epPath, key, nil), 200).json(t)} {
		if h := health(m); h["breaker"] != "closed" || h["consecutive_failures"] != 0.0 || h["disabled_reason"] != "" || h["paused_until"] != nil || h["failing_since"] != nil {
			t.Errorf("health after enabling = %v", h)
		}
	}
	// Now the test event (and the rest) arrive; the test event went to this endpoint alone.
	waitFor(t, "the test delivery to succeed", func() bool {
		return strings.Contains(string(e.do("GET", "/v1/projects/"+pid+"/deliveries/"+d["id"].(string), key, nil).body), `"status":"succeeded"`)
	})
}

func TestEndpointTestEventGoesToOneEndpoint(t *testing.T) {
	e := newEnv(t)
	pid, key := e.project("p")
	a := e.endpoint(pid, key, map[string]any{"event_types": []string{"live.*"}})
	e.endpoint(pid, key, nil) // also selects every live type
	path := "/v1/projects/" + pid + "/endpoints/" + a["id"].(string) + "/test"
	d := e.must(e.do("POST", path, key, map[string]any{"event_type": "live.connected"}), 202).json(t)
	if d["event_type"] != "live.connected" {
		t.Errorf("test delivery = %v", d)
	}
	ds := e.must(e.do("GET", "/v1/projects/"+pid+"/events/"+d["event_id"].(string)+"/deliveries", key, nil), 200).json(t)["data"].([]any)
	if len(ds) != 1 || ds[0].(map[string]any)["endpoint_id"] != a["id"] {
		t.Errorf("the test event has deliveries %v, want one to %s", ds, a["id"])
	}
	waitFor(t, "the test event", func() bool { return e.sink.events() == 1 })
	if got := e.sink.received()[0]; got.header.Get("webhook-signature") == "" || !strings.Contains(string(got.body), `"live.connected"`) {
		t.Errorf("received %v %s", got.header, got.body)
	}
	// Default type: the first catalog type the filter selects.
	d = e.must(e.do("POST", path, key, nil), 202).json(t)
	if !strings.HasPrefix(d["event_type"].(string), "live.") {
		t.Errorf("default test type %v", d["event_type"])
	}
	if r := e.do("POST", path, key, map[string]any{"event_type": "media.update.status"}); r.status != 422 {
		t.Errorf("type outside the filter: %d %s", r.status, r.body)
	}
	if r := e.do("POST", path, key, map[string]any{"bogus": 1}); r.status != 400 && r.status != 422 {
		t.Errorf("unknown field: %d %s", r.status, r.body)
	}
	e.must(e.do("POST", "/v1/projects/"+pid+"/endpoints/ep_nope/test", key, nil), 404)
}
