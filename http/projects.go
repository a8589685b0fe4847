package http

import (
	"context"
	"encoding/json"
	"errors"
	nethttp "net/http"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/app"
	"github.com/kinehook/kinehook/internal/storehealth"
)

// projectView is a project in answers; APIKey only once, at creation.
type projectView struct {
	ID            string    `json:"id"`
	Name          string    `json:"name"`
	APIKey        string    `json:"api_key,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
	RetentionDays int       `json:"retention_days,omitempty"`
	OperationsURL string    `json:"operations_url,omitempty"`
	// OperationsEndpointID is the endpoint the operations_url made.
	OperationsEndpointID string `json:"operations_endpoint_id,omitempty"`
	// PortalOrigins are the origins that may frame the customer portal.
	PortalOrigins []string `json:"portal_origins"`
}

func viewProject(p *kinehook.Project) projectView {
	v := projectView{ID: p.ID, Name: p.Name, CreatedAt: p.CreatedAt.UTC(), RetentionDays: p.RetentionDays, OperationsURL: p.OperationsURL,
		PortalOrigins: p.PortalOrigins}
	if v.PortalOrigins == nil {
		v.PortalOrigins = []string{}
	}
	if p.OperationsURL != "" {
		v.OperationsEndpointID = kinehook.OperationsEndpointID(p.ID)
	}
	return v
}

// NewProjectKey returns a new project API key (app.NewProjectKey, kept
// here for compatibility).
func NewProjectKey() (string, error) { return app.NewProjectKey() }

func (s *Server) createProject(w nethttp.ResponseWriter, r *nethttp.Request, _ *app.Principal) {
	var in struct {
		Name          string `json:"name"`
		RetentionDays int    `json:"retention_days"`
		OperationsURL string `json:"operations_url"`
	}
	if err := s.decodeJSON(w, r, &in); err != nil {
		writeError(w, err)
		return
	}
	p, key, err := s.app.CreateProject(r.Context(), app.ProjectInput{Name: in.Name, RetentionDays: in.RetentionDays, OperationsURL: in.OperationsURL})
	if err != nil {
		s.internal(w, "create project", err)
		return
	}
	v := viewProject(p)
	v.APIKey = key
	writeJSON(w, nethttp.StatusCreated, v)
}

// listProjects lists every project for the admin key, and only its own for a
// project key (so a client holding a project key can find its project id).
func (s *Server) listProjects(w nethttp.ResponseWriter, r *nethttp.Request, p *app.Principal) {
	ps, err := s.app.ListProjects(r.Context(), p)
	if err != nil {
		s.internal(w, "list projects", err)
		return
	}
	writeJSON(w, nethttp.StatusOK, listBody[projectView]{Data: views(ps, viewProject)})
}

func (s *Server) getProject(w nethttp.ResponseWriter, r *nethttp.Request, _ *app.Principal) {
	p, err := s.app.GetProject(r.Context(), r.PathValue("pid"))
	if err != nil {
		s.internal(w, "get project", err)
		return
	}
	writeJSON(w, nethttp.StatusOK, viewProject(p))
}

// internal answers err: domain errors as themselves, a store outage as a 503
// (logged once per outage, by the store's tracker), anything else as a 500
// whose details go to the log only.
func (s *Server) internal(w nethttp.ResponseWriter, what string, err error) {
	if code := s.health.Fail(err); code != "" {
		writeError(w, storehealth.Error(code))
		return
	}
	if kinehook.ErrorCode(err) == kinehook.EINTERNAL {
		if errors.Is(err, context.Canceled) {
			// The client went away (or the server is stopping): nothing
			// went wrong here.
			s.log.Debug("api: "+what+": request cancelled", "err", err, "request_id", w.Header().Get("X-Request-Id"))
		} else {
			s.log.Error("api: "+what, "err", err, "request_id", w.Header().Get("X-Request-Id"))
		}
	}
	writeError(w, err)
}

// patchProject changes the given fields of a project: name, retention_days,
// operations_url (empty string removes it), portal_origins ([] removes them).
func (s *Server) patchProject(w nethttp.ResponseWriter, r *nethttp.Request, _ *app.Principal) {
	var in struct {
		Name          *string   `json:"name"`
		RetentionDays *int      `json:"retention_days"`
		OperationsURL *string   `json:"operations_url"`
		PortalOrigins *[]string `json:"portal_origins"`

		ID        json.RawMessage `json:"id"`
		CreatedAt json.RawMessage `json:"created_at"`
	}
	if err := s.decodeJSON(w, r, &in); err != nil {
		writeError(w, err)
		return
	}
	p, err := s.app.UpdateProject(r.Context(), r.PathValue("pid"), app.ProjectPatch{Name: in.Name, RetentionDays: in.RetentionDays, OperationsURL: in.OperationsURL,
		PortalOrigins: in.PortalOrigins})
	if err != nil {
		s.internal(w, "update project", err)
		return
	}
	writeJSON(w, nethttp.StatusOK, viewProject(p))
}
