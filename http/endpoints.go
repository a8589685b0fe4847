package http

import (
	"encoding/json"
	"fmt"
	nethttp "net/http"
	"strconv"
	"strings"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/app"
)

// endpointView is an endpoint in answers: the contract's fields, then
// kinehook's extensions. The password never leaves the server, and custom
// header values only masked (kinehook.MaskHeaderValue): they often carry
// credentials.
type endpointView struct {
	ID              string            `json:"id"`
	URL             string            `json:"url"`
	EventTypes      []string          `json:"event_types"`
	Description     string            `json:"description"`
	Disabled        bool              `json:"disabled"`
	Secret          string            `json:"secret"`
	CreatedAt       time.Time         `json:"created_at"`
	UpdatedAt       time.Time         `json:"updated_at"`
	ProjectID       string            `json:"project_id"`
	Headers         map[string]string `json:"headers,omitempty"`
	RateLimit       float64           `json:"rate_limit"`
	MaxInFlight     int               `json:"max_in_flight"`
	SignatureScheme string            `json:"signature_scheme"`
	PublicKey       string            `json:"public_key,omitempty"`
	DisabledReason  string            `json:"disabled_reason,omitempty"`
	FailingSince    *time.Time        `json:"failing_since,omitempty"`
	Name            string            `json:"name,omitempty"`
	Login           string            `json:"login,omitempty"`
	// Health is the breaker and pause state, the same on every instance.
	Health kinehook.EndpointHealth `json:"health"`
	// Type is "webhook" or a destination type; Config its settings, and
	// Credentials their names with every value "****" (write-only).
	Type        string            `json:"type"`
	Config      json.RawMessage   `json:"config,omitempty"`
	Credentials map[string]string `json:"credentials,omitempty"`
}

func viewEndpoint(e *kinehook.Endpoint) endpointView {
	v := endpointView{
		ID: e.ID, URL: e.URL, EventTypes: e.EventTypes, Description: e.Description, Disabled: e.Disabled,
		CreatedAt: e.CreatedAt.UTC(), UpdatedAt: e.UpdatedAt.UTC(), ProjectID: e.ProjectID, Headers: kinehook.MaskHeaders(e.Headers),
		RateLimit: e.RateLimit, MaxInFlight: e.MaxInFlight, SignatureScheme: app.SchemeOf(e),
		DisabledReason: e.DisabledReason, Name: e.Name, Login: e.Login, Health: e.Health(time.Now()),
		Type: e.TypeOf(), Config: e.Config, Credentials: kinehook.MaskCredentials(e.Credentials),
	}
	if v.EventTypes == nil {
		v.EventTypes = []string{}
	}
	if len(e.Secrets) > 0 {
		v.Secret = e.Secrets[0].Value
	}
	if v.SignatureScheme == kinehook.SchemeV1a && v.Secret != "" {
		v.PublicKey, _ = kinehook.PublicKeyOf(v.Secret)
	}
	if !e.FailingSince.IsZero() {
		t := e.FailingSince.UTC()
		v.FailingSince = &t
	}
	return v
}

// endpointInput is the body of endpoint create and PATCH. Absent fields
// (nil) are left alone by PATCH; read-only fields of an endpoint's JSON are
// accepted and ignored so a client can send back what it read.
type endpointInput struct {
	Type            *string            `json:"type"`
	Config          *json.RawMessage   `json:"config"`
	Credentials     *map[string]string `json:"credentials"`
	URL             *string            `json:"url"`
	EventTypes      *[]string          `json:"event_types"`
	Description     *string            `json:"description"`
	Secret          *string            `json:"secret"`
	Headers         *map[string]string `json:"headers"`
	Disabled        *bool              `json:"disabled"`
	RateLimit       *float64           `json:"rate_limit"`
	MaxInFlight     *int               `json:"max_in_flight"`
	SignatureScheme *string            `json:"signature_scheme"`
	Name            *string            `json:"name"`
	Login           *string            `json:"login"`
	Password        *string            `json:"password"`

	ID             json.RawMessage `json:"id"`
	ProjectID      json.RawMessage `json:"project_id"`
	CreatedAt      json.RawMessage `json:"created_at"`
	UpdatedAt      json.RawMessage `json:"updated_at"`
	PublicKey      json.RawMessage `json:"public_key"`
	DisabledReason json.RawMessage `json:"disabled_reason"`
	FailingSince   json.RawMessage `json:"failing_since"`
	Health         json.RawMessage `json:"health"`
}

// toApp is the endpoint change the input asks for.
func (in *endpointInput) toApp() app.EndpointInput {
	return app.EndpointInput{
		URL: in.URL, EventTypes: in.EventTypes, Description: in.Description, Secret: in.Secret,
		Headers: in.Headers, Disabled: in.Disabled, RateLimit: in.RateLimit, MaxInFlight: in.MaxInFlight,
		SignatureScheme: in.SignatureScheme, Name: in.Name, Login: in.Login, Password: in.Password,
		Type: in.Type, Config: in.Config, Credentials: in.Credentials,
	}
}

func (s *Server) createEndpoint(w nethttp.ResponseWriter, r *nethttp.Request, p *app.Principal) {
	var in endpointInput
	if err := s.decodeJSON(w, r, &in); err != nil {
		writeError(w, err)
		return
	}
	e, err := s.app.CreateEndpoint(r.Context(), projectID(r, p), in.toApp())
	if err != nil {
		s.internal(w, "create endpoint", err)
		return
	}
	writeJSON(w, nethttp.StatusCreated, viewEndpoint(e))
}

func (s *Server) listEndpoints(w nethttp.ResponseWriter, r *nethttp.Request, p *app.Principal) {
	limit, cursor, err := pageQuery(r, defaultEndpointPageLimit)
	if err != nil {
		writeError(w, err)
		return
	}
	es, next, err := s.app.ListEndpointsPage(r.Context(), projectID(r, p), cursor, limit)
	if err != nil {
		s.internal(w, "list endpoints", err)
		return
	}
	writeJSON(w, nethttp.StatusOK, pageBody[endpointView]{Data: views(es, viewEndpoint), NextCursor: next})
}

// defaultEndpointPageLimit is the endpoint list's page size without limit:
// a project of up to that many endpoints gets them all in one answer, as
// before the list was paged.
const defaultEndpointPageLimit = app.MaxPageLimit

// pageQuery reads the limit and cursor of a paged list.
func pageQuery(r *nethttp.Request, def int) (int, string, error) {
	q := r.URL.Query()
	limit := def
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > app.MaxPageLimit {
			return 0, "", &kinehook.Error{Code: kinehook.EINVALID, Field: "limit", Message: fmt.Sprintf("limit must be an integer from 1 to %d", app.MaxPageLimit)}
		}
		limit = n
	}
	return limit, q.Get("cursor"), nil
}

func (s *Server) getEndpoint(w nethttp.ResponseWriter, r *nethttp.Request, p *app.Principal) {
	e, err := s.app.GetEndpoint(r.Context(), projectID(r, p), r.PathValue("eid"))
	if err != nil {
		s.internal(w, "get endpoint", err)
		return
	}
	writeJSON(w, nethttp.StatusOK, viewEndpoint(e))
}

func (s *Server) patchEndpoint(w nethttp.ResponseWriter, r *nethttp.Request, p *app.Principal) {
	var in endpointInput
	if err := s.decodeJSON(w, r, &in); err != nil {
		writeError(w, err)
		return
	}
	e, err := s.app.PatchEndpoint(r.Context(), projectID(r, p), r.PathValue("eid"), in.toApp())
	if err != nil {
		s.internal(w, "update endpoint", err)
		return
	}
	writeJSON(w, nethttp.StatusOK, viewEndpoint(e))
}

func (s *Server) deleteEndpoint(w nethttp.ResponseWriter, r *nethttp.Request, p *app.Principal) {
	if err := s.app.DeleteEndpoint(r.Context(), projectID(r, p), r.PathValue("eid")); err != nil {
		s.internal(w, "delete endpoint", err)
		return
	}
	w.WriteHeader(nethttp.StatusNoContent)
}

// secretView answers the secret routes; PublicKey only for v1a endpoints.
// PreviousSecretExpiresAt is when the rotated-out secret stops signing,
// while one still signs: a receiver must accept the new secret by then.
type secretView struct {
	Secret                  string     `json:"secret"`
	PublicKey               string     `json:"public_key,omitempty"`
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at,omitempty"`
}

func viewSecret(e *kinehook.Endpoint, now time.Time) secretView {
	v := viewEndpoint(e)
	out := secretView{Secret: v.Secret, PublicKey: v.PublicKey}
	if exp := app.PreviousSecretExpiry(e, now); !exp.IsZero() {
		t := exp.UTC()
		out.PreviousSecretExpiresAt = &t
	}
	return out
}

func (s *Server) getSecret(w nethttp.ResponseWriter, r *nethttp.Request, p *app.Principal) {
	e, err := s.app.GetEndpoint(r.Context(), projectID(r, p), r.PathValue("eid"))
	if err != nil {
		s.internal(w, "get endpoint", err)
		return
	}
	writeJSON(w, nethttp.StatusOK, viewSecret(e, s.now()))
}

// rotateSecret makes a new current secret; the previous one keeps signing
// beside it for SecretGracePeriod. A body {"secret"} chooses the new secret.
func (s *Server) rotateSecret(w nethttp.ResponseWriter, r *nethttp.Request, p *app.Principal) {
	body, err := s.readBody(w, r)
	if err != nil {
		writeError(w, err)
		return
	}
	var in struct {
		Secret string `json:"secret"`
	}
	if len(strings.TrimSpace(string(body))) > 0 {
		if err := s.decodeBytes(body, &in); err != nil {
			writeError(w, err)
			return
		}
	}
	e, err := s.app.RotateSecret(r.Context(), projectID(r, p), r.PathValue("eid"), in.Secret, time.Time{})
	if err != nil {
		s.internal(w, "rotate secret", err)
		return
	}
	writeJSON(w, nethttp.StatusOK, viewSecret(e, s.now()))
}

// recoverEndpoint re-sends the endpoint's failed deliveries created since
// the given time.
func (s *Server) recoverEndpoint(w nethttp.ResponseWriter, r *nethttp.Request, p *app.Principal) {
	body, err := s.readBody(w, r)
	if err != nil {
		writeError(w, err)
		return
	}
	var in struct {
		Since *time.Time `json:"since"`
	}
	if len(strings.TrimSpace(string(body))) > 0 {
		if err := s.decodeBytes(body, &in); err != nil {
			if ke, ok := err.(*kinehook.Error); ok && ke.Field == "" && ke.Code == kinehook.EINVALID {
				err = &kinehook.Error{Code: kinehook.EINVALID, Field: "since", Message: "since must be an RFC 3339 time, e.g. 2026-01-02T15:04:05Z"}
			}
			writeError(w, err)
			return
		}
	}
	var since time.Time
	if in.Since != nil {
		since = *in.Since
	}
	n, err := s.app.RecoverEndpoint(r.Context(), projectID(r, p), r.PathValue("eid"), since)
	if err != nil {
		s.internal(w, "recover endpoint", err)
		return
	}
	writeJSON(w, nethttp.StatusAccepted, map[string]any{"recovered": n, "since": since.UTC()})
}
