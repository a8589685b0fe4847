package dashboard

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"unicode"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/app"
)

// The customer portal is the dashboard's restricted mode under
// /portal/{token}/...: a platform's customer, holding a portal session's
// token (never a project key), sees and manages the webhook endpoints of
// one project through the same pages. The token travels in every link and
// form of the portal, not in a cookie, so the portal works inside another
// site's frame over plain HTTP and in browsers that block third-party
// cookies; every form also carries the session's CSRF token
// (app.PortalCSRF), and pages answer with Referrer-Policy: no-referrer so
// the token never leaves in a Referer. Every rule (scope, event types,
// which endpoints show, expiry, revocation) is app.PortalAccess's.

// portalPrefix starts every portal path.
const portalPrefix = "/portal/"

func (h *Handler) portalRoutes() {
	m := h.mux
	m.HandleFunc("GET /portal/{token}", h.withPortal(func(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
		http.Redirect(w, r, rc.base+"/endpoints", http.StatusSeeOther)
	}))
	m.HandleFunc("GET /portal/{token}/brand.css", h.withPortal(h.portalBrandCSS))
	m.HandleFunc("GET /portal/{token}/endpoints", h.withPortal(h.endpointList))
	m.HandleFunc("GET /portal/{token}/endpoints/new", h.withPortal(h.endpointNew))
	m.HandleFunc("POST /portal/{token}/endpoints", h.withPortal(h.endpointCreate))
	m.HandleFunc("GET /portal/{token}/endpoints/{eid}", h.withPortal(h.endpointShow))
	m.HandleFunc("POST /portal/{token}/endpoints/{eid}", h.withPortal(h.endpointUpdate))
	m.HandleFunc("POST /portal/{token}/endpoints/{eid}/disable", h.withPortal(h.endpointSetDisabled(true)))
	m.HandleFunc("POST /portal/{token}/endpoints/{eid}/enable", h.withPortal(h.endpointSetDisabled(false)))
	m.HandleFunc("POST /portal/{token}/endpoints/{eid}/secret/rotate", h.withPortal(h.endpointRotate))
	m.HandleFunc("POST /portal/{token}/endpoints/{eid}/test", h.withPortal(h.endpointTest))
	m.HandleFunc("POST /portal/{token}/endpoints/{eid}/delete", h.withPortal(h.endpointDelete))
	m.HandleFunc("POST /portal/{token}/endpoints/{eid}/deliveries/retry", h.withPortal(h.endpointDeliveriesRetry))
	m.HandleFunc("POST /portal/{token}/deliveries/{did}/retry", h.withPortal(h.deliveryRetry))
}

// portalView is what the portal's header shows.
type portalView struct {
	Name    string
	LogoURL string
	// Styled: the session has a colour, served as brand.css.
	Styled bool
}

type portalKey struct{}

// portalOf returns the portal request context of r, nil outside the portal.
func portalOf(r *http.Request) *reqCtx {
	rc, _ := r.Context().Value(portalKey{}).(*reqCtx)
	return rc
}

// portalCSP is the portal's content security policy: the dashboard's, but
// framed only by the project's portal origins ('none' without any) and
// showing the branding logo's origin's images.
func portalCSP(origins []string, logo string) string {
	fa := make([]string, 0, len(origins))
	for _, o := range origins {
		// app.CheckPortalOrigins made them; nothing that could end the
		// directive passes here anyway.
		if o != "" && !strings.ContainsFunc(o, func(r rune) bool { return r <= ' ' || r == ';' || r == ',' || r == '\'' || r > unicode.MaxASCII }) {
			fa = append(fa, o)
		}
	}
	if len(fa) == 0 {
		fa = []string{"'none'"}
	}
	img := "'self' data:"
	if logo != "" {
		img += " " + logo
	}
	return "default-src 'self'; script-src 'self'; style-src 'self'; img-src " + img +
		"; connect-src 'self'; form-action 'self'; frame-ancestors " + strings.Join(fa, " ") + "; base-uri 'none'"
}

// withPortal authenticates the portal token of the path (app.AuthenticatePortal),
// sets the portal's headers, checks a form's CSRF token and the session's
// scope, and hands on the request context of the session's project.
func (h *Handler) withPortal(next func(http.ResponseWriter, *http.Request, *reqCtx)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Cache-Control", "no-store")
		hd.Set("Referrer-Policy", "no-referrer")
		token := r.PathValue("token")
		acc, err := h.app.AuthenticatePortal(r.Context(), token)
		if err != nil {
			// No data, but an answer the embedding page may show in its frame.
			hd.Del("X-Frame-Options")
			hd.Set("Content-Security-Policy", portalCSP(h.app.PortalFrameOrigins(r.Context(), token), ""))
			rc := &reqCtx{} // a portal page, but no session's: no data
			r = r.WithContext(context.WithValue(r.Context(), portalKey{}, rc))
			if kinehook.ErrorCode(err) == kinehook.EUNAUTHORIZED {
				h.renderError(w, r, http.StatusUnauthorized, "This link has expired or was revoked ("+kinehook.ErrorMessage(err)+"). Open the portal again from where you came.")
				return
			}
			h.internalError(w, r, fmt.Errorf("portal session: %w", err))
			return
		}
		hd.Del("X-Frame-Options")
		hd.Set("Content-Security-Policy", portalCSP(acc.Project.PortalOrigins, acc.LogoOrigin))
		rc := &reqCtx{s: h.sessions.portalSession(acc, token), project: acc.Project, base: portalPrefix + token, portal: acc}
		r = r.WithContext(context.WithValue(r.Context(), portalKey{}, rc))
		if strings.ContainsFunc(r.URL.Path, unicode.IsControl) {
			h.renderError(w, r, http.StatusNotFound, "There is no page here.")
			return
		}
		if r.Method == http.MethodPost {
			refusal := ""
			if acc.Permits(app.OpChange) != nil {
				refusal = "This portal session may only look, not change anything."
			}
			if !h.checkPost(w, r, rc.s.csrf, refusal) {
				return
			}
		}
		next(w, r, rc)
	}
}

// portalBrandCSS serves the session's colour as a style sheet (the content
// security policy allows no inline style).
func (h *Handler) portalBrandCSS(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	if b := rc.portal.Session.Branding; b != nil && b.Color != "" {
		// app checked it: #rrggbb.
		fmt.Fprintf(w, ":root { --accent: %s; --accent-dark: %s; --portal-brand: %s; }\n", b.Color, b.Color, b.Color)
	}
}

// portalHeader is the header data of a portal page.
func portalHeader(rc *reqCtx) *portalView {
	if rc.portal == nil {
		return &portalView{}
	}
	v := &portalView{Name: "Webhooks"}
	if b := rc.portal.Session.Branding; b != nil {
		if b.Name != "" {
			v.Name = b.Name
		}
		v.LogoURL, v.Styled = b.LogoURL, b.Color != ""
	}
	return v
}

// portalSession is the page state of a portal session on this instance
// (its CSRF token and flash messages); the session itself is the store's.
func (ss *sessionStore) portalSession(acc *app.PortalAccess, token string) *session {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if s := ss.portals[acc.Session.ID]; s != nil {
		return s
	}
	if ss.portals == nil || len(ss.portals) >= maxSessions {
		ss.portals = map[string]*session{}
	}
	scope := kinehook.ScopeRead
	if acc.CanManage() {
		scope = kinehook.ScopeFull
	}
	s := &session{id: "portal:" + acc.Session.ID, projectID: acc.Project.ID, scope: scope, csrf: app.PortalCSRF(token),
		expires: acc.Session.ExpiresAt, portal: true}
	ss.portals[acc.Session.ID] = s
	return s
}

// portalTest sends a sample event to the one endpoint (app.PortalTestEndpoint)
// and shows its delivery in the endpoint's log.
func (h *Handler) portalTest(w http.ResponseWriter, r *http.Request, rc *reqCtx, e *kinehook.Endpoint, t kinehook.EventType) {
	back := rc.base + "/endpoints/" + e.ID
	d, err := h.app.PortalTestEndpoint(r.Context(), rc.portal, e.ID, t)
	switch code := kinehook.ErrorCode(err); {
	case err == nil:
		h.redirectFlash(w, r, rc.s, back+"#delivery-log", "ok", fmt.Sprintf("Test event %s sent to this endpoint (delivery %s).", t, d.ID))
	case code == kinehook.EINTERNAL:
		h.internalError(w, r, fmt.Errorf("test endpoint: %w", err))
	case code == kinehook.ECONFLICT:
		h.redirectFlash(w, r, rc.s, back, "error", "This endpoint is disabled; enable it before sending a test event.")
	default:
		h.redirectFlash(w, r, rc.s, back, "error", "The test event was refused: "+kinehook.ErrorMessage(err))
	}
}

// portalRetry sends one delivery again (app.PortalRetryDelivery) and goes
// back to its endpoint's log.
func (h *Handler) portalRetry(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	d, err := h.app.PortalRetryDelivery(r.Context(), rc.portal, r.PathValue("did"))
	switch code := kinehook.ErrorCode(err); {
	case code == kinehook.ENOTFOUND:
		h.renderError(w, r, http.StatusNotFound, "There is no such delivery here.")
	case code == kinehook.EINTERNAL:
		h.internalError(w, r, fmt.Errorf("retry delivery: %w", err))
	case err != nil:
		h.redirectFlash(w, r, rc.s, rc.base+"/endpoints", "error", "The delivery was not retried: "+kinehook.ErrorMessage(err))
	default:
		h.redirectFlash(w, r, rc.s, rc.base+"/endpoints/"+d.EndpointID+"#delivery-log", "ok", "Delivery "+d.ID+" is being sent again.")
	}
}
