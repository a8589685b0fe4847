package main

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/examples/statussync/statussync"
)

const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func TestParseConfig(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	c, err := parseConfig([]string{"--db", "x.db"}, env(map[string]string{"KINEHOOK_SECRET": testSecret + ", whsec_AAAA"}), io.Discard)
	if err != nil || len(c.secrets) != 2 || c.secrets[0] != testSecret || c.db != "x.db" {
		t.Fatalf("config from env = %+v, %v", c, err)
	}
	c, err = parseConfig([]string{"--secret", "whsec_BBBB"}, env(map[string]string{"KINEHOOK_SECRET": testSecret}), io.Discard)
	if err != nil || len(c.secrets) != 1 || c.secrets[0] != "whsec_BBBB" {
		t.Fatalf("flag over env = %+v, %v", c, err)
	}
	c, err = parseConfig(nil, env(map[string]string{"KINEHOOK_BASIC_AUTH": "kinescope:pw"}), io.Discard)
	if err != nil || c.basicAuth == nil || c.basicAuth.Password != "pw" {
		t.Fatalf("basic auth from env = %+v, %v", c, err)
	}
	for _, args := range [][]string{nil, {"--basic-auth", "nocolon"}, {"--nope"}} {
		if _, err := parseConfig(args, env(nil), io.Discard); err == nil {
			t.Errorf("parseConfig(%q) accepted it", args)
		}
	}
}

// TestRun starts the program as a user would and sends it a signed event.
func TestRun(t *testing.T) {
	db := filepath.Join(t.TempDir(), "run.db")
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--addr", "127.0.0.1:0", "--db", db, "--secret", testSecret}, func(string) string { return "" }, io.Discard,
			func(a string) { addrc <- a })
	}()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-done:
		t.Fatalf("run: %v", err)
	}
	body := `{"event":"media.update.status","data":{"id":"v-run","status":"done"}}`
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/", strings.NewReader(body))
	if err := kinehook.SignRequest(req.Header, []string{testSecret}, "msg_run", time.Now(), []byte(body)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cancel()
	if err := <-done; err != nil || resp.StatusCode != 200 {
		t.Fatalf("answer %d, run returned %v", resp.StatusCode, err)
	}
	store, err := statussync.OpenStore(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if v, err := store.GetVideo(context.Background(), "v-run"); err != nil || v.Status != "done" {
		t.Fatalf("video in %s = %+v, %v", db, v, err)
	}
}
