package dashboard

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/kinehook/kinehook"
)

// statesPerPage is the page size of the Videos and Live lists.
const statesPerPage = 50

// stateCount is one status's share of a project's videos or streams.
type stateCount struct {
	Status string
	N      int64
	// Since is when the longest-standing of them entered the status.
	Since time.Time
	// Link filters the list by this status.
	Link string
}

// videosPage is the Videos page: counts by status, the recent errors with
// their messages, a search by id, and the list (by status).
type videosPage struct {
	Counts []stateCount
	Total  int64
	Errors []*kinehook.MediaState
	// Query is the id searched for; Found is the video (nil: none found).
	Query  string
	Found  *kinehook.MediaState
	Status string
	Rows   []*kinehook.MediaState
	// NextURL pages the list.
	NextURL string
	Error   string
}

// livePage is the Live page: streams by state, since when.
type livePage struct {
	Counts  []stateCount
	Total   int64
	Query   string
	Found   *kinehook.LiveState
	State   string
	Rows    []*kinehook.LiveState
	NextURL string
	Error   string
}

func stateQuery(base, path, statusParam, status, cursor string) string {
	v := url.Values{}
	if status != "" {
		v.Set(statusParam, status)
	}
	if cursor != "" {
		v.Set("cursor", cursor)
	}
	if len(v) == 0 {
		return base + path
	}
	return base + path + "?" + v.Encode()
}

func (h *Handler) counts(r *http.Request, rc *reqCtx, kind kinehook.StateKind, path, param string) ([]stateCount, int64, error) {
	cs, err := h.app.CountStates(r.Context(), rc.project.ID, kind)
	if err != nil {
		return nil, 0, fmt.Errorf("count %s states: %w", kind, err)
	}
	var out []stateCount
	var total int64
	for _, c := range cs {
		out = append(out, stateCount{Status: c.Status, N: c.Count, Since: c.Oldest, Link: stateQuery(rc.base, path, param, c.Status, "")})
		total += c.Count
	}
	return out, total, nil
}

func (h *Handler) videos(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	q := r.URL.Query()
	page := &videosPage{Query: strings.TrimSpace(q.Get("id")), Status: strings.TrimSpace(q.Get("status"))}
	d := &pageData{Session: rc.s, Title: "Videos", Project: rc.project, Base: rc.base, Nav: "videos", Page: page}
	var err error
	if page.Counts, page.Total, err = h.counts(r, rc, kinehook.StateMedia, "/videos", "status"); err != nil {
		h.internalError(w, r, err)
		return
	}
	if page.Query != "" {
		m, err := h.app.GetMedia(r.Context(), rc.project.ID, page.Query, true)
		switch {
		case kinehook.ErrorCode(err) == kinehook.ENOTFOUND:
			page.Error = fmt.Sprintf("No video %q in this project's events.", page.Query)
		case err != nil:
			h.internalError(w, r, err)
			return
		default:
			page.Found = m
		}
	}
	errs, _, err := h.app.ListMedia(r.Context(), rc.project.ID, kinehook.StateFilter{Status: string(kinehook.StatusError), Limit: 10}, true)
	if err != nil {
		h.internalError(w, r, err)
		return
	}
	page.Errors = errs
	rows, next, err := h.app.ListMedia(r.Context(), rc.project.ID, kinehook.StateFilter{Status: page.Status, Cursor: q.Get("cursor"), Limit: statesPerPage}, true)
	if kinehook.ErrorCode(err) == kinehook.EINVALID {
		page.Error = "This page link is no longer valid: " + kinehook.ErrorMessage(err)
		h.render(w, r, http.StatusBadRequest, "videos", d)
		return
	}
	if err != nil {
		h.internalError(w, r, err)
		return
	}
	page.Rows = rows
	if next != "" {
		page.NextURL = stateQuery(rc.base, "/videos", "status", page.Status, next)
	}
	h.render(w, r, http.StatusOK, "videos", d)
}

func (h *Handler) streams(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	q := r.URL.Query()
	page := &livePage{Query: strings.TrimSpace(q.Get("id")), State: strings.TrimSpace(q.Get("state"))}
	d := &pageData{Session: rc.s, Title: "Live", Project: rc.project, Base: rc.base, Nav: "streams", Page: page}
	var err error
	if page.Counts, page.Total, err = h.counts(r, rc, kinehook.StateLive, "/streams", "state"); err != nil {
		h.internalError(w, r, err)
		return
	}
	if page.Query != "" {
		l, err := h.app.GetLive(r.Context(), rc.project.ID, page.Query, true)
		switch {
		case kinehook.ErrorCode(err) == kinehook.ENOTFOUND:
			page.Error = fmt.Sprintf("No live stream %q in this project's events.", page.Query)
		case err != nil:
			h.internalError(w, r, err)
			return
		default:
			page.Found = l
		}
	}
	rows, next, err := h.app.ListLive(r.Context(), rc.project.ID, kinehook.StateFilter{Status: page.State, Cursor: q.Get("cursor"), Limit: statesPerPage}, true)
	if kinehook.ErrorCode(err) == kinehook.EINVALID {
		page.Error = "This page link is no longer valid: " + kinehook.ErrorMessage(err)
		h.render(w, r, http.StatusBadRequest, "streams", d)
		return
	}
	if err != nil {
		h.internalError(w, r, err)
		return
	}
	page.Rows = rows
	if next != "" {
		page.NextURL = stateQuery(rc.base, "/streams", "state", page.State, next)
	}
	h.render(w, r, http.StatusOK, "streams", d)
}
