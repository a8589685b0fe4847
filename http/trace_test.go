package http

import (
	"testing"
	"time"
)

// An event keeps the W3C trace context it was posted with, shows its
// traceparent, and (the engine not tracing) each delivery sends both on as
// they came; a value that is not valid is ignored, never refused.
func TestTraceContextIngest(t *testing.T) {
	const (
		tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
		ts = "rojo=00f067aa0ba902b7"
	)
	e := newEnv(t)
	pid, key := e.project("p")
	e.endpoint(pid, key, nil)
	path := "/v1/projects/" + pid + "/events"
	for _, tc := range []struct {
		name         string
		batch        bool
		hdr          []string
		wantP, wantS string
	}{
		{name: "traceparent and tracestate", hdr: []string{"traceparent", tp, "tracestate", ts}, wantP: tp, wantS: ts},
		{name: "traceparent alone", hdr: []string{"traceparent", tp}, wantP: tp},
		{name: "no trace context"},
		{name: "invalid traceparent", hdr: []string{"traceparent", "00-zz-yy-01", "tracestate", ts}},
		{name: "invalid tracestate", hdr: []string{"traceparent", tp, "tracestate", "no member"}, wantP: tp},
		{name: "batch", batch: true, hdr: []string{"traceparent", tp, "tracestate", ts}, wantP: tp, wantS: ts},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.sink.count()
			var id string
			n := 1
			if tc.batch {
				r := e.must(e.do("POST", path+"/batch", key, `{"events":[`+mediaEvent("b1", "done")+`,`+mediaEvent("b2", "done")+`]}`, tc.hdr...), 202)
				data := r.json(t)["data"].([]any)
				id, n = data[0].(map[string]any)["id"].(string), 2
				if got, _ := data[1].(map[string]any)["traceparent"].(string); got != tc.wantP {
					t.Errorf("batch answer traceparent %q, want %q", got, tc.wantP)
				}
			} else {
				id = e.must(e.do("POST", path, key, mediaEvent("v-"+tc.name, "done"), tc.hdr...), 202).json(t)["id"].(string)
			}
			got, _ := e.must(e.do("GET", path+"/"+id, key, nil), 200).json(t)["traceparent"].(string)
			if got != tc.wantP {
				t.Errorf("GET event traceparent %q, want %q", got, tc.wantP)
			}
			waitFor(t, "deliveries", func() bool { return e.sink.count() >= before+n })
			time.Sleep(10 * time.Millisecond)
			for _, r := range e.sink.received()[before:] {
				if p, s := r.header.Get("traceparent"), r.header.Get("tracestate"); p != tc.wantP || s != tc.wantS {
					t.Errorf("delivered traceparent %q tracestate %q, want %q %q", p, s, tc.wantP, tc.wantS)
				}
			}
		})
	}
}
