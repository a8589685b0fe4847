package app

import (
	"context"
	"fmt"
	"time"

	"github.com/kinehook/kinehook"
)

// Rejected-input retention defaults: what `kinehook serve` keeps unless told
// otherwise (--rejected-keep, --rejected-days).
const (
	DefaultRejectedKeep = 1000
	DefaultRejectedDays = 7
)

// Outcome is what became of one input of PublishEvents: published (or a
// duplicate of an earlier event, Published.Duplicate), or refused with Err,
// the *kinehook.Error the API would have answered for the same body.
type Outcome struct {
	Published Published
	Err       error
}

// PublishEvents accepts events taken from a queue, in order: each input is
// validated exactly as PublishEvent validates a posted body (and its
// idempotency key), and the valid ones are stored in one commit, in input
// order, through the engine's PublishBatch. An invalid input does not stop
// the others: its Outcome carries the error. The returned error is for the
// whole call (the project is gone, the store failed, the engine stopped):
// then nothing was stored and the caller should try the inputs again.
func (a *App) PublishEvents(ctx context.Context, projectID string, ins []EventInput) ([]Outcome, error) {
	out := make([]Outcome, len(ins))
	var evs []*kinehook.Event
	var idx []int
	now := a.now().UTC()
	for i, in := range ins {
		ev, err := a.checkEvent(in, now)
		if err != nil {
			out[i].Err = err
			continue
		}
		ev.ProjectID = projectID
		evs = append(evs, ev)
		idx = append(idx, i)
	}
	if err := a.projectExists(ctx, projectID, false); err != nil {
		return nil, err
	}
	if len(evs) == 0 {
		return out, nil
	}
	res, err := a.disp.PublishBatch(ctx, evs)
	if err != nil {
		return nil, fmt.Errorf("publish events: %w", err)
	}
	for j, ev := range evs {
		p := Published{Event: res[j].Event, Duplicate: res[j].Duplicate, Deliveries: len(res[j].Deliveries)}
		if p.Event == nil {
			p.Event = ev
		}
		out[idx[j]].Published = p
	}
	return out, nil
}

// checkEvent applies PublishEvent's checks to one input (the size limit
// too, which the API applies while reading the body).
func (a *App) checkEvent(in EventInput, now time.Time) (*kinehook.Event, error) {
	if int64(len(in.Body)) > a.limits.MaxEventBytes {
		return nil, &kinehook.Error{Code: kinehook.ETOOLARGE, Field: "body", Message: fmt.Sprintf("event body is %d bytes; the limit is %d", len(in.Body), a.limits.MaxEventBytes)}
	}
	ev, _, err := a.newEvent(in, now)
	return ev, err
}

// RejectInput describes one input an ingest source refused.
type RejectInput struct {
	ProjectID string
	Source    string
	MessageID string
	Body      []byte
	// Err is the Outcome's error: its code and message are kept.
	Err error
}

// RecordRejected keeps the inputs an ingest source refused (first
// kinehook.RejectedBodyExcerpt bytes of each body), in one write.
func (a *App) RecordRejected(ctx context.Context, ins []RejectInput) error {
	if a.rejects == nil {
		return errNoRejectStore
	}
	now := a.stamp()
	rs := make([]*kinehook.RejectedInput, len(ins))
	for i, in := range ins {
		body := in.Body
		if len(body) > kinehook.RejectedBodyExcerpt {
			body = body[:kinehook.RejectedBodyExcerpt]
		}
		code, msg := kinehook.ErrorCode(in.Err), kinehook.ErrorMessage(in.Err)
		rs[i] = &kinehook.RejectedInput{
			ID: kinehook.NewID(kinehook.PrefixRejected), ProjectID: in.ProjectID, Source: in.Source, MessageID: in.MessageID,
			Code: code, Reason: msg, Body: append([]byte(nil), body...), BodySize: len(in.Body), ReceivedAt: now,
		}
	}
	if err := a.rejects.RecordRejected(ctx, rs); err != nil {
		return fmt.Errorf("record rejected inputs: %w", err)
	}
	return nil
}

// ListRejected pages a project's rejected inputs newest first (limit 0:
// DefaultPageLimit); it returns the next cursor ("" at the end).
func (a *App) ListRejected(ctx context.Context, pid, cursor string, limit int, projectKnown bool) ([]*kinehook.RejectedInput, string, error) {
	if a.rejects == nil {
		return nil, "", errNoRejectStore
	}
	if limit == 0 {
		limit = DefaultPageLimit
	}
	if limit < 0 || limit > MaxPageLimit {
		return nil, "", &kinehook.Error{Code: kinehook.EINVALID, Field: "limit", Message: fmt.Sprintf("limit must be between 1 and %d", MaxPageLimit)}
	}
	if err := a.projectExists(ctx, pid, projectKnown); err != nil {
		return nil, "", err
	}
	rs, next, err := a.rejects.ListRejected(ctx, pid, cursor, limit)
	if err != nil {
		return nil, "", fmt.Errorf("list rejected inputs: %w", err)
	}
	return rs, next, nil
}

var errNoRejectStore = &kinehook.Error{Code: kinehook.EUNAVAILABLE, Message: "this server's store keeps no rejected inputs"}
