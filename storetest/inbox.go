package storetest

import (
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
)

func newInboxSource(t testing.TB, s kinehook.Store, projectID string) *kinehook.InboxSource {
	t.Helper()
	at := now()
	src := &kinehook.InboxSource{ID: kinehook.NewID(kinehook.PrefixInbox), ProjectID: projectID, Name: "kinescope prod",
		Type: kinehook.InboxKinescope, Login: "kin-" + randHex(6), Password: "pw-" + randHex(12), CreatedAt: at, UpdatedAt: at}
	requireNoErr(t, s.CreateInboxSource(t.Context(), src), "CreateInboxSource")
	return src
}

func testInboxSources(t *testing.T, s kinehook.Store) {
	ctx := t.Context()
	p, _ := newProject(t, s, "inbox")
	other, _ := newProject(t, s, "other")
	a := newInboxSource(t, s, p.ID)
	b := &kinehook.InboxSource{ID: kinehook.NewID(kinehook.PrefixInbox), ProjectID: p.ID, Name: "peer", Type: kinehook.InboxStandardWebhooks,
		Secret: "whsec_" + randHex(16), CreatedAt: a.CreatedAt.Add(time.Millisecond), UpdatedAt: a.CreatedAt.Add(time.Millisecond)}
	requireNoErr(t, s.CreateInboxSource(ctx, b), "CreateInboxSource b")

	same := func(what string, got, want *kinehook.InboxSource) {
		t.Helper()
		if got.ID != want.ID || got.ProjectID != want.ProjectID || got.Name != want.Name || got.Type != want.Type ||
			got.Login != want.Login || got.Password != want.Password || got.Secret != want.Secret {
			t.Errorf("%s = %+v, want %+v", what, got, want)
		}
		assertTimeEq(t, what+" CreatedAt", got.CreatedAt, want.CreatedAt)
		assertTimeEq(t, what+" UpdatedAt", got.UpdatedAt, want.UpdatedAt)
	}
	got, err := s.GetInboxSource(ctx, p.ID, a.ID)
	requireNoErr(t, err, "GetInboxSource")
	same("GetInboxSource", got, a)
	got, err = s.InboxSourceByID(ctx, b.ID)
	requireNoErr(t, err, "InboxSourceByID")
	same("InboxSourceByID", got, b)
	_, err = s.GetInboxSource(ctx, other.ID, a.ID)
	assertNotFound(t, err, "GetInboxSource of another project")
	_, err = s.InboxSourceByID(ctx, kinehook.NewID(kinehook.PrefixInbox))
	assertNotFound(t, err, "InboxSourceByID of an unknown id")

	list, err := s.ListInboxSources(ctx, p.ID)
	requireNoErr(t, err, "ListInboxSources")
	if len(list) != 2 || list[0].ID != a.ID || list[1].ID != b.ID {
		t.Fatalf("ListInboxSources = %v, want [a b] oldest first", list)
	}
	if l, err := s.ListInboxSources(ctx, other.ID); err != nil || len(l) != 0 {
		t.Errorf("ListInboxSources of another project = %v, %v", l, err)
	}

	a.Name, a.Password, a.UpdatedAt = "renamed", "pw-"+randHex(12), now().Add(time.Second)
	requireNoErr(t, s.UpdateInboxSource(ctx, a), "UpdateInboxSource")
	got, err = s.GetInboxSource(ctx, p.ID, a.ID)
	requireNoErr(t, err, "GetInboxSource after update")
	same("updated source", got, a)
	wrong := *a
	wrong.ProjectID = other.ID
	assertNotFound(t, s.UpdateInboxSource(ctx, &wrong), "UpdateInboxSource in another project")

	assertNotFound(t, s.DeleteInboxSource(ctx, other.ID, a.ID), "DeleteInboxSource in another project")
	requireNoErr(t, s.DeleteInboxSource(ctx, p.ID, a.ID), "DeleteInboxSource")
	_, err = s.GetInboxSource(ctx, p.ID, a.ID)
	assertNotFound(t, err, "GetInboxSource after delete")
	assertNotFound(t, s.DeleteInboxSource(ctx, p.ID, a.ID), "DeleteInboxSource twice")
}

// sourceEvent is an event as the inbox makes it from a posted body.
func sourceEvent(projectID, sourceID string, body string, at time.Time) *kinehook.Event {
	p, err := kinehook.ParseLenient([]byte(body))
	if err != nil {
		panic(err)
	}
	sum := sha256.Sum256([]byte(body))
	return &kinehook.Event{ID: kinehook.NewID(kinehook.PrefixEvent), ProjectID: projectID, Type: p.Type, Payload: []byte(body),
		ResourceKey: p.ResourceKey(), CreatedAt: at, SourceID: sourceID, BodyHash: sum[:]}
}

func testInboxRetries(t *testing.T, s kinehook.Store) {
	ctx := t.Context()
	p, _ := newProject(t, s, "inbox")
	newEndpoint(t, s, p.ID, nil)
	src := newInboxSource(t, s, p.ID)
	src2 := newInboxSource(t, s, p.ID)
	t0 := now()
	conn := `{"event":"live.connected","data":{"event_id":"live-1"}}`
	disc := `{"event":"live.disconnected","data":{"event_id":"live-1"}}`

	first := ingest(t, s, sourceEvent(p.ID, src.ID, conn, t0))[0]
	if first.Duplicate || len(first.Deliveries) != 1 || first.Event.SourceID != src.ID {
		t.Fatalf("first = %+v", first)
	}
	// The same body again within the window: a retry, stored once.
	retry := ingest(t, s, sourceEvent(p.ID, src.ID, conn, t0.Add(time.Minute)))[0]
	if !retry.Duplicate || retry.Event.ID != first.Event.ID || len(retry.Deliveries) != 0 {
		t.Fatalf("retry = %+v, want a duplicate of %s", retry, first.Event.ID)
	}
	// The same body from another source is its own event.
	if r := ingest(t, s, sourceEvent(p.ID, src2.ID, conn, t0.Add(time.Minute)))[0]; r.Duplicate {
		t.Errorf("the same body from another source was taken for a retry")
	}
	// connected, disconnected, connected: the second connected is new.
	ingest(t, s, sourceEvent(p.ID, src.ID, disc, t0.Add(2*time.Minute)))
	again := ingest(t, s, sourceEvent(p.ID, src.ID, conn, t0.Add(3*time.Minute)))[0]
	if again.Duplicate {
		t.Fatalf("connected after disconnected was taken for a retry")
	}
	// After the window, an equal body is new.
	late := ingest(t, s, sourceEvent(p.ID, src.ID, conn, t0.Add(3*time.Minute+kinehook.InboxRetryWindow)))[0]
	if late.Duplicate {
		t.Errorf("an equal body after %v was taken for a retry", kinehook.InboxRetryWindow)
	}
	// In one batch: two copies are one event.
	body := `{"event":"media.update.status","data":{"id":"vid-9","status":"done"}}`
	res := ingest(t, s, sourceEvent(p.ID, src.ID, body, t0.Add(10*time.Minute)), sourceEvent(p.ID, src.ID, body, t0.Add(10*time.Minute)))
	if res[0].Duplicate || !res[1].Duplicate || res[1].Event.ID != res[0].Event.ID {
		t.Errorf("a batch of two equal bodies: %v/%v", res[0].Duplicate, res[1].Duplicate)
	}
	// The API's events (no source) are never retries.
	api := newEvent(p.ID, kinehook.EventLiveConnected, "live-1")
	if r := ingest(t, s, api, newEvent(p.ID, kinehook.EventLiveConnected, "live-1"))[1]; r.Duplicate {
		t.Errorf("an API event was taken for a retry")
	}

	evs := listAll(t, s, p.ID, kinehook.EventFilter{SourceID: src.ID})
	if len(evs) != 5 {
		t.Fatalf("events of the source = %d, want 5 (first, disconnected, again, late, batch)", len(evs))
	}
	for _, ev := range evs {
		if ev.SourceID != src.ID {
			t.Errorf("event %s source_id = %q", ev.ID, ev.SourceID)
		}
	}
	got, err := s.GetEvent(ctx, p.ID, first.Event.ID)
	requireNoErr(t, err, "GetEvent")
	if got.SourceID != src.ID {
		t.Errorf("GetEvent source_id = %q, want %q", got.SourceID, src.ID)
	}
	if n := len(listAll(t, s, p.ID, kinehook.EventFilter{SourceID: src2.ID})); n != 1 {
		t.Errorf("events of source 2 = %d, want 1", n)
	}
}

func mediaEvent(projectID, id, status, msg string, at time.Time) *kinehook.Event {
	body := fmt.Sprintf(`{"event":"media.update.status","data":{"id":%q,"status":%q,"message":%q}}`, id, status, msg)
	return &kinehook.Event{ID: kinehook.NewID(kinehook.PrefixEvent), ProjectID: projectID, Type: kinehook.EventMediaUpdateStatus,
		Payload: []byte(body), ResourceKey: id, CreatedAt: at}
}

func liveEvent(projectID, id, typ string, at time.Time) *kinehook.Event {
	body := fmt.Sprintf(`{"event":%q,"data":{"event_id":%q}}`, typ, id)
	return &kinehook.Event{ID: kinehook.NewID(kinehook.PrefixEvent), ProjectID: projectID, Type: kinehook.EventType(typ),
		Payload: []byte(body), ResourceKey: id, CreatedAt: at}
}

func testState(t *testing.T, s kinehook.Store) {
	ctx := t.Context()
	p, _ := newProject(t, s, "state")
	other, _ := newProject(t, s, "other")
	t0 := now().Add(-time.Hour)
	// One batch with two events of one video, then another batch.
	r := ingest(t, s, mediaEvent(p.ID, "v1", "uploading", "", t0), mediaEvent(p.ID, "v1", "processing", "", t0.Add(time.Second)),
		mediaEvent(p.ID, "v2", "pending", "", t0.Add(2*time.Second)))
	if r[0].State == nil || r[0].State.Prev != "" || r[0].State.Status != "uploading" || r[1].State.Prev != "uploading" {
		t.Errorf("state changes = %+v, %+v", r[0].State, r[1].State)
	}
	r = ingest(t, s, mediaEvent(p.ID, "v1", "error", "codec not supported", t0.Add(10*time.Second)),
		mediaEvent(p.ID, "v3", "shiny-new", "", t0.Add(11*time.Second)), mediaEvent(other.ID, "v1", "done", "", t0.Add(12*time.Second)))
	if r[0].State == nil || r[0].State.Processing != 10*time.Second || r[0].State.Status != "error" {
		t.Errorf("error change = %+v, want 10s of processing", r[0].State)
	}
	st, err := s.GetState(ctx, p.ID, kinehook.StateMedia, "v1")
	requireNoErr(t, err, "GetState v1")
	if st.Status != "error" || st.Message != "codec not supported" || len(st.History) != 3 || !st.UpdatedAt.Equal(t0.Add(10*time.Second)) {
		t.Fatalf("v1 = %+v", st)
	}
	for i, want := range []string{"uploading", "processing", "error"} {
		if st.History[i].Status != want || st.History[i].EventID == "" {
			t.Errorf("v1 history[%d] = %+v, want %s", i, st.History[i], want)
		}
	}
	if st, err := s.GetState(ctx, p.ID, kinehook.StateMedia, "v3"); err != nil || st.Status != "shiny-new" {
		t.Errorf("unknown status: %+v, %v (kept as it came)", st, err)
	}
	if st, err := s.GetState(ctx, other.ID, kinehook.StateMedia, "v1"); err != nil || st.Status != "done" {
		t.Errorf("other project's v1: %+v, %v", st, err)
	}
	_, err = s.GetState(ctx, p.ID, kinehook.StateMedia, "nope")
	assertNotFound(t, err, "GetState of an unknown video")
	_, err = s.GetState(ctx, p.ID, kinehook.StateLive, "v1")
	assertNotFound(t, err, "GetState live of a video id")

	// Live: connected, disconnected, connected.
	ingest(t, s, liveEvent(p.ID, "s1", "live.created", t0), liveEvent(p.ID, "s1", "live.connected", t0.Add(time.Second)))
	ingest(t, s, liveEvent(p.ID, "s1", "live.disconnected", t0.Add(2*time.Second)))
	ingest(t, s, liveEvent(p.ID, "s1", "live.connected", t0.Add(3*time.Second)), liveEvent(p.ID, "s2", "live.paused", t0.Add(4*time.Second)))
	fin := &kinehook.Event{ID: kinehook.NewID(kinehook.PrefixEvent), ProjectID: p.ID, Type: kinehook.EventLiveFinished,
		Payload: []byte(`{"event":"live.finished","data":{"event_id":"s3","video_id":"rec-1"}}`), ResourceKey: "s3", CreatedAt: t0.Add(5 * time.Second)}
	ingest(t, s, fin)
	live, err := s.GetState(ctx, p.ID, kinehook.StateLive, "s1")
	requireNoErr(t, err, "GetState s1")
	if live.Status != "connected" || len(live.History) != 4 {
		t.Errorf("s1 = %+v", live)
	}
	if l, err := s.GetState(ctx, p.ID, kinehook.StateLive, "s2"); err != nil || l.Status != "paused" {
		t.Errorf("unknown live type: %+v, %v", l, err)
	}
	if l, err := s.GetState(ctx, p.ID, kinehook.StateLive, "s3"); err != nil || l.Status != "finished" || l.VideoID != "rec-1" {
		t.Errorf("finished: %+v, %v", l, err)
	}

	// Listing: newest update first, by status, since, paged.
	all, next, err := s.ListStates(ctx, p.ID, kinehook.StateMedia, kinehook.StateFilter{})
	requireNoErr(t, err, "ListStates")
	if len(all) != 3 || next != "" || all[0].ID != "v3" || all[1].ID != "v1" || all[2].ID != "v2" {
		t.Errorf("ListStates = %v (next %q), want v3 v1 v2", stateIDs(all), next)
	}
	errs, _, err := s.ListStates(ctx, p.ID, kinehook.StateMedia, kinehook.StateFilter{Status: "error"})
	requireNoErr(t, err, "ListStates error")
	if len(errs) != 1 || errs[0].ID != "v1" {
		t.Errorf("ListStates status=error = %v", stateIDs(errs))
	}
	since, _, err := s.ListStates(ctx, p.ID, kinehook.StateMedia, kinehook.StateFilter{Since: t0.Add(5 * time.Second)})
	requireNoErr(t, err, "ListStates since")
	if len(since) != 2 {
		t.Errorf("ListStates since = %v, want v3 v1", stateIDs(since))
	}
	var paged []string
	f := kinehook.StateFilter{Limit: 1}
	for range 10 {
		page, next, err := s.ListStates(ctx, p.ID, kinehook.StateMedia, f)
		requireNoErr(t, err, "ListStates page")
		paged = append(paged, stateIDs(page)...)
		if next == "" {
			break
		}
		f.Cursor = next
	}
	if fmt.Sprint(paged) != "[v3 v1 v2]" {
		t.Errorf("paged = %v", paged)
	}
	_, _, err = s.ListStates(ctx, p.ID, kinehook.StateMedia, kinehook.StateFilter{Cursor: "garbage"})
	if kinehook.ErrorCode(err) != kinehook.EINVALID {
		t.Errorf("a bad cursor: %v, want EINVALID", err)
	}
	conn, _, err := s.ListStates(ctx, p.ID, kinehook.StateLive, kinehook.StateFilter{Status: "connected"})
	requireNoErr(t, err, "ListStates live")
	if len(conn) != 1 || conn[0].ID != "s1" {
		t.Errorf("connected streams = %v", stateIDs(conn))
	}
	counts, err := s.CountStates(ctx, p.ID, kinehook.StateMedia)
	requireNoErr(t, err, "CountStates")
	want := []kinehook.StateCount{{ProjectID: p.ID, Status: "error", Count: 1, Oldest: t0.Add(10 * time.Second)},
		{ProjectID: p.ID, Status: "pending", Count: 1, Oldest: t0.Add(2 * time.Second)}, {ProjectID: p.ID, Status: "shiny-new", Count: 1, Oldest: t0.Add(11 * time.Second)}}
	if len(counts) != len(want) {
		t.Fatalf("CountStates = %v, want %v", counts, want)
	}
	for i := range want {
		if counts[i].ProjectID != want[i].ProjectID || counts[i].Status != want[i].Status || counts[i].Count != want[i].Count || !counts[i].Oldest.Equal(want[i].Oldest) {
			t.Errorf("CountStates[%d] = %+v, want %+v", i, counts[i], want[i])
		}
	}
	allCounts, err := s.CountStates(ctx, "", kinehook.StateMedia)
	requireNoErr(t, err, "CountStates all")
	mine := 0
	for _, c := range allCounts {
		if c.ProjectID == p.ID || c.ProjectID == other.ID {
			mine++
		}
	}
	if mine != 4 { // the store may hold other tests' projects
		t.Errorf("CountStates of all projects = %v, want 4 rows of these two", allCounts)
	}
}

func testStateHistoryBound(t *testing.T, s kinehook.Store) {
	p, _ := newProject(t, s, "bound")
	t0 := now().Add(-time.Hour)
	n := kinehook.StateHistoryLimit + 7
	for i := range n {
		typ := "live.connected"
		if i%2 == 1 {
			typ = "live.disconnected"
		}
		ingest(t, s, liveEvent(p.ID, "s", typ, t0.Add(time.Duration(i)*time.Second)))
	}
	st, err := s.GetState(t.Context(), p.ID, kinehook.StateLive, "s")
	requireNoErr(t, err, "GetState")
	if len(st.History) != kinehook.StateHistoryLimit {
		t.Fatalf("history = %d entries, want %d", len(st.History), kinehook.StateHistoryLimit)
	}
	if !st.History[len(st.History)-1].At.Equal(t0.Add(time.Duration(n-1)*time.Second)) || !st.History[0].At.Equal(t0.Add(7*time.Second)) {
		t.Errorf("history keeps %v..%v, want the newest", st.History[0].At, st.History[len(st.History)-1].At)
	}
}

func stateIDs(sts []*kinehook.ResourceState) []string {
	out := make([]string, len(sts))
	for i, st := range sts {
		out[i] = st.ID
	}
	return out
}
