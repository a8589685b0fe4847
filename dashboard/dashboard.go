// Package dashboard is kinehook's web interface: a server-rendered dashboard
// (html/template, embedded assets, a little vanilla JavaScript, no external
// fonts or CDNs) where a project's owner manages endpoints, inspects events and
// deliveries attempt by attempt, retries and recovers failures, and watches new
// events arrive live over server-sent events.
//
// # Mount contract
//
// New returns an http.Handler meant to be mounted at "/" of `kinehook serve`,
// beside the JSON API. The dashboard answers every path except the API's own:
// it never serves /v1/..., /healthz, /readyz or /openapi.json, so the
// server's top-level router sends those to the API and the rest here
// (HasPage tells it which paths are pages, for clients that are not
// browsers). The dashboard's paths are:
//
//	GET  /                      redirect to the sign-in page or the project
//	GET  /login, POST /login    sign in with a project key or the admin key
//	POST /logout                sign out
//	GET  /static/...            embedded CSS, JavaScript and icon
//	GET  /projects              the admin's project picker
//	POST /projects              the admin makes a project (its key shown once)
//	     /projects/{pid}/...    endpoints, events, deliveries, live updates,
//	                            API keys and portal sessions (list, revoke);
//	                            POST /projects/{pid}/delete (admin)
//	     /portal/{token}/...    the customer portal of a portal session
//	                            (see portal.go): endpoints, their deliveries
//
// Live-update streams last as long as a page is open; they end by
// themselves when the http.Server serving them begins Shutdown, so that
// Shutdown does not wait for open tabs (Handler.Close ends them otherwise).
//
// Sessions live in the handler's memory (a random id in an HttpOnly,
// SameSite=Strict cookie, Secure when Config.SecureCookies is set), so a
// restart signs everybody out. Every POST carries a per-session CSRF token,
// compared in constant time, and cross-origin unsafe requests are refused
// (net/http's CrossOriginProtection). A project key sees only its project;
// other projects' pages answer 404.
//
// The dashboard is an adapter over the application layer (package app),
// like the JSON API beside it: every change goes through the app, which
// holds the rules and tells the delivery engine.
package dashboard

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/app"
)

// Config is what the dashboard needs from the server it is mounted in.
type Config struct {
	// Store is the durable store; the dashboard's views (health figures,
	// live updates) read it directly.
	Store kinehook.Store
	// Dispatcher is the delivery engine (for the App made when App is nil).
	Dispatcher kinehook.Dispatcher
	// App runs every use case: sign-in, projects, endpoint changes, test
	// events, retries and recoveries. Pass the one the JSON API uses, so
	// both interfaces apply the same rules (the endpoint URL policy among
	// them). Nil makes one over Store and Dispatcher that lets endpoints
	// use private network addresses.
	App *app.App
	// Destinations are the endpoint types beyond webhook of the App made
	// when App is nil (app.Config.Destinations).
	Destinations []kinehook.DestinationType
	// CheckURL, when set, is an extra policy for endpoint URLs beyond the
	// App's. Its error's kinehook.ErrorMessage is shown under the URL field.
	CheckURL func(rawURL string) error
	// Logger receives errors the user only sees as "internal error"
	// (nil: slog.Default()).
	Logger *slog.Logger
	// SecureCookies marks the session cookie Secure (serve over HTTPS or
	// behind a TLS-terminating proxy).
	SecureCookies bool
	// SessionTTL is how long a sign-in lasts (0: 12 hours).
	SessionTTL time.Duration
	// HealthWindow is how many of a project's latest events the endpoint
	// health figures are computed over (0: 200).
	HealthWindow int
	// LiveInterval is how often a live-update stream checks the store for
	// changes (0: one second).
	LiveInterval time.Duration
	// Now is the clock (nil: time.Now); tests replace it.
	Now func() time.Time
}

// Handler serves the dashboard. It is safe for concurrent use.
type Handler struct {
	cfg      Config
	store    kinehook.Store
	app      *app.App
	log      *slog.Logger
	now      func() time.Time
	sessions *sessionStore
	pages    *pages
	mux      *http.ServeMux
	root     http.Handler
	live     chan struct{} // semaphore bounding concurrent live streams
	closing  chan struct{} // closed by Close: live streams end
	closeMu  sync.Mutex
	// srvDone holds, per http.Server serving the dashboard, a channel
	// closed when that server's Shutdown begins (see serverDone).
	srvDone map[*http.Server]chan struct{}
}

// maxLiveStreams bounds concurrent server-sent-event streams, each of which
// polls the store once per LiveInterval.
const maxLiveStreams = 64

// New builds the dashboard handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Store == nil {
		return nil, errors.New("dashboard: Config.Store is required")
	}
	if cfg.Dispatcher == nil {
		return nil, errors.New("dashboard: Config.Dispatcher is required")
	}
	if cfg.App == nil {
		a, err := app.New(app.Config{Store: cfg.Store, Dispatcher: cfg.Dispatcher, AllowPrivateNetworks: true, Now: cfg.Now,
			Destinations: cfg.Destinations})
		if err != nil {
			return nil, fmt.Errorf("dashboard: %w", err)
		}
		cfg.App = a
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 12 * time.Hour
	}
	if cfg.HealthWindow <= 0 {
		cfg.HealthWindow = 200
	}
	if cfg.LiveInterval <= 0 {
		cfg.LiveInterval = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	p, err := loadPages()
	if err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	h := &Handler{
		cfg:      cfg,
		store:    cfg.Store,
		app:      cfg.App,
		log:      cfg.Logger,
		now:      cfg.Now,
		sessions: newSessionStore(cfg.SessionTTL, cfg.Now),
		pages:    p,
		mux:      http.NewServeMux(),
		live:     make(chan struct{}, maxLiveStreams),
		closing:  make(chan struct{}),
		srvDone:  map[*http.Server]chan struct{}{},
	}
	h.routes()
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.renderError(w, r, http.StatusForbidden, "This request came from another site and was refused.")
	}))
	h.root = securityHeaders(cop.Handler(h.mux))
	return h, nil
}

// Close ends every open live-update stream and refuses new ones. Streams
// otherwise last as long as the browser tab. The http.Server serving a
// stream ends it by itself when its Shutdown begins (see serverDone), so
// Close is for servers that stop some other way. Pages keep working;
// browsers reconnect to a new server on their own.
func (h *Handler) Close() {
	h.closeMu.Lock()
	defer h.closeMu.Unlock()
	select {
	case <-h.closing:
	default:
		close(h.closing)
	}
}

// serverDone returns a channel closed when the http.Server that serves r
// begins Shutdown (nil, never ready, when r did not come through an
// http.Server). Without it, Shutdown would wait for every open dashboard tab
// until its deadline, and the delivery engine would then get no time to
// finish its in-flight attempts.
func (h *Handler) serverDone(r *http.Request) <-chan struct{} {
	srv, ok := r.Context().Value(http.ServerContextKey).(*http.Server)
	if !ok || srv == nil {
		return nil
	}
	h.closeMu.Lock()
	defer h.closeMu.Unlock()
	ch, ok := h.srvDone[srv]
	if !ok {
		ch = make(chan struct{})
		h.srvDone[srv] = ch
		srv.RegisterOnShutdown(func() {
			h.closeMu.Lock()
			delete(h.srvDone, srv)
			h.closeMu.Unlock()
			close(ch)
		})
	}
	return ch
}

// ServeHTTP serves the dashboard.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.root.ServeHTTP(w, r) }

// HasPage reports whether r names one of the dashboard's pages (whatever
// that page then answers), as opposed to a path only its catch-all "no page
// here" answers. A top-level router uses it to give clients that are not
// browsers the API's JSON 404 instead of the dashboard's HTML one.
func (h *Handler) HasPage(r *http.Request) bool {
	_, pattern := h.mux.Handler(r)
	return pattern != "/"
}

func (h *Handler) routes() {
	m := h.mux
	m.Handle("GET /static/", staticHandler())
	m.HandleFunc("GET /{$}", h.home)
	m.HandleFunc("GET /login", h.loginPage)
	m.HandleFunc("POST /login", h.login)
	m.HandleFunc("POST /logout", h.withSession(h.logout))
	m.HandleFunc("GET /projects", h.withSession(h.projects))
	m.HandleFunc("POST /projects", h.withSession(h.projectCreate))
	m.HandleFunc("GET /projects/{pid}", h.withProject(h.projectHome))
	m.HandleFunc("GET /projects/{pid}/endpoints", h.withProject(h.endpointList))
	m.HandleFunc("GET /projects/{pid}/endpoints/new", h.withProject(h.endpointNew))
	m.HandleFunc("POST /projects/{pid}/endpoints", h.withProject(h.endpointCreate))
	m.HandleFunc("GET /projects/{pid}/endpoints/{eid}", h.withProject(h.endpointShow))
	m.HandleFunc("POST /projects/{pid}/endpoints/{eid}", h.withProject(h.endpointUpdate))
	m.HandleFunc("POST /projects/{pid}/endpoints/{eid}/disable", h.withProject(h.endpointSetDisabled(true)))
	m.HandleFunc("POST /projects/{pid}/endpoints/{eid}/enable", h.withProject(h.endpointSetDisabled(false)))
	m.HandleFunc("POST /projects/{pid}/endpoints/{eid}/secret/rotate", h.withProject(h.endpointRotate))
	m.HandleFunc("POST /projects/{pid}/endpoints/{eid}/test", h.withProject(h.endpointTest))
	m.HandleFunc("POST /projects/{pid}/endpoints/{eid}/recover", h.withProject(h.endpointRecover))
	m.HandleFunc("POST /projects/{pid}/endpoints/{eid}/delete", h.withProject(h.endpointDelete))
	m.HandleFunc("GET /projects/{pid}/events", h.withProject(h.eventList))
	m.HandleFunc("GET /projects/{pid}/events/{id}", h.withProject(h.eventShow))
	m.HandleFunc("GET /projects/{pid}/deliveries", h.withProject(h.deliveryList))
	m.HandleFunc("POST /projects/{pid}/deliveries/retry", h.withProject(h.deliveriesRetry))
	m.HandleFunc("POST /projects/{pid}/endpoints/{eid}/deliveries/retry", h.withProject(h.endpointDeliveriesRetry))
	m.HandleFunc("GET /projects/{pid}/search", h.withProject(h.search))
	m.HandleFunc("GET /projects/{pid}/rejected", h.withProject(h.rejectedList))
	m.HandleFunc("POST /projects/{pid}/deliveries/{did}/retry", h.withProject(h.deliveryRetry))
	m.HandleFunc("GET /projects/{pid}/live", h.withProject(h.liveStream))
	m.HandleFunc("GET /projects/{pid}/keys", h.withProject(h.keyList))
	m.HandleFunc("POST /projects/{pid}/keys", h.withProject(h.keyCreate))
	m.HandleFunc("POST /projects/{pid}/keys/{kid}/revoke", h.withProject(h.keyRevoke))
	m.HandleFunc("POST /projects/{pid}/portal-sessions/{sid}/revoke", h.withProject(h.portalRevoke))
	m.HandleFunc("POST /projects/{pid}/delete", h.withProject(h.projectDelete))
	m.HandleFunc("GET /projects/{pid}/videos", h.withProject(h.videos))
	m.HandleFunc("GET /projects/{pid}/streams", h.withProject(h.streams))
	h.portalRoutes()
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		// No page matched: the metrics label such requests "unmatched",
		// not "/" as if the catch-all were a page.
		r.Pattern = ""
		h.renderError(w, r, http.StatusNotFound, "There is no page here.")
	})
}

// securityHeaders sets headers every dashboard answer carries: a strict
// content security policy (only our own scripts and styles), no framing, no
// sniffing, no caching of pages that may show secrets.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

// home sends the visitor where they belong: the sign-in page, the admin's
// project picker, or the project key's endpoints.
func (h *Handler) home(w http.ResponseWriter, r *http.Request) {
	s := h.sessions.get(r)
	if s == nil {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, homeOf(s), http.StatusSeeOther)
}

// homeOf is a session's start page.
func homeOf(s *session) string {
	if s.admin {
		return "/projects"
	}
	return "/projects/" + s.projectID + "/endpoints"
}

func (h *Handler) projectHome(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	http.Redirect(w, r, rc.base+"/endpoints", http.StatusSeeOther)
}

// projects is the admin's project picker; a project key goes straight to its project.
func (h *Handler) projects(w http.ResponseWriter, r *http.Request, s *session) {
	if !s.admin {
		http.Redirect(w, r, "/projects/"+s.projectID+"/endpoints", http.StatusSeeOther)
		return
	}
	ps, err := h.app.ListProjects(r.Context(), adminPrincipal)
	if err != nil {
		h.internalError(w, r, fmt.Errorf("list projects: %w", err))
		return
	}
	h.render(w, r, http.StatusOK, "projects", &pageData{Session: s, Title: "Projects", Projects: ps, Page: &projectForm{}})
}

// projectForm is the admin's new-project form as typed.
type projectForm struct {
	Name  string
	Error string
}

// projectCreate makes a project (admin only) and shows its API key once,
// as POST /v1/projects does.
func (h *Handler) projectCreate(w http.ResponseWriter, r *http.Request, s *session) {
	if !s.admin {
		h.renderError(w, r, http.StatusNotFound, "There is no page here.")
		return
	}
	f := &projectForm{Name: strings.TrimSpace(r.PostForm.Get("name"))}
	p, key, err := h.app.CreateProject(r.Context(), app.ProjectInput{Name: f.Name})
	if kinehook.ErrorCode(err) == kinehook.EINVALID {
		f.Error = "The name is longer than " + strconv.Itoa(app.MaxProjectName) + " characters."
		if f.Name == "" {
			f.Error = "Enter a name for the project."
		}
		ps, err := h.app.ListProjects(r.Context(), adminPrincipal)
		if err != nil {
			h.internalError(w, r, fmt.Errorf("list projects: %w", err))
			return
		}
		h.render(w, r, http.StatusUnprocessableEntity, "projects", &pageData{Session: s, Title: "Projects", Projects: ps, Page: f})
		return
	}
	if err != nil {
		h.internalError(w, r, fmt.Errorf("create project: %w", err))
		return
	}
	h.redirectFlash(w, r, s, "/projects", "ok", "Project "+p.Name+" created. Its API key is shown only this once; keep it: "+key)
}

// adminPrincipal is the admin, for the admin's project picker (sessions
// are checked by withSession; the app lists what the admin sees).
var adminPrincipal = &app.Principal{Admin: true}
