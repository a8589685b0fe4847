// Package secretbox encrypts kinehook's secrets at rest (endpoint signing
// secrets, Basic Auth logins and passwords, custom header values) with AES-256-GCM, so a leaked
// database dump or backup does not hand out the keys that sign webhooks.
//
// Every sealed blob names the key that sealed it, so the encryption key can
// rotate: a Box holds one or more keys, seals with the first and opens with
// whichever one the blob names. The key comes from KINEHOOK_ENCRYPTION_KEY
// ("new,old" during a rotation) or, for the embedded store only, from a key
// file generated in the data directory with mode 0600.
package secretbox

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/kinehook/kinehook"
)

// KeySize is the length of an encryption key: 32 bytes, AES-256.
const KeySize = 32

// Blob layout: version (1 byte) | key id (4 bytes) | nonce (12) | ciphertext+tag (16).
// The version and key id are authenticated as additional data.
const (
	formatV1   = 0x01
	keyIDSize  = 4
	headerSize = 1 + keyIDSize
	nonceSize  = 12
	tagSize    = 16
	// Overhead is how many bytes Seal adds to the plaintext.
	Overhead = headerSize + nonceSize + tagSize
)

// ErrUnknownKey is returned by Open for a blob sealed with a key the Box
// does not hold (a key removed too early from KINEHOOK_ENCRYPTION_KEY, or
// the wrong key altogether).
var ErrUnknownKey = errors.New("secretbox: sealed with a key that is not configured")

// ErrTampered is returned by Open when authentication fails: the blob was
// changed, truncated, or sealed by a different key with a colliding id.
var ErrTampered = errors.New("secretbox: authentication failed (data changed or wrong key)")

type key struct {
	id   [keyIDSize]byte
	aead cipher.AEAD
}

// Box is an AES-256-GCM kinehook.SecretBox holding one or more keys: it
// seals with the first (the primary) and opens blobs sealed by any of them.
// Safe for concurrent use.
type Box struct {
	keys []key
}

var _ kinehook.SecretBox = (*Box)(nil)

// New returns a Box over the given 32-byte keys, the first one primary.
func New(keys ...[]byte) (*Box, error) {
	if len(keys) == 0 {
		return nil, errors.New("secretbox: no key")
	}
	b := &Box{}
	seen := map[[keyIDSize]byte]bool{}
	for i, k := range keys {
		if len(k) != KeySize {
			return nil, fmt.Errorf("secretbox: key %d is %d bytes; want %d (AES-256)", i+1, len(k), KeySize)
		}
		id := KeyID(k)
		if seen[id] {
			continue // the same key listed twice
		}
		seen[id] = true
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("secretbox: key %d: %w", i+1, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("secretbox: key %d: %w", i+1, err)
		}
		b.keys = append(b.keys, key{id: id, aead: aead})
	}
	return b, nil
}

// KeyID is the short public name of a key that sealed blobs carry: the
// first 4 bytes of SHA-256 over a label and the key. It identifies, it does
// not authenticate (GCM does).
func KeyID(k []byte) [keyIDSize]byte {
	h := sha256.New()
	h.Write([]byte("kinehook secretbox key id v1\x00"))
	h.Write(k)
	var id [keyIDSize]byte
	copy(id[:], h.Sum(nil))
	return id
}

// PrimaryKeyID returns the hex id of the key that seals (printed by the
// rotate command and safe to log).
func (b *Box) PrimaryKeyID() string { return hex.EncodeToString(b.keys[0].id[:]) }

// KeyIDs returns the hex ids of all keys, primary first.
func (b *Box) KeyIDs() []string {
	out := make([]string, len(b.keys))
	for i, k := range b.keys {
		out[i] = hex.EncodeToString(k.id[:])
	}
	return out
}

// Seal encrypts plaintext with the primary key and a random nonce.
func (b *Box) Seal(plaintext []byte) ([]byte, error) {
	k := b.keys[0]
	out := make([]byte, headerSize+nonceSize, Overhead+len(plaintext))
	out[0] = formatV1
	copy(out[1:headerSize], k.id[:])
	if _, err := rand.Read(out[headerSize:]); err != nil {
		return nil, fmt.Errorf("secretbox: nonce: %w", err)
	}
	return k.aead.Seal(out, out[headerSize:headerSize+nonceSize], plaintext, out[:headerSize]), nil
}

// Open decrypts a blob from Seal with whichever configured key sealed it.
func (b *Box) Open(sealed []byte) ([]byte, error) {
	id, err := BlobKeyID(sealed)
	if err != nil {
		return nil, err
	}
	found := false
	for _, k := range b.keys {
		if k.id != id {
			continue
		}
		found = true
		p, err := k.aead.Open(nil, sealed[headerSize:headerSize+nonceSize], sealed[headerSize+nonceSize:], sealed[:headerSize])
		if err == nil {
			return p, nil
		}
	}
	if !found {
		return nil, fmt.Errorf("%w (key id %x; configured: %s)", ErrUnknownKey, id, strings.Join(b.KeyIDs(), ", "))
	}
	return nil, ErrTampered
}

// BlobKeyID returns the id of the key that sealed blob, after checking the
// blob's format and length.
func BlobKeyID(sealed []byte) ([keyIDSize]byte, error) {
	var id [keyIDSize]byte
	if len(sealed) < Overhead {
		return id, fmt.Errorf("secretbox: sealed blob is %d bytes, shorter than the %d-byte minimum", len(sealed), Overhead)
	}
	if sealed[0] != formatV1 {
		return id, fmt.Errorf("secretbox: unknown sealed format version %d", sealed[0])
	}
	copy(id[:], sealed[1:headerSize])
	return id, nil
}

// Reseal opens a blob with any configured key and seals it again with the
// primary key. A blob already sealed with the primary key is returned as it
// is (after checking it opens), so a rotation that was interrupted can run
// again and only rewrites what is left.
func (b *Box) Reseal(sealed []byte) ([]byte, error) {
	p, err := b.Open(sealed)
	if err != nil {
		return nil, err
	}
	if id, _ := BlobKeyID(sealed); id == b.keys[0].id {
		return sealed, nil
	}
	return b.Seal(p)
}

// GenerateKey returns a new random key, base64-encoded (standard alphabet,
// padded): the form KINEHOOK_ENCRYPTION_KEY and the key file take.
func GenerateKey() (string, error) {
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		return "", fmt.Errorf("secretbox: generate key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(k), nil
}

// ParseKeys reads a key list: base64 keys of 32 bytes separated by commas
// or newlines (spaces around them ignored), the primary first. Standard and
// URL-safe alphabets, padded or not, are accepted.
func ParseKeys(s string) ([][]byte, error) {
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' })
	var keys [][]byte
	for i, f := range fields {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		k, err := decodeKey(f)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("no key given")
	}
	return keys, nil
}

func decodeKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil {
			if len(k) != KeySize {
				return nil, fmt.Errorf("decodes to %d bytes; want %d (generate one with `kinehook encryption-key generate`)", len(k), KeySize)
			}
			return k, nil
		}
	}
	return nil, errors.New("not base64 (generate one with `kinehook encryption-key generate`)")
}

func encodeKey(k []byte) string { return base64.StdEncoding.EncodeToString(k) }
