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
	// Query lists the query parameters the route accepts; any other one is
	// answered 400 before the handler runs (a route that lists none accepts
	// none), so a typo never passes as an unfiltered answer.
	Query []string
	// Ingest marks the routes that post events: the only ones an ingest
	// key may use (a read key may use every GET).
	Ingest bool
	handle func(s *Server, w nethttp.ResponseWriter, r *nethttp.Request, p *app.Principal)
	segs   []string
}

// op is what a request on rt does, as key scopes see it.
func (rt *route) op() app.Op {
	switch {
	case rt.Ingest:
		return app.OpIngest
	case rt.Method == nethttp.MethodGet:
		return app.OpRead
	default:
		return app.OpChange
	}
}

// Query parameters shared by several routes.
var (
	pageParams  = []string{"limit", "cursor"}
	eventParams = []string{"limit", "cursor", "event", "resource_id", "source_id", "status", "since", "until"}
	// kinescopeListParams are what Kinescope's API accepts on its lists
	// (https://docs.kinescope.com/developer-guides/api-general-rules/):
	// its clients may send them to /v1/webhooks, which accepts and
	// ignores them (it answers every webhook of the project at once).
	kinescopeListParams = []string{"page", "per_page", "order"}
	// statsParams are the statistics routes' window.
	statsParams = []string{"window"}
	// searchParams are the delivery search's filters and paging.
	searchParams = []string{"limit", "cursor", "endpoint_id", "status", "event", "resource", "resource_id", "event_id", "since", "until"}
)

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
		{Method: "DELETE", Pattern: "/v1/projects/{pid}", Auth: authAdmin, handle: (*Server).deleteProject},

		{Method: "POST", Pattern: "/v1/projects/{pid}/keys", Auth: authProject, handle: (*Server).createKey},
		{Method: "GET", Pattern: "/v1/projects/{pid}/keys", Auth: authProject, handle: (*Server).listKeys},
		{Method: "DELETE", Pattern: "/v1/projects/{pid}/keys/{kid}", Auth: authProject, handle: (*Server).revokeKey},
		{Method: "POST", Pattern: "/v1/projects/{pid}/portal-sessions", Auth: authProject, handle: (*Server).createPortalSession},
		{Method: "GET", Pattern: "/v1/projects/{pid}/portal-sessions", Auth: authProject, handle: (*Server).listPortalSessions},
		{Method: "DELETE", Pattern: "/v1/projects/{pid}/portal-sessions/{id}", Auth: authProject, handle: (*Server).revokePortalSession},

		{Method: "POST", Pattern: "/v1/projects/{pid}/endpoints", Auth: authProject, handle: (*Server).createEndpoint},
		{Method: "GET", Pattern: "/v1/projects/{pid}/endpoints", Auth: authProject, Query: pageParams, handle: (*Server).listEndpoints},
		{Method: "GET", Pattern: "/v1/projects/{pid}/endpoints/{eid}", Auth: authProject, handle: (*Server).getEndpoint},
		{Method: "PATCH", Pattern: "/v1/projects/{pid}/endpoints/{eid}", Auth: authProject, handle: (*Server).patchEndpoint},
		{Method: "DELETE", Pattern: "/v1/projects/{pid}/endpoints/{eid}", Auth: authProject, handle: (*Server).deleteEndpoint},
		{Method: "GET", Pattern: "/v1/projects/{pid}/endpoints/{eid}/secret", Auth: authProject, handle: (*Server).getSecret},
		{Method: "POST", Pattern: "/v1/projects/{pid}/endpoints/{eid}/secret/rotate", Auth: authProject, handle: (*Server).rotateSecret},
		{Method: "POST", Pattern: "/v1/projects/{pid}/endpoints/{eid}/recover", Auth: authProject, handle: (*Server).recoverEndpoint},
		{Method: "GET", Pattern: "/v1/projects/{pid}/endpoints/{eid}/stats", Auth: authProject, Query: statsParams, handle: (*Server).endpointStats},
		{Method: "POST", Pattern: "/v1/projects/{pid}/endpoints/{eid}/test", Auth: authProject, handle: (*Server).testEndpoint},
		{Method: "GET", Pattern: "/v1/projects/{pid}/stats", Auth: authProject, Query: statsParams, handle: (*Server).projectStats},
		{Method: "GET", Pattern: "/v1/projects/{pid}/endpoints/{eid}/deliveries", Auth: authProject, Query: searchParams, handle: (*Server).searchEndpointDeliveries},
		{Method: "GET", Pattern: "/v1/projects/{pid}/listen", Auth: authProject, Query: []string{"events", "endpoint_id"}, handle: (*Server).listen},

		{Method: "POST", Pattern: "/v1/projects/{pid}/events", Auth: authProject, Ingest: true, handle: (*Server).createEvent},
		{Method: "POST", Pattern: "/v1/projects/{pid}/events/batch", Auth: authProject, Ingest: true, handle: (*Server).createEvents},
		{Method: "GET", Pattern: "/v1/projects/{pid}/events", Auth: authProject, Query: eventParams, handle: (*Server).listEvents},
		{Method: "GET", Pattern: "/v1/projects/{pid}/events/{id}", Auth: authProject, handle: (*Server).getEvent},
		{Method: "GET", Pattern: "/v1/projects/{pid}/events/{id}/deliveries", Auth: authProject, handle: (*Server).listDeliveries},

		{Method: "GET", Pattern: "/v1/projects/{pid}/deliveries", Auth: authProject, Query: searchParams, handle: (*Server).searchDeliveries},
		{Method: "POST", Pattern: "/v1/projects/{pid}/deliveries/retry", Auth: authProject, handle: (*Server).retryDeliveries},

		{Method: "GET", Pattern: "/v1/projects/{pid}/rejected", Auth: authProject, Query: pageParams, handle: (*Server).listRejected},

		{Method: "GET", Pattern: "/v1/projects/{pid}/deliveries/{did}", Auth: authProject, handle: (*Server).getDelivery},
		{Method: "GET", Pattern: "/v1/projects/{pid}/deliveries/{did}/attempts", Auth: authProject, handle: (*Server).listAttempts},
		{Method: "POST", Pattern: "/v1/projects/{pid}/deliveries/{did}/retry", Auth: authProject, handle: (*Server).retryDelivery},

		{Method: "POST", Pattern: "/v1/projects/{pid}/sources", Auth: authProject, handle: (*Server).createSource},
		{Method: "GET", Pattern: "/v1/projects/{pid}/sources", Auth: authProject, handle: (*Server).listSources},
		{Method: "GET", Pattern: "/v1/projects/{pid}/sources/{sid}", Auth: authProject, handle: (*Server).getSource},
		{Method: "PATCH", Pattern: "/v1/projects/{pid}/sources/{sid}", Auth: authProject, handle: (*Server).patchSource},
		{Method: "DELETE", Pattern: "/v1/projects/{pid}/sources/{sid}", Auth: authProject, handle: (*Server).deleteSource},
		{Method: "POST", Pattern: "/in/{source_id}", Auth: authNone, handle: (*Server).receive},

		{Method: "GET", Pattern: "/v1/projects/{pid}/media", Auth: authProject, Query: []string{"status", "since", "limit", "cursor"}, handle: (*Server).listMedia},
		{Method: "GET", Pattern: "/v1/projects/{pid}/media/{id}", Auth: authProject, handle: (*Server).getMedia},
		{Method: "GET", Pattern: "/v1/projects/{pid}/live", Auth: authProject, Query: []string{"state", "since", "limit", "cursor"}, handle: (*Server).listLive},
		{Method: "GET", Pattern: "/v1/projects/{pid}/live/{event_id}", Auth: authProject, handle: (*Server).getLive},

		{Method: "GET", Pattern: "/v1/webhooks", Auth: authWebhooks, Query: kinescopeListParams, handle: (*Server).listWebhooks},
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
