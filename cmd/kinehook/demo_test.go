package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestDemoDeliversToTheReceiver(t *testing.T) {
	t.Setenv(serveAdminKeyEnv, "")
	o := &demoOptions{addr: "127.0.0.1:0", rate: "40/s", duration: 3 * time.Second, flaky: 0.2, every: 500 * time.Millisecond, seed: 5}
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := runDemo(ctx, o, &out, &errOut); err != nil {
		t.Fatalf("demo: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errOut.String())
	}
	text := out.String()
	if !regexp.MustCompile(`Dashboard:\s+http://127\.0\.0\.1:\d+/`).MatchString(text) || !regexp.MustCompile(`Sign in with: kh_\S+`).MatchString(text) {
		t.Fatalf("no dashboard URL and key:\n%s", text)
	}
	final := regexp.MustCompile(`final: .*succeeded (\d+)\s+failed (\d+)\s+pending (\d+).*refused (\d+)`).FindStringSubmatch(text)
	if final == nil {
		t.Fatalf("no final summary:\n%s", text)
	}
	succeeded, _ := strconv.Atoi(final[1])
	failed, _ := strconv.Atoi(final[2])
	pending, _ := strconv.Atoi(final[3])
	refused, _ := strconv.Atoi(final[4])
	if succeeded < 40 || failed != 0 || pending != 0 {
		t.Fatalf("succeeded %d failed %d pending %d; want many, 0, 0\n%s", succeeded, failed, pending, text)
	}
	if refused == 0 {
		t.Errorf("the flaky receiver refused nothing, so no retry was shown")
	}
	if !strings.Contains(text, "events after a final status: 0") {
		t.Errorf("the receiver saw events out of order:\n%s", text)
	}
	if n := strings.Count(text, "deliveries: succeeded"); n < 4 {
		t.Errorf("only %d running summary lines in 3 s at a 500 ms period", n)
	}
	m := regexp.MustCompile(`Data folder:\s+(\S+)`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no data folder in output")
	}
	if _, err := os.Stat(m[1]); !os.IsNotExist(err) {
		t.Errorf("data folder %s still exists after the demo (err %v)", m[1], err)
	}
}

func TestDemoStopsCleanlyOnCancel(t *testing.T) {
	t.Setenv(serveAdminKeyEnv, "")
	o := &demoOptions{addr: "127.0.0.1:0", rate: "20/s", every: 300 * time.Millisecond}
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(1500*time.Millisecond, cancel)
	start := time.Now()
	if err := runDemo(ctx, o, &out, &errOut); err != nil {
		t.Fatalf("demo interrupted: %v\n%s\n%s", err, out.String(), errOut.String())
	}
	if el := time.Since(start); el > 15*time.Second {
		t.Errorf("stopping took until %v", el)
	}
	if !strings.Contains(out.String(), "stopped (deliveries as last checked)") {
		t.Errorf("no stop summary:\n%s", out.String())
	}
	if os.Getenv(serveAdminKeyEnv) != "" {
		t.Errorf("the demo left %s set", serveAdminKeyEnv)
	}
}
