package http

import (
	nethttp "net/http"
	"strings"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/app"
)

// deliveryView is a delivery in answers. next_attempt_at is null when no
// attempt is scheduled.
type deliveryView struct {
	ID             string                  `json:"id"`
	EventID        string                  `json:"event_id"`
	EndpointID     string                  `json:"endpoint_id"`
	Status         kinehook.DeliveryStatus `json:"status"`
	Attempts       int                     `json:"attempts"`
	NextAttemptAt  *time.Time              `json:"next_attempt_at"`
	LastStatusCode int                     `json:"last_status_code"`
	LastError      string                  `json:"last_error,omitempty"`
	EventType      kinehook.EventType      `json:"event_type,omitempty"`
	ResourceKey    string                  `json:"resource_key,omitempty"`
	// Resource is the video or live event id the event is about (the
	// resource key; "" when it has none), named as the search filter is.
	Resource  string    `json:"resource"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func viewDelivery(d *kinehook.Delivery) deliveryView {
	v := deliveryView{
		ID: d.ID, EventID: d.EventID, EndpointID: d.EndpointID, Status: d.Status, Attempts: d.Attempts,
		LastStatusCode: d.LastStatusCode, LastError: d.LastError, EventType: d.EventType, ResourceKey: d.ResourceKey, Resource: d.ResourceKey,
		CreatedAt: d.CreatedAt.UTC(), UpdatedAt: d.UpdatedAt.UTC(),
	}
	if !d.NextAttemptAt.IsZero() && !d.Status.Final() {
		t := d.NextAttemptAt.UTC()
		v.NextAttemptAt = &t
	}
	return v
}

// attemptView is one attempt in answers.
type attemptView struct {
	ID           string    `json:"id"`
	AttemptedAt  time.Time `json:"attempted_at"`
	StatusCode   int       `json:"status_code"`
	Error        string    `json:"error"`
	DurationMS   float64   `json:"duration_ms"`
	ResponseBody string    `json:"response_body"`
}

func viewAttempt(a *kinehook.Attempt) attemptView {
	body := a.ResponseBody
	if len(body) > app.MaxResponseBody {
		body = body[:app.MaxResponseBody]
	}
	return attemptView{ID: a.ID, AttemptedAt: a.AttemptedAt.UTC(), StatusCode: a.StatusCode, Error: a.Error, DurationMS: a.DurationMS, ResponseBody: body}
}

func (s *Server) listDeliveries(w nethttp.ResponseWriter, r *nethttp.Request, p *app.Principal) {
	// The store answers not found for an event of another project.
	ds, err := s.app.ListDeliveries(r.Context(), projectID(r, p), r.PathValue("id"))
	if err != nil {
		s.internal(w, "list deliveries", err)
		return
	}
	writeJSON(w, nethttp.StatusOK, listBody[deliveryView]{Data: views(ds, viewDelivery)})
}

func (s *Server) getDelivery(w nethttp.ResponseWriter, r *nethttp.Request, p *app.Principal) {
	d, err := s.app.GetDelivery(r.Context(), projectID(r, p), r.PathValue("did"))
	if err != nil {
		s.internal(w, "get delivery", err)
		return
	}
	writeJSON(w, nethttp.StatusOK, viewDelivery(d))
}

func (s *Server) listAttempts(w nethttp.ResponseWriter, r *nethttp.Request, p *app.Principal) {
	// The store answers not found for a delivery of another project.
	as, err := s.app.ListAttempts(r.Context(), projectID(r, p), r.PathValue("did"))
	if err != nil {
		s.internal(w, "list attempts", err)
		return
	}
	writeJSON(w, nethttp.StatusOK, listBody[attemptView]{Data: views(as, viewAttempt)})
}

// retryDelivery sends a delivery again now, whatever its state.
func (s *Server) retryDelivery(w nethttp.ResponseWriter, r *nethttp.Request, p *app.Principal) {
	d, err := s.app.RetryDelivery(r.Context(), projectID(r, p), r.PathValue("did"))
	if err != nil {
		s.internal(w, "retry delivery", err)
		return
	}
	writeJSON(w, nethttp.StatusAccepted, viewDelivery(d))
}

// searchDeliveries pages a project's deliveries newest first, filtered by
// the query (app.DeliverySearchFromQuery).
func (s *Server) searchDeliveries(w nethttp.ResponseWriter, r *nethttp.Request, p *app.Principal) {
	f, err := deliveryFilter(r)
	if err != nil {
		writeError(w, err)
		return
	}
	ds, next, err := s.app.SearchDeliveries(r.Context(), projectID(r, p), f, projectKnown(p))
	if err != nil {
		s.internal(w, "search deliveries", err)
		return
	}
	writeJSON(w, nethttp.StatusOK, pageBody[deliveryView]{Data: views(ds, viewDelivery), NextCursor: next})
}

// searchEndpointDeliveries is searchDeliveries for the endpoint of the path.
func (s *Server) searchEndpointDeliveries(w nethttp.ResponseWriter, r *nethttp.Request, p *app.Principal) {
	f, err := deliveryFilter(r)
	if err != nil {
		writeError(w, err)
		return
	}
	ds, next, err := s.app.SearchEndpointDeliveries(r.Context(), projectID(r, p), r.PathValue("eid"), f)
	if err != nil {
		s.internal(w, "search endpoint deliveries", err)
		return
	}
	writeJSON(w, nethttp.StatusOK, pageBody[deliveryView]{Data: views(ds, viewDelivery), NextCursor: next})
}

func deliveryFilter(r *nethttp.Request) (kinehook.DeliveryFilter, error) {
	q, err := app.DeliverySearchFromQuery(r.URL.Query())
	if err != nil {
		return kinehook.DeliveryFilter{}, err
	}
	return q.Filter()
}

// retryDeliveries re-queues the project's failed deliveries that the body's
// filters match (app.RetryDeliveries); an empty body retries every failed one.
func (s *Server) retryDeliveries(w nethttp.ResponseWriter, r *nethttp.Request, p *app.Principal) {
	body, err := s.readBody(w, r)
	if err != nil {
		writeError(w, err)
		return
	}
	var in app.RetrySearch
	if len(strings.TrimSpace(string(body))) > 0 {
		if err := s.decodeBytes(body, &in); err != nil {
			writeError(w, err)
			return
		}
	}
	n, err := s.app.RetryDeliveries(r.Context(), projectID(r, p), in.Search(), projectKnown(p))
	if err != nil {
		s.internal(w, "retry deliveries", err)
		return
	}
	writeJSON(w, nethttp.StatusOK, map[string]int{"retried": n})
}
