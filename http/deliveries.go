package http

import (
	nethttp "net/http"
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
	CreatedAt      time.Time               `json:"created_at"`
	UpdatedAt      time.Time               `json:"updated_at"`
}

func viewDelivery(d *kinehook.Delivery) deliveryView {
	v := deliveryView{
		ID: d.ID, EventID: d.EventID, EndpointID: d.EndpointID, Status: d.Status, Attempts: d.Attempts,
		LastStatusCode: d.LastStatusCode, LastError: d.LastError, EventType: d.EventType, ResourceKey: d.ResourceKey,
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
