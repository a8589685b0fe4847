package dashboard

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/app"
)

// session is one signed-in browser. Its id is the cookie value; nothing else
// leaves the server.
type session struct {
	id        string
	admin     bool
	projectID string // the project of a project key; "" for the admin
	// keyHash is the hash of the project key that signed in (nil for the
	// admin): every request checks it again, so a revoked key's session
	// ends within a second; scope is what that key may do.
	keyHash []byte
	scope   kinehook.KeyScope
	csrf    string
	expires time.Time
	flashes []flash
	// newKey is an API key just made, shown once by the next keys page.
	newKey *shownKey
	// portal: a customer portal session's page state (see portal.go).
	portal bool
}

// shownKey is a key just made, for the one page that shows it.
type shownKey struct {
	Name, Scope, Key string
}

// flash is a one-time message shown on the next page.
type flash struct {
	Kind string // "ok" or "error"
	Text string
}

// sessionStore keeps sessions in memory, bounded in number.
type sessionStore struct {
	mu sync.Mutex
	m  map[string]*session
	// portals holds the page state of portal sessions, by portal session id.
	portals map[string]*session
	ttl     time.Duration
	now     func() time.Time
}

// maxSessions bounds the session map; the oldest-expiring sessions go first.
const maxSessions = 10000

func newSessionStore(ttl time.Duration, now func() time.Time) *sessionStore {
	return &sessionStore{m: make(map[string]*session), ttl: ttl, now: now}
}

// randomToken returns 32 random bytes, URL-safe base64.
func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (ss *sessionStore) create(p *app.Principal, keyHash []byte) *session {
	now := ss.now()
	s := &session{id: randomToken(), admin: p.Admin, csrf: randomToken(), expires: now.Add(ss.ttl)}
	if !p.Admin {
		s.projectID, s.keyHash, s.scope = p.Project.ID, keyHash, p.Scope
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if len(ss.m) >= maxSessions {
		var oldest *session
		for id, o := range ss.m {
			if !now.Before(o.expires) {
				delete(ss.m, id)
				continue
			}
			if oldest == nil || o.expires.Before(oldest.expires) {
				oldest = o
			}
		}
		if len(ss.m) >= maxSessions && oldest != nil {
			delete(ss.m, oldest.id)
		}
	}
	ss.m[s.id] = s
	return s
}

// get returns the request's live session, or nil.
func (ss *sessionStore) get(r *http.Request) *session {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		c, err = r.Cookie(secureSessionCookie)
		if err != nil {
			return nil
		}
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.m[c.Value]
	if s == nil {
		return nil
	}
	if !ss.now().Before(s.expires) {
		delete(ss.m, s.id)
		return nil
	}
	return s
}

func (ss *sessionStore) delete(id string) {
	ss.mu.Lock()
	delete(ss.m, id)
	ss.mu.Unlock()
}

func (ss *sessionStore) addFlash(s *session, kind, text string) {
	ss.mu.Lock()
	s.flashes = append(s.flashes, flash{Kind: kind, Text: text})
	ss.mu.Unlock()
}

// setNewKey keeps a key just made for the next keys page.
func (ss *sessionStore) setNewKey(s *session, k *shownKey) {
	ss.mu.Lock()
	s.newKey = k
	ss.mu.Unlock()
}

// popNewKey returns the key just made, once.
func (ss *sessionStore) popNewKey(s *session) *shownKey {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	k := s.newKey
	s.newKey = nil
	return k
}

func (ss *sessionStore) popFlashes(s *session) []flash {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	f := s.flashes
	s.flashes = nil
	return f
}

// Cookie names. With Secure cookies the __Host- prefix makes the browser
// insist on HTTPS, path / and no Domain attribute.
const (
	sessionCookie       = "kinehook_session"
	secureSessionCookie = "__Host-kinehook_session"
	loginCSRFCookie     = "kinehook_login"
	secureLoginCookie   = "__Host-kinehook_login"
	csrfField           = "csrf"
)

func (h *Handler) cookieName(plain, secure string) string {
	if h.cfg.SecureCookies {
		return secure
	}
	return plain
}

func (h *Handler) setCookie(w http.ResponseWriter, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: h.cfg.SecureCookies, SameSite: http.SameSiteStrictMode,
	})
}

// tokensEqual compares two tokens in constant time; empty never matches.
func tokensEqual(a, b string) bool {
	return a != "" && b != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// reqCtx is what a project page handler gets: the session, the project and
// the URL prefix of the project's pages.
type reqCtx struct {
	s       *session
	project *kinehook.Project
	base    string // "/projects/{pid}", or "/portal/{token}" in the portal
	// portal is the portal session's access in the customer portal (nil in
	// the dashboard, and on a refused portal token's error page).
	portal *app.PortalAccess
}

// withSession requires a signed-in session, and a valid CSRF token on POST.
func (h *Handler) withSession(next func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		s := h.sessions.get(r)
		if s != nil && !s.admin {
			// The key may have been revoked, or its project deleted, since
			// it signed in (the app's key cache holds it 250 ms at most).
			_, err := h.app.AuthenticateHash(r.Context(), s.keyHash)
			if kinehook.ErrorCode(err) == kinehook.EUNAUTHORIZED {
				h.sessions.delete(s.id)
				s = nil
			} else if err != nil {
				h.internalError(w, r, fmt.Errorf("check the session's key: %w", err))
				return
			}
		}
		if s == nil {
			if r.Method == http.MethodGet && r.Header.Get("Accept") != "text/event-stream" {
				http.Redirect(w, r, "/login?next="+urlQueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			h.renderError(w, r, http.StatusUnauthorized, "Your session has ended. Sign in again.")
			return
		}
		if r.Method == http.MethodPost {
			refusal := ""
			if s.ReadOnly() && r.URL.Path != "/logout" {
				refusal = "This key has scope read: it may look, not change anything."
			}
			if !h.checkPost(w, r, s.csrf, refusal) {
				return
			}
		}
		if strings.ContainsFunc(r.URL.Path, unicode.IsControl) {
			// No id holds one (and PostgreSQL cannot even look up a NUL).
			h.renderError(w, r, http.StatusNotFound, "There is no page here.")
			return
		}
		next(w, r, s)
	}
}

// withProject additionally loads the project named in the path, answering
// 404 when it does not exist or the session's key does not reach it.
func (h *Handler) withProject(next func(http.ResponseWriter, *http.Request, *reqCtx)) http.HandlerFunc {
	return h.withSession(func(w http.ResponseWriter, r *http.Request, s *session) {
		pid := r.PathValue("pid")
		if !s.admin && pid != s.projectID {
			h.renderError(w, r, http.StatusNotFound, "There is no such project.")
			return
		}
		p, err := h.app.GetProject(r.Context(), pid)
		if errors.Is(err, kinehook.ErrNotFound) || kinehook.ErrorCode(err) == kinehook.ENOTFOUND {
			h.renderError(w, r, http.StatusNotFound, "There is no such project.")
			return
		}
		if err != nil {
			h.internalError(w, r, fmt.Errorf("get project %s: %w", pid, err))
			return
		}
		next(w, r, &reqCtx{s: s, project: p, base: "/projects/" + p.ID})
	})
}

// loginPage shows the sign-in form with a fresh login CSRF token, also set
// as a cookie (double submit: there is no session to hold it yet).
func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request) {
	if s := h.sessions.get(r); s != nil {
		h.home(w, r)
		return
	}
	h.showLogin(w, r, http.StatusOK, "")
}

func (h *Handler) showLogin(w http.ResponseWriter, r *http.Request, status int, errText string) {
	w.Header().Set("Cache-Control", "no-store")
	tok := randomToken()
	h.setCookie(w, h.cookieName(loginCSRFCookie, secureLoginCookie), tok, 3600)
	d := &pageData{Title: "Sign in", CSRF: tok, Next: safeNext(r.FormValue("next"))}
	if errText != "" {
		d.Flashes = []flash{{Kind: "error", Text: errText}}
	} else if r.URL.Query().Get("signed_out") == "1" {
		d.Flashes = []flash{{Kind: "ok", Text: "You are signed out."}}
	}
	h.render(w, r, status, "login", d)
}

// login checks the key (app.App.Authenticate: the admin key or a project
// key) and starts a session for it.
func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		h.showLogin(w, r, http.StatusBadRequest, "The form could not be read.")
		return
	}
	c, err := r.Cookie(h.cookieName(loginCSRFCookie, secureLoginCookie))
	if err != nil || !tokensEqual(c.Value, r.PostForm.Get(csrfField)) {
		h.showLogin(w, r, http.StatusForbidden, "The sign-in form expired. Please try again.")
		return
	}
	key := strings.TrimSpace(r.PostForm.Get("key"))
	if key == "" {
		h.showLogin(w, r, http.StatusUnprocessableEntity, "Enter a project key or the admin key.")
		return
	}
	p, err := h.app.Authenticate(r.Context(), key)
	if kinehook.ErrorCode(err) == kinehook.EUNAUTHORIZED {
		h.log.Info("dashboard: sign-in refused", "remote", r.RemoteAddr)
		h.showLogin(w, r, http.StatusUnauthorized, "That key is not valid.")
		return
	}
	if err != nil {
		h.internalError(w, r, fmt.Errorf("sign in: %w", err))
		return
	}
	if p.Permits(app.OpRead) != nil {
		h.log.Info("dashboard: sign-in refused to an ingest key", "remote", r.RemoteAddr)
		h.showLogin(w, r, http.StatusForbidden, "This key has scope ingest: it may only post events, not sign in.")
		return
	}
	s := h.sessions.create(p, kinehook.HashKey(key))
	h.setCookie(w, h.cookieName(loginCSRFCookie, secureLoginCookie), "", -1)
	h.setCookie(w, h.cookieName(sessionCookie, secureSessionCookie), s.id, int(h.cfg.SessionTTL/time.Second))
	if next := safeNext(r.PostForm.Get("next")); next != "" {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, homeOf(s), http.StatusSeeOther)
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request, s *session) {
	h.sessions.delete(s.id)
	h.setCookie(w, h.cookieName(sessionCookie, secureSessionCookie), "", -1)
	http.Redirect(w, r, "/login?signed_out=1", http.StatusSeeOther)
}

// safeNext keeps a post-sign-in redirect on this site's project pages.
func safeNext(next string) string {
	if strings.HasPrefix(next, "/projects") && !strings.HasPrefix(next, "//") && !strings.ContainsAny(next, "\\\r\n") {
		return next
	}
	return ""
}

// IsAdmin tells templates whether the admin key signed in.
func (s *session) IsAdmin() bool { return s.admin }

// ReadOnly tells templates whether the session's key may only read.
func (s *session) ReadOnly() bool { return !s.admin && s.scope == kinehook.ScopeRead }

// ManagesKeys tells templates whether the session may manage API keys:
// the admin and full project keys.
func (s *session) ManagesKeys() bool { return !s.portal && (s.admin || s.scope == kinehook.ScopeFull) }

// checkPost reads a POST's form and applies what every form of the
// dashboard and the portal obeys, in order: at most 64 KiB, the session's
// CSRF token, the caller's right to change anything (refusal, when not "",
// is the 403's message), and no NUL (PostgreSQL's text cannot hold it, so
// it is refused on every backend). It answers and returns false when one
// fails.
func (h *Handler) checkPost(w http.ResponseWriter, r *http.Request, csrf, refusal string) bool {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		h.renderError(w, r, http.StatusBadRequest, "The form could not be read.")
		return false
	}
	if !tokensEqual(r.PostForm.Get(csrfField), csrf) {
		h.renderError(w, r, http.StatusForbidden, "The form's security token is missing or stale. Reload the page and try again.")
		return false
	}
	if refusal != "" {
		h.renderError(w, r, http.StatusForbidden, refusal)
		return false
	}
	for _, vs := range r.PostForm {
		if slices.ContainsFunc(vs, func(v string) bool { return strings.ContainsRune(v, 0) }) {
			h.renderError(w, r, http.StatusUnprocessableEntity, "The form holds a NUL character (U+0000), which kinehook does not store. Remove it and try again.")
			return false
		}
	}
	return true
}
