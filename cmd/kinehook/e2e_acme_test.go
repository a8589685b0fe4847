package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"

	"io"
	nethttp "net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kinehook/kinehook/internal/pgtest"
)

// pebbleVersion is Let's Encrypt's test ACME server the ACME tests run.
const pebbleVersion = "github.com/letsencrypt/pebble/v2/cmd/pebble@v2.10.3"

// buildPebble installs pebble from the Go module proxy into a temporary
// folder. Outside CI, a machine that cannot build it skips loudly.
func buildPebble(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("the ACME test builds pebble")
	}
	dir := t.TempDir()
	cmd := exec.Command("go", "install", pebbleVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=-mod=mod")
	cmd.Dir = dir // outside this module
	if out, err := cmd.CombinedOutput(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("go install %s: %v\n%s", pebbleVersion, err, out)
		}
		t.Skipf("SKIPPING ACME TEST: go install %s failed: %v\n%s", pebbleVersion, err, out)
	}
	return filepath.Join(dir, "pebble")
}

// pebble is a running pebble: its directory URL and its issuing root.
type pebble struct {
	dir  string
	cmd  *exec.Cmd
	done chan error
	ca   *testCA
	mgmt string
}

// startPebble runs pebble on free loopback ports, serving its API with a
// certificate of ca. Validation is switched off (PEBBLE_VA_ALWAYS_VALID):
// the test's name resolves nowhere; what is tested is kinehook's side,
// getting, caching, sharing and serving the certificate.
func startPebble(t *testing.T, bin string, tlsPort string) *pebble {
	t.Helper()
	dir := t.TempDir()
	ca := newTestCA(t)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	ca.issue(t, 7, certFile, keyFile)
	listen, mgmt := freeAddr(t), freeAddr(t)
	tlsPortNum, err := strconv.Atoi(tlsPort)
	if err != nil {
		t.Fatal(err)
	}
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress": listen, "managementListenAddress": mgmt, "certificate": certFile, "privateKey": keyFile,
		"httpPort": 5002, "tlsPort": tlsPortNum, "externalAccountBindingRequired": false,
	}}
	b, _ := json.Marshal(cfg)
	cfgFile := filepath.Join(dir, "pebble.json")
	if err := os.WriteFile(cfgFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-config", cfgFile)
	cmd.Env = append(os.Environ(), "PEBBLE_VA_ALWAYS_VALID=1", "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0")
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &pebble{dir: "https://" + listen + "/dir", cmd: cmd, done: make(chan error, 1), ca: ca, mgmt: mgmt}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() { p.stop() })
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.pem)
	c := &nethttp.Client{Transport: &nethttp.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 2 * time.Second}
	deadline := time.Now().Add(20 * time.Second)
	waitE2E(t, 30*time.Second, "pebble's directory", func() bool {
		res, err := c.Get(p.dir)
		if err != nil {
			if time.Now().After(deadline) {
				t.Fatalf("pebble does not answer: %v\n%s", err, out.String())
			}
			return false
		}
		res.Body.Close()
		return res.StatusCode == 200
	})
	return p
}

func (p *pebble) stop() {
	if p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// root returns pebble's issuing root (PEM), from its management API.
func (p *pebble) root(t *testing.T) []byte {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(p.ca.pem)
	c := &nethttp.Client{Transport: &nethttp.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	res, err := c.Get("https://" + p.mgmt + "/roots/0")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return b
}

// acmeServe starts `kinehook serve --acme-domain` on addr.
func acmeServe(t *testing.T, bin, data, addr string, peb *pebble, domain string, env []string) *serveProc {
	t.Helper()
	caFile := filepath.Join(t.TempDir(), "pebble-api-ca.pem")
	if err := os.WriteFile(caFile, peb.ca.pem, 0o600); err != nil {
		t.Fatal(err)
	}
	return startServeNoWait(t, bin, data, addr, env, "--acme-domain", domain, "--acme-directory", peb.dir, "--acme-ca", caFile, "--acme-email", "ops@example.com")
}

// tlsServerCert connects to addr as domain and returns the certificate it
// serves, verified against root.
func tlsServerCert(t *testing.T, addr, domain string, root []byte) (*x509.Certificate, error) {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(root)
	conn, err := tls.Dial("tcp", addr, &tls.Config{ServerName: domain, RootCAs: pool})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

func waitACMECert(t *testing.T, p *serveProc, addr, domain string, root []byte) *x509.Certificate {
	t.Helper()
	var cert *x509.Certificate
	var last error
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if cert, last = tlsServerCert(t, addr, domain, root); last == nil {
			return cert
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("no certificate for %s: %v\nserve stderr: %s", domain, last, p.stderr)
	return nil
}

// TestServeACMESQLite: with --acme-domain, kinehook gets a certificate from
// a local pebble, serves it, and keeps it in the data folder: restarted
// while pebble is down, it serves the same certificate.
func TestServeACMESQLite(t *testing.T) {
	bin := buildKinehook(t)
	pebBin := buildPebble(t)
	addr := freeAddr(t)
	_, port, _ := strings.Cut(addr, ":")
	peb := startPebble(t, pebBin, port)
	root := peb.root(t)
	data := filepath.Join(t.TempDir(), "data")
	const domain = "inbox.kinehook.test"
	env := []string{"KINEHOOK_ADMIN_KEY=kh_admin_acme_test"}
	p := acmeServe(t, bin, data, addr, peb, domain, env)
	cert := waitACMECert(t, p, addr, domain, root)
	if cert.DNSNames[0] != domain {
		t.Fatalf("certificate for %v", cert.DNSNames)
	}
	if _, err := os.Stat(filepath.Join(data, "acme", domain)); err != nil {
		t.Errorf("the certificate is not cached in the data folder: %v", err)
	}
	if _, err := tlsServerCert(t, addr, "other.example.com", root); err == nil {
		t.Errorf("a name outside --acme-domain got a certificate")
	}
	if err := p.stop(os.Interrupt); err != nil {
		t.Errorf("stop: %v", err)
	}
	peb.stop()
	p2 := acmeServe(t, bin, data, addr, peb, domain, env)
	again := waitACMECert(t, p2, addr, domain, root)
	if again.SerialNumber.Cmp(cert.SerialNumber) != 0 {
		t.Errorf("after a restart without the CA: serial %v, want the cached %v", again.SerialNumber, cert.SerialNumber)
	}
}

// TestServeACMEPostgres: two instances on one PostgreSQL share the
// certificate through the database: the second serves the first's while
// the CA is down.
func TestServeACMEPostgres(t *testing.T) {
	bin := buildKinehook(t)
	pebBin := buildPebble(t)
	dsn := pgtest.New(t)
	addr := freeAddr(t)
	_, port, _ := strings.Cut(addr, ":")
	peb := startPebble(t, pebBin, port)
	root := peb.root(t)
	const domain = "inbox.kinehook.test"
	env := []string{"KINEHOOK_ADMIN_KEY=kh_admin_acme_test", "KINEHOOK_DATABASE=" + dsn, "KINEHOOK_ENCRYPTION_KEY=" + testEncryptionKey}
	p := acmeServe(t, bin, filepath.Join(t.TempDir(), "a"), addr, peb, domain, env)
	cert := waitACMECert(t, p, addr, domain, root)
	peb.stop()
	addr2 := freeAddr(t)
	p2 := acmeServe(t, bin, filepath.Join(t.TempDir(), "b"), addr2, peb, domain, env)
	shared := waitACMECert(t, p2, addr2, domain, root)
	if shared.SerialNumber.Cmp(cert.SerialNumber) != 0 {
		t.Errorf("second instance: serial %v, want the first's %v (shared through the database)", shared.SerialNumber, cert.SerialNumber)
	}
}
