package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestEventLineText: the line names time, type, resource, id, status and
// latency; colour only when asked, and an error is shown.
func TestEventLineText(t *testing.T) {
	at := time.Date(2026, 12, 3, 10, 31, 2, 0, time.UTC)
	tests := []struct {
		name  string
		l     eventLine
		color bool
		want  []string
		not   []string
	}{
		{"ok plain", eventLine{Time: at, Event: "media.update.status", Resource: "v1", ID: "msg_1", Status: 200, Duration: 1200 * time.Microsecond},
			false, []string{"10:31:02 media.update.status v1 msg_1 -> 200 1.2ms"}, []string{"\x1b[", "attempt"}},
		{"a retry says so", eventLine{Time: at, Event: "media.update.status", Resource: "v1", ID: "msg_1", Status: 200, Attempt: 3, Duration: time.Millisecond},
			false, []string{"msg_1 -> 200 (attempt 3) 1ms"}, nil},
		{"ok coloured", eventLine{Time: at, Event: "media.update.status", Resource: "v1", ID: "msg_1", Status: 200, Duration: time.Millisecond},
			true, []string{ansiGreen + "200" + ansiReset, ansiBold + "media.update.status"}, nil},
		{"server error red", eventLine{Time: at, Event: "live.enabled", ID: "msg_2", Status: 500}, true, []string{ansiRed + "500"}, nil},
		{"client error yellow", eventLine{Time: at, Event: "live.enabled", ID: "msg_2", Status: 404}, true, []string{ansiYellow + "404"}, nil},
		{"connection error", eventLine{Time: at, Event: "live.enabled", ID: "msg_3", Error: "connection refused"}, false, []string{"msg_3 -> error: connection refused"}, nil},
		{"refused by the API", eventLine{Time: at, Event: "live.enabled", Status: 422, Error: "bad body"}, false, []string{"-> 422 bad body"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.l.text(tt.color)
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("%q lacks %q", got, w)
				}
			}
			for _, w := range tt.not {
				if strings.Contains(got, w) {
					t.Errorf("%q has %q", got, w)
				}
			}
		})
	}
}

// TestColorable: never for a pipe or a buffer, never with NO_COLOR.
func TestColorable(t *testing.T) {
	if colorable(&bytes.Buffer{}) {
		t.Error("a buffer is colourable")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if colorable(w) {
		t.Error("a pipe is colourable")
	}
	if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
		defer tty.Close()
		t.Setenv("NO_COLOR", "1")
		if colorable(tty) {
			t.Error("NO_COLOR is set, yet a terminal is colourable")
		}
	}
	p := newEventPrinter(&bytes.Buffer{}, true)
	if p.color {
		t.Error("JSON output coloured")
	}
}

// TestListenServerFlags: the local receiver's flags are refused with
// --server, the server mode's without it, and --server needs --forward-to.
func TestListenServerFlags(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(t.TempDir(), "cfg"))
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--server", "http://127.0.0.1:1", "--secret", "whsec_x", "--forward-to", "http://127.0.0.1:2/"}, "--secret is for the local receiver"},
		{[]string{"--server", "http://127.0.0.1:1", "--addr", "127.0.0.1:0", "--forward-to", "http://127.0.0.1:2/"}, "--addr is for the local receiver"},
		{[]string{"--events", "media.*"}, "--events needs --server"},
		{[]string{"--key", "kh_x"}, "--key needs --server"},
		{[]string{"--server", "http://127.0.0.1:1", "--key", "kh_x"}, "--server needs --forward-to"},
		{[]string{"--server", "http://127.0.0.1:1", "--key", "kh_x", "--forward-to", "ftp://x"}, "want an http:// or https:// URL"},
	}
	for _, tt := range tests {
		cmd := newListenCmd()
		cmd.SetArgs(tt.args)
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := cmd.ExecuteContext(ctx)
		cancel()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("listen %v: %v, want %q", tt.args, err, tt.want)
		}
	}
}

// TestTriggerServerFlags: trigger needs --url or --server, not both, and
// refuses --url's flags with --server.
func TestTriggerServerFlags(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"live.enabled"}, `required flag(s) "url" not set`},
		{[]string{"live.enabled", "--server", "http://127.0.0.1:1", "--url", "http://127.0.0.1:2/"}, "not both"},
		{[]string{"live.enabled", "--server", "http://127.0.0.1:1", "--secret", "whsec_x"}, "--secret is for --url"},
		{[]string{"live.enabled", "--server", "http://127.0.0.1:1", "--count", "0"}, "--count must be at least 1"},
		{[]string{"nope.type", "--server", "http://127.0.0.1:1"}, "not a catalog event type"},
	}
	for _, tt := range tests {
		if _, _, err := triggerRun(t, tt.args...); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("trigger %v: %v, want %q", tt.args, err, tt.want)
		}
	}
}
