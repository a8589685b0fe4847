package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	nethttp "net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testCA is a CA for the TLS tests, and the certificates it signs.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kinehook test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue writes a certificate for 127.0.0.1 and localhost with the given
// serial into certFile and keyFile.
func (ca *testCA) issue(t *testing.T, serial int64, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	// Written beside and renamed, as a certificate tool does.
	for file, data := range map[string][]byte{
		certFile: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyFile:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}),
	} {
		if err := os.WriteFile(file+".new", data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(file+".new", file); err != nil {
			t.Fatal(err)
		}
	}
}

// TestServeTLSReloadsOnSIGHUP: kinehook serve with --tls-cert/--tls-key
// serves HTTPS, takes a new certificate on SIGHUP for new connections while
// an open connection goes on, and marks the dashboard's cookie Secure.
func TestServeTLSReloadsOnSIGHUP(t *testing.T) {
	bin := buildKinehook(t)
	dir := t.TempDir()
	ca := newTestCA(t)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	ca.issue(t, 1001, certFile, keyFile)
	const admin = "kh_admin_e2e_tls_key"
	addr := freeAddr(t)
	p := startServeTLS(t, bin, filepath.Join(dir, "data"), addr, ca, []string{"KINEHOOK_ADMIN_KEY=" + admin}, "--tls-cert", certFile, "--tls-key", keyFile)

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.pem)
	client := &nethttp.Client{Transport: &nethttp.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, MaxIdleConnsPerHost: 1}}
	get := func(c *nethttp.Client) (serial int64, reused bool) {
		t.Helper()
		req, _ := nethttp.NewRequest("GET", "https://"+addr+"/healthz", nil)
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}))
		res, err := c.Do(req)
		if err != nil {
			t.Fatalf("GET over TLS: %v\nstderr: %s", err, p.stderr)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.TLS.PeerCertificates[0].SerialNumber.Int64(), reused
	}
	if s, _ := get(client); s != 1001 {
		t.Fatalf("serial %d, want 1001", s)
	}
	ca.issue(t, 1002, certFile, keyFile)
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitE2E(t, 10*time.Second, "the reload logged", func() bool { return strings.Contains(p.stderr.String(), "certificate reloaded") })
	// The open connection goes on (with the old certificate)...
	if s, reused := get(client); !reused || s != 1001 {
		t.Errorf("after SIGHUP the open connection: reused %v serial %d, want reused 1001", reused, s)
	}
	// ... and a new one gets the new certificate.
	fresh := &nethttp.Client{Transport: &nethttp.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if s, _ := get(fresh); s != 1002 {
		t.Errorf("new connection: serial %d, want 1002", s)
	}
	// A broken file on SIGHUP keeps the certificate in use.
	if err := os.WriteFile(certFile, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Process.Signal(syscall.SIGHUP)
	waitE2E(t, 10*time.Second, "the failed reload logged", func() bool { return strings.Contains(p.stderr.String(), "was not reloaded") })
	fresh2 := &nethttp.Client{Transport: &nethttp.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if s, _ := get(fresh2); s != 1002 {
		t.Errorf("after a bad reload: serial %d, want 1002 still", s)
	}
	// Secure cookies follow TLS.
	noRedirect := &nethttp.Client{Transport: fresh.Transport, CheckRedirect: func(*nethttp.Request, []*nethttp.Request) error { return nethttp.ErrUseLastResponse }}
	res, err := noRedirect.PostForm("https://"+addr+"/login", url.Values{"key": {admin}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	var secure bool
	for _, c := range res.Cookies() {
		secure = secure || (c.Secure && strings.HasPrefix(c.Name, "__Host-"))
	}
	if !secure {
		t.Errorf("dashboard cookies over TLS are not Secure: %v", res.Header.Values("Set-Cookie"))
	}
	if err := p.stop(syscall.SIGTERM); err != nil {
		t.Errorf("SIGTERM: %v", err)
	}
}

// startServeTLS runs `kinehook serve` with TLS on addr and waits until
// /healthz answers over HTTPS.
func startServeTLS(t *testing.T, bin, data, addr string, ca *testCA, env []string, args ...string) *serveProc {
	t.Helper()
	p := startServeNoWait(t, bin, data, addr, env, args...)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.pem)
	c := &nethttp.Client{Transport: &nethttp.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 5 * time.Second}
	waitE2E(t, 30*time.Second, "serve to answer over TLS", func() bool {
		select {
		case err := <-p.done:
			t.Fatalf("serve exited: %v\nstderr: %s", err, p.stderr)
		default:
		}
		res, err := c.Get("https://" + addr + "/healthz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == 200
	})
	return p
}
