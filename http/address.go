package http

// checkURL validates an endpoint URL given in field (app.App.CheckURL).
func (s *Server) checkURL(raw, field string) error { return s.app.CheckURL(raw, field) }

// CheckEndpointURL applies the API's rules for endpoint URLs (absolute
// http(s), no literal private address unless allowed), so that other
// interfaces refuse the same URLs.
func (s *Server) CheckEndpointURL(raw string) error { return s.checkURL(raw, "url") }
