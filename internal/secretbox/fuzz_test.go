package secretbox

import (
	"bytes"
	"testing"
)

// FuzzOpen feeds arbitrary blobs to Open: it must never panic, and nothing
// but an exact blob sealed by the box may open.
func FuzzOpen(f *testing.F) {
	key := bytes.Repeat([]byte{7}, KeySize)
	box, err := New(key)
	if err != nil {
		f.Fatal(err)
	}
	good, _ := box.Seal([]byte("whsec_seed"))
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte{formatV1, 0, 0, 0, 0})
	f.Add(bytes.Repeat([]byte{formatV1}, Overhead))
	f.Fuzz(func(t *testing.T, blob []byte) {
		p, err := box.Open(blob)
		if err != nil {
			return
		}
		// It opened: it must be a genuine blob, i.e. re-opening gives the
		// same plaintext and its header names the box's key.
		if id, _ := BlobKeyID(blob); id != KeyID(key) {
			t.Fatalf("opened a blob with a foreign key id")
		}
		if bytes.Equal(blob, good) && string(p) != "whsec_seed" {
			t.Fatalf("seed blob opened to %q", p)
		}
	})
}

// FuzzParseKeys: no panic, and every key returned is KeySize bytes.
func FuzzParseKeys(f *testing.F) {
	for _, s := range []string{"", ",", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=,zz", "a\nb\r\nc"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		keys, err := ParseKeys(s)
		if err != nil {
			return
		}
		if len(keys) == 0 {
			t.Fatal("no error and no key")
		}
		for _, k := range keys {
			if len(k) != KeySize {
				t.Fatalf("key of %d bytes accepted", len(k))
			}
		}
		if _, err := New(keys...); err != nil {
			t.Fatalf("parsed keys rejected by New: %v", err)
		}
	})
}
