package kinehook

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestParseListenFrame: each frame type needs its fields; texts are bounded.
func TestParseListenFrame(t *testing.T) {
	long := strings.Repeat("x", MaxListenResponse+1)
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"hello", `{"type":"hello","endpoint_id":"ep_1","secret":"whsec_x","event_types":["media.*"]}`, true},
		{"hello without secret", `{"type":"hello","endpoint_id":"ep_1"}`, false},
		{"delivery", `{"type":"delivery","id":"msg_1.1","body":"e30=","headers":{"Webhook-Id":"msg_1"},"timeout_ms":1000}`, true},
		{"delivery without body", `{"type":"delivery","id":"msg_1.1"}`, false},
		{"delivery with bad base64", `{"type":"delivery","id":"msg_1.1","body":"!!"}`, false},
		{"delivery negative timeout", `{"type":"delivery","id":"a","body":"e30=","timeout_ms":-1}`, false},
		{"result", `{"type":"result","id":"msg_1.1","status":200,"duration_ms":1.5,"response":"ok"}`, true},
		{"result error", `{"type":"result","id":"msg_1.1","error":"connection refused"}`, true},
		{"result neither", `{"type":"result","id":"msg_1.1"}`, false},
		{"result status 42", `{"type":"result","id":"a","status":42}`, false},
		{"result status 600", `{"type":"result","id":"a","status":600}`, false},
		{"result id with space", `{"type":"result","id":"a b","status":200}`, false},
		{"result id too long", `{"type":"result","id":"` + strings.Repeat("a", MaxListenFrameID+1) + `","status":200}`, false},
		{"result response too long", `{"type":"result","id":"a","status":200,"response":"` + long + `"}`, false},
		{"result negative duration", `{"type":"result","id":"a","status":200,"duration_ms":-1}`, false},
		{"unknown field ignored", `{"type":"result","id":"a","status":200,"later":true}`, true},
		{"unknown type", `{"type":"ping"}`, false},
		{"two objects", `{"type":"result","id":"a","status":200}{}`, false},
		{"not JSON", `nope`, false},
		{"array", `[]`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseListenFrame([]byte(tt.in))
			if (err == nil) != tt.ok {
				t.Errorf("ParseListenFrame(%s) err = %v, want ok %v", tt.in, err, tt.ok)
			}
		})
	}
}

// TestListenerStateRoundTrip: the state survives the endpoint's config; a
// config that is not a state reads as never seen.
func TestListenerStateRoundTrip(t *testing.T) {
	s := ListenerState{Session: "lsn_1", Instance: "inst_1", Connected: true, SeenAt: time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC), Client: "kinehook-cli/1"}
	if got := ParseListenerState(s.Marshal()); !reflect.DeepEqual(got, s) {
		t.Errorf("round trip %+v, want %+v", got, s)
	}
	if got := ParseListenerState(json.RawMessage(`"x"`)); !got.SeenAt.IsZero() || got.Connected {
		t.Errorf("garbage config read as %+v", got)
	}
}

// FuzzParseListenFrame: the wire protocol's parser never panics, and what
// it accepts is a valid frame that survives a re-encoding unchanged.
func FuzzParseListenFrame(f *testing.F) {
	f.Add([]byte(`{"type":"hello","endpoint_id":"ep_1","secret":"whsec_x"}`))
	f.Add([]byte(`{"type":"delivery","id":"msg_1.1","body":"e30=","headers":{"Webhook-Id":"msg_1"},"timeout_ms":1000}`))
	f.Add([]byte(`{"type":"result","id":"msg_1.1","status":503,"retry_after":"7","duration_ms":1.5,"response":"busy"}`))
	f.Add([]byte(`{"type":"result","id":"msg_1.1","error":"connection refused","timeout":true}`))
	f.Add([]byte(`{"type":"result","id":"\u00e9","status":200}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := ParseListenFrame(data)
		if err != nil {
			return
		}
		if fr.check() != nil {
			t.Fatalf("accepted an invalid frame %+v", fr)
		}
		if fr.Type == FrameResult && (fr.Status != 0 && (fr.Status < 100 || fr.Status > 599) || len(fr.Response) > MaxListenResponse || math.IsNaN(fr.DurationMS)) {
			t.Fatalf("result out of bounds: %+v", fr)
		}
		b, err := json.Marshal(fr)
		if err != nil {
			t.Fatalf("re-encode %+v: %v", fr, err)
		}
		again, err := ParseListenFrame(b)
		if err != nil {
			t.Fatalf("re-encoded frame %s refused: %v", b, err)
		}
		if !reflect.DeepEqual(normFrame(again), normFrame(fr)) {
			t.Fatalf("round trip changed the frame:\n%+v\n%+v", fr, again)
		}
	})
}

// normFrame makes empty and nil collections equal (omitempty drops both).
func normFrame(f *ListenFrame) ListenFrame {
	out := *f
	if len(out.EventTypes) == 0 {
		out.EventTypes = nil
	}
	if len(out.Headers) == 0 {
		out.Headers = nil
	}
	if len(out.Body) == 0 {
		out.Body = nil
	}
	return out
}
