// Package bodylimit reads request bodies up to a limit the way every kinehook
// HTTP server does (the API and the receiver SDK's Handler): a body over the
// limit is refused, and what the client still sends of it is read and thrown
// away (within bounds) before the connection closes, so that a client that
// writes its whole body before reading the answer reads the 413 instead of a
// reset connection.
package bodylimit

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Bounds on the body read and thrown away after a refusal (see drain).
const (
	// MaxDrainBytes is how much of a refused body is read past the limit.
	MaxDrainBytes = 4 << 20
	// DrainTimeout bounds the time spent reading it.
	DrainTimeout = 5 * time.Second
)

// TooLargeError is a body over the limit. Read has set "Connection: close"
// on the answer: the caller answers 413.
type TooLargeError struct {
	Limit int64
	// ContentLength is the declared length, -1 when the body was chunked.
	ContentLength int64
}

func (e *TooLargeError) Error() string {
	if e.ContentLength >= 0 {
		return fmt.Sprintf("body of %d bytes is over the %d-byte limit", e.ContentLength, e.Limit)
	}
	return fmt.Sprintf("body is over the %d-byte limit", e.Limit)
}

// Read reads r's body up to limit bytes. A larger one gives a *TooLargeError,
// after the refused body was drained; any other read error is returned
// wrapped.
func Read(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		// A client that waits for "100 Continue" has sent nothing and will
		// send nothing once it reads the 413: there is nothing to drain.
		if !strings.EqualFold(r.Header.Get("Expect"), "100-continue") {
			drain(w, r.Body, r.ContentLength)
		}
		w.Header().Set("Connection", "close")
		return nil, &TooLargeError{Limit: limit, ContentLength: r.ContentLength}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			drain(w, r.Body, -1) // chunked: a known length over the limit was refused above
			w.Header().Set("Connection", "close")
			return nil, &TooLargeError{Limit: limit, ContentLength: -1}
		}
		return nil, fmt.Errorf("read body: %w", err)
	}
	return body, nil
}

// drain reads and discards what is left of a refused body (remain bytes; -1
// when unknown, as for a chunked body), at most MaxDrainBytes and for at most
// DrainTimeout. Closing a connection with unread request bytes makes the
// kernel send a reset, which a client still writing its body (Python's
// http.client, for one) gets as a broken pipe instead of reading the 413. A
// body known to exceed the bound is not read at all: the reset would come
// anyway.
func drain(w http.ResponseWriter, body io.Reader, remain int64) {
	if remain > MaxDrainBytes {
		return
	}
	rc := http.NewResponseController(w)
	if err := rc.SetReadDeadline(time.Now().Add(DrainTimeout)); err != nil {
		return // no time bound available: do not read without one
	}
	_, _ = io.CopyN(io.Discard, body, MaxDrainBytes)
}
