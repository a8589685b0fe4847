package kinehook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kinehook/kinehook/internal/bodylimit/bodylimittest"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

var quietLog = slog.New(slog.DiscardHandler)

// recorder collects what the callbacks saw.
type recorder struct {
	mu    sync.Mutex
	calls []string
	inc   []*Incoming
	fail  atomic.Bool
}

func (rc *recorder) note(d *Incoming, what string) error {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.calls = append(rc.calls, what)
	rc.inc = append(rc.inc, d)
	if rc.fail.Load() {
		return errors.New("database is down")
	}
	return nil
}

func (rc *recorder) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.calls)
}

func newTestHandler(t *testing.T, rc *recorder, mutate func(*HandlerOptions)) *Handler {
	t.Helper()
	opts := HandlerOptions{
		Secrets: []string{refSecret},
		Logger:  quietLog,
		OnMediaStatus: func(_ context.Context, d *Incoming, m MediaData) error {
			return rc.note(d, "media "+m.ID+" "+string(m.Status))
		},
		OnLiveFinished: func(_ context.Context, d *Incoming, l LiveData) error {
			return rc.note(d, "finished "+l.EventID+" "+l.VideoID)
		},
		OnUnknown: func(_ context.Context, d *Incoming) error {
			return rc.note(d, "unknown "+string(d.Event.Type))
		},
		OnEvent: func(_ context.Context, d *Incoming) error {
			return rc.note(d, "other "+string(d.Event.Type))
		},
	}
	if mutate != nil {
		mutate(&opts)
	}
	h, err := NewHandler(opts)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// post sends body signed by the reference library with secret at ts.
func refRequest(t *testing.T, secret, id string, ts time.Time, body string) *http.Request {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := wh.Sign(id, ts, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPost, "/hooks/kinescope", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set(HeaderID, id)
	r.Header.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	r.Header.Set(HeaderSignature, sig)
	return r
}

func serve(h http.Handler, r *http.Request) (int, map[string]any) {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	var body map[string]any
	_ = json.Unmarshal(w.Body.Bytes(), &body)
	return w.Code, body
}

func errorCode(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	c, _ := e["code"].(string)
	if m, _ := e["message"].(string); c != "" && m == "" {
		return "no message"
	}
	return c
}

func TestHandlerAnswers(t *testing.T) {
	now := time.Now()
	media := string(SampleEvent(EventMediaUpdateStatus))
	tests := []struct {
		name     string
		req      func() *http.Request
		status   int
		code     string // error code, "" for {"success":true}
		callback string // what the callback saw, "" for not called
	}{
		{"valid", func() *http.Request { return refRequest(t, refSecret, "msg_1", now, media) }, 200, "", "media 7127f2d7-0e96-40d0-9a03-2e987c096466 done"},
		{"tampered", func() *http.Request {
			r := refRequest(t, refSecret, "msg_2", now, media)
			r.Body = io.NopCloser(strings.NewReader(strings.Replace(media, "done", "error", 1)))
			return r
		}, 401, EUNAUTHORIZED, ""},
		{"stale", func() *http.Request { return refRequest(t, refSecret, "msg_3", now.Add(-6*time.Minute), media) }, 401, EUNAUTHORIZED, ""},
		{"future", func() *http.Request { return refRequest(t, refSecret, "msg_4", now.Add(6*time.Minute), media) }, 401, EUNAUTHORIZED, ""},
		{"unsigned", func() *http.Request { return httptest.NewRequest(http.MethodPost, "/", strings.NewReader(media)) }, 401, EUNAUTHORIZED, ""},
		{"wrong secret", func() *http.Request {
			return refRequest(t, "whsec_"+strings.Repeat("A", 32), "msg_5", now, media)
		}, 401, EUNAUTHORIZED, ""},
		{"missing id", func() *http.Request {
			r := refRequest(t, refSecret, "msg_6", now, media)
			r.Header.Del(HeaderID)
			return r
		}, 401, EUNAUTHORIZED, ""},
		{"malformed", func() *http.Request {
			return refRequest(t, refSecret, "msg_7", now, `{"event": "media.update.status", "data": {`)
		}, 400, EMALFORMED, ""},
		{"missing field", func() *http.Request {
			return refRequest(t, refSecret, "msg_8", now, `{"event":"media.update.status","data":{"status":"done"}}`)
		}, 400, EINVALID, ""},
		{"unknown type", func() *http.Request {
			return refRequest(t, refSecret, "msg_9", now, `{"event":"video.done","data":{"id":"v9"}}`)
		}, 200, "", "unknown video.done"},
		{"unknown status", func() *http.Request {
			return refRequest(t, refSecret, "msg_10", now, `{"event":"media.update.status","data":{"id":"v10","status":"transcoding"}}`)
		}, 200, "", "media v10 transcoding"},
		{"fallback", func() *http.Request {
			return refRequest(t, refSecret, "msg_11", now, string(SampleEvent(EventLiveCreated)))
		}, 200, "", "other live.created"},
		{"typed live", func() *http.Request {
			return refRequest(t, refSecret, "msg_12", now, string(SampleEvent(EventLiveFinished)))
		}, 200, "", "finished abc123-def456-ghi789 7127f2d7-0e96-40d0-9a03-2e987c096466"},
		{"GET", func() *http.Request { return httptest.NewRequest(http.MethodGet, "/", nil) }, 405, codeMethodNotAllowed, ""},
		{"too large", func() *http.Request {
			big := `{"event":"video.done","data":{"id":"` + strings.Repeat("x", DefaultMaxBodyBytes) + `"}}`
			return refRequest(t, refSecret, "msg_13", now, big)
		}, 413, ETOOLARGE, ""},
		{"too large chunked", func() *http.Request {
			big := `{"event":"video.done","data":{"id":"` + strings.Repeat("x", DefaultMaxBodyBytes) + `"}}`
			r := refRequest(t, refSecret, "msg_14", now, big)
			r.ContentLength = -1
			return r
		}, 413, ETOOLARGE, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := &recorder{}
			h := newTestHandler(t, rc, nil)
			status, body := serve(h, tt.req())
			if status != tt.status {
				t.Fatalf("status = %d, want %d (body %v)", status, tt.status, body)
			}
			if tt.code == "" && body["success"] != true {
				t.Errorf("body = %v, want {\"success\":true}", body)
			}
			if tt.code != "" && errorCode(body) != tt.code {
				t.Errorf("body = %v, want error code %q with a message", body, tt.code)
			}
			got := ""
			if rc.count() > 0 {
				got = rc.calls[0]
			}
			if got != tt.callback || rc.count() > 1 {
				t.Errorf("callbacks = %q, want %q", rc.calls, tt.callback)
			}
		})
	}
}

func TestHandlerDuplicateAndRetryAfterFailure(t *testing.T) {
	rc := &recorder{}
	h := newTestHandler(t, rc, nil)
	now := time.Now()
	body := string(SampleEvent(EventMediaUpdateStatus))

	rc.fail.Store(true)
	status, b := serve(h, refRequest(t, refSecret, "msg_dup", now, body))
	if status != 500 || errorCode(b) != codeCallbackFailed {
		t.Fatalf("failing callback answered %d %v, want 500", status, b)
	}
	if strings.Contains(fmt.Sprint(b), "database") {
		t.Errorf("the answer %v leaks the callback's error", b)
	}
	rc.fail.Store(false)
	// The retry is processed, with the attempt counted.
	if status, _ := serve(h, refRequest(t, refSecret, "msg_dup", now.Add(time.Second), body)); status != 200 {
		t.Fatalf("retry answered %d", status)
	}
	if rc.count() != 2 || rc.inc[1].Attempt != 2 || rc.inc[0].Attempt != 1 {
		t.Fatalf("calls %q, attempts %d/%d; want 2 calls, attempts 1 then 2", rc.calls, rc.inc[0].Attempt, rc.inc[len(rc.inc)-1].Attempt)
	}
	// A duplicate of a handled delivery is answered 200 without a call.
	status, b = serve(h, refRequest(t, refSecret, "msg_dup", now.Add(2*time.Second), body))
	if status != 200 || b["success"] != true || rc.count() != 2 {
		t.Fatalf("duplicate answered %d %v after %d calls", status, b, rc.count())
	}
	// A sender-provided attempt number wins over the count.
	r := refRequest(t, refSecret, "msg_other", now, body)
	r.Header.Set(HeaderAttempt, "7")
	serve(h, r)
	if rc.count() != 3 || rc.inc[2].Attempt != 7 || rc.inc[2].ID != "msg_other" || rc.inc[2].Timestamp.Unix() != now.Unix() {
		t.Fatalf("incoming = %+v", rc.inc[2])
	}
}

func TestHandlerConcurrentDuplicatesCallOnce(t *testing.T) {
	var calls atomic.Int32
	release := make(chan struct{})
	h := newTestHandler(t, &recorder{}, func(o *HandlerOptions) {
		o.OnMediaStatus = func(context.Context, *Incoming, MediaData) error {
			calls.Add(1)
			<-release
			return nil
		}
	})
	body := string(SampleEvent(EventMediaUpdateStatus))
	now := time.Now()
	var wg sync.WaitGroup
	statuses := make([]int, 5)
	for i := range statuses {
		wg.Go(func() { statuses[i], _ = serve(h, refRequest(t, refSecret, "msg_same", now, body)) })
	}
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	if calls.Load() != 1 {
		t.Errorf("callback ran %d times for 5 concurrent copies, want 1", calls.Load())
	}
	for i, s := range statuses {
		if s != 200 {
			t.Errorf("copy %d answered %d", i, s)
		}
	}
}

func TestHandlerWithoutIDDeduplicatesOnEventResourceStatus(t *testing.T) {
	rc := &recorder{}
	h := newTestHandler(t, rc, func(o *HandlerOptions) {
		o.Secrets = nil
		o.BasicAuth = &BasicAuth{Login: "kinescope", Password: "pw"}
	})
	send := func(body, password string) int {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		r.SetBasicAuth("kinescope", password)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code == 401 && w.Header().Get("WWW-Authenticate") == "" {
			t.Error("401 without WWW-Authenticate")
		}
		return w.Code
	}
	done := `{"event":"media.update.status","data":{"id":"v1","status":"done"}}`
	processing := `{"event":"media.update.status","data":{"id":"v1","status":"processing"}}`
	if s := send(done, "pw"); s != 200 {
		t.Fatalf("first = %d", s)
	}
	if s := send(done, "pw"); s != 200 {
		t.Fatalf("repeat = %d", s)
	}
	if s := send(processing, "pw"); s != 200 {
		t.Fatalf("other status = %d", s)
	}
	if s := send(done, "wrong"); s != 401 {
		t.Fatalf("wrong password = %d", s)
	}
	if rc.count() != 2 || rc.inc[0].Verified != "basic" || rc.inc[0].ID != "" {
		t.Fatalf("calls = %q (%+v)", rc.calls, rc.inc)
	}
	// A type this package does not know: which fields tell two events
	// apart is unknown, so only an identical body is a duplicate.
	a := `{"event":"project.updated","data":{"project_id":"A"}}`
	b := `{"event":"project.updated","data":{"project_id":"B"}}`
	for _, body := range []string{a, b, a} {
		if s := send(body, "pw"); s != 200 {
			t.Fatalf("%s = %d", body, s)
		}
	}
	if rc.count() != 4 {
		t.Fatalf("after two different unknown events and a repeat: calls = %q, want 4", rc.calls)
	}
}

func TestHandlerCredentialCombinations(t *testing.T) {
	priv, pub, _ := GenerateKeyPair()
	body := []byte(SampleEvent(EventLiveEnabled))
	now := time.Now()
	signed := func(secret string, basic bool) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		if secret != "" {
			if err := SignRequest(r.Header, []string{secret}, NewID(PrefixEvent), now, body); err != nil {
				t.Fatal(err)
			}
		}
		if basic {
			r.SetBasicAuth("u", "p")
		}
		return r
	}
	tests := []struct {
		name string
		opts func(*HandlerOptions)
		req  *http.Request
		want int
	}{
		{"v1a with public key", func(o *HandlerOptions) { o.Secrets = nil; o.PublicKeys = []string{pub} }, signed(priv, false), 200},
		{"v1 against public key only", func(o *HandlerOptions) { o.Secrets = nil; o.PublicKeys = []string{pub} }, signed(refSecret, false), 401},
		{"secret or key", func(o *HandlerOptions) { o.PublicKeys = []string{pub} }, signed(refSecret, false), 200},
		{"both required, both given", func(o *HandlerOptions) { o.BasicAuth = &BasicAuth{"u", "p"} }, signed(refSecret, true), 200},
		{"both required, basic missing", func(o *HandlerOptions) { o.BasicAuth = &BasicAuth{"u", "p"} }, signed(refSecret, false), 401},
		{"both required, signature missing", func(o *HandlerOptions) { o.BasicAuth = &BasicAuth{"u", "p"} }, signed("", true), 401},
		{"open", func(o *HandlerOptions) { o.Secrets = nil; o.AllowUnauthenticated = true }, signed("", false), 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestHandler(t, &recorder{}, tt.opts)
			if got, b := serve(h, tt.req); got != tt.want {
				t.Errorf("status = %d (%v), want %d", got, b, tt.want)
			}
		})
	}
	if _, err := NewHandler(HandlerOptions{}); err == nil {
		t.Error("NewHandler without credentials accepted")
	}
	if _, err := NewHandler(HandlerOptions{PublicKeys: []string{refSecret}}); err == nil {
		t.Error("NewHandler took a whsec_ secret as a public key")
	}
}

func TestHandlerReplyAndPanic(t *testing.T) {
	var results []Result
	h := newTestHandler(t, &recorder{}, func(o *HandlerOptions) {
		o.OnMediaStatus = func(_ context.Context, d *Incoming, m MediaData) error {
			if m.Status == StatusError {
				panic("boom")
			}
			if in, ok := IncomingFromContext(context.Background()); ok || in != nil {
				t.Error("IncomingFromContext found something in a bare context")
			}
			d.Reply(http.StatusTeapot, http.Header{"X-App": {"yes"}}, []byte("short and stout"))
			return nil
		}
		o.OnLiveCreated = func(ctx context.Context, d *Incoming, _ LiveData) error {
			if in, ok := IncomingFromContext(ctx); !ok || in != d {
				t.Error("IncomingFromContext does not give the callback's Incoming")
			}
			d.Reply(http.StatusAccepted, nil, []byte("queued"))
			return nil
		}
		o.OnResult = func(r Result) { results = append(results, r) }
	})
	now := time.Now()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, refRequest(t, refSecret, "m1", now, string(SampleEvent(EventMediaUpdateStatus))))
	if w.Code != http.StatusTeapot || w.Body.String() != "short and stout" || w.Header().Get("X-App") != "yes" {
		t.Errorf("reply = %d %q %v", w.Code, w.Body, w.Header())
	}
	// A non-2xx reply leaves the delivery unhandled: the retry runs again.
	w = httptest.NewRecorder()
	h.ServeHTTP(w, refRequest(t, refSecret, "m1", now, string(SampleEvent(EventMediaUpdateStatus))))
	if w.Code != http.StatusTeapot {
		t.Errorf("retry after a 418 reply = %d, want the callback to run again", w.Code)
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, refRequest(t, refSecret, "m2", now, string(SampleEvent(EventLiveCreated))))
	if w.Code != http.StatusAccepted || w.Body.String() != "queued" {
		t.Errorf("2xx reply = %d %q", w.Code, w.Body)
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, refRequest(t, refSecret, "m2", now, string(SampleEvent(EventLiveCreated))))
	if w.Code != http.StatusOK {
		t.Errorf("duplicate after a 2xx reply = %d, want 200", w.Code)
	}
	// A 2xx reply with an error is a failure all the same.
	h2 := newTestHandler(t, &recorder{}, func(o *HandlerOptions) {
		o.OnEvent = func(_ context.Context, d *Incoming) error {
			d.Reply(http.StatusOK, nil, []byte("fine"))
			return errors.New("not fine")
		}
	})
	if status, b := serve(h2, refRequest(t, refSecret, "m9", now, string(SampleEvent(EventLiveEnabled)))); status != 500 || errorCode(b) != codeCallbackFailed {
		t.Errorf("2xx reply with an error answered %d %v, want 500", status, b)
	}
	status, b := serve(h, refRequest(t, refSecret, "m3", now, `{"event":"media.update.status","data":{"id":"v","status":"error"}}`))
	if status != 500 || errorCode(b) != codeCallbackFailed {
		t.Errorf("panicking callback answered %d %v", status, b)
	}
	if len(results) != 5 || results[3].Status != 200 || !results[3].Duplicate || results[4].Err == nil {
		t.Errorf("results = %+v", results)
	}
	// Every result names its request, refused ones included.
	results = nil
	req := refRequest(t, refSecret, "m4", now, "{")
	req.URL.Path = "/hooks/kinescope"
	if status, _ := serve(h, req); status != 400 {
		t.Fatalf("malformed body answered %d", status)
	}
	if len(results) != 1 || results[0].Incoming != nil || results[0].Method != "POST" || results[0].Path != "/hooks/kinescope" || results[0].WebhookID != "m4" {
		t.Errorf("refused result = %+v; want POST /hooks/kinescope webhook-id m4", results)
	}
}

func TestHandlerCustomDedupKey(t *testing.T) {
	rc := &recorder{}
	h := newTestHandler(t, rc, func(o *HandlerOptions) {
		o.Secrets = nil
		o.AllowUnauthenticated = true
		// Live events without an id are never de-duplicated; media ones are.
		o.DedupKey = func(in *Incoming) string {
			if in.Event.Live != nil && in.ID == "" {
				return ""
			}
			return in.DedupKey
		}
	})
	for _, body := range []string{
		string(SampleEvent(EventLiveConnected)), string(SampleEvent(EventLiveConnected)),
		string(SampleEvent(EventMediaUpdateStatus)), string(SampleEvent(EventMediaUpdateStatus)),
	} {
		if status, _ := serve(h, httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))); status != 200 {
			t.Fatalf("status %d", status)
		}
	}
	if rc.count() != 3 || rc.inc[1].Attempt != 1 || rc.inc[1].DedupKey != "" {
		t.Errorf("calls = %q, want both live.connected and one media event", rc.calls)
	}
}

// commitFailing is a Deduper whose Commit always fails.
type commitFailing struct{ *MemoryDeduper }

func (commitFailing) Commit(context.Context, string) error { return errors.New("store down") }

// TestHandlerDedupCommitFailureReleases: a Deduper that cannot commit must
// not leave the key claimed, or the next copy of the delivery would wait on
// it until its sender gave up; it is handled again instead (at least once).
func TestHandlerDedupCommitFailureReleases(t *testing.T) {
	rc := &recorder{}
	h := newTestHandler(t, rc, func(o *HandlerOptions) {
		o.Secrets = nil
		o.BasicAuth = &BasicAuth{Login: "kinescope", Password: "pw"}
		o.Deduper = commitFailing{NewMemoryDeduper(10, time.Hour)}
	})
	body := `{"event":"media.update.status","data":{"id":"v1","status":"done"}}`
	for i := range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		r := httptest.NewRequestWithContext(ctx, http.MethodPost, "/", strings.NewReader(body))
		r.SetBasicAuth("kinescope", "pw")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		cancel()
		if w.Code != 200 {
			t.Fatalf("copy %d: %d %s", i+1, w.Code, w.Body)
		}
	}
	if rc.count() != 2 {
		t.Fatalf("calls = %q, want both copies handled", rc.calls)
	}
}

// TestHandlerOperationalEvents: kinehook's own endpoint.disabled and
// endpoint.recovered reach OnOperational typed (what the server marshals is
// what the receiver reads), or OnEvent without it; they are not unknown.
func TestHandlerOperationalEvents(t *testing.T) {
	at := time.Date(2026, 11, 27, 3, 0, 5, 0, time.UTC)
	sent := OperationalEvent{Event: EventEndpointDisabled, Data: OperationalData{ProjectID: "prj_1", EndpointID: "ep_1",
		URL: "https://example.com/h", Reason: "endpoint answered 410 Gone", FailingSince: at.Add(-time.Hour), At: at}}
	body, err := json.Marshal(sent)
	if err != nil {
		t.Fatal(err)
	}
	for _, typed := range []bool{true, false} {
		var got []OperationalData
		var other []EventType
		h, err := NewHandler(HandlerOptions{
			Secrets: []string{refSecret}, Logger: quietLog,
			OnUnknown: func(context.Context, *Incoming) error { t.Error("an operational event went to OnUnknown"); return nil },
			OnEvent:   func(_ context.Context, d *Incoming) error { other = append(other, d.Event.Type); return nil },
		})
		if err != nil {
			t.Fatal(err)
		}
		if typed {
			h.opts.OnOperational = func(_ context.Context, d *Incoming, data OperationalData) error {
				if d.Event.Type != EventEndpointDisabled {
					t.Errorf("type %s", d.Event.Type)
				}
				got = append(got, data)
				return nil
			}
		}
		r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		if err := SignRequest(r.Header, []string{refSecret}, "msg_op_1", time.Now(), body); err != nil {
			t.Fatal(err)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 200 {
			t.Fatalf("answer %d %s", w.Code, w.Body)
		}
		if typed && (len(got) != 1 || got[0] != sent.Data) {
			t.Errorf("OnOperational got %+v, want %+v", got, sent.Data)
		}
		if !typed && (len(other) != 1 || other[0] != EventEndpointDisabled) {
			t.Errorf("OnEvent got %v", other)
		}
	}
	ev, err := ParseLenient(body)
	if err != nil || ev.Operational == nil || ev.UnknownType || ev.ResourceKey() != "ep_1" {
		t.Errorf("ParseLenient = %+v, %v", ev, err)
	}
	if _, err := ParseStrict(body); err == nil {
		t.Error("ParseStrict accepted an operational event (clients must not post them)")
	}
	var ve *ValidationError
	if _, err := ParseLenient([]byte(`{"event":"endpoint.recovered","data":{"reason":"x"}}`)); !errors.As(err, &ve) || ve.Field != "data.endpoint_id" {
		t.Errorf("operational event without endpoint_id: %v", err)
	}
}

// TestHandlerOversizedBodyReadsThe413 is a sender that writes its whole
// oversized webhook before reading the answer (as Python's http.client
// does): it must read the Handler's 413, not a reset connection, with a
// Content-Length over the limit and with a chunked body crossing it.
func TestHandlerOversizedBodyReadsThe413(t *testing.T) {
	h, err := NewHandler(HandlerOptions{Secrets: []string{refSecret}})
	if err != nil {
		t.Fatal(err)
	}
	addr := bodylimittest.NewServer(t, h)
	body := bytes.Repeat([]byte("x"), 3<<20) // 3 MiB: over the 1 MiB default, within the drain bound
	head := "POST /hook HTTP/1.1\r\nHost: " + addr + "\r\nContent-Type: application/json\r\n"
	tests := []struct {
		name  string
		write func(io.Writer, string, []byte) error
	}{
		{"content-length", bodylimittest.WriteContentLength},
		{"chunked", bodylimittest.WriteChunked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := bodylimittest.Dial(t, addr)
			if err := tt.write(c, head, body); err != nil {
				t.Fatalf("writing the body: %v (the handler reset the connection instead of draining it)", err)
			}
			resp := bodylimittest.ReadResponse(t, c)
			if resp.StatusCode != http.StatusRequestEntityTooLarge || !resp.Close {
				t.Fatalf("got %d close=%v, want 413 on a closing connection", resp.StatusCode, resp.Close)
			}
		})
	}
}
