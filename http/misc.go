package http

import (
	"context"
	_ "embed"
	nethttp "net/http"
	"net/http/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/app"
	"github.com/kinehook/kinehook/internal/storehealth"
)

// openAPIDoc is the OpenAPI 3.1 description of every route in routeTable.
//
//go:embed openapi.json
var openAPIDoc []byte

// OpenAPI returns the embedded OpenAPI 3.1 document.
func OpenAPI() []byte { return append([]byte(nil), openAPIDoc...) }

func (s *Server) healthz(w nethttp.ResponseWriter, r *nethttp.Request, _ *app.Principal) {
	writeJSON(w, nethttp.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w nethttp.ResponseWriter, r *nethttp.Request, _ *app.Principal) {
	if code := s.health.Outage(); code != "" {
		// Writes fail (a full disk answers reads): not ready until the
		// store's probe write succeeds. The tracker logged it once.
		writeError(w, storehealth.Error(code))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		if code := s.health.Fail(err); code != "" {
			writeError(w, storehealth.Error(code))
			return
		}
		s.log.Warn("readiness check failed", "err", err)
		writeError(w, &kinehook.Error{Code: kinehook.EUNAVAILABLE, Message: "the store does not answer"})
		return
	}
	if s.cfg.Ready != nil {
		if err := s.cfg.Ready(); err != nil {
			s.log.Warn("readiness check failed", "err", err)
			writeError(w, &kinehook.Error{Code: kinehook.EUNAVAILABLE, Message: "not ready: " + err.Error()})
			return
		}
	}
	writeJSON(w, nethttp.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) openapi(w nethttp.ResponseWriter, r *nethttp.Request, _ *app.Principal) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(openAPIDoc)))
	w.WriteHeader(nethttp.StatusOK)
	_, _ = w.Write(openAPIDoc)
}

// metrics serves Config.Metrics (Prometheus text format).
func (s *Server) metrics(w nethttp.ResponseWriter, r *nethttp.Request, _ *app.Principal) {
	if s.cfg.Metrics == nil {
		writeError(w, &kinehook.Error{Code: kinehook.ENOTFOUND, Message: "metrics are not enabled on this server"})
		return
	}
	s.cfg.Metrics.ServeHTTP(w, r)
}

// pprofHandler serves net/http/pprof's pages under /debug/pprof/.
func pprofHandler(w nethttp.ResponseWriter, r *nethttp.Request) {
	switch strings.TrimPrefix(r.URL.Path, "/debug/pprof/") {
	case "cmdline":
		pprof.Cmdline(w, r)
	case "profile":
		pprof.Profile(w, r)
	case "symbol":
		pprof.Symbol(w, r)
	case "trace":
		pprof.Trace(w, r)
	default:
		pprof.Index(w, r)
	}
}

func (s *Server) eventTypes(w nethttp.ResponseWriter, r *nethttp.Request, _ *app.Principal) {
	writeJSON(w, nethttp.StatusOK, listBody[kinehook.EventTypeInfo]{Data: kinehook.Catalog()})
}

// views maps stored records to their API shapes (never nil: an empty list
// is [] in JSON).
func views[T, V any](items []T, view func(T) V) []V {
	out := make([]V, 0, len(items))
	for _, it := range items {
		out = append(out, view(it))
	}
	return out
}

// listBody is the envelope of list answers.
type listBody[T any] struct {
	Data []T `json:"data"`
}

// pageBody is the envelope of paged list answers.
type pageBody[T any] struct {
	Data       []T    `json:"data"`
	NextCursor string `json:"next_cursor"`
}

// dataBody is the envelope of Kinescope-shaped single answers.
type dataBody[T any] struct {
	Data T `json:"data"`
}
