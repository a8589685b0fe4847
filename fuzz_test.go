package kinehook

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
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
