package app

import (
	"context"
	"encoding/json"
	"maps"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/internal/desttest"
	"github.com/kinehook/kinehook/sqlite"
)

func newDestApp(t *testing.T, allowPrivate bool) *App {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "kinehook.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	a, err := New(Config{Store: st, Dispatcher: &recorder{store: st}, AllowPrivateNetworks: allowPrivate,
		Destinations: []kinehook.DestinationType{desttest.NATS{}}})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func raw(s string) *json.RawMessage { r := json.RawMessage(s); return &r }

func TestCreateDestinationEndpoint(t *testing.T) {
	ctx := t.Context()
	a := newDestApp(t, false)
	p, _, err := a.CreateProject(ctx, ProjectInput{Name: "p"})
	if err != nil {
		t.Fatal(err)
	}
	good := `{"subject":"s","url":"nats://broker.example:4222"}`
	tests := []struct {
		name      string
		in        EndpointInput
		wantField string
		wantMsg   string
	}{
		{"webhook default", EndpointInput{URL: ptr("https://example.com/h")}, "", ""},
		{"webhook explicit", EndpointInput{Type: ptr("webhook"), URL: ptr("https://example.com/h")}, "", ""},
		{"webhook needs url", EndpointInput{Type: ptr("webhook")}, "url", "url is required"},
		{"webhook no config", EndpointInput{URL: ptr("https://example.com/h"), Config: raw(good)}, "config", "takes no config"},
		{"webhook no credentials", EndpointInput{URL: ptr("https://example.com/h"), Credentials: ptr(map[string]string{"a": "b"})}, "credentials", "takes no credentials"},
		{"nats", EndpointInput{Type: ptr("nats"), Config: raw(good), Credentials: ptr(map[string]string{"token": "t"})}, "", ""},
		{"nats needs config", EndpointInput{Type: ptr("nats")}, "config", "config is required for a nats endpoint"},
		{"nats no url", EndpointInput{Type: ptr("nats"), URL: ptr("https://example.com/h"), Config: raw(good)}, "url", "has no url"},
		{"nats no login", EndpointInput{Type: ptr("nats"), Login: ptr("u"), Config: raw(good)}, "login", "takes no login"},
		{"nats bad config", EndpointInput{Type: ptr("nats"), Config: raw(`{"url":"nats://h:1"}`)}, "config.subject", "config.subject is required"},
		{"nats unknown key", EndpointInput{Type: ptr("nats"), Config: raw(`{"url":"nats://h:1","subject":"s","x":1}`)}, "config", `unknown key "x"`},
		{"nats bad credential", EndpointInput{Type: ptr("nats"), Config: raw(good), Credentials: ptr(map[string]string{"pin": "1"})}, "credentials", `unknown credential "pin"`},
		{"nats loopback broker", EndpointInput{Type: ptr("nats"), Config: raw(`{"url":"nats://127.0.0.1:4222","subject":"s"}`)}, "config", "loopback"},
		{"nats localhost broker", EndpointInput{Type: ptr("nats"), Config: raw(`{"url":"nats://localhost:4222","subject":"s"}`)}, "config", "blocked"},
		{"unknown type", EndpointInput{Type: ptr("sqs"), Config: raw(good)}, "type", `unknown endpoint type "sqs"; expected one of webhook, nats`},
		{"known but not wired", EndpointInput{Type: ptr("kafka"), Config: raw(good)}, "type", `"kafka" is not enabled on this server; expected one of webhook, nats`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, err := a.CreateEndpoint(ctx, p.ID, tc.in)
			if tc.wantField == "" {
				if err != nil {
					t.Fatalf("CreateEndpoint: %v", err)
				}
				got, err := a.GetEndpoint(ctx, p.ID, e.ID)
				if err != nil {
					t.Fatal(err)
				}
				if got.TypeOf() != e.TypeOf() || string(got.Config) != string(e.Config) || !maps.Equal(got.Credentials, e.Credentials) {
					t.Errorf("stored %+v, answered %+v", got, e)
				}
				if len(got.Secrets) == 0 {
					t.Error("no signing secret")
				}
				return
			}
			var ke *kinehook.Error
			if err == nil || !asKE(err, &ke) || ke.Code != kinehook.EINVALID || ke.Field != tc.wantField || !strings.Contains(ke.Message, tc.wantMsg) {
				t.Fatalf("CreateEndpoint = %v, want invalid %s containing %q", err, tc.wantField, tc.wantMsg)
			}
		})
	}
	if got := a.EndpointTypes(); strings.Join(got, ",") != "webhook,nats" {
		t.Errorf("EndpointTypes = %v", got)
	}
}

func asKE(err error, target **kinehook.Error) bool {
	ke, ok := err.(*kinehook.Error)
	*target = ke
	return ok
}

func TestPatchDestinationCredentialsAndType(t *testing.T) {
	ctx := t.Context()
	a := newDestApp(t, true)
	p, _, err := a.CreateProject(ctx, ProjectInput{Name: "p"})
	if err != nil {
		t.Fatal(err)
	}
	e, err := a.CreateEndpoint(ctx, p.ID, EndpointInput{Type: ptr("nats"), Config: raw(`{ "url": "nats://127.0.0.1:4222", "subject": "a" }`),
		Credentials: ptr(map[string]string{"user": "u", "password": "p"})})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"url":"nats://127.0.0.1:4222","subject":"a"}`; string(e.Config) != want {
		t.Errorf("config stored as %s, want the normalised %s", e.Config, want)
	}
	steps := []struct {
		name  string
		in    EndpointInput
		creds map[string]string
		cfg   string
	}{
		{"masked keeps, new sets", EndpointInput{Credentials: ptr(map[string]string{"user": "****", "password": "p2"})}, map[string]string{"user": "u", "password": "p2"}, ""},
		{"empty removes", EndpointInput{Credentials: ptr(map[string]string{"password": ""})}, map[string]string{"user": "u"}, ""},
		{"config alone keeps credentials", EndpointInput{Config: raw(`{"url":"nats://127.0.0.1:4223","subject":"b"}`)}, map[string]string{"user": "u"}, `{"url":"nats://127.0.0.1:4223","subject":"b"}`},
		{"other fields keep both", EndpointInput{Description: ptr("d")}, map[string]string{"user": "u"}, `{"url":"nats://127.0.0.1:4223","subject":"b"}`},
	}
	for _, st := range steps {
		got, err := a.PatchEndpoint(ctx, p.ID, e.ID, st.in)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if !maps.Equal(got.Credentials, st.creds) {
			t.Errorf("%s: credentials %v, want %v", st.name, got.Credentials, st.creds)
		}
		if st.cfg != "" && string(got.Config) != st.cfg {
			t.Errorf("%s: config %s, want %s", st.name, got.Config, st.cfg)
		}
	}
	// A bad credential on PATCH is checked against the merged set.
	if _, err := a.PatchEndpoint(ctx, p.ID, e.ID, EndpointInput{Credentials: ptr(map[string]string{"pin": "1"})}); kinehook.ErrorCode(err) != kinehook.EINVALID {
		t.Errorf("bad credential: %v", err)
	}
	// Into a webhook: url required, config and credentials gone.
	if _, err := a.PatchEndpoint(ctx, p.ID, e.ID, EndpointInput{Type: ptr("webhook")}); kinehook.ErrorCode(err) != kinehook.EINVALID {
		t.Errorf("to webhook without url: %v", err)
	}
	got, err := a.PatchEndpoint(ctx, p.ID, e.ID, EndpointInput{Type: ptr("webhook"), URL: ptr("https://example.com/x")})
	if err != nil {
		t.Fatal(err)
	}
	if got.TypeOf() != "webhook" || got.Config != nil || got.Credentials != nil || got.URL != "https://example.com/x" {
		t.Errorf("after type change: %+v", got)
	}
	// And back: config required, url dropped.
	if _, err := a.PatchEndpoint(ctx, p.ID, e.ID, EndpointInput{Type: ptr("nats")}); kinehook.ErrorCode(err) != kinehook.EINVALID {
		t.Errorf("to nats without config: %v", err)
	}
	got, err = a.PatchEndpoint(ctx, p.ID, e.ID, EndpointInput{Type: ptr("nats"), Config: raw(`{"url":"nats://127.0.0.1:4222","subject":"c"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if got.URL != "" || got.TypeOf() != "nats" {
		t.Errorf("back to nats: %+v", got)
	}
	if s := a.DestinationSummary(got); s != "nats://127.0.0.1:4222 → c" {
		t.Errorf("DestinationSummary = %q", s)
	}
}

func TestWebhookFacadeHidesDestinations(t *testing.T) {
	ctx := t.Context()
	a := newDestApp(t, true)
	p, _, err := a.CreateProject(ctx, ProjectInput{Name: "p"})
	if err != nil {
		t.Fatal(err)
	}
	hook, err := a.CreateEndpoint(ctx, p.ID, EndpointInput{URL: ptr("https://example.com/h")})
	if err != nil {
		t.Fatal(err)
	}
	d, err := a.CreateEndpoint(ctx, p.ID, EndpointInput{Type: ptr("nats"), Config: raw(`{"url":"nats://127.0.0.1:4222","subject":"a"}`)})
	if err != nil {
		t.Fatal(err)
	}
	list, err := a.ListWebhooks(ctx, p.ID)
	if err != nil || len(list) != 1 || list[0].ID != hook.ID {
		t.Fatalf("ListWebhooks = %v, %v; want only the webhook", list, err)
	}
	if _, err := a.GetWebhook(ctx, p.ID, d.ID); kinehook.ErrorCode(err) != kinehook.ENOTFOUND {
		t.Errorf("GetWebhook(destination) = %v, want not found", err)
	}
	if _, err := a.UpdateWebhook(ctx, p.ID, d.ID, WebhookInput{Name: ptr("x")}); kinehook.ErrorCode(err) != kinehook.ENOTFOUND {
		t.Errorf("UpdateWebhook(destination) = %v, want not found", err)
	}
	if err := a.DeleteWebhook(ctx, p.ID, d.ID); kinehook.ErrorCode(err) != kinehook.ENOTFOUND {
		t.Errorf("DeleteWebhook(destination) = %v, want not found", err)
	}
	if _, err := a.GetEndpoint(ctx, p.ID, d.ID); err != nil {
		t.Errorf("the destination is gone after the facade's refusals: %v", err)
	}
}

func TestNewRefusesBadDestinations(t *testing.T) {
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "kinehook.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := New(Config{Store: st, Dispatcher: &recorder{store: st}, Destinations: []kinehook.DestinationType{desttest.NATS{}, desttest.NATS{}}}); err == nil {
		t.Error("a type given twice was accepted")
	}
}

// An endpoint of a type this server has no transport for (made by another
// build) keeps working for changes that do not touch its settings; a change
// of its config is refused, not a crash.
func TestEndpointOfTypeNotWired(t *testing.T) {
	ctx := t.Context()
	a := newDestApp(t, true)
	p, _, err := a.CreateProject(ctx, ProjectInput{Name: "p"})
	if err != nil {
		t.Fatal(err)
	}
	e := &kinehook.Endpoint{ID: kinehook.NewID(kinehook.PrefixEndpoint), ProjectID: p.ID, Type: kinehook.EndpointKafka,
		Config: json.RawMessage(`{"brokers":["k:9092"],"topic":"t"}`), Secrets: []kinehook.EndpointSecret{{Value: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}}
	if err := a.store.CreateEndpoint(ctx, e); err != nil {
		t.Fatal(err)
	}
	if _, err := a.PatchEndpoint(ctx, p.ID, e.ID, EndpointInput{Description: ptr("still editable")}); err != nil {
		t.Errorf("description change: %v", err)
	}
	_, err = a.PatchEndpoint(ctx, p.ID, e.ID, EndpointInput{Config: raw(`{"brokers":["k2:9092"],"topic":"t"}`)})
	if ke, ok := err.(*kinehook.Error); !ok || ke.Field != "type" || !strings.Contains(ke.Message, "not enabled") {
		t.Errorf("config change = %v, want refused on type", err)
	}
}
