package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/kinehook/kinehook"
)

// triggerRun runs `kinehook trigger ARGS` in-process.
func triggerRun(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := newTriggerCmd()
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	err := cmd.Execute()
	return out.String(), errOut.String(), err
}

// triggerSink records requests and answers with status.
type triggerSink struct {
	*httptest.Server
	mu     sync.Mutex
	reqs   []*http.Request
	bodies []string
	status int
}

func newTriggerSink(t *testing.T, status int) *triggerSink {
	s := &triggerSink{status: status}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.reqs, s.bodies = append(s.reqs, r), append(s.bodies, string(b))
		s.mu.Unlock()
		w.WriteHeader(s.status)
		_, _ = io.WriteString(w, `{"success":true}`)
	}))
	t.Cleanup(s.Close)
	return s
}

func TestTriggerSignsForTheReferenceLibrary(t *testing.T) {
	sink := newTriggerSink(t, 200)
	out, _, err := triggerRun(t, "media.update.status", "--url", sink.URL, "--secret", listenSecret, "--count", "3",
		"--header", "X-Trace: abc", "--basic-auth", "u:p")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(out, "-> 200 OK {\"success\":true}") != 3 {
		t.Errorf("output = %q", out)
	}
	ref, _ := standardwebhooks.NewWebhook(listenSecret)
	ids := map[string]bool{}
	for i, r := range sink.reqs {
		if err := ref.Verify([]byte(sink.bodies[i]), r.Header); err != nil {
			t.Errorf("request %d: reference library says %v", i, err)
		}
		if sink.bodies[i] != string(kinehook.SampleEvent(kinehook.EventMediaUpdateStatus)) {
			t.Errorf("body = %s", sink.bodies[i])
		}
		if u, p, _ := r.BasicAuth(); u != "u" || p != "p" || r.Header.Get("X-Trace") != "abc" || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("headers = %v", r.Header)
		}
		ids[r.Header.Get("webhook-id")] = true
	}
	if len(sink.reqs) != 3 || len(ids) != 3 {
		t.Errorf("%d requests with %d distinct ids, want 3 and 3", len(sink.reqs), len(ids))
	}
}

func TestTriggerData(t *testing.T) {
	file := filepath.Join(t.TempDir(), "body.json")
	if err := os.WriteFile(file, []byte(`{"event":"live.finished","data":{"event_id":"e1"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		body string // "" when the command must fail before sending
	}{
		{"data object", []string{"media.update.status", "--data", `{"id": "v1", "status": "error", "message": "codec"}`},
			`{"event":"media.update.status","data":{"id":"v1","status":"error","message":"codec"}}`},
		{"whole body", []string{"live.created", "--data", `{"event":"live.created","data":{"event_id":"e7"}}`},
			`{"event":"live.created","data":{"event_id":"e7"}}`},
		{"file", []string{"live.finished", "--data", "@" + file}, `{"event":"live.finished","data":{"event_id":"e1"}}`},
		{"unknown type with data", []string{"video.done", "--data", `{"id":"v"}`}, `{"event":"video.done","data":{"id":"v"}}`},
		{"unknown type without data", []string{"video.done"}, ""},
		{"type mismatch", []string{"live.created", "--data", `{"event":"live.enabled","data":{"event_id":"e"}}`}, ""},
		{"not JSON", []string{"live.created", "--data", `{"event_id":`}, ""},
		{"bad header", []string{"live.created", "--header", "novalue"}, ""},
		{"signature header", []string{"live.created", "--header", "Webhook-Id: forced"}, ""},
		{"bad secret", []string{"live.created", "--secret", "whsk_AAAA"}, ""},
		{"zero count", []string{"live.created", "--count", "0"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := newTriggerSink(t, 200)
			_, _, err := triggerRun(t, append(tt.args, "--url", sink.URL)...)
			if tt.body == "" {
				if err == nil || len(sink.reqs) != 0 {
					t.Fatalf("err = %v after %d requests, want a failure before sending", err, len(sink.reqs))
				}
				return
			}
			if err != nil || len(sink.bodies) != 1 || sink.bodies[0] != tt.body {
				t.Fatalf("err = %v, bodies = %q, want %s", err, sink.bodies, tt.body)
			}
		})
	}
}

func TestTriggerReportsFailuresAndJSON(t *testing.T) {
	sink := newTriggerSink(t, 503)
	out, _, err := triggerRun(t, "live.enabled", "--url", sink.URL, "--count", "2", "--id", "msg_fixed", "--json")
	if err == nil || !strings.Contains(err.Error(), "2 of 2") {
		t.Errorf("err = %v, want both requests reported as failed", err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("output = %q", out)
	}
	var r triggerResult
	if err := json.Unmarshal([]byte(lines[1]), &r); err != nil {
		t.Fatal(err)
	}
	if r.Status != 503 || r.WebhookID != "msg_fixed" || r.Event != "live.enabled" || string(r.Body) != `{"success":true}` {
		t.Errorf("result = %+v", r)
	}
	// Unsigned requests still carry an id and a timestamp.
	if h := sink.reqs[0].Header; h.Get("webhook-id") != "msg_fixed" || h.Get("webhook-timestamp") == "" || h.Get("webhook-signature") != "" {
		t.Errorf("unsigned headers = %v", h)
	}
	if _, _, err := triggerRun(t, "live.enabled", "--url", "http://127.0.0.1:1/"); err == nil {
		t.Error("trigger to a closed port succeeded")
	}
	if _, _, err := triggerRun(t, "live.enabled"); err == nil {
		t.Error("trigger without --url succeeded")
	}
}
