package http

import (
	"cmp"
	nethttp "net/http"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/app"
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

// toApp is the webhook change the input asks for.
func (in *webhookInput) toApp() app.WebhookInput {
	return app.WebhookInput{Name: in.Name, Endpoint: in.Endpoint, Login: in.Login, Password: in.Password, Events: in.Events}
}

func (s *Server) listWebhooks(w nethttp.ResponseWriter, r *nethttp.Request, p *app.Principal) {
	es, err := s.app.ListWebhooks(r.Context(), p.Project.ID)
	if err != nil {
		s.internal(w, "list endpoints", err)
		return
	}
	writeJSON(w, nethttp.StatusOK, dataBody[[]webhookView]{Data: views(es, viewWebhook)})
}

func (s *Server) createWebhook(w nethttp.ResponseWriter, r *nethttp.Request, p *app.Principal) {
	var in webhookInput
	if err := s.decodeJSON(w, r, &in); err != nil {
		writeError(w, app.WebhookFieldError(err))
		return
	}
	e, err := s.app.CreateWebhook(r.Context(), p.Project.ID, in.toApp())
	if err != nil {
		s.internal(w, "create webhook", err)
		return
	}
	writeJSON(w, nethttp.StatusOK, dataBody[webhookView]{Data: viewWebhook(e)})
}

func (s *Server) getWebhook(w nethttp.ResponseWriter, r *nethttp.Request, p *app.Principal) {
	e, err := s.app.GetWebhook(r.Context(), p.Project.ID, r.PathValue("id"))
	if err != nil {
		s.internal(w, "get webhook", err)
		return
	}
	writeJSON(w, nethttp.StatusOK, dataBody[webhookView]{Data: viewWebhook(e)})
}

// putWebhook updates the fields given (Kinescope's PUT is used for partial
// changes by its clients).
func (s *Server) putWebhook(w nethttp.ResponseWriter, r *nethttp.Request, p *app.Principal) {
	var in webhookInput
	if err := s.decodeJSON(w, r, &in); err != nil {
		writeError(w, app.WebhookFieldError(err))
		return
	}
	e, err := s.app.UpdateWebhook(r.Context(), p.Project.ID, r.PathValue("id"), in.toApp())
	if err != nil {
		s.internal(w, "update webhook", err)
		return
	}
	writeJSON(w, nethttp.StatusOK, dataBody[webhookView]{Data: viewWebhook(e)})
}

func (s *Server) deleteWebhook(w nethttp.ResponseWriter, r *nethttp.Request, p *app.Principal) {
	if err := s.app.DeleteWebhook(r.Context(), p.Project.ID, r.PathValue("id")); err != nil {
		s.internal(w, "delete webhook", err)
		return
	}
	writeJSON(w, nethttp.StatusOK, dataBody[any]{Data: nil})
}
