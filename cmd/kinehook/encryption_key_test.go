package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/internal/pgtest"
	"github.com/kinehook/kinehook/internal/secretbox"
	"github.com/kinehook/kinehook/postgres"
	"github.com/kinehook/kinehook/sqlite"
)

func TestEncryptionKeyGenerate(t *testing.T) {
	var keys []string
	for i := 0; i < 2; i++ {
		cmd := newEncryptionKeyCmd()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetArgs([]string{"generate"})
		if err := cmd.Execute(); err != nil {
			t.Fatal(err)
		}
		k := strings.TrimSpace(out.String())
		ks, err := secretbox.ParseKeys(k)
		if err != nil || len(ks) != 1 || len(ks[0]) != secretbox.KeySize {
			t.Fatalf("generate printed %q: %v", k, err)
		}
		keys = append(keys, k)
	}
	if keys[0] == keys[1] {
		t.Fatal("generate printed the same key twice")
	}
}

func TestEncryptionKeyRotateRefusals(t *testing.T) {
	t.Setenv(secretbox.EnvKey, "")
	ctx := context.Background()
	var out bytes.Buffer
	if err := runEncryptionKeyRotate(ctx, t.TempDir(), "mysql://x", &out); err == nil || !strings.Contains(err.Error(), "postgres://") {
		t.Errorf("non-postgres --database: %v", err)
	}
	empty := t.TempDir()
	err := runEncryptionKeyRotate(ctx, empty, "", &out)
	if err == nil {
		t.Fatal("rotate in a directory without a store succeeded")
	}
	if _, serr := os.Stat(filepath.Join(empty, secretbox.KeyFileName)); serr == nil {
		t.Error("a refused rotate created a key file")
	}
}

// seedSecrets stores a project and an endpoint with a signing secret and a
// Basic Auth password through st, and returns the endpoint.
func seedSecrets(t *testing.T, st kinehook.Store) *kinehook.Endpoint {
	t.Helper()
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	p := &kinehook.Project{ID: kinehook.NewID("prj"), Name: "rotation", CreatedAt: now}
	if err := st.CreateProject(ctx, p, kinehook.HashKey("key-"+p.ID)); err != nil {
		t.Fatal(err)
	}
	ep := &kinehook.Endpoint{
		ID: kinehook.NewID("ep"), ProjectID: p.ID, URL: "https://hooks.example.com/kinescope",
		Secrets: []kinehook.EndpointSecret{{Value: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}},
		Login:   "kinescope", Password: "basic-auth-password",
		CreatedAt: now, UpdatedAt: now,
	}
	if err := st.CreateEndpoint(ctx, ep); err != nil {
		t.Fatal(err)
	}
	return ep
}

func checkEndpointSecrets(t *testing.T, st kinehook.Store, want *kinehook.Endpoint) {
	t.Helper()
	got, err := st.GetEndpoint(context.Background(), want.ProjectID, want.ID)
	if err != nil {
		t.Fatalf("read endpoint after rotation: %v", err)
	}
	if len(got.Secrets) != 1 || got.Secrets[0].Value != want.Secrets[0].Value || got.Password != want.Password || got.Login != want.Login {
		t.Fatalf("endpoint after rotation: secrets %v login %q password %q", got.Secrets, got.Login, got.Password)
	}
}

// TestEncryptionKeyRotateSQLite rotates the generated key file of a real
// embedded store: afterwards the file holds one new key, the secrets read
// back with it, and the old key no longer opens them. While the store lacks
// ResealSecrets, the command must refuse and leave the key file alone.
func TestEncryptionKeyRotateSQLite(t *testing.T) {
	t.Setenv(secretbox.EnvKey, "")
	ctx := context.Background()
	dir := t.TempDir()
	oldBox, err := secretbox.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	dbPath := filepath.Join(dir, "kinehook.db")
	st, err := sqlite.Open(ctx, dbPath, sqlite.Options{SecretBox: oldBox})
	if err != nil {
		t.Fatal(err)
	}
	ep := seedSecrets(t, st)
	st.Close()

	var out bytes.Buffer
	err = runEncryptionKeyRotate(ctx, dir, "", &out)
	if err != nil {
		t.Fatalf("rotate: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "re-sealed ") || strings.Contains(out.String(), "re-sealed 0 ") {
		t.Errorf("rotate output %q; want some secrets re-sealed", out.String())
	}
	newBox, err := secretbox.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(newBox.KeyIDs()) != 1 || newBox.PrimaryKeyID() == oldBox.PrimaryKeyID() {
		t.Fatalf("key file after rotation holds %v (old %s)", newBox.KeyIDs(), oldBox.PrimaryKeyID())
	}
	st, err = sqlite.Open(ctx, dbPath, sqlite.Options{SecretBox: newBox})
	if err != nil {
		t.Fatal(err)
	}
	checkEndpointSecrets(t, st, ep)
	st.Close()
	st, err = sqlite.Open(ctx, dbPath, sqlite.Options{SecretBox: oldBox})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.GetEndpoint(ctx, ep.ProjectID, ep.ID); err == nil {
		t.Fatal("the old key still opens the secrets after rotation")
	}
}

// TestEncryptionKeyRotatePostgres rotates "NEW,OLD" from the environment on
// a fresh PostgreSQL database of its own.
func TestEncryptionKeyRotatePostgres(t *testing.T) {
	dsn := pgtest.New(t)
	ctx := context.Background()
	oldKey, _ := secretbox.GenerateKey()
	newKey, _ := secretbox.GenerateKey()
	t.Setenv(secretbox.EnvKey, oldKey)
	oldBox, err := secretbox.LoadRequired()
	if err != nil {
		t.Fatal(err)
	}
	st, err := postgres.Open(ctx, dsn, postgres.Options{SecretBox: oldBox})
	if err != nil {
		t.Fatal(err)
	}
	ep := seedSecrets(t, st)
	st.Close()

	t.Setenv(secretbox.EnvKey, newKey+","+oldKey)
	var out bytes.Buffer
	if err := runEncryptionKeyRotate(ctx, "", dsn, &out); err != nil {
		t.Fatalf("rotate: %v\n%s", err, out.String())
	}
	t.Setenv(secretbox.EnvKey, newKey)
	newBox, _ := secretbox.LoadRequired()
	st, err = postgres.Open(ctx, dsn, postgres.Options{SecretBox: newBox})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	checkEndpointSecrets(t, st, ep)
}
