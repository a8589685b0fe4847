package main

import (
	"bytes"
	"fmt"
	"io"
	nethttp "net/http"
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
	"github.com/kinehook/kinehook/internal/secretbox"
	"github.com/kinehook/kinehook/sqlite"
	"github.com/kinehook/kinehook/storetest"
)

func TestHumanBytes(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want string
	}{
		{0, "0 B"}, {1023, "1023 B"}, {1024, "1.0 KiB"}, {1536, "1.5 KiB"},
		{10 << 20, "10.0 MiB"}, {3 << 30, "3.0 GiB"},
	} {
		if got := humanBytes(tc.n); got != tc.want {
			t.Errorf("humanBytes(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

// TestBackupSQLite covers backupSQLite without a server: the copy opens and
// holds the data, an existing file is kept unless forced, and bad sources
// and destinations are refused.
func TestBackupSQLite(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "kinehook.db")
	st, err := sqlite.Open(t.Context(), src, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	p := &kinehook.Project{ID: kinehook.NewID(kinehook.PrefixProject), Name: "backed up", CreatedAt: time.Now().UTC().Truncate(time.Microsecond)}
	if err := st.CreateProject(t.Context(), p, kinehook.HashKey("khp_backup_test")); err != nil {
		t.Fatal(err)
	}

	dest := filepath.Join(dir, "out", "backup.db")
	if err := os.Mkdir(filepath.Dir(dest), 0o700); err != nil {
		t.Fatal(err)
	}
	size, err := backupSQLite(t.Context(), src, dest, false)
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	if fi, err := os.Stat(dest); err != nil || fi.Size() != size || size == 0 {
		t.Fatalf("backup reported %d bytes; file: %v %v", size, fi, err)
	} else if fi.Mode().Perm() != 0o600 {
		t.Errorf("backup file mode %v, want 0600 (it holds payloads and sealed secrets)", fi.Mode().Perm())
	}
	assertBackupHasProject(t, dest, p.ID, true)

	// A second project, then a backup over the first one.
	p2 := &kinehook.Project{ID: kinehook.NewID(kinehook.PrefixProject), Name: "later", CreatedAt: time.Now().UTC().Truncate(time.Microsecond)}
	if err := st.CreateProject(t.Context(), p2, kinehook.HashKey("khp_backup_test_2")); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(dest)
	if _, err := backupSQLite(t.Context(), src, dest, false); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("backup over an existing file without force: err %v, want a refusal naming --force", err)
	}
	if after, _ := os.ReadFile(dest); !bytes.Equal(before, after) {
		t.Error("a refused backup changed the existing file")
	}
	if _, err := backupSQLite(t.Context(), src, dest, true); err != nil {
		t.Fatalf("backup with force: %v", err)
	}
	assertBackupHasProject(t, dest, p2.ID, true)
	if left, _ := filepath.Glob(dest + ".partial-*"); len(left) != 0 {
		t.Errorf("temporary files left behind: %v", left)
	}

	for _, tc := range []struct {
		name, src, dest, want string
	}{
		{"missing store", filepath.Join(dir, "none", "kinehook.db"), filepath.Join(dir, "x.db"), "no embedded store"},
		{"directory as store", dir, filepath.Join(dir, "x.db"), "not a database file"},
		{"onto the live file", src, src, "live database"},
		{"onto the WAL", src, src + "-wal", "live database"},
		{"into a missing directory", src, filepath.Join(dir, "missing", "x.db"), "backup"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := backupSQLite(t.Context(), tc.src, tc.dest, true)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want one containing %q", err, tc.want)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "none")); err == nil {
		t.Error("backing up a missing store created its directory")
	}
}

func assertBackupHasProject(t *testing.T, path, id string, want bool) {
	t.Helper()
	b, err := sqlite.Open(t.Context(), path, sqlite.Options{})
	if err != nil {
		t.Fatalf("open backup: %v", err)
	}
	defer b.Close()
	_, err = b.GetProject(t.Context(), id)
	if got := err == nil; got != want {
		t.Errorf("backup has project %s: %v (err %v), want %v", id, got, err, want)
	}
}

var backupLine = regexp.MustCompile(`backed up .* to .*: (\d+) bytes \(`)

// TestBackupServerUnderLoad is the operator's path end to end: `kinehook
// backup` runs as its own process while a `kinehook serve` process takes
// events from several clients; the backup passes the store suite's
// consistency check and holds every event acknowledged before it began. Then
// the documented restore (stop, copy over kinehook.db, remove -wal/-shm,
// start) brings the server back to exactly the backup.
func TestBackupServerUnderLoad(t *testing.T) {
	bin := buildKinehook(t)
	data := filepath.Join(t.TempDir(), "data")
	sink := newE2ESink(t)
	const admin = "kh_admin_backup_e2e"
	env := []string{"KINEHOOK_ADMIN_KEY=" + admin, "KINEHOOK_API_RATE_LIMIT=0", "KINEHOOK_ALLOW_PRIVATE_NETWORKS=true"}
	p := startServe(t, bin, data, env)

	p.mustCall("POST", "/v1/projects", admin, map[string]any{"name": "no endpoints"}, 201, nil)
	// serve runs the retention cleaner and exports its metrics.
	if res, err := nethttp.Get(p.url + "/metrics"); err != nil {
		t.Fatal(err)
	} else {
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if !bytes.Contains(body, []byte("kinehook_retention_events_removed_total 0")) {
			t.Errorf("/metrics has no retention counter:\n%.2000s", body)
		}
	}
	var created struct {
		ID     string `json:"id"`
		APIKey string `json:"api_key"`
	}
	p.mustCall("POST", "/v1/projects", admin, map[string]any{"name": "backup-2"}, 201, &created)
	p.mustCall("POST", "/v1/projects/"+created.ID+"/endpoints", created.APIKey, map[string]any{"url": sink.URL + "/hook"}, 201, nil)

	// Load: four clients post events until told to stop, recording every
	// acknowledged id in order.
	var (
		mu    sync.Mutex
		acked []string
		stop  = make(chan struct{})
		wg    sync.WaitGroup
		fails int
	)
	for c := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				body := fmt.Sprintf(`{"event":"media.update.status","data":{"id":"video-%d-%d","status":"done"}}`, c, i%7)
				var ev struct{ ID string }
				st, err := p.call("POST", "/v1/projects/"+created.ID+"/events", created.APIKey, body, &ev)
				mu.Lock()
				if err != nil || st != 202 {
					fails++
				} else {
					acked = append(acked, ev.ID)
				}
				mu.Unlock()
			}
		}()
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	waitE2E(t, 20*time.Second, "300 events under load", func() bool { return count() >= 300 })

	mu.Lock()
	ackedBefore := append([]string(nil), acked...) // every one answered 202 before the backup starts
	mu.Unlock()
	backup := filepath.Join(t.TempDir(), "kinehook-backup.db")
	out, err := exec.Command(bin, "backup", backup, "--data", data).CombinedOutput()
	if err != nil {
		t.Fatalf("kinehook backup: %v\n%s", err, out)
	}
	mu.Lock()
	doneAt := len(acked)
	mu.Unlock()
	// Acknowledged after the backup finished: cannot be in it.
	waitE2E(t, 20*time.Second, "events after the backup", func() bool { return count() >= doneAt+50 })
	close(stop)
	wg.Wait()
	if fails > 0 {
		t.Errorf("%d event posts failed under load", fails)
	}
	mu.Lock()
	ackedAfter := append([]string(nil), acked[doneAt:]...)
	mu.Unlock()

	m := backupLine.FindSubmatch(out)
	if m == nil {
		t.Fatalf("backup output does not print the size: %s", out)
	}
	if fi, err := os.Stat(backup); err != nil || fmt.Sprint(fi.Size()) != string(m[1]) {
		t.Errorf("backup printed %s bytes; file: %v %v", m[1], fi, err)
	}

	box, err := secretbox.Load(data)
	if err != nil {
		t.Fatal(err)
	}
	bs, err := sqlite.Open(t.Context(), backup, sqlite.Options{SecretBox: box})
	if err != nil {
		t.Fatalf("open the backup: %v", err)
	}
	counts := storetest.CheckConsistency(t, bs)
	missing := 0
	for _, id := range ackedBefore {
		if _, err := bs.GetEvent(t.Context(), created.ID, id); err != nil {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d of the %d events acknowledged before the backup began are not in it", missing, len(ackedBefore))
	}
	if counts.Projects != 2 || counts.Endpoints != 1 || counts.Events < len(ackedBefore) || counts.Events > doneAt+4 {
		// At most one post per client was in flight when the backup ended.
		t.Errorf("backup counts %+v; %d events acknowledged before it began, %d when it ended", counts, len(ackedBefore), doneAt)
	}
	for _, id := range ackedAfter {
		if _, err := bs.GetEvent(t.Context(), created.ID, id); err == nil {
			t.Errorf("event %s, acknowledged after the backup finished, is in it", id)
			break
		}
	}
	var openEvents []string // events with deliveries still open in the backup
	if err := bs.OpenDeliveries(t.Context(), nil, func(d *kinehook.Delivery) error {
		openEvents = append(openEvents, d.EventID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	_ = bs.Close()
	t.Logf("backup of %s bytes: %d events (%d acknowledged before it began), %d deliveries, %d open",
		m[1], counts.Events, len(ackedBefore), counts.Deliveries, counts.OpenDeliveries)

	// A second backup to the same file is refused without --force.
	if out, err := exec.Command(bin, "backup", backup, "--data", data).CombinedOutput(); err == nil || !strings.Contains(string(out), "--force") {
		t.Errorf("backup over an existing file: err %v, output %s; want a refusal naming --force", err, out)
	}

	// Restore as docs/operations.md says.
	if err := p.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v\n%s", err, p.stderr)
	}
	raw, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "kinehook.db"), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		if err := os.Remove(filepath.Join(data, "kinehook.db"+suffix)); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	p2 := startServe(t, bin, data, env)
	p2.mustCall("GET", "/v1/projects/"+created.ID+"/events/"+ackedBefore[len(ackedBefore)-1], created.APIKey, nil, 200, nil)
	p2.mustCall("GET", "/v1/projects/"+created.ID+"/events/"+ackedAfter[len(ackedAfter)-1], created.APIKey, nil, 404, nil)
	var list struct {
		Data       []map[string]any `json:"data"`
		NextCursor string           `json:"next_cursor"`
	}
	restored, cursor := 0, ""
	for {
		p2.mustCall("GET", "/v1/projects/"+created.ID+"/events?limit=100&cursor="+cursor, created.APIKey, nil, 200, &list)
		restored += len(list.Data)
		if cursor = list.NextCursor; cursor == "" {
			break
		}
	}
	if restored != counts.Events {
		t.Errorf("restored server lists %d events, the backup holds %d", restored, counts.Events)
	}
	// The restored server recovers the backup's open deliveries and finishes them.
	waitE2E(t, 20*time.Second, "the backup's deliveries finished after the restore", func() bool {
		for _, id := range append(openEvents, ackedBefore[len(ackedBefore)-5:]...) {
			var ds struct{ Data []struct{ Status string } }
			p2.mustCall("GET", "/v1/projects/"+created.ID+"/events/"+id+"/deliveries", created.APIKey, nil, 200, &ds)
			if len(ds.Data) != 1 || ds.Data[0].Status != "succeeded" {
				return false
			}
		}
		return true
	})
	if err := p2.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM after restore: %v", err)
	}
	// The restored store, after the server ran on it, is still consistent
	// and holds the backup's events, now without open deliveries.
	rs, err := sqlite.Open(t.Context(), filepath.Join(data, "kinehook.db"), sqlite.Options{SecretBox: box})
	if err != nil {
		t.Fatalf("open the restored store: %v", err)
	}
	defer rs.Close()
	if rc := storetest.CheckConsistency(t, rs); rc.Events != counts.Events || rc.Deliveries != counts.Deliveries || rc.OpenDeliveries != 0 {
		t.Errorf("restored store after the run: %+v; the backup held %+v, want the same events and deliveries, none open", rc, counts)
	}
}
