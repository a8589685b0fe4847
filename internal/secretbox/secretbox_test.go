package secretbox

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func newKey(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func newBox(t *testing.T, keys ...[]byte) *Box {
	t.Helper()
	b, err := New(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	box := newBox(t, newKey(t))
	for _, p := range [][]byte{{}, []byte("x"), []byte("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), bytes.Repeat([]byte{0, 255}, 5000)} {
		sealed, err := box.Seal(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(sealed) != len(p)+Overhead {
			t.Errorf("sealed %d bytes into %d; want +%d", len(p), len(sealed), Overhead)
		}
		if len(p) > 4 && bytes.Contains(sealed, p) {
			t.Error("the plaintext is visible in the sealed blob")
		}
		got, err := box.Open(sealed)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, p) {
			t.Fatalf("Open(Seal(%q)) = %q", p, got)
		}
	}
	// Random nonces: sealing the same secret twice gives different blobs.
	a, _ := box.Seal([]byte("same"))
	b, _ := box.Seal([]byte("same"))
	if bytes.Equal(a, b) {
		t.Fatal("two seals of the same plaintext are identical")
	}
}

func TestTamperDetection(t *testing.T) {
	box := newBox(t, newKey(t))
	sealed, _ := box.Seal([]byte("whsec_secret-value"))
	for i := range sealed {
		for _, bit := range []byte{0x01, 0x80} {
			c := bytes.Clone(sealed)
			c[i] ^= bit
			if p, err := box.Open(c); err == nil {
				t.Fatalf("flipping bit %#x of byte %d went unnoticed: %q", bit, i, p)
			}
		}
	}
	for _, n := range []int{0, 1, Overhead - 1, len(sealed) - 1} {
		if _, err := box.Open(sealed[:n]); err == nil {
			t.Fatalf("a blob truncated to %d bytes opened", n)
		}
	}
	c := bytes.Clone(sealed)
	c[len(c)-1] ^= 1
	if _, err := box.Open(c); !errors.Is(err, ErrTampered) {
		t.Fatalf("tampered tag: %v; want ErrTampered", err)
	}
	if _, err := box.Open(append(bytes.Clone(sealed), 0)); err == nil {
		t.Fatal("a blob with an extra byte opened")
	}
}

func TestWrongKey(t *testing.T) {
	sealed, _ := newBox(t, newKey(t)).Seal([]byte("secret"))
	_, err := newBox(t, newKey(t)).Open(sealed)
	if !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("Open with another key: %v; want ErrUnknownKey", err)
	}
	// A different key under the same id (forged header) fails authentication.
	other := newBox(t, newKey(t))
	forged, _ := other.Seal([]byte("secret"))
	real := newBox(t, newKey(t))
	copy(forged[1:headerSize], real.keys[0].id[:])
	if _, err := real.Open(forged); !errors.Is(err, ErrTampered) {
		t.Fatalf("forged key id: %v; want ErrTampered", err)
	}
}

func TestRotation(t *testing.T) {
	oldK, newK := newKey(t), newKey(t)
	oldBox := newBox(t, oldK)
	oldBlob, _ := oldBox.Seal([]byte("old secret"))

	both := newBox(t, newK, oldK)
	if p, err := both.Open(oldBlob); err != nil || string(p) != "old secret" {
		t.Fatalf("new,old box cannot open an old blob: %q, %v", p, err)
	}
	newBlob, _ := both.Seal([]byte("new secret"))
	if id, _ := BlobKeyID(newBlob); id != KeyID(newK) {
		t.Fatal("new,old box does not seal with the first key")
	}
	if _, err := oldBox.Open(newBlob); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("old box opened a new blob: %v", err)
	}

	resealed, err := both.Reseal(oldBlob)
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := BlobKeyID(resealed); id != KeyID(newK) {
		t.Fatal("Reseal did not use the primary key")
	}
	if again, err := both.Reseal(resealed); err != nil || !bytes.Equal(again, resealed) {
		t.Fatalf("Reseal of a blob already under the primary key changed it (%v)", err)
	}
	newOnly := newBox(t, newK)
	if p, err := newOnly.Open(resealed); err != nil || string(p) != "old secret" {
		t.Fatalf("after rotation the new key alone cannot open: %q, %v", p, err)
	}
	if _, err := newOnly.Open(oldBlob); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("the new key alone opened an old blob: %v", err)
	}
	if _, err := newOnly.Reseal(oldBlob); err == nil {
		t.Fatal("Reseal of a blob under an unknown key succeeded")
	}
}

func TestNewRejectsBadKeys(t *testing.T) {
	if _, err := New(); err == nil {
		t.Error("New() without keys succeeded")
	}
	if _, err := New(make([]byte, 16)); err == nil || !strings.Contains(err.Error(), "16 bytes") {
		t.Errorf("New(16-byte key) = %v", err)
	}
	k := newKey(t)
	if b, err := New(k, k); err != nil || len(b.KeyIDs()) != 1 {
		t.Errorf("duplicate key: %v, %v", b, err)
	}
}

func TestParseKeys(t *testing.T) {
	k1, k2 := newKey(t), newKey(t)
	std1, std2 := base64.StdEncoding.EncodeToString(k1), base64.StdEncoding.EncodeToString(k2)
	tests := []struct {
		in   string
		want [][]byte
		err  string
	}{
		{std1, [][]byte{k1}, ""},
		{std1 + "," + std2, [][]byte{k1, k2}, ""},
		{" " + std1 + " , " + std2 + " \n", [][]byte{k1, k2}, ""},
		{std1 + "\n" + std2 + "\n", [][]byte{k1, k2}, ""},
		{base64.RawURLEncoding.EncodeToString(k1), [][]byte{k1}, ""},
		{"", nil, "no key"},
		{" , ", nil, "no key"},
		{"not base64!", nil, "not base64"},
		{base64.StdEncoding.EncodeToString([]byte("short")), nil, "5 bytes"},
		{std1 + ",zz", nil, "key 2"},
	}
	for _, tt := range tests {
		got, err := ParseKeys(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseKeys(%q) = %v; want error containing %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || len(got) != len(tt.want) {
			t.Errorf("ParseKeys(%q) = %d keys, %v", tt.in, len(got), err)
			continue
		}
		for i := range got {
			if !bytes.Equal(got[i], tt.want[i]) {
				t.Errorf("ParseKeys(%q)[%d] differs", tt.in, i)
			}
		}
	}
	s, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if ks, err := ParseKeys(s); err != nil || len(ks) != 1 {
		t.Fatalf("GenerateKey output does not parse: %v", err)
	}
}

func TestLoadGeneratesKeyFile(t *testing.T) {
	t.Setenv(EnvKey, "")
	dir := filepath.Join(t.TempDir(), "data")
	box, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, KeyFileName)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %04o; want 0600", fi.Mode().Perm())
	}
	sealed, _ := box.Seal([]byte("secret"))
	// A second start reads the same key.
	again, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := again.Open(sealed); err != nil || string(p) != "secret" {
		t.Fatalf("second Load has another key: %v", err)
	}
	// No temporary files are left behind.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("data directory holds %d entries; want only the key file", len(entries))
	}
}

func TestLoadRefusesReadableKeyFile(t *testing.T) {
	t.Setenv(EnvKey, "")
	dir := t.TempDir()
	if _, err := Load(dir); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, KeyFileName)
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := Load(dir)
		if err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("Load with key file mode %04o: %v; want a refusal", mode, err)
		}
	}
	os.Chmod(path, 0o400)
	if _, err := Load(dir); err != nil {
		t.Errorf("Load with mode 0400: %v", err)
	}
}

func TestLoadFromEnv(t *testing.T) {
	k1, k2 := newKey(t), newKey(t)
	oldBlob, _ := newBox(t, k2).Seal([]byte("old"))
	t.Setenv(EnvKey, base64.StdEncoding.EncodeToString(k1)+","+base64.StdEncoding.EncodeToString(k2))
	dir := t.TempDir()
	box, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, KeyFileName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a key file was generated although the environment holds the key")
	}
	if p, err := box.Open(oldBlob); err != nil || string(p) != "old" {
		t.Fatalf("env box cannot open with the second key: %v", err)
	}
	if box.PrimaryKeyID() != box.KeyIDs()[0] || len(box.KeyIDs()) != 2 {
		t.Fatalf("key ids %v", box.KeyIDs())
	}
	req, err := LoadRequired()
	if err != nil || req.PrimaryKeyID() != box.PrimaryKeyID() {
		t.Fatalf("LoadRequired with env set: %v", err)
	}

	t.Setenv(EnvKey, "bogus")
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), EnvKey) {
		t.Fatalf("bad env key: %v", err)
	}
	t.Setenv(EnvKey, "")
	if _, err := LoadRequired(); err == nil || !strings.Contains(err.Error(), "PostgreSQL") {
		t.Fatalf("LoadRequired without env: %v", err)
	}
}

// memResealer holds sealed values like a store's secret columns.
type memResealer struct {
	values [][]byte
}

func (m *memResealer) ResealSecrets(_ context.Context, reseal func([]byte) ([]byte, error)) (int, error) {
	out := make([][]byte, len(m.values))
	n := 0
	for i, v := range m.values {
		r, err := reseal(v)
		if err != nil {
			return 0, err
		}
		if !bytes.Equal(r, v) {
			n++
		}
		out[i] = r
	}
	m.values = out
	return n, nil
}

func TestFileRotation(t *testing.T) {
	t.Setenv(EnvKey, "")
	dir := t.TempDir()
	oldBox, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	store := &memResealer{}
	for _, s := range []string{"whsec_a", "whsec_b", "password"} {
		b, _ := oldBox.Seal([]byte(s))
		store.values = append(store.values, b)
	}

	rot, err := BeginFileRotation(dir)
	if err != nil {
		t.Fatal(err)
	}
	// Mid-rotation (a crash here) the file holds both keys: a restart opens everything.
	mid, err := Load(dir)
	if err != nil || len(mid.KeyIDs()) != 2 || mid.PrimaryKeyID() != rot.Box.PrimaryKeyID() {
		t.Fatalf("mid-rotation Load: %v, %v", mid, err)
	}
	if mid.PrimaryKeyID() == oldBox.PrimaryKeyID() {
		t.Fatal("rotation kept the old key as primary")
	}
	n, err := Rotate(context.Background(), store, rot.Box)
	if err != nil || n != 3 {
		t.Fatalf("Rotate = %d, %v; want 3", n, err)
	}
	if n, _ := Rotate(context.Background(), store, rot.Box); n != 0 {
		t.Fatalf("a second Rotate rewrote %d values; want 0", n)
	}
	if err := rot.Finish(); err != nil {
		t.Fatal(err)
	}
	after, err := Load(dir)
	if err != nil || len(after.KeyIDs()) != 1 || after.PrimaryKeyID() != rot.Box.PrimaryKeyID() {
		t.Fatalf("after Finish: %v, %v", after, err)
	}
	fi, _ := os.Stat(filepath.Join(dir, KeyFileName))
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("rotated key file mode %04o", fi.Mode().Perm())
	}
	for i, want := range []string{"whsec_a", "whsec_b", "password"} {
		p, err := after.Open(store.values[i])
		if err != nil || string(p) != want {
			t.Fatalf("value %d after rotation: %q, %v", i, p, err)
		}
		if _, err := oldBox.Open(store.values[i]); err == nil {
			t.Fatalf("value %d still opens with the old key", i)
		}
	}

	// A value under a key nobody holds stops the rotation with an error.
	stranger, _ := newBox(t, newKey(t)).Seal([]byte("x"))
	store.values = append(store.values, stranger)
	if _, err := Rotate(context.Background(), store, after); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("Rotate over an unknown key: %v; want ErrUnknownKey", err)
	}

	t.Setenv(EnvKey, base64.StdEncoding.EncodeToString(newKey(t)))
	if _, err := BeginFileRotation(dir); err == nil {
		t.Fatal("file rotation started while the environment holds the key")
	}
}
