package app

import (
	"context"
	"strings"
	"testing"

	"github.com/kinehook/kinehook"
)

// TestPublishEvents: each input is held to PublishEvent's rules on its own;
// the valid ones are stored in order in one call, a repeated key is a
// duplicate, and a missing project fails the whole call.
func TestPublishEvents(t *testing.T) {
	a, _ := newTestApp(t)
	ctx := context.Background()
	p, _, err := a.CreateProject(ctx, ProjectInput{Name: "q"})
	if err != nil {
		t.Fatal(err)
	}
	good := `{"event":"media.update.status","data":{"id":"v1","status":"done"}}`
	ins := []EventInput{
		{Body: []byte(good), IdempotencyKey: "k1"},
		{Body: []byte(`{"event":"media.update.status","data":{"id":"v1"}}`)},
		{Body: []byte(`not json`)},
		{Body: []byte(good), IdempotencyKey: strings.Repeat("k", MaxIdempotencyKey+1)},
		{Body: []byte(`{"event":"media.update.status","data":{"id":"v1","status":"done","message":"` + strings.Repeat("x", DefaultMaxEventBytes) + `"}}`)},
		{Body: []byte(good), IdempotencyKey: "k1"},
		{Body: []byte(good)},
	}
	outs, err := a.PublishEvents(ctx, p.ID, ins)
	if err != nil {
		t.Fatal(err)
	}
	wantCodes := []string{"", kinehook.EINVALID, kinehook.EMALFORMED, kinehook.EINVALID, kinehook.ETOOLARGE, "", ""}
	for i, o := range outs {
		if got := kinehook.ErrorCode(o.Err); (o.Err == nil && wantCodes[i] != "") || (o.Err != nil && got != wantCodes[i]) {
			t.Errorf("input %d: err %v, want code %q", i, o.Err, wantCodes[i])
		}
	}
	if outs[0].Published.Duplicate || !outs[5].Published.Duplicate || outs[5].Published.Event.ID != outs[0].Published.Event.ID {
		t.Errorf("repeated key: %+v / %+v", outs[0].Published, outs[5].Published)
	}
	if outs[6].Published.Event.Seq <= outs[0].Published.Event.Seq {
		t.Error("events not stored in input order")
	}
	// A broker's events keep a video's state as the API's do.
	if m, err := a.GetMedia(ctx, p.ID, "v1", false); err != nil || m.Status != "done" {
		t.Errorf("media state of v1 after PublishEvents: %+v, %v", m, err)
	}
	if _, err := a.PublishEvents(ctx, "prj_nope", ins[:1]); kinehook.ErrorCode(err) != kinehook.ENOTFOUND {
		t.Errorf("unknown project: %v", err)
	}

	// Rejected inputs: kept with the error's code and message and the
	// body's first bytes.
	long := []byte(strings.Repeat("y", kinehook.RejectedBodyExcerpt+10))
	if err := a.RecordRejected(ctx, []RejectInput{{ProjectID: p.ID, Source: "s", MessageID: "m1", Body: long, Err: outs[1].Err}}); err != nil {
		t.Fatal(err)
	}
	rs, next, err := a.ListRejected(ctx, p.ID, "", 0, false)
	if err != nil || len(rs) != 1 || next != "" {
		t.Fatalf("ListRejected: %v %d %q", err, len(rs), next)
	}
	if r := rs[0]; r.Code != kinehook.EINVALID || r.Reason != kinehook.ErrorMessage(outs[1].Err) || len(r.Body) != kinehook.RejectedBodyExcerpt || r.BodySize != len(long) {
		t.Errorf("rejected %+v", r)
	}
	if _, _, err := a.ListRejected(ctx, p.ID, "", MaxPageLimit+1, false); kinehook.ErrorCode(err) != kinehook.EINVALID {
		t.Errorf("limit too large: %v", err)
	}
}
