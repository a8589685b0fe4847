package http

import (
	nethttp "net/http"

	"github.com/kinehook/kinehook/app"
)

// authKind is who may call a route.
type authKind int

const (
	authNone     authKind = iota // public
	authAdmin                    // the admin key only
	authProject                  // the admin key or the key of the project {pid}
	authWebhooks                 // a project key only (Kinescope's API shape)
	authAnyKey                   // any valid key; the handler scopes what it shows
)

// route is one entry of the routing table.
type route struct {
	Method  string
	Pattern string
	Auth    authKind
	handle  func(s *Server, w nethttp.ResponseWriter, r *nethttp.Request, p *app.Principal)
	segs    []string
}

// routeTable is every route of the API, in one place: the router serves it
// and a test compares it with openapi.json.
func routeTable() []*route {
	return []*route{
		{Method: "GET", Pattern: "/healthz", Auth: authNone, handle: (*Server).healthz},
		{Method: "GET", Pattern: "/readyz", Auth: authNone, handle: (*Server).readyz},
		{Method: "GET", Pattern: "/openapi.json", Auth: authNone, handle: (*Server).openapi},
		{Method: "GET", Pattern: "/metrics", Auth: authNone, handle: (*Server).metrics},
		{Method: "GET", Pattern: "/v1/event-types", Auth: authNone, handle: (*Server).eventTypes},

		{Method: "POST", Pattern: "/v1/projects", Auth: authAdmin, handle: (*Server).createProject},
		{Method: "GET", Pattern: "/v1/projects", Auth: authAnyKey, handle: (*Server).listProjects},
		{Method: "GET", Pattern: "/v1/projects/{pid}", Auth: authProject, handle: (*Server).getProject},
		{Method: "PATCH", Pattern: "/v1/projects/{pid}", Auth: authProject, handle: (*Server).patchProject},

		{Method: "POST", Pattern: "/v1/projects/{pid}/endpoints", Auth: authProject, handle: (*Server).createEndpoint},
		{Method: "GET", Pattern: "/v1/projects/{pid}/endpoints", Auth: authProject, handle: (*Server).listEndpoints},
		{Method: "GET", Pattern: "/v1/projects/{pid}/endpoints/{eid}", Auth: authProject, handle: (*Server).getEndpoint},
		{Method: "PATCH", Pattern: "/v1/projects/{pid}/endpoints/{eid}", Auth: authProject, handle: (*Server).patchEndpoint},
		{Method: "DELETE", Pattern: "/v1/projects/{pid}/endpoints/{eid}", Auth: authProject, handle: (*Server).deleteEndpoint},
		{Method: "GET", Pattern: "/v1/projects/{pid}/endpoints/{eid}/secret", Auth: authProject, handle: (*Server).getSecret},
		{Method: "POST", Pattern: "/v1/projects/{pid}/endpoints/{eid}/secret/rotate", Auth: authProject, handle: (*Server).rotateSecret},
		{Method: "POST", Pattern: "/v1/projects/{pid}/endpoints/{eid}/recover", Auth: authProject, handle: (*Server).recoverEndpoint},

		{Method: "POST", Pattern: "/v1/projects/{pid}/events", Auth: authProject, handle: (*Server).createEvent},
		{Method: "POST", Pattern: "/v1/projects/{pid}/events/batch", Auth: authProject, handle: (*Server).createEvents},
		{Method: "GET", Pattern: "/v1/projects/{pid}/events", Auth: authProject, handle: (*Server).listEvents},
		{Method: "GET", Pattern: "/v1/projects/{pid}/events/{id}", Auth: authProject, handle: (*Server).getEvent},
		{Method: "GET", Pattern: "/v1/projects/{pid}/events/{id}/deliveries", Auth: authProject, handle: (*Server).listDeliveries},

		{Method: "GET", Pattern: "/v1/projects/{pid}/rejected", Auth: authProject, handle: (*Server).listRejected},

		{Method: "GET", Pattern: "/v1/projects/{pid}/deliveries/{did}", Auth: authProject, handle: (*Server).getDelivery},
		{Method: "GET", Pattern: "/v1/projects/{pid}/deliveries/{did}/attempts", Auth: authProject, handle: (*Server).listAttempts},
		{Method: "POST", Pattern: "/v1/projects/{pid}/deliveries/{did}/retry", Auth: authProject, handle: (*Server).retryDelivery},

		{Method: "GET", Pattern: "/v1/webhooks", Auth: authWebhooks, handle: (*Server).listWebhooks},
		{Method: "POST", Pattern: "/v1/webhooks", Auth: authWebhooks, handle: (*Server).createWebhook},
		{Method: "GET", Pattern: "/v1/webhooks/{id}", Auth: authWebhooks, handle: (*Server).getWebhook},
		{Method: "PUT", Pattern: "/v1/webhooks/{id}", Auth: authWebhooks, handle: (*Server).putWebhook},
		{Method: "DELETE", Pattern: "/v1/webhooks/{id}", Auth: authWebhooks, handle: (*Server).deleteWebhook},
	}
}

// Route is a method and path pattern the API serves (for documentation and tools).
type Route struct {
	Method  string
	Pattern string
}

// Routes lists the API's routes in table order.
func Routes() []Route {
	var out []Route
	for _, r := range routeTable() {
		out = append(out, Route{Method: r.Method, Pattern: r.Pattern})
	}
	return out
}
