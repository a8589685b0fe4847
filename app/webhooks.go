package app

import (
	"context"
	"fmt"
	"slices"

	"github.com/kinehook/kinehook"
)

// WebhookInput is an endpoint in Kinescope's webhook shape: name, endpoint
// (the URL), login/password (HTTP Basic Auth for the receiver) and events
// (the filter). Nil fields are left alone by an update.
type WebhookInput struct {
	Name     *string
	Endpoint *string
	Login    *string
	Password *string
	Events   *[]string
}

// endpointInput maps a webhook onto an endpoint change.
func (in *WebhookInput) endpointInput() EndpointInput {
	return EndpointInput{Name: in.Name, URL: in.Endpoint, Login: in.Login, Password: in.Password, EventTypes: in.Events}
}

// WebhookFieldError renames endpoint field names in errors to Kinescope's
// (url -> endpoint, event_types -> events).
func WebhookFieldError(err error) error {
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

// webhookID refuses an id that names no Kinescope webhook: the endpoint of
// the project's operations_url is kinehook's, and Kinescope's clients
// neither see nor change it.
func webhookID(id string) error {
	if kinehook.IsOperationsEndpoint(id) {
		return &kinehook.Error{Code: kinehook.ENOTFOUND, Message: fmt.Sprintf("webhook %s not found", id)}
	}
	return nil
}

// notWebhook is the facade's answer for an endpoint of another type
// (a NATS destination, ...): Kinescope's API knows only webhooks.
func notWebhook(id string) error {
	return &kinehook.Error{Code: kinehook.ENOTFOUND, Message: fmt.Sprintf("webhook %s not found", id)}
}

// ListWebhooks lists a project's webhook endpoints but its operations
// endpoint: endpoints of other types are not Kinescope webhooks.
func (a *App) ListWebhooks(ctx context.Context, pid string) ([]*kinehook.Endpoint, error) {
	es, err := a.store.ListEndpoints(ctx, pid)
	if err != nil {
		return nil, fmt.Errorf("list endpoints: %w", err)
	}
	return slices.DeleteFunc(es, func(e *kinehook.Endpoint) bool {
		return kinehook.IsOperationsEndpoint(e.ID) || e.TypeOf() != kinehook.EndpointWebhook
	}), nil
}

// GetWebhook returns one webhook of a project (ENOTFOUND for an endpoint
// of another type).
func (a *App) GetWebhook(ctx context.Context, pid, id string) (*kinehook.Endpoint, error) {
	if err := webhookID(id); err != nil {
		return nil, err
	}
	e, err := a.store.GetEndpoint(ctx, pid, id)
	if err != nil {
		return nil, err
	}
	if e.TypeOf() != kinehook.EndpointWebhook {
		return nil, notWebhook(id)
	}
	return e, nil
}

// CreateWebhook makes an endpoint from Kinescope's webhook shape, where
// name, endpoint and events are required. Errors name Kinescope's fields.
func (a *App) CreateWebhook(ctx context.Context, pid string, in WebhookInput) (*kinehook.Endpoint, error) {
	switch {
	case in.Name == nil || *in.Name == "":
		return nil, &kinehook.Error{Code: kinehook.EINVALID, Field: "name", Message: "name is required"}
	case in.Endpoint == nil || *in.Endpoint == "":
		return nil, &kinehook.Error{Code: kinehook.EINVALID, Field: "endpoint", Message: "endpoint is required"}
	case in.Events == nil || len(*in.Events) == 0:
		return nil, &kinehook.Error{Code: kinehook.EINVALID, Field: "events", Message: "events is required: a list of event types such as [\"media.update.status\"]"}
	}
	e, err := a.CreateEndpoint(ctx, pid, in.endpointInput())
	if err != nil {
		return nil, WebhookFieldError(err)
	}
	return e, nil
}

// UpdateWebhook changes the given fields of a webhook (Kinescope's PUT is
// used for partial changes by its clients); events, when given, must not be
// empty.
func (a *App) UpdateWebhook(ctx context.Context, pid, id string, in WebhookInput) (*kinehook.Endpoint, error) {
	if in.Events != nil && len(*in.Events) == 0 {
		return nil, &kinehook.Error{Code: kinehook.EINVALID, Field: "events", Message: "events must list at least one event type"}
	}
	if err := webhookID(id); err != nil {
		return nil, err
	}
	ein := in.endpointInput()
	e, err := a.UpdateEndpoint(ctx, pid, id, func(e *kinehook.Endpoint) error {
		if e.TypeOf() != kinehook.EndpointWebhook {
			return notWebhook(id)
		}
		return a.applyEndpoint(e, &ein, false)
	})
	if err != nil {
		return nil, WebhookFieldError(err)
	}
	return e, nil
}

// DeleteWebhook removes a webhook and tells the engine.
func (a *App) DeleteWebhook(ctx context.Context, pid, id string) error {
	if _, err := a.GetWebhook(ctx, pid, id); err != nil {
		return err
	}
	return a.DeleteEndpoint(ctx, pid, id)
}
