package redis_test

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"
)

// redisServerBin is Debian's redis-server, which the tests start on their
// own ports (never stopping the machine's shared server).
const redisServerBin = "/usr/bin/redis-server"

// server is a redis-server process of the test's own.
type server struct {
	t    testing.TB
	port string
	dir  string
	args []string
	url  string
	cmd  *exec.Cmd
	log  syncBuffer
}

// startServer runs redis-server on a free loopback port with its files in
// a temporary directory, killed when the test ends. args are extra
// settings (e.g. "--appendonly", "yes").
func startServer(t testing.TB, args ...string) *server {
	t.Helper()
	if _, err := os.Stat(redisServerBin); err != nil {
		t.Skipf("%s not installed", redisServerBin)
	}
	s := &server{t: t, port: freePort(t), dir: t.TempDir(), args: args}
	s.url = "redis://127.0.0.1:" + s.port + "/0"
	s.start()
	t.Cleanup(s.kill)
	return s
}

// start runs the process (again, on the same port and directory) and
// waits until it answers PING.
func (s *server) start() {
	s.t.Helper()
	args := append([]string{"--port", s.port, "--bind", "127.0.0.1", "--save", "", "--dir", s.dir, "--daemonize", "no"}, s.args...)
	s.cmd = exec.Command(redisServerBin, args...)
	s.cmd.Stdout, s.cmd.Stderr = &s.log, &s.log
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+s.port, 200*time.Millisecond)
		if err == nil {
			_ = c.SetDeadline(time.Now().Add(time.Second))
			_, _ = c.Write([]byte("PING\r\n"))
			buf := make([]byte, 7)
			n, _ := c.Read(buf)
			c.Close()
			if bytes.HasPrefix(buf[:n], []byte("+PONG")) {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatalf("redis-server on port %s did not start: %s", s.port, s.log.String())
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

// syncBuffer is a bytes.Buffer safe for the process's writes and the
// test's reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// freePort is a loopback port nothing listens on.
func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	return port
}
