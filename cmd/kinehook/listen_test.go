package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/kinehook/kinehook"
)

const listenSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// listenBuf is an io.Writer safe to read while the command writes to it.
type listenBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *listenBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *listenBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// lines returns the non-empty lines written so far.
func (l *listenBuf) lines() []string {
	var out []string
	for _, s := range strings.Split(l.String(), "\n") {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// listenWait polls cond for up to 5 s.
func listenWait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// startListen runs `kinehook listen --addr 127.0.0.1:0 ARGS` in-process and
// returns its base URL and outputs; the command stops at the end of the test.
func startListen(t *testing.T, args ...string) (string, *listenBuf, *listenBuf) {
	t.Helper()
	stdout, stderr := &listenBuf{}, &listenBuf{}
	cmd := newListenCmd()
	cmd.SetArgs(append([]string{"--addr", "127.0.0.1:0"}, args...))
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("listen returned %v", err)
		}
	})
	var base string
	listenWait(t, "listen to start", func() bool {
		_, rest, ok := strings.Cut(stderr.String(), "listening on ")
		if ok {
			base, _, _ = strings.Cut(rest, " ")
		}
		return ok
	})
	return base, stdout, stderr
}

// refPost sends body to url signed by the reference library at ts; mutate
// may spoil the request first.
func refPost(t *testing.T, url, secret, id string, ts time.Time, body string, mutate func(*http.Request)) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if secret != "" {
		wh, err := standardwebhooks.NewWebhook(secret)
		if err != nil {
			t.Fatal(err)
		}
		sig, err := wh.Sign(id, ts, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("webhook-id", id)
		req.Header.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
		req.Header.Set("webhook-signature", sig)
	}
	req.Header.Set("Content-Type", "application/json")
	if mutate != nil {
		mutate(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestListenAgainstReferenceLibrary(t *testing.T) {
	base, stdout, stderr := startListen(t, "--secret", listenSecret)
	now := time.Now()
	media := string(kinehook.SampleEvent(kinehook.EventMediaUpdateStatus))
	tests := []struct {
		name   string
		id     string
		ts     time.Time
		body   string
		mutate func(*http.Request)
		status int
		line   string // expected on stdout, "" for nothing new
		note   string // expected at the start of the one new stderr line, "" for none
	}{
		{"valid", "msg_valid", now, media, nil, 200, "media.update.status id=7127f2d7-0e96-40d0-9a03-2e987c096466 status=done", ""},
		{"duplicate", "msg_valid", now, media, nil, 200, "", "duplicate media.update.status 7127f2d7-0e96-40d0-9a03-2e987c096466 (id:msg_valid) answered 200 without handling it again"},
		{"tampered", "msg_tampered", now, media, func(r *http.Request) {
			tampered := strings.Replace(media, "done", "dime", 1)
			r.Body, r.GetBody, r.ContentLength = io.NopCloser(strings.NewReader(tampered)), nil, int64(len(tampered))
		}, 401, "", "refused: POST /webhooks webhook-id=msg_tampered: 401 unauthorized: "},
		{"stale", "msg_stale", now.Add(-10 * time.Minute), media, nil, 401, "", "refused: POST /webhooks webhook-id=msg_stale: 401 "},
		{"future", "msg_future", now.Add(10 * time.Minute), media, nil, 401, "", "refused: POST /webhooks webhook-id=msg_future: 401 "},
		{"unsigned", "", now, media, nil, 401, "", "refused: POST /webhooks webhook-id=(none): 401 "},
		{"missing id", "msg_noid", now, media, func(r *http.Request) { r.Header.Del("webhook-id") }, 401, "", "refused: POST /webhooks webhook-id=(none): 401 "},
		{"odd path and id", `msg "odd" id`, now, media, func(r *http.Request) {
			r.URL.Path, r.Header["Webhook-Signature"] = "/a b\nforged line", []string{"v1,AAAA"}
		}, 401, "", `refused: POST "/a b\nforged line" webhook-id="msg \"odd\" id": 401 `},
		{"malformed", "msg_malformed", now, `{"event":"media.update.status",`, nil, 400, "", "refused: POST /webhooks webhook-id=msg_malformed: 400 malformed"},
		{"missing field", "msg_nostatus", now, `{"event":"media.update.status","data":{"id":"v1"}}`, nil, 400, "", "refused: POST /webhooks webhook-id=msg_nostatus: 400 "},
		{"unknown type", "msg_unknown_type", now, `{"event":"video.done","data":{"id":"v2"}}`, nil, 200, "video.done id=v2 (unknown event type)", ""},
		{"unknown status", "msg_unknown_status", now, `{"event":"media.update.status","data":{"id":"v3","status":"failed"}}`, nil, 200, "media.update.status id=v3 status=failed (unknown status)", ""},
		{"live", "msg_live", now, string(kinehook.SampleEvent(kinehook.EventLiveFinished)), nil, 200, "live.finished id=abc123-def456-ghi789 video_id=7127f2d7-0e96-40d0-9a03-2e987c096466", ""},
		{"any path", "msg_path", now, `{"event":"live.created","data":{"event_id":"e9"}}`, func(r *http.Request) { r.URL.Path = "/deep/path" }, 200, "live.created id=e9", ""},
		{"GET", "msg_get", now, media, func(r *http.Request) { r.Method = http.MethodGet }, 405, "", "refused: GET /webhooks webhook-id=msg_get: 405 method_not_allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, beforeErr := len(stdout.lines()), len(stderr.lines())
			status, body := refPost(t, base+"/webhooks", listenSecret, tt.id, tt.ts, tt.body, tt.mutate)
			if status != tt.status {
				t.Fatalf("status = %d (%s), want %d", status, body, tt.status)
			}
			if status == 200 && strings.TrimSpace(body) != `{"success":true}` {
				t.Errorf("body = %s", body)
			}
			var e struct {
				Error struct{ Code, Message string }
			}
			if status != 200 && (json.Unmarshal([]byte(body), &e) != nil || e.Error.Code == "" || e.Error.Message == "") {
				t.Errorf("error body = %s, want {\"error\":{\"code\",\"message\"}}", body)
			}
			lines := stdout.lines()
			if tt.line == "" && len(lines) != before {
				t.Errorf("stdout gained %q", lines[before:])
			}
			if tt.line != "" && (len(lines) != before+1 || !strings.Contains(lines[before], tt.line) || !strings.HasSuffix(lines[before], "-> 200")) {
				t.Errorf("stdout = %q, want one new line containing %q", lines[before:], tt.line)
			}
			// The note is written after the answer: wait for it.
			var notes []string
			if tt.note != "" {
				listenWait(t, "the stderr note", func() bool { return len(stderr.lines()) > beforeErr })
			}
			notes = stderr.lines()[beforeErr:]
			if tt.note == "" && len(notes) != 0 || tt.note != "" && (len(notes) != 1 || !strings.HasPrefix(notes[0], tt.note)) {
				t.Errorf("stderr gained %q, want one line starting %q", notes, tt.note)
			}
		})
	}
	if strings.Contains(stderr.String(), "warning") {
		t.Errorf("warned although a secret was given:\n%s", stderr)
	}
}

func TestListenUnsignedWarnsOnceAndPrintsJSON(t *testing.T) {
	base, stdout, stderr := startListen(t, "--json")
	for i := range 3 {
		status, _ := refPost(t, base, "", "", time.Now(), `{"event":"media.update.status","data":{"id":"v`+strconv.Itoa(i)+`","status":"error","message":"codec"}}`, nil)
		if status != 200 {
			t.Fatalf("unsigned request %d answered %d", i, status)
		}
	}
	if n := strings.Count(stderr.String(), "warning"); n != 1 {
		t.Errorf("warned %d times, want once:\n%s", n, stderr)
	}
	lines := stdout.lines()
	if len(lines) != 3 {
		t.Fatalf("stdout = %q, want 3 JSON lines", lines)
	}
	var l listenLine
	if err := json.Unmarshal([]byte(lines[2]), &l); err != nil {
		t.Fatal(err)
	}
	if l.Event != "media.update.status" || l.ResourceID != "v2" || l.Status != "error" || l.Message != "codec" || l.HTTPStatus != 200 || l.Attempt != 1 {
		t.Errorf("JSON line = %+v", l)
	}
	// Without a webhook-id, the same event, resource and status is a duplicate.
	refPost(t, base, "", "", time.Now(), `{"event":"media.update.status","data":{"id":"v2","status":"error"}}`, nil)
	if len(stdout.lines()) != 3 {
		t.Errorf("a repeat without webhook-id was handled again: %q", stdout.lines())
	}
}

func TestListenWithTriggerAndForward(t *testing.T) {
	priv, pub, err := kinehook.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []*http.Request
	var bodies []string
	appStatus := http.StatusAccepted
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		got, bodies = append(got, r), append(bodies, string(b))
		w.Header().Set("X-App", "yes")
		w.WriteHeader(appStatus)
		_, _ = io.WriteString(w, `{"app":"ok"}`)
	}))
	defer app.Close()
	base, stdout, _ := startListen(t, "--secret", listenSecret, "--public-key", pub, "--basic-auth", "kinescope:pw", "--forward-to", app.URL+"/hook")

	// Every catalog type, signed with the secret and with the private key.
	for i, typ := range kinehook.EventTypes {
		secret := listenSecret
		if i%2 == 1 {
			secret = priv
		}
		out, errOut, err := triggerRun(t, string(typ), "--url", base+"/kinescope", "--secret", secret, "--basic-auth", "kinescope:pw")
		if err != nil || !strings.Contains(out, "-> 202 Accepted") {
			t.Fatalf("trigger %s: %v\n%s%s", typ, err, out, errOut)
		}
	}
	lines := stdout.lines()
	if len(lines) != len(kinehook.EventTypes) {
		t.Fatalf("listen printed %q", lines)
	}
	for i, typ := range kinehook.EventTypes {
		if !strings.Contains(lines[i], " "+string(typ)+" ") || !strings.HasSuffix(lines[i], "-> 202") {
			t.Errorf("line %d = %q", i, lines[i])
		}
	}
	mu.Lock()
	if len(got) != len(kinehook.EventTypes) {
		t.Fatalf("app got %d requests", len(got))
	}
	// Headers and body arrive unchanged: the app can verify the signature itself.
	for i, r := range got {
		if r.URL.Path != "/hook" || bodies[i] != string(kinehook.SampleEvent(kinehook.EventTypes[i])) {
			t.Errorf("forwarded %s %q", r.URL.Path, bodies[i])
		}
		if err := kinehook.Verify([]string{listenSecret, pub}, r.Header, []byte(bodies[i]), time.Now()); err != nil {
			t.Errorf("forwarded request %d does not verify: %v", i, err)
		}
		if u, p, ok := r.BasicAuth(); !ok || u != "kinescope" || p != "pw" {
			t.Errorf("forwarded request %d lost its Basic Auth", i)
		}
	}
	appStatus = http.StatusInternalServerError
	mu.Unlock()

	// The app's failure is the answer, and the retry reaches the app again.
	for range 2 {
		status, body := refPost(t, base, listenSecret, "msg_app_fails", time.Now(), string(kinehook.SampleEvent(kinehook.EventLiveCreated)), func(r *http.Request) {
			r.SetBasicAuth("kinescope", "pw")
		})
		if status != 500 || body != `{"app":"ok"}` {
			t.Errorf("answer = %d %s, want the app's 500", status, body)
		}
	}
	mu.Lock()
	if len(got) != len(kinehook.EventTypes)+2 {
		t.Errorf("app got %d requests, want the failed delivery twice", len(got))
	}
	mu.Unlock()
	// Credentials are all required.
	out, _, err := triggerRun(t, "live.created", "--url", base, "--secret", listenSecret)
	if err == nil || !strings.Contains(out, "401") {
		t.Errorf("trigger without Basic Auth: %v %s", err, out)
	}
}

func TestListenForwardToDeadApp(t *testing.T) {
	app := httptest.NewServer(http.NotFoundHandler())
	dead := app.URL
	app.Close()
	base, _, stderr := startListen(t, "--forward-to", dead)
	status, body := refPost(t, base, listenSecret, "msg_dead", time.Now(), string(kinehook.SampleEvent(kinehook.EventLiveEnabled)), nil)
	if status != http.StatusBadGateway || !strings.Contains(body, "bad_gateway") {
		t.Errorf("answer = %d %s, want 502", status, body)
	}
	if !strings.Contains(stderr.String(), "forward to") {
		t.Errorf("stderr does not explain the failure:\n%s", stderr)
	}
}

func TestListenFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--basic-auth", "nocolon"},
		{"--secret", "whsec_!!!"},
		{"--public-key", "whpk_bad"},
		{"--secret", "whpk_AAAA"},
		{"--forward-to", "localhost:3000"},
		{"--addr", "256.0.0.1:1"},
	} {
		cmd := newListenCmd()
		cmd.SetArgs(args)
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		if err := cmd.Execute(); err == nil {
			t.Errorf("listen %q succeeded", args)
		}
	}
}

// TestListenForwardAddsNoHeaders: the app gets the sender's headers, no
// more: Go's client would otherwise ask for gzip on the sender's behalf.
func TestListenForwardAddsNoHeaders(t *testing.T) {
	seen := make(chan http.Header, 1)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
	}))
	defer app.Close()
	base, _, _ := startListen(t, "--basic-auth", "kinescope:pw", "--forward-to", app.URL)
	req, _ := http.NewRequest(http.MethodPost, base, strings.NewReader(string(kinehook.SampleEvent(kinehook.EventLiveCreated))))
	req.SetBasicAuth("kinescope", "pw")
	req.Header.Set("X-Sender", "kinescope")
	plain := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	res, err := plain.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("listen answered %d", res.StatusCode)
	}
	h := <-seen
	if h.Get("Accept-Encoding") != "" || h.Get("X-Sender") != "kinescope" {
		t.Errorf("the app got Accept-Encoding %q, X-Sender %q; want none and the sender's", h.Get("Accept-Encoding"), h.Get("X-Sender"))
	}
}

// TestListenLineOfOperationalEvent: kinehook's own operational events are
// printed with their endpoint and reason, not as an unknown type.
func TestListenLineOfOperationalEvent(t *testing.T) {
	ev, err := kinehook.ParseLenient([]byte(`{"event":"endpoint.disabled","data":{"project_id":"prj_1","endpoint_id":"ep_1","url":"https://x","reason":"endpoint answered 410 Gone","at":"2026-11-27T03:00:00Z"}}`))
	if err != nil {
		t.Fatal(err)
	}
	line := listenLineOf(&kinehook.Incoming{ID: "msg_1", Event: ev}, 200, time.Now()).text()
	if !strings.Contains(line, "endpoint.disabled id=ep_1") || !strings.Contains(line, "410 Gone") || strings.Contains(line, "unknown") {
		t.Errorf("line %q", line)
	}
}

// TestListenHelpMatchesOutput: the help says where duplicates and refusals
// are reported, which is where TestListenAgainstReferenceLibrary finds them.
func TestListenHelpMatchesOutput(t *testing.T) {
	long := strings.Join(strings.Fields(newListenCmd().Long), " ")
	for _, want := range []string{
		`they print no event line on stdout, only a "duplicate ..." note on stderr`,
		`Refused requests get a "refused: ..." note on stderr naming the method, path and webhook-id`,
	} {
		if !strings.Contains(long, want) {
			t.Errorf("listen --help does not say %q:\n%s", want, long)
		}
	}
	if strings.Contains(long, "not printed") {
		t.Errorf("listen --help says duplicates are not printed; a note is:\n%s", long)
	}
}
