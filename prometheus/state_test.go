package prometheus_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/delivery"
	"github.com/kinehook/kinehook/prometheus"
	"github.com/kinehook/kinehook/sqlite"
	"github.com/kinehook/kinehook/webhook"
)

// TestStateMetrics publishes video and stream events through the real
// engine and store: the media status counter, the processing histogram
// and the live stream gauges follow them.
func TestStateMetrics(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "k.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	p := &kinehook.Project{ID: kinehook.NewID(kinehook.PrefixProject), Name: "m", CreatedAt: time.Now()}
	if err := st.CreateProject(ctx, p, kinehook.HashKey("k")); err != nil {
		t.Fatal(err)
	}
	m := prometheus.New(prometheus.Options{LiveStreams: func(ctx context.Context) ([]kinehook.StateCount, error) {
		return st.CountStates(ctx, "", kinehook.StateLive)
	}})
	eng, err := delivery.New(delivery.Config{Store: st, Observer: m, Transports: webhook.Transports(webhook.Options{})})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		eng.Shutdown(sctx)
	})
	t0 := time.Now().Add(-time.Hour)
	publish := func(at time.Duration, typ kinehook.EventType, data string) {
		t.Helper()
		body := fmt.Sprintf(`{"event":%q,"data":%s}`, typ, data)
		p2, err := kinehook.ParseLenient([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		ev := &kinehook.Event{ID: kinehook.NewID(kinehook.PrefixEvent), ProjectID: p.ID, Type: typ,
			Payload: []byte(body), ResourceKey: p2.ResourceKey(), CreatedAt: t0.Add(at)}
		if _, err := eng.Publish(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	publish(0, kinehook.EventMediaUpdateStatus, `{"id":"v1","status":"uploading"}`)
	publish(90*time.Second, kinehook.EventMediaUpdateStatus, `{"id":"v1","status":"processing"}`)
	publish(100*time.Second, kinehook.EventMediaUpdateStatus, `{"id":"v1","status":"done"}`)
	publish(0, kinehook.EventMediaUpdateStatus, `{"id":"v2","status":"pending"}`)
	publish(20*time.Second, kinehook.EventMediaUpdateStatus, `{"id":"v2","status":"error","message":"codec"}`)
	publish(21*time.Second, kinehook.EventMediaUpdateStatus, `{"id":"v3","status":"brand-new"}`)
	publish(0, kinehook.EventLiveConnected, `{"event_id":"s1"}`)
	publish(time.Second, kinehook.EventLiveDisconnected, `{"event_id":"s1"}`)
	publish(2*time.Second, kinehook.EventLiveConnected, `{"event_id":"s2"}`)

	srv := httptest.NewServer(m.Handler())
	t.Cleanup(srv.Close)
	text := scrape(t, srv.URL)
	pl := `project="` + p.ID + `"`
	for _, want := range []string{
		`kinehook_media_status_total{` + pl + `,status="done"} 1`,
		`kinehook_media_status_total{` + pl + `,status="error"} 1`,
		`kinehook_media_status_total{` + pl + `,status="uploading"} 1`,
		`kinehook_media_status_total{` + pl + `,status="unknown"} 1`,
		`kinehook_media_processing_seconds_count{` + pl + `,status="done"} 1`,
		`kinehook_media_processing_seconds_sum{` + pl + `,status="done"} 100`,
		`kinehook_media_processing_seconds_sum{` + pl + `,status="error"} 20`,
		`kinehook_live_streams{` + pl + `,state="connected"} 1`,
		`kinehook_live_streams{` + pl + `,state="disconnected"} 1`,
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("metrics lack %q:\n%s", want, grep(text, "kinehook_"))
		}
	}
	age := metricValue(text, `kinehook_live_state_oldest_seconds{`+pl+`,state="disconnected"}`)
	if age < 3590 || age > 3700 {
		t.Errorf("disconnected for %v s, want about an hour", age)
	}
}
