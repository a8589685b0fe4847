package statussync

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/kinehook/kinehook"
)

const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// notes records notifications and can be made to fail.
type notes struct {
	mu   sync.Mutex
	got  []Notification
	fail bool
}

func (n *notes) Notify(_ context.Context, x Notification) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.fail {
		return errors.New("mail server down")
	}
	n.got = append(n.got, x)
	return nil
}

func (n *notes) setFail(v bool) {
	n.mu.Lock()
	n.fail = v
	n.mu.Unlock()
}

type env struct {
	t      *testing.T
	store  *Store
	notes  *notes
	server *httptest.Server
	clock  time.Time
	mu     sync.Mutex
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	store, err := OpenStore(ctx, filepath.Join(t.TempDir(), "statussync.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e := &env{t: t, store: store, notes: &notes{}, clock: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)}
	syncer := &Syncer{Store: store, Notifier: e.notes, Now: func() time.Time {
		e.mu.Lock()
		defer e.mu.Unlock()
		return e.clock
	}}
	h, err := kinehook.NewHandler(syncer.HandlerOptions(kinehook.HandlerOptions{
		Secrets: []string{testSecret},
		Logger:  slog.New(slog.DiscardHandler),
	}))
	if err != nil {
		t.Fatal(err)
	}
	e.server = httptest.NewServer(h)
	t.Cleanup(e.server.Close)
	return e
}

func (e *env) setClock(t time.Time) {
	e.mu.Lock()
	e.clock = t
	e.mu.Unlock()
}

// post sends a body signed with the reference library under webhook-id id.
func (e *env) post(id, body string) int {
	e.t.Helper()
	wh, _ := standardwebhooks.NewWebhook(testSecret)
	now := time.Now()
	sig, err := wh.Sign(id, now, []byte(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, e.server.URL+"/webhooks/kinescope", bytes.NewReader([]byte(body)))
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	req.Header.Set("webhook-signature", sig)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func (e *env) video(id string) *Video {
	e.t.Helper()
	v, err := e.store.GetVideo(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}

// kinehookBody builds {"event": t, "data": data}, leaving out empty values.
func kinehookBody(t kinehook.EventType, data map[string]string) (string, error) {
	for k, v := range data {
		if v == "" {
			delete(data, k)
		}
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(kinehook.Envelope{Event: t, Data: raw})
	return string(b), err
}

func media(id, status, message string) string {
	b, _ := kinehookBody(kinehook.EventMediaUpdateStatus, map[string]string{"id": id, "status": status, "message": message})
	return b
}

func live(t kinehook.EventType, eventID, videoID string) string {
	d := map[string]string{"event_id": eventID}
	if videoID != "" {
		d["video_id"] = videoID
	}
	b, _ := kinehookBody(t, d)
	return b
}

func TestVideoStatusesAndNotifications(t *testing.T) {
	e := newEnv(t)
	t0 := e.clock
	steps := []struct {
		id, body string
		status   string
		message  string
		notified []string
	}{
		{"m1", media("v1", "uploading", ""), "uploading", "", nil},
		{"m2", media("v1", "processing", ""), "processing", "", nil},
		{"m3", media("v1", "done", ""), "done", "", []string{VideoDone}},
		{"m3", media("v1", "done", ""), "done", "", []string{VideoDone}}, // duplicate delivery
		{"m4", media("v1", "done", ""), "done", "", []string{VideoDone}}, // same status again
		{"m5", media("v1", "error", "http_code=404"), "error", "http_code=404", []string{VideoDone, VideoFailed}},
		{"m6", media("v1", "aborted", ""), "aborted", "", []string{VideoDone, VideoFailed, VideoAborted}},
		{"m7", media("v1", "transcoding", ""), "transcoding", "", []string{VideoDone, VideoFailed, VideoAborted}}, // unknown status kept
	}
	for i, s := range steps {
		e.setClock(t0.Add(time.Duration(i) * time.Minute))
		if code := e.post(s.id, s.body); code != 200 {
			t.Fatalf("step %d: %d", i, code)
		}
		v := e.video("v1")
		if v.Status != s.status || v.ErrorMessage != s.message {
			t.Errorf("step %d: video = %+v, want %s %q", i, v, s.status, s.message)
		}
		var kinds []string
		for _, n := range e.notes.got {
			kinds = append(kinds, n.Kind)
		}
		if len(kinds) != len(s.notified) || (len(kinds) > 0 && kinds[len(kinds)-1] != s.notified[len(s.notified)-1]) {
			t.Errorf("step %d: notifications %v, want %v", i, kinds, s.notified)
		}
	}
	if n := e.notes.got[1]; n.VideoID != "v1" || n.Message != "http_code=404" {
		t.Errorf("failure notification = %+v", n)
	}
}

func TestUpdatedAtIsMonotonic(t *testing.T) {
	e := newEnv(t)
	t0 := e.clock
	e.post("a", media("v2", "done", ""))
	e.setClock(t0.Add(-time.Hour)) // the clock steps back
	e.post("b", media("v2", "processing", ""))
	v := e.video("v2")
	if v.Status != "processing" || !v.UpdatedAt.Equal(t0) {
		t.Errorf("video = %+v, want status processing with updated_at still %s", v, t0)
	}
	e.setClock(t0.Add(time.Hour))
	e.post("c", media("v2", "done", ""))
	if v := e.video("v2"); !v.UpdatedAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("updated_at = %s, want it to move forward", v.UpdatedAt)
	}
}

func TestNotifierFailureIsRetried(t *testing.T) {
	e := newEnv(t)
	e.post("p", media("v3", "processing", ""))
	e.notes.setFail(true)
	if code := e.post("d", media("v3", "done", "")); code != 500 {
		t.Fatalf("answer with the notifier down = %d, want 500", code)
	}
	if v := e.video("v3"); v.Status != "processing" {
		t.Errorf("status = %s, want the failed delivery rolled back", v.Status)
	}
	e.notes.setFail(false)
	if code := e.post("d", media("v3", "done", "")); code != 200 {
		t.Fatalf("retry = %d", code)
	}
	if v := e.video("v3"); v.Status != "done" || len(e.notes.got) != 1 || e.notes.got[0].Kind != VideoDone {
		t.Errorf("after the retry: video %+v, notifications %+v", v, e.notes.got)
	}
}

func TestLiveEvents(t *testing.T) {
	e := newEnv(t)
	t0 := e.clock
	ctx := context.Background()
	seq := []struct {
		typ    kinehook.EventType
		video  string
		status string
	}{
		{kinehook.EventLiveCreated, "", "created"},
		{kinehook.EventLiveEnabled, "", "enabled"},
		{kinehook.EventLiveConnected, "", "connected"},
		{kinehook.EventLiveDisconnected, "", "disconnected"},
		{kinehook.EventLiveFinished, "rec-1", "finished"},
	}
	for i, s := range seq {
		e.setClock(t0.Add(time.Duration(i) * time.Minute))
		if code := e.post("l"+strconv.Itoa(i), live(s.typ, "ev1", s.video)); code != 200 {
			t.Fatalf("%s: %d", s.typ, code)
		}
		l, err := e.store.GetLiveEvent(ctx, "ev1")
		if err != nil || l.Status != s.status {
			t.Fatalf("after %s: %+v %v", s.typ, l, err)
		}
	}
	l, _ := e.store.GetLiveEvent(ctx, "ev1")
	if l.RecordingVideoID != "rec-1" || !l.FinishedAt.Equal(t0.Add(4*time.Minute)) {
		t.Errorf("finished event = %+v", l)
	}
	if len(e.notes.got) != 1 || e.notes.got[0] != (Notification{Kind: RecordingAvailable, EventID: "ev1", VideoID: "rec-1"}) {
		t.Errorf("notifications = %+v", e.notes.got)
	}
	// A stream that finished without recording, then was cancelled.
	e.post("x1", live(kinehook.EventLiveFinished, "ev2", ""))
	e.post("x2", live(kinehook.EventLiveCancelled, "ev2", ""))
	l, _ = e.store.GetLiveEvent(ctx, "ev2")
	if l.Status != "cancelled" || l.RecordingVideoID != "" || l.FinishedAt.IsZero() || len(e.notes.got) != 1 {
		t.Errorf("event without recording = %+v, notifications %+v", l, e.notes.got)
	}
	if _, err := e.store.GetLiveEvent(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetLiveEvent(nope) = %v", err)
	}
}

func TestRefusesBadRequests(t *testing.T) {
	e := newEnv(t)
	req, _ := http.NewRequest(http.MethodPost, e.server.URL, bytes.NewReader([]byte(media("v9", "done", ""))))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("unsigned = %d", resp.StatusCode)
	}
	if code := e.post("bad", `{"event":"media.update.status","data":{"status":"done"}}`); code != 400 {
		t.Errorf("missing id = %d", code)
	}
	if _, err := e.store.GetVideo(context.Background(), "v9"); !errors.Is(err, ErrNotFound) {
		t.Errorf("refused request wrote a row: %v", err)
	}
}

func TestCounts(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c, err := e.store.Counts(ctx)
	if err != nil || len(c.Videos) != 0 || len(c.LiveEvents) != 0 || c.Recordings != 0 {
		t.Fatalf("empty store: %+v, %v", c, err)
	}
	bodies := []string{
		media("v1", "processing", ""),
		media("v1", "done", ""), // v1 moves on: counted once, as done
		media("v2", "done", ""),
		media("v3", "error", "http_code=404"),
		media("v4", "uploading", ""),
		live(kinehook.EventLiveCreated, "ev1", ""),
		live(kinehook.EventLiveFinished, "ev1", "rec-1"),
		live(kinehook.EventLiveFinished, "ev2", ""),
		live(kinehook.EventLiveConnected, "ev3", ""),
	}
	for i, b := range bodies {
		if code := e.post("c"+strconv.Itoa(i), b); code != 200 {
			t.Fatalf("body %d: %d", i, code)
		}
	}
	c, err = e.store.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		got, want int
	}{
		{"videos done", c.Videos["done"], 2},
		{"videos error", c.Videos["error"], 1},
		{"videos uploading", c.Videos["uploading"], 1},
		{"videos processing", c.Videos["processing"], 0},
		{"video statuses", len(c.Videos), 3},
		{"live finished", c.LiveEvents["finished"], 2},
		{"live connected", c.LiveEvents["connected"], 1},
		{"live statuses", len(c.LiveEvents), 2},
		{"recordings", c.Recordings, 1},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %d, want %d (counts %+v)", tt.name, tt.got, tt.want, c)
		}
	}
}
