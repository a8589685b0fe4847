package app

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/kinehook/kinehook"
)

// Portal session limits.
const (
	// DefaultPortalTTL is a portal session's life when none is asked for.
	DefaultPortalTTL = time.Hour
	// MaxPortalTTL bounds a portal session's life.
	MaxPortalTTL = 7 * 24 * time.Hour
	// MaxBrandName bounds the branding name, in characters.
	MaxBrandName = 100
	// MaxLogoURL bounds the branding logo URL, in bytes.
	MaxLogoURL = 2048
	// MaxPortalOrigins bounds a project's portal_origins.
	MaxPortalOrigins = 20
)

// PortalSessionInput is a new portal session as asked for. ExpiresIn is in
// seconds (nil: DefaultPortalTTL).
type PortalSessionInput struct {
	ExpiresIn  *int64
	Scope      string
	EventTypes []string
	Branding   *kinehook.PortalBranding
}

// NewPortalSession is a portal session just made: the token is only ever in
// this answer (and in the URL the adapter makes of it).
type NewPortalSession struct {
	*kinehook.PortalSession
	Token string
}

// NewPortalToken returns a new portal token: "kpt_" and 32 random bytes in
// base64url.
func NewPortalToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate portal token: %w", err)
	}
	return "kpt_" + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// mayManagePortal checks that p may make, list and revoke portal sessions
// of project pid: the admin key or a full key of that project.
func (p *Principal) mayManagePortal(pid string) error {
	if !p.CanActOn(pid) {
		return &kinehook.Error{Code: kinehook.ENOTFOUND, Message: fmt.Sprintf("project %q not found", pid)}
	}
	if p.Admin || p.Scope == kinehook.ScopeFull {
		return nil
	}
	return &kinehook.Error{Code: kinehook.EFORBIDDEN, Message: "only a key with scope full (or the admin key) may manage portal sessions"}
}

var colorRe = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)

// checkPortalInput checks a new session's settings and returns its life,
// scope, event types (normalised) and branding (nil when empty).
func checkPortalInput(in PortalSessionInput) (time.Duration, kinehook.PortalScope, []string, *kinehook.PortalBranding, error) {
	ttl := DefaultPortalTTL
	if in.ExpiresIn != nil {
		if *in.ExpiresIn < 1 || *in.ExpiresIn > int64(MaxPortalTTL/time.Second) {
			return 0, "", nil, nil, &kinehook.Error{Code: kinehook.EINVALID, Field: "expires_in",
				Message: fmt.Sprintf("expires_in must be 1 to %d seconds (7 days)", int64(MaxPortalTTL/time.Second))}
		}
		ttl = time.Duration(*in.ExpiresIn) * time.Second
	}
	scope := kinehook.PortalScope(in.Scope)
	if !scope.Valid() {
		return 0, "", nil, nil, &kinehook.Error{Code: kinehook.EINVALID, Field: "scope", Message: fmt.Sprintf("scope must be manage or read, not %q", in.Scope)}
	}
	types, err := kinehook.NormalizeEventTypeFilter(in.EventTypes)
	if err != nil {
		return 0, "", nil, nil, err
	}
	for _, t := range kinehook.ExpandEventTypeFilter(types) {
		if t.Operational() {
			return 0, "", nil, nil, &kinehook.Error{Code: kinehook.EINVALID, Field: "event_types",
				Message: fmt.Sprintf("%s is one of kinehook's operational events, which are the project's, not a customer's", t)}
		}
	}
	if len(types) == 0 {
		types = nil
	}
	b, err := checkBranding(in.Branding)
	return ttl, scope, types, b, err
}

// checkBranding checks the portal's branding: a name of at most
// MaxBrandName characters without control characters, an https logo URL
// (http only on a loopback host), a colour #rrggbb (stored lower case).
func checkBranding(b *kinehook.PortalBranding) (*kinehook.PortalBranding, error) {
	if b == nil {
		return nil, nil
	}
	out := &kinehook.PortalBranding{Name: strings.TrimSpace(b.Name), LogoURL: strings.TrimSpace(b.LogoURL), Color: strings.ToLower(strings.TrimSpace(b.Color))}
	switch {
	case utf8.RuneCountInString(out.Name) > MaxBrandName:
		return nil, &kinehook.Error{Code: kinehook.EINVALID, Field: "branding.name", Message: fmt.Sprintf("branding.name is longer than %d characters", MaxBrandName)}
	case strings.ContainsFunc(out.Name, isControl) || !utf8.ValidString(out.Name):
		return nil, &kinehook.Error{Code: kinehook.EINVALID, Field: "branding.name", Message: "branding.name holds a control character"}
	case out.Color != "" && !colorRe.MatchString(out.Color):
		return nil, &kinehook.Error{Code: kinehook.EINVALID, Field: "branding.color", Message: fmt.Sprintf("branding.color must be #rrggbb, not %q", b.Color)}
	}
	if out.LogoURL != "" {
		if err := checkLogoURL(out.LogoURL); err != nil {
			return nil, err
		}
	}
	if *out == (kinehook.PortalBranding{}) {
		return nil, nil
	}
	return out, nil
}

// checkLogoURL refuses a logo URL a browser would fetch insecurely or that
// could carry anything but an image address.
func checkLogoURL(raw string) error {
	bad := func(msg string) error {
		return &kinehook.Error{Code: kinehook.EINVALID, Field: "branding.logo_url", Message: "branding.logo_url " + msg}
	}
	if len(raw) > MaxLogoURL {
		return bad(fmt.Sprintf("is longer than %d characters", MaxLogoURL))
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Hostname() == "" || strings.ContainsAny(raw, " \"'<>\\`") {
		return bad("must be an absolute https:// URL")
	}
	if _, err := normalizeOrigin(u.Scheme + "://" + u.Host); err != nil {
		return bad("has a host that is neither a DNS name nor an IP address")
	}
	switch {
	case u.User != nil:
		return bad("must not carry credentials")
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && isLoopbackHost(u.Hostname()):
		return nil
	}
	return bad("must be an https:// URL (http:// only on a loopback host)")
}

// LogoOrigin is the origin of a checked logo URL (what a content security
// policy must allow for the portal to show it), "" when there is none.
func LogoOrigin(raw string) string {
	if raw == "" || checkLogoURL(raw) != nil {
		return ""
	}
	u, _ := url.Parse(raw) // checkLogoURL parsed it
	o, _ := normalizeOrigin(u.Scheme + "://" + u.Host)
	return o
}

// isLoopbackHost reports whether host is localhost or a loopback address.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

var originHostRe = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

// CheckPortalOrigins checks and normalises a project's portal_origins: at
// most MaxPortalOrigins origins, each http(s)://host[:port] (a trailing "/"
// is dropped) with a DNS name, an IPv4 address or a bracketed IPv6 address,
// and no path, query, user, fragment or wildcard; repeats are dropped.
func CheckPortalOrigins(origins []string) ([]string, error) {
	if len(origins) > MaxPortalOrigins {
		return nil, &kinehook.Error{Code: kinehook.EINVALID, Field: "portal_origins", Message: fmt.Sprintf("at most %d portal origins, %d given", MaxPortalOrigins, len(origins))}
	}
	out := make([]string, 0, len(origins))
	for _, o := range origins {
		n, err := normalizeOrigin(o)
		if err != nil {
			return nil, &kinehook.Error{Code: kinehook.EINVALID, Field: "portal_origins", Message: fmt.Sprintf("portal origin %q: %v", o, err)}
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

func normalizeOrigin(o string) (string, error) {
	if len(o) > 300 {
		return "", fmt.Errorf("longer than 300 characters")
	}
	if strings.Contains(o, "*") {
		return "", fmt.Errorf("wildcards are not allowed: list each origin")
	}
	u, err := url.Parse(strings.TrimSuffix(o, "/"))
	switch {
	case err != nil:
		return "", fmt.Errorf("does not parse")
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("must start with https:// or http://")
	case u.Opaque != "" || u.User != nil || u.Path != "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(o, "#"):
		return "", fmt.Errorf("must be scheme://host[:port] only, without a path, query or user")
	}
	host := strings.ToLower(u.Hostname())
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Is6() && !ip.Is4In6() {
			host = "[" + ip.String() + "]"
		} else {
			host = ip.String()
		}
	} else if !originHostRe.MatchString(host) {
		return "", fmt.Errorf("the host must be a DNS name (punycode for international names) or an IP address")
	}
	if p := u.Port(); p != "" {
		// (url.Parse let only digits through.)
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 || p[0] == '0' {
			return "", fmt.Errorf("the port must be 1 to 65535")
		}
		if !(u.Scheme == "https" && p == "443") && !(u.Scheme == "http" && p == "80") {
			host += ":" + p
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return "", fmt.Errorf("the port is empty")
	}
	return u.Scheme + "://" + host, nil
}

// CreatePortalSession makes a portal session of project pid for p (the
// admin or a full key of the project). Only the token's hash is stored; the
// token is returned once.
func (a *App) CreatePortalSession(ctx context.Context, p *Principal, pid string, in PortalSessionInput) (*NewPortalSession, error) {
	if err := p.mayManagePortal(pid); err != nil {
		return nil, err
	}
	ttl, scope, types, branding, err := checkPortalInput(in)
	if err != nil {
		return nil, err
	}
	token, err := NewPortalToken()
	if err != nil {
		return nil, err
	}
	now := a.stamp()
	ps := &kinehook.PortalSession{ID: kinehook.NewID(kinehook.PrefixPortalSession), ProjectID: pid, TokenHash: kinehook.HashKey(token),
		Scope: scope, EventTypes: types, Branding: branding, CreatedAt: now, ExpiresAt: now.Add(ttl)}
	if err := a.store.CreatePortalSession(ctx, ps); err != nil {
		return nil, fmt.Errorf("create portal session: %w", err)
	}
	return &NewPortalSession{PortalSession: ps, Token: token}, nil
}

// ListPortalSessions lists project pid's portal sessions, newest first
// (never a token), for the admin or a full key of the project.
func (a *App) ListPortalSessions(ctx context.Context, p *Principal, pid string) ([]*kinehook.PortalSession, error) {
	if err := p.mayManagePortal(pid); err != nil {
		return nil, err
	}
	out, err := a.store.ListPortalSessions(ctx, pid)
	if err != nil {
		return nil, fmt.Errorf("list portal sessions: %w", err)
	}
	return out, nil
}

// RevokePortalSession ends a portal session at once: this instance forgets
// it now, the others within KeyCacheTTL.
func (a *App) RevokePortalSession(ctx context.Context, p *Principal, pid, id string) error {
	if err := p.mayManagePortal(pid); err != nil {
		return err
	}
	if err := a.store.RevokePortalSession(ctx, pid, id, a.stamp()); err != nil {
		if kinehook.ErrorCode(err) == kinehook.ENOTFOUND {
			return &kinehook.Error{Code: kinehook.ENOTFOUND, Message: fmt.Sprintf("portal session %q not found", id)}
		}
		return fmt.Errorf("revoke portal session: %w", err)
	}
	a.portals.forget()
	return nil
}

// portalCache holds looked-up portal sessions with their projects for
// KeyCacheTTL, like the key cache.
type portalCache struct {
	mu sync.Mutex
	m  map[string]cachedPortal
}

type cachedPortal struct {
	s    *kinehook.PortalSession
	p    *kinehook.Project
	logo string    // LogoOrigin of the session's branding
	at   time.Time // monotonic
}

func (c *portalCache) get(hash []byte) (cachedPortal, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[string(hash)]
	if !ok || time.Since(e.at) >= KeyCacheTTL {
		return cachedPortal{}, false
	}
	return e, true
}

func (c *portalCache) put(hash []byte, e cachedPortal) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCachedKeys {
		c.m = map[string]cachedPortal{}
	}
	c.m[string(hash)] = e
}

func (c *portalCache) forget() {
	c.mu.Lock()
	c.m = nil
	c.mu.Unlock()
}

// PortalAccess is what one portal session may see and do: the rules every
// portal page goes through (scope, event types, visible endpoints).
type PortalAccess struct {
	Session *kinehook.PortalSession
	Project *kinehook.Project
	// LogoOrigin is the origin of the branding's logo (what the portal's
	// content security policy must allow), "" without one.
	LogoOrigin string
	// allowed are the concrete event types the session may see.
	allowed []kinehook.EventType
}

// errPortalGone is what every refused portal token gets: the portal tells
// an unknown token from an expired or revoked one only by this message.
func errPortalGone(msg string) error {
	return &kinehook.Error{Code: kinehook.EUNAUTHORIZED, Message: msg}
}

// AuthenticatePortal resolves a portal token (cached for KeyCacheTTL): an
// unknown, expired or revoked one, or one whose project is gone, is
// EUNAUTHORIZED.
func (a *App) AuthenticatePortal(ctx context.Context, token string) (*PortalAccess, error) {
	e, err := a.portalEntry(ctx, token)
	if err != nil {
		return nil, err
	}
	switch {
	case !e.s.RevokedAt.IsZero():
		return nil, errPortalGone("this portal session was revoked")
	case !a.now().Before(e.s.ExpiresAt):
		return nil, errPortalGone("this portal session has expired")
	}
	return &PortalAccess{Session: e.s, Project: e.p, LogoOrigin: e.logo, allowed: kinehook.ExpandEventTypeFilter(e.s.EventTypes)}, nil
}

// portalEntry finds the session a token names and its project, live or
// not, through the cache: an unknown token or a gone project is
// EUNAUTHORIZED.
func (a *App) portalEntry(ctx context.Context, token string) (cachedPortal, error) {
	if !strings.HasPrefix(token, "kpt_") || len(token) > 100 {
		return cachedPortal{}, errPortalGone("this portal link is not valid")
	}
	hash := kinehook.HashKey(token)
	if e, ok := a.portals.get(hash); ok {
		return e, nil
	}
	s, err := a.store.PortalSessionByHash(ctx, hash)
	if kinehook.ErrorCode(err) == kinehook.ENOTFOUND {
		return cachedPortal{}, errPortalGone("this portal link is not valid")
	}
	if err != nil {
		return cachedPortal{}, fmt.Errorf("look up portal session: %w", err)
	}
	p, err := a.store.GetProject(ctx, s.ProjectID)
	if kinehook.ErrorCode(err) == kinehook.ENOTFOUND {
		return cachedPortal{}, errPortalGone("this portal link is not valid")
	}
	if err != nil {
		return cachedPortal{}, fmt.Errorf("look up portal project: %w", err)
	}
	e := cachedPortal{s: s, p: p, at: time.Now()}
	if s.Branding != nil {
		e.logo = LogoOrigin(s.Branding.LogoURL)
	}
	a.portals.put(hash, e)
	return e, nil
}

// PortalFrameOrigins returns the portal origins of the project of the
// session token names, live or not (nil when none): a refused portal page
// may still be shown in the frame that asked for it. It shares
// AuthenticatePortal's cache, so a refused link costs no store query either.
func (a *App) PortalFrameOrigins(ctx context.Context, token string) []string {
	e, err := a.portalEntry(ctx, token)
	if err != nil {
		return nil
	}
	return e.p.PortalOrigins
}

// PortalCSRF is the portal's form token for a session token: derived from
// it, so that every instance checks it without shared memory, and useless
// without the session token itself.
func PortalCSRF(token string) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("kinehook portal csrf"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// CanManage reports whether the session may change anything.
func (pa *PortalAccess) CanManage() bool { return pa.Session.Scope == kinehook.PortalManage }

// Permits reports, as an EFORBIDDEN error, whether the session may do op:
// read sessions only look.
func (pa *PortalAccess) Permits(op Op) error {
	if op == OpRead || pa.CanManage() {
		return nil
	}
	return &kinehook.Error{Code: kinehook.EFORBIDDEN, Message: "this portal session may only look, not change anything"}
}

// Limited reports whether the session is limited to some event types.
func (pa *PortalAccess) Limited() bool { return len(pa.Session.EventTypes) > 0 }

// EventTypes are the concrete event types the session may see and
// subscribe to, in catalog order.
func (pa *PortalAccess) EventTypes() []kinehook.EventType { return slices.Clone(pa.allowed) }

// FilterChoices are the endpoint filters a portal form offers: the
// session's event types when it is limited, else every catalog type and
// "live.*".
func (pa *PortalAccess) FilterChoices() []string {
	if pa.Limited() {
		return slices.Clone(pa.Session.EventTypes)
	}
	out := make([]string, 0, len(kinehook.EventTypes)+1)
	for _, t := range kinehook.EventTypes {
		out = append(out, string(t))
	}
	return append(out, "live.*")
}

// AllowsType reports whether the session may see events of type t.
func (pa *PortalAccess) AllowsType(t kinehook.EventType) bool { return slices.Contains(pa.allowed, t) }

// withinAllowed reports whether every type filter selects is one the
// session may see.
func (pa *PortalAccess) withinAllowed(filter []string) bool {
	for _, t := range kinehook.ExpandEventTypeFilter(filter) {
		if !pa.AllowsType(t) {
			return false
		}
	}
	return true
}

// Sees reports whether the portal shows endpoint e: a webhook, not the
// project's operations endpoint, whose filter selects only types the
// session may see.
func (pa *PortalAccess) Sees(e *kinehook.Endpoint) bool {
	return e.ProjectID == pa.Project.ID && e.TypeOf() == kinehook.EndpointWebhook &&
		!kinehook.IsOperationsEndpoint(e.ID) && pa.withinAllowed(e.EventTypes)
}

// SeesDelivery reports whether the portal shows delivery d (its endpoint
// is checked apart).
func (pa *PortalAccess) SeesDelivery(d *kinehook.Delivery) bool { return pa.AllowsType(d.EventType) }

// checkFilter refuses an endpoint filter beyond the session's event types.
func (pa *PortalAccess) checkFilter(filter []string) error {
	types, err := kinehook.NormalizeEventTypeFilter(filter)
	if err != nil {
		return err
	}
	if !pa.withinAllowed(types) {
		msg := "choose event types among " + strings.Join(pa.Session.EventTypes, ", ")
		if !pa.Limited() {
			msg = "kinehook's operational events are not offered here"
		}
		return &kinehook.Error{Code: kinehook.EINVALID, Field: "event_types", Message: msg}
	}
	return nil
}

// portalInput keeps the fields a portal may set on an endpoint: its URL,
// description, event types, custom headers and whether it is disabled;
// the type stays webhook and limits and secrets stay the operator's.
func (pa *PortalAccess) portalInput(in EndpointInput) (EndpointInput, error) {
	if err := pa.Permits(OpChange); err != nil {
		return EndpointInput{}, err
	}
	if in.EventTypes != nil {
		if err := pa.checkFilter(*in.EventTypes); err != nil {
			return EndpointInput{}, err
		}
	}
	return EndpointInput{URL: in.URL, Description: in.Description, EventTypes: in.EventTypes, Headers: in.Headers,
		Disabled: in.Disabled, DisableReason: in.DisableReason, Seen: in.Seen}, nil
}

func portalNotFound(eid string) error {
	return &kinehook.Error{Code: kinehook.ENOTFOUND, Message: fmt.Sprintf("endpoint %q not found", eid)}
}

// PortalEndpoints lists the endpoints the session sees, oldest first.
func (a *App) PortalEndpoints(ctx context.Context, pa *PortalAccess) ([]*kinehook.Endpoint, error) {
	eps, err := a.store.ListEndpoints(ctx, pa.Project.ID)
	if err != nil {
		return nil, fmt.Errorf("list endpoints: %w", err)
	}
	return slices.DeleteFunc(eps, func(e *kinehook.Endpoint) bool { return !pa.Sees(e) }), nil
}

// PortalEndpoint returns an endpoint the session sees (ENOTFOUND otherwise).
func (a *App) PortalEndpoint(ctx context.Context, pa *PortalAccess, eid string) (*kinehook.Endpoint, error) {
	e, err := a.store.GetEndpoint(ctx, pa.Project.ID, eid)
	if kinehook.ErrorCode(err) == kinehook.ENOTFOUND || (err == nil && !pa.Sees(e)) {
		return nil, portalNotFound(eid)
	}
	if err != nil {
		return nil, fmt.Errorf("get endpoint: %w", err)
	}
	return e, nil
}

// PortalCreateEndpoint makes a webhook endpoint from a manage session; a
// limited session must choose its event types among its own.
func (a *App) PortalCreateEndpoint(ctx context.Context, pa *PortalAccess, in EndpointInput) (*kinehook.Endpoint, error) {
	in, err := pa.portalInput(in)
	if err != nil {
		return nil, err
	}
	if in.EventTypes == nil && pa.Limited() {
		if err := pa.checkFilter(nil); err != nil {
			return nil, err
		}
	}
	return a.CreateEndpoint(ctx, pa.Project.ID, in)
}

// PortalPatchEndpoint changes an endpoint the session sees (manage only).
func (a *App) PortalPatchEndpoint(ctx context.Context, pa *PortalAccess, eid string, in EndpointInput) (*kinehook.Endpoint, error) {
	in, err := pa.portalInput(in)
	if err != nil {
		return nil, err
	}
	if _, err := a.PortalEndpoint(ctx, pa, eid); err != nil {
		return nil, err
	}
	return a.PatchEndpoint(ctx, pa.Project.ID, eid, in)
}

// PortalDeleteEndpoint removes an endpoint the session sees (manage only).
func (a *App) PortalDeleteEndpoint(ctx context.Context, pa *PortalAccess, eid string) error {
	if err := pa.Permits(OpChange); err != nil {
		return err
	}
	if _, err := a.PortalEndpoint(ctx, pa, eid); err != nil {
		return err
	}
	return a.DeleteEndpoint(ctx, pa.Project.ID, eid)
}

// PortalRotateSecret rotates the secret of an endpoint the session sees
// (manage only).
func (a *App) PortalRotateSecret(ctx context.Context, pa *PortalAccess, eid string, seen time.Time) (*kinehook.Endpoint, error) {
	if err := pa.Permits(OpChange); err != nil {
		return nil, err
	}
	if _, err := a.PortalEndpoint(ctx, pa, eid); err != nil {
		return nil, err
	}
	return a.RotateSecret(ctx, pa.Project.ID, eid, "", seen)
}

// PortalTestEndpoint sends a sample event of type t to one endpoint the
// session sees, and to no other (manage only; t among its types).
func (a *App) PortalTestEndpoint(ctx context.Context, pa *PortalAccess, eid string, t kinehook.EventType) (*kinehook.Delivery, error) {
	if err := pa.Permits(OpChange); err != nil {
		return nil, err
	}
	if _, err := a.PortalEndpoint(ctx, pa, eid); err != nil {
		return nil, err
	}
	if !pa.AllowsType(t) {
		return nil, &kinehook.Error{Code: kinehook.EINVALID, Field: "event_type", Message: fmt.Sprintf("event type %q is not offered here", t)}
	}
	return a.TestEndpoint(ctx, pa.Project.ID, eid, t)
}

// PortalEndpointStats is EndpointStats of an endpoint the session sees.
func (a *App) PortalEndpointStats(ctx context.Context, pa *PortalAccess, eid, window string) (*kinehook.Stats, error) {
	if _, err := a.PortalEndpoint(ctx, pa, eid); err != nil {
		return nil, err
	}
	return a.EndpointStats(ctx, pa.Project.ID, eid, window)
}

// PortalSearchDeliveries pages the deliveries of an endpoint the session
// sees, leaving out those of types it may not see (a page may so hold
// fewer than asked).
func (a *App) PortalSearchDeliveries(ctx context.Context, pa *PortalAccess, eid string, f kinehook.DeliveryFilter) ([]*kinehook.Delivery, string, error) {
	if _, err := a.PortalEndpoint(ctx, pa, eid); err != nil {
		return nil, "", err
	}
	if f.EventType != "" && !pa.AllowsType(f.EventType) {
		return nil, "", nil
	}
	f.EndpointID = eid
	ds, next, err := a.SearchDeliveries(ctx, pa.Project.ID, f, true)
	if err != nil {
		return nil, "", err
	}
	return slices.DeleteFunc(ds, func(d *kinehook.Delivery) bool { return !pa.SeesDelivery(d) }), next, nil
}

// PortalRetryDelivery sends one delivery again (manage only): its endpoint
// and its type must be ones the session sees.
func (a *App) PortalRetryDelivery(ctx context.Context, pa *PortalAccess, did string) (*kinehook.Delivery, error) {
	if err := pa.Permits(OpChange); err != nil {
		return nil, err
	}
	d, err := a.store.GetDelivery(ctx, pa.Project.ID, did)
	if err == nil && !pa.SeesDelivery(d) {
		err = &kinehook.Error{Code: kinehook.ENOTFOUND, Message: fmt.Sprintf("delivery %q not found", did)}
	}
	if err == nil {
		_, err = a.PortalEndpoint(ctx, pa, d.EndpointID)
	}
	if kinehook.ErrorCode(err) == kinehook.ENOTFOUND {
		return nil, &kinehook.Error{Code: kinehook.ENOTFOUND, Message: fmt.Sprintf("delivery %q not found", did)}
	}
	if err != nil {
		return nil, fmt.Errorf("get delivery: %w", err)
	}
	return a.RetryDelivery(ctx, pa.Project.ID, did)
}

// PortalRetryDeliveries re-sends the failed deliveries of an endpoint the
// session sees that s matches (manage only). While the endpoint has failed
// deliveries of types the session may not see (its filter was wider once),
// they stay as they are: the retry then goes type by type, among the
// session's types (each type in order; a resource's deliveries of two types
// queue in acceptance order unless the first is already being sent).
// Otherwise it is one retry, in acceptance order, as the API's.
func (a *App) PortalRetryDeliveries(ctx context.Context, pa *PortalAccess, eid string, s DeliverySearch) (int, error) {
	if err := pa.Permits(OpChange); err != nil {
		return 0, err
	}
	if _, err := a.PortalEndpoint(ctx, pa, eid); err != nil {
		return 0, err
	}
	s.EndpointID = eid
	if s.Event != "" {
		if !pa.AllowsType(kinehook.EventType(s.Event)) {
			return 0, nil
		}
		return a.RetryDeliveries(ctx, pa.Project.ID, s, true)
	}
	hidden, err := a.hiddenFailures(ctx, pa, eid)
	if err != nil || !hidden {
		if err != nil {
			return 0, err
		}
		return a.RetryDeliveries(ctx, pa.Project.ID, s, true)
	}
	n := 0
	for _, t := range pa.allowed {
		s.Event = string(t)
		m, err := a.RetryDeliveries(ctx, pa.Project.ID, s, true)
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// hiddenFailures reports whether endpoint eid has a failed delivery of a
// type the session may not see (one index seek per such type).
func (a *App) hiddenFailures(ctx context.Context, pa *PortalAccess, eid string) (bool, error) {
	for _, t := range slices.Concat(kinehook.EventTypes, kinehook.OperationalEventTypes) {
		if pa.AllowsType(t) {
			continue
		}
		ds, _, err := a.store.SearchDeliveries(ctx, pa.Project.ID, kinehook.DeliveryFilter{EndpointID: eid,
			Statuses: []kinehook.DeliveryStatus{kinehook.DeliveryFailed}, EventType: t, Limit: 1})
		if err != nil {
			return false, fmt.Errorf("search failed deliveries: %w", err)
		}
		if len(ds) > 0 {
			return true, nil
		}
	}
	return false, nil
}
