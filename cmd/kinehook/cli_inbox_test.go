package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// srcPassword is the test source's password: long enough that no random
// id in a listing contains it by chance (a listed "inb_...nepw3..." once
// matched "pw").
const srcPassword = "s3cret-not-listed"

func TestCLISourcesMediaLive(t *testing.T) {
	e := newCLIEnv(t)
	p, err := e.admin.CreateProject(context.Background(), "inbox")
	if err != nil {
		t.Fatal(err)
	}
	flags := []string{"--url", e.url, "--key", p.APIKey}
	out := e.must(t, append([]string{"sources", "create", "kinescope", "--login", "kin", "--password", srcPassword}, flags...)...)
	if !strings.Contains(out, e.url+"/in/inb_") || !strings.Contains(out, "kinescope") {
		t.Fatalf("sources create:\n%s", out)
	}
	if _, _, err := e.run(t, append([]string{"sources", "create", "x", "--login", "kin"}, flags...)...); err == nil {
		t.Errorf("a kinescope source without a password was accepted")
	}
	var created struct{ ID, Path string }
	js := e.must(t, append([]string{"sources", "create", "peer", "--type", "standard-webhooks", "--secret", "whsec_" + strings.Repeat("A", 40), "--json"}, flags...)...)
	if err := json.Unmarshal([]byte(js), &created); err != nil || created.Path != "/in/"+created.ID {
		t.Fatalf("sources create --json: %v %s", err, js)
	}
	list := e.must(t, append([]string{"sources", "list"}, flags...)...)
	if strings.Count(list, "/in/inb_") != 2 || strings.Contains(list, srcPassword) {
		t.Fatalf("sources list:\n%s", list)
	}
	// The kinescope source's row (both were made in the same millisecond,
	// so the listing's order between them is not fixed).
	kin := ""
	for _, line := range strings.Split(list, "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[1] == "kinescope" {
			kin = f[0]
		}
	}
	for _, b := range []string{
		`{"event":"media.update.status","data":{"id":"v1","status":"processing"}}`,
		`{"event":"media.update.status","data":{"id":"v1","status":"error","message":"codec not supported"}}`,
		`{"event":"live.connected","data":{"event_id":"s1"}}`,
		`{"event":"live.disconnected","data":{"event_id":"s1"}}`,
	} {
		req, _ := http.NewRequest("POST", e.url+"/in/"+kin, strings.NewReader(b))
		req.SetBasicAuth("kin", srcPassword)
		res, err := http.DefaultClient.Do(req)
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("POST /in: %v %v", err, res)
		}
		res.Body.Close()
	}
	get := e.must(t, append([]string{"media", "get", "v1"}, flags...)...)
	if !strings.Contains(get, "codec not supported") || !strings.Contains(get, "processing") {
		t.Errorf("media get:\n%s", get)
	}
	ml := e.must(t, append([]string{"media", "list", "--status", "error"}, flags...)...)
	if !strings.Contains(ml, "v1") {
		t.Errorf("media list:\n%s", ml)
	}
	if ml := e.must(t, append([]string{"media", "list", "--status", "done"}, flags...)...); strings.Contains(ml, "v1") {
		t.Errorf("media list --status done shows v1:\n%s", ml)
	}
	ll := e.must(t, append([]string{"live", "list", "--state", "disconnected"}, flags...)...)
	if !strings.Contains(ll, "s1") || !strings.Contains(ll, "disconnected") {
		t.Errorf("live list:\n%s", ll)
	}
	if evs := e.must(t, append([]string{"events", "list", "--source-id", kin}, flags...)...); strings.Count(evs, "msg_") != 4 {
		t.Errorf("events list --source-id:\n%s", evs)
	}
	e.must(t, append([]string{"sources", "delete", kin}, flags...)...)
	if list := e.must(t, append([]string{"sources", "list"}, flags...)...); strings.Contains(list, kin) {
		t.Errorf("deleted source still listed:\n%s", list)
	}
}
