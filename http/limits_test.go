package http

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/app"
	"github.com/kinehook/kinehook/internal/storehealth"
)

func TestRequestLimits(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxHeaderBytes = 2048 })
	pid, key := e.project("p")
	path := "/v1/projects/" + pid + "/events"

	r := e.do("GET", path+"?cursor="+strings.Repeat("a", DefaultMaxURLLength), key, nil)
	if r.status != 414 || r.errCode() != kinehook.ETOOLARGE {
		t.Errorf("long URL: %d %s", r.status, r.body)
	}
	r = e.do("GET", path, key, nil, "X-Big", strings.Repeat("b", 4096))
	if r.status != 431 || r.errCode() != kinehook.ETOOLARGE {
		t.Errorf("big headers: %d %s", r.status, r.body)
	}
	r = e.do("POST", "/v1/projects/"+pid+"/endpoints", key, `{"url":"http://x/","description":"`+strings.Repeat("d", 1<<20)+`"}`)
	if r.status != 413 || r.errCode() != kinehook.ETOOLARGE {
		t.Errorf("big endpoint body: %d %.200s", r.status, r.body)
	}
	deep := `{"url":"http://x/","headers":` + strings.Repeat(`{"a":`, 40) + `1` + strings.Repeat(`}`, 40) + `}`
	r = e.do("POST", "/v1/projects/"+pid+"/endpoints", key, deep)
	if r.status != 400 || r.errCode() != kinehook.EMALFORMED {
		t.Errorf("deep JSON: %d %s", r.status, r.body)
	}
	// Exactly 1 MiB is accepted by the reader, one byte more is not.
	if _, err := e.srv.decodeBytesLimit(strings.Repeat(" ", DefaultMaxBodyBytes)); err != nil && kinehook.ErrorCode(err) == kinehook.ETOOLARGE {
		t.Errorf("1 MiB refused as too large: %v", err)
	}
}

// decodeBytesLimit runs readBody on a synthetic request (limit boundary check).
func (s *Server) decodeBytesLimit(body string) ([]byte, error) {
	w := httptest.NewRecorder()
	r := httptest.NewRequest("POST", "/", strings.NewReader(body))
	return s.readBody(w, r)
}

func TestAPIRateLimit(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	e := newEnv(t, func(c *Config) {
		c.RateLimit = 2
		c.RateBurst = 3
		c.Now = func() time.Time { return now }
	})
	// Creating the project takes one of the admin key's tokens.
	pid, key := e.project("p")
	path := "/v1/projects/" + pid + "/endpoints"
	for i := range 3 {
		e.must(e.do("GET", path, key, nil), 200)
		_ = i
	}
	r := e.do("GET", path, key, nil)
	if r.status != 429 || r.errCode() != kinehook.ERATELIMITED {
		t.Fatalf("4th request in a burst of 3: %d %s", r.status, r.body)
	}
	if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 {
		t.Errorf("Retry-After %q", r.header.Get("Retry-After"))
	}
	// Buckets are per key: the admin key still has tokens.
	e.must(e.do("GET", path, testAdminKey, nil), 200)
	// Half a second later one token has come back.
	now = now.Add(500 * time.Millisecond)
	e.must(e.do("GET", path, key, nil), 200)
	if r := e.do("GET", path, key, nil); r.status != 429 {
		t.Errorf("after one refill: %d", r.status)
	}
	// Public routes are not limited.
	for range 5 {
		e.must(e.do("GET", "/healthz", "", nil), 200)
	}
}

// TestAPIRateLimitDefaults: the default per-key limit leaves room for the
// workloads the server is built for (bursts of thousands of events from one
// key), while requests without a valid key are held to FailedAuthBurst per
// client address.
func TestAPIRateLimitDefaults(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	e := newEnv(t, func(c *Config) {
		c.RateLimit = 0 // the default
		c.RateBurst = 0
		c.Now = func() time.Time { return now }
	})
	pid, key := e.project("p")
	path := "/v1/projects/" + pid + "/endpoints"
	for i := range 2 * FailedAuthBurst {
		if r := e.do("GET", path, key, nil); r.status != 200 {
			t.Fatalf("request %d of one instant with a valid key: %d %s", i+1, r.status, r.body)
		}
	}
	for i := range FailedAuthBurst {
		if r := e.do("GET", path, "kh_not_a_key", nil); r.status != 401 {
			t.Fatalf("bad key, request %d: %d %s", i+1, r.status, r.body)
		}
	}
	r := e.do("GET", path, "kh_not_a_key", nil)
	if r.status != 429 || r.header.Get("Retry-After") == "" || !strings.Contains(string(r.body), "without a valid key") {
		t.Fatalf("bad key beyond the burst: %d %s", r.status, r.body)
	}
	// The valid key is not held back by its address's failures.
	e.must(e.do("GET", path, key, nil), 200)
}

func TestCheckDepth(t *testing.T) {
	tests := []struct {
		in   string
		ok   bool
		name string
	}{
		{`{}`, true, "flat"},
		{strings.Repeat("[", 32) + strings.Repeat("]", 32), true, "at the limit"},
		{strings.Repeat("[", 33) + strings.Repeat("]", 33), false, "over the limit"},
		{`{"a":"` + strings.Repeat("[", 100) + `"}`, true, "brackets in a string"},
		{`{"a":"\"` + strings.Repeat("{", 100) + `"}`, true, "escaped quote then brackets in a string"},
		{"[" + strings.Repeat(`[[]],`, 40) + "[]]", true, "wide, not deep"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := app.CheckJSONDepth([]byte(tc.in), 32); (err == nil) != tc.ok {
				t.Fatalf("checkDepth ok=%v, want %v", err == nil, tc.ok)
			}
		})
	}
}

// TestOpenAPIMatchesRoutes fails when the router and openapi.json disagree
// on any path or method.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi %q, want 3.1.0", doc.OpenAPI)
	}
	fromDoc := map[string]bool{}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			if method == "parameters" || method == "summary" || method == "description" {
				continue
			}
			fromDoc[strings.ToUpper(method)+" "+path] = true
			var o struct {
				Responses map[string]json.RawMessage `json:"responses"`
			}
			if err := json.Unmarshal(op, &o); err != nil || len(o.Responses) == 0 {
				t.Errorf("%s %s: no responses", method, path)
			}
		}
	}
	fromRouter := map[string]bool{}
	for _, r := range Routes() {
		k := r.Method + " " + r.Pattern
		if fromRouter[k] {
			t.Errorf("route %s is declared twice", k)
		}
		fromRouter[k] = true
	}
	var missing, extra []string
	for k := range fromRouter {
		if !fromDoc[k] {
			missing = append(missing, k)
		}
	}
	for k := range fromDoc {
		if !fromRouter[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 {
		t.Errorf("routes missing from openapi.json: %v", missing)
	}
	if len(extra) > 0 {
		t.Errorf("openapi.json paths the router does not serve: %v", extra)
	}
	// Every $ref points at something.
	var all map[string]any
	_ = json.Unmarshal(OpenAPI(), &all)
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if ref, ok := x["$ref"].(string); ok {
				parts := strings.Split(strings.TrimPrefix(ref, "#/"), "/")
				var cur any = all
				for _, p := range parts {
					m, _ := cur.(map[string]any)
					cur = m[p]
				}
				if cur == nil {
					t.Errorf("dangling $ref %s", ref)
				}
			}
			for _, c := range x {
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(all)
}

// strictJSON reads b with jsontext, the Go team's strict JSON parser (the
// fuzz targets' independent oracle), and returns its complaint, if any.
func strictJSON(b []byte) error {
	d := jsontext.NewDecoder(bytes.NewReader(b))
	for {
		if _, err := d.ReadToken(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{`{"name":"x"}`, `{"url":"http://a/","event_types":["live.*"],"headers":{"a":"b"}}`, `[`, `{"a":` + strings.Repeat("[", 50), `"\"{"`} {
		f.Add([]byte(s))
	}
	// The decoder and validators need no store: a bare server with the default limits.
	s := &Server{cfg: Config{MaxJSONDepth: DefaultMaxJSONDepth, MaxBodyBytes: DefaultMaxBodyBytes}, app: bareApp(f, app.Limits{})}
	f.Fuzz(func(t *testing.T, b []byte) {
		var in endpointInput
		err := s.decodeBytes(b, &in)
		if err != nil {
			code := kinehook.ErrorCode(err)
			if code != kinehook.EMALFORMED && code != kinehook.EINVALID {
				t.Fatalf("decode error with code %q: %v", code, err)
			}
			return
		}
		if app.CheckJSONDepth(b, DefaultMaxJSONDepth) != nil {
			t.Fatal("decoded a body deeper than the limit")
		}
		if err := strictJSON(b); err != nil {
			t.Fatalf("decoded %q, which a strict parser refuses: %v", b, err)
		}
		if in.URL != nil && s.app != nil {
			_ = s.app.CheckURL(*in.URL, "url")
		}
		if in.Headers != nil {
			_ = kinehook.ValidateEndpointHeaders(*in.Headers)
		}
	})
}

// TestAPIBodiesAreStrictJSON: every JSON body of the API is refused (400)
// when encoding/json would read it without a word but other parsers would
// read it differently; nothing is stored.
func TestAPIBodiesAreStrictJSON(t *testing.T) {
	e := newEnv(t)
	pid, key := e.project("p")
	path := "/v1/projects/" + pid + "/endpoints"
	for _, body := range []string{
		`{"url":"https://a.example/h","url":"https://b.example/h"}`,
		`{"url":"https://a.example/h","headers":{"X-A":"1","X-A":"2"}}`,
		`{"url":"https://a.example/h","\u0075rl":"https://b.example/h"}`,
		"{\"url\":\"https://a.example/h\",\"description\":\"\xff\"}",
		`{"url":"https://a.example/h","description":"x\ud800"}`,
	} {
		r := e.do("POST", path, key, body)
		if r.status != 400 || r.errCode() != kinehook.EMALFORMED {
			t.Errorf("%s: %d %s", body, r.status, r.body)
		}
	}
	if list := e.must(e.do("GET", path, key, nil), 200).json(t)["data"].([]any); len(list) != 0 {
		t.Errorf("refused bodies made endpoints: %v", list)
	}
	e.must(e.do("POST", path, key, `{"url":"https://a.example/h","description":"smile \ud83d\ude00"}`), 201)
}

// TestInternalLogsCancellationQuietly: a store call that failed because its
// client hung up is not an error of the server's; anything else is logged
// as one. Both answer the error envelope.
func TestInternalLogsCancellationQuietly(t *testing.T) {
	for _, tc := range []struct {
		err   error
		level string
	}{
		{fmt.Errorf("list deliveries: %w", context.Canceled), "level=DEBUG"},
		{errors.New("disk I/O error"), "level=ERROR"},
	} {
		var logs bytes.Buffer
		// A nil tracker classifies nothing: these are not outages.
		s := &Server{log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})), health: (*storehealth.Tracker)(nil)}
		w := httptest.NewRecorder()
		s.internal(w, "list deliveries", tc.err)
		if !strings.Contains(logs.String(), tc.level) || strings.Contains(logs.String(), "level=ERROR") != (tc.level == "level=ERROR") {
			t.Errorf("%v logged %q, want %s", tc.err, logs.String(), tc.level)
		}
		if w.Code != 500 || !strings.Contains(w.Body.String(), `"error"`) {
			t.Errorf("%v answered %d %s", tc.err, w.Code, w.Body)
		}
	}
}

// bareApp is an App for tests of its parsers and validators, which need no
// store or engine (any use of them panics).
func bareApp(t testing.TB, l app.Limits) *app.App {
	a, err := app.New(app.Config{Store: struct{ kinehook.Store }{}, Dispatcher: struct{ kinehook.Dispatcher }{}, Limits: l})
	if err != nil {
		t.Fatal(err)
	}
	return a
}
