package statussync_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/examples/statussync/statussync"
)

// printNotifier shows notifications on stdout.
type printNotifier struct{}

func (printNotifier) Notify(_ context.Context, n statussync.Notification) error {
	fmt.Println(strings.TrimSpace(fmt.Sprintf("notify %s video=%s event=%s %s", n.Kind, n.VideoID, n.EventID, n.Message)))
	return nil
}

// The Syncer's callbacks plugged into a kinehook Handler, on a SQLite file.
func ExampleSyncer() {
	dir, _ := os.MkdirTemp("", "statussync")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	store, err := statussync.OpenStore(ctx, filepath.Join(dir, "example.db"))
	if err != nil {
		panic(err)
	}
	defer store.Close()

	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	syncer := &statussync.Syncer{Store: store, Notifier: printNotifier{}}
	h, err := kinehook.NewHandler(syncer.HandlerOptions(kinehook.HandlerOptions{
		Secrets: []string{secret},
		Logger:  slog.New(slog.DiscardHandler),
	}))
	if err != nil {
		panic(err)
	}
	send := func(id, body string) {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		if err := kinehook.SignRequest(r.Header, []string{secret}, id, time.Now(), []byte(body)); err != nil {
			panic(err)
		}
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	send("msg_1", `{"event":"media.update.status","data":{"id":"v1","status":"processing"}}`)
	send("msg_2", `{"event":"media.update.status","data":{"id":"v1","status":"error","message":"http_code=404"}}`)
	send("msg_3", string(kinehook.SampleEvent(kinehook.EventLiveFinished)))

	v, _ := store.GetVideo(ctx, "v1")
	fmt.Println(v.Status, v.ErrorMessage)
	l, _ := store.GetLiveEvent(ctx, "abc123-def456-ghi789")
	fmt.Println(l.Status, l.RecordingVideoID, !l.FinishedAt.IsZero())
	// Output:
	// notify video.failed video=v1 event= http_code=404
	// notify recording.available video=7127f2d7-0e96-40d0-9a03-2e987c096466 event=abc123-def456-ghi789
	// error http_code=404
	// finished 7127f2d7-0e96-40d0-9a03-2e987c096466 true
}
