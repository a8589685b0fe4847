// Package http is kinehook's HTTP API: projects, endpoints, events,
// deliveries, the event catalog and the Kinescope-shaped /v1/webhooks routes,
// with Bearer-key authentication, request limits and a per-key rate limit.
//
// Every route lives in one table (routeTable) so that the embedded OpenAPI
// document (GET /openapi.json) can be checked against the router.
package http

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	nethttp "net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/internal/netguard"
	"github.com/kinehook/kinehook/internal/ratelimit"
	"github.com/kinehook/kinehook/internal/storehealth"
)

// Defaults for Config's limits.
const (
	DefaultMaxBodyBytes = 1 << 20
	// DefaultMaxBatchBytes and DefaultMaxBatchEvents bound one
	// POST .../events/batch (each event in it is still held to MaxBodyBytes).
	DefaultMaxBatchBytes  = 4 << 20
	DefaultMaxBatchEvents = 1000
	DefaultMaxJSONDepth   = 32
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
	Logger     *slog.Logger
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

	// Dashboard, when set, serves every path outside the API (mounted at /).
	Dashboard nethttp.Handler
	// Metrics, when set, is served at GET /metrics (Prometheus).
	Metrics nethttp.Handler
	// Pprof mounts net/http/pprof at /debug/pprof/ (no key: enable it only
	// on a listen address you trust).
	Pprof bool

	// Now is the clock (tests); time.Now when nil.
	Now func() time.Time
}

// Server is the API as an http.Handler.
type Server struct {
	// Dashboard serves every path outside the API when set (Config.Dashboard
	// initially). Set it before serving, never while requests run.
	Dashboard nethttp.Handler

	cfg     Config
	store   kinehook.Store
	disp    kinehook.Dispatcher
	log     *slog.Logger
	now     func() time.Time
	routes  []*route
	limiter *ratelimit.Keyed // per key
	denied  *ratelimit.Keyed // per client address, requests without a valid key
	guard   *netguard.Guard
	// health is the store's outage tracker (nil for a store without one).
	health *storehealth.Tracker

	adminMu   sync.Mutex
	adminHash atomic.Pointer[[]byte]

	keyCache sync.Map // string(key hash) -> *kinehook.Project
	// projLocks serialise the changes of one project's settings with the
	// endpoint its operations_url makes (string project id -> *sync.Mutex).
	projLocks sync.Map
	keyCount  int64
	keyMu     sync.Mutex
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
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxJSONDepth <= 0 {
		cfg.MaxJSONDepth = DefaultMaxJSONDepth
	}
	if cfg.MaxBatchBytes <= 0 {
		cfg.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if cfg.MaxBatchEvents <= 0 {
		cfg.MaxBatchEvents = DefaultMaxBatchEvents
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
		cfg:       cfg,
		store:     cfg.Store,
		disp:      cfg.Dispatcher,
		log:       cfg.Logger,
		now:       cfg.Now,
		Dashboard: cfg.Dashboard,
		health:    storehealth.Of(cfg.Store),
	}
	if cfg.AdminKeyHash != nil {
		h := cfg.AdminKeyHash
		s.adminHash.Store(&h)
	}
	if cfg.RateLimit > 0 {
		s.limiter = ratelimit.NewKeyed(ratelimit.KeyedConfig{Rate: cfg.RateLimit, Burst: cfg.RateBurst, Clock: clockFunc(cfg.Now)})
		s.denied = ratelimit.NewKeyed(ratelimit.KeyedConfig{Rate: min(cfg.RateLimit, FailedAuthRate), Burst: min(cfg.RateBurst, FailedAuthBurst), Clock: clockFunc(cfg.Now)})
	}
	s.guard = &netguard.Guard{AllowPrivate: cfg.AllowPrivateNetworks, AllowCIDRs: cfg.AllowCIDRs}
	for _, r := range routeTable() {
		r.segs = strings.Split(strings.TrimPrefix(r.Pattern, "/"), "/")
		s.routes = append(s.routes, r)
	}
	return s, nil
}

// Handler returns the server as an http.Handler.
func (s *Server) Handler() nethttp.Handler { return s }

// ServeHTTP routes one request: limits, routing, authentication, rate limit,
// then the route's handler.
func (s *Server) ServeHTTP(w nethttp.ResponseWriter, r *nethttp.Request) {
	defer func() {
		if v := recover(); v != nil {
			if v == nethttp.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("api handler panic", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v))
			writeError(w, &kinehook.Error{Code: kinehook.EINTERNAL, Message: "internal error"})
		}
	}()
	if len(r.RequestURI) > s.cfg.MaxURLLength || len(r.URL.RawQuery)+len(r.URL.Path) > s.cfg.MaxURLLength {
		writeStatusError(w, nethttp.StatusRequestURITooLong, kinehook.ETOOLARGE, fmt.Sprintf("URL longer than %d bytes", s.cfg.MaxURLLength))
		return
	}
	if headerBytes(r) > s.cfg.MaxHeaderBytes {
		writeStatusError(w, nethttp.StatusRequestHeaderFieldsTooLarge, kinehook.ETOOLARGE, fmt.Sprintf("request headers larger than %d bytes", s.cfg.MaxHeaderBytes))
		return
	}
	reqID := requestID(r.Header.Get("X-Request-Id"))
	w.Header().Set("X-Request-Id", reqID)
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
		if s.Dashboard != nil && !isAPIPath(r.URL.Path) {
			if strings.Contains(r.Header.Get("Accept"), "text/html") {
				s.Dashboard.ServeHTTP(w, r)
				return
			}
			// A client that is not a browser gets the API's JSON 404
			// instead of the dashboard's page.
			nf := &notFoundWriter{ResponseWriter: w}
			s.Dashboard.ServeHTTP(nf, r)
			if nf.notFound {
				writeError(w, &kinehook.Error{Code: kinehook.ENOTFOUND, Message: fmt.Sprintf("no route %s %s", r.Method, r.URL.Path)})
			}
			return
		}
		writeError(w, &kinehook.Error{Code: kinehook.ENOTFOUND, Message: fmt.Sprintf("no route %s %s", r.Method, r.URL.Path)})
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
	var p *principal
	if rt.Auth != authNone {
		var err error
		p, err = s.authenticate(r)
		if err != nil {
			if s.denied != nil {
				if ok, wait := s.denied.Allow(remoteHost(r)); !ok {
					writeRateLimited(w, wait, "requests without a valid key from this address")
					return
				}
			}
			s.internal(w, "authenticate", err)
			return
		}
		if s.limiter != nil {
			if ok, wait := s.limiter.Allow(p.limitKey); !ok {
				writeRateLimited(w, wait, "this key")
				return
			}
		}
		if err := s.authorize(rt, r, p); err != nil {
			writeError(w, err)
			return
		}
	}
	if badParam != nil {
		writeError(w, badParam)
		return
	}
	rt.handle(s, w, r, p)
}

// isAPIPath reports whether path belongs to the API (and so never to the dashboard).
func isAPIPath(path string) bool {
	return path == "/v1" || strings.HasPrefix(path, "/v1/") || path == "/healthz" || path == "/readyz" || path == "/openapi.json" || path == "/metrics"
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

// principal is who made a request: the admin, or one project.
type principal struct {
	admin    bool
	project  *kinehook.Project
	limitKey string
}

// authenticate resolves the Bearer key of r.
func (s *Server) authenticate(r *nethttp.Request) (*principal, error) {
	h := r.Header.Get("Authorization")
	scheme, key, ok := strings.Cut(h, " ")
	key = strings.TrimSpace(key)
	if h == "" || !ok || !strings.EqualFold(scheme, "Bearer") || key == "" {
		return nil, &kinehook.Error{Code: kinehook.EUNAUTHORIZED, Message: "missing API key: send Authorization: Bearer <key>"}
	}
	hash := kinehook.HashKey(key)
	limitKey := "key:" + string(hash[:16])
	admin, err := s.adminKeyHash(r.Context())
	if err != nil {
		return nil, err
	}
	if admin != nil && subtle.ConstantTimeCompare(admin, hash) == 1 {
		return &principal{admin: true, limitKey: limitKey}, nil
	}
	if v, ok := s.keyCache.Load(string(hash)); ok {
		return &principal{project: v.(*kinehook.Project), limitKey: limitKey}, nil
	}
	p, err := s.store.ProjectByKeyHash(r.Context(), hash)
	if err != nil {
		if kinehook.ErrorCode(err) == kinehook.ENOTFOUND {
			return nil, &kinehook.Error{Code: kinehook.EUNAUTHORIZED, Message: "unknown API key"}
		}
		return nil, fmt.Errorf("look up API key: %w", err)
	}
	s.cacheKey(hash, p)
	return &principal{project: p, limitKey: limitKey}, nil
}

// cacheKey remembers a project key's project; keys never change, so only the
// cache's size is bounded.
func (s *Server) cacheKey(hash []byte, p *kinehook.Project) {
	s.keyMu.Lock()
	defer s.keyMu.Unlock()
	if s.keyCount >= 10000 {
		s.keyCache.Clear()
		s.keyCount = 0
	}
	if _, loaded := s.keyCache.LoadOrStore(string(hash), p); !loaded {
		s.keyCount++
	}
}

// adminKeyHash returns the admin key hash, reading it from the store until
// found (nil while none is stored).
func (s *Server) adminKeyHash(ctx context.Context) ([]byte, error) {
	if h := s.adminHash.Load(); h != nil {
		return *h, nil
	}
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	if h := s.adminHash.Load(); h != nil {
		return *h, nil
	}
	h, err := s.store.AdminKeyHash(ctx)
	if err != nil {
		if kinehook.ErrorCode(err) == kinehook.ENOTFOUND {
			return nil, nil
		}
		return nil, fmt.Errorf("read admin key hash: %w", err)
	}
	s.adminHash.Store(&h)
	return h, nil
}

// authorize checks that p may use route rt: admin routes need the admin key,
// project routes the admin key or that project's key (others get 404),
// Kinescope routes a project key.
func (s *Server) authorize(rt *route, r *nethttp.Request, p *principal) error {
	switch rt.Auth {
	case authAdmin:
		if !p.admin {
			return &kinehook.Error{Code: codeForbidden, Message: "this route needs the admin key"}
		}
	case authProject:
		pid := r.PathValue("pid")
		if p.admin {
			return nil
		}
		if p.project == nil || subtle.ConstantTimeCompare([]byte(p.project.ID), []byte(pid)) != 1 {
			return &kinehook.Error{Code: kinehook.ENOTFOUND, Message: fmt.Sprintf("project %q not found", pid)}
		}
	case authWebhooks:
		if p.admin {
			return &kinehook.Error{Code: kinehook.EMALFORMED, Message: "the /v1/webhooks routes act on one project: use that project's API key, not the admin key"}
		}
	}
	return nil
}

// projectID returns the project a request acts on.
func projectID(r *nethttp.Request, p *principal) string {
	if pid := r.PathValue("pid"); pid != "" {
		return pid
	}
	if p != nil && p.project != nil {
		return p.project.ID
	}
	return ""
}

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

// notFoundWriter passes a response through unless its status is 404, which
// it swallows (with the body) so the caller can answer in JSON instead.
type notFoundWriter struct {
	nethttp.ResponseWriter
	notFound, wrote bool
}

func (w *notFoundWriter) WriteHeader(code int) {
	if w.wrote {
		return
	}
	w.wrote = true
	if code == nethttp.StatusNotFound {
		w.notFound = true
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *notFoundWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(nethttp.StatusOK)
	}
	if w.notFound {
		return len(p), nil
	}
	return w.ResponseWriter.Write(p)
}

// Flush lets the dashboard's live-update stream through.
func (w *notFoundWriter) Flush() {
	if !w.notFound {
		_ = nethttp.NewResponseController(w.ResponseWriter).Flush()
	}
}

// Unwrap gives http.ResponseController the underlying writer.
func (w *notFoundWriter) Unwrap() nethttp.ResponseWriter { return w.ResponseWriter }

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
