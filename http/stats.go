package http

import (
	nethttp "net/http"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/app"
)

// endpointStats answers GET .../endpoints/{eid}/stats?window=1h|24h|7d.
func (s *Server) endpointStats(w nethttp.ResponseWriter, r *nethttp.Request, p *app.Principal) {
	st, err := s.app.EndpointStats(r.Context(), projectID(r, p), r.PathValue("eid"), r.URL.Query().Get("window"))
	if err != nil {
		s.internal(w, "endpoint stats", err)
		return
	}
	writeJSON(w, nethttp.StatusOK, st)
}

// projectStats answers GET /v1/projects/{pid}/stats?window=1h|24h|7d.
func (s *Server) projectStats(w nethttp.ResponseWriter, r *nethttp.Request, p *app.Principal) {
	st, err := s.app.ProjectStats(r.Context(), projectID(r, p), r.URL.Query().Get("window"))
	if err != nil {
		s.internal(w, "project stats", err)
		return
	}
	writeJSON(w, nethttp.StatusOK, st)
}

// testEndpoint sends a sample event to the endpoint alone and answers its
// delivery (202: it is on its way). The body may name the event type.
func (s *Server) testEndpoint(w nethttp.ResponseWriter, r *nethttp.Request, p *app.Principal) {
	body, err := s.readBody(w, r)
	if err != nil {
		writeError(w, err)
		return
	}
	var in struct {
		EventType kinehook.EventType `json:"event_type"`
	}
	if len(body) > 0 {
		if err := s.decodeBytes(body, &in); err != nil {
			writeError(w, err)
			return
		}
	}
	d, err := s.app.TestEndpoint(r.Context(), projectID(r, p), r.PathValue("eid"), in.EventType)
	if err != nil {
		s.internal(w, "test endpoint", err)
		return
	}
	writeJSON(w, nethttp.StatusAccepted, viewDelivery(d))
}
