package http

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

const openAPIURL = "mem://kinehook/openapi.json"

// contract validates answers against openapi.json and records which routes
// were exercised.
type contract struct {
	t       *testing.T
	e       *env
	doc     map[string]any
	c       *jsonschema.Compiler
	n       int
	visited map[string]bool
}

func newContract(t *testing.T, e *env) *contract {
	t.Helper()
	raw, err := jsonschema.UnmarshalJSON(bytes.NewReader(OpenAPI()))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource(openAPIURL, raw); err != nil {
		t.Fatal(err)
	}
	return &contract{t: t, e: e, doc: raw.(map[string]any), c: c, visited: map[string]bool{}}
}

// absRefs copies a schema subtree, making its local $refs point into the
// OpenAPI document.
func absRefs(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, c := range x {
			if s, ok := c.(string); ok && k == "$ref" && strings.HasPrefix(s, "#/") {
				out[k] = openAPIURL + s
				continue
			}
			out[k] = absRefs(c)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, c := range x {
			out[i] = absRefs(c)
		}
		return out
	}
	return v
}

func (k *contract) lookup(path ...string) any {
	var cur any = k.doc
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[p]
	}
	return cur
}

// call sends a request to a route and checks the answer's status and body
// against the document.
func (k *contract) call(method, pattern, path, key string, body any, hdr ...string) resp {
	k.t.Helper()
	r := k.e.do(method, path, key, body, hdr...)
	k.visited[method+" "+pattern] = true
	status := strconv.Itoa(r.status)
	resp := k.lookup("paths", pattern, strings.ToLower(method), "responses", status)
	if resp == nil {
		k.t.Errorf("%s %s answered %d, which openapi.json does not document: %s", method, pattern, r.status, r.body)
		return r
	}
	if ref, ok := resp.(map[string]any)["$ref"].(string); ok {
		resp = k.lookup(strings.Split(strings.TrimPrefix(ref, "#/"), "/")...)
	}
	schema := k.lookupIn(resp, "content", "application/json", "schema")
	if schema == nil && k.lookupIn(resp, "content") != nil {
		return r // documented with another media type (text/plain metrics)
	}
	if schema == nil {
		if len(r.body) != 0 {
			k.t.Errorf("%s %s %d: documented without a body, got %s", method, pattern, r.status, r.body)
		}
		return r
	}
	k.n++
	name := fmt.Sprintf("mem://kinehook/response-%d.json", k.n)
	if err := k.c.AddResource(name, absRefs(schema)); err != nil {
		k.t.Fatal(err)
	}
	sch, err := k.c.Compile(name)
	if err != nil {
		k.t.Fatalf("compile the schema of %s %s %d: %v", method, pattern, r.status, err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(r.body))
	if err != nil {
		k.t.Errorf("%s %s %d: not JSON: %s", method, pattern, r.status, r.body)
		return r
	}
	if err := sch.Validate(inst); err != nil {
		k.t.Errorf("%s %s %d does not match openapi.json: %v\nbody: %s", method, pattern, r.status, err, r.body)
	}
	return r
}

func (k *contract) lookupIn(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

// TestResponsesMatchOpenAPI exercises every route, with successes and
// errors, and validates each answer against the schema openapi.json gives
// for its status.
func TestResponsesMatchOpenAPI(t *testing.T) {
	e := newEnv(t)
	k := newContract(t, e)
	str := func(r resp, key string) string {
		var m map[string]any
		_ = json.Unmarshal(r.body, &m)
		s, _ := m[key].(string)
		return s
	}
	k.call("GET", "/healthz", "/healthz", "", nil)
	k.call("GET", "/readyz", "/readyz", "", nil)
	k.call("GET", "/openapi.json", "/openapi.json", "", nil)
	k.call("GET", "/v1/event-types", "/v1/event-types", "", nil)
	k.call("GET", "/metrics", "/metrics", "", nil)

	k.call("POST", "/v1/projects", "/v1/projects", "", map[string]any{"name": "x"})
	k.call("POST", "/v1/projects", "/v1/projects", testAdminKey, `{"name":`)
	k.call("POST", "/v1/projects", "/v1/projects", testAdminKey, map[string]any{})
	pr := k.call("POST", "/v1/projects", "/v1/projects", testAdminKey, map[string]any{"name": "contract"})
	pid, key := str(pr, "id"), str(pr, "api_key")
	k.call("POST", "/v1/projects", "/v1/projects", key, map[string]any{"name": "x"})
	k.call("GET", "/v1/projects", "/v1/projects", testAdminKey, nil)
	k.call("GET", "/v1/projects/{pid}", "/v1/projects/"+pid, key, nil)
	k.call("GET", "/v1/projects/{pid}", "/v1/projects/prj_nope", testAdminKey, nil)
	k.call("PATCH", "/v1/projects/{pid}", "/v1/projects/"+pid, key, map[string]any{"retention_days": 7, "operations_url": e.sink.URL + "/ops"})
	k.call("PATCH", "/v1/projects/{pid}", "/v1/projects/"+pid, key, map[string]any{"retention_days": -1})
	k.call("PATCH", "/v1/projects/{pid}", "/v1/projects/prj_nope", key, map[string]any{"name": "x"})

	base := "/v1/projects/" + pid
	ep := k.call("POST", "/v1/projects/{pid}/endpoints", base+"/endpoints", key, map[string]any{"url": e.sink.URL, "headers": map[string]string{"X-A": "1"}})
	k.call("POST", "/v1/projects/{pid}/endpoints", base+"/endpoints", key, map[string]any{"url": "nope"})
	k.call("POST", "/v1/projects/{pid}/endpoints", base+"/endpoints", key, map[string]any{"url": e.sink.URL, "signature_scheme": "v1a"})
	eid := str(ep, "id")
	epPath := base + "/endpoints/" + eid
	k.call("GET", "/v1/projects/{pid}/endpoints", base+"/endpoints", key, nil)
	k.call("GET", "/v1/projects/{pid}/endpoints/{eid}", epPath, key, nil)
	k.call("GET", "/v1/projects/{pid}/endpoints/{eid}", base+"/endpoints/ep_nope", key, nil)
	k.call("PATCH", "/v1/projects/{pid}/endpoints/{eid}", epPath, key, map[string]any{"description": "d"})
	k.call("PATCH", "/v1/projects/{pid}/endpoints/{eid}", epPath, key, map[string]any{"event_types": []string{"x"}})
	k.call("GET", "/v1/projects/{pid}/endpoints/{eid}/secret", epPath+"/secret", key, nil)
	k.call("POST", "/v1/projects/{pid}/endpoints/{eid}/secret/rotate", epPath+"/secret/rotate", key, nil)
	k.call("POST", "/v1/projects/{pid}/endpoints/{eid}/secret/rotate", epPath+"/secret/rotate", key, map[string]any{"secret": "bad"})

	ev := k.call("POST", "/v1/projects/{pid}/events", base+"/events", key, mediaEvent("v1", "done"), "Idempotency-Key", "c-1")
	k.call("POST", "/v1/projects/{pid}/events", base+"/events", key, mediaEvent("v1", "done"), "Idempotency-Key", "c-1")
	k.call("POST", "/v1/projects/{pid}/events", base+"/events", key, `{"event":`)
	k.call("POST", "/v1/projects/{pid}/events", base+"/events", key, `{"event":"video.done","data":{}}`)
	k.call("POST", "/v1/projects/{pid}/events", base+"/events", key, `{"event":"media.update.status","data":{"id":"v","status":"done","message":"`+strings.Repeat("a", 1<<20)+`"}}`)
	k.call("POST", "/v1/projects/{pid}/events", base+"/events", "kh_wrong", mediaEvent("v1", "done"))
	evID := str(ev, "id")
	batchPat := "/v1/projects/{pid}/events/batch"
	k.call("POST", batchPat, base+"/events/batch", key, `{"events":[`+mediaEvent("v9", "processing")+`,{"event":"live.created","data":{"event_id":"l9"},"idempotency_key":"b-1"},{"event":"live.created","data":{"event_id":"l9"},"idempotency_key":"b-1"}]}`)
	k.call("POST", batchPat, base+"/events/batch", key, `{"events":`)
	k.call("POST", batchPat, base+"/events/batch", key, `{"events":[`+mediaEvent("v9", "nope")+`]}`)
	k.call("POST", batchPat, base+"/events/batch", key, `{"events":[`+strings.Repeat(mediaEvent("v9", "done")+",", 1000)+mediaEvent("v9", "done")+`]}`)
	k.call("POST", batchPat, base+"/events/batch", "kh_wrong", `{"events":[`+mediaEvent("v9", "done")+`]}`)
	k.call("GET", "/v1/projects/{pid}/events", base+"/events?limit=1", key, nil)
	k.call("GET", "/v1/projects/{pid}/events", base+"/events?limit=0", key, nil)
	k.call("GET", "/v1/projects/{pid}/events/{id}", base+"/events/"+evID, key, nil)
	recordRejected(t, e.store, pid, 3)
	k.call("GET", "/v1/projects/{pid}/rejected", base+"/rejected?limit=2", key, nil)
	k.call("GET", "/v1/projects/{pid}/rejected", base+"/rejected?limit=0", key, nil)
	k.call("GET", "/v1/projects/{pid}/rejected", "/v1/projects/prj_nope/rejected", testAdminKey, nil)
	k.call("GET", "/v1/projects/{pid}/events/{id}", base+"/events/msg_nope", key, nil)
	waitFor(t, "the delivery", func() bool { return e.sink.count() >= 1 })
	var dl resp
	waitFor(t, "an attempt recorded", func() bool {
		dl = e.do("GET", base+"/events/"+evID+"/deliveries", key, nil)
		return strings.Contains(string(dl.body), `"attempts":1`)
	})
	dl = k.call("GET", "/v1/projects/{pid}/events/{id}/deliveries", base+"/events/"+evID+"/deliveries", key, nil)
	var ds struct{ Data []map[string]any }
	_ = json.Unmarshal(dl.body, &ds)
	if len(ds.Data) != 2 {
		t.Fatalf("want one delivery per endpoint: %s", dl.body)
	}
	did := ds.Data[0]["id"].(string)
	k.call("GET", "/v1/projects/{pid}/deliveries/{did}", base+"/deliveries/"+did, key, nil)
	k.call("GET", "/v1/projects/{pid}/deliveries/{did}/attempts", base+"/deliveries/"+did+"/attempts", key, nil)
	k.call("POST", "/v1/projects/{pid}/deliveries/{did}/retry", base+"/deliveries/"+did+"/retry", key, nil)
	k.call("POST", "/v1/projects/{pid}/deliveries/{did}/retry", base+"/deliveries/dlv_nope/retry", key, nil)
	k.call("POST", "/v1/projects/{pid}/endpoints/{eid}/recover", epPath+"/recover", key, map[string]any{"since": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)})
	k.call("POST", "/v1/projects/{pid}/endpoints/{eid}/recover", epPath+"/recover", key, map[string]any{"since": "soon"})
	k.call("GET", "/v1/projects/{pid}/endpoints/{eid}/stats", epPath+"/stats?window=1h", key, nil)
	k.call("GET", "/v1/projects/{pid}/endpoints/{eid}/stats", epPath+"/stats?window=2h", key, nil)
	k.call("GET", "/v1/projects/{pid}/endpoints/{eid}/stats", base+"/endpoints/ep_nope/stats", key, nil)
	k.call("GET", "/v1/projects/{pid}/stats", base+"/stats", key, nil)
	k.call("GET", "/v1/projects/{pid}/stats", base+"/stats?window=1d", key, nil)
	k.call("POST", "/v1/projects/{pid}/endpoints/{eid}/test", epPath+"/test", key, nil)
	k.call("POST", "/v1/projects/{pid}/endpoints/{eid}/test", epPath+"/test", key, map[string]any{"event_type": "nope"})
	k.call("POST", "/v1/projects/{pid}/endpoints/{eid}/test", base+"/endpoints/ep_nope/test", key, nil)
	k.call("GET", "/v1/projects/{pid}/deliveries", base+"/deliveries?limit=1&status=succeeded,pending,retrying", key, nil)
	k.call("GET", "/v1/projects/{pid}/deliveries", base+"/deliveries?endpoint_id="+eid+"&resource=v1&event=media.update.status", key, nil)
	k.call("GET", "/v1/projects/{pid}/deliveries", base+"/deliveries?status=lost", key, nil)
	k.call("GET", "/v1/projects/{pid}/deliveries", "/v1/projects/prj_nope/deliveries", testAdminKey, nil)
	k.call("GET", "/v1/projects/{pid}/endpoints/{eid}/deliveries", epPath+"/deliveries?since=2026-01-01T00:00:00Z", key, nil)
	k.call("GET", "/v1/projects/{pid}/endpoints/{eid}/deliveries", base+"/endpoints/ep_nope/deliveries", key, nil)
	k.call("GET", "/v1/projects/{pid}/endpoints/{eid}/deliveries", epPath+"/deliveries?until=tomorrow", key, nil)
	k.call("POST", "/v1/projects/{pid}/deliveries/retry", base+"/deliveries/retry", key, map[string]any{"endpoint_id": eid, "status": []string{"failed"}})
	k.call("POST", "/v1/projects/{pid}/deliveries/retry", base+"/deliveries/retry", key, nil)
	k.call("POST", "/v1/projects/{pid}/deliveries/retry", base+"/deliveries/retry", key, map[string]any{"status": "lost"})
	k.call("POST", "/v1/projects/{pid}/deliveries/retry", base+"/deliveries/retry", key, map[string]any{"endpoint_id": "ep_nope"})
	k.call("POST", "/v1/projects/{pid}/deliveries/retry", base+"/deliveries/retry", key, map[string]any{"cursor": "x"})

	srcPat, srcOne := "/v1/projects/{pid}/sources", "/v1/projects/{pid}/sources/{sid}"
	src := k.call("POST", srcPat, base+"/sources", key, map[string]any{"name": "kinescope", "type": "kinescope", "login": "kin", "password": "pw"})
	k.call("POST", srcPat, base+"/sources", key, map[string]any{"name": "peer", "type": "standard-webhooks", "secret": "whsec_" + strings.Repeat("A", 40)})
	k.call("POST", srcPat, base+"/sources", key, map[string]any{"name": "x", "type": "kinescope"})
	k.call("POST", srcPat, base+"/sources", key, `{"name":`)
	srcID := str(src, "id")
	k.call("GET", srcPat, base+"/sources", key, nil)
	k.call("GET", srcOne, base+"/sources/"+srcID, key, nil)
	k.call("GET", srcOne, base+"/sources/inb_nope", key, nil)
	k.call("PATCH", srcOne, base+"/sources/"+srcID, key, map[string]any{"name": "renamed"})
	k.call("PATCH", srcOne, base+"/sources/"+srcID, key, map[string]any{"secret": "whsec_x"})
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("kin:pw"))
	inPath := "/in/" + srcID
	k.call("POST", "/in/{source_id}", inPath, "", mediaEvent("v7", "error"), "Authorization", basic)
	k.call("POST", "/in/{source_id}", inPath, "", mediaEvent("v7", "error"), "Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("kin:wrong")))
	k.call("POST", "/in/{source_id}", inPath, "", `{"event":`, "Authorization", basic)
	k.call("POST", "/in/{source_id}", inPath, "", `{"event":"media.update.status","data":{"id":"v","status":"done","message":"`+strings.Repeat("a", 1<<20)+`"}}`, "Authorization", basic)
	k.call("POST", "/in/{source_id}", "/in/inb_nope", "", mediaEvent("v7", "error"), "Authorization", basic)
	k.call("GET", "/v1/projects/{pid}/media", base+"/media?status=error", key, nil)
	k.call("GET", "/v1/projects/{pid}/media", base+"/media?since=yesterday", key, nil)
	k.call("GET", "/v1/projects/{pid}/media/{id}", base+"/media/v7", key, nil)
	k.call("GET", "/v1/projects/{pid}/media/{id}", base+"/media/nope", key, nil)
	k.call("GET", "/v1/projects/{pid}/live", base+"/live?state=created", key, nil)
	k.call("GET", "/v1/projects/{pid}/live", base+"/live?limit=0", key, nil)
	k.call("GET", "/v1/projects/{pid}/live/{event_id}", base+"/live/l9", key, nil)
	k.call("GET", "/v1/projects/{pid}/live/{event_id}", base+"/live/nope", key, nil)
	k.call("GET", "/v1/projects/{pid}/events", base+"/events?source_id="+srcID, key, nil)
	k.call("DELETE", srcOne, base+"/sources/"+srcID, key, nil)
	k.call("DELETE", srcOne, base+"/sources/"+srcID, key, nil)

	wh := k.call("POST", "/v1/webhooks", "/v1/webhooks", key, map[string]any{"name": "k", "endpoint": e.sink.URL, "events": []string{"live.*"}, "login": "u", "password": "p"})
	k.call("POST", "/v1/webhooks", "/v1/webhooks", key, map[string]any{"name": "k"})
	k.call("POST", "/v1/webhooks", "/v1/webhooks", testAdminKey, map[string]any{"name": "k"})
	var whb struct{ Data map[string]any }
	_ = json.Unmarshal(wh.body, &whb)
	whid, _ := whb.Data["id"].(string)
	k.call("GET", "/v1/webhooks", "/v1/webhooks", key, nil)
	k.call("GET", "/v1/webhooks/{id}", "/v1/webhooks/"+whid, key, nil)
	k.call("PUT", "/v1/webhooks/{id}", "/v1/webhooks/"+whid, key, map[string]any{"name": "k2"})
	k.call("PUT", "/v1/webhooks/{id}", "/v1/webhooks/ep_nope", key, map[string]any{"name": "k2"})
	k.call("DELETE", "/v1/webhooks/{id}", "/v1/webhooks/"+whid, key, nil)
	k.call("DELETE", "/v1/projects/{pid}/endpoints/{eid}", epPath, key, nil)
	k.call("DELETE", "/v1/projects/{pid}/endpoints/{eid}", epPath, key, nil)
	k.call("GET", "/v1/projects/{pid}/endpoints", base+"/endpoints?limit=1&colour=red", key, nil)
	k.call("GET", "/v1/projects/{pid}/listen", base+"/listen", key, nil)                                                                // not a WebSocket: 400
	k.call("GET", "/v1/projects/{pid}/listen", base+"/listen?events=nope.*", key, nil, "Connection", "Upgrade", "Upgrade", "websocket") // this server has no relay: 503

	keysPat, keyPat := "/v1/projects/{pid}/keys", "/v1/projects/{pid}/keys/{kid}"
	ro := k.call("POST", keysPat, base+"/keys", key, map[string]any{"name": "read only", "scope": "read"})
	k.call("POST", keysPat, base+"/keys", key, map[string]any{"name": "x", "scope": "admin"})
	k.call("POST", keysPat, base+"/keys", key, `{"name":`)
	k.call("POST", keysPat, base+"/keys", str(ro, "key"), map[string]any{"name": "escalate", "scope": "full"})
	k.call("POST", keysPat, base+"/keys", "kh_wrong", map[string]any{"name": "x", "scope": "full"})
	kl := k.call("GET", keysPat, base+"/keys", key, nil)
	k.call("GET", keysPat, base+"/keys", str(ro, "key"), nil)
	var keys struct{ Data []map[string]any }
	_ = json.Unmarshal(kl.body, &keys)
	if len(keys.Data) != 2 {
		t.Fatalf("want the default key and the read key: %s", kl.body)
	}
	k.call("DELETE", keyPat, base+"/keys/"+keys.Data[0]["id"].(string), key, nil) // the last full key: 409
	k.call("DELETE", keyPat, base+"/keys/"+str(ro, "id"), key, nil)
	k.call("DELETE", keyPat, base+"/keys/"+str(ro, "id"), key, nil)
	portalPat, portalOne := "/v1/projects/{pid}/portal-sessions", "/v1/projects/{pid}/portal-sessions/{id}"
	ps := k.call("POST", portalPat, base+"/portal-sessions", key, map[string]any{"scope": "manage", "event_types": []string{"media.*"},
		"branding": map[string]any{"name": "Acme", "color": "#112233"}})
	k.call("POST", portalPat, base+"/portal-sessions", key, map[string]any{"scope": "all"})
	k.call("GET", portalPat, base+"/portal-sessions", key, nil)
	k.call("DELETE", portalOne, base+"/portal-sessions/"+str(ps, "id"), key, nil)
	k.call("DELETE", portalOne, base+"/portal-sessions/pts_nope", key, nil)
	k.call("DELETE", "/v1/projects/{pid}", "/v1/projects/"+pid, key, nil)
	k.call("DELETE", "/v1/projects/{pid}", "/v1/projects/"+pid, testAdminKey, nil)
	k.call("DELETE", "/v1/projects/{pid}", "/v1/projects/"+pid, testAdminKey, nil)

	for _, r := range Routes() {
		if !k.visited[r.Method+" "+r.Pattern] {
			t.Errorf("route %s %s is not exercised by this test", r.Method, r.Pattern)
		}
	}
}

// TestOpenAPIQueryParameters: the query parameters openapi.json documents
// for each route are exactly the ones the router accepts (route.Query).
func TestOpenAPIQueryParameters(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]struct {
			Parameters []struct {
				Name string `json:"name"`
				In   string `json:"in"`
			} `json:"parameters"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	for _, rt := range routeTable() {
		var documented []string
		for _, p := range doc.Paths[rt.Pattern][strings.ToLower(rt.Method)].Parameters {
			if p.In == "query" {
				documented = append(documented, p.Name)
			}
		}
		if fmt.Sprint(documented) != fmt.Sprint(rt.Query) && !(len(documented) == 0 && len(rt.Query) == 0) {
			t.Errorf("%s %s: openapi.json documents the query parameters %v, the router accepts %v", rt.Method, rt.Pattern, documented, rt.Query)
		}
	}
}
