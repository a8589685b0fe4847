package main

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kinehook/kinehook/source/sourcetest"
)

// The same NATS and Redis source given to two instances on one PostgreSQL
// database runs on one of them at a time (the owner of its partition);
// when that instance is SIGKILLed mid-stream the other takes the source
// over, and every good message is delivered once, in stream order per
// video.
func TestPostgresSourceRunsOnOneInstance(t *testing.T) {
	bin := buildKinehook(t)
	for _, bc := range brokerCases {
		if bc.name != "nats" && bc.name != "redis" {
			continue
		}
		t.Run(bc.name, func(t *testing.T) { sourceClusterRun(t, bin, bc) })
	}
}

func sourceClusterRun(t *testing.T, bin string, bc brokerCase) {
	const total = 4000
	dsn, _ := privatePostgres(t)
	sink := sourcetest.NewSink(t)
	const admin = "kh_admin_source_cluster_key"
	env := []string{"KINEHOOK_ADMIN_KEY=" + admin, "KINEHOOK_API_RATE_LIMIT=0", "KINEHOOK_DATABASE=" + dsn, "KINEHOOK_ENCRYPTION_KEY=" + testEncryptionKey}
	args := []string{"--allow-private-networks", "--retry-schedule", "200ms,500ms,500ms,500ms,500ms"}
	dir := t.TempDir()
	p := startServe(t, bin, filepath.Join(dir, "setup"), env, args...)
	var prj struct {
		ID     string `json:"id"`
		APIKey string `json:"api_key"`
	}
	p.mustCall("POST", "/v1/projects", admin, map[string]any{"name": "source cluster " + bc.name}, 201, &prj)
	p.mustCall("POST", "/v1/projects/"+prj.ID+"/endpoints", prj.APIKey, map[string]any{"url": sink.URL}, 201, nil)
	if err := p.stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}

	srcURL, publish := bc.setup(t)
	publish(0, total)
	args = append(args, "--source", srcURL+"&project="+prj.ID+"&name="+bc.name)
	procs := []*serveProc{startServe(t, bin, filepath.Join(dir, "a"), env, args...), startServe(t, bin, filepath.Join(dir, "b"), env, args...)}
	waitE2E(t, 60*time.Second, "a share of the messages delivered", func() bool { return sink.Delivered() >= total/5 })
	running := func(p *serveProc) bool { return strings.Contains(p.stderr.String(), "ingest source started") }
	var holder, other *serveProc
	switch {
	case running(procs[0]) && !running(procs[1]):
		holder, other = procs[0], procs[1]
	case running(procs[1]) && !running(procs[0]):
		holder, other = procs[1], procs[0]
	default:
		t.Fatalf("the source must run on exactly one instance: a %v, b %v", running(procs[0]), running(procs[1]))
	}
	if err := holder.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var ee *exec.ExitError
	if err := <-holder.done; !errors.As(err, &ee) {
		t.Fatalf("SIGKILL: %v", err)
	}
	killedAt := sink.Delivered()
	good := 0
	for i := range total {
		if !sourceBad(i) {
			good++
		}
	}
	waitE2E(t, 90*time.Second, "every good message delivered by the other instance", func() bool { return sink.Delivered() >= good })
	if !running(other) {
		t.Fatal("the other instance never started the source")
	}
	t.Logf("%s: holder killed after %d of %d deliveries; the other took over", bc.name, killedAt, good)
	sink.Check(t, total, sourceBad)
	if n := strings.Count(other.stderr.String(), "ingest source started"); n != 1 {
		t.Errorf("the surviving instance started the source %s times, want once", strconv.Itoa(n))
	}
	if err := other.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v\nstderr: %s", err, tail(other.stderr.String(), 2000))
	}
}
