package kinehook_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/kinehook/kinehook"
)

// A receiver for Kinescope's webhooks: one callback per event type, and the
// Handler takes care of reading, verifying, parsing and de-duplicating.
func ExampleNewHandler() {
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	h, err := kinehook.NewHandler(kinehook.HandlerOptions{
		Secrets: []string{secret},
		// For Kinescope itself, which signs nothing:
		// BasicAuth: &kinehook.BasicAuth{Login: "kinescope", Password: "..."},
		Logger: slog.New(slog.DiscardHandler),
		OnMediaStatus: func(ctx context.Context, in *kinehook.Incoming, m kinehook.MediaData) error {
			fmt.Printf("video %s is %s (attempt %d)\n", m.ID, m.Status, in.Attempt)
			return nil // an error would answer 500, and the sender would retry
		},
		OnLiveFinished: func(ctx context.Context, in *kinehook.Incoming, l kinehook.LiveData) error {
			fmt.Printf("stream %s ended; recording %q\n", l.EventID, l.VideoID)
			return nil
		},
		OnUnknown: func(ctx context.Context, in *kinehook.Incoming) error {
			fmt.Printf("new event type %s\n", in.Event.Type)
			return nil
		},
	})
	if err != nil {
		panic(err)
	}
	// Mount it: http.Handle("POST /webhooks/kinescope", h). Here, a signed
	// request sent twice (a retry), then an unsigned one.
	send := func(id string, body []byte, sign bool) {
		r := httptest.NewRequest(http.MethodPost, "/webhooks/kinescope", strings.NewReader(string(body)))
		if sign {
			if err := kinehook.SignRequest(r.Header, []string{secret}, id, time.Now(), body); err != nil {
				panic(err)
			}
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Print(w.Code, " ", w.Body.String())
	}
	send("msg_1", kinehook.SampleEvent(kinehook.EventMediaUpdateStatus), true)
	send("msg_1", kinehook.SampleEvent(kinehook.EventMediaUpdateStatus), true)
	send("msg_2", kinehook.SampleEvent(kinehook.EventLiveFinished), true)
	send("msg_3", []byte(`{"event":"video.published","data":{"id":"v1"}}`), true)
	send("msg_4", kinehook.SampleEvent(kinehook.EventLiveCreated), false)
	// Output:
	// video 7127f2d7-0e96-40d0-9a03-2e987c096466 is done (attempt 1)
	// 200 {"success":true}
	// 200 {"success":true}
	// stream abc123-def456-ghi789 ended; recording "7127f2d7-0e96-40d0-9a03-2e987c096466"
	// 200 {"success":true}
	// new event type video.published
	// 200 {"success":true}
	// 401 {"error":{"code":"unauthorized","message":"signature: missing Standard Webhooks header: webhook-id, webhook-timestamp, webhook-signature"}}
}

// Signing with the Standard Webhooks reference vector.
func ExampleSign() {
	sig, err := kinehook.Sign([]string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
		"msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	fmt.Println(sig, err)
	// Output: v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= <nil>
}

// Verifying outside the Handler, e.g. in another framework: pass the raw
// body, never one re-encoded from parsed JSON.
func ExampleVerify() {
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	body := []byte(`{"test": 2432232314}`)
	h := http.Header{}
	h.Set("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek")
	h.Set("webhook-timestamp", "1614265330")
	h.Set("webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")

	fmt.Println(kinehook.Verify([]string{secret}, h, body, time.Unix(1614265330, 0)))
	err := kinehook.Verify([]string{secret}, h, body, time.Unix(1614265330, 0).Add(time.Hour))
	fmt.Println(errors.Is(err, kinehook.ErrTimestampTooOld))
	// Output:
	// <nil>
	// true
}

// Asymmetric signatures: the sender keeps the whsk_ key, receivers get the
// whpk_ key and cannot sign.
func ExampleGenerateKeyPair() {
	private, public, err := kinehook.GenerateKeyPair()
	if err != nil {
		panic(err)
	}
	body := kinehook.SampleEvent(kinehook.EventLiveEnabled)
	now := time.Now()
	h := http.Header{}
	if err := kinehook.SignRequest(h, []string{private}, "msg_1", now, body); err != nil {
		panic(err)
	}
	fmt.Println(strings.HasPrefix(h.Get("webhook-signature"), "v1a,"))
	fmt.Println(kinehook.Verify([]string{public}, h, body, now))
	// Output:
	// true
	// <nil>
}

// Receivers parse leniently: a status Kinescope adds tomorrow is passed on.
func ExampleParseLenient() {
	ev, err := kinehook.ParseLenient([]byte(`{"event":"media.update.status","data":{"id":"v1","status":"transcoding"}}`))
	fmt.Println(ev.Media.Status, ev.UnknownStatus, ev.ResourceKey(), err)
	// Output: transcoding true v1 <nil>
}

// Producers parse strictly, and errors say which field and what was expected.
func ExampleParseStrict() {
	_, err := kinehook.ParseStrict([]byte(`{"event":"media.update.status","data":{"id":"v1","status":"failed"}}`))
	fmt.Println(err)
	_, err = kinehook.ParseStrict([]byte(`{"event":"live.finished","data":{"video_id":"v1"}}`))
	fmt.Println(err)
	// Output:
	// data.status: expected one of pending, uploading, pre-processing, processing, aborted, done, error, suspended, got "failed"
	// data.event_id: expected a non-empty string (the live event id), got missing
}

// The catalog, as the server serves it at GET /v1/event-types.
func ExampleCatalog() {
	for _, t := range kinehook.Catalog() {
		fmt.Printf("%-20s %s\n", t.Name, t.Examples[0])
	}
	// Output:
	// media.update.status  {"event":"media.update.status","data":{"id":"7127f2d7-0e96-40d0-9a03-2e987c096466","status":"done"}}
	// live.created         {"event":"live.created","data":{"event_id":"abc123-def456-ghi789"}}
	// live.connected       {"event":"live.connected","data":{"event_id":"abc123-def456-ghi789"}}
	// live.disconnected    {"event":"live.disconnected","data":{"event_id":"abc123-def456-ghi789"}}
	// live.finished        {"event":"live.finished","data":{"event_id":"abc123-def456-ghi789","video_id":"7127f2d7-0e96-40d0-9a03-2e987c096466"}}
	// live.cancelled       {"event":"live.cancelled","data":{"event_id":"abc123-def456-ghi789"}}
	// live.enabled         {"event":"live.enabled","data":{"event_id":"abc123-def456-ghi789"}}
}

// Checking the Basic Auth credentials Kinescope sends, in a handler of your own.
func ExampleCheckBasicAuth() {
	r := httptest.NewRequest(http.MethodPost, "/", nil)
	r.SetBasicAuth("kinescope", "s3cret")
	fmt.Println(kinehook.CheckBasicAuth(r, "kinescope", "s3cret"), kinehook.CheckBasicAuth(r, "kinescope", "other"))
	// Output: true false
}
