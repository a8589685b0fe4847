package client_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/client"
)

func TestSourcesAndState(t *testing.T) {
	ts := newTestServer(t, nil)
	ctx := context.Background()
	p, c := ts.project(t, "inbox")
	src, err := c.CreateSource(ctx, p.ID, client.SourceInput{Name: client.Ptr("kinescope"), Type: client.Ptr(kinehook.InboxKinescope), Login: client.Ptr("kin"), Password: client.Ptr("pw")})
	if err != nil || src.Path != "/in/"+src.ID || src.Type != "kinescope" {
		t.Fatalf("create: %v %+v", err, src)
	}
	if _, err := c.CreateSource(ctx, p.ID, client.SourceInput{Name: client.Ptr("x"), Type: client.Ptr("kinescope")}); client.ErrorCode(err) != kinehook.EINVALID {
		t.Errorf("a source without credentials: %v", err)
	}
	list, err := c.ListSources(ctx, p.ID)
	if err != nil || len(list) != 1 || list[0].ID != src.ID {
		t.Fatalf("list: %v %+v", err, list)
	}
	up, err := c.UpdateSource(ctx, p.ID, src.ID, client.SourceInput{Name: client.Ptr("renamed")})
	if err != nil || up.Name != "renamed" {
		t.Fatalf("update: %v %+v", err, up)
	}
	post := func(body string) int {
		req, _ := http.NewRequest("POST", ts.url+src.Path, strings.NewReader(body))
		req.SetBasicAuth("kin", "pw")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	for _, b := range []string{
		`{"event":"media.update.status","data":{"id":"v1","status":"processing"}}`,
		`{"event":"media.update.status","data":{"id":"v1","status":"error","message":"codec"}}`,
		`{"event":"live.connected","data":{"event_id":"s1"}}`,
	} {
		if st := post(b); st != 200 {
			t.Fatalf("POST %s: %d", b, st)
		}
	}
	m, err := c.GetMedia(ctx, p.ID, "v1")
	if err != nil || m.Status != "error" || m.Message != "codec" || len(m.History) != 2 {
		t.Fatalf("media: %v %+v", err, m)
	}
	mp, err := c.ListMedia(ctx, p.ID, client.StateListOptions{Status: "error"})
	if err != nil || len(mp.Data) != 1 || mp.Data[0].ID != "v1" {
		t.Fatalf("media list: %v %+v", err, mp)
	}
	l, err := c.GetLive(ctx, p.ID, "s1")
	if err != nil || l.State != "connected" {
		t.Fatalf("live: %v %+v", err, l)
	}
	lp, err := c.ListLive(ctx, p.ID, client.StateListOptions{Status: "connected"})
	if err != nil || len(lp.Data) != 1 {
		t.Fatalf("live list: %v %+v", err, lp)
	}
	if _, err := c.GetMedia(ctx, p.ID, "nope"); !client.IsNotFound(err) {
		t.Errorf("unknown video: %v", err)
	}
	evs, err := c.ListEvents(ctx, p.ID, client.EventListOptions{SourceID: src.ID})
	if err != nil || len(evs.Data) != 3 || evs.Data[0].SourceID != src.ID {
		t.Fatalf("events of the source: %v %+v", err, evs)
	}
	if err := c.DeleteSource(ctx, p.ID, src.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetSource(ctx, p.ID, src.ID); !client.IsNotFound(err) {
		t.Errorf("get after delete: %v", err)
	}
}
