package storetest

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
)

// testRejected: rejected inputs are listed newest first per project, paged,
// recorded once per (source, message id), and pruned by count and by age.
func testRejected(t *testing.T, s kinehook.Store) {
	rs, ok := s.(kinehook.RejectStore)
	if !ok {
		t.Fatalf("store %T is not a kinehook.RejectStore", s)
	}
	ctx := t.Context()
	p1, _ := newProject(t, s, "p1")
	p2, _ := newProject(t, s, "p2")
	base := time.Now().UTC().Truncate(time.Millisecond).Add(-time.Hour)
	mk := func(pid string, i int, msgID string) *kinehook.RejectedInput {
		return &kinehook.RejectedInput{
			ID: kinehook.NewID(kinehook.PrefixRejected), ProjectID: pid, Source: "orders", MessageID: msgID,
			Code: kinehook.EINVALID, Reason: fmt.Sprintf("reason %d", i), Body: []byte(fmt.Sprintf(`{"n":%d}`, i)),
			BodySize: 5000 + i, ReceivedAt: base.Add(time.Duration(i) * time.Second),
		}
	}
	var want []*kinehook.RejectedInput
	for i := range 5 {
		r := mk(p1.ID, i, fmt.Sprintf("S:%d", i))
		requireNoErr(t, rs.RecordRejected(ctx, []*kinehook.RejectedInput{r}), "RecordRejected")
		want = append(want, r)
	}
	// A redelivered message (same source and message id) is recorded once;
	// one without a message id is always recorded; another project's list is apart.
	requireNoErr(t, rs.RecordRejected(ctx, []*kinehook.RejectedInput{mk(p1.ID, 9, "S:2"), mk(p2.ID, 0, "S:0")}), "RecordRejected again")
	noID := mk(p1.ID, 5, "")
	noID.Body = nil
	requireNoErr(t, rs.RecordRejected(ctx, []*kinehook.RejectedInput{noID}), "RecordRejected without message id")
	want = append(want, noID)

	var got []*kinehook.RejectedInput
	cursor := ""
	for pages := 0; ; pages++ {
		page, next, err := rs.ListRejected(ctx, p1.ID, cursor, 4)
		requireNoErr(t, err, "ListRejected")
		if len(page) > 4 {
			t.Fatalf("page of %d, limit 4", len(page))
		}
		got = append(got, page...)
		if next == "" {
			break
		}
		if pages > 5 {
			t.Fatal("ListRejected never ends")
		}
		cursor = next
	}
	if len(got) != len(want) {
		t.Fatalf("listed %d rejected inputs, want %d", len(got), len(want))
	}
	for i, g := range got {
		w := want[len(want)-1-i] // newest first
		if g.ID != w.ID || g.ProjectID != w.ProjectID || g.Source != w.Source || g.MessageID != w.MessageID ||
			g.Code != w.Code || g.Reason != w.Reason || !bytes.Equal(g.Body, w.Body) || g.BodySize != w.BodySize {
			t.Errorf("rejected %d = %+v, want %+v", i, g, w)
		}
		assertTimeEq(t, "ReceivedAt", g.ReceivedAt, w.ReceivedAt)
	}
	if _, _, err := rs.ListRejected(ctx, p1.ID, "bogus", 10); kinehook.ErrorCode(err) != kinehook.EINVALID {
		t.Errorf("bad cursor: %v, want invalid", err)
	}
	other, _, err := rs.ListRejected(ctx, p2.ID, "", 10)
	requireNoErr(t, err, "ListRejected p2")
	if len(other) != 1 {
		t.Errorf("project 2 has %d rejected inputs, want 1", len(other))
	}

	// Prune by age: the two oldest of p1 (and p2's one, as old as p1's first).
	n, err := rs.PruneRejected(ctx, 0, base.Add(1500*time.Millisecond))
	requireNoErr(t, err, "PruneRejected by age")
	if n != 3 {
		t.Errorf("pruned %d by age, want 3", n)
	}
	// Prune by count: keep the newest 2 of p1.
	n, err = rs.PruneRejected(ctx, 2, base.Add(-time.Hour))
	requireNoErr(t, err, "PruneRejected by count")
	if n != 2 {
		t.Errorf("pruned %d by count, want 2", n)
	}
	left, _, err := rs.ListRejected(ctx, p1.ID, "", 10)
	requireNoErr(t, err, "ListRejected after prune")
	if len(left) != 2 || left[0].ID != want[5].ID || left[1].ID != want[4].ID {
		t.Errorf("after pruning: %d left, want the newest 2", len(left))
	}
}
