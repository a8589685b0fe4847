package redis_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kinehook/kinehook/delivery"
	redisdest "github.com/kinehook/kinehook/redis"
)

// selfSigned writes a certificate for 127.0.0.1 and its key into dir and
// returns the pool that trusts it.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, roots *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kinehook test redis"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	roots = x509.NewCertPool()
	roots.AddCert(cert)
	return certFile, keyFile, roots
}

// rediss:// goes over TLS on top of the guarded dial, verified against the
// configured roots: with them the entry is added, without them (the
// system's roots) the attempt fails on the certificate.
func TestSendOverTLS(t *testing.T) {
	if _, err := os.Stat(redisServerBin); err != nil {
		t.Skipf("%s not installed", redisServerBin)
	}
	dir := t.TempDir()
	certFile, keyFile, roots := selfSigned(t, dir)
	port := freePort(t)
	var log syncBuffer
	cmd := exec.Command(redisServerBin, "--port", "0", "--tls-port", port, "--bind", "127.0.0.1", "--tls-cert-file", certFile,
		"--tls-key-file", keyFile, "--tls-auth-clients", "no", "--save", "", "--dir", dir)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGKILL); _ = cmd.Wait() })
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c, err := tls.Dial("tcp", "127.0.0.1:"+port, &tls.Config{RootCAs: roots})
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server with TLS on %s did not start: %v\n%s", port, err, log.String())
		}
	}
	url := "rediss://127.0.0.1:" + port + "/0"

	tr := redisdest.New(redisdest.Options{Dial: allowLoopback, TLS: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}})
	defer tr.Close()
	res := tr.Send(t.Context(), signed(t, redisEndpoint(url, "tls-stream", 0, nil), `{"event":"media.update.status","data":{}}`))
	if res.Outcome != delivery.OutcomeSuccess || res.Response == "" {
		t.Fatalf("Send over TLS = %+v", res)
	}

	untrusted := redisdest.New(redisdest.Options{Dial: allowLoopback})
	defer untrusted.Close()
	res = untrusted.Send(t.Context(), signed(t, redisEndpoint(url, "tls-stream", 0, nil), `{}`))
	if res.Outcome != delivery.OutcomeNetworkError || !strings.Contains(res.Err, "certificate") {
		t.Errorf("Send with an untrusted certificate = %s %q", res.Outcome, res.Err)
	}
	// A plain redis:// client on the TLS port gets no entry in.
	plain := redisdest.New(redisdest.Options{Dial: allowLoopback})
	defer plain.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if res := plain.Send(ctx, signed(t, redisEndpoint("redis://127.0.0.1:"+port+"/0", "tls-stream", 0, nil), `{}`)); res.Outcome == delivery.OutcomeSuccess {
		t.Errorf("plain Send to the TLS port = %+v", res)
	}
}
