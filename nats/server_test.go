package nats_test

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// natsServerBin is Debian's nats-server, which the tests start on their
// own ports (never the machine's shared server).
const natsServerBin = "/usr/sbin/nats-server"

// server is a nats-server process of the test's own, with JetStream.
type server struct {
	t    testing.TB
	port string
	dir  string
	args []string
	url  string
	cmd  *exec.Cmd
	log  bytes.Buffer
}

// startServer runs nats-server -js on a free loopback port with its store
// in a temporary directory, stopped when the test ends.
func startServer(t testing.TB, args ...string) *server {
	t.Helper()
	if _, err := os.Stat(natsServerBin); err != nil {
		t.Skipf("%s not installed", natsServerBin)
	}
	s := &server{t: t, port: freePort(t), dir: t.TempDir(), args: args}
	s.url = "nats://127.0.0.1:" + s.port
	s.start()
	t.Cleanup(s.kill)
	return s
}

// start runs the process (again, on the same port and store) and waits
// until it accepts connections.
func (s *server) start() {
	s.t.Helper()
	args := append([]string{"-a", "127.0.0.1", "-p", s.port, "-js", "-sd", s.dir}, s.args...)
	s.cmd = exec.Command(natsServerBin, args...)
	s.cmd.Stdout, s.cmd.Stderr = &s.log, &s.log
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start nats-server: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+s.port, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatalf("nats-server on port %s did not start: %s", s.port, s.log.String())
}

// kill stops the process at once (SIGKILL), as a crash would.
func (s *server) kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	_ = s.cmd.Wait()
	s.cmd = nil
}
