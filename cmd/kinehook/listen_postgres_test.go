package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kinehook/kinehook/internal/pgtest"
)

// TestPostgresListenOtherInstance pins down what docs/api.md says of
// `kinehook listen --server` with two instances on PostgreSQL: the instance
// holding the WebSocket delivers the events of the partitions it owns; the
// other instance's attempts back off with "listener connected to another
// instance" (retryable, nothing lost) instead of failing.
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
	arrived, elsewhere := 0, 0
	waitE2E(t, 30*time.Second, "each event arrived or backing off as held elsewhere", func() bool {
		arrived, elsewhere = 0, 0
		for _, id := range ids {
			if len(sink.got(id)) > 0 {
				arrived++
				continue
			}
			var dl struct{ Data []struct{ ID string } }
			a.mustCall("GET", base+"/deliveries?event_id="+id, prj.APIKey, nil, 200, &dl)
			if len(dl.Data) != 1 {
				return false
			}
			var atts struct{ Data []apiAttempt }
			a.mustCall("GET", base+"/deliveries/"+dl.Data[0].ID+"/attempts", prj.APIKey, nil, 200, &atts)
			if len(atts.Data) == 0 || !strings.HasPrefix(atts.Data[len(atts.Data)-1].Error, "listener connected to another instance (") {
				return false
			}
			elsewhere++
		}
		return true
	})
	if arrived == 0 {
		t.Errorf("no event reached the listener through the instance holding it")
	}
	t.Logf("of %d events, %d delivered by the instance holding the WebSocket, %d waiting on the other instance", len(ids), arrived, elsewhere)
}
