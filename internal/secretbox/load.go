package secretbox

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/kinehook/kinehook"
)

// EnvKey is the environment variable holding the encryption key(s):
// base64 32-byte keys, comma-separated, the one that seals first.
const EnvKey = "KINEHOOK_ENCRYPTION_KEY"

// KeyFileName is the key file generated in the data directory when EnvKey
// is not set (embedded store only).
const KeyFileName = "encryption.key"

// Load returns the Box for the embedded store in dataDir: from EnvKey when
// it is set; otherwise from dataDir/encryption.key, generating that file
// (mode 0600) on first use. A key file that group or others may read is
// refused rather than used, since anyone who can read it can read every
// secret.
func Load(dataDir string) (*Box, error) {
	if box, ok, err := FromEnv(); ok || err != nil {
		return box, err
	}
	path := filepath.Join(dataDir, KeyFileName)
	keys, err := ReadKeyFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return nil, fmt.Errorf("secretbox: create data directory: %w", err)
		}
		if keys, err = createKeyFile(path); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	return New(keys...)
}

// LoadRequired returns the Box from EnvKey, which must be set: with
// PostgreSQL there is no private data directory to keep a generated key in,
// and instances must share the key.
func LoadRequired() (*Box, error) {
	box, ok, err := FromEnv()
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%s must be set with PostgreSQL (every instance needs the same key; generate one with `kinehook encryption-key generate`)", EnvKey)
	}
	return box, nil
}

// FromEnv returns the Box from EnvKey; ok is false when it is unset or empty.
func FromEnv() (box *Box, ok bool, err error) {
	v := os.Getenv(EnvKey)
	if strings.TrimSpace(v) == "" {
		return nil, false, nil
	}
	keys, err := ParseKeys(v)
	if err != nil {
		return nil, true, fmt.Errorf("%s: %w", EnvKey, err)
	}
	box, err = New(keys...)
	if err != nil {
		return nil, true, fmt.Errorf("%s: %w", EnvKey, err)
	}
	return box, true, nil
}

// ReadKeyFile reads a key file (keys one per line, the sealing key first)
// after checking that only its owner can read it.
func ReadKeyFile(path string) ([][]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("secretbox: key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("secretbox: key file %s is not a regular file", path)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("secretbox: key file %s has mode %04o and may be read by other users; refusing to use it (run `chmod 600 %s`)", path, fi.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("secretbox: key file: %w", err)
	}
	keys, err := ParseKeys(string(b))
	if err != nil {
		return nil, fmt.Errorf("secretbox: key file %s: %w", path, err)
	}
	return keys, nil
}

// WriteKeyFile replaces path with the given keys, one per line, mode 0600,
// atomically (write to a temporary file, sync, rename), so a crash leaves
// either the old file or the new one.
func WriteKeyFile(path string, keys [][]byte) error {
	tmp, err := writeTemp(path, keys)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("secretbox: replace key file: %w", err)
	}
	return syncDir(filepath.Dir(path))
}

// createKeyFile generates a key into path unless the file appears
// meanwhile (another process starting on the same directory), in which
// case that file's keys are used.
func createKeyFile(path string) ([][]byte, error) {
	s, err := GenerateKey()
	if err != nil {
		return nil, err
	}
	keys, err := ParseKeys(s)
	if err != nil {
		return nil, err
	}
	tmp, err := writeTemp(path, keys)
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp)
	// A hard link creates path only if it does not exist, with its full content.
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return ReadKeyFile(path)
		}
		return nil, fmt.Errorf("secretbox: create key file: %w", err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	return keys, nil
}

func writeTemp(path string, keys [][]byte) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return "", fmt.Errorf("secretbox: write key file: %w", err)
	}
	name := f.Name()
	fail := func(err error) (string, error) {
		f.Close()
		os.Remove(name)
		return "", fmt.Errorf("secretbox: write key file: %w", err)
	}
	if err := f.Chmod(0o600); err != nil {
		return fail(err)
	}
	var sb strings.Builder
	for _, k := range keys {
		sb.WriteString(encodeKey(k))
		sb.WriteByte('\n')
	}
	if _, err := f.WriteString(sb.String()); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(name)
		return "", fmt.Errorf("secretbox: write key file: %w", err)
	}
	return name, nil
}

func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("secretbox: sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("secretbox: sync %s: %w", dir, err)
	}
	return nil
}

// Rotate re-seals every secret r holds with box's primary key (box must
// hold every key a stored secret may be sealed with). It returns how many
// values were rewritten.
func Rotate(ctx context.Context, r kinehook.Resealer, box *Box) (int, error) {
	n, err := r.ResealSecrets(ctx, box.Reseal)
	if err != nil {
		return n, fmt.Errorf("re-seal secrets with key %s: %w", box.PrimaryKeyID(), err)
	}
	return n, nil
}

// FileRotation is a rotation of the key file in a data directory, in two
// steps so a crash at any point leaves every secret readable: Begin puts a
// new key in front of the old ones in the file (new secrets are sealed with
// it, old ones still open); after the store is re-sealed, Finish drops the
// old keys.
type FileRotation struct {
	// Box holds the new key (primary) and the old ones.
	Box  *Box
	path string
	key  []byte
}

// BeginFileRotation generates a new key and writes it in front of the
// keys of dataDir/encryption.key. It refuses when EnvKey is set (the
// environment, not the file, holds the keys then) or the file is missing.
func BeginFileRotation(dataDir string) (*FileRotation, error) {
	if os.Getenv(EnvKey) != "" {
		return nil, fmt.Errorf("%s is set: rotate by putting a new key in front of it (\"NEW,OLD\"), not in the key file", EnvKey)
	}
	path := filepath.Join(dataDir, KeyFileName)
	old, err := ReadKeyFile(path)
	if err != nil {
		return nil, err
	}
	s, err := GenerateKey()
	if err != nil {
		return nil, err
	}
	nk, err := decodeKey(s)
	if err != nil {
		return nil, err
	}
	keys := append([][]byte{nk}, old...)
	box, err := New(keys...)
	if err != nil {
		return nil, err
	}
	if err := WriteKeyFile(path, keys); err != nil {
		return nil, err
	}
	return &FileRotation{Box: box, path: path, key: nk}, nil
}

// Finish leaves only the new key in the key file. Call it after every
// secret was re-sealed with Box.
func (r *FileRotation) Finish() error {
	return WriteKeyFile(r.path, [][]byte{r.key})
}
