package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	nethttp "net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/internal/pgtest"
)

// kinescope plays Kinescope calling an inbox: a POST of the body with
// Basic Auth and a JSON content type, nothing else (Kinescope signs
// nothing and sends no id).
type kinescope struct {
	url, login, password string
}

func (k kinescope) post(body string) (int, string, error) {
	req, err := nethttp.NewRequest("POST", k.url, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.SetBasicAuth(k.login, k.password)
	req.Header.Set("Content-Type", "application/json")
	res, err := nethttp.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b), nil
}

// seedBody is the seed document's example body of typ (its error example
// for an error), with its id and status replaced.
func seedBody(t *testing.T, typ kinehook.EventType, id, status string) string {
	t.Helper()
	var env struct {
		Event string         `json:"event"`
		Data  map[string]any `json:"data"`
	}
	info, _ := kinehook.Lookup(typ)
	example := info.Examples[0]
	if status == "error" {
		example = info.Examples[len(info.Examples)-1] // the seed's error, with its message
	}
	if err := json.Unmarshal(example, &env); err != nil {
		t.Fatal(err)
	}
	if typ == kinehook.EventMediaUpdateStatus {
		env.Data["id"], env.Data["status"] = id, status
	} else {
		env.Data["event_id"] = id
	}
	b, _ := json.Marshal(env)
	return string(b)
}

// TestInboxPlaysKinescopeSQLite and TestInboxPlaysKinescopePostgres are
// issue 19's closing test: Kinescope's part against a real `kinehook
// serve`, on each store.
func TestInboxPlaysKinescopeSQLite(t *testing.T) {
	bin := buildKinehook(t)
	playKinescope(t, bin, filepath.Join(t.TempDir(), "data"), nil)
}

func TestInboxPlaysKinescopePostgres(t *testing.T) {
	bin := buildKinehook(t)
	dsn := pgtest.New(t)
	playKinescope(t, bin, filepath.Join(t.TempDir(), "data"), []string{"KINEHOOK_DATABASE=" + dsn, "KINEHOOK_ENCRYPTION_KEY=" + testEncryptionKey})
}

func playKinescope(t *testing.T, bin, data string, extraEnv []string) {
	sink := newE2ESink(t)
	const admin = "kh_admin_e2e_inbox_key"
	env := append([]string{"KINEHOOK_ADMIN_KEY=" + admin, "KINEHOOK_API_RATE_LIMIT=0"}, extraEnv...)
	args := []string{"--allow-private-networks", "--retry-schedule", "200ms,500ms,500ms,500ms,500ms,500ms,500ms,500ms"}
	p := startServe(t, bin, data, env, args...)
	var prj struct {
		ID     string `json:"id"`
		APIKey string `json:"api_key"`
	}
	p.mustCall("POST", "/v1/projects", admin, map[string]any{"name": "relay"}, 201, &prj)
	base := "/v1/projects/" + prj.ID
	// Two internal services, each with its own filter.
	var all, lives struct{ ID, Secret string }
	p.mustCall("POST", base+"/endpoints", prj.APIKey, map[string]any{"url": sink.URL + "/all"}, 201, &all)
	p.mustCall("POST", base+"/endpoints", prj.APIKey, map[string]any{"url": sink.URL + "/live", "event_types": []string{"live.*"}}, 201, &lives)
	var src struct{ ID, Path, Type, Name string }
	p.mustCall("POST", base+"/sources", prj.APIKey, map[string]any{"name": "Kinescope", "type": "kinescope", "login": "kinescope-prod", "password": "Pa55-word!"}, 201, &src)
	if src.Path != "/in/"+src.ID || src.Type != "kinescope" {
		t.Fatalf("source = %+v", src)
	}
	k := kinescope{url: p.url + src.Path, login: "kinescope-prod", password: "Pa55-word!"}

	mustPost := func(body string, want int) {
		t.Helper()
		st, ans, err := k.post(body)
		if err != nil || st != want {
			t.Fatalf("POST %s: %d %s %v, want %d", body, st, ans, err, want)
		}
		if want == 200 && ans != "{\"success\":true}\n" {
			t.Fatalf("answer %q, want {\"success\":true}", ans)
		}
	}
	media := func(id, status string) string { return seedBody(t, kinehook.EventMediaUpdateStatus, id, status) }
	live := func(typ kinehook.EventType, id string) string { return seedBody(t, typ, id, "") }
	// A video's life, with a retry of the same body (stored once).
	mustPost(media("vid-1", "pending"), 200)
	mustPost(media("vid-1", "uploading"), 200)
	mustPost(media("vid-1", "uploading"), 200) // Kinescope retrying
	mustPost(media("vid-1", "processing"), 200)
	mustPost(media("vid-1", "done"), 200)
	mustPost(media("vid-2", "pending"), 200)
	mustPost(media("vid-2", "error"), 200)
	// A status Kinescope added: kept and flagged.
	mustPost(media("vid-3", "transcoding"), 200)
	// A stream: connected, disconnected, connected is three events.
	mustPost(live(kinehook.EventLiveCreated, "live-1"), 200)
	mustPost(live(kinehook.EventLiveConnected, "live-1"), 200)
	mustPost(live(kinehook.EventLiveDisconnected, "live-1"), 200)
	mustPost(live(kinehook.EventLiveConnected, "live-1"), 200)
	mustPost(live(kinehook.EventLiveConnected, "live-1"), 200) // a retry
	mustPost(live(kinehook.EventLiveCreated, "live-2"), 200)
	mustPost(live(kinehook.EventLiveConnected, "live-2"), 200)
	mustPost(live(kinehook.EventLiveDisconnected, "live-2"), 200)
	// Malformed, wrong credentials: refused, nothing stored.
	mustPost(`{"event":"media.update.status","data":{"id":"vid-9"`, 400)
	bad := k
	bad.password = "guess"
	if st, _, _ := bad.post(media("vid-9", "done")); st != 401 {
		t.Errorf("wrong password: %d, want 401", st)
	}
	const wantEvents = 14

	// The inbox: the event log shows each accepted event once, with its source.
	var page struct {
		Data []struct {
			ID       string   `json:"id"`
			Event    string   `json:"event"`
			SourceID string   `json:"source_id"`
			Flags    []string `json:"flags"`
		} `json:"data"`
	}
	p.mustCall("GET", base+"/events?source_id="+src.ID+"&limit=100", prj.APIKey, nil, 200, &page)
	if len(page.Data) != wantEvents {
		t.Fatalf("%d events from the source, want %d", len(page.Data), wantEvents)
	}
	var ids []string
	flagged := 0
	for _, ev := range page.Data {
		ids = append(ids, ev.ID)
		if ev.SourceID != src.ID {
			t.Errorf("event %s source_id %q", ev.ID, ev.SourceID)
		}
		if len(ev.Flags) > 0 && ev.Flags[0] == "unknown_status" {
			flagged++
		}
	}
	if flagged != 1 {
		t.Errorf("%d events flagged unknown_status, want 1", flagged)
	}

	// Relayed: signed, to each service its share, in order per resource.
	// (By arrival on /all: a live event's webhook-id is the same on /live,
	// so sink.has would count it there while /all still waits for it.)
	waitE2E(t, 20*time.Second, "every inbox event relayed to /all", func() bool {
		sink.mu.Lock()
		defer sink.mu.Unlock()
		got := map[string]bool{}
		for _, a := range sink.arrivals {
			if path, id, _ := strings.Cut(a, " "); path == "/all" {
				got[id] = true
			}
		}
		for _, id := range ids {
			if !got[id] {
				return false
			}
		}
		return true
	})
	waitE2E(t, 20*time.Second, "live events on the live service", func() bool {
		sink.mu.Lock()
		defer sink.mu.Unlock()
		n := 0
		for _, a := range sink.arrivals {
			if strings.HasPrefix(a, "/live ") {
				n++
			}
		}
		return n >= 7
	})
	vAll, _ := kinehook.NewVerifier([]string{all.Secret})
	vLive, _ := kinehook.NewVerifier([]string{lives.Secret})
	sink.mu.Lock()
	for id, r := range sink.reqs {
		if vAll.Verify(r.header, r.body, time.Now()) != nil && vLive.Verify(r.header, r.body, time.Now()) != nil {
			t.Errorf("delivery %s is not signed by its endpoint's secret", id)
		}
	}
	var liveOrder []string
	for _, a := range sink.arrivals {
		if path, id, _ := strings.Cut(a, " "); path == "/all" {
			if r := sink.reqs[id]; r != nil && bytes.Contains(r.body, []byte(`"live-1"`)) {
				liveOrder = append(liveOrder, string(r.body))
			}
		}
	}
	sink.mu.Unlock()
	if len(liveOrder) < 4 || !strings.Contains(liveOrder[0], "live.created") || !strings.Contains(liveOrder[2], "live.disconnected") || !strings.Contains(liveOrder[3], "live.connected") {
		t.Errorf("live-1 relayed out of order: %v", liveOrder)
	}

	// The state API.
	var m struct {
		ID, Status, Message string
		History             []struct{ Status, EventID string }
	}
	p.mustCall("GET", base+"/media/vid-1", prj.APIKey, nil, 200, &m)
	if m.Status != "done" || len(m.History) != 4 {
		t.Errorf("vid-1 = %+v, want done after 4 changes", m)
	}
	p.mustCall("GET", base+"/media/vid-2", prj.APIKey, nil, 200, &m)
	if m.Status != "error" || m.Message == "" {
		t.Errorf("vid-2 = %+v, want error with the seed's message", m)
	}
	p.mustCall("GET", base+"/media/vid-3", prj.APIKey, nil, 200, &m)
	if m.Status != "transcoding" {
		t.Errorf("vid-3 = %+v, want the unknown status as it came", m)
	}
	var errs struct {
		Data []struct{ ID string } `json:"data"`
	}
	p.mustCall("GET", base+"/media?status=error", prj.APIKey, nil, 200, &errs)
	if len(errs.Data) != 1 || errs.Data[0].ID != "vid-2" {
		t.Errorf("videos in error = %+v", errs.Data)
	}
	var l struct {
		EventID, State string
		History        []struct{ State string }
	}
	p.mustCall("GET", base+"/live/live-1", prj.APIKey, nil, 200, &l)
	if l.State != "connected" || len(l.History) != 4 {
		t.Errorf("live-1 = %+v, want connected after 4 changes", l)
	}
	var conn struct {
		Data []struct {
			EventID string `json:"event_id"`
		} `json:"data"`
	}
	p.mustCall("GET", base+"/live?state=disconnected", prj.APIKey, nil, 200, &conn)
	if len(conn.Data) != 1 || conn.Data[0].EventID != "live-2" {
		t.Errorf("disconnected streams = %+v", conn.Data)
	}

	// The metrics.
	res, err := nethttp.Get(p.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, want := range []string{
		`kinehook_media_status_total{project="` + prj.ID + `",status="done"} 1`,
		`kinehook_media_status_total{project="` + prj.ID + `",status="unknown"} 1`,
		`kinehook_media_processing_seconds_count{project="` + prj.ID + `",status="done"} 1`,
		`kinehook_live_streams{project="` + prj.ID + `",state="connected"} 1`,
		`kinehook_live_streams{project="` + prj.ID + `",state="disconnected"} 1`,
	} {
		if !strings.Contains(string(text), want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// A SIGKILL right after the 200s loses nothing.
	var (
		mu   sync.Mutex
		oked []string
		wg   sync.WaitGroup
		stop = make(chan struct{})
	)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("kill-%d-%d", w, i)
				st, _, err := k.post(media(id, "done"))
				if err != nil {
					return
				}
				if st == 200 {
					mu.Lock()
					oked = append(oked, id)
					mu.Unlock()
				}
			}
		}()
	}
	waitE2E(t, 20*time.Second, "60 inbox events answered 200", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(oked) >= 60
	})
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err = <-p.done
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("SIGKILL: %v", err)
	}
	close(stop)
	wg.Wait()
	p2 := startServe(t, bin, data, env, args...)
	mu.Lock()
	answered := append([]string(nil), oked...)
	mu.Unlock()
	t.Logf("%d inbox events answered 200 before SIGKILL", len(answered))
	for _, id := range answered {
		var st struct{ Status string }
		if code, err := p2.call("GET", base+"/media/"+id, prj.APIKey, nil, &st); err != nil || code != 200 || st.Status != "done" {
			t.Errorf("video %s answered 200 before the kill: state %d %v %+v", id, code, err, st)
		}
	}
	var after struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
		NextCursor string `json:"next_cursor"`
	}
	var killIDs []string
	for cursor := ""; ; {
		p2.mustCall("GET", base+"/events?source_id="+src.ID+"&limit=1000&cursor="+cursor, prj.APIKey, nil, 200, &after)
		for _, ev := range after.Data {
			killIDs = append(killIDs, ev.ID)
		}
		if after.NextCursor == "" {
			break
		}
		cursor = after.NextCursor
	}
	if len(killIDs) < wantEvents+len(answered) {
		t.Errorf("%d events after the restart, want at least %d", len(killIDs), wantEvents+len(answered))
	}
	waitE2E(t, 30*time.Second, "every event relayed after the restart", func() bool { return sink.has(killIDs) == 0 })
}
