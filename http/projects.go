package http

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	nethttp "net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/kinehook/kinehook"
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
}

func viewProject(p *kinehook.Project) projectView {
	v := projectView{ID: p.ID, Name: p.Name, CreatedAt: p.CreatedAt.UTC(), RetentionDays: p.RetentionDays, OperationsURL: p.OperationsURL}
	if p.OperationsURL != "" {
		v.OperationsEndpointID = kinehook.OperationsEndpointID(p.ID)
	}
	return v
}

// NewProjectKey returns a new project API key: "kh_" and 32 random bytes in base64url.
func NewProjectKey() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate API key: %w", err)
	}
	return "kh_" + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

func (s *Server) createProject(w nethttp.ResponseWriter, r *nethttp.Request, _ *principal) {
	var in struct {
		Name          string `json:"name"`
		RetentionDays int    `json:"retention_days"`
		OperationsURL string `json:"operations_url"`
	}
	if err := s.decodeJSON(w, r, &in); err != nil {
		writeError(w, err)
		return
	}
	in.Name = strings.TrimSpace(in.Name)
	switch {
	case in.Name == "":
		writeError(w, &kinehook.Error{Code: kinehook.EINVALID, Field: "name", Message: "name is required"})
		return
	case utf8.RuneCountInString(in.Name) > 200:
		writeError(w, &kinehook.Error{Code: kinehook.EINVALID, Field: "name", Message: "name is longer than 200 characters"})
		return
	case in.RetentionDays < 0 || in.RetentionDays > kinehook.MaxRetentionDays:
		writeError(w, &kinehook.Error{Code: kinehook.EINVALID, Field: "retention_days", Message: fmt.Sprintf("retention_days must be 0 to %d (0: the server default)", kinehook.MaxRetentionDays)})
		return
	}
	if in.OperationsURL != "" {
		if err := s.checkURL(in.OperationsURL, "operations_url"); err != nil {
			writeError(w, err)
			return
		}
	}
	key, err := NewProjectKey()
	if err != nil {
		writeError(w, err)
		return
	}
	p := &kinehook.Project{
		ID:            kinehook.NewID(kinehook.PrefixProject),
		Name:          in.Name,
		CreatedAt:     s.now().UTC().Truncate(time.Millisecond),
		RetentionDays: in.RetentionDays,
		OperationsURL: in.OperationsURL,
	}
	if err := s.store.CreateProject(r.Context(), p, kinehook.HashKey(key)); err != nil {
		s.internal(w, "create project", err)
		return
	}
	if err := s.syncOperationsEndpoint(r, p); err != nil {
		s.internal(w, "operations endpoint", err)
		return
	}
	v := viewProject(p)
	v.APIKey = key
	writeJSON(w, nethttp.StatusCreated, v)
}

// listProjects lists every project for the admin key, and only its own for a
// project key (so a client holding a project key can find its project id).
func (s *Server) listProjects(w nethttp.ResponseWriter, r *nethttp.Request, p *principal) {
	if !p.admin {
		writeJSON(w, nethttp.StatusOK, listBody[projectView]{Data: []projectView{viewProject(p.project)}})
		return
	}
	ps, err := s.store.ListProjects(r.Context())
	if err != nil {
		s.internal(w, "list projects", err)
		return
	}
	writeJSON(w, nethttp.StatusOK, listBody[projectView]{Data: views(ps, viewProject)})
}

func (s *Server) getProject(w nethttp.ResponseWriter, r *nethttp.Request, _ *principal) {
	p, err := s.store.GetProject(r.Context(), r.PathValue("pid"))
	if err != nil {
		s.internal(w, "get project", err)
		return
	}
	writeJSON(w, nethttp.StatusOK, viewProject(p))
}

// errUnchanged tells updateEndpoint's caller that nothing needed writing.
var errUnchanged = errors.New("unchanged")

// lockProject takes the project's settings lock; the returned func frees it.
func (s *Server) lockProject(pid string) func() {
	m, _ := s.projLocks.LoadOrStore(pid, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// syncOperationsEndpoint makes the endpoint of the project's operations_url
// (kinehook.OperationsEndpointID) agree with it after the setting was given
// (callers hold the project's lock): created, subscribed to the operational
// events (endpoint.*) with a secret of its own, the first time; moved to a
// new URL and enabled (secret and history kept); enabled again when it was
// disabled because the setting had been cleared (not when someone or a 410
// disabled it and the same URL is sent again); disabled when the setting is
// cleared (its open deliveries wait for a URL; the endpoint is the project's
// one operations endpoint for good, so its history never attaches to
// another). Its writes are conditional, like the endpoint API's, so a
// concurrent change of its other fields is neither lost nor undoes this.
func (s *Server) syncOperationsEndpoint(r *nethttp.Request, p *kinehook.Project) error {
	ctx := r.Context()
	id := kinehook.OperationsEndpointID(p.ID)
	_, err := s.store.GetEndpoint(ctx, p.ID, id)
	if kinehook.ErrorCode(err) == kinehook.ENOTFOUND {
		if p.OperationsURL == "" {
			return nil
		}
		secret, err := kinehook.GenerateSecret()
		if err != nil {
			return err
		}
		now := s.now().UTC().Truncate(time.Millisecond)
		ep := &kinehook.Endpoint{ID: id, ProjectID: p.ID, URL: p.OperationsURL,
			EventTypes:  []string{"endpoint.*"},
			Description: "operational events of the project (made by its operations_url)",
			Secrets:     []kinehook.EndpointSecret{{Value: secret}}, Scheme: kinehook.SchemeV1,
			CreatedAt: now, UpdatedAt: now}
		err = s.store.CreateEndpoint(ctx, ep)
		if err == nil {
			s.disp.EndpointChanged(ctx, p.ID, id)
			return nil
		}
		// Another instance made it meanwhile: bring that one in line.
		if _, gerr := s.store.GetEndpoint(ctx, p.ID, id); gerr != nil {
			return fmt.Errorf("create operations endpoint: %w", err)
		}
	} else if err != nil {
		return fmt.Errorf("get operations endpoint: %w", err)
	}
	_, err = s.updateEndpoint(r, p.ID, id, func(ep *kinehook.Endpoint) error {
		// The setting as stored now, not as this request left it: another
		// instance may have changed it since (the lock is per process).
		cur, err := s.store.GetProject(ctx, p.ID)
		if err != nil {
			return fmt.Errorf("get project: %w", err)
		}
		url := cur.OperationsURL
		switch {
		case url == "" && !ep.Disabled:
			ep.Disabled, ep.DisabledReason = true, kinehook.OperationsURLCleared
		case url != "" && (ep.URL != url || (ep.Disabled && ep.DisabledReason == kinehook.OperationsURLCleared)):
			ep.URL, ep.Disabled, ep.DisabledReason = url, false, ""
		default:
			return errUnchanged
		}
		return nil
	})
	if err != nil && !errors.Is(err, errUnchanged) {
		return fmt.Errorf("update operations endpoint: %w", err)
	}
	return nil
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
// operations_url (empty string removes it).
func (s *Server) patchProject(w nethttp.ResponseWriter, r *nethttp.Request, _ *principal) {
	var in struct {
		Name          *string `json:"name"`
		RetentionDays *int    `json:"retention_days"`
		OperationsURL *string `json:"operations_url"`

		ID        json.RawMessage `json:"id"`
		CreatedAt json.RawMessage `json:"created_at"`
	}
	if err := s.decodeJSON(w, r, &in); err != nil {
		writeError(w, err)
		return
	}
	// Read, change, write and sync as one step per project, so two PATCHes
	// cannot leave the project and its operations endpoint disagreeing.
	unlock := s.lockProject(r.PathValue("pid"))
	defer unlock()
	p, err := s.store.GetProject(r.Context(), r.PathValue("pid"))
	if err != nil {
		s.internal(w, "get project", err)
		return
	}
	if in.Name != nil {
		name := strings.TrimSpace(*in.Name)
		if name == "" || utf8.RuneCountInString(name) > 200 {
			writeError(w, &kinehook.Error{Code: kinehook.EINVALID, Field: "name", Message: "name must be 1 to 200 characters"})
			return
		}
		p.Name = name
	}
	if in.RetentionDays != nil {
		if *in.RetentionDays < 0 || *in.RetentionDays > kinehook.MaxRetentionDays {
			writeError(w, &kinehook.Error{Code: kinehook.EINVALID, Field: "retention_days", Message: fmt.Sprintf("retention_days must be 0 to %d (0: the server default)", kinehook.MaxRetentionDays)})
			return
		}
		p.RetentionDays = *in.RetentionDays
	}
	if in.OperationsURL != nil {
		if *in.OperationsURL != "" {
			if err := s.checkURL(*in.OperationsURL, "operations_url"); err != nil {
				writeError(w, err)
				return
			}
		}
		p.OperationsURL = *in.OperationsURL
	}
	if err := s.store.UpdateProject(r.Context(), p); err != nil {
		s.internal(w, "update project", err)
		return
	}
	if in.OperationsURL != nil {
		if err := s.syncOperationsEndpoint(r, p); err != nil {
			s.internal(w, "operations endpoint", err)
			return
		}
	}
	// The cached project of this key is stale now.
	s.keyCache.Clear()
	writeJSON(w, nethttp.StatusOK, viewProject(p))
}
