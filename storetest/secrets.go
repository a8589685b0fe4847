package storetest

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
)

// SecretsOpener opens a fresh store that seals secrets with box (nil = plain
// text) and returns a function that dumps its raw storage (database files,
// or every table's rows as text), so the suite can look for plain text.
type SecretsOpener func(t *testing.T, box kinehook.SecretBox) (kinehook.Store, func() []byte)

// testBox is an AES-256-GCM SecretBox that counts its calls.
type testBox struct {
	aead         cipher.AEAD
	seals, opens atomic.Int64
}

// NewTestSecretBox returns an AES-256-GCM SecretBox with a random key, for tests.
func NewTestSecretBox(t testing.TB) kinehook.SecretBox {
	return newTestBox(t)
}

func newTestBox(t testing.TB) *testBox {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	block, err := aes.NewCipher(key)
	requireNoErr(t, err, "aes")
	aead, err := cipher.NewGCM(block)
	requireNoErr(t, err, "gcm")
	return &testBox{aead: aead}
}

func (b *testBox) Seal(plaintext []byte) ([]byte, error) {
	b.seals.Add(1)
	nonce := make([]byte, b.aead.NonceSize())
	_, _ = rand.Read(nonce)
	return b.aead.Seal(nonce, nonce, plaintext, nil), nil
}

func (b *testBox) Open(ciphertext []byte) ([]byte, error) {
	b.opens.Add(1)
	n := b.aead.NonceSize()
	if len(ciphertext) < n {
		return nil, errors.New("testbox: ciphertext too short")
	}
	return b.aead.Open(nil, ciphertext[:n], ciphertext[n:], nil)
}

// RunSecretsAtRest checks that, with a SecretBox, endpoint secrets, Basic
// Auth logins and passwords, custom header values and destination
// credentials never reach the raw
// storage in plain text and still read back exactly; and, as a control that
// the dump is meaningful, that they do appear in plain text without a box.
func RunSecretsAtRest(t *testing.T, open SecretsOpener) {
	type planted struct {
		secrets  []string
		password string
		// plain are further values that must not appear: logins, header values.
		plain []string
	}
	plant := func(t *testing.T, s kinehook.Store) planted {
		p, _ := newProject(t, s, "secretive")
		cur := "whsec_" + randHex(24)
		old := "whsec_" + randHex(24)
		pw := "pw-" + randHex(12)
		login := "login-" + randHex(12)
		token := "Bearer tok" + randHex(16)
		apiKey := "key" + randHex(16)
		e := newEndpoint(t, s, p.ID, func(e *kinehook.Endpoint) {
			e.Secrets = []kinehook.EndpointSecret{{Value: cur}, {Value: old, ExpiresAt: now().Add(24 * time.Hour)}}
			e.Login = login
			e.Password = pw
			e.Headers = map[string]string{"Authorization": token, "X-Api-Key": apiKey}
		})
		got, err := s.GetEndpoint(t.Context(), p.ID, e.ID)
		requireNoErr(t, err, "GetEndpoint")
		compareEndpoint(t, "sealed endpoint", got, e)

		// Secrets set by an update (rotation) are sealed as well.
		rotated := "whsec_" + randHex(24)
		newPW := "pw-" + randHex(12)
		newLogin := "login-" + randHex(12)
		newToken := "Bearer tok" + randHex(16)
		e.Secrets = []kinehook.EndpointSecret{{Value: rotated}, {Value: cur, ExpiresAt: now().Add(24 * time.Hour)}}
		e.Password = newPW
		e.Login = newLogin
		e.Headers = map[string]string{"Authorization": newToken, "X-Api-Key": apiKey}
		requireNoErr(t, s.UpdateEndpoint(t.Context(), e), "UpdateEndpoint")
		all, err := s.AllEndpoints(t.Context())
		requireNoErr(t, err, "AllEndpoints")
		if len(all) != 1 { // before the destination below
			t.Fatalf("AllEndpoints = %d", len(all))
		}
		compareEndpoint(t, "rotated endpoint", all[0], e)
		src := newInboxSource(t, s, p.ID)
		peer := &kinehook.InboxSource{ID: kinehook.NewID(kinehook.PrefixInbox), ProjectID: p.ID, Type: kinehook.InboxStandardWebhooks,
			Secret: "whsec_" + randHex(24), CreatedAt: now(), UpdatedAt: now()}
		requireNoErr(t, s.CreateInboxSource(t.Context(), peer), "CreateInboxSource")
		if got, err := s.InboxSourceByID(t.Context(), peer.ID); err != nil || got.Secret != peer.Secret {
			t.Fatalf("InboxSourceByID = %+v, %v", got, err)
		}

		// A destination's credentials are sealed, on create and on update.
		brokerPW := "bpw-" + randHex(16)
		btoken := "tok-" + randHex(16)
		d := newEndpoint(t, s, p.ID, func(d *kinehook.Endpoint) {
			d.Type, d.URL = kinehook.EndpointNATS, ""
			d.Config = json.RawMessage(`{"subject":"orders","url":"nats://broker.example:4222"}`)
			d.Credentials = map[string]string{"user": "svc", "password": "first-" + randHex(16)}
		})
		d.Credentials = map[string]string{"user": "svc", "password": brokerPW, "token": btoken}
		requireNoErr(t, s.UpdateEndpoint(t.Context(), d), "UpdateEndpoint destination")
		got, err = s.GetEndpoint(t.Context(), p.ID, d.ID)
		requireNoErr(t, err, "GetEndpoint destination")
		compareEndpoint(t, "destination endpoint", got, d)
		return planted{secrets: []string{rotated, cur, peer.Secret}, password: newPW, plain: []string{newLogin, newToken, apiKey, brokerPW, btoken, src.Password}}
	}

	t.Run("Sealed", func(t *testing.T) {
		box := newTestBox(t)
		s, dump := open(t, box)
		pl := plant(t, s)
		if box.seals.Load() == 0 || box.opens.Load() == 0 {
			t.Errorf("the SecretBox was not used: %d seals, %d opens", box.seals.Load(), box.opens.Load())
		}
		raw := dump()
		if len(raw) == 0 {
			t.Fatal("raw dump is empty")
		}
		for _, sec := range pl.secrets {
			// The random part alone must not appear either.
			if bytes.Contains(raw, []byte(sec[len("whsec_"):])) {
				t.Errorf("secret %s found in plain text in the raw storage", sec)
			}
		}
		if bytes.Contains(raw, []byte(pl.password)) {
			t.Errorf("password found in plain text in the raw storage")
		}
		for _, v := range pl.plain {
			if bytes.Contains(raw, []byte(v[len(v)-16:])) {
				t.Errorf("login or custom header value %q found in plain text in the raw storage", v)
			}
		}
	})
	t.Run("PlainControl", func(t *testing.T) {
		s, dump := open(t, nil)
		pl := plant(t, s)
		raw := dump()
		if !bytes.Contains(raw, []byte(pl.secrets[0])) || !bytes.Contains(raw, []byte(pl.password)) ||
			!bytes.Contains(raw, []byte(pl.plain[0])) || !bytes.Contains(raw, []byte(pl.plain[1])) ||
			!bytes.Contains(raw, []byte(pl.plain[3])) {
			t.Errorf("without a SecretBox the secrets are not visible in the dump: the dump does not show the storage")
		}
	})
}
