package http

import (
	"encoding/json"
	"fmt"
	nethttp "net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kinehook/kinehook"
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
}

func viewEndpoint(e *kinehook.Endpoint) endpointView {
	v := endpointView{
		ID: e.ID, URL: e.URL, EventTypes: e.EventTypes, Description: e.Description, Disabled: e.Disabled,
		CreatedAt: e.CreatedAt.UTC(), UpdatedAt: e.UpdatedAt.UTC(), ProjectID: e.ProjectID, Headers: kinehook.MaskHeaders(e.Headers),
		RateLimit: e.RateLimit, MaxInFlight: e.MaxInFlight, SignatureScheme: schemeOf(e),
		DisabledReason: e.DisabledReason, Name: e.Name, Login: e.Login,
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

func schemeOf(e *kinehook.Endpoint) string {
	if e.Scheme == "" {
		return kinehook.SchemeV1
	}
	return e.Scheme
}

// endpointInput is the body of endpoint create and PATCH. Absent fields
// (nil) are left alone by PATCH; read-only fields of an endpoint's JSON are
// accepted and ignored so a client can send back what it read.
type endpointInput struct {
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
}

// Limits on endpoint fields.
const (
	maxDescription = 1000
	maxInFlightCap = 10000
)

// applyEndpoint validates in and writes it into e. When creating, missing
// fields get their defaults (and a url is required).
func (s *Server) applyEndpoint(e *kinehook.Endpoint, in *endpointInput, creating bool) error {
	if in.URL != nil || creating {
		if in.URL == nil || *in.URL == "" {
			return &kinehook.Error{Code: kinehook.EINVALID, Field: "url", Message: "url is required"}
		}
		if err := s.checkURL(*in.URL, "url"); err != nil {
			return err
		}
		e.URL = *in.URL
	}
	if in.EventTypes != nil {
		types, err := kinehook.NormalizeEventTypeFilter(*in.EventTypes)
		if err != nil {
			return err
		}
		e.EventTypes = types
	}
	if in.Description != nil {
		if utf8.RuneCountInString(*in.Description) > maxDescription {
			return &kinehook.Error{Code: kinehook.EINVALID, Field: "description", Message: fmt.Sprintf("description is longer than %d characters", maxDescription)}
		}
		e.Description = *in.Description
	}
	if in.Headers != nil {
		if err := kinehook.ValidateEndpointHeaders(*in.Headers); err != nil {
			return err
		}
		// A value sent back masked, as it was read, keeps the stored value.
		e.Headers = kinehook.KeepMaskedHeaders(*in.Headers, e.Headers)
		if len(e.Headers) == 0 {
			e.Headers = nil
		}
	}
	if in.Disabled != nil {
		e.Disabled = *in.Disabled
		if e.Disabled {
			if e.DisabledReason == "" {
				e.DisabledReason = "disabled through the API"
			}
		} else {
			e.DisabledReason = ""
			e.FailingSince = time.Time{}
		}
	}
	if in.RateLimit != nil {
		if *in.RateLimit < 0 || *in.RateLimit > 1e6 {
			return &kinehook.Error{Code: kinehook.EINVALID, Field: "rate_limit", Message: "rate_limit must be between 0 (unlimited) and 1000000 deliveries per second"}
		}
		e.RateLimit = *in.RateLimit
	}
	if in.MaxInFlight != nil {
		if *in.MaxInFlight < 0 || *in.MaxInFlight > maxInFlightCap {
			return &kinehook.Error{Code: kinehook.EINVALID, Field: "max_in_flight", Message: fmt.Sprintf("max_in_flight must be between 0 (server default) and %d", maxInFlightCap)}
		}
		e.MaxInFlight = *in.MaxInFlight
	}
	if in.Name != nil {
		if utf8.RuneCountInString(*in.Name) > 200 {
			return &kinehook.Error{Code: kinehook.EINVALID, Field: "name", Message: "name is longer than 200 characters"}
		}
		e.Name = *in.Name
	}
	if in.Login != nil {
		if strings.Contains(*in.Login, ":") || strings.ContainsAny(*in.Login, "\r\n") {
			return &kinehook.Error{Code: kinehook.EINVALID, Field: "login", Message: "login must not contain ':' or line breaks (HTTP Basic Auth)"}
		}
		e.Login = *in.Login
	}
	if in.Password != nil {
		e.Password = *in.Password
	}
	if e.Password != "" && e.Login == "" {
		return &kinehook.Error{Code: kinehook.EINVALID, Field: "login", Message: "a password needs a login"}
	}
	return s.applySecret(e, in, creating)
}

// applySecret handles signature_scheme and secret: a given secret must suit
// the scheme; a new scheme without a secret gets a fresh one.
func (s *Server) applySecret(e *kinehook.Endpoint, in *endpointInput, creating bool) error {
	scheme := schemeOf(e)
	schemeChanged := false
	if in.SignatureScheme != nil {
		switch *in.SignatureScheme {
		case kinehook.SchemeV1, kinehook.SchemeV1a:
		default:
			return &kinehook.Error{Code: kinehook.EINVALID, Field: "signature_scheme", Message: fmt.Sprintf("signature_scheme must be %q (HMAC-SHA256) or %q (ed25519)", kinehook.SchemeV1, kinehook.SchemeV1a)}
		}
		schemeChanged = *in.SignatureScheme != scheme
		scheme = *in.SignatureScheme
	}
	e.Scheme = scheme
	if in.Secret != nil && *in.Secret != "" {
		if err := validateSecret(scheme, *in.Secret); err != nil {
			return err
		}
		e.Secrets = []kinehook.EndpointSecret{{Value: *in.Secret}}
		return nil
	}
	if creating || schemeChanged || len(e.Secrets) == 0 {
		sec, err := kinehook.NewEndpointSecret(scheme)
		if err != nil {
			return err
		}
		e.Secrets = []kinehook.EndpointSecret{{Value: sec}}
	}
	return nil
}

// validateSecret checks a caller-chosen secret for scheme.
func validateSecret(scheme, secret string) error {
	if scheme == kinehook.SchemeV1a {
		if _, err := kinehook.DecodePrivateKey(secret); err != nil {
			return &kinehook.Error{Code: kinehook.EINVALID, Field: "secret", Message: "a v1a secret must be whsk_ followed by the base64 of an ed25519 seed (32 bytes)"}
		}
		return nil
	}
	if !strings.HasPrefix(secret, kinehook.SecretPrefix) {
		return &kinehook.Error{Code: kinehook.EINVALID, Field: "secret", Message: "secret must start with whsec_"}
	}
	key, err := kinehook.DecodeSecret(secret)
	if err != nil || len(key) < 24 || len(key) > 64 {
		return &kinehook.Error{Code: kinehook.EINVALID, Field: "secret", Message: "secret must be whsec_ followed by the base64 of 24 to 64 random bytes"}
	}
	return nil
}

func (s *Server) createEndpoint(w nethttp.ResponseWriter, r *nethttp.Request, p *principal) {
	pid := projectID(r, p)
	var in endpointInput
	if err := s.decodeJSON(w, r, &in); err != nil {
		writeError(w, err)
		return
	}
	if _, err := s.store.GetProject(r.Context(), pid); err != nil {
		s.internal(w, "get project", err)
		return
	}
	e, err := s.newEndpoint(r, pid, &in)
	if err != nil {
		s.internal(w, "create endpoint", err)
		return
	}
	writeJSON(w, nethttp.StatusCreated, viewEndpoint(e))
}

// newEndpoint validates, stores and announces a new endpoint.
func (s *Server) newEndpoint(r *nethttp.Request, pid string, in *endpointInput) (*kinehook.Endpoint, error) {
	now := s.now().UTC().Truncate(time.Millisecond)
	e := &kinehook.Endpoint{ID: kinehook.NewID(kinehook.PrefixEndpoint), ProjectID: pid, CreatedAt: now, UpdatedAt: now}
	if err := s.applyEndpoint(e, in, true); err != nil {
		return nil, err
	}
	if err := s.store.CreateEndpoint(r.Context(), e); err != nil {
		return nil, fmt.Errorf("store endpoint: %w", err)
	}
	s.disp.EndpointChanged(r.Context(), pid, e.ID)
	return e, nil
}

func (s *Server) listEndpoints(w nethttp.ResponseWriter, r *nethttp.Request, p *principal) {
	pid := projectID(r, p)
	limit, cursor, err := pageQuery(r, defaultEndpointPageLimit)
	if err != nil {
		writeError(w, err)
		return
	}
	if _, err := s.store.GetProject(r.Context(), pid); err != nil {
		s.internal(w, "get project", err)
		return
	}
	es, next, err := s.store.ListEndpointsPage(r.Context(), pid, cursor, limit)
	if err != nil {
		s.internal(w, "list endpoints", err)
		return
	}
	writeJSON(w, nethttp.StatusOK, pageBody[endpointView]{Data: views(es, viewEndpoint), NextCursor: next})
}

// defaultEndpointPageLimit is the endpoint list's page size without limit:
// a project of up to that many endpoints gets them all in one answer, as
// before the list was paged.
const defaultEndpointPageLimit = maxPageLimit

// pageQuery reads the limit and cursor of a paged list.
func pageQuery(r *nethttp.Request, def int) (int, string, error) {
	q := r.URL.Query()
	limit := def
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPageLimit {
			return 0, "", &kinehook.Error{Code: kinehook.EINVALID, Field: "limit", Message: fmt.Sprintf("limit must be an integer from 1 to %d", maxPageLimit)}
		}
		limit = n
	}
	return limit, q.Get("cursor"), nil
}

func (s *Server) getEndpoint(w nethttp.ResponseWriter, r *nethttp.Request, p *principal) {
	e, err := s.store.GetEndpoint(r.Context(), projectID(r, p), r.PathValue("eid"))
	if err != nil {
		s.internal(w, "get endpoint", err)
		return
	}
	writeJSON(w, nethttp.StatusOK, viewEndpoint(e))
}

func (s *Server) patchEndpoint(w nethttp.ResponseWriter, r *nethttp.Request, p *principal) {
	pid := projectID(r, p)
	var in endpointInput
	if err := s.decodeJSON(w, r, &in); err != nil {
		writeError(w, err)
		return
	}
	if kinehook.IsOperationsEndpoint(r.PathValue("eid")) {
		// Its project's operations_url decides what may change here.
		unlock := s.lockProject(pid)
		defer unlock()
	}
	e, err := s.updateEndpoint(r, pid, r.PathValue("eid"), func(e *kinehook.Endpoint) error {
		if kinehook.IsOperationsEndpoint(e.ID) {
			if in.URL != nil && *in.URL != e.URL {
				return errManaged("url", "its url is the project's operations_url: change that instead")
			}
			if in.EventTypes != nil && !slices.Equal(*in.EventTypes, e.EventTypes) {
				return errManaged("event_types", "it receives the project's operational events (endpoint.*)")
			}
			if in.Disabled != nil && !*in.Disabled && e.Disabled {
				p, err := s.store.GetProject(r.Context(), pid)
				if err != nil {
					return fmt.Errorf("get project: %w", err)
				}
				if p.OperationsURL == "" {
					return errManaged("disabled", "the project's operations_url is not set: set that to enable it")
				}
			}
		}
		return s.applyEndpoint(e, &in, false)
	})
	if err != nil {
		s.internal(w, "update endpoint", err)
		return
	}
	writeJSON(w, nethttp.StatusOK, viewEndpoint(e))
}

// updateEndpoint reads an endpoint, changes it with fn, stores and announces
// it. The write holds only if nobody changed the endpoint since the read (the
// delivery engine disabling it, say); otherwise it reads and applies fn
// again, a few times, before answering 409.
func (s *Server) updateEndpoint(r *nethttp.Request, pid, eid string, fn func(*kinehook.Endpoint) error) (*kinehook.Endpoint, error) {
	for try := 0; ; try++ {
		e, err := s.store.GetEndpoint(r.Context(), pid, eid)
		if err != nil {
			return nil, fmt.Errorf("get endpoint: %w", err)
		}
		prev := e.UpdatedAt
		if err := fn(e); err != nil {
			return nil, err
		}
		e.UpdatedAt = s.now().UTC().Truncate(time.Millisecond)
		if !e.UpdatedAt.After(prev) {
			e.UpdatedAt = prev.Add(time.Millisecond).Truncate(time.Millisecond)
		}
		err = s.store.UpdateEndpointIfUnchanged(r.Context(), e, prev)
		if kinehook.ErrorCode(err) == kinehook.ECONFLICT && try < 4 {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("store endpoint: %w", err)
		}
		s.disp.EndpointChanged(r.Context(), pid, eid)
		return e, nil
	}
}

// errManaged refuses a change to what a project's operations_url owns in the
// endpoint it made.
func errManaged(field, why string) error {
	return &kinehook.Error{Code: kinehook.ECONFLICT, Field: field, Message: "this endpoint is made by the project's operations_url; " + why}
}

func (s *Server) deleteEndpoint(w nethttp.ResponseWriter, r *nethttp.Request, p *principal) {
	pid, eid := projectID(r, p), r.PathValue("eid")
	if kinehook.IsOperationsEndpoint(eid) {
		if _, err := s.store.GetEndpoint(r.Context(), pid, eid); err != nil {
			s.internal(w, "get endpoint", err)
			return
		}
		writeError(w, errManaged("id", `it stays with the project: setting the project's operations_url to "" disables it`))
		return
	}
	if err := s.store.DeleteEndpoint(r.Context(), pid, eid); err != nil {
		s.internal(w, "delete endpoint", err)
		return
	}
	s.disp.EndpointChanged(r.Context(), pid, eid)
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
	for _, sec := range e.Secrets[min(1, len(e.Secrets)):] {
		if exp := sec.ExpiresAt; !exp.IsZero() && now.Before(exp) && (out.PreviousSecretExpiresAt == nil || exp.After(*out.PreviousSecretExpiresAt)) {
			t := exp.UTC()
			out.PreviousSecretExpiresAt = &t
		}
	}
	return out
}

func (s *Server) getSecret(w nethttp.ResponseWriter, r *nethttp.Request, p *principal) {
	e, err := s.store.GetEndpoint(r.Context(), projectID(r, p), r.PathValue("eid"))
	if err != nil {
		s.internal(w, "get endpoint", err)
		return
	}
	writeJSON(w, nethttp.StatusOK, viewSecret(e, s.now()))
}

// rotateSecret makes a new current secret; the previous one keeps signing
// beside it for SecretGracePeriod. A body {"secret"} chooses the new secret.
func (s *Server) rotateSecret(w nethttp.ResponseWriter, r *nethttp.Request, p *principal) {
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
	e, err := s.updateEndpoint(r, projectID(r, p), r.PathValue("eid"), func(e *kinehook.Endpoint) error {
		scheme := schemeOf(e)
		next := in.Secret
		if next != "" {
			if err := validateSecret(scheme, next); err != nil {
				return err
			}
		} else {
			var err error
			if next, err = kinehook.NewEndpointSecret(scheme); err != nil {
				return err
			}
		}
		secrets := []kinehook.EndpointSecret{{Value: next}}
		if len(e.Secrets) > 0 && e.Secrets[0].Value != next {
			secrets = append(secrets, kinehook.EndpointSecret{Value: e.Secrets[0].Value, ExpiresAt: s.now().UTC().Add(SecretGracePeriod)})
		}
		e.Secrets = secrets
		return nil
	})
	if err != nil {
		s.internal(w, "rotate secret", err)
		return
	}
	writeJSON(w, nethttp.StatusOK, viewSecret(e, s.now()))
}

// recoverEndpoint re-sends the endpoint's failed deliveries created since
// the given time.
func (s *Server) recoverEndpoint(w nethttp.ResponseWriter, r *nethttp.Request, p *principal) {
	pid, eid := projectID(r, p), r.PathValue("eid")
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
	if _, err := s.store.GetEndpoint(r.Context(), pid, eid); err != nil {
		s.internal(w, "get endpoint", err)
		return
	}
	n, err := s.disp.Recover(r.Context(), pid, eid, since)
	if err != nil {
		s.internal(w, "recover endpoint", err)
		return
	}
	writeJSON(w, nethttp.StatusAccepted, map[string]any{"recovered": n, "since": since.UTC()})
}
