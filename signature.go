package kinehook

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Standard Webhooks header names.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
	// HeaderAttempt is not part of Standard Webhooks: some senders set it to
	// the 1-based attempt number (kinehook's does not; its webhook-id and
	// webhook-timestamp identify an attempt), and the Handler prefers it to
	// its own count when present.
	HeaderAttempt = "webhook-attempt"
)

// Key prefixes of Standard Webhooks: a symmetric secret (HMAC-SHA256, "v1")
// and the two halves of an asymmetric ed25519 key pair ("v1a").
const (
	SecretPrefix     = "whsec_"
	PrivateKeyPrefix = "whsk_"
	PublicKeyPrefix  = "whpk_"
)

// Signature versions as they appear in the webhook-signature header.
const (
	SignatureV1  = "v1"
	SignatureV1a = "v1a"
)

// Tolerance is how far a webhook-timestamp may be from the receiver's clock,
// in either direction, before the request is refused as a possible replay.
const Tolerance = 5 * time.Minute

// Errors returned by Verify. They are wrapped with detail; test with errors.Is.
var (
	ErrMissingHeaders      = errors.New("missing Standard Webhooks header")
	ErrInvalidTimestamp    = errors.New("webhook-timestamp is not unix seconds")
	ErrTimestampTooOld     = errors.New("webhook-timestamp is too old")
	ErrTimestampTooNew     = errors.New("webhook-timestamp is too far in the future")
	ErrNoMatchingSignature = errors.New("no signature matches")
)

// DecodeSecret returns the HMAC key of a whsec_ secret (the prefix is optional,
// as in the reference library).
func DecodeSecret(secret string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, SecretPrefix))
	if err != nil {
		return nil, fmt.Errorf("decode secret: %w", err)
	}
	if len(key) == 0 {
		return nil, errors.New("decode secret: empty key")
	}
	return key, nil
}

// GenerateSecret returns a new symmetric signing secret: "whsec_" and the
// base64 of 32 random bytes (the spec allows 24 to 64).
func GenerateSecret() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate secret: %w", err)
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(b[:]), nil
}

// GenerateKeyPair returns a new ed25519 key pair for "v1a" signatures: the
// private key "whsk_" + base64(32-byte seed), kept by the sender, and the
// public key "whpk_" + base64(32-byte public key), given to receivers.
func GenerateKeyPair() (privateKey, publicKey string, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("generate key pair: %w", err)
	}
	return PrivateKeyPrefix + base64.StdEncoding.EncodeToString(priv.Seed()),
		PublicKeyPrefix + base64.StdEncoding.EncodeToString(pub), nil
}

// DecodePrivateKey returns the ed25519 key of a whsk_ key. It accepts the
// base64 of the 32-byte seed (what GenerateKeyPair writes and the reference
// library's asymmetric branch reads) and of the 64-byte seed||public form
// (what Svix writes), checking that the halves of the latter agree.
func DecodePrivateKey(key string) (ed25519.PrivateKey, error) {
	raw, ok := strings.CutPrefix(key, PrivateKeyPrefix)
	if !ok {
		return nil, fmt.Errorf("decode private key: want prefix %q", PrivateKeyPrefix)
	}
	b, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		return nil, fmt.Errorf("decode private key: %w", err)
	}
	switch len(b) {
	case ed25519.SeedSize:
		return ed25519.NewKeyFromSeed(b), nil
	case ed25519.PrivateKeySize:
		priv := ed25519.NewKeyFromSeed(b[:ed25519.SeedSize])
		if subtle.ConstantTimeCompare(priv[ed25519.SeedSize:], b[ed25519.SeedSize:]) != 1 {
			return nil, errors.New("decode private key: public half does not match the seed")
		}
		return priv, nil
	}
	return nil, fmt.Errorf("decode private key: %d bytes, want %d (seed) or %d", len(b), ed25519.SeedSize, ed25519.PrivateKeySize)
}

// DecodePublicKey returns the ed25519 key of a whpk_ key (base64 of 32 bytes).
func DecodePublicKey(key string) (ed25519.PublicKey, error) {
	raw, ok := strings.CutPrefix(key, PublicKeyPrefix)
	if !ok {
		return nil, fmt.Errorf("decode public key: want prefix %q", PublicKeyPrefix)
	}
	b, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		return nil, fmt.Errorf("decode public key: %w", err)
	}
	if len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("decode public key: %d bytes, want %d", len(b), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b), nil
}

// PublicKeyOf returns the whpk_ public key of a whsk_ private key, for
// handing to receivers.
func PublicKeyOf(privateKey string) (string, error) {
	priv, err := DecodePrivateKey(privateKey)
	if err != nil {
		return "", err
	}
	return PublicKeyPrefix + base64.StdEncoding.EncodeToString(priv.Public().(ed25519.PublicKey)), nil
}

// signedContent is what both schemes sign: "{id}.{timestamp}.{body}".
func signedContent(msgID string, unix int64, body []byte) []byte {
	ts := strconv.FormatInt(unix, 10)
	b := make([]byte, 0, len(msgID)+len(ts)+len(body)+2)
	b = append(b, msgID...)
	b = append(b, '.')
	b = append(b, ts...)
	b = append(b, '.')
	return append(b, body...)
}

func hmacSum(key []byte, content []byte) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write(content)
	return mac.Sum(nil)
}

// Sign returns the webhook-signature header value for one message: one
// signature per secret, space-separated (several during rotation). A whsec_
// secret gives "v1,<base64 HMAC-SHA256>"; a whsk_ private key gives
// "v1a,<base64 ed25519>".
func Sign(secrets []string, msgID string, ts time.Time, body []byte) (string, error) {
	if len(secrets) == 0 {
		return "", errors.New("sign: no secret to sign with")
	}
	var b strings.Builder
	content := signedContent(msgID, ts.Unix(), body)
	for i, s := range secrets {
		if i > 0 {
			b.WriteByte(' ')
		}
		if strings.HasPrefix(s, PublicKeyPrefix) {
			return "", fmt.Errorf("sign: secret %d is a whpk_ public key; sign with its whsk_ private key", i+1)
		}
		if strings.HasPrefix(s, PrivateKeyPrefix) {
			priv, err := DecodePrivateKey(s)
			if err != nil {
				return "", fmt.Errorf("sign: %w", err)
			}
			b.WriteString(SignatureV1a + ",")
			b.WriteString(base64.StdEncoding.EncodeToString(ed25519.Sign(priv, content)))
			continue
		}
		key, err := DecodeSecret(s)
		if err != nil {
			return "", fmt.Errorf("sign: %w", err)
		}
		b.WriteString(SignatureV1 + ",")
		b.WriteString(base64.StdEncoding.EncodeToString(hmacSum(key, content)))
	}
	return b.String(), nil
}

// SignRequest sets the three Standard Webhooks headers on h for body.
func SignRequest(h http.Header, secrets []string, msgID string, ts time.Time, body []byte) error {
	sig, err := Sign(secrets, msgID, ts, body)
	if err != nil {
		return err
	}
	h.Set(HeaderID, msgID)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(HeaderSignature, sig)
	return nil
}

// Signature is one entry of a webhook-signature header.
type Signature struct {
	Version string // "v1", "v1a", or whatever the sender wrote
	Value   []byte // the decoded signature
}

// ParseSignatureHeader splits a webhook-signature header into its
// space-separated "version,base64" entries. Entries that are not of that form
// or whose base64 does not decode are skipped, so that a future scheme or a
// stray token does not hide a valid signature next to it.
func ParseSignatureHeader(header string) []Signature {
	var out []Signature
	for _, tok := range strings.Fields(header) {
		version, value, ok := strings.Cut(tok, ",")
		if !ok || version == "" || value == "" {
			continue
		}
		b, err := base64.StdEncoding.DecodeString(value)
		if err != nil || len(b) == 0 {
			continue
		}
		out = append(out, Signature{Version: version, Value: b})
	}
	return out
}

// Verifier checks Standard Webhooks signatures against a fixed set of keys.
// Build it once with NewVerifier; it is safe for concurrent use.
type Verifier struct {
	hmacKeys [][]byte
	pubKeys  []ed25519.PublicKey
	// Tolerance overrides the 5-minute window when positive.
	Tolerance time.Duration
}

// NewVerifier decodes keys: whsec_ secrets verify "v1" signatures, whpk_
// public keys verify "v1a" ones (a whsk_ private key is accepted too and
// stands for its public key). Any other string is taken as a whsec_ secret
// without its prefix, as the reference library does.
func NewVerifier(keys []string) (*Verifier, error) {
	v := &Verifier{}
	for i, k := range keys {
		switch {
		case strings.HasPrefix(k, PublicKeyPrefix):
			pub, err := DecodePublicKey(k)
			if err != nil {
				return nil, fmt.Errorf("key %d: %w", i+1, err)
			}
			v.pubKeys = append(v.pubKeys, pub)
		case strings.HasPrefix(k, PrivateKeyPrefix):
			priv, err := DecodePrivateKey(k)
			if err != nil {
				return nil, fmt.Errorf("key %d: %w", i+1, err)
			}
			v.pubKeys = append(v.pubKeys, priv.Public().(ed25519.PublicKey))
		default:
			key, err := DecodeSecret(k)
			if err != nil {
				return nil, fmt.Errorf("key %d: %w", i+1, err)
			}
			v.hmacKeys = append(v.hmacKeys, key)
		}
	}
	if len(v.hmacKeys)+len(v.pubKeys) == 0 {
		return nil, errors.New("verifier: no keys")
	}
	return v, nil
}

// Verify checks the request's headers and raw body as received at now: all
// three headers present, the timestamp within the tolerance both ways, and at
// least one signature in the header made by one of the keys. HMAC signatures
// are compared in constant time.
func (v *Verifier) Verify(headers http.Header, body []byte, now time.Time) error {
	id := headers.Get(HeaderID)
	tsHeader := headers.Get(HeaderTimestamp)
	// A proxy may split a long header into several lines; take them all.
	sigHeader := strings.Join(headers.Values(HeaderSignature), " ")
	var missing []string
	for _, h := range [][2]string{{HeaderID, id}, {HeaderTimestamp, tsHeader}, {HeaderSignature, sigHeader}} {
		if h[1] == "" {
			missing = append(missing, h[0])
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s", ErrMissingHeaders, strings.Join(missing, ", "))
	}
	unix, err := strconv.ParseInt(tsHeader, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %q", ErrInvalidTimestamp, tsHeader)
	}
	tol := v.Tolerance
	if tol <= 0 {
		tol = Tolerance
	}
	ts := time.Unix(unix, 0)
	switch {
	case now.Sub(ts) > tol:
		return fmt.Errorf("%w: %s old, tolerance %s", ErrTimestampTooOld, now.Sub(ts).Truncate(time.Second), tol)
	case ts.Sub(now) > tol:
		return fmt.Errorf("%w: %s ahead, tolerance %s", ErrTimestampTooNew, ts.Sub(now).Truncate(time.Second), tol)
	}
	sigs := ParseSignatureHeader(sigHeader)
	content := signedContent(id, unix, body)
	var macs [][]byte
	for _, key := range v.hmacKeys {
		macs = append(macs, hmacSum(key, content))
	}
	for _, s := range sigs {
		switch s.Version {
		case SignatureV1:
			for _, mac := range macs {
				if hmac.Equal(s.Value, mac) {
					return nil
				}
			}
		case SignatureV1a:
			if len(s.Value) != ed25519.SignatureSize {
				continue
			}
			for _, pub := range v.pubKeys {
				if ed25519.Verify(pub, content, s.Value) {
					return nil
				}
			}
		}
	}
	return fmt.Errorf("%w (%d signature(s) in header)", ErrNoMatchingSignature, len(sigs))
}

// Verify checks a request against keys (whsec_ secrets and/or whpk_ public
// keys) at time now; see Verifier.Verify. Receivers handling many requests
// should build a Verifier once instead.
func Verify(keys []string, headers http.Header, body []byte, now time.Time) error {
	v, err := NewVerifier(keys)
	if err != nil {
		return err
	}
	return v.Verify(headers, body, now)
}

// CheckBasicAuth reports whether r carries HTTP Basic credentials equal to
// login and password, comparing in constant time (Kinescope authenticates its
// webhooks this way: it signs nothing).
func CheckBasicAuth(r *http.Request, login, password string) bool {
	l, p, ok := r.BasicAuth()
	if !ok {
		return false
	}
	// Hash first so that the comparison time does not depend on lengths.
	lh, wantL := sha256.Sum256([]byte(l)), sha256.Sum256([]byte(login))
	ph, wantP := sha256.Sum256([]byte(p)), sha256.Sum256([]byte(password))
	okL := subtle.ConstantTimeCompare(lh[:], wantL[:])
	okP := subtle.ConstantTimeCompare(ph[:], wantP[:])
	return okL&okP == 1
}
