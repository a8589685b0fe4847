// Package http is kinehook's HTTP API: projects, endpoints, events,
// deliveries, the event catalog and the Kinescope-shaped /v1/webhooks routes,
// with Bearer-key authentication, request limits and a per-key rate limit.
// It is an adapter over the application layer (package app): handlers parse
// a request, call the app and render its answer; the rules live there.
//
// Every route lives in one table (routeTable) so that the embedded OpenAPI
// document (GET /openapi.json) can be checked against the router.
package http

import (
	"errors"
	"fmt"
	"log/slog"
	nethttp "net/http"
	"net/netip"
	"strings"
	"time"
	"unicode"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/app"
	"github.com/kinehook/kinehook/internal/ratelimit"
)

// Defaults for Config's limits.
const (
	DefaultMaxBodyBytes = app.DefaultMaxEventBytes
	// DefaultMaxBatchBytes and DefaultMaxBatchEvents bound one
	// POST .../events/batch (each event in it is still held to MaxBodyBytes).
	DefaultMaxBatchBytes  = 4 << 20
	DefaultMaxBatchEvents = app.DefaultMaxBatchEvents
	DefaultMaxJSONDepth   = app.DefaultMaxJSONDepth
	DefaultMaxURLLength   = 8192
	DefaultMaxHeaderBytes = 64 << 10
	// DefaultRateLimit is high enough that one client can use all of a
	// small server's ingest capacity (the issue's own workloads post
	// thousands of events/s with one key); lower it when tenants share a
	// server and must not crowd each other out.
	DefaultRateLimit = 10000.0
	DefaultRateBurst = 20000
	// FailedAuthRate and FailedAuthBurst bound requests with a missing or
	// unknown key per client address (never above the per-key limit): no
	// client needs many of those, and guessing keys should be slow.
	FailedAuthRate  = 100.0
	FailedAuthBurst = 200
	// SecretGracePeriod is how long a rotated-out secret keeps signing
	// (kinehook.SecretGracePeriod, kept here for compatibility).
	SecretGracePeriod = kinehook.SecretGracePeriod
)

// Config configures a Server. Store and Dispatcher are required.
type Config struct {
	Store      kinehook.Store
	Dispatcher kinehook.Dispatcher
	// App runs the use cases. When nil the server makes its own over Store
	// and Dispatcher with AdminKeyHash, the network rules, the event limits
	// and Now below; when set, those come from it (share one App between
	// the API and the dashboard of one process).
	App *app.App
	// Destinations are the endpoint types beyond webhook the server's own
	// App accepts (app.Config.Destinations); unused when App is set.
	Destinations []kinehook.DestinationType
	Logger       *slog.Logger
	// Ready, when set, is a further readiness check for /readyz (on
	// PostgreSQL: the coordinator can renew its partition leases).
	Ready func() error

	// AdminKeyHash is kinehook.HashKey of the admin key. When nil the server
	// reads it from the store (Store.AdminKeyHash) and caches it.
	AdminKeyHash []byte

	// AllowPrivateNetworks lets endpoints be registered with literal
	// loopback/private addresses (and localhost); AllowCIDRs opens single ranges.
	AllowPrivateNetworks bool
	AllowCIDRs           []netip.Prefix

	// RateLimit is the sustained API requests per second allowed per key
	// (0 = DefaultRateLimit, negative = no limit); RateBurst the bucket size
	// (0 = DefaultRateBurst).
	RateLimit float64
	RateBurst int

	// Request limits (0 = the defaults above).
	MaxBodyBytes int64
	MaxJSONDepth int
	// MaxBatchBytes and MaxBatchEvents bound a batch of events.
	MaxBatchBytes  int64
	MaxBatchEvents int
	MaxURLLength   int
	MaxHeaderBytes int

	// Metrics, when set, is served at GET /metrics (Prometheus).
	Metrics nethttp.Handler
	// Pprof mounts net/http/pprof at /debug/pprof/ (no key: enable it only
	// on a listen address you trust).
	Pprof bool

	// PublicURL, when set, is the server's address as browsers reach it
	// (https://hooks.example.com): the base of portal session URLs. Unset,
	// they are built on the request's scheme and Host.
	PublicURL string

	// Now is the clock (tests); time.Now when nil.
	Now func() time.Time
}

// Server is the API as an http.Handler.
type Server struct {
	cfg     Config
	app     *app.App
	store   kinehook.Store
	log     *slog.Logger
	now     func() time.Time
	routes  []*route
	limiter *ratelimit.Keyed // per key
	denied  *ratelimit.Keyed // per client address, requests without a valid key
	// health is the store's outage tracker (nil for a store without one).
	health kinehook.StoreHealth
}

// NewServer checks cfg and returns the API server.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("http: Config.Store is required")
	}
	if cfg.Dispatcher == nil {
		return nil, errors.New("http: Config.Dispatcher is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	a, err := appOf(&cfg)
	if err != nil {
		return nil, err
	}
	if cfg.MaxBatchBytes <= 0 {
		cfg.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if cfg.MaxURLLength <= 0 {
		cfg.MaxURLLength = DefaultMaxURLLength
	}
	if cfg.MaxHeaderBytes <= 0 {
		cfg.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if cfg.RateLimit == 0 {
		cfg.RateLimit = DefaultRateLimit
	}
	if cfg.RateBurst <= 0 {
		cfg.RateBurst = DefaultRateBurst
	}
	s := &Server{
		cfg:    cfg,
		app:    a,
		store:  cfg.Store,
		log:    cfg.Logger,
		now:    cfg.Now,
		health: cfg.Store.Health(),
	}
	if cfg.RateLimit > 0 {
		s.limiter = ratelimit.NewKeyed(ratelimit.KeyedConfig{Rate: cfg.RateLimit, Burst: cfg.RateBurst, Clock: clockFunc(cfg.Now)})
		s.denied = ratelimit.NewKeyed(ratelimit.KeyedConfig{Rate: min(cfg.RateLimit, FailedAuthRate), Burst: min(cfg.RateBurst, FailedAuthBurst), Clock: clockFunc(cfg.Now)})
	}
	for _, r := range routeTable() {
		r.segs = strings.Split(strings.TrimPrefix(r.Pattern, "/"), "/")
		s.routes = append(s.routes, r)
	}
	return s, nil
}

// appOf returns cfg.App, or a new App over cfg's store and dispatcher; the
// event limits left zero in cfg take the app's.
func appOf(cfg *Config) (*app.App, error) {
	a := cfg.App
	if a == nil {
		var err error
		a, err = app.New(app.Config{
			Store: cfg.Store, Dispatcher: cfg.Dispatcher, AdminKeyHash: cfg.AdminKeyHash,
			AllowPrivateNetworks: cfg.AllowPrivateNetworks, AllowCIDRs: cfg.AllowCIDRs, Now: cfg.Now,
			Limits:       app.Limits{MaxEventBytes: cfg.MaxBodyBytes, MaxJSONDepth: cfg.MaxJSONDepth, MaxBatchEvents: cfg.MaxBatchEvents},
			Destinations: cfg.Destinations,
		})
		if err != nil {
			return nil, fmt.Errorf("http: %w", err)
		}
	}
	l := a.Limits()
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = l.MaxEventBytes
	}
	if cfg.MaxJSONDepth <= 0 {
		cfg.MaxJSONDepth = l.MaxJSONDepth
	}
	if cfg.MaxBatchEvents <= 0 {
		cfg.MaxBatchEvents = l.MaxBatchEvents
	}
	return a, nil
}

// Handler returns the server as an http.Handler.
func (s *Server) Handler() nethttp.Handler { return s }

// ServeHTTP routes one request: limits, routing, authentication, rate limit,
// then the route's handler.
func (s *Server) ServeHTTP(w nethttp.ResponseWriter, r *nethttp.Request) {
	defer s.recoverPanic(w, r)
	if reqID, ok := s.admit(w, r); ok {
		s.route(w, r, reqID)
	}
}

// Guard applies the server's request guards to next: a panic becomes a JSON
// 500, an over-long URL a 414, oversized headers a 431, and every answer
// carries X-Request-Id (the caller's when plain, else a new one). The API
// runs behind it; a handler mounted beside the API (the dashboard) gets the
// same guards through it.
func (s *Server) Guard(next nethttp.Handler) nethttp.Handler {
	return nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		defer s.recoverPanic(w, r)
		if _, ok := s.admit(w, r); ok {
			next.ServeHTTP(w, r)
		}
	})
}

// admit applies the size limits (answering 414 or 431 and returning false)
// and sets X-Request-Id, whose value it returns.
func (s *Server) admit(w nethttp.ResponseWriter, r *nethttp.Request) (string, bool) {
	if len(r.RequestURI) > s.cfg.MaxURLLength || len(r.URL.RawQuery)+len(r.URL.Path) > s.cfg.MaxURLLength {
		writeStatusError(w, nethttp.StatusRequestURITooLong, kinehook.ETOOLARGE, fmt.Sprintf("URL longer than %d bytes", s.cfg.MaxURLLength))
		return "", false
	}
	if headerBytes(r) > s.cfg.MaxHeaderBytes {
		writeStatusError(w, nethttp.StatusRequestHeaderFieldsTooLarge, kinehook.ETOOLARGE, fmt.Sprintf("request headers larger than %d bytes", s.cfg.MaxHeaderBytes))
		return "", false
	}
	reqID := requestID(r.Header.Get("X-Request-Id"))
	w.Header().Set("X-Request-Id", reqID)
	return reqID, true
}

// recoverPanic answers a handler's panic as a JSON 500 (net/http's abort
// panic passes through).
func (s *Server) recoverPanic(w nethttp.ResponseWriter, r *nethttp.Request) {
	if v := recover(); v != nil {
		if v == nethttp.ErrAbortHandler {
			panic(v)
		}
		s.log.Error("api handler panic", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v))
		writeError(w, &kinehook.Error{Code: kinehook.EINTERNAL, Message: "internal error"})
	}
}

// NotFound answers the API's JSON 404 for a path nothing serves.
func (s *Server) NotFound(w nethttp.ResponseWriter, r *nethttp.Request) {
	writeError(w, &kinehook.Error{Code: kinehook.ENOTFOUND, Message: fmt.Sprintf("no route %s %s", r.Method, r.URL.Path)})
}

// Serves reports whether path belongs to the API (and so never to a
// handler mounted beside it): /v1 and below, /healthz, /readyz,
// /openapi.json, /metrics, and /debug/pprof/ when Config.Pprof is set.
func (s *Server) Serves(path string) bool {
	return isAPIPath(path) || (s.cfg.Pprof && strings.HasPrefix(path, "/debug/pprof/"))
}

// route serves one guarded request: pprof, routing, authentication, rate
// limit, then the route's handler.
func (s *Server) route(w nethttp.ResponseWriter, r *nethttp.Request, reqID string) {
	if s.cfg.Pprof && strings.HasPrefix(r.URL.Path, "/debug/pprof/") {
		r.Pattern = "/debug/pprof/"
		pprofHandler(w, r)
		return
	}
	rt, params, allowed := s.match(r.Method, r.URL.Path)
	if rt == nil {
		if len(allowed) > 0 {
			w.Header().Set("Allow", strings.Join(allowed, ", "))
			writeStatusError(w, nethttp.StatusMethodNotAllowed, codeMethodNotAllowed, fmt.Sprintf("method %s not allowed on %s; allowed: %s", r.Method, r.URL.Path, strings.Join(allowed, ", ")))
			return
		}
		s.NotFound(w, r)
		return
	}
	r.Pattern = rt.Method + " " + rt.Pattern
	var badParam *kinehook.Error
	for k, v := range params {
		if strings.ContainsFunc(v, unicode.IsControl) {
			// No id holds one (and PostgreSQL cannot even look up a NUL):
			// 404, once the key is known to reach this route.
			badParam = &kinehook.Error{Code: kinehook.ENOTFOUND, Field: k, Message: fmt.Sprintf("no %s %q", k, v)}
		}
		r.SetPathValue(k, v)
	}
	if s.log.Enabled(r.Context(), slog.LevelDebug) {
		sw := &statusWriter{ResponseWriter: w, code: nethttp.StatusOK}
		start := time.Now()
		defer func() {
			s.log.Debug("api request", "request_id", reqID, "method", r.Method, "route", rt.Pattern, "status", sw.code, "duration_ms", float64(time.Since(start).Microseconds())/1000)
		}()
		w = sw
	}
	var p *app.Principal
	if rt.Auth != authNone {
		var ok bool
		if p, ok = s.admitKey(w, r, rt); !ok {
			return
		}
	}
	if badParam != nil {
		writeError(w, badParam)
		return
	}
	if err := rt.checkQuery(r.URL.RawQuery); err != nil {
		writeError(w, err)
		return
	}
	rt.handle(s, w, r, p)
}

// admitKey authenticates the request's key, applies the rate limits (per
// client address without a valid key, per key with one) and checks that the
// key may use rt; false means it answered.
func (s *Server) admitKey(w nethttp.ResponseWriter, r *nethttp.Request, rt *route) (*app.Principal, bool) {
	p, err := s.authenticate(r)
	if err != nil {
		// Only a missing or unknown key counts against the address: a
		// key that could not be checked (the store is down; keys are
		// looked up again every app.KeyCacheTTL) is answered 503.
		if s.denied != nil && kinehook.ErrorCode(err) == kinehook.EUNAUTHORIZED {
			if ok, wait := s.denied.Allow(remoteHost(r)); !ok {
				writeRateLimited(w, wait, "requests without a valid key from this address")
				return nil, false
			}
		}
		s.internal(w, "authenticate", err)
		return nil, false
	}
	if s.limiter != nil {
		if ok, wait := s.limiter.Allow(p.KeyID); !ok {
			writeRateLimited(w, wait, "this key")
			return nil, false
		}
	}
	if err := s.authorize(rt, r, p); err != nil {
		writeError(w, err)
		return nil, false
	}
	return p, true
}

// isAPIPath reports whether path belongs to the API (and so never to the dashboard).
func isAPIPath(path string) bool {
	return path == "/v1" || strings.HasPrefix(path, "/v1/") || strings.HasPrefix(path, "/in/") || path == "/healthz" || path == "/readyz" || path == "/openapi.json" || path == "/metrics"
}

// match finds the route for method and path. When the path matches routes
// but not the method, it returns the allowed methods.
func (s *Server) match(method, path string) (*route, map[string]string, []string) {
	segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
	var allowed []string
	for _, rt := range s.routes {
		params, ok := matchSegs(rt.segs, segs)
		if !ok {
			continue
		}
		if rt.Method == method || (method == nethttp.MethodHead && rt.Method == nethttp.MethodGet) {
			return rt, params, nil
		}
		allowed = append(allowed, rt.Method)
	}
	return nil, nil, allowed
}

// isParam reports whether a pattern segment is a {name} parameter.
func isParam(p string) bool { return len(p) >= 2 && p[0] == '{' && p[len(p)-1] == '}' }

func matchSegs(pattern, segs []string) (map[string]string, bool) {
	if len(pattern) != len(segs) {
		return nil, false
	}
	// Literals first, so a route that differs only further on (most of
	// them, under /v1/projects/{pid}/) costs no parameter map.
	wild := 0
	for i, p := range pattern {
		if isParam(p) {
			if segs[i] == "" {
				return nil, false
			}
			wild++
			continue
		}
		if p != segs[i] {
			return nil, false
		}
	}
	if wild == 0 {
		return nil, true
	}
	params := make(map[string]string, wild)
	for i, p := range pattern {
		if isParam(p) {
			params[p[1:len(p)-1]] = segs[i]
		}
	}
	return params, true
}

// authenticate resolves the Bearer key of r.
func (s *Server) authenticate(r *nethttp.Request) (*app.Principal, error) {
	h := r.Header.Get("Authorization")
	scheme, key, ok := strings.Cut(h, " ")
	key = strings.TrimSpace(key)
	if h == "" || !ok || !strings.EqualFold(scheme, "Bearer") || key == "" {
		return nil, &kinehook.Error{Code: kinehook.EUNAUTHORIZED, Message: "missing API key: send Authorization: Bearer <key>"}
	}
	return s.app.Authenticate(r.Context(), key)
}

// authorize checks that p may use route rt: admin routes need the admin key,
// project routes the admin key or that project's key (others get 404),
// Kinescope routes a project key; then the key's scope must allow what the
// route does (403 otherwise: read keys only GET, ingest keys only post
// events).
func (s *Server) authorize(rt *route, r *nethttp.Request, p *app.Principal) error {
	switch rt.Auth {
	case authAdmin:
		if !p.Admin {
			return &kinehook.Error{Code: codeForbidden, Message: "this route needs the admin key"}
		}
	case authProject:
		if pid := r.PathValue("pid"); !p.CanActOn(pid) {
			return &kinehook.Error{Code: kinehook.ENOTFOUND, Message: fmt.Sprintf("project %q not found", pid)}
		}
	case authWebhooks:
		if p.Admin {
			return &kinehook.Error{Code: kinehook.EMALFORMED, Message: "the /v1/webhooks routes act on one project: use that project's API key, not the admin key"}
		}
	}
	return p.Permits(rt.op())
}

// projectID returns the project a request acts on.
func projectID(r *nethttp.Request, p *app.Principal) string {
	if pid := r.PathValue("pid"); pid != "" {
		return pid
	}
	if p != nil && p.Project != nil {
		return p.Project.ID
	}
	return ""
}

// projectKnown reports whether the request's project is known to exist: a
// project key was checked against its own project (the admin key was not).
func projectKnown(p *app.Principal) bool { return p == nil || !p.Admin }

// headerBytes estimates the size of r's header block.
func headerBytes(r *nethttp.Request) int {
	n := 0
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

func remoteHost(r *nethttp.Request) string {
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return ap.Addr().String()
	}
	return r.RemoteAddr
}

// clockFunc adapts Config.Now to the rate limiter's clock.
type clockFunc func() time.Time

func (f clockFunc) Now() time.Time { return f() }

// requestID keeps a caller's X-Request-Id when it is short and plain, and
// otherwise makes one; it names the request in logs and in the answer.
func requestID(in string) string {
	if n := len(in); n > 0 && n <= 128 {
		ok := true
		for i := 0; i < n && ok; i++ {
			c := in[i]
			ok = c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '_' || c == '.' || c == ':'
		}
		if ok {
			return in
		}
	}
	return kinehook.NewID("req")
}

// statusWriter remembers the status of an answer (for the access log).
type statusWriter struct {
	nethttp.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) { w.code = code; w.ResponseWriter.WriteHeader(code) }

// Unwrap gives http.ResponseController the underlying writer.
func (w *statusWriter) Unwrap() nethttp.ResponseWriter { return w.ResponseWriter }
