package http

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/app"
	"github.com/kinehook/kinehook/internal/pgtest"
	"github.com/kinehook/kinehook/postgres"
)

// batchOf wraps event bodies into a batch body.
func batchOf(items ...string) string {
	return `{"events":[` + strings.Join(items, ",") + `]}`
}

func TestEventBatchValidation(t *testing.T) {
	e := newEnv(t)
	pid, key := e.project("p")
	e.endpoint(pid, key, nil)
	path := "/v1/projects/" + pid + "/events/batch"
	ok := mediaEvent("v", "done")
	big := `{"event":"media.update.status","data":{"id":"v","status":"done","message":"` + strings.Repeat("a", 1<<20) + `"}}`
	tests := []struct {
		name   string
		body   string
		hdr    []string
		status int
		field  string
	}{
		{"malformed", `{"events":[`, nil, 400, "body"},
		{"empty body", ``, nil, 400, "body"},
		{"array", `[` + ok + `]`, nil, 400, "body"},
		{"null", `null`, nil, 400, "body"},
		{"no events", `{}`, nil, 422, "events"},
		{"events not an array", `{"events":{}}`, nil, 422, "events"},
		{"events null", `{"events":null}`, nil, 422, "events"},
		{"no event in it", `{"events":[]}`, nil, 422, "events"},
		{"unknown top field", `{"events":[` + ok + `],"x":1}`, nil, 422, "x"},
		{"item not an object", batchOf(ok, `3`), nil, 400, "events[1]"},
		{"item unknown type", batchOf(ok, `{"event":"video.done","data":{"id":"v"}}`), nil, 422, "events[1].event"},
		{"item bad status", batchOf(ok, ok, mediaEvent("v", "failed")), nil, 422, "events[2].data.status"},
		{"item missing data", batchOf(`{"event":"media.update.status"}`), nil, 422, "events[0].data"},
		{"item missing event", batchOf(`{"data":{"id":"v","status":"done"}}`), nil, 422, "events[0].event"},
		{"item extra field", batchOf(`{"event":"live.created","data":{"event_id":"l"},"webhook":1}`), nil, 422, "events[0].webhook"},
		{"item extra data field", batchOf(`{"event":"live.created","data":{"event_id":"l","y":1}}`), nil, 422, "events[0].data.y"},
		{"item key twice", batchOf(`{"event":"media.update.status","data":{"id":"v","status":"done","status":"error"}}`), nil, 400, "body"},
		{"events twice", `{"events":[` + ok + `],"events":[]}`, nil, 400, "body"},
		{"not UTF-8", batchOf("{\"event\":\"live.created\",\"data\":{\"event_id\":\"\xff\"}}"), nil, 400, "body"},
		{"unpaired surrogate", batchOf(`{"event":"live.created","data":{"event_id":"\udc00"}}`), nil, 400, "body"},
		{"too deep", batchOf(`{"event":"media.update.status","data":{"id":"v","status":"done","m":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}}`), nil, 400, "body"},
		{"empty idempotency key", batchOf(`{"event":"live.created","data":{"event_id":"l"},"idempotency_key":""}`), nil, 422, "events[0].idempotency_key"},
		{"idempotency key not a string", batchOf(`{"event":"live.created","data":{"event_id":"l"},"idempotency_key":7}`), nil, 422, "events[0].idempotency_key"},
		{"idempotency key too long", batchOf(`{"event":"live.created","data":{"event_id":"l"},"idempotency_key":"` + strings.Repeat("k", 256) + `"}`), nil, 422, "events[0].idempotency_key"},
		{"Idempotency-Key header", batchOf(ok), []string{"Idempotency-Key", "k"}, 400, "Idempotency-Key"},
		{"empty Idempotency-Key header", batchOf(ok), []string{"Idempotency-Key", ""}, 400, "Idempotency-Key"},
		{"idempotency key with a newline", batchOf(`{"event":"live.created","data":{"event_id":"l"},"idempotency_key":"a\nb"}`), nil, 422, "events[0].idempotency_key"},
		{"idempotency key with DEL", batchOf(`{"event":"live.created","data":{"event_id":"l"},"idempotency_key":"a\u007fb"}`), nil, 422, "events[0].idempotency_key"},
		{"idempotency key with a space at the end", batchOf(`{"event":"live.created","data":{"event_id":"l"},"idempotency_key":"k "}`), nil, 422, "events[0].idempotency_key"},
		{"too many events", batchOf(slicesRepeat(ok, DefaultMaxBatchEvents+1)...), nil, 413, "events"},
		{"one event over 1 MiB", batchOf(ok, big), nil, 413, "events[1]"},
		{"body over 4 MiB", batchOf(big, big, big, big, big), nil, 413, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("POST", path, key, tc.body, tc.hdr...)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %.300s", r.status, tc.status, r.body)
			}
			if tc.field != "" && r.errField() != tc.field {
				t.Errorf("field %q, want %q: %.300s", r.errField(), tc.field, r.body)
			}
			if r.errCode() == "" {
				t.Errorf("no error code: %.300s", r.body)
			}
		})
	}
	// The depth limit is the single body's, and so is its message.
	deep := func(n int) string {
		return batchOf(`{"event":"media.update.status","data":{"id":"v","status":"done","m":` + strings.Repeat("[", n) + strings.Repeat("]", n) + `}}`)
	}
	if r := e.do("POST", path, key, deep(DefaultMaxJSONDepth-1)); r.status != 400 || !strings.Contains(string(r.body), fmt.Sprintf("deeper than %d levels", DefaultMaxJSONDepth)) {
		t.Errorf("an event %d levels deep: %d %s", DefaultMaxJSONDepth+1, r.status, r.body)
	}
	// At the limit, both routes get past the depth check to the schema (m is
	// no field of the type: 422), one level over it both answer 400.
	single := func(n int) string {
		return strings.TrimSuffix(strings.TrimPrefix(deep(n), `{"events":[`), `]}`)
	}
	for _, tc := range []struct {
		n, status int
	}{{DefaultMaxJSONDepth - 2, 422}, {DefaultMaxJSONDepth - 1, 400}} {
		one := e.do("POST", "/v1/projects/"+pid+"/events", key, single(tc.n))
		many := e.do("POST", path, key, deep(tc.n))
		if one.status != tc.status || many.status != tc.status {
			t.Errorf("an event %d levels deep: single route %d, batch %d; want %d", tc.n+2, one.status, many.status, tc.status)
		}
	}
	// Nothing of a refused batch is kept, not even its valid events.
	list := e.must(e.do("GET", "/v1/projects/"+pid+"/events", key, nil), 200).json(t)["data"].([]any)
	if len(list) != 0 {
		t.Errorf("%d events stored from refused batches", len(list))
	}
	if n := e.sink.count(); n != 0 {
		t.Errorf("%d deliveries from refused batches", n)
	}
	// The largest batch allowed is accepted.
	r := e.must(e.do("POST", path, key, batchOf(slicesRepeat(ok, DefaultMaxBatchEvents)...)), 202)
	if n := len(r.json(t)["data"].([]any)); n != DefaultMaxBatchEvents {
		t.Errorf("a full batch answered %d events, want %d", n, DefaultMaxBatchEvents)
	}
}

func slicesRepeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// onBothStores runs test on an API over SQLite, then over PostgreSQL.
func onBothStores(t *testing.T, test func(t *testing.T, e *env)) {
	t.Run("sqlite", func(t *testing.T) { test(t, newEnv(t)) })
	t.Run("postgres", func(t *testing.T) {
		st, err := postgres.Open(context.Background(), pgtest.New(t), postgres.Options{})
		if err != nil {
			t.Fatalf("open postgres: %v", err)
		}
		test(t, newEnvOn(t, st))
	})
}

// TestEventBatch runs on both stores: the batch is one IngestEvents call,
// whose in-call idempotency each backend implements.
func TestEventBatch(t *testing.T) {
	onBothStores(t, testEventBatch)
}

func testEventBatch(t *testing.T, e *env) {
	pid, key := e.project("p")
	e.endpoint(pid, key, nil)
	path := "/v1/projects/" + pid + "/events/batch"
	// The data's bytes are delivered as posted (spacing, member order).
	spaced := `{"id": "v1",  "status":"error", "message" : "A"}`
	r := e.must(e.do("POST", path, key, batchOf(
		mediaEvent("v1", "processing"),
		`{"data":`+spaced+`,"event":"media.update.status"}`,
		`{"event":"live.created","data":{"event_id":"l1"},"idempotency_key":"k1"}`,
		`{"idempotency_key":"k1","event":"live.created","data":{"event_id":"l2"}}`,
	)), 202)
	var ans struct {
		Data []struct {
			ID          string          `json:"id"`
			Event       string          `json:"event"`
			Data        json.RawMessage `json:"data"`
			ResourceKey string          `json:"resource_key"`
			CreatedAt   string          `json:"created_at"`
			Replayed    bool            `json:"replayed"`
		} `json:"data"`
	}
	if err := json.Unmarshal(r.body, &ans); err != nil || len(ans.Data) != 4 {
		t.Fatalf("answer %s: %v", r.body, err)
	}
	a := ans.Data
	if a[0].ResourceKey != "v1" || a[1].ResourceKey != "v1" || a[2].ResourceKey != "l1" || a[0].Event != "media.update.status" || a[2].Event != "live.created" {
		t.Errorf("answer out of batch order: %s", r.body)
	}
	if a[0].ID == a[1].ID || a[0].Replayed || a[1].Replayed || a[2].Replayed || a[0].CreatedAt == "" {
		t.Errorf("fresh events: %s", r.body)
	}
	if !a[3].Replayed || a[3].ID != a[2].ID || !bytes.Contains(a[3].Data, []byte(`"l1"`)) {
		t.Errorf("the key's second use in the batch should replay the first event: %s", r.body)
	}
	var compact bytes.Buffer
	_ = json.Compact(&compact, []byte(spaced))
	if string(a[1].Data) != compact.String() {
		t.Errorf("answer data %s, want %s", a[1].Data, compact.String())
	}

	// Three deliveries; v1's in batch order; the bodies are exactly
	// {"event":...,"data":...} with the data as posted.
	waitFor(t, "three deliveries", func() bool { return e.sink.events() >= 3 })
	var v1 []string
	bodies := map[string]string{}
	for _, rc := range e.sink.received() {
		bodies[rc.header.Get("webhook-id")] = string(rc.body)
		if strings.Contains(string(rc.body), `"v1"`) {
			v1 = append(v1, rc.header.Get("webhook-id"))
		}
	}
	if len(v1) < 2 || v1[0] != a[0].ID || v1[1] != a[1].ID {
		t.Errorf("v1 delivered in order %v, want %s then %s", v1, a[0].ID, a[1].ID)
	}
	if want := `{"event":"media.update.status","data":` + spaced + `}`; bodies[a[1].ID] != want {
		t.Errorf("delivered body %s, want %s", bodies[a[1].ID], want)
	}
	if want := `{"event":"live.created","data":{"event_id":"l1"}}`; bodies[a[2].ID] != want {
		t.Errorf("delivered body %s, want %s", bodies[a[2].ID], want)
	}

	// A key used by an earlier batch (or a single POST) replays that event;
	// any key a header can carry (a tab inside, U+0085) is shared alike.
	single := e.must(e.do("POST", "/v1/projects/"+pid+"/events", key, `{"event":"live.enabled","data":{"event_id":"l3"}}`, "Idempotency-Key", "k2\t\u0085"), 202).json(t)
	r = e.must(e.do("POST", path, key, batchOf(
		`{"event":"live.created","data":{"event_id":"l9"},"idempotency_key":"k1"}`,
		`{"event":"live.created","data":{"event_id":"l9"},"idempotency_key":"k2\t\u0085"}`,
	)), 202)
	if err := json.Unmarshal(r.body, &ans); err != nil {
		t.Fatal(err)
	}
	if !ans.Data[0].Replayed || ans.Data[0].ID != a[2].ID || !ans.Data[1].Replayed || ans.Data[1].ID != single["id"] {
		t.Errorf("replays across requests: %s", r.body)
	}
	list := e.must(e.do("GET", "/v1/projects/"+pid+"/events?limit=100", key, nil), 200).json(t)["data"].([]any)
	if len(list) != 4 {
		t.Errorf("%d events stored, want 4 (3 from the first batch, 1 single)", len(list))
	}
}

func TestEventBatchAuth(t *testing.T) {
	e := newEnv(t)
	pid, key := e.project("p")
	_, key2 := e.project("q")
	body := batchOf(mediaEvent("v", "done"))
	tests := []struct {
		name, path, key string
		status          int
	}{
		{"no key", "/v1/projects/" + pid + "/events/batch", "", 401},
		{"wrong key", "/v1/projects/" + pid + "/events/batch", "kh_wrong", 401},
		{"another project's key", "/v1/projects/" + pid + "/events/batch", key2, 404},
		{"admin, unknown project", "/v1/projects/prj_nope/events/batch", testAdminKey, 404},
		{"admin", "/v1/projects/" + pid + "/events/batch", testAdminKey, 202},
		{"project key", "/v1/projects/" + pid + "/events/batch", key, 202},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("POST", tc.path, tc.key, body)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
		})
	}
	if r := e.do("GET", "/v1/projects/"+pid+"/events/batch", key, nil); r.status != 404 {
		t.Errorf("GET .../events/batch = %d, want 404 (no event has that id)", r.status)
	}
}

// FuzzParseBatch: a batch is refused with a client error or gives events
// whose bodies are strict webhook bodies of the same type and data as the
// items, which a strict JSON parser accepts.
func FuzzParseBatch(f *testing.F) {
	for _, s := range []string{
		batchOf(mediaEvent("v", "done")),
		batchOf(`{"event":"live.created","data":{"event_id":"l"},"idempotency_key":"k"}`, mediaEvent("v", "error")),
		`{"events":[]}`, `{"events":[1]}`, `{"events":`, `[]`, `{"events":[{"event":"live.created"}]}`,
		batchOf(`{"data":{"event_id":"l"},"event":"live.finished"}`),
	} {
		f.Add([]byte(s))
	}
	a := bareApp(f, app.Limits{MaxJSONDepth: DefaultMaxJSONDepth, MaxEventBytes: 4096, MaxBatchEvents: 20})
	f.Fuzz(func(t *testing.T, b []byte) {
		evs, err := a.ParseBatch(b, "prj_x")
		if err != nil {
			switch code := kinehook.ErrorCode(err); code {
			case kinehook.EMALFORMED, kinehook.EINVALID, kinehook.ETOOLARGE:
			default:
				t.Fatalf("error with code %q: %v", code, err)
			}
			return
		}
		if len(evs) == 0 || len(evs) > 20 {
			t.Fatalf("accepted %d events", len(evs))
		}
		if err := strictJSON(b); err != nil {
			t.Fatalf("accepted %q, which a strict parser refuses: %v", b, err)
		}
		var in struct {
			Events []struct {
				Event string `json:"event"`
				Data  any    `json:"data"`
			} `json:"events"`
		}
		if err := json.Unmarshal(b, &in); err != nil || len(in.Events) != len(evs) {
			t.Fatalf("accepted %q, which reads as %d events (%v)", b, len(in.Events), err)
		}
		for i, ev := range evs {
			if ev.ID == "" || ev.ProjectID != "prj_x" || len(ev.Payload) > 4096 {
				t.Fatalf("event %d: %+v", i, ev)
			}
			p, err := kinehook.ParseStrict(ev.Payload)
			if err != nil {
				t.Fatalf("event %d: its body %s fails ParseStrict: %v", i, ev.Payload, err)
			}
			var got struct {
				Data any `json:"data"`
			}
			_ = json.Unmarshal(ev.Payload, &got)
			if string(p.Type) != in.Events[i].Event || ev.Type != p.Type || !reflect.DeepEqual(got.Data, in.Events[i].Data) {
				t.Fatalf("event %d: body %s is not the item of %q", i, ev.Payload, b)
			}
		}
	})
}

// TestNULIsRefusedAlike: U+0000 cannot be stored in PostgreSQL's text, so
// the API refuses it wherever it would be (422), and a path id holding a
// control character names nothing (404), on both backends alike; in an
// event's data (stored as the body's bytes) it is accepted.
func TestNULIsRefusedAlike(t *testing.T) {
	onBothStores(t, testNULIsRefused)
}

func testNULIsRefused(t *testing.T, e *env) {
	pid, key := e.project("p")
	ep := e.endpoint(pid, key, nil)
	base := "/v1/projects/" + pid
	tests := []struct {
		name, method, path, key string
		body                    string
		status                  int
	}{
		{"project name", "POST", "/v1/projects", testAdminKey, `{"name":"a\u0000b"}`, 422},
		{"project rename", "PATCH", base, key, `{"name":"\u0000"}`, 422},
		{"endpoint description", "POST", base + "/endpoints", key, `{"url":"` + e.sink.URL + `/x","description":"a\u0000"}`, 422},
		{"endpoint update", "PATCH", base + "/endpoints/" + ep["id"].(string), key, `{"description":"a\u0000"}`, 422},
		{"webhook name", "POST", "/v1/webhooks", key, `{"name":"a\u0000","endpoint":"` + e.sink.URL + `/y","events":["live.*"]}`, 422},
		{"batch idempotency key", "POST", base + "/events/batch", key, batchOf(`{"event":"live.created","data":{"event_id":"l"},"idempotency_key":"k\u0000"}`), 422},
		{"event id in a path", "GET", base + "/events/msg_a%00b", key, "", 404},
		{"endpoint id in a path", "GET", base + "/endpoints/ep_%00", key, "", 404},
		{"delivery id in a path", "GET", base + "/deliveries/dlv_%01/attempts", key, "", 404},
		{"project id in a path", "GET", "/v1/projects/prj_%00", testAdminKey, "", 404},
		{"... without a key", "GET", base + "/events/msg_a%00b", "", "", 401},
		{"data of an event", "POST", base + "/events", key, `{"event":"live.created","data":{"event_id":"a\u0000b"}}`, 202},
		{"data of a batch", "POST", base + "/events/batch", key, batchOf(`{"event":"media.update.status","data":{"id":"v\u0000","status":"error","message":"\u0000"}}`), 202},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var body any
			if tc.body != "" {
				body = tc.body
			}
			r := e.do(tc.method, tc.path, tc.key, body)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if tc.status >= 400 && r.errCode() == "" {
				t.Errorf("no error code: %s", r.body)
			}
		})
	}
	ps := e.must(e.do("GET", "/v1/projects", testAdminKey, nil), 200).json(t)["data"].([]any)
	if len(ps) != 1 {
		t.Errorf("%d projects, want 1 (nothing of the refused ones)", len(ps))
	}
	waitFor(t, "the two events with NUL in their data", func() bool { return e.sink.events() >= 2 })
}
