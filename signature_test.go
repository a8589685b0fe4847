package kinehook

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// The reference vector of the reference library's TestWebhookSign.
const (
	refSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	refID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	refTS     = 1614265330
	refBody   = `{"test": 2432232314}`
	refSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func signedHeaders(t *testing.T, secrets []string, id string, ts time.Time, body []byte) http.Header {
	t.Helper()
	h := http.Header{}
	if err := SignRequest(h, secrets, id, ts, body); err != nil {
		t.Fatal(err)
	}
	return h
}

func TestSignReferenceVector(t *testing.T) {
	got, err := Sign([]string{refSecret}, refID, time.Unix(refTS, 0), []byte(refBody))
	if err != nil || got != refSig {
		t.Fatalf("Sign = %q, %v; want %q", got, err, refSig)
	}
	h := signedHeaders(t, []string{refSecret}, refID, time.Unix(refTS, 0), []byte(refBody))
	if err := Verify([]string{refSecret}, h, []byte(refBody), time.Unix(refTS+10, 0)); err != nil {
		t.Fatalf("Verify(reference vector) = %v", err)
	}
}

func TestSignWithoutSecrets(t *testing.T) {
	if sig, err := Sign(nil, "msg_1", time.Now(), []byte("{}")); err == nil {
		t.Errorf("Sign without secrets = %q, want an error", sig)
	}
	h := http.Header{}
	if err := SignRequest(h, []string{}, "msg_1", time.Now(), []byte("{}")); err == nil || len(h) != 0 {
		t.Errorf("SignRequest without secrets: err %v, headers %v", err, h)
	}
}

func TestSignSeveralSecrets(t *testing.T) {
	s1, _ := GenerateSecret()
	s2, _ := GenerateSecret()
	now := time.Now()
	header, err := Sign([]string{s1, s2}, "msg_1", now, []byte("{}"))
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(header, " ")
	if len(parts) != 2 || !strings.HasPrefix(parts[0], "v1,") || !strings.HasPrefix(parts[1], "v1,") {
		t.Fatalf("header = %q, want two v1 signatures", header)
	}
	h := http.Header{}
	h.Set(HeaderID, "msg_1")
	h.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	h.Set(HeaderSignature, header)
	for _, s := range []string{s1, s2} {
		if err := Verify([]string{s}, h, []byte("{}"), now); err != nil {
			t.Errorf("verify with one of the rotated secrets: %v", err)
		}
	}
	s3, _ := GenerateSecret()
	if err := Verify([]string{s3}, h, []byte("{}"), now); !errors.Is(err, ErrNoMatchingSignature) {
		t.Errorf("verify with an unrelated secret = %v", err)
	}
}

func TestGenerateSecret(t *testing.T) {
	a, err := GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := GenerateSecret()
	key, err := DecodeSecret(a)
	if !strings.HasPrefix(a, SecretPrefix) || err != nil || len(key) != 32 || a == b {
		t.Fatalf("GenerateSecret = %q (%d bytes, %v), then %q", a, len(key), err, b)
	}
}

// Both directions against the reference library, at the edges of the window.
func TestReferenceLibraryRoundTrip(t *testing.T) {
	secret, _ := GenerateSecret()
	ref, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	body := SampleEvent(EventMediaUpdateStatus)
	now := time.Now()

	// We sign, they verify (the reference library checks against time.Now).
	h := signedHeaders(t, []string{secret}, "msg_ours", now, body)
	if err := ref.Verify(body, h); err != nil {
		t.Errorf("reference library rejects our signature: %v", err)
	}
	// Rotation: they find their signature among several.
	other, _ := GenerateSecret()
	h = signedHeaders(t, []string{other, secret}, "msg_rot", now, body)
	if err := ref.Verify(body, h); err != nil {
		t.Errorf("reference library rejects our rotated header: %v", err)
	}

	// They sign, we verify.
	sig, err := ref.Sign("msg_theirs", now, body)
	if err != nil {
		t.Fatal(err)
	}
	h = http.Header{}
	h.Set(HeaderID, "msg_theirs")
	h.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	h.Set(HeaderSignature, sig)
	if err := Verify([]string{secret}, h, body, now); err != nil {
		t.Errorf("we reject the reference library's signature: %v", err)
	}
	ours, _ := Sign([]string{secret}, "msg_theirs", now, body)
	if ours != sig {
		t.Errorf("signatures differ: ours %q, theirs %q", ours, sig)
	}
}

func TestVerifyFailures(t *testing.T) {
	secret, _ := GenerateSecret()
	body := []byte(`{"event":"live.created","data":{"event_id":"e"}}`)
	now := time.Unix(1_800_000_000, 0)
	good := func() http.Header { return signedHeaders(t, []string{secret}, "msg_x", now, body) }
	tests := []struct {
		name   string
		header func() http.Header
		body   []byte
		now    time.Time
		want   error
	}{
		{"valid", good, body, now, nil},
		{"valid at -5m", good, body, now.Add(Tolerance), nil},
		{"valid at +5m", good, body, now.Add(-Tolerance), nil},
		{"stale", good, body, now.Add(Tolerance + time.Second), ErrTimestampTooOld},
		{"future", good, body, now.Add(-Tolerance - time.Second), ErrTimestampTooNew},
		{"tampered body", good, []byte(strings.Replace(string(body), `"e"`, `"f"`, 1)), now, ErrNoMatchingSignature},
		{"tampered id", func() http.Header { h := good(); h.Set(HeaderID, "msg_y"); return h }, body, now, ErrNoMatchingSignature},
		{"tampered timestamp", func() http.Header {
			h := good()
			h.Set(HeaderTimestamp, strconv.FormatInt(now.Unix()+1, 10))
			return h
		}, body, now, ErrNoMatchingSignature},
		{"no signature", func() http.Header { h := good(); h.Del(HeaderSignature); return h }, body, now, ErrMissingHeaders},
		{"no id", func() http.Header { h := good(); h.Del(HeaderID); return h }, body, now, ErrMissingHeaders},
		{"bad timestamp", func() http.Header { h := good(); h.Set(HeaderTimestamp, "soon"); return h }, body, now, ErrInvalidTimestamp},
		{"garbage signature", func() http.Header { h := good(); h.Set(HeaderSignature, "v1 nonsense ,,,"); return h }, body, now, ErrNoMatchingSignature},
		{"wrong version", func() http.Header {
			h := good()
			h.Set(HeaderSignature, strings.Replace(h.Get(HeaderSignature), "v1,", "v2,", 1))
			return h
		}, body, now, ErrNoMatchingSignature},
		{"signature split over two header lines", func() http.Header {
			h := good()
			sig := h.Get(HeaderSignature)
			h.Set(HeaderSignature, "v1,AAAA")
			h.Add(HeaderSignature, sig)
			return h
		}, body, now, nil},
		{"valid among junk", func() http.Header {
			h := good()
			h.Set(HeaderSignature, "v2,abc v1,!!! "+h.Get(HeaderSignature)+" v1a,AAAA")
			return h
		}, body, now, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify([]string{secret}, tt.header(), tt.body, tt.now)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestAsymmetricSignatures(t *testing.T) {
	priv, pub, err := GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(priv, PrivateKeyPrefix) || !strings.HasPrefix(pub, PublicKeyPrefix) {
		t.Fatalf("keys %q %q lack their prefixes", priv, pub)
	}
	if derived, err := PublicKeyOf(priv); err != nil || derived != pub {
		t.Fatalf("PublicKeyOf = %q, %v; want %q", derived, err, pub)
	}
	body := SampleEvent(EventLiveFinished)
	now := time.Now()
	secret, _ := GenerateSecret()
	h := signedHeaders(t, []string{priv, secret}, "msg_a", now, body)
	sigs := ParseSignatureHeader(h.Get(HeaderSignature))
	if len(sigs) != 2 || sigs[0].Version != "v1a" || len(sigs[0].Value) != ed25519.SignatureSize || sigs[1].Version != "v1" {
		t.Fatalf("header %q parsed as %+v", h.Get(HeaderSignature), sigs)
	}
	// The signature is plain ed25519 over {id}.{timestamp}.{body}.
	raw, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(pub, PublicKeyPrefix))
	content := "msg_a." + strconv.FormatInt(now.Unix(), 10) + "." + string(body)
	if !ed25519.Verify(raw, []byte(content), sigs[0].Value) {
		t.Fatal("v1a signature does not verify with crypto/ed25519")
	}
	if err := Verify([]string{pub}, h, body, now); err != nil {
		t.Errorf("Verify with the public key = %v", err)
	}
	_, otherPub, _ := GenerateKeyPair()
	if err := Verify([]string{otherPub}, h, body, now); !errors.Is(err, ErrNoMatchingSignature) {
		t.Errorf("Verify with another public key = %v", err)
	}
	if err := Verify([]string{pub}, h, append(body, ' '), now); !errors.Is(err, ErrNoMatchingSignature) {
		t.Errorf("Verify of a tampered body = %v", err)
	}
	// The 64-byte (seed||public) private key form signs identically.
	k, _ := DecodePrivateKey(priv)
	long := PrivateKeyPrefix + base64.StdEncoding.EncodeToString(k)
	if s1, _ := Sign([]string{priv}, "m", now, body); s1 != must(Sign([]string{long}, "m", now, body)) {
		t.Error("32- and 64-byte private keys sign differently")
	}
	for _, bad := range []string{"whsk_AAAA", "whsk_!!", PrivateKeyPrefix + base64.StdEncoding.EncodeToString(append(k.Seed(), make([]byte, 32)...))} {
		if _, err := DecodePrivateKey(bad); err == nil {
			t.Errorf("DecodePrivateKey(%q) accepted it", bad)
		}
	}
	if _, err := Sign([]string{pub}, "m", now, body); err == nil || !strings.Contains(err.Error(), "public key") {
		t.Errorf("Sign with a public key = %v", err)
	}
	for _, bad := range []string{"whpk_AAAA", "whpk_!!", "whsec_AAAA"} {
		if _, err := DecodePublicKey(bad); err == nil {
			t.Errorf("DecodePublicKey(%q) accepted it", bad)
		}
	}
}

func must(s string, err error) string {
	if err != nil {
		panic(err)
	}
	return s
}

func TestNewVerifierRejectsBadKeys(t *testing.T) {
	for _, keys := range [][]string{nil, {"whsec_!!!"}, {"whpk_short"}, {""}} {
		if _, err := NewVerifier(keys); err == nil {
			t.Errorf("NewVerifier(%q) accepted it", keys)
		}
	}
}

func TestParseSignatureHeader(t *testing.T) {
	got := ParseSignatureHeader("  v1,AAEC   v1a,AwQ= bogus v2, ,x v1,%%% ")
	if len(got) != 2 || got[0].Version != "v1" || string(got[0].Value) != "\x00\x01\x02" || got[1].Version != "v1a" || string(got[1].Value) != "\x03\x04" {
		t.Fatalf("ParseSignatureHeader = %+v", got)
	}
}

func TestCheckBasicAuth(t *testing.T) {
	tests := []struct {
		login, password string
		set             bool
		want            bool
	}{
		{"kinescope", "s3cret", true, true},
		{"kinescope", "s3cret!", true, false},
		{"Kinescope", "s3cret", true, false},
		{"", "", true, false},
		{"", "", false, false},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		if tt.set {
			r.SetBasicAuth(tt.login, tt.password)
		}
		if got := CheckBasicAuth(r, "kinescope", "s3cret"); got != tt.want {
			t.Errorf("CheckBasicAuth(%q, %q) = %v", tt.login, tt.password, got)
		}
	}
}
