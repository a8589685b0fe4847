package dashboard

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/app"
)

// keysPage is the data of the keys page.
type keysPage struct {
	Keys []*kinehook.APIKey
	// Portal is the project's customer-portal sessions (newest first).
	Portal []*kinehook.PortalSession
	// New is the key just made, shown this once.
	New   *shownKey
	Name  string
	Scope string
	Error string
	Field string
}

// principal is the session as the app sees it (for the key use cases).
func (rc *reqCtx) principal() *app.Principal {
	if rc.s.admin {
		return adminPrincipal
	}
	return &app.Principal{Project: rc.project, Scope: rc.s.scope}
}

// keysAllowed answers 404 to a session that may not manage keys (read
// keys: the page does not exist for them, as in the API it is refused).
func (h *Handler) keysAllowed(w http.ResponseWriter, r *http.Request, rc *reqCtx) bool {
	if rc.s.ManagesKeys() {
		return true
	}
	h.renderError(w, r, http.StatusForbidden, "Only a key with scope full (or the admin key) may manage API keys.")
	return false
}

// keyList shows the project's API keys, the key just made (once) and the
// form for a new one.
func (h *Handler) keyList(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if !h.keysAllowed(w, r, rc) {
		return
	}
	f := &keysPage{Scope: string(kinehook.ScopeRead)}
	if r.Header.Get(liveHeader) == "" {
		f.New = h.sessions.popNewKey(rc.s)
	}
	h.showKeys(w, r, rc, http.StatusOK, f)
}

func (h *Handler) showKeys(w http.ResponseWriter, r *http.Request, rc *reqCtx, status int, f *keysPage) {
	keys, err := h.app.ListKeys(r.Context(), rc.principal(), rc.project.ID)
	if err != nil {
		h.internalError(w, r, fmt.Errorf("list keys: %w", err))
		return
	}
	f.Keys = keys
	if f.Portal, err = h.app.ListPortalSessions(r.Context(), rc.principal(), rc.project.ID); err != nil {
		h.internalError(w, r, fmt.Errorf("list portal sessions: %w", err))
		return
	}
	h.render(w, r, status, "keys", &pageData{Session: rc.s, Title: "API keys", Project: rc.project, Base: rc.base, Nav: "keys", Page: f})
}

// keyCreate makes a key and shows it once on the keys page.
func (h *Handler) keyCreate(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if !h.keysAllowed(w, r, rc) {
		return
	}
	f := &keysPage{Name: strings.TrimSpace(r.PostForm.Get("name")), Scope: r.PostForm.Get("scope")}
	k, err := h.app.CreateKey(r.Context(), rc.principal(), rc.project.ID, app.KeyInput{Name: f.Name, Scope: f.Scope})
	var ke *kinehook.Error
	if errors.As(err, &ke) && (ke.Code == kinehook.EINVALID || ke.Code == kinehook.ECONFLICT) {
		f.Error, f.Field = ke.Message, ke.Field
		status := http.StatusUnprocessableEntity
		if ke.Code == kinehook.ECONFLICT {
			status = http.StatusConflict
		}
		h.showKeys(w, r, rc, status, f)
		return
	}
	if err != nil {
		h.internalError(w, r, fmt.Errorf("create key: %w", err))
		return
	}
	h.sessions.setNewKey(rc.s, &shownKey{Name: k.Name, Scope: string(k.Scope), Key: k.Key})
	http.Redirect(w, r, rc.base+"/keys", http.StatusSeeOther)
}

// keyRevoke revokes a key at once.
func (h *Handler) keyRevoke(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if !h.keysAllowed(w, r, rc) {
		return
	}
	kid := r.PathValue("kid")
	err := h.app.RevokeKey(r.Context(), rc.principal(), rc.project.ID, kid)
	switch kinehook.ErrorCode(err) {
	case "":
		h.redirectFlash(w, r, rc.s, rc.base+"/keys", "ok", "Key "+kid+" revoked: it no longer works.")
	case kinehook.ENOTFOUND:
		h.renderError(w, r, http.StatusNotFound, "There is no such key in this project.")
	case kinehook.ECONFLICT:
		h.redirectFlash(w, r, rc.s, rc.base+"/keys", "error", "That is the project's last key with scope full: make another full key first.")
	default:
		h.internalError(w, r, fmt.Errorf("revoke key: %w", err))
	}
}

// portalRevoke revokes a customer-portal session at once: its URL shows
// nothing any more (within 250 ms on other instances).
func (h *Handler) portalRevoke(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if !h.keysAllowed(w, r, rc) {
		return
	}
	id := r.PathValue("sid")
	err := h.app.RevokePortalSession(r.Context(), rc.principal(), rc.project.ID, id)
	switch kinehook.ErrorCode(err) {
	case "":
		h.redirectFlash(w, r, rc.s, rc.base+"/keys", "ok", "Portal session "+id+" revoked: its URL shows nothing any more.")
	case kinehook.ENOTFOUND:
		h.renderError(w, r, http.StatusNotFound, "There is no such portal session in this project.")
	default:
		h.internalError(w, r, fmt.Errorf("revoke portal session: %w", err))
	}
}

// projectDelete removes a project with everything in it (admin only),
// once its id was typed into the form to confirm.
func (h *Handler) projectDelete(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if !rc.s.admin {
		h.renderError(w, r, http.StatusNotFound, "There is no page here.")
		return
	}
	if strings.TrimSpace(r.PostForm.Get("confirm")) != rc.project.ID {
		h.redirectFlash(w, r, rc.s, "/projects", "error", "Project "+rc.project.Name+" was not deleted: type its id ("+rc.project.ID+") to confirm.")
		return
	}
	if err := h.app.DeleteProject(r.Context(), rc.project.ID); err != nil {
		if kinehook.ErrorCode(err) == kinehook.ENOTFOUND {
			h.renderError(w, r, http.StatusNotFound, "There is no such project.")
			return
		}
		h.internalError(w, r, fmt.Errorf("delete project: %w", err))
		return
	}
	h.redirectFlash(w, r, rc.s, "/projects", "ok", "Project "+rc.project.Name+" ("+rc.project.ID+") deleted with everything in it.")
}
