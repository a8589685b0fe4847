package main

import (
	"errors"
	"fmt"
	"io"
	nethttp "net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
)

// listenSink is the developer's local app: it records each request by
// webhook-id and answers 500 to the first failFirst[id] attempts.
type listenSink struct {
	*httptest.Server
	mu        sync.Mutex
	reqs      map[string][]*e2eReq
	failFirst int // attempts of every new id answered 500 before a 200
}

func newListenSink(t *testing.T) *listenSink {
	s := &listenSink{reqs: map[string][]*e2eReq{}}
	s.Server = httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		b, _ := io.ReadAll(r.Body)
		id := r.Header.Get(kinehook.HeaderID)
		s.mu.Lock()
		s.reqs[id] = append(s.reqs[id], &e2eReq{header: r.Header.Clone(), body: b})
		n := len(s.reqs[id])
		fail := n <= s.failFirst
		s.mu.Unlock()
		if fail {
			w.WriteHeader(500)
			io.WriteString(w, `{"error":"local app failed"}`)
			return
		}
		w.WriteHeader(200)
		io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *listenSink) got(id string) []*e2eReq {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*e2eReq(nil), s.reqs[id]...)
}

// proxyURL is the URL of the existing cutProxy (e2e_storefail_test.go).
func (p *cutProxy) proxyURL() string { return "http://" + p.ln.Addr().String() }

// cliProc is a running `kinehook listen` or `trigger`.
type cliProc struct {
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	done           chan error
}

func startCLI(t *testing.T, bin string, args ...string) *cliProc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KINEHOOK_") && !strings.HasPrefix(kv, "HOME=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "HOME="+t.TempDir()) // no `kinehook config` of the user's
	p := &cliProc{cmd: cmd, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *cliProc) wait(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case err := <-p.done:
		return err
	case <-time.After(d):
		t.Fatalf("%v did not exit\nstdout: %s\nstderr: %s", p.cmd.Args, p.stdout, p.stderr)
		return nil
	}
}

var (
	listenReadyLine  = regexp.MustCompile(`endpoint (ep_[A-Za-z0-9_-]+) \(project`)
	listenSecretLine = regexp.MustCompile(`webhook signing secret: (whsec_[A-Za-z0-9+/=]+)`)
)

type apiAttempt struct {
	StatusCode int    `json:"status_code"`
	Error      string `json:"error"`
	Response   string `json:"response_body"`
}

// TestListenServerEndToEnd runs `kinehook serve` (SQLite, without
// --allow-private-networks), `kinehook listen --server --forward-to` a local
// app and `kinehook trigger --server` as processes: deliveries arrive
// signed with the secret listen printed, a 500 is retried, the delivery log
// has the local answers, a cut connection resumes the same endpoint and its
// pending delivery, and the endpoint goes after the grace once listen stops.
func TestListenServerEndToEnd(t *testing.T) {
	bin := buildKinehook(t)
	data := filepath.Join(t.TempDir(), "data")
	env := []string{"KINEHOOK_RETRY_SCHEDULE=200ms,200ms,200ms,200ms,200ms", "KINEHOOK_LISTEN_GRACE=3s"}
	p := startServe(t, bin, data, env)
	admin := adminKeyLine.FindStringSubmatch(p.stdout.String())[1]
	var prj struct {
		ID     string `json:"id"`
		APIKey string `json:"api_key"`
	}
	p.mustCall("POST", "/v1/projects", admin, map[string]any{"name": "listen"}, 201, &prj)
	base := "/v1/projects/" + prj.ID

	// A cli endpoint is not for POST .../endpoints.
	var refusal struct {
		Error struct{ Code, Message, Field string }
	}
	if st, _ := p.call("POST", base+"/endpoints", prj.APIKey, map[string]any{"type": "cli"}, &refusal); st != 422 || refusal.Error.Field != "type" || !strings.Contains(refusal.Error.Message, "kinehook listen --server") {
		t.Errorf("POST endpoints type cli: %d %+v, want 422 on type", st, refusal)
	}

	sink := newListenSink(t)
	proxy := newCutProxy(t, strings.TrimPrefix(p.url, "http://"))
	listen := startCLI(t, bin, "listen", "--server", proxy.proxyURL(), "--key", prj.APIKey, "--forward-to", sink.URL+"/hook", "--events", "media.*")
	var eid, secret string
	waitE2E(t, 15*time.Second, "listen's ready lines", func() bool {
		m1, m2 := listenReadyLine.FindStringSubmatch(listen.stderr.String()), listenSecretLine.FindStringSubmatch(listen.stderr.String())
		if m1 == nil || m2 == nil {
			return false
		}
		eid, secret = m1[1], m2[1]
		return true
	})
	verifier, err := kinehook.NewVerifier([]string{secret})
	if err != nil {
		t.Fatal(err)
	}

	// The endpoint is listed and shown with its type.
	var ep struct {
		ID, Type   string
		EventTypes []string `json:"event_types"`
		Config     kinehook.ListenerState
	}
	p.mustCall("GET", base+"/endpoints/"+eid, prj.APIKey, nil, 200, &ep)
	if ep.Type != "cli" || !ep.Config.Connected || len(ep.EventTypes) != 1 || ep.EventTypes[0] != "media.*" {
		t.Errorf("endpoint = %+v, want a connected cli endpoint for media.*", ep)
	}
	var list struct{ Data []struct{ ID, Type string } }
	p.mustCall("GET", base+"/endpoints", prj.APIKey, nil, 200, &list)
	if len(list.Data) != 1 || list.Data[0].ID != eid || list.Data[0].Type != "cli" {
		t.Errorf("endpoint list = %+v", list.Data)
	}

	// The CLI lists it too, with its state in the URL column.
	epList := startCLI(t, bin, "endpoints", "list", "--server", p.url, "--key", prj.APIKey)
	if err := epList.wait(t, 20*time.Second); err != nil || !regexp.MustCompile(eid+`\s+kinehook listen \(connected\)\s+media\.\*.*\scli\n`).MatchString(epList.stdout.String()) {
		t.Errorf("endpoints list: %v\n%s%s", err, epList.stdout, epList.stderr)
	}

	post := func(body string) string {
		t.Helper()
		var ev struct{ ID string }
		p.mustCall("POST", base+"/events", prj.APIKey, body, 202, &ev)
		return ev.ID
	}
	arrived := func(id string, n int) []*e2eReq {
		t.Helper()
		waitE2E(t, 15*time.Second, fmt.Sprintf("%d request(s) of %s at the local app", n, id), func() bool { return len(sink.got(id)) >= n })
		return sink.got(id)
	}
	checkSigned := func(r *e2eReq, body string) {
		t.Helper()
		if body != "" && string(r.body) != body {
			t.Errorf("body %s, want %s", r.body, body)
		}
		if err := verifier.Verify(r.header, r.body, time.Now()); err != nil {
			t.Errorf("signature with the secret listen printed: %v", err)
		}
		if r.header.Get("Content-Type") != "application/json" || !strings.HasPrefix(r.header.Get("User-Agent"), "kinehook/") {
			t.Errorf("headers %v", r.header)
		}
	}

	// 1. An event posted through the API arrives signed.
	body1 := `{"event":"media.update.status","data":{"id":"video-1","status":"done"}}`
	id1 := post(body1)
	checkSigned(arrived(id1, 1)[0], body1)
	waitE2E(t, 5*time.Second, "listen's line of "+id1, func() bool {
		return strings.Contains(listen.stdout.String(), "media.update.status video-1 "+id1+" -> 200")
	})

	// 2. kinehook trigger --server posts the seed's example through the pipeline.
	trig := startCLI(t, bin, "trigger", "media.update.status", "--server", p.url, "--key", prj.APIKey)
	if err := trig.wait(t, 20*time.Second); err != nil {
		t.Fatalf("trigger --server: %v\n%s%s", err, trig.stdout, trig.stderr)
	}
	m := regexp.MustCompile(`media\.update\.status \S+ (\S+) -> 202 accepted`).FindStringSubmatch(trig.stdout.String())
	if m == nil {
		t.Fatalf("trigger's line: %q", trig.stdout)
	}
	checkSigned(arrived(m[1], 1)[0], string(kinehook.SampleEvent("media.update.status")))

	// 3. A 500 is retried; the delivery log has both local answers.
	sink.mu.Lock()
	sink.failFirst = 1
	sink.mu.Unlock()
	id3 := post(`{"event":"media.update.status","data":{"id":"video-3","status":"error"}}`)
	reqs := arrived(id3, 2)
	checkSigned(reqs[1], "")
	sink.mu.Lock()
	sink.failFirst = 0
	sink.mu.Unlock()
	var dl struct {
		Data []struct {
			ID, EventID, Status string
			Attempts            int
		} `json:"data"`
	}
	waitE2E(t, 10*time.Second, "the delivery log of "+id3, func() bool {
		p.mustCall("GET", base+"/deliveries?endpoint_id="+eid+"&event_id="+id3, prj.APIKey, nil, 200, &dl)
		return len(dl.Data) == 1 && dl.Data[0].Status == "succeeded"
	})
	var atts struct{ Data []apiAttempt }
	p.mustCall("GET", base+"/deliveries/"+dl.Data[0].ID+"/attempts", prj.APIKey, nil, 200, &atts)
	if len(atts.Data) != 2 || atts.Data[0].StatusCode != 500 || atts.Data[1].StatusCode != 200 || !strings.Contains(atts.Data[0].Response, "local app failed") {
		t.Errorf("attempts of %s = %+v, want 500 (with the local body) then 200", id3, atts.Data)
	}
	if !strings.Contains(listen.stdout.String(), id3+" -> 500") || !strings.Contains(listen.stdout.String(), id3+" -> 200 (attempt 2)") {
		t.Errorf("listen printed no 500 line, or no 200 line marked as attempt 2, for %s:\n%s", id3, listen.stdout)
	}

	// 4. Cut the connection: attempts wait ("listener not connected"); on
	// reconnect the same endpoint resumes and the pending delivery arrives.
	proxy.setCut(true)
	waitE2E(t, 10*time.Second, "the endpoint marked disconnected", func() bool {
		p.mustCall("GET", base+"/endpoints/"+eid, prj.APIKey, nil, 200, &ep)
		return !ep.Config.Connected
	})
	id4 := post(`{"event":"media.update.status","data":{"id":"video-4","status":"done"}}`)
	waitE2E(t, 10*time.Second, "an attempt failing as not connected", func() bool {
		p.mustCall("GET", base+"/deliveries?event_id="+id4, prj.APIKey, nil, 200, &dl)
		if len(dl.Data) != 1 {
			return false
		}
		p.mustCall("GET", base+"/deliveries/"+dl.Data[0].ID+"/attempts", prj.APIKey, nil, 200, &atts)
		return len(atts.Data) > 0 && atts.Data[0].Error == "listener not connected"
	})
	if n := len(sink.got(id4)); n != 0 {
		t.Fatalf("%s arrived while disconnected", id4)
	}
	proxy.setCut(false)
	checkSigned(arrived(id4, 1)[0], "")
	if !strings.Contains(listen.stderr.String(), "endpoint "+eid+" resumed") {
		t.Errorf("listen did not resume %s:\n%s", eid, listen.stderr)
	}
	p.mustCall("GET", base+"/endpoints", prj.APIKey, nil, 200, &list)
	if len(list.Data) != 1 || list.Data[0].ID != eid {
		t.Errorf("after the reconnect the endpoints are %+v, want only %s", list.Data, eid)
	}

	// 5. An event outside --events is not sent.
	id5 := post(string(kinehook.SampleEvent("live.enabled")))
	id6 := post(`{"event":"media.update.status","data":{"id":"video-6","status":"done"}}`)
	arrived(id6, 1)
	if n := len(sink.got(id5)); n != 0 {
		t.Errorf("live.enabled reached a media.* listener")
	}

	// 6. listen stops; after the grace the endpoint is gone.
	if err := listen.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := listen.wait(t, 10*time.Second); err != nil {
		t.Errorf("listen exited with %v after SIGINT\n%s", err, listen.stderr)
	}
	stopped := time.Now()
	t.Logf("listen's stdout:\n%s\nstderr:\n%s", listen.stdout, listen.stderr)
	waitE2E(t, 15*time.Second, "the endpoint removed after the grace", func() bool {
		st, err := p.call("GET", base+"/endpoints/"+eid, prj.APIKey, nil, nil)
		return err == nil && st == 404
	})
	if gone := time.Since(stopped); gone < 2*time.Second {
		t.Errorf("endpoint removed %v after listen stopped, before the 3s grace", gone)
	}
	var exitErr *exec.ExitError
	if err := p.stop(syscall.SIGTERM); err != nil && !errors.As(err, &exitErr) {
		t.Errorf("serve: %v", err)
	}
}

// TestListenServerSurvivesServerCrash: `kinehook serve` killed (SIGKILL)
// under a connected `kinehook listen --server` and started again on the same
// data: listen reconnects and resumes its endpoint, deliveries flow again;
// then listen is killed too (no close frame), and the endpoint it left is
// removed after the grace. (An endpoint whose instance crashed, heartbeat
// stopped while "connected", is app's TestSweepListeners.)
func TestListenServerSurvivesServerCrash(t *testing.T) {
	bin := buildKinehook(t)
	data := filepath.Join(t.TempDir(), "data")
	env := []string{"KINEHOOK_RETRY_SCHEDULE=200ms,200ms,200ms", "KINEHOOK_LISTEN_GRACE=3s"}
	p := startServe(t, bin, data, env)
	admin := adminKeyLine.FindStringSubmatch(p.stdout.String())[1]
	var prj struct {
		ID     string `json:"id"`
		APIKey string `json:"api_key"`
	}
	p.mustCall("POST", "/v1/projects", admin, map[string]any{"name": "crash"}, 201, &prj)
	base := "/v1/projects/" + prj.ID
	sink := newListenSink(t)
	listen := startCLI(t, bin, "listen", "--server", p.url, "--key", prj.APIKey, "--forward-to", sink.URL+"/hook")
	var eid string
	waitE2E(t, 15*time.Second, "listen's ready line", func() bool {
		m := listenReadyLine.FindStringSubmatch(listen.stderr.String())
		if m != nil {
			eid = m[1]
		}
		return m != nil
	})

	if err := p.stop(syscall.SIGKILL); err == nil {
		t.Fatal("serve exited 0 on SIGKILL")
	}
	p2 := startServeNoWait(t, bin, data, strings.TrimPrefix(p.url, "http://"), env)
	waitE2E(t, 30*time.Second, "listen resuming "+eid+" on the restarted server", func() bool {
		return strings.Contains(listen.stderr.String(), "endpoint "+eid+" resumed")
	})
	var ev struct{ ID string }
	p2.mustCall("POST", base+"/events", prj.APIKey, `{"event":"media.update.status","data":{"id":"video-1","status":"done"}}`, 202, &ev)
	waitE2E(t, 15*time.Second, "the event after the restart", func() bool { return len(sink.got(ev.ID)) == 1 })

	if err := listen.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = listen.wait(t, 10*time.Second)
	killed := time.Now()
	waitE2E(t, 20*time.Second, "the endpoint removed after the grace", func() bool {
		st, err := p2.call("GET", base+"/endpoints/"+eid, prj.APIKey, nil, nil)
		return err == nil && st == 404
	})
	if gone := time.Since(killed); gone < 2*time.Second {
		t.Errorf("endpoint removed %v after listen was killed, before the 3s grace", gone)
	}
}
