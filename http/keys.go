package http

import (
	nethttp "net/http"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/app"
)

// keyView is an API key in answers: never the key (Key only once, in the
// answer that made it) nor its hash.
type keyView struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Scope      string     `json:"scope"`
	Prefix     string     `json:"prefix"`
	Key        string     `json:"key,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
}

func viewKey(k *kinehook.APIKey) keyView {
	v := keyView{ID: k.ID, Name: k.Name, Scope: string(k.Scope), Prefix: k.Prefix, CreatedAt: k.CreatedAt.UTC()}
	if !k.LastUsedAt.IsZero() {
		t := k.LastUsedAt.UTC()
		v.LastUsedAt = &t
	}
	return v
}

// createKey makes a key of the project: 201 with the key, once.
func (s *Server) createKey(w nethttp.ResponseWriter, r *nethttp.Request, p *app.Principal) {
	var in struct {
		Name  string `json:"name"`
		Scope string `json:"scope"`
	}
	if err := s.decodeJSON(w, r, &in); err != nil {
		writeError(w, err)
		return
	}
	k, err := s.app.CreateKey(r.Context(), p, r.PathValue("pid"), app.KeyInput{Name: in.Name, Scope: in.Scope})
	if err != nil {
		s.internal(w, "create API key", err)
		return
	}
	v := viewKey(k.APIKey)
	v.Key = k.Key
	writeJSON(w, nethttp.StatusCreated, v)
}

// listKeys lists the project's keys, oldest first (never a key itself).
func (s *Server) listKeys(w nethttp.ResponseWriter, r *nethttp.Request, p *app.Principal) {
	ks, err := s.app.ListKeys(r.Context(), p, r.PathValue("pid"))
	if err != nil {
		s.internal(w, "list API keys", err)
		return
	}
	writeJSON(w, nethttp.StatusOK, listBody[keyView]{Data: views(ks, viewKey)})
}

// revokeKey removes a key at once: 204.
func (s *Server) revokeKey(w nethttp.ResponseWriter, r *nethttp.Request, p *app.Principal) {
	if err := s.app.RevokeKey(r.Context(), p, r.PathValue("pid"), r.PathValue("kid")); err != nil {
		s.internal(w, "revoke API key", err)
		return
	}
	w.WriteHeader(nethttp.StatusNoContent)
}

// deleteProject removes the project with everything in it: 204.
func (s *Server) deleteProject(w nethttp.ResponseWriter, r *nethttp.Request, _ *app.Principal) {
	if err := s.app.DeleteProject(r.Context(), r.PathValue("pid")); err != nil {
		s.internal(w, "delete project", err)
		return
	}
	w.WriteHeader(nethttp.StatusNoContent)
}
