package http

import (
	"maps"
	"strings"
	"testing"
)

func TestMatchSegs(t *testing.T) {
	seg := func(p string) []string { return strings.Split(strings.TrimPrefix(p, "/"), "/") }
	tests := []struct {
		pattern, path string
		ok            bool
		params        map[string]string
	}{
		{"/healthz", "/healthz", true, nil},
		{"/healthz", "/readyz", false, nil},
		{"/v1/projects/{pid}/events", "/v1/projects/prj_1/events", true, map[string]string{"pid": "prj_1"}},
		{"/v1/projects/{pid}/events", "/v1/projects/prj_1/endpoints", false, nil},
		{"/v1/projects/{pid}/events", "/v1/projects//events", false, nil},
		{"/v1/projects/{pid}/events", "/v1/projects/prj_1/events/x", false, nil},
		{"/v1/projects/{pid}/events/{id}", "/v1/projects/p/events/msg_2", true, map[string]string{"pid": "p", "id": "msg_2"}},
		{"/v1/projects/{pid}/events/{id}", "/v1/projects/p/events/", false, nil},
		{"/v1/projects/{pid}/deliveries/{did}/retry", "/v1/projects/p/deliveries/d/attempts", false, nil},
	}
	for _, tt := range tests {
		params, ok := matchSegs(seg(tt.pattern), seg(tt.path))
		if ok != tt.ok || !maps.Equal(params, tt.params) {
			t.Errorf("matchSegs(%s, %s) = %v, %v; want %v, %v", tt.pattern, tt.path, params, ok, tt.params, tt.ok)
		}
	}
	// A route that differs in a literal after a parameter allocates nothing.
	pat, path := seg("/v1/projects/{pid}/endpoints"), seg("/v1/projects/prj_1/events")
	if n := testing.AllocsPerRun(100, func() { matchSegs(pat, path) }); n != 0 {
		t.Errorf("a mismatching route allocated %v times", n)
	}
}
