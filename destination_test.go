package kinehook_test

import (
	"encoding/json"
	"maps"
	"strings"
	"testing"

	"github.com/kinehook/kinehook"
)

func TestMergeCredentials(t *testing.T) {
	stored := map[string]string{"user": "u", "password": "p"}
	tests := []struct {
		name   string
		change map[string]string
		want   map[string]string
	}{
		{"nil keeps all", nil, map[string]string{"user": "u", "password": "p"}},
		{"set one", map[string]string{"password": "new"}, map[string]string{"user": "u", "password": "new"}},
		{"masked keeps", map[string]string{"user": kinehook.MaskedCredential, "password": "x"}, map[string]string{"user": "u", "password": "x"}},
		{"empty removes", map[string]string{"password": ""}, map[string]string{"user": "u"}},
		{"remove all", map[string]string{"password": "", "user": ""}, nil},
		{"add", map[string]string{"token": "t"}, map[string]string{"user": "u", "password": "p", "token": "t"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := kinehook.MergeCredentials(stored, tc.change)
			if !maps.Equal(got, tc.want) || (tc.want == nil) != (got == nil) {
				t.Errorf("MergeCredentials = %v, want %v", got, tc.want)
			}
			if stored["password"] != "p" || len(stored) != 2 {
				t.Errorf("stored changed: %v", stored)
			}
		})
	}
	if got := kinehook.MergeCredentials(nil, map[string]string{"a": kinehook.MaskedCredential}); got != nil {
		t.Errorf("a mask of nothing stored = %v, want nil", got)
	}
}

func TestMaskCredentials(t *testing.T) {
	got := kinehook.MaskCredentials(map[string]string{"password": "secret-value-long", "user": "u"})
	if want := map[string]string{"password": "****", "user": "****"}; !maps.Equal(got, want) {
		t.Errorf("MaskCredentials = %v, want %v", got, want)
	}
	if kinehook.MaskCredentials(nil) != nil {
		t.Error("MaskCredentials(nil) != nil")
	}
	if got := kinehook.CredentialNames(map[string]string{"b": "1", "a": "2"}); strings.Join(got, ",") != "a,b" {
		t.Errorf("CredentialNames = %v", got)
	}
}

func TestValidateCredentials(t *testing.T) {
	tests := []struct {
		name  string
		creds map[string]string
		ok    bool
	}{
		{"none", nil, true},
		{"ok", map[string]string{"user": "u", "sasl.password": "p", "x_y-z": ""}, true},
		{"bad name", map[string]string{"us er": "u"}, false},
		{"empty name", map[string]string{"": "u"}, false},
		{"NUL", map[string]string{"p": "a\x00b"}, false},
		{"not utf-8", map[string]string{"p": "\xff"}, false},
		{"too long", map[string]string{"p": strings.Repeat("a", kinehook.MaxCredentialLength+1)}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := kinehook.ValidateCredentials(tc.creds)
			if (err == nil) != tc.ok {
				t.Fatalf("ValidateCredentials = %v, want ok %v", err, tc.ok)
			}
			if err != nil && kinehook.ErrorCode(err) != kinehook.EINVALID {
				t.Errorf("code %q", kinehook.ErrorCode(err))
			}
		})
	}
	if err := kinehook.OnlyCredentials(map[string]string{"user": "u", "pin": "1"}, "user", "password"); err == nil ||
		!strings.Contains(err.Error(), `unknown credential "pin"; expected user, password`) {
		t.Errorf("OnlyCredentials = %v", err)
	}
}

func TestDecodeConfig(t *testing.T) {
	type cfg struct {
		URL     string `json:"url"`
		Subject string `json:"subject"`
	}
	tests := []struct {
		in      string
		wantErr string
	}{
		{`{"url":"nats://h:4222","subject":"s"}`, ""},
		{``, "config is required"},
		{`null`, "config is required"},
		{`[1]`, "must be a JSON object"},
		{`"s"`, "must be a JSON object"},
		{`{"url":1}`, "wrong type"},
		{`{"uri":"x"}`, `unknown key "uri"`},
		{`{"url":"x"} {}`, "not valid JSON"},
		{`{}}`, "not valid JSON"},
		{`{"url":`, "not valid JSON"},
	}
	for _, tc := range tests {
		var c cfg
		err := kinehook.DecodeConfig(json.RawMessage(tc.in), &c)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("DecodeConfig(%s) = %v", tc.in, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("DecodeConfig(%s) = %v, want %q", tc.in, err, tc.wantErr)
		case err != nil:
			if ke, ok := err.(*kinehook.Error); !ok || ke.Field != "config" || ke.Code != kinehook.EINVALID {
				t.Errorf("DecodeConfig(%s) error %#v, want EINVALID on config", tc.in, err)
			}
		}
	}
}

func FuzzDecodeConfig(f *testing.F) {
	for _, s := range []string{`{"url":"nats://h:4222","subject":"s"}`, `{}`, `[`, `{"a":1}`, ` {"url":"x"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var c struct {
			URL     string   `json:"url"`
			Brokers []string `json:"brokers"`
		}
		err := kinehook.DecodeConfig(json.RawMessage(s), &c)
		if err != nil {
			if ke, ok := err.(*kinehook.Error); !ok || ke.Field != "config" {
				t.Fatalf("error %#v is not a config error", err)
			}
			return
		}
		if !json.Valid([]byte(s)) {
			t.Fatalf("accepted invalid JSON %q", s)
		}
	})
}

func TestEndpointTypeOf(t *testing.T) {
	if got := (&kinehook.Endpoint{}).TypeOf(); got != kinehook.EndpointWebhook {
		t.Errorf("TypeOf() of an untyped endpoint = %q", got)
	}
	if got := (&kinehook.Endpoint{Type: kinehook.EndpointNATS}).TypeOf(); got != kinehook.EndpointNATS {
		t.Errorf("TypeOf() = %q", got)
	}
}
