package http

import (
	"fmt"
	nethttp "net/http"
	"strconv"
	"strings"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/app"
)

// rejectedView is one rejected input of an ingest source as the API shows
// it: the body's first bytes as text (bytes that are not UTF-8 shown as
// U+FFFD), its whole size, and whether the excerpt is all of it.
type rejectedView struct {
	ID         string    `json:"id"`
	Source     string    `json:"source"`
	MessageID  string    `json:"message_id"`
	Code       string    `json:"code"`
	Reason     string    `json:"reason"`
	Body       string    `json:"body"`
	BodySize   int       `json:"body_size"`
	Truncated  bool      `json:"truncated"`
	ReceivedAt time.Time `json:"received_at"`
}

func viewRejected(r *kinehook.RejectedInput) rejectedView {
	return rejectedView{
		ID: r.ID, Source: r.Source, MessageID: r.MessageID, Code: r.Code, Reason: r.Reason,
		Body: strings.ToValidUTF8(string(r.Body), "\uFFFD"), BodySize: r.BodySize, Truncated: r.BodySize > len(r.Body),
		ReceivedAt: r.ReceivedAt,
	}
}

// listRejected pages the project's rejected inputs newest first.
func (s *Server) listRejected(w nethttp.ResponseWriter, r *nethttp.Request, p *app.Principal) {
	q := r.URL.Query()
	limit := app.DefaultPageLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > app.MaxPageLimit {
			writeError(w, &kinehook.Error{Code: kinehook.EINVALID, Field: "limit", Message: fmt.Sprintf("limit must be an integer from 1 to %d", app.MaxPageLimit)})
			return
		}
		limit = n
	}
	rs, next, err := s.app.ListRejected(r.Context(), projectID(r, p), q.Get("cursor"), limit, projectKnown(p))
	if err != nil {
		s.internal(w, "list rejected inputs", err)
		return
	}
	writeJSON(w, nethttp.StatusOK, pageBody[rejectedView]{Data: views(rs, viewRejected), NextCursor: next})
}
