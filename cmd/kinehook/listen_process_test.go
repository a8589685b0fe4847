package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestListenHelperProcess is not a test: TestListenAsAProcess runs the test
// binary with it selected to get a real `kinehook ARGS` process.
func TestListenHelperProcess(t *testing.T) {
	args := os.Getenv("KINEHOOK_LISTEN_HELPER_ARGS")
	if args == "" {
		t.Skip("helper process for TestListenAsAProcess")
	}
	rootCmd.SetArgs(strings.Fields(args))
	if err := rootCmd.Execute(); err != nil {
		os.Stderr.WriteString("kinehook: " + err.Error() + "\n")
		os.Exit(1)
	}
	os.Exit(0)
}

// TestListenAsAProcess runs `kinehook listen --json` as its own process, as a
// user would: its lines reach a pipe as events arrive and SIGINT stops it
// cleanly.
func TestListenAsAProcess(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestListenHelperProcess$")
	cmd.Env = append(os.Environ(), "KINEHOOK_LISTEN_HELPER_ARGS=listen --addr 127.0.0.1:0 --json --secret "+listenSecret)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if _, rest, ok := strings.Cut(sc.Text(), "listening on "); ok {
				a, _, _ := strings.Cut(rest, " ")
				addr <- a
			}
		}
	}()
	var base string
	select {
	case base = <-addr:
	case <-time.After(10 * time.Second):
		t.Fatal("listen did not start")
	}
	lines := make(chan string, 4)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	if out, _, err := triggerRun(t, "media.update.status", "--url", base+"/hook", "--secret", listenSecret); err != nil {
		t.Fatalf("trigger: %v %s", err, out)
	}
	select {
	case l := <-lines:
		var got listenLine
		if err := json.Unmarshal([]byte(l), &got); err != nil || got.Event != "media.update.status" || got.Status != "done" || got.ResourceID != "7127f2d7-0e96-40d0-9a03-2e987c096466" {
			t.Errorf("line = %s (%v)", l, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no line on stdout")
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("listen exited with %v after SIGINT, want 0", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("listen did not stop on SIGINT")
	}
}
