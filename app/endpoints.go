package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kinehook/kinehook"
)

// Limits on endpoint fields. Lengths count characters (what a person types
// and the API documents), never bytes.
const (
	MaxDescription  = 1000
	MaxEndpointName = 200
	MaxRateLimit    = 1e6
	MaxInFlightCap  = 10000
)

// EndpointInput is an endpoint's settings as given. Nil fields are left
// alone by an update; a create gives them their defaults (a URL is required).
type EndpointInput struct {
	// Type is kinehook.EndpointWebhook (the default) or a wired destination
	// type; Config and Credentials are that type's (see App.applyType).
	Type            *string
	Config          *json.RawMessage
	Credentials     *map[string]string
	URL             *string
	EventTypes      *[]string
	Description     *string
	Secret          *string
	Headers         *map[string]string
	Disabled        *bool
	RateLimit       *float64
	MaxInFlight     *int
	SignatureScheme *string
	Name            *string
	Login           *string
	Password        *string

	// DisableReason is the disabled_reason recorded when Disabled disables
	// an endpoint that has none yet ("" means "disabled through the API").
	DisableReason string
	// Seen, when set, is the endpoint's UpdatedAt as the caller showed it
	// to the user: the change applies to that version only, and fails with
	// ECONFLICT when the endpoint changed since (see UpdateEndpointSeen).
	Seen time.Time
}

// CheckURL validates an endpoint URL given in field and, unless private
// networks are allowed, refuses a host that is a private, loopback or
// reserved address however it is spelled (127.1, 0x7f000001,
// [::ffff:127.0.0.1], ...) or a localhost name (EINVALID). Names that
// resolve to such addresses are refused by the delivery transport at dial
// time.
func (a *App) CheckURL(raw, field string) error {
	if err := kinehook.ValidateEndpointURL(raw); err != nil {
		var ke *kinehook.Error
		if errors.As(err, &ke) {
			out := *ke
			out.Field = field
			if field == "operations_url" {
				// The url rules' wording, without the endpoint-only advice
				// ("use login and password") and with the field's name.
				msg, _, _ := strings.Cut(out.Message, "; use login")
				out.Message = field + strings.TrimPrefix(msg, "url")
			}
			return &out
		}
		return &kinehook.Error{Code: kinehook.EINVALID, Field: field, Message: err.Error()}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return &kinehook.Error{Code: kinehook.EINVALID, Field: field, Message: fmt.Sprintf("url does not parse: %v", err)}
	}
	if err := a.guard.CheckLiteralHost(u.Hostname()); err != nil {
		return &kinehook.Error{Code: kinehook.EINVALID, Field: field, Message: err.Error()}
	}
	return nil
}

// CheckDescription holds a description to MaxDescription characters.
func CheckDescription(d string) error {
	if utf8.RuneCountInString(d) > MaxDescription {
		return &kinehook.Error{Code: kinehook.EINVALID, Field: "description", Message: fmt.Sprintf("description is longer than %d characters", MaxDescription)}
	}
	return nil
}

// CheckRateLimit holds a rate limit to 0 (unlimited) .. MaxRateLimit
// deliveries per second.
func CheckRateLimit(r float64) error {
	if !(r >= 0 && r <= MaxRateLimit) { // also refuses NaN
		return &kinehook.Error{Code: kinehook.EINVALID, Field: "rate_limit", Message: "rate_limit must be between 0 (unlimited) and 1000000 deliveries per second"}
	}
	return nil
}

// CheckMaxInFlight holds max_in_flight to 0 (server default) .. MaxInFlightCap.
func CheckMaxInFlight(n int) error {
	if n < 0 || n > MaxInFlightCap {
		return &kinehook.Error{Code: kinehook.EINVALID, Field: "max_in_flight", Message: fmt.Sprintf("max_in_flight must be between 0 (server default) and %d", MaxInFlightCap)}
	}
	return nil
}

// applyEndpoint validates in and writes it into e. When creating, missing
// fields get their defaults (and a url is required).
func (a *App) applyEndpoint(e *kinehook.Endpoint, in *EndpointInput, creating bool) error {
	if err := a.applyTarget(e, in, creating); err != nil {
		return err
	}
	if in.Disabled != nil {
		applyDisabled(e, *in.Disabled, in.DisableReason)
	}
	if err := applyLimits(e, in); err != nil {
		return err
	}
	if err := applyAuth(e, in); err != nil {
		return err
	}
	return applySecret(e, in, creating)
}

// applyURL handles a webhook's url, required when creating it (or
// changing an endpoint into a webhook).
func (a *App) applyURL(e *kinehook.Endpoint, in *EndpointInput, required bool) error {
	if in.URL != nil || required {
		if in.URL == nil || *in.URL == "" {
			return &kinehook.Error{Code: kinehook.EINVALID, Field: "url", Message: "url is required"}
		}
		if err := a.CheckURL(*in.URL, "url"); err != nil {
			return err
		}
		e.URL = *in.URL
	}
	return nil
}

// applyTarget handles type, url, config, credentials, event_types,
// description and headers.
func (a *App) applyTarget(e *kinehook.Endpoint, in *EndpointInput, creating bool) error {
	if err := a.applyType(e, in, creating); err != nil {
		return err
	}
	if in.EventTypes != nil {
		types, err := kinehook.NormalizeEventTypeFilter(*in.EventTypes)
		if err != nil {
			return err
		}
		e.EventTypes = types
	}
	if in.Description != nil {
		if err := CheckDescription(*in.Description); err != nil {
			return err
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
	return nil
}

// applyDisabled disables (keeping a reason already given, by the engine
// say) or enables an endpoint; enabling clears its health, and enabling a
// disabled one resets its breaker (as the store and the engine do).
func applyDisabled(e *kinehook.Endpoint, disabled bool, reason string) {
	if e.Disabled && !disabled {
		e.Breaker = kinehook.BreakerRecord{}
	}
	e.Disabled = disabled
	if !disabled {
		e.DisabledReason = ""
		e.FailingSince = time.Time{}
		return
	}
	if e.DisabledReason == "" {
		e.DisabledReason = reason
		if reason == "" {
			e.DisabledReason = "disabled through the API"
		}
	}
}

// applyLimits handles rate_limit and max_in_flight.
func applyLimits(e *kinehook.Endpoint, in *EndpointInput) error {
	if in.RateLimit != nil {
		if err := CheckRateLimit(*in.RateLimit); err != nil {
			return err
		}
		e.RateLimit = *in.RateLimit
	}
	if in.MaxInFlight != nil {
		if err := CheckMaxInFlight(*in.MaxInFlight); err != nil {
			return err
		}
		e.MaxInFlight = *in.MaxInFlight
	}
	return nil
}

// applyAuth handles Kinescope's name and the Basic Auth login/password.
func applyAuth(e *kinehook.Endpoint, in *EndpointInput) error {
	if in.Name != nil {
		if utf8.RuneCountInString(*in.Name) > MaxEndpointName {
			return &kinehook.Error{Code: kinehook.EINVALID, Field: "name", Message: fmt.Sprintf("name is longer than %d characters", MaxEndpointName)}
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
	return nil
}

// SchemeOf is an endpoint's signature scheme (SchemeV1 when unset).
func SchemeOf(e *kinehook.Endpoint) string {
	if e.Scheme == "" {
		return kinehook.SchemeV1
	}
	return e.Scheme
}

// applySecret handles signature_scheme and secret: a given secret must suit
// the scheme; a new scheme without a secret gets a fresh one.
func applySecret(e *kinehook.Endpoint, in *EndpointInput, creating bool) error {
	scheme := SchemeOf(e)
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
		if err := CheckSecret(scheme, *in.Secret); err != nil {
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

// CheckSecret checks a caller-chosen secret for scheme.
func CheckSecret(scheme, secret string) error {
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

// CreateEndpoint validates, stores and announces a new endpoint of an
// existing project.
func (a *App) CreateEndpoint(ctx context.Context, pid string, in EndpointInput) (*kinehook.Endpoint, error) {
	if _, err := a.store.GetProject(ctx, pid); err != nil {
		return nil, fmt.Errorf("get project: %w", err)
	}
	now := a.stamp()
	e := &kinehook.Endpoint{ID: kinehook.NewID(kinehook.PrefixEndpoint), ProjectID: pid, CreatedAt: now, UpdatedAt: now}
	if err := a.applyEndpoint(e, &in, true); err != nil {
		return nil, err
	}
	if err := a.store.CreateEndpoint(ctx, e); err != nil {
		return nil, fmt.Errorf("store endpoint: %w", err)
	}
	a.disp.EndpointChanged(ctx, pid, e.ID)
	return e, nil
}

// GetEndpoint returns an endpoint of a project (ENOTFOUND when there is none).
func (a *App) GetEndpoint(ctx context.Context, pid, eid string) (*kinehook.Endpoint, error) {
	return a.store.GetEndpoint(ctx, pid, eid)
}

// ListEndpoints lists every endpoint of a project, oldest first.
func (a *App) ListEndpoints(ctx context.Context, pid string) ([]*kinehook.Endpoint, error) {
	return a.store.ListEndpoints(ctx, pid)
}

// ListEndpointsPage pages the endpoints of an existing project.
func (a *App) ListEndpointsPage(ctx context.Context, pid, cursor string, limit int) ([]*kinehook.Endpoint, string, error) {
	if _, err := a.store.GetProject(ctx, pid); err != nil {
		return nil, "", fmt.Errorf("get project: %w", err)
	}
	return a.store.ListEndpointsPage(ctx, pid, cursor, limit)
}

// PatchEndpoint changes the given settings of an endpoint. The endpoint a
// project's operations_url made keeps what that setting owns: its url and
// event types, and it is enabled only while the setting is set.
func (a *App) PatchEndpoint(ctx context.Context, pid, eid string, in EndpointInput) (*kinehook.Endpoint, error) {
	if kinehook.IsOperationsEndpoint(eid) {
		// Its project's operations_url decides what may change here.
		unlock := a.lockProject(pid)
		defer unlock()
	}
	return a.UpdateEndpointSeen(ctx, pid, eid, in.Seen, func(e *kinehook.Endpoint) error {
		if kinehook.IsOperationsEndpoint(e.ID) {
			if err := a.checkManaged(ctx, pid, e, &in); err != nil {
				return err
			}
		}
		return a.applyEndpoint(e, &in, false)
	})
}

// checkManaged refuses a change of what the operations_url owns in e.
func (a *App) checkManaged(ctx context.Context, pid string, e *kinehook.Endpoint, in *EndpointInput) error {
	if in.URL != nil && *in.URL != e.URL {
		return errManaged("url", "its url is the project's operations_url: change that instead")
	}
	if in.Type != nil && *in.Type != "" && *in.Type != kinehook.EndpointWebhook {
		return errManaged("type", "it is a webhook to the project's operations_url")
	}
	if in.EventTypes != nil && !slices.Equal(*in.EventTypes, e.EventTypes) {
		return errManaged("event_types", "it receives the project's operational events (endpoint.*)")
	}
	if in.Disabled != nil && !*in.Disabled && e.Disabled {
		p, err := a.store.GetProject(ctx, pid)
		if err != nil {
			return fmt.Errorf("get project: %w", err)
		}
		if p.OperationsURL == "" {
			return errManaged("disabled", "the project's operations_url is not set: set that to enable it")
		}
	}
	return nil
}

// errManaged refuses a change to what a project's operations_url owns in the
// endpoint it made (ECONFLICT naming the field).
func errManaged(field, why string) error {
	return &kinehook.Error{Code: kinehook.ECONFLICT, Field: field, Message: "this endpoint is made by the project's operations_url; " + why}
}

// maxUpdateTries bounds UpdateEndpoint's attempts against concurrent writers.
const maxUpdateTries = 5

// UpdateEndpoint reads an endpoint, changes it with fn, stores and announces
// it. The write holds only if nobody changed the endpoint since the read (the
// delivery engine disabling it, say); otherwise it reads and applies fn
// again, a few times, before failing with ECONFLICT.
func (a *App) UpdateEndpoint(ctx context.Context, pid, eid string, fn func(*kinehook.Endpoint) error) (*kinehook.Endpoint, error) {
	return a.UpdateEndpointSeen(ctx, pid, eid, time.Time{}, fn)
}

// UpdateEndpointSeen is UpdateEndpoint for a change a user made to the
// endpoint as shown to them, last updated at seen (zero: no such version):
// when the endpoint changed since (the delivery engine disabled it, another
// tab saved), nothing is written and the error is ECONFLICT, so the user
// sees the change and repeats theirs rather than overwriting it unseen.
func (a *App) UpdateEndpointSeen(ctx context.Context, pid, eid string, seen time.Time, fn func(*kinehook.Endpoint) error) (*kinehook.Endpoint, error) {
	for try := 1; ; try++ {
		e, err := a.store.GetEndpoint(ctx, pid, eid)
		if err != nil {
			return nil, fmt.Errorf("get endpoint: %w", err)
		}
		prev := e.UpdatedAt
		if !seen.IsZero() && !prev.Equal(seen) {
			return nil, &kinehook.Error{Code: kinehook.ECONFLICT, Message: "the endpoint changed since it was shown; nothing was saved"}
		}
		if err := fn(e); err != nil {
			return nil, err
		}
		e.UpdatedAt = a.stamp()
		if !e.UpdatedAt.After(prev) {
			e.UpdatedAt = prev.Add(time.Millisecond).Truncate(time.Millisecond)
		}
		err = a.store.UpdateEndpointIfUnchanged(ctx, e, prev)
		if kinehook.ErrorCode(err) == kinehook.ECONFLICT && try < maxUpdateTries {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("store endpoint: %w", err)
		}
		a.disp.EndpointChanged(ctx, pid, eid)
		return e, nil
	}
}

// RotateSecret makes a new current secret (next, or a fresh one when
// empty); the previous one keeps signing beside it for
// kinehook.SecretGracePeriod, older ones are dropped. A non-zero seen
// applies it to that version of the endpoint only (UpdateEndpointSeen).
func (a *App) RotateSecret(ctx context.Context, pid, eid, next string, seen time.Time) (*kinehook.Endpoint, error) {
	return a.UpdateEndpointSeen(ctx, pid, eid, seen, func(e *kinehook.Endpoint) error {
		scheme := SchemeOf(e)
		secret := next
		if secret != "" {
			if err := CheckSecret(scheme, secret); err != nil {
				return err
			}
		} else {
			var err error
			if secret, err = kinehook.NewEndpointSecret(scheme); err != nil {
				return err
			}
		}
		secrets := []kinehook.EndpointSecret{{Value: secret}}
		if len(e.Secrets) > 0 && e.Secrets[0].Value != secret {
			secrets = append(secrets, kinehook.EndpointSecret{Value: e.Secrets[0].Value, ExpiresAt: a.now().UTC().Add(kinehook.SecretGracePeriod)})
		}
		e.Secrets = secrets
		return nil
	})
}

// PreviousSecretExpiry is when e's rotated-out secret stops signing, while
// one still signs at now (zero otherwise): a receiver must accept the new
// secret by then.
func PreviousSecretExpiry(e *kinehook.Endpoint, now time.Time) time.Time {
	var out time.Time
	for _, sec := range e.Secrets[min(1, len(e.Secrets)):] {
		if exp := sec.ExpiresAt; !exp.IsZero() && now.Before(exp) && exp.After(out) {
			out = exp
		}
	}
	return out
}

// DeleteEndpoint removes an endpoint (its pending deliveries fail) and
// tells the engine. The endpoint of a project's operations_url stays with
// the project (ECONFLICT): clearing that setting disables it.
func (a *App) DeleteEndpoint(ctx context.Context, pid, eid string) error {
	if kinehook.IsOperationsEndpoint(eid) {
		if _, err := a.store.GetEndpoint(ctx, pid, eid); err != nil {
			return fmt.Errorf("get endpoint: %w", err)
		}
		return errManaged("id", `it stays with the project: setting the project's operations_url to "" disables it`)
	}
	if err := a.store.DeleteEndpoint(ctx, pid, eid); err != nil {
		return fmt.Errorf("delete endpoint: %w", err)
	}
	a.disp.EndpointChanged(ctx, pid, eid)
	return nil
}

// RecoverEndpoint re-sends an endpoint's failed deliveries created since
// the given time and returns how many.
func (a *App) RecoverEndpoint(ctx context.Context, pid, eid string, since time.Time) (int, error) {
	if _, err := a.store.GetEndpoint(ctx, pid, eid); err != nil {
		return 0, fmt.Errorf("get endpoint: %w", err)
	}
	n, err := a.disp.RetryFailed(ctx, pid, kinehook.DeliveryFilter{EndpointID: eid, Since: since})
	if err != nil {
		return 0, fmt.Errorf("recover endpoint: %w", err)
	}
	return n, nil
}
