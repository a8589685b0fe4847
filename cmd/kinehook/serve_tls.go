package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	nethttp "net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"

	"github.com/kinehook/kinehook"
)

// certReloader serves a certificate from files and loads them again on
// SIGHUP: connections already open keep theirs, new handshakes get the new
// one, nothing is dropped. A reload that fails keeps the certificate in use.
type certReloader struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
	log               *slog.Logger
}

func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	c := &certReloader{certFile: certFile, keyFile: keyFile, log: log}
	if err := c.reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// reload loads the files; on error the current certificate stays.
func (c *certReloader) reload() error {
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("load --tls-cert %s and --tls-key %s: %w", c.certFile, c.keyFile, err)
	}
	if cert.Leaf == nil && len(cert.Certificate) > 0 {
		cert.Leaf, _ = x509.ParseCertificate(cert.Certificate[0])
	}
	c.cur.Store(&cert)
	return nil
}

// GetCertificate is tls.Config.GetCertificate.
func (c *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.cur.Load(), nil
}

// watch reloads on every SIGHUP until ctx ends.
func (c *certReloader) watch(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if err := c.reload(); err != nil {
					c.log.Error("TLS: SIGHUP: the certificate was not reloaded; the previous one stays in use", "err", err)
					continue
				}
				leaf := c.cur.Load().Leaf
				if leaf != nil {
					c.log.Info("TLS: certificate reloaded", "subject", leaf.Subject.String(), "not_after", leaf.NotAfter)
				} else {
					c.log.Info("TLS: certificate reloaded")
				}
			}
		}
	}()
}

// serveTLSConfig is the listener's TLS settings from the flags: nil without
// TLS; files (--tls-cert/--tls-key, reloaded on SIGHUP) or automatic
// certificates (--acme-domain) whose cache is the data folder (SQLite) or
// the database (PostgreSQL: every instance shares the account and the
// certificates).
func serveTLSConfig(ctx context.Context, o *serveOptions, st kinehook.Store, log *slog.Logger) (*tls.Config, error) {
	var domains []string // the environment gives them comma-separated
	for _, d := range o.acmeDomains {
		for _, p := range strings.Split(d, ",") {
			if p = strings.TrimSpace(p); p != "" {
				domains = append(domains, p)
			}
		}
	}
	o.acmeDomains = domains
	files := o.tlsCert != "" || o.tlsKey != ""
	switch {
	case files && len(o.acmeDomains) > 0:
		return nil, errors.New("--tls-cert/--tls-key and --acme-domain exclude each other: give files or let ACME get certificates")
	case files && (o.tlsCert == "" || o.tlsKey == ""):
		return nil, errors.New("--tls-cert and --tls-key go together")
	case files:
		r, err := newCertReloader(o.tlsCert, o.tlsKey, log)
		if err != nil {
			return nil, err
		}
		r.watch(ctx)
		return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.GetCertificate}, nil
	case len(o.acmeDomains) > 0:
		m, err := acmeManager(o, st)
		if err != nil {
			return nil, err
		}
		cfg := m.TLSConfig() // answers the tls-alpn-01 challenge on this port
		cfg.MinVersion = tls.VersionTLS12
		return cfg, nil
	}
	return nil, nil
}

// acmeManager builds the autocert manager of --acme-domain.
func acmeManager(o *serveOptions, st kinehook.Store) (*autocert.Manager, error) {
	var cache autocert.Cache
	if cc, ok := st.(kinehook.CertCache); ok && o.database != "" {
		cache = certCache{cc}
	} else {
		dir := filepath.Join(o.data, "acme")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("--acme-domain: certificate cache %s: %w", dir, err)
		}
		cache = autocert.DirCache(dir)
	}
	client := &acme.Client{DirectoryURL: o.acmeDirectory}
	if o.acmeCA != "" {
		pem, err := os.ReadFile(o.acmeCA)
		if err != nil {
			return nil, fmt.Errorf("--acme-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--acme-ca %s: no PEM certificate in it", o.acmeCA)
		}
		client.HTTPClient = &nethttp.Client{Transport: &nethttp.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	}
	return &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		HostPolicy: autocert.HostWhitelist(o.acmeDomains...),
		Cache:      cache,
		Email:      o.acmeEmail,
		Client:     client,
	}, nil
}

// certCache is autocert's cache over the store (kinehook.CertCache).
type certCache struct{ s kinehook.CertCache }

func (c certCache) Get(ctx context.Context, key string) ([]byte, error) {
	b, err := c.s.CacheGet(ctx, key)
	if errors.Is(err, kinehook.ErrNotFound) {
		return nil, autocert.ErrCacheMiss
	}
	return b, err
}

func (c certCache) Put(ctx context.Context, key string, data []byte) error {
	return c.s.CachePut(ctx, key, data)
}

func (c certCache) Delete(ctx context.Context, key string) error {
	return c.s.CacheDelete(ctx, key)
}
