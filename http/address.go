package http

// CheckEndpointURL applies the rules for endpoint URLs (app.App.CheckURL:
// absolute http(s), no literal private address unless allowed), for
// callers that hold the API server but not its App.
func (s *Server) CheckEndpointURL(raw string) error { return s.app.CheckURL(raw, "url") }
