// Package bodylimittest helps test what a client that writes its whole
// oversized body before reading the answer gets from a kinehook server: it
// gives both ends small socket buffers, since loopback's are large enough
// (tens of MiB) to swallow a whole body and hide the reset a real network
// path shows.
package bodylimittest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// SmallBuffers is the socket buffer size of both ends.
const SmallBuffers = 32 << 10

// NewServer starts h on loopback with a small receive buffer per
// connection, closed at the end of the test, and returns its address.
func NewServer(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener = smallBufferListener{ln}
	srv.Start()
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

type smallBufferListener struct{ net.Listener }

func (l smallBufferListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		_ = c.(*net.TCPConn).SetReadBuffer(SmallBuffers)
	}
	return c, err
}

// Dial connects to addr with a small send buffer, closed at the end of the
// test.
func Dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.(*net.TCPConn).SetWriteBuffer(SmallBuffers)
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	return c
}

// WriteContentLength writes a POST of body with its Content-Length; head
// holds the request line and the other headers, each ending in CRLF.
func WriteContentLength(w io.Writer, head string, body []byte) error {
	if _, err := fmt.Fprintf(w, "%sContent-Length: %d\r\n\r\n", head, len(body)); err != nil {
		return err
	}
	_, err := w.Write(body)
	return err
}

// WriteChunked writes a POST of body in 64 KiB chunks.
func WriteChunked(w io.Writer, head string, body []byte) error {
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
}

// ReadResponse reads one answer from c.
func ReadResponse(t *testing.T, c net.Conn) *http.Response {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v (the server reset the connection instead of draining the body)", err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}
