package kinehook_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
)

// FuzzStateUpdateOfEvent checks the stores' fast reading of a payload's
// state against the receivers' parser: both must say the same of any body.
func FuzzStateUpdateOfEvent(f *testing.F) {
	for _, s := range []string{
		`{"event":"media.update.status","data":{"id":"v1","status":"done"}}`,
		`{"event":"media.update.status","data":{"id":"v1","status":"error","message":"codec"}}`,
		`{"event":"media.update.status","data":{"id":"v1","status":"shiny"}}`,
		`{"event":"media.update.status","data":{"id":1,"status":"done"}}`,
		`{"event":"live.finished","data":{"event_id":"s","video_id":"r"}}`,
		`{"event":"live.connected","data":{"event_id":"s","video_id":"r"}}`,
		`{"event":"live.paused","data":{"event_id":"s","video_id":"r"}}`,
		`{"event":"video.new","data":{"id":"x"}}`,
		`{"event":"live.created","data":{"event_id":""}}`,
		`{"event":"media.update.status","data":{"id":"v","status":"done","id":"w"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := kinehook.ParseLenient(body)
		var want *kinehook.StateUpdate
		if err == nil && p.Operational == nil {
			want = kinehook.StateUpdateOf(p)
		}
		typ := kinehook.EventType("")
		if err == nil {
			typ = p.Type
		}
		got := kinehook.StateUpdateOfEvent(&kinehook.Event{Type: typ, Payload: body})
		if err != nil {
			return // the stores never see a body the entry points refuse
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("StateUpdateOfEvent(%s) = %+v, ParseLenient says %+v", body, got, want)
		}
	})
}

func TestStateApply(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	st := &kinehook.ResourceState{Kind: kinehook.StateMedia, ID: "v"}
	steps := []struct {
		status      string
		seq         int64
		write       bool
		prev        string
		nilChange   bool
		processing  time.Duration
		wantCurrent string
	}{
		{"pending", 10, true, "", false, 0, "pending"},
		{"uploading", 11, true, "pending", false, 0, "uploading"},
		{"uploading", 12, false, "uploading", false, 0, "uploading"},    // a repeat
		{"processing", 9, true, "", true, 0, "uploading"},               // older: history only
		{"done", 14, true, "uploading", false, 4 * time.Second, "done"}, // from the first pending
		{"error", 15, true, "done", false, 0, "error"},                  // no processing under way
	}
	for i, s := range steps {
		ch, write, err := st.Apply(&kinehook.StateUpdate{Kind: kinehook.StateMedia, ID: "v", Status: s.status},
			kinehook.StateEntry{At: t0.Add(time.Duration(s.seq-10) * time.Second), EventID: "e", Seq: s.seq})
		if err != nil {
			t.Fatal(err)
		}
		if write != s.write || (ch == nil) != s.nilChange || (ch != nil && (ch.Prev != s.prev || ch.Processing != s.processing)) || st.Status != s.wantCurrent {
			t.Errorf("step %d (%s): change %+v write %v, status %s", i, s.status, ch, write, st.Status)
		}
	}
	var order []string
	for _, e := range st.History {
		order = append(order, e.Status)
	}
	if want := []string{"processing", "pending", "uploading", "done", "error"}; !reflect.DeepEqual(order, want) {
		t.Errorf("history = %v, want %v (acceptance order, repeats left out)", order, want)
	}
}
