package main

import (
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/client"
)

// followRun is `kinehook events list --follow ...` running in this process
// until stop (Ctrl-C's context cancellation).
type followRun struct {
	out, errOut *syncBuffer
	stop        context.CancelFunc
	done        chan error
}

func startFollow(t *testing.T, args ...string) *followRun {
	t.Helper()
	root := cliRoot()
	r := &followRun{out: &syncBuffer{}, errOut: &syncBuffer{}, done: make(chan error, 1)}
	root.SetArgs(args)
	root.SetOut(r.out)
	root.SetErr(r.errOut)
	ctx, cancel := context.WithCancel(context.Background())
	r.stop = cancel
	go func() { r.done <- root.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

func (r *followRun) wait(t *testing.T) error {
	t.Helper()
	r.stop()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("--follow did not stop when cancelled")
		return nil
	}
}

// lines returns the JSON lines printed so far, decoded.
func jsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var evs []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %q is not JSON: %v", line, err)
		}
		evs = append(evs, m)
	}
	return evs
}

func sendMedia(t *testing.T, c *client.Client, pid, video, status string) string {
	t.Helper()
	ev, err := c.SendEvent(context.Background(), pid, kinehook.EventMediaUpdateStatus, map[string]string{"id": video, "status": status}, "")
	if err != nil {
		t.Fatal(err)
	}
	return ev.ID
}

// --follow prints the newest page oldest first, then each new event once,
// in acceptance order, with the list's filters applied; cancelling it ends
// it without an error.
func TestCLIEventsFollow(t *testing.T) {
	e := newCLIEnv(t)
	p, err := e.admin.CreateProject(context.Background(), "follow")
	if err != nil {
		t.Fatal(err)
	}
	pc := client.New(e.url, p.APIKey)
	old1 := sendMedia(t, pc, p.ID, "v1", "processing")
	old2 := sendMedia(t, pc, p.ID, "v2", "processing")
	base := []string{"--url", e.url, "--key", p.APIKey, "--project", p.ID, "--interval", "100ms"}

	r := startFollow(t, append([]string{"events", "list", "--follow", "--json"}, base...)...)
	waitUntil(t, "the newest page", func() bool { return len(jsonLines(t, r.out.String())) == 2 })
	var want []string
	for range 3 {
		want = append(want, sendMedia(t, pc, p.ID, "v3", "done"))
	}
	if _, err := pc.SendEvent(context.Background(), p.ID, kinehook.EventLiveCreated, map[string]string{"event_id": "l1"}, ""); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the new events", func() bool { return len(jsonLines(t, r.out.String())) == 6 })
	time.Sleep(300 * time.Millisecond) // a few more polls: nothing is printed twice
	if err := r.wait(t); err != nil {
		t.Fatalf("--follow ended with %v\nstderr: %s", err, r.errOut)
	}
	got := jsonLines(t, r.out.String())
	if len(got) != 6 {
		t.Fatalf("printed %d events, want 6:\n%s", len(got), r.out)
	}
	ids := []string{}
	for _, ev := range got {
		ids = append(ids, ev["id"].(string))
	}
	if ids[0] != old1 || ids[1] != old2 || ids[2] != want[0] || ids[3] != want[1] || ids[4] != want[2] || got[5]["event"] != "live.created" {
		t.Errorf("printed %v, want %s %s, then %v and the live event", ids, old1, old2, want)
	}
	if got[2]["data"].(map[string]any)["status"] != "done" {
		t.Errorf("event JSON %v lacks the API's data", got[2])
	}

	// Filters hold while following; the table has its header once.
	r = startFollow(t, append([]string{"events", "list", "-f", "--event", "live.created"}, base...)...)
	waitUntil(t, "the newest page of live events", func() bool { return strings.Count(r.out.String(), "\n") == 2 })
	sendMedia(t, pc, p.ID, "filtered-out-video", "done")
	if _, err := pc.SendEvent(context.Background(), p.ID, kinehook.EventLiveCreated, map[string]string{"event_id": "l2"}, ""); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the new live event", func() bool { return strings.Contains(r.out.String(), "l2") })
	time.Sleep(300 * time.Millisecond)
	if err := r.wait(t); err != nil {
		t.Fatal(err)
	}
	out := r.out.String()
	if strings.Count(out, "ID ") != 1 || strings.Contains(out, "filtered-out-video") || !strings.Contains(out, "l1") || strings.Count(out, "live.created") != 2 {
		t.Errorf("filtered follow printed:\n%s", out)
	}
}

func TestCLIEventsFollowFlags(t *testing.T) {
	e := newCLIEnv(t)
	for _, tc := range []struct{ args, want string }{
		{"--follow --all", "--follow and --all"},
		{"--follow --cursor abc", "--follow and --cursor"},
		{"--follow --until 1h", "--follow and --until"},
		{"--follow --interval 1ms", "--interval 1ms"},
	} {
		args := append([]string{"events", "list", "--url", e.url, "--key", cliAdminKey, "--project", "prj_x"}, strings.Fields(tc.args)...)
		if _, _, err := e.run(t, args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error naming %q", tc.args, err, tc.want)
		}
	}
	// A key the server refuses ends the command with the API's error.
	_, _, err := e.run(t, "events", "list", "--follow", "--url", e.url, "--key", "kh_wrong", "--project", "prj_x")
	if err == nil || !strings.Contains(err.Error(), "unauthorized") {
		t.Errorf("wrong key: %v, want unauthorized", err)
	}
}

// Ctrl-C (SIGINT) ends the real process cleanly, with exit status 0.
func TestCLIEventsFollowInterrupt(t *testing.T) {
	bin := buildKinehook(t)
	e := newCLIEnv(t)
	p, err := e.admin.CreateProject(context.Background(), "sigint")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "events", "list", "--follow", "--url", e.url, "--key", p.APIKey, "--interval", "100ms")
	out, errOut := &syncBuffer{}, &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	waitUntil(t, "the header", func() bool { return strings.HasPrefix(out.String(), "ID ") })
	id := sendMedia(t, client.New(e.url, p.APIKey), p.ID, "v1", "done")
	waitUntil(t, "the new event", func() bool { return strings.Contains(out.String(), id) })
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit after SIGINT: %v\nstderr: %s", err, errOut)
		}
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("still running 10 s after SIGINT")
	}
}
