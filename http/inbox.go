package http

import (
	"encoding/json"

	nethttp "net/http"
	"strings"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/app"
)

// sourceView is an inbox source in answers. Its credentials are
// write-only: neither login, password nor secret ever leaves the server.
type sourceView struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Type      string    `json:"type"`
	Path      string    `json:"path"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	ProjectID string    `json:"project_id"`
}

func viewSource(src *kinehook.InboxSource) sourceView {
	return sourceView{ID: src.ID, Name: src.Name, Type: src.Type, Path: src.Path(), CreatedAt: src.CreatedAt.UTC(),
		UpdatedAt: src.UpdatedAt.UTC(), ProjectID: src.ProjectID}
}

// sourceInput is the body of source create and PATCH; read-only fields
// are accepted and ignored so a client can send back what it read.
type sourceInput struct {
	Name     *string `json:"name"`
	Type     *string `json:"type"`
	Login    *string `json:"login"`
	Password *string `json:"password"`
	Secret   *string `json:"secret"`

	ID        json.RawMessage `json:"id"`
	Path      json.RawMessage `json:"path"`
	ProjectID json.RawMessage `json:"project_id"`
	CreatedAt json.RawMessage `json:"created_at"`
	UpdatedAt json.RawMessage `json:"updated_at"`
}

func (in *sourceInput) toApp() app.SourceInput {
	return app.SourceInput{Name: in.Name, Type: in.Type, Login: in.Login, Password: in.Password, Secret: in.Secret}
}

func (s *Server) createSource(w nethttp.ResponseWriter, r *nethttp.Request, p *app.Principal) {
	var in sourceInput
	if err := s.decodeJSON(w, r, &in); err != nil {
		writeError(w, err)
		return
	}
	src, err := s.app.CreateSource(r.Context(), projectID(r, p), in.toApp())
	if err != nil {
		s.internal(w, "create source", err)
		return
	}
	writeJSON(w, nethttp.StatusCreated, viewSource(src))
}

func (s *Server) listSources(w nethttp.ResponseWriter, r *nethttp.Request, p *app.Principal) {
	srcs, err := s.app.ListSources(r.Context(), projectID(r, p), projectKnown(p))
	if err != nil {
		s.internal(w, "list sources", err)
		return
	}
	writeJSON(w, nethttp.StatusOK, listBody[sourceView]{Data: views(srcs, viewSource)})
}

func (s *Server) getSource(w nethttp.ResponseWriter, r *nethttp.Request, p *app.Principal) {
	src, err := s.app.GetSource(r.Context(), projectID(r, p), r.PathValue("sid"))
	if err != nil {
		s.internal(w, "get source", err)
		return
	}
	writeJSON(w, nethttp.StatusOK, viewSource(src))
}

func (s *Server) patchSource(w nethttp.ResponseWriter, r *nethttp.Request, p *app.Principal) {
	var in sourceInput
	if err := s.decodeJSON(w, r, &in); err != nil {
		writeError(w, err)
		return
	}
	src, err := s.app.PatchSource(r.Context(), projectID(r, p), r.PathValue("sid"), in.toApp())
	if err != nil {
		s.internal(w, "patch source", err)
		return
	}
	writeJSON(w, nethttp.StatusOK, viewSource(src))
}

func (s *Server) deleteSource(w nethttp.ResponseWriter, r *nethttp.Request, p *app.Principal) {
	if err := s.app.DeleteSource(r.Context(), projectID(r, p), r.PathValue("sid")); err != nil {
		s.internal(w, "delete source", err)
		return
	}
	w.WriteHeader(nethttp.StatusNoContent)
}

// receive is the inbox, POST /in/{source_id}: what Kinescope calls. A body
// over 1 MiB is 413, wrong credentials 401, a body that is not a webhook
// 400; an accepted one is committed before the answer, 200
// {"success":true}, which Kinescope wants (a retry of the latest body is
// answered the same and stored once).
func (s *Server) receive(w nethttp.ResponseWriter, r *nethttp.Request, _ *app.Principal) {
	body, err := readLimited(w, r, app.MaxInboxBody)
	if err != nil {
		writeError(w, err)
		return
	}
	res, err := s.app.Receive(r.Context(), app.InboxRequest{SourceID: r.PathValue("source_id"), Header: r.Header, Body: body})
	if err != nil {
		switch kinehook.ErrorCode(err) {
		case kinehook.EUNAUTHORIZED:
			if s.denied != nil {
				if ok, wait := s.denied.Allow(remoteHost(r)); !ok {
					writeRateLimited(w, wait, "requests with wrong credentials from this address")
					return
				}
			}
			s.log.Warn("inbox: webhook refused", "source_id", res.Source.ID, "remote", remoteHost(r), "err", kinehook.ErrorMessage(err))
			if res.Source.Type == kinehook.InboxKinescope {
				w.Header().Set("WWW-Authenticate", `Basic realm="kinehook inbox"`)
			}
			writeStatusError(w, nethttp.StatusUnauthorized, kinehook.EUNAUTHORIZED, kinehook.ErrorMessage(err))
		case kinehook.EMALFORMED:
			s.log.Warn("inbox: body refused", "source_id", res.Source.ID, "err", kinehook.ErrorMessage(err))
			writeError(w, err)
		default:
			s.internal(w, "inbox", err)
		}
		return
	}
	switch {
	case res.Duplicate:
		s.log.Info("inbox: retry of the latest body; stored once", "source_id", res.Source.ID, "event_id", res.Event.ID)
	case res.UnknownType:
		s.log.Warn("inbox: event type not in the catalog; kept", "source_id", res.Source.ID, "event", res.Event.Type, "event_id", res.Event.ID)
	case res.UnknownStatus:
		s.log.Warn("inbox: status not in the catalog; kept", "source_id", res.Source.ID, "event_id", res.Event.ID)
	}
	writeJSON(w, nethttp.StatusOK, map[string]bool{"success": true})
}

// stateFilter reads the query of the media and live lists: status (or
// state for live), since, limit, cursor.
func stateFilter(r *nethttp.Request, statusParam string) (kinehook.StateFilter, error) {
	limit, cursor, err := pageQuery(r, app.DefaultPageLimit)
	if err != nil {
		return kinehook.StateFilter{}, err
	}
	q := r.URL.Query()
	f := kinehook.StateFilter{Limit: limit, Cursor: cursor, Status: q.Get(statusParam)}
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, strings.Replace(v, " ", "+", 1))
		if err != nil {
			return f, &kinehook.Error{Code: kinehook.EINVALID, Field: "since", Message: "since must be an RFC 3339 time, e.g. 2026-01-02T15:04:05Z"}
		}
		f.Since = t
	}
	return f, nil
}

func (s *Server) getMedia(w nethttp.ResponseWriter, r *nethttp.Request, p *app.Principal) {
	m, err := s.app.GetMedia(r.Context(), projectID(r, p), r.PathValue("id"), projectKnown(p))
	if err != nil {
		s.internal(w, "get media", err)
		return
	}
	writeJSON(w, nethttp.StatusOK, m)
}

func (s *Server) listMedia(w nethttp.ResponseWriter, r *nethttp.Request, p *app.Principal) {
	f, err := stateFilter(r, "status")
	if err != nil {
		writeError(w, err)
		return
	}
	ms, next, err := s.app.ListMedia(r.Context(), projectID(r, p), f, projectKnown(p))
	if err != nil {
		s.internal(w, "list media", err)
		return
	}
	writeJSON(w, nethttp.StatusOK, pageBody[*kinehook.MediaState]{Data: ms, NextCursor: next})
}

func (s *Server) getLive(w nethttp.ResponseWriter, r *nethttp.Request, p *app.Principal) {
	l, err := s.app.GetLive(r.Context(), projectID(r, p), r.PathValue("event_id"), projectKnown(p))
	if err != nil {
		s.internal(w, "get live", err)
		return
	}
	writeJSON(w, nethttp.StatusOK, l)
}

func (s *Server) listLive(w nethttp.ResponseWriter, r *nethttp.Request, p *app.Principal) {
	f, err := stateFilter(r, "state")
	if err != nil {
		writeError(w, err)
		return
	}
	ls, next, err := s.app.ListLive(r.Context(), projectID(r, p), f, projectKnown(p))
	if err != nil {
		s.internal(w, "list live", err)
		return
	}
	writeJSON(w, nethttp.StatusOK, pageBody[*kinehook.LiveState]{Data: ls, NextCursor: next})
}
