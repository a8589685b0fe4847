package http

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	nethttp "net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
)

// TestOversizedBodyReadsThe413 is Python's http.client against the API: the
// client writes its whole oversized body, and only then reads the answer. It
// must read the 413 JSON error, not a reset connection: the server drains
// the refused body (up to maxDrainBytes) before closing. Both framings are
// covered: a Content-Length over the limit (refused before reading) and a
// chunked body that crosses it. A client that asked for "100 Continue" gets
// the 413 at once, with nothing drained.
func TestOversizedBodyReadsThe413(t *testing.T) {
	e := newEnv(t)
	pid, key := e.project("p")
	// Loopback buffers are large enough (tens of MiB) to swallow a whole
	// body and hide the reset; small socket buffers on both sides stand
	// for a real network path, where they are smaller than the body.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewUnstartedServer(e.srv)
	api.Listener = smallBufferListener{ln}
	api.Start()
	t.Cleanup(api.Close)
	addr := strings.TrimPrefix(api.URL, "http://")
	path := "/v1/projects/" + pid + "/events"
	body := bytes.Repeat([]byte("x"), 3<<20) // 3 MiB: over the 1 MiB limit, within the drain bound
	head := "POST " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nAuthorization: Bearer " + key + "\r\nContent-Type: application/json\r\n"

	tests := []struct {
		name    string
		request func(w io.Writer) error
	}{
		{"content-length", func(w io.Writer) error {
			if _, err := fmt.Fprintf(w, "%sContent-Length: %d\r\n\r\n", head, len(body)); err != nil {
				return err
			}
			_, err := w.Write(body)
			return err
		}},
		{"chunked", func(w io.Writer) error {
			if _, err := io.WriteString(w, head+"Transfer-Encoding: chunked\r\n\r\n"); err != nil {
				return err
			}
			for off := 0; off < len(body); off += 64 << 10 {
				chunk := body[off:min(off+64<<10, len(body))]
				if _, err := fmt.Fprintf(w, "%x\r\n%s\r\n", len(chunk), chunk); err != nil {
					return err
				}
			}
			_, err := io.WriteString(w, "0\r\n\r\n")
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialSmall(t, addr)
			// Write everything first, as http.client does.
			if err := tt.request(c); err != nil {
				t.Fatalf("writing the body: %v (the server reset the connection instead of draining it)", err)
			}
			read413(t, c)
		})
	}

	t.Run("expect-continue", func(t *testing.T) {
		c := dialSmall(t, addr)
		start := time.Now()
		if _, err := fmt.Fprintf(c, "%sContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", head, len(body)); err != nil {
			t.Fatal(err)
		}
		read413(t, c)
		if d := time.Since(start); d > drainTimeout/2 {
			t.Errorf("the 413 took %v: the server waited for a body the client never sends", d)
		}
	})
}

// read413 reads one answer from c and checks it is the 413 JSON error of a
// closing connection.
func read413(t *testing.T, c net.Conn) {
	t.Helper()
	resp, err := nethttp.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	defer resp.Body.Close()
	var eb struct {
		Error struct{ Code, Message string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&eb); err != nil {
		t.Fatalf("413 body: %v", err)
	}
	if resp.StatusCode != 413 || eb.Error.Code != kinehook.ETOOLARGE || !strings.Contains(eb.Error.Message, "larger than") || !resp.Close {
		t.Errorf("got %d %+v close=%v; want 413 %s on a closing connection", resp.StatusCode, eb, resp.Close, kinehook.ETOOLARGE)
	}
}

// smallBuffers is the socket buffer size of both ends in the test.
const smallBuffers = 32 << 10

// smallBufferListener gives every accepted connection a small receive
// buffer.
type smallBufferListener struct{ net.Listener }

func (l smallBufferListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		_ = c.(*net.TCPConn).SetReadBuffer(smallBuffers)
	}
	return c, err
}

// dialSmall connects to addr with a small send buffer, closed at the end
// of the test.
func dialSmall(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.(*net.TCPConn).SetWriteBuffer(smallBuffers)
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return c
}
