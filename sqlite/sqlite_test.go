package sqlite_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/sqlite"
	"github.com/kinehook/kinehook/storetest"
)

func openAt(t *testing.T, path string, box kinehook.SecretBox) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), path, sqlite.Options{SecretBox: box})
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStoreSuite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) kinehook.Store {
		return openAt(t, filepath.Join(t.TempDir(), "kinehook.db"), nil)
	})
}

func TestSecretsAtRest(t *testing.T) {
	storetest.RunSecretsAtRest(t, func(t *testing.T, box kinehook.SecretBox) (kinehook.Store, func() []byte) {
		path := filepath.Join(t.TempDir(), "kinehook.db")
		s := openAt(t, path, box)
		return s, func() []byte {
			var all []byte
			for _, p := range []string{path, path + "-wal"} {
				b, err := os.ReadFile(p)
				if err != nil && !os.IsNotExist(err) {
					t.Fatalf("read %s: %v", p, err)
				}
				all = append(all, b...)
			}
			return all
		}
	})
}
