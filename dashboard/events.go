package dashboard

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/kinehook/kinehook"
)

// eventsPerPage is the event list's page size.
const eventsPerPage = 25

// eventFilterForm is the event list's filter form as typed.
type eventFilterForm struct {
	Type, Status, Resource, Since, Until string
	Types                                []kinehook.EventType
	Statuses                             []kinehook.DeliveryStatus
}

// Active reports whether any filter is set.
func (f *eventFilterForm) Active() bool {
	return f.Type != "" || f.Status != "" || f.Resource != "" || f.Since != "" || f.Until != ""
}

// query encodes the filter (and a cursor) as URL query parameters.
func (f *eventFilterForm) query(cursor string) string {
	v := url.Values{}
	for k, s := range map[string]string{"type": f.Type, "status": f.Status, "resource": f.Resource, "since": f.Since, "until": f.Until, "cursor": cursor} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if len(v) == 0 {
		return ""
	}
	return "?" + v.Encode()
}

// statusCount is how many of an event's deliveries are in one status.
type statusCount struct {
	Status kinehook.DeliveryStatus
	N      int
}

type eventRow struct {
	E      *kinehook.Event
	Counts []statusCount
	Total  int
	// Status and Message are a media event's video status and error text;
	// VideoID is a live.finished recording. They let a busy list be read
	// at a glance.
	Status, Message, VideoID string
}

// describe fills a row's summary from the event's payload.
func (row *eventRow) describe() {
	p, err := kinehook.ParseLenient(row.E.Payload)
	if err != nil {
		return
	}
	switch {
	case p.Media != nil:
		row.Status, row.Message = string(p.Media.Status), p.Media.Message
	case p.Live != nil:
		row.VideoID = p.Live.VideoID
	}
}

type eventListPage struct {
	Filter   *eventFilterForm
	Rows     []eventRow
	NextURL  string
	FirstURL string
	Paged    bool
	Error    string
}

var allStatuses = []kinehook.DeliveryStatus{kinehook.DeliveryPending, kinehook.DeliveryRetrying, kinehook.DeliverySucceeded, kinehook.DeliveryFailed}

// parseEventFilter turns the query into a store filter; a bad value gives
// a message for the user.
func parseEventFilter(q url.Values) (*eventFilterForm, kinehook.EventFilter, string) {
	f := &eventFilterForm{
		Type: strings.TrimSpace(q.Get("type")), Status: strings.TrimSpace(q.Get("status")),
		Resource: strings.TrimSpace(q.Get("resource")), Since: strings.TrimSpace(q.Get("since")), Until: strings.TrimSpace(q.Get("until")),
		Types: slices.Concat(kinehook.EventTypes, kinehook.OperationalEventTypes), Statuses: allStatuses,
	}
	ef := kinehook.EventFilter{Cursor: q.Get("cursor"), Limit: eventsPerPage, ResourceKey: f.Resource}
	if f.Type != "" {
		if t := kinehook.EventType(f.Type); !t.Known() && !t.Operational() {
			return f, ef, fmt.Sprintf("Unknown event type %q.", f.Type)
		}
		ef.Type = kinehook.EventType(f.Type)
	}
	if f.Status != "" {
		st := kinehook.DeliveryStatus(f.Status)
		ok := false
		for _, s := range allStatuses {
			ok = ok || s == st
		}
		if !ok {
			return f, ef, fmt.Sprintf("Unknown delivery status %q.", f.Status)
		}
		ef.DeliveryStatus = st
	}
	if f.Since != "" {
		t, err := parseSince(f.Since)
		if err != nil {
			return f, ef, "From: " + err.Error() + "."
		}
		ef.Since = t
	}
	if f.Until != "" {
		t, err := parseSince(f.Until)
		if err != nil {
			return f, ef, "Until: " + err.Error() + "."
		}
		ef.Until = t
	}
	if !ef.Since.IsZero() && !ef.Until.IsZero() && ef.Until.Before(ef.Since) {
		return f, ef, "The end of the time range is before its start."
	}
	return f, ef, ""
}

func (h *Handler) eventList(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	f, ef, msg := parseEventFilter(r.URL.Query())
	d := &pageData{Session: rc.s, Title: "Events", Project: rc.project, Base: rc.base, Nav: "events", LiveSrc: h.liveSrc(r.Context(), rc, "")}
	page := &eventListPage{Filter: f, Paged: ef.Cursor != "", FirstURL: rc.base + "/events" + f.query("")}
	d.Page = page
	if msg != "" {
		page.Error = msg
		h.render(w, r, http.StatusBadRequest, "events", d)
		return
	}
	evs, next, err := h.app.ListEvents(r.Context(), rc.project.ID, ef, true)
	if kinehook.ErrorCode(err) == kinehook.EINVALID || kinehook.ErrorCode(err) == kinehook.EMALFORMED {
		page.Error = "This page link is no longer valid: " + kinehook.ErrorMessage(err)
		h.render(w, r, http.StatusBadRequest, "events", d)
		return
	}
	if err != nil {
		h.internalError(w, r, fmt.Errorf("list events: %w", err))
		return
	}
	for _, ev := range evs {
		ds, err := h.app.ListDeliveries(r.Context(), rc.project.ID, ev.ID)
		if err != nil {
			h.internalError(w, r, fmt.Errorf("list deliveries: %w", err))
			return
		}
		row := eventRow{E: ev, Counts: countStatuses(ds), Total: len(ds)}
		row.describe()
		page.Rows = append(page.Rows, row)
	}
	if next != "" {
		page.NextURL = rc.base + "/events" + f.query(next)
	}
	h.render(w, r, http.StatusOK, "events", d)
}

func countStatuses(ds []*kinehook.Delivery) []statusCount {
	var out []statusCount
	for _, s := range allStatuses {
		n := 0
		for _, d := range ds {
			if d.Status == s {
				n++
			}
		}
		if n > 0 {
			out = append(out, statusCount{Status: s, N: n})
		}
	}
	return out
}

// deliveryView is one delivery on the event page with its endpoint and attempts.
type deliveryView struct {
	D        *kinehook.Delivery
	Endpoint *kinehook.Endpoint // nil when the endpoint was deleted
	Target   string             // the endpoint's URL, or its destination's summary
	Attempts []attemptView
}

// attemptView is one attempt with its request headers in a stable order.
type attemptView struct {
	A       *kinehook.Attempt
	N       int
	Headers []header
	OK      bool
	Error   string
}

type header struct{ Name, Value string }

type eventPage struct {
	E          *kinehook.Event
	Deliveries []deliveryView
}

func (h *Handler) eventShow(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	ctx := r.Context()
	live := h.liveSrc(ctx, rc, r.PathValue("id"))
	ev, err := h.app.GetEvent(ctx, rc.project.ID, r.PathValue("id"))
	if kinehook.ErrorCode(err) == kinehook.ENOTFOUND {
		h.renderError(w, r, http.StatusNotFound, "There is no such event in this project.")
		return
	}
	if err != nil {
		h.internalError(w, r, err)
		return
	}
	ds, err := h.app.ListDeliveries(ctx, rc.project.ID, ev.ID)
	if err != nil {
		h.internalError(w, r, fmt.Errorf("list deliveries: %w", err))
		return
	}
	page := &eventPage{E: ev}
	endpoints := map[string]*kinehook.Endpoint{}
	for _, d := range ds {
		e, seen := endpoints[d.EndpointID]
		if !seen {
			e, err = h.app.GetEndpoint(ctx, rc.project.ID, d.EndpointID)
			if err != nil && kinehook.ErrorCode(err) != kinehook.ENOTFOUND {
				h.internalError(w, r, fmt.Errorf("get endpoint: %w", err))
				return
			}
			endpoints[d.EndpointID] = e
		}
		as, err := h.app.ListAttempts(ctx, rc.project.ID, d.ID)
		if err != nil {
			h.internalError(w, r, fmt.Errorf("list attempts: %w", err))
			return
		}
		page.Deliveries = append(page.Deliveries, deliveryView{D: d, Endpoint: e, Target: h.choice(e).Target, Attempts: attemptViews(as)})
	}
	h.render(w, r, http.StatusOK, "event", &pageData{Session: rc.s, Title: "Event " + ev.ID, Project: rc.project, Base: rc.base,
		Nav: "events", LiveSrc: live, Page: page})
}

func (h *Handler) deliveryRetry(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if rc.portal != nil {
		h.portalRetry(w, r, rc)
		return
	}
	d, err := h.app.GetDelivery(r.Context(), rc.project.ID, r.PathValue("did"))
	if kinehook.ErrorCode(err) == kinehook.ENOTFOUND {
		h.renderError(w, r, http.StatusNotFound, "There is no such delivery in this project.")
		return
	}
	if err != nil {
		h.internalError(w, r, fmt.Errorf("get delivery: %w", err))
		return
	}
	back := rc.base + "/events/" + d.EventID
	if _, err := h.app.RetryDelivery(r.Context(), rc.project.ID, d.ID); err != nil {
		if code := kinehook.ErrorCode(err); code != kinehook.EINTERNAL {
			h.redirectFlash(w, r, rc.s, back, "error", "The delivery was not retried: "+kinehook.ErrorMessage(err))
			return
		}
		h.internalError(w, r, fmt.Errorf("retry delivery: %w", err))
		return
	}
	h.redirectFlash(w, r, rc.s, back, "ok", "Delivery "+d.ID+" is being sent again.")
}

// attemptViews shows a delivery's attempts, numbered from 1, with their
// request headers in order and credentials redacted.
func attemptViews(as []*kinehook.Attempt) []attemptView {
	var out []attemptView
	for i, a := range as {
		av := attemptView{A: a, N: i + 1, OK: a.StatusCode >= 200 && a.StatusCode < 300 && a.Error == ""}
		if a.Error != fmt.Sprintf("HTTP %d", a.StatusCode) {
			av.Error = a.Error // "HTTP 500" alone repeats the status badge
		}
		for _, k := range sortedKeys(a.RequestHeaders) {
			v := a.RequestHeaders[k]
			if strings.EqualFold(k, "Authorization") && !strings.Contains(v, "[redacted]") {
				v = "[redacted]" // the engine redacts it; never show credentials in any case
			}
			av.Headers = append(av.Headers, header{Name: k, Value: v})
		}
		out = append(out, av)
	}
	return out
}

// sortedKeys returns m's keys in order, for stable header listings.
func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
