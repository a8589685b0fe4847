package http

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/kinehook/kinehook"
)

// checkURL validates an endpoint URL and, unless private networks are
// allowed, refuses a host that is a private, loopback or reserved address
// however it is spelled (127.1, 0x7f000001, [::ffff:127.0.0.1], ...) or a
// localhost name (422). Names that resolve to such addresses are refused by
// the delivery transport at dial time.
func (s *Server) checkURL(raw, field string) error {
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
	if err := s.guard.CheckLiteralHost(u.Hostname()); err != nil {
		return &kinehook.Error{Code: kinehook.EINVALID, Field: field, Message: err.Error()}
	}
	return nil
}

// CheckEndpointURL applies the API's rules for endpoint URLs (absolute
// http(s), no literal private address unless allowed), so that other
// interfaces such as the dashboard refuse the same URLs.
func (s *Server) CheckEndpointURL(raw string) error { return s.checkURL(raw, "url") }
