package http

import (
	"fmt"
	"maps"
	"testing"
)

// TestHeadersMasked: custom header values are answered masked (create, get,
// list, PATCH), the delivery still carries the real value, and a PATCH that
// sends the masks back keeps the real values.
func TestHeadersMasked(t *testing.T) {
	onBothStores(t, testHeadersMasked)
}

func testHeadersMasked(t *testing.T, e *env) {
	pid, key := e.project("p")
	const token = "Bearer tok-0123456789abcdef"
	real := map[string]string{"Authorization": token, "X-Tenant": "42"}
	masked := map[string]any{"Authorization": "****cdef", "X-Tenant": "****"}
	ep := e.endpoint(pid, key, map[string]any{"headers": real})
	path := fmt.Sprintf("/v1/projects/%s/endpoints/%s", pid, ep["id"])
	stored := func() map[string]string {
		t.Helper()
		got, err := e.store.GetEndpoint(t.Context(), pid, ep["id"].(string))
		if err != nil {
			t.Fatal(err)
		}
		return got.Headers
	}
	check := func(what string, m map[string]any) {
		t.Helper()
		if h, _ := m["headers"].(map[string]any); !maps.Equal(h, masked) {
			t.Errorf("%s answers headers %v, want %v", what, m["headers"], masked)
		}
	}
	check("create", ep)
	check("get", e.must(e.do("GET", path, key, nil), 200).json(t))
	list := e.must(e.do("GET", "/v1/projects/"+pid+"/endpoints", key, nil), 200).json(t)["data"].([]any)
	check("list", list[0].(map[string]any))

	// Sending back what was read keeps the real values.
	got := e.must(e.do("GET", path, key, nil), 200).json(t)
	check("patch", e.must(e.do("PATCH", path, key, got), 200).json(t))
	if h := stored(); !maps.Equal(h, real) {
		t.Errorf("after sending the masks back the store holds %v, want %v", h, real)
	}

	// The receiver gets the real value.
	e.must(e.do("POST", "/v1/projects/"+pid+"/events", key, mediaEvent("v1", "done")), 202)
	waitFor(t, "the delivery", func() bool { return e.sink.count() > 0 })
	if got := e.sink.received()[0].header.Get("Authorization"); got != token {
		t.Errorf("receiver got Authorization %q, want %q", got, token)
	}

	// A new value replaces the old; a mask of another value is taken as given.
	e.must(e.do("PATCH", path, key, map[string]any{"headers": map[string]string{"Authorization": "Bearer new-token-9999", "X-Tenant": "****zzzz"}}), 200)
	if h := stored(); h["Authorization"] != "Bearer new-token-9999" || h["X-Tenant"] != "****zzzz" {
		t.Errorf("after a change the store holds %v", h)
	}
}
