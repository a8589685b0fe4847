package kinehook

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"
)

// FuzzParseSignatureHeader: never panics, keeps only well-formed entries, and
// re-encoding what it kept parses back to the same.
func FuzzParseSignatureHeader(f *testing.F) {
	f.Add(refSig)
	f.Add("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= v1a,AAEC")
	f.Add("v1, ,v1 v1,,, v1,!!!")
	f.Fuzz(func(t *testing.T, header string) {
		sigs := ParseSignatureHeader(header)
		var b strings.Builder
		for i, s := range sigs {
			if s.Version == "" || len(s.Value) == 0 || strings.ContainsAny(s.Version, " \t\n") {
				t.Fatalf("kept a bad entry %+v from %q", s, header)
			}
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(s.Version + "," + base64.StdEncoding.EncodeToString(s.Value))
		}
		again := ParseSignatureHeader(b.String())
		if len(again) != len(sigs) {
			t.Fatalf("round trip of %q: %d entries, then %d", header, len(sigs), len(again))
		}
		for i := range sigs {
			if again[i].Version != sigs[i].Version || !bytes.Equal(again[i].Value, sigs[i].Value) {
				t.Fatalf("round trip changed entry %d: %+v -> %+v", i, sigs[i], again[i])
			}
		}
	})
}

// FuzzParse: neither parser panics; whatever ParseStrict accepts, ParseLenient
// accepts with the same meaning and no flags; errors always name a field.
func FuzzParse(f *testing.F) {
	for _, t := range EventTypes {
		f.Add(SampleEvent(t))
	}
	for _, s := range strictSamples {
		f.Add([]byte(s.body))
	}
	f.Add([]byte(`{"event":"media.update.status","data":{"id":"v","status":"failed"}}`))
	f.Add([]byte(`{"event":"live.x","data":{"event_id":1}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		strict, serr := ParseStrict(body)
		lenient, lerr := ParseLenient(body)
		for _, err := range []error{serr, lerr} {
			if ve, ok := err.(*ValidationError); err != nil && (!ok || ve.Field == "" || ve.Expected == "") {
				t.Fatalf("error %#v does not name a field and what was expected", err)
			}
		}
		if serr != nil {
			return
		}
		if !strictText(body) {
			t.Fatalf("strict accepts %q, which jsontext refuses (not UTF-8, an unpaired surrogate, or a key twice)", body)
		}
		if lerr != nil {
			t.Fatalf("strict accepts %q, lenient rejects it: %v", body, lerr)
		}
		if lenient.UnknownType || lenient.UnknownStatus || strict.UnknownType || strict.UnknownStatus {
			t.Fatalf("flags on a strictly valid body %q", body)
		}
		if strict.Type != lenient.Type || strict.ResourceKey() != lenient.ResourceKey() || strict.ResourceKey() == "" {
			t.Fatalf("strict %+v and lenient %+v disagree on %q", strict, lenient, body)
		}
		if (strict.Media == nil) == (strict.Live == nil) {
			t.Fatalf("strict result %+v has not exactly one of Media and Live", strict)
		}
	})
}

// FuzzVerify: arbitrary headers never panic the verifier and never pass
// without a signature made by the key (the fuzzer cannot forge HMAC-SHA256 or
// ed25519); the genuine signature of the same input always passes.
func FuzzVerify(f *testing.F) {
	f.Add("msg_1", "1614265330", refSig, []byte(refBody))
	f.Add("", "-1", "v1a,AAAA v1,", []byte{})
	f.Add("msg.with.dots", "+1614265330", "v1,"+strings.Repeat("A", 44), []byte("{}"))
	v, err := NewVerifier([]string{refSecret})
	if err != nil {
		f.Fatal(err)
	}
	now := time.Unix(1614265330, 0)
	f.Fuzz(func(t *testing.T, id, ts, sig string, body []byte) {
		h := http.Header{}
		h.Set(HeaderID, id)
		h.Set(HeaderTimestamp, ts)
		h.Set(HeaderSignature, sig)
		if err := v.Verify(h, body, now); err == nil {
			if genuine, _ := Sign([]string{refSecret}, id, now, body); !strings.Contains(sig, strings.TrimPrefix(genuine, "v1,")) {
				t.Fatalf("verified a forged signature %q for id %q ts %q", sig, id, ts)
			}
		}
		if id == "" || strings.ContainsAny(id, "\r\n") {
			return
		}
		genuine := http.Header{}
		if err := SignRequest(genuine, []string{refSecret}, id, now, body); err != nil {
			t.Fatal(err)
		}
		if err := v.Verify(genuine, body, now); err != nil {
			t.Fatalf("genuine signature of id %q rejected: %v", id, err)
		}
	})
}

// FuzzDeliveryCursor: a cursor decodes only in the order it was made for,
// to what was encoded; anything else is an EINVALID naming cursor, never a
// panic.
func FuzzDeliveryCursor(f *testing.F) {
	f.Add(EncodeDeliveryCursor(42, "dlv_x", false), int64(7), "dlv_06h3", true)
	f.Add("bmQxOjI6", int64(1), "a:b", false)
	f.Add("", int64(0), "", false)
	f.Fuzz(func(t *testing.T, c string, seq int64, id string, oldest bool) {
		for _, o := range []bool{false, true} {
			if _, _, err := DecodeDeliveryCursor(c, o); err != nil {
				if e, ok := err.(*Error); !ok || e.Code != EINVALID || e.Field != "cursor" {
					t.Fatalf("DecodeDeliveryCursor(%q) error %v", c, err)
				}
			}
		}
		if seq <= 0 || id == "" {
			return
		}
		enc := EncodeDeliveryCursor(seq, id, oldest)
		gs, gid, err := DecodeDeliveryCursor(enc, oldest)
		if err != nil || gs != seq || gid != id {
			t.Fatalf("round trip of (%d, %q): (%d, %q, %v)", seq, id, gs, gid, err)
		}
		if _, _, err := DecodeDeliveryCursor(enc, !oldest); err == nil {
			t.Fatalf("a cursor of one order was taken for the other")
		}
	})
}
