package app

import (
	"testing"
	"time"

	"github.com/kinehook/kinehook"
)

func TestSampleEvents(t *testing.T) {
	for _, typ := range kinehook.EventTypes {
		ev, err := sampleEvent("prj_x", typ, time.Now())
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		p, err := kinehook.ParseStrict(ev.Payload)
		if err != nil {
			t.Fatalf("%s: sample does not pass strict validation: %v (%s)", typ, err, ev.Payload)
		}
		if p.Type != typ || ev.Type != typ || ev.ResourceKey == "" || ev.ResourceKey != p.ResourceKey() {
			t.Fatalf("%s: %+v", typ, ev)
		}
		ev2, _ := sampleEvent("prj_x", typ, time.Now())
		if ev2.ResourceKey == ev.ResourceKey || ev2.ID == ev.ID {
			t.Fatalf("%s: two samples share resource %q or id", typ, ev.ResourceKey)
		}
		if typ == kinehook.EventLiveFinished && (p.Live == nil || p.Live.VideoID == "") {
			t.Fatalf("live.finished sample lacks video_id: %s", ev.Payload)
		}
	}
	if _, err := sampleEvent("prj_x", "video.done", time.Now()); err == nil {
		t.Fatal("a sample of an unknown type was made")
	}
}
