package http

import (
	nethttp "net/http"
	"strings"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/app"
)

// PortalPath is where a portal session's URL points, the token appended:
// the dashboard serves the customer portal there.
const PortalPath = "/portal/"

// portalSessionView is a portal session in answers: URL only once, in the
// answer that made it (it holds the token), never the token's hash.
type portalSessionView struct {
	ID         string                   `json:"id"`
	ProjectID  string                   `json:"project_id"`
	URL        string                   `json:"url,omitempty"`
	Scope      kinehook.PortalScope     `json:"scope"`
	EventTypes []string                 `json:"event_types"`
	Branding   *kinehook.PortalBranding `json:"branding,omitempty"`
	CreatedAt  time.Time                `json:"created_at"`
	ExpiresAt  time.Time                `json:"expires_at"`
	RevokedAt  *time.Time               `json:"revoked_at"`
}

func viewPortalSession(ps *kinehook.PortalSession) portalSessionView {
	v := portalSessionView{ID: ps.ID, ProjectID: ps.ProjectID, Scope: ps.Scope, EventTypes: ps.EventTypes, Branding: ps.Branding,
		CreatedAt: ps.CreatedAt.UTC(), ExpiresAt: ps.ExpiresAt.UTC()}
	if v.EventTypes == nil {
		v.EventTypes = []string{}
	}
	if !ps.RevokedAt.IsZero() {
		t := ps.RevokedAt.UTC()
		v.RevokedAt = &t
	}
	return v
}

// publicBase is the server's address as its users reach it: Config.PublicURL
// when set, else the request's scheme and host.
func (s *Server) publicBase(r *nethttp.Request) string {
	if s.cfg.PublicURL != "" {
		return strings.TrimRight(s.cfg.PublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// createPortalSession makes a portal session: 201 with its URL, once.
func (s *Server) createPortalSession(w nethttp.ResponseWriter, r *nethttp.Request, p *app.Principal) {
	var in struct {
		ExpiresIn  *int64                   `json:"expires_in"`
		Scope      string                   `json:"scope"`
		EventTypes []string                 `json:"event_types"`
		Branding   *kinehook.PortalBranding `json:"branding"`
	}
	if err := s.decodeJSON(w, r, &in); err != nil {
		writeError(w, err)
		return
	}
	ps, err := s.app.CreatePortalSession(r.Context(), p, r.PathValue("pid"),
		app.PortalSessionInput{ExpiresIn: in.ExpiresIn, Scope: in.Scope, EventTypes: in.EventTypes, Branding: in.Branding})
	if err != nil {
		s.internal(w, "create portal session", err)
		return
	}
	v := viewPortalSession(ps.PortalSession)
	v.URL = s.publicBase(r) + PortalPath + ps.Token
	writeJSON(w, nethttp.StatusCreated, v)
}

// listPortalSessions lists the project's portal sessions, newest first.
func (s *Server) listPortalSessions(w nethttp.ResponseWriter, r *nethttp.Request, p *app.Principal) {
	ps, err := s.app.ListPortalSessions(r.Context(), p, r.PathValue("pid"))
	if err != nil {
		s.internal(w, "list portal sessions", err)
		return
	}
	writeJSON(w, nethttp.StatusOK, listBody[portalSessionView]{Data: views(ps, viewPortalSession)})
}

// revokePortalSession ends a portal session at once: 204.
func (s *Server) revokePortalSession(w nethttp.ResponseWriter, r *nethttp.Request, p *app.Principal) {
	if err := s.app.RevokePortalSession(r.Context(), p, r.PathValue("pid"), r.PathValue("id")); err != nil {
		s.internal(w, "revoke portal session", err)
		return
	}
	w.WriteHeader(nethttp.StatusNoContent)
}
