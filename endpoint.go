package kinehook

import (
	"fmt"
	"net/url"
	"strings"
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

// ValidateEventTypeFilter checks an endpoint's event_types: each entry is a
// catalog type, "*", or a prefix ending in ".*" that matches at least one
// catalog type.
func ValidateEventTypeFilter(filter []string) error {
	for _, f := range filter {
		if f == "*" || EventType(f).Known() {
			continue
		}
		if p, ok := strings.CutSuffix(f, ".*"); ok && p != "" {
			for _, t := range EventTypes {
				if strings.HasPrefix(string(t), p+".") {
					goto next
				}
			}
		}
		return &Error{Code: EINVALID, Field: "event_types", Message: fmt.Sprintf("unknown event type %q; expected one of %v or a prefix such as \"live.*\"", f, EventTypes)}
	next:
	}
	return nil
}
