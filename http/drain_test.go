package http

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/internal/bodylimit"
	"github.com/kinehook/kinehook/internal/bodylimit/bodylimittest"
)

// TestOversizedBodyReadsThe413 is Python's http.client against the API: the
// client writes its whole oversized body, and only then reads the answer. It
// must read the 413 JSON error, not a reset connection: the server drains
// the refused body (up to bodylimit.MaxDrainBytes) before closing. Both framings are
// covered: a Content-Length over the limit (refused before reading) and a
// chunked body that crosses it. A client that asked for "100 Continue" gets
// the 413 at once, with nothing drained.
func TestOversizedBodyReadsThe413(t *testing.T) {
	e := newEnv(t)
	pid, key := e.project("p")
	addr := bodylimittest.NewServer(t, e.srv)
	path := "/v1/projects/" + pid + "/events"
	body := bytes.Repeat([]byte("x"), 3<<20) // 3 MiB: over the 1 MiB limit, within the drain bound
	head := "POST " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nAuthorization: Bearer " + key + "\r\nContent-Type: application/json\r\n"

	tests := []struct {
		name    string
		request func(w io.Writer) error
	}{
		{"content-length", func(w io.Writer) error { return bodylimittest.WriteContentLength(w, head, body) }},
		{"chunked", func(w io.Writer) error { return bodylimittest.WriteChunked(w, head, body) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := bodylimittest.Dial(t, addr)
			// Write everything first, as http.client does.
			if err := tt.request(c); err != nil {
				t.Fatalf("writing the body: %v (the server reset the connection instead of draining it)", err)
			}
			read413(t, c)
		})
	}

	t.Run("expect-continue", func(t *testing.T) {
		c := bodylimittest.Dial(t, addr)
		start := time.Now()
		if _, err := fmt.Fprintf(c, "%sContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", head, len(body)); err != nil {
			t.Fatal(err)
		}
		read413(t, c)
		if d := time.Since(start); d > bodylimit.DrainTimeout/2 {
			t.Errorf("the 413 took %v: the server waited for a body the client never sends", d)
		}
	})
}

// read413 reads one answer from c and checks it is the 413 JSON error of a
// closing connection.
func read413(t *testing.T, c net.Conn) {
	t.Helper()
	resp := bodylimittest.ReadResponse(t, c)
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
