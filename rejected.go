package kinehook

import (
	"context"
	"strconv"
	"time"
)

// RejectedInput is a message an ingest source (package source) took from a
// broker and acknowledged without publishing it, because it failed the
// validation a posted event fails. It is kept so that the project's
// operators can see what their producers got wrong; the message itself is
// gone from the broker.
type RejectedInput struct {
	// ID is "rej_" + a time-ordered id.
	ID        string
	ProjectID string
	// Source names the ingest source, as configured (e.g. "orders").
	Source string
	// MessageID is the broker's identity of the message (stream sequence,
	// Redis entry id, topic/partition/offset, AMQP message id); "" when the
	// broker gives none.
	MessageID string
	// Code is the API error code the same body would get (invalid,
	// malformed, too_large), Reason its message.
	Code   string
	Reason string
	// Body holds the first RejectedBodyExcerpt bytes of the message body;
	// BodySize is its whole size.
	Body     []byte
	BodySize int
	// ReceivedAt is when kinehook took the message.
	ReceivedAt time.Time
}

// RejectedBodyExcerpt bounds the body bytes kept of a rejected input.
const RejectedBodyExcerpt = 1024

// RejectStore keeps rejected inputs: what `kinehook serve` needs to run
// ingest sources, and the API's and dashboard's rejected-input list.
type RejectStore interface {
	// RecordRejected stores rejected inputs. A second record of one
	// (project, source, message id), message id not empty, is ignored: a
	// message redelivered after a crash is recorded once.
	RecordRejected(ctx context.Context, rs []*RejectedInput) error
	// ListRejected pages a project's rejected inputs newest first; cursor
	// is "" or the next cursor of the previous page ("" at the end).
	ListRejected(ctx context.Context, projectID, cursor string, limit int) ([]*RejectedInput, string, error)
	// PruneRejected removes rejected inputs received before before and,
	// when keep > 0, all but the newest keep of each project. It returns how
	// many it removed.
	PruneRejected(ctx context.Context, keep int, before time.Time) (int, error)
}

// EncodeRejectedCursor is the next cursor after a rejected input of stored
// sequence seq (both stores number rows in insertion order).
func EncodeRejectedCursor(seq int64) string { return "r" + strconv.FormatInt(seq, 10) }

// DecodeRejectedCursor reads EncodeRejectedCursor's cursor, EINVALID when
// it is not one.
func DecodeRejectedCursor(c string) (int64, error) {
	if len(c) < 2 || c[0] != 'r' {
		return 0, &Error{Code: EINVALID, Field: "cursor", Message: "cursor is not a cursor of this list"}
	}
	n, err := strconv.ParseInt(c[1:], 10, 64)
	if err != nil || n <= 0 {
		return 0, &Error{Code: EINVALID, Field: "cursor", Message: "cursor is not a cursor of this list"}
	}
	return n, nil
}
