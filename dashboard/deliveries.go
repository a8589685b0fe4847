package dashboard

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/app"
)

// deliveriesPerPage is the delivery log's page size.
const deliveriesPerPage = 25

// failedCountUpTo bounds how many failed deliveries the log counts for its
// bulk retry button ("more than 100" beyond).
const failedCountUpTo = 100

// deliveryLog is a page of the delivery search with its filter form: the
// project's delivery log, or an endpoint's on its page.
type deliveryLog struct {
	// Action is the page the filter form and the paging links go to.
	Action string
	// EndpointID is set on an endpoint's page: the log is that endpoint's.
	EndpointID string
	// Status, Event, Resource and Endpoint are the filters as typed.
	Status, Event, Resource, Endpoint string
	Types                             []kinehook.EventType
	Statuses                          []kinehook.DeliveryStatus
	Endpoints                         []endpointChoice
	Rows                              []deliveryRow
	NextURL, FirstURL                 string
	Paged                             bool
	Error                             string
	// RetryURL is where the bulk retry posts; Failed is how many failed
	// deliveries the filters match (up to failedCountUpTo; FailedMore beyond).
	RetryURL   string
	Failed     int
	FailedMore bool
	// Portal: the customer portal's log (a retry button per row instead
	// of the event page's details).
	Portal bool
}

// endpointChoice is an endpoint (nil when deleted) with its Target, the
// name people read for it: its URL, or its destination's summary.
type endpointChoice struct {
	E      *kinehook.Endpoint
	Target string
}

// deliveryRow is one delivery of the log, with its endpoint (nil when deleted).
type deliveryRow struct {
	D        *kinehook.Delivery
	Endpoint *kinehook.Endpoint
	Target   string // the endpoint's URL, or its destination's summary
}

// Active reports whether a filter is set.
func (l *deliveryLog) Active() bool {
	return l.Status != "" || l.Event != "" || l.Resource != "" || l.Endpoint != ""
}

// query encodes the filters (and a cursor) as a query string, "" for none.
func (l *deliveryLog) query(cursor string) string {
	v := url.Values{}
	for k, s := range map[string]string{"status": l.Status, "event": l.Event, "resource": l.Resource, "endpoint_id": l.Endpoint, "cursor": cursor} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if len(v) == 0 {
		return ""
	}
	return "?" + v.Encode()
}

// search is the log's filters as the app's search (without paging).
func (l *deliveryLog) search() app.DeliverySearch {
	s := app.DeliverySearch{EndpointID: l.Endpoint, Event: l.Event, Resource: l.Resource}
	if l.EndpointID != "" {
		s.EndpointID = l.EndpointID
	}
	if l.Status != "" {
		s.Statuses = []string{l.Status}
	}
	return s
}

// loadDeliveryLog reads the filters from the query and fetches one page of
// the search, its rows' endpoints and the count behind the bulk retry. An
// endpoint's log (eid set) is its deliveries only. A filter the app refuses
// is shown as the log's error.
func (h *Handler) loadDeliveryLog(ctx context.Context, rc *reqCtx, q url.Values, ep *kinehook.Endpoint, action string) (*deliveryLog, error) {
	l := &deliveryLog{Action: action,
		Status: strings.TrimSpace(q.Get("status")), Event: strings.TrimSpace(q.Get("event")), Resource: strings.TrimSpace(q.Get("resource")),
		Statuses: allStatuses}
	eid := ""
	l.Portal = rc.portal != nil
	for _, t := range slices.Concat(kinehook.EventTypes, kinehook.OperationalEventTypes) {
		if (ep == nil || ep.Matches(t)) && (rc.portal == nil || rc.portal.AllowsType(t)) { // an endpoint's log offers the types it receives
			l.Types = append(l.Types, t)
		}
	}
	if ep != nil {
		eid, l.EndpointID = ep.ID, ep.ID
	}
	if eid == "" {
		l.Endpoint = strings.TrimSpace(q.Get("endpoint_id"))
		eps, err := h.app.ListEndpoints(ctx, rc.project.ID)
		if err != nil {
			return nil, fmt.Errorf("list endpoints: %w", err)
		}
		for _, e := range eps {
			l.Endpoints = append(l.Endpoints, h.choice(e))
		}
		l.RetryURL = rc.base + "/deliveries/retry"
	} else {
		l.RetryURL = rc.base + "/endpoints/" + eid + "/deliveries/retry"
	}
	cursor := q.Get("cursor")
	l.Paged = cursor != ""
	l.FirstURL = action + l.query("")
	s := l.search()
	s.Cursor, s.Limit = cursor, strconv.Itoa(deliveriesPerPage)
	f, err := s.Filter()
	if err != nil {
		l.Error = "The filter is not valid: " + kinehook.ErrorMessage(err)
		return l, nil
	}
	ds, next, err := h.searchDeliveries(ctx, rc, eid, f)
	switch code := kinehook.ErrorCode(err); {
	case code == kinehook.EINVALID || code == kinehook.EMALFORMED:
		l.Error = "This page link is no longer valid: " + kinehook.ErrorMessage(err)
		return l, nil
	case err != nil:
		return nil, err
	}
	// Each endpoint is looked up and named once, however many rows it has.
	known := map[string]endpointChoice{}
	for _, c := range l.Endpoints {
		known[c.E.ID] = c
	}
	for _, d := range ds {
		c, seen := known[d.EndpointID]
		if !seen {
			e, err := h.app.GetEndpoint(ctx, rc.project.ID, d.EndpointID)
			if err != nil && kinehook.ErrorCode(err) != kinehook.ENOTFOUND {
				return nil, fmt.Errorf("get endpoint: %w", err)
			}
			c = h.choice(e)
			known[d.EndpointID] = c
		}
		l.Rows = append(l.Rows, deliveryRow{D: d, Endpoint: c.E, Target: c.Target})
	}
	if next != "" {
		l.NextURL = action + l.query(next)
	}
	// The failed deliveries the bulk retry would re-send.
	if l.Status == "" || l.Status == string(kinehook.DeliveryFailed) {
		fs := l.search()
		fs.Statuses, fs.Limit = []string{string(kinehook.DeliveryFailed)}, strconv.Itoa(failedCountUpTo+1)
		ff, err := fs.Filter()
		if err == nil {
			failed, _, err := h.searchDeliveries(ctx, rc, eid, ff)
			if err != nil {
				return nil, fmt.Errorf("count failed deliveries: %w", err)
			}
			l.Failed, l.FailedMore = min(len(failed), failedCountUpTo), len(failed) > failedCountUpTo
		}
	}
	return l, nil
}

// searchDeliveries runs the log's search through the app: in the customer
// portal, an endpoint's deliveries of the types the session sees.
func (h *Handler) searchDeliveries(ctx context.Context, rc *reqCtx, eid string, f kinehook.DeliveryFilter) ([]*kinehook.Delivery, string, error) {
	if rc.portal != nil {
		return h.app.PortalSearchDeliveries(ctx, rc.portal, eid, f)
	}
	return h.app.SearchDeliveries(ctx, rc.project.ID, f, true)
}

// deliveryList is the project's delivery log.
func (h *Handler) deliveryList(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	l, err := h.loadDeliveryLog(r.Context(), rc, r.URL.Query(), nil, rc.base+"/deliveries")
	if err != nil {
		h.internalError(w, r, fmt.Errorf("delivery log: %w", err))
		return
	}
	status := http.StatusOK
	if l.Error != "" {
		status = http.StatusBadRequest
	}
	h.render(w, r, status, "deliveries", &pageData{Session: rc.s, Title: "Deliveries", Project: rc.project, Base: rc.base,
		Nav: "deliveries", LiveSrc: h.liveSrc(r.Context(), rc, ""), Page: l})
}

// deliveriesRetry re-sends the failed deliveries the project log's filters
// match (the bulk retry), then shows the log again.
func (h *Handler) deliveriesRetry(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	h.bulkRetry(w, r, rc, "", rc.base+"/deliveries")
}

// endpointDeliveriesRetry is the bulk retry of an endpoint's page.
func (h *Handler) endpointDeliveriesRetry(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	e := h.loadEndpoint(w, r, rc)
	if e == nil {
		return
	}
	h.bulkRetry(w, r, rc, e.ID, rc.base+"/endpoints/"+e.ID)
}

func (h *Handler) bulkRetry(w http.ResponseWriter, r *http.Request, rc *reqCtx, eid, back string) {
	l := &deliveryLog{EndpointID: eid, Event: strings.TrimSpace(r.PostForm.Get("event")), Resource: strings.TrimSpace(r.PostForm.Get("resource"))}
	if eid == "" {
		l.Endpoint = strings.TrimSpace(r.PostForm.Get("endpoint_id"))
	}
	to := back + l.query("") + "#delivery-log"
	var n int
	var err error
	if rc.portal != nil {
		n, err = h.app.PortalRetryDeliveries(r.Context(), rc.portal, eid, l.search())
	} else {
		n, err = h.app.RetryDeliveries(r.Context(), rc.project.ID, l.search(), true)
	}
	if err != nil {
		if code := kinehook.ErrorCode(err); code != kinehook.EINTERNAL {
			h.redirectFlash(w, r, rc.s, to, "error", "Nothing was re-sent: "+kinehook.ErrorMessage(err))
			return
		}
		h.internalError(w, r, fmt.Errorf("retry deliveries: %w", err))
		return
	}
	h.redirectFlash(w, r, rc.s, to, "ok", fmt.Sprintf("Re-sending %d failed deliver%s, oldest first.", n, map[bool]string{true: "y", false: "ies"}[n == 1]))
}

// search finds what the header's search box names: an event (msg_...), a
// delivery (dlv_..., on its event's page), an endpoint (ep_...), or else a
// resource (the delivery log filtered by it).
func (h *Handler) search(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	ctx := r.Context()
	notFound := func(what string) {
		h.redirectFlash(w, r, rc.s, rc.base+"/deliveries", "error", fmt.Sprintf("There is no %s %s in this project.", what, q))
	}
	check := func(err error, what string) bool {
		switch {
		case kinehook.ErrorCode(err) == kinehook.ENOTFOUND:
			notFound(what)
			return false
		case err != nil:
			h.internalError(w, r, fmt.Errorf("search %s: %w", what, err))
			return false
		}
		return true
	}
	switch {
	case q == "":
		http.Redirect(w, r, rc.base+"/deliveries", http.StatusSeeOther)
	case strings.HasPrefix(q, kinehook.PrefixEvent+"_"):
		if _, err := h.app.GetEvent(ctx, rc.project.ID, q); check(err, "event") {
			http.Redirect(w, r, rc.base+"/events/"+q, http.StatusSeeOther)
		}
	case strings.HasPrefix(q, kinehook.PrefixDelivery+"_"):
		if d, err := h.app.GetDelivery(ctx, rc.project.ID, q); check(err, "delivery") {
			http.Redirect(w, r, rc.base+"/events/"+d.EventID+"#"+d.ID, http.StatusSeeOther)
		}
	case strings.HasPrefix(q, kinehook.PrefixEndpoint+"_"):
		if _, err := h.app.GetEndpoint(ctx, rc.project.ID, q); check(err, "endpoint") {
			http.Redirect(w, r, rc.base+"/endpoints/"+q, http.StatusSeeOther)
		}
	default:
		http.Redirect(w, r, rc.base+"/deliveries?"+url.Values{"resource": {q}}.Encode(), http.StatusSeeOther)
	}
}
