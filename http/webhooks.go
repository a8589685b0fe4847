package http

import (
	"cmp"
	"fmt"
	nethttp "net/http"
	"slices"
	"time"

	"github.com/kinehook/kinehook"
)

// webhookInput is Kinescope's webhook body: name, endpoint (the URL),
// login/password (HTTP Basic Auth for the receiver) and events (the filter).
type webhookInput struct {
	Name     *string   `json:"name"`
	Endpoint *string   `json:"endpoint"`
	Login    *string   `json:"login"`
	Password *string   `json:"password"`
	Events   *[]string `json:"events"`

	ID        any `json:"id"`
	CreatedAt any `json:"created_at"`
	UpdatedAt any `json:"updated_at"`
}

// webhookView is an endpoint in Kinescope's shape; the password is never shown.
type webhookView struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Endpoint  string    `json:"endpoint"`
	Login     string    `json:"login"`
	Events    []string  `json:"events"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// viewWebhook shows an endpoint as Kinescope's API would: events are the
// concrete types the filter selects (Kinescope's API never answers a
// wildcard such as "live.*", nor an empty list), and an endpoint made
// without a name (through kinehook's own API) is named by its description,
// or its id.
func viewWebhook(e *kinehook.Endpoint) webhookView {
	v := webhookView{ID: e.ID, Name: e.Name, Endpoint: e.URL, Login: e.Login, CreatedAt: e.CreatedAt.UTC(), UpdatedAt: e.UpdatedAt.UTC()}
	if v.Name == "" {
		v.Name = cmp.Or(e.Description, e.ID)
	}
	types := kinehook.ExpandEventTypeFilter(e.EventTypes)
	v.Events = make([]string, len(types))
	for i, t := range types {
		v.Events[i] = string(t)
	}
	return v
}

// endpointInput maps a webhook body onto an endpoint change.
func (in *webhookInput) endpointInput() *endpointInput {
	return &endpointInput{Name: in.Name, URL: in.Endpoint, Login: in.Login, Password: in.Password, EventTypes: in.Events}
}

// webhookFieldError renames endpoint field names in errors to Kinescope's.
func webhookFieldError(err error) error {
	ke, ok := err.(*kinehook.Error)
	if !ok {
		return err
	}
	out := *ke
	switch out.Field {
	case "url":
		out.Field = "endpoint"
	case "event_types":
		out.Field = "events"
	}
	return &out
}

func (s *Server) listWebhooks(w nethttp.ResponseWriter, r *nethttp.Request, p *principal) {
	es, err := s.store.ListEndpoints(r.Context(), p.project.ID)
	if err != nil {
		s.internal(w, "list endpoints", err)
		return
	}
	// The endpoint of the project's operations_url is kinehook's, not a
	// Kinescope webhook: Kinescope's clients neither see nor change it.
	es = slices.DeleteFunc(es, func(e *kinehook.Endpoint) bool { return kinehook.IsOperationsEndpoint(e.ID) })
	writeJSON(w, nethttp.StatusOK, dataBody[[]webhookView]{Data: views(es, viewWebhook)})
}

// webhookID is the {id} of a /v1/webhooks route, or an error when it names
// no Kinescope webhook.
func webhookID(r *nethttp.Request) (string, error) {
	id := r.PathValue("id")
	if kinehook.IsOperationsEndpoint(id) {
		return "", &kinehook.Error{Code: kinehook.ENOTFOUND, Message: fmt.Sprintf("webhook %s not found", id)}
	}
	return id, nil
}

func (s *Server) createWebhook(w nethttp.ResponseWriter, r *nethttp.Request, p *principal) {
	var in webhookInput
	if err := s.decodeJSON(w, r, &in); err != nil {
		writeError(w, webhookFieldError(err))
		return
	}
	switch {
	case in.Name == nil || *in.Name == "":
		writeError(w, &kinehook.Error{Code: kinehook.EINVALID, Field: "name", Message: "name is required"})
		return
	case in.Endpoint == nil || *in.Endpoint == "":
		writeError(w, &kinehook.Error{Code: kinehook.EINVALID, Field: "endpoint", Message: "endpoint is required"})
		return
	case in.Events == nil || len(*in.Events) == 0:
		writeError(w, &kinehook.Error{Code: kinehook.EINVALID, Field: "events", Message: "events is required: a list of event types such as [\"media.update.status\"]"})
		return
	}
	e, err := s.newEndpoint(r, p.project.ID, in.endpointInput())
	if err != nil {
		s.internal(w, "create webhook", webhookFieldError(err))
		return
	}
	writeJSON(w, nethttp.StatusOK, dataBody[webhookView]{Data: viewWebhook(e)})
}

func (s *Server) getWebhook(w nethttp.ResponseWriter, r *nethttp.Request, p *principal) {
	id, err := webhookID(r)
	if err != nil {
		writeError(w, err)
		return
	}
	e, err := s.store.GetEndpoint(r.Context(), p.project.ID, id)
	if err != nil {
		s.internal(w, "get webhook", err)
		return
	}
	writeJSON(w, nethttp.StatusOK, dataBody[webhookView]{Data: viewWebhook(e)})
}

// putWebhook updates the fields given (Kinescope's PUT is used for partial
// changes by its clients).
func (s *Server) putWebhook(w nethttp.ResponseWriter, r *nethttp.Request, p *principal) {
	var in webhookInput
	if err := s.decodeJSON(w, r, &in); err != nil {
		writeError(w, webhookFieldError(err))
		return
	}
	if in.Events != nil && len(*in.Events) == 0 {
		writeError(w, &kinehook.Error{Code: kinehook.EINVALID, Field: "events", Message: "events must list at least one event type"})
		return
	}
	id, err := webhookID(r)
	if err != nil {
		writeError(w, err)
		return
	}
	e, err := s.updateEndpoint(r, p.project.ID, id, func(e *kinehook.Endpoint) error {
		return s.applyEndpoint(e, in.endpointInput(), false)
	})
	if err != nil {
		s.internal(w, "update webhook", webhookFieldError(err))
		return
	}
	writeJSON(w, nethttp.StatusOK, dataBody[webhookView]{Data: viewWebhook(e)})
}

func (s *Server) deleteWebhook(w nethttp.ResponseWriter, r *nethttp.Request, p *principal) {
	pid := p.project.ID
	id, err := webhookID(r)
	if err != nil {
		writeError(w, err)
		return
	}
	if err := s.store.DeleteEndpoint(r.Context(), pid, id); err != nil {
		s.internal(w, "delete webhook", err)
		return
	}
	s.disp.EndpointChanged(r.Context(), pid, id)
	writeJSON(w, nethttp.StatusOK, dataBody[any]{Data: nil})
}
