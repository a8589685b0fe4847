package dashboard

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/internal/storehealth"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// pageNames are the templates in templates/, each rendered inside layout.html.
var pageNames = []string{"login", "projects", "endpoints", "endpoint_new", "endpoint", "events", "event", "deliveries", "keys", "rejected", "error", "videos", "streams"}

// pages holds one parsed template set per page.
type pages struct {
	t map[string]*template.Template
}

func loadPages() (*pages, error) {
	p := &pages{t: make(map[string]*template.Template)}
	for _, name := range pageNames {
		t, err := template.New("layout.html").Funcs(templateFuncs).ParseFS(templateFS, "templates/layout.html", "templates/partials.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("parse template %s: %w", name, err)
		}
		p.t[name] = t
	}
	return p, nil
}

// staticHandler serves the embedded assets; they change only with the
// binary, so browsers may keep them for an hour.
func staticHandler() http.Handler {
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err) // the embed directive guarantees the directory
	}
	fsrv := http.StripPrefix("/static/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=3600")
		fsrv.ServeHTTP(w, r)
	})
}

// pageData is what every template receives: the layout's fields and the
// page's own data in Page.
type pageData struct {
	Session *session
	Title   string
	CSRF    string
	Flashes []flash
	Project *kinehook.Project
	// Base is the URL prefix of the project's pages, "/projects/{pid}".
	Base string
	// Nav names the active tab: "endpoints", "events", "deliveries", "keys", "rejected", "videos" or "streams".
	Nav string
	// LiveSrc, when set, is the server-sent-events URL the page listens to.
	LiveSrc  string
	Next     string
	Projects []*kinehook.Project
	Status   int
	Message  string
	Page     any
	// Portal is set on the customer portal's pages: its header.
	Portal *portalView
}

// liveHeader marks the page's own background refreshes, which must not
// consume flash messages.
const liveHeader = "X-Kinehook-Live"

// render executes a page into a buffer first, so a template error becomes a
// clean 500 rather than half a page.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name string, d *pageData) {
	if prc := portalOf(r); prc != nil {
		d.Portal = portalHeader(prc)
	}
	if d.Session != nil {
		d.CSRF = d.Session.csrf
		if r.Header.Get(liveHeader) == "" {
			d.Flashes = append(d.Flashes, h.sessions.popFlashes(d.Session)...)
		}
	}
	t := h.pages.t[name]
	var buf bytes.Buffer
	if err := t.Execute(&buf, d); err != nil {
		h.log.Error("dashboard: render", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// renderError shows an error page with the given status and message.
func (h *Handler) renderError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	d := &pageData{Title: http.StatusText(status), Status: status, Message: msg}
	if prc := portalOf(r); prc != nil {
		// The portal's own page state, never a dashboard sign-in's.
		d.Session, d.Portal = prc.s, portalHeader(prc)
		if prc.project != nil {
			d.Project, d.Base = prc.project, prc.base
		}
	} else {
		d.Session = h.sessions.get(r)
	}
	if d.Session != nil {
		d.CSRF = d.Session.csrf
	}
	t := h.pages.t["error"]
	var buf bytes.Buffer
	if err := t.Execute(&buf, d); err != nil {
		h.log.Error("dashboard: render error page", "err", err)
		http.Error(w, msg, status)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// internalError logs err and shows a generic 500 page; a store outage (logged
// once by the store's tracker) shows a 503 page instead.
func (h *Handler) internalError(w http.ResponseWriter, r *http.Request, err error) {
	if code := h.store.Health().Fail(err); code != "" {
		w.Header().Set("Retry-After", strconv.Itoa(int(storehealth.RetryAfter/time.Second)))
		h.renderError(w, r, http.StatusServiceUnavailable, storehealth.Error(code).Message+".")
		return
	}
	path := r.URL.Path
	if portalOf(r) != nil {
		path = r.Pattern // never a portal token in the log
	}
	h.log.Error("dashboard: internal error", "method", r.Method, "path", path, "err", err)
	h.renderError(w, r, http.StatusInternalServerError, "Something went wrong on the server. The details are in its log.")
}

// redirectFlash stores a flash message and redirects (post/redirect/get).
func (h *Handler) redirectFlash(w http.ResponseWriter, r *http.Request, s *session, to, kind, text string) {
	h.sessions.addFlash(s, kind, text)
	http.Redirect(w, r, to, http.StatusSeeOther)
}

var templateFuncs = template.FuncMap{
	"utc": func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"iso": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	},
	"ago":    ago,
	"pct":    func(f float64) string { return fmt.Sprintf("%.0f%%", f*100) },
	"pctInt": func(f float64) int { return int(f*100 + 0.5) },
	"ms": func(f float64) string {
		if f < 10 {
			return fmt.Sprintf("%.1f ms", f)
		}
		return fmt.Sprintf("%.0f ms", f)
	},
	"join":        strings.Join,
	"breakURL":    breakURL,
	"scopes":      func() []string { return []string{"read", "ingest", "full"} },
	"opsEndpoint": kinehook.IsOperationsEndpoint,
	// portalLive and portalState tell a portal session's state: live
	// (until when), expired or revoked.
	"portalLive": func(ps *kinehook.PortalSession) bool {
		return ps.RevokedAt.IsZero() && time.Now().Before(ps.ExpiresAt)
	},
	"portalState": func(ps *kinehook.PortalSession) string {
		switch {
		case !ps.RevokedAt.IsZero():
			return "revoked " + ps.RevokedAt.UTC().Format("2006-01-02 15:04 UTC")
		case !time.Now().Before(ps.ExpiresAt):
			return "expired " + ps.ExpiresAt.UTC().Format("2006-01-02 15:04 UTC")
		}
		return "live until " + ps.ExpiresAt.UTC().Format("2006-01-02 15:04 UTC")
	},
	// listener is a cli endpoint's listener state (nil for other types).
	"listener": func(e *kinehook.Endpoint) *kinehook.ListenerState {
		if e.TypeOf() != kinehook.EndpointCLI {
			return nil
		}
		st := kinehook.ParseListenerState(e.Config)
		return &st
	},
	"statusClass": func(s kinehook.DeliveryStatus) string {
		switch s {
		case kinehook.DeliverySucceeded:
			return "ok"
		case kinehook.DeliveryFailed:
			return "bad"
		case kinehook.DeliveryRetrying:
			return "warn"
		}
		return "info"
	},
	"codeClass": func(code int) string {
		switch {
		case code >= 200 && code < 300:
			return "ok"
		case code == 0:
			return "bad"
		case code >= 500:
			return "bad"
		}
		return "warn"
	},
	"pretty": func(raw []byte) string {
		var b bytes.Buffer
		if json.Indent(&b, raw, "", "  ") != nil {
			return string(raw)
		}
		return b.String()
	},
	"add": func(a, b int) int { return a + b },
	// logData hands the delivery-log partial its page's CSRF token and base.
	"logData": func(csrf, base string, log any) map[string]any {
		return map[string]any{"CSRF": csrf, "Base": base, "Log": log}
	},
	"clock": func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		t = t.UTC()
		if y, m, d := t.Date(); y == time.Now().UTC().Year() && m == time.Now().UTC().Month() && d == time.Now().UTC().Day() {
			return t.Format("15:04:05")
		}
		return t.Format("Jan 2 15:04")
	},
	"liveClass": func(s string) string {
		switch s {
		case "connected":
			return "ok"
		case "disconnected", "cancelled":
			return "bad"
		case "finished":
			return "muted-badge"
		}
		return "info"
	},
	"mediaClass": func(s string) string {
		switch kinehook.MediaStatus(s) {
		case kinehook.StatusDone:
			return "ok"
		case kinehook.StatusError, kinehook.StatusAborted:
			return "bad"
		case kinehook.StatusSuspended:
			return "warn"
		}
		return "info"
	},
}

// ago renders how long before now t was, in one unit.
func ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := time.Since(t)
	future := d < 0
	if future {
		d = -d
	}
	var s string
	switch {
	case d < 2*time.Second:
		return "just now"
	case d < time.Minute:
		s = fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		s = fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 48*time.Hour:
		s = fmt.Sprintf("%dh", int(d/time.Hour))
	default:
		s = fmt.Sprintf("%dd", int(d/(24*time.Hour)))
	}
	if future {
		return "in " + s
	}
	return s + " ago"
}

// breakURL is s, HTML-escaped, with <wbr> where a long URL may wrap: after
// each '/', '?' and '&' of its path and query, and after a ',' (between the
// hosts of a broker list). It puts none inside scheme://host:port, which
// then wraps only when it is wider than a line: without them, a URL is one
// word that wraps at any letter (http://127.0.0.1 / :9000/hook). <wbr> adds
// no character, so the URL copies as it is.
func breakURL(s string) template.HTML {
	host := 0 // no break before host's end
	if i := strings.Index(s, "://"); i >= 0 {
		host = i + 3
		if j := strings.IndexAny(s[host:], "/?# \t\n"); j >= 0 {
			host += j
		} else {
			host = len(s)
		}
	}
	var b strings.Builder
	last := 0
	for i := 0; i < len(s)-1; i++ {
		if c := s[i]; c == ',' || (i >= host && (c == '/' || c == '?' || c == '&')) {
			b.WriteString(template.HTMLEscapeString(s[last : i+1]))
			b.WriteString("<wbr>")
			last = i + 1
		}
	}
	b.WriteString(template.HTMLEscapeString(s[last:]))
	return template.HTML(b.String())
}
