package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kinehook/kinehook/internal/pgtest"
)

// TestPostgresListenOtherInstance: with two instances on PostgreSQL, the
// listener connected to one of them gets every event, also those whose
// partition the other owns: that instance relays each attempt to the one
// holding the WebSocket (through the coordinator's notifications) and
// records its answer.
func TestPostgresListenOtherInstance(t *testing.T) {
	bin := buildKinehook(t)
	dsn := pgtest.New(t)
	const admin = "kh_admin_pg_listen_key"
	env := []string{"KINEHOOK_ADMIN_KEY=" + admin, "KINEHOOK_API_RATE_LIMIT=0", "KINEHOOK_DATABASE=" + dsn, "KINEHOOK_ENCRYPTION_KEY=" + testEncryptionKey}
	a := startServe(t, bin, filepath.Join(t.TempDir(), "a"), env)
	b := startServe(t, bin, filepath.Join(t.TempDir(), "b"), env)
	var prj struct {
		ID     string `json:"id"`
		APIKey string `json:"api_key"`
	}
	a.mustCall("POST", "/v1/projects", admin, map[string]any{"name": "two"}, 201, &prj)
	base := "/v1/projects/" + prj.ID
	sink := newListenSink(t)
	listen := startCLI(t, bin, "listen", "--server", a.url, "--key", prj.APIKey, "--forward-to", sink.URL+"/hook")
	waitE2E(t, 20*time.Second, "listen's ready line", func() bool { return listenReadyLine.MatchString(listen.stderr.String()) })
	// Let the two instances settle their shares of the partitions.
	time.Sleep(3 * time.Second)

	var ids []string
	for i := range 40 {
		var ev struct{ ID string }
		b.mustCall("POST", base+"/events", prj.APIKey, fmt.Sprintf(`{"event":"media.update.status","data":{"id":"video-%d","status":"done"}}`, i), 202, &ev)
		ids = append(ids, ev.ID)
	}
	waitE2E(t, 30*time.Second, "every event at the listener", func() bool {
		for _, id := range ids {
			if len(sink.got(id)) == 0 {
				return false
			}
		}
		return true
	})
	// Both instances sent some (each owns partitions), and the delivery log
	// has the local answers of the relayed ones too.
	var dl struct {
		Data []struct{ ID, Status string } `json:"data"`
	}
	waitE2E(t, 10*time.Second, "all 40 deliveries succeeded in the log", func() bool {
		b.mustCall("GET", base+"/deliveries?status=succeeded&limit=100", prj.APIKey, nil, 200, &dl)
		return len(dl.Data) == len(ids)
	})
	relayed := 0
	for _, d := range dl.Data {
		var atts struct{ Data []apiAttempt }
		a.mustCall("GET", base+"/deliveries/"+d.ID+"/attempts", prj.APIKey, nil, 200, &atts)
		if n := len(atts.Data); n == 0 || atts.Data[n-1].StatusCode != 200 {
			t.Errorf("delivery %s: attempts %+v", d.ID, atts.Data)
		}
		for _, at := range atts.Data {
			if strings.Contains(at.Error, "another instance") {
				t.Errorf("delivery %s: %q, want it relayed", d.ID, at.Error)
			}
		}
		relayed++
	}
	t.Logf("%d of %d events delivered to the listener held by one of two instances", relayed, len(ids))
}
