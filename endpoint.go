package kinehook

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ValidateEndpointURL checks that u is an absolute http or https URL with a
// host, no user info and no fragment. Address policy (private networks) is
// the delivery transport's job, not this function's.
func ValidateEndpointURL(u string) error {
	if len(u) > 2048 {
		return &Error{Code: EINVALID, Field: "url", Message: "url is longer than 2048 characters"}
	}
	p, err := url.Parse(u)
	if err != nil {
		return &Error{Code: EINVALID, Field: "url", Message: fmt.Sprintf("url does not parse: %v", err)}
	}
	switch {
	case p.Scheme != "http" && p.Scheme != "https":
		return &Error{Code: EINVALID, Field: "url", Message: "url must be an absolute http:// or https:// URL"}
	case p.Host == "" || p.Hostname() == "":
		return &Error{Code: EINVALID, Field: "url", Message: "url has no host"}
	case p.User != nil:
		return &Error{Code: EINVALID, Field: "url", Message: "url must not carry credentials; use login and password"}
	case p.Fragment != "":
		return &Error{Code: EINVALID, Field: "url", Message: "url must not have a fragment"}
	}
	return nil
}

// Limits on an endpoint's event-type filter. The catalog, kinehook's
// operational types and their prefixes make about fifteen distinct entries,
// so the bounds only refuse input that cannot be a filter (a list of 100,000
// entries was stored and echoed back).
const (
	MaxEventTypeFilters = 64
	MaxEventTypeLength  = 100
)

// NormalizeEventTypeFilter checks an endpoint's event_types and returns them
// without repeats, in first-seen order: at most MaxEventTypeFilters entries
// (as given, repeats counted), each of at most MaxEventTypeLength bytes and a
// catalog or operational type, "*", or a prefix ending in ".*" that matches
// at least one of those. Every way of setting an endpoint's filter (API,
// dashboard, Kinescope's /v1/webhooks) goes through it.
func NormalizeEventTypeFilter(filter []string) ([]string, error) {
	if len(filter) > MaxEventTypeFilters {
		return nil, &Error{Code: EINVALID, Field: "event_types", Message: fmt.Sprintf("at most %d event types, %d given", MaxEventTypeFilters, len(filter))}
	}
	out := make([]string, 0, len(filter))
	for _, f := range filter {
		if len(f) > MaxEventTypeLength {
			return nil, &Error{Code: EINVALID, Field: "event_types", Message: fmt.Sprintf("an event type is longer than %d characters", MaxEventTypeLength)}
		}
		if !validFilter(f) {
			return nil, &Error{Code: EINVALID, Field: "event_types", Message: fmt.Sprintf("unknown event type %q; expected one of %v, %v or a prefix such as \"live.*\"", f, EventTypes, OperationalEventTypes)}
		}
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out, nil
}

// ValidateEventTypeFilter checks an endpoint's event_types as
// NormalizeEventTypeFilter does (repeats are allowed: they are dropped there).
func ValidateEventTypeFilter(filter []string) error {
	_, err := NormalizeEventTypeFilter(filter)
	return err
}

// validFilter reports whether f is one entry of a valid filter.
func validFilter(f string) bool {
	if f == "*" || EventType(f).Known() || EventType(f).Operational() {
		return true
	}
	if p, ok := strings.CutSuffix(f, ".*"); ok && p != "" {
		for _, t := range slices.Concat(EventTypes, OperationalEventTypes) {
			if strings.HasPrefix(string(t), p+".") {
				return true
			}
		}
	}
	return false
}

// ExpandEventTypeFilter lists the concrete event types a filter selects (see
// Endpoint.Matches), for clients that know no wildcard, such as Kinescope's:
// each exact type where the filter names it, each prefix or "*" replaced by
// the types it matches in catalog order, without repeats. An empty filter
// gives every catalog type.
func ExpandEventTypeFilter(filter []string) []EventType {
	if len(filter) == 0 {
		return slices.Clone(EventTypes)
	}
	all := slices.Concat(EventTypes, OperationalEventTypes)
	var out []EventType
	for _, f := range filter {
		one := Endpoint{EventTypes: []string{f}}
		for _, t := range all {
			if one.Matches(t) && !slices.Contains(out, t) {
				out = append(out, t)
			}
		}
	}
	return out
}

// Limits on an endpoint's custom headers.
const (
	MaxEndpointHeaders = 50
	MaxHeaderValue     = 4096
)

// reservedHeaders are hop-by-hop or written by the sender itself: an endpoint
// cannot set them (nor any webhook-* header).
var reservedHeaders = map[string]bool{
	"connection": true, "keep-alive": true, "proxy-authenticate": true, "proxy-authorization": true,
	"proxy-connection": true, "te": true, "trailer": true, "trailers": true, "transfer-encoding": true,
	"upgrade": true, "host": true, "content-length": true, "content-type": true, "content-encoding": true,
	"expect": true, "user-agent": true, // always names kinehook
}

// ValidateEndpointHeader checks one custom header of an endpoint: an RFC 9110
// token as name, not hop-by-hop, not set by the sender, not webhook-*; a
// value of at most MaxHeaderValue bytes without line breaks or NUL.
func ValidateEndpointHeader(name, value string) error {
	lname := strings.ToLower(name)
	msg := ""
	switch {
	case !isToken(name):
		msg = fmt.Sprintf("%q is not a valid header name", name)
	case reservedHeaders[lname]:
		msg = fmt.Sprintf("header %q is hop-by-hop or set by the sender and cannot be customised", name)
	case strings.HasPrefix(lname, "webhook-"):
		msg = fmt.Sprintf("header %q is reserved for the Standard Webhooks signature", name)
	case len(value) > MaxHeaderValue:
		msg = fmt.Sprintf("value of header %q is longer than %d bytes", name, MaxHeaderValue)
	case strings.ContainsAny(value, "\r\n\x00"):
		msg = fmt.Sprintf("value of header %q contains a line break or a control character", name)
	default:
		return nil
	}
	return &Error{Code: EINVALID, Field: "headers", Message: msg}
}

// ValidateEndpointHeaders checks an endpoint's custom headers: at most
// MaxEndpointHeaders, each valid for ValidateEndpointHeader.
func ValidateEndpointHeaders(h map[string]string) error {
	if len(h) > MaxEndpointHeaders {
		return &Error{Code: EINVALID, Field: "headers", Message: fmt.Sprintf("at most %d custom headers", MaxEndpointHeaders)}
	}
	for k, v := range h {
		if err := ValidateEndpointHeader(k, v); err != nil {
			return err
		}
	}
	return nil
}

// isToken reports whether s is an RFC 9110 token of at most 256 bytes.
func isToken(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// NewEndpointSecret returns a fresh signing secret for an endpoint of the
// scheme: whsec_ (HMAC) for v1, an ed25519 whsk_ private key for v1a.
func NewEndpointSecret(scheme string) (string, error) {
	if scheme == SchemeV1a {
		priv, _, err := GenerateKeyPair()
		if err != nil {
			return "", fmt.Errorf("generate key pair: %w", err)
		}
		return priv, nil
	}
	sec, err := GenerateSecret()
	if err != nil {
		return "", fmt.Errorf("generate secret: %w", err)
	}
	return sec, nil
}

// SecretGracePeriod is how long a rotated-out signing secret keeps signing
// beside the new one, whichever way it was rotated (API or dashboard), so a
// receiver has a day to pick up the new secret.
const SecretGracePeriod = 24 * time.Hour

// MaskedHeaderPrefix starts every masked custom header value.
const MaskedHeaderPrefix = "****"

// maskShowMin is the shortest value whose last characters are shown: below
// it, showing 4 characters would give away too much of the value.
const maskShowMin = 12

// MaskHeaderValue is how a custom header value is answered on read: custom
// headers often carry credentials (a bearer token in Authorization, an API
// key), so only "****" and the value's last 4 characters are shown, and for
// a value under 12 characters only "****". An empty value stays empty.
func MaskHeaderValue(v string) string {
	if v == "" {
		return ""
	}
	r := []rune(v)
	if len(r) < maskShowMin {
		return MaskedHeaderPrefix
	}
	return MaskedHeaderPrefix + string(r[len(r)-4:])
}

// MaskHeaders returns a copy of h with every value masked (MaskHeaderValue);
// nil for no header.
func MaskHeaders(h map[string]string) map[string]string {
	if len(h) == 0 {
		return nil
	}
	out := make(map[string]string, len(h))
	for k, v := range h {
		out[k] = MaskHeaderValue(v)
	}
	return out
}

// KeepMaskedHeaders returns in where each value equal to the masked form of
// the stored value of the same header (names compared case-insensitively)
// is replaced by that stored value, so a client that sends back the headers
// it read does not overwrite the real values with their masks. Any other
// value is taken as given. in is not changed.
func KeepMaskedHeaders(in, stored map[string]string) map[string]string {
	if len(in) == 0 || len(stored) == 0 {
		return in
	}
	out := make(map[string]string, len(in))
	for k, v := range in {
		out[k] = v
		old, ok := stored[k]
		if !ok {
			for sk, sv := range stored {
				if strings.EqualFold(sk, k) {
					old, ok = sv, true
					break
				}
			}
		}
		if ok && v != "" && v == MaskHeaderValue(old) {
			out[k] = old
		}
	}
	return out
}

// endpointCursorPrefix versions the endpoint list's cursors.
const endpointCursorPrefix = "e1:"

// EndpointPage cuts endpoints read with one row beyond limit (to learn
// whether more follow) to a page, and returns the page's next cursor: ""
// when nothing follows. Both stores page this way.
func EndpointPage(rows []*Endpoint, limit int) ([]*Endpoint, string) {
	if len(rows) <= limit {
		return rows, ""
	}
	rows = rows[:limit]
	last := rows[limit-1]
	return rows, EncodeEndpointCursor(last.CreatedAt, last.ID)
}

// EncodeEndpointCursor is the next cursor of a page of endpoints whose last
// one was created at t with id: endpoints list oldest first by (created_at,
// id), so the next page starts after that pair, and endpoints created or
// deleted meanwhile never shift a page.
func EncodeEndpointCursor(t time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(endpointCursorPrefix + strconv.FormatInt(t.UnixMicro(), 10) + ":" + id))
}

// DecodeEndpointCursor reads a cursor of EncodeEndpointCursor; anything
// else is an invalid cursor.
func DecodeEndpointCursor(c string) (time.Time, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err == nil {
		if v, ok := strings.CutPrefix(string(b), endpointCursorPrefix); ok {
			us, id, ok := strings.Cut(v, ":")
			if n, err := strconv.ParseInt(us, 10, 64); ok && err == nil && id != "" {
				return time.UnixMicro(n).UTC(), id, nil
			}
		}
	}
	return time.Time{}, "", &Error{Code: EINVALID, Field: "cursor", Message: "cursor is not one this server returned"}
}
