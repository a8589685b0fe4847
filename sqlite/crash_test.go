package sqlite_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/sqlite"
	"github.com/kinehook/kinehook/storetest"
)

const crashEnv = "KINEHOOK_SQLITE_CRASH_CHILD"

// TestCrashChild is the child of TestSIGKILLLosesNothing: it ingests batches
// into the store named by crashEnv forever and prints each committed event id
// once IngestEvents has returned.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("helper process for TestSIGKILLLosesNothing")
	}
	ctx := context.Background()
	s, err := sqlite.Open(ctx, path, sqlite.Options{Logger: quiet})
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	projectID := os.Getenv(crashEnv + "_PROJECT")
	out := bufio.NewWriter(os.Stdout)
	for i := 0; ; i++ {
		evs := benchEvents(projectID, 10, i*10)
		if _, err := s.IngestEvents(ctx, evs); err != nil {
			fmt.Fprintln(out, "ERR", err)
			out.Flush()
			os.Exit(1)
		}
		for _, e := range evs {
			fmt.Fprintln(out, e.ID)
		}
		out.Flush()
	}
}

// TestSIGKILLLosesNothing: every event whose IngestEvents returned before the
// process was SIGKILLed is in the store after a restart, with its delivery
// (synchronous=NORMAL in WAL mode is durable against process death).
func TestSIGKILLLosesNothing(t *testing.T) {
	if os.Getenv(crashEnv) != "" {
		t.Skip("in the child")
	}
	path := filepath.Join(t.TempDir(), "kinehook.db")
	s := openAt(t, path, nil)
	p, _ := fill(t, s, 1, time.Now())
	s.Close()

	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+path, crashEnv+"_PROJECT="+p.ID)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var acked []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && len(acked) < 500 {
		line := sc.Text()
		if strings.HasPrefix(line, "ERR") {
			t.Fatalf("child: %s", line)
		}
		if strings.HasPrefix(line, kinehook.PrefixEvent+"_") {
			acked = append(acked, line)
		}
	}
	// Kill while it is still writing.
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if len(acked) < 500 {
		t.Fatalf("child acknowledged only %d events before it stopped", len(acked))
	}

	s2 := openAt(t, path, nil)
	payloads, err := s2.EventPayloads(t.Context(), acked)
	if err != nil {
		t.Fatal(err)
	}
	if len(payloads) != len(acked) {
		t.Errorf("%d of %d acknowledged events survived SIGKILL", len(payloads), len(acked))
	}
	open := 0
	if err := s2.OpenDeliveries(t.Context(), nil, func(*kinehook.Delivery) error { open++; return nil }); err != nil {
		t.Fatal(err)
	}
	// fill's one event is settled; each acknowledged event has 2 open deliveries.
	if open < 2*len(acked) {
		t.Errorf("%d open deliveries after SIGKILL, want at least %d", open, 2*len(acked))
	}
	storetest.CheckConsistency(t, s2)
}
