package main

import (
	nethttp "net/http"
	"strings"

	khttp "github.com/kinehook/kinehook/http"
)

// pages is the dashboard as the top-level router sees it: a handler that
// can say whether a request names one of its pages.
type pages interface {
	nethttp.Handler
	HasPage(r *nethttp.Request) bool
}

// newRootHandler is the server's one top-level router. The API's paths go
// to the API; every other path goes to the dashboard, behind the API's
// request guards (size limits, X-Request-Id), when the client is a browser
// or the dashboard has a page there; anything else gets the API's JSON 404,
// so a client that is not a browser never gets an HTML error page.
func newRootHandler(api *khttp.Server, dash pages) nethttp.Handler {
	other := api.Guard(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		if strings.Contains(r.Header.Get("Accept"), "text/html") || dash.HasPage(r) {
			dash.ServeHTTP(w, r)
			return
		}
		api.NotFound(w, r)
	}))
	return nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		if api.Serves(r.URL.Path) {
			api.ServeHTTP(w, r)
			return
		}
		other.ServeHTTP(w, r)
	})
}
