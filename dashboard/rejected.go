package dashboard

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/kinehook/kinehook"
)

// rejectedRow is one rejected input on its page.
type rejectedRow struct {
	Source, MessageID, Code, Reason, Body string
	BodySize                              int
	Truncated                             bool
	ReceivedAt                            time.Time
}

type rejectedPage struct {
	Rows     []rejectedRow
	NextURL  string
	FirstURL string
	Paged    bool
	Error    string
}

// rejectedList shows the project's rejected inputs, newest first.
func (h *Handler) rejectedList(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	cursor := r.URL.Query().Get("cursor")
	d := &pageData{Session: rc.s, Title: "Rejected inputs", Project: rc.project, Base: rc.base, Nav: "rejected"}
	page := &rejectedPage{Paged: cursor != "", FirstURL: rc.base + "/rejected"}
	d.Page = page
	rs, next, err := h.app.ListRejected(r.Context(), rc.project.ID, cursor, eventsPerPage, true)
	if kinehook.ErrorCode(err) == kinehook.EINVALID {
		page.Error = "This page link is no longer valid: " + kinehook.ErrorMessage(err)
		h.render(w, r, http.StatusBadRequest, "rejected", d)
		return
	}
	if err != nil {
		h.internalError(w, r, fmt.Errorf("list rejected inputs: %w", err))
		return
	}
	for _, x := range rs {
		page.Rows = append(page.Rows, rejectedRow{
			Source: x.Source, MessageID: x.MessageID, Code: x.Code, Reason: x.Reason,
			Body: strings.ToValidUTF8(string(x.Body), "\uFFFD"), BodySize: x.BodySize, Truncated: x.BodySize > len(x.Body),
			ReceivedAt: x.ReceivedAt,
		})
	}
	if next != "" {
		page.NextURL = rc.base + "/rejected?cursor=" + url.QueryEscape(next)
	}
	h.render(w, r, http.StatusOK, "rejected", d)
}
